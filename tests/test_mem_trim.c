/* SPDX-License-Identifier: BSD-2-Clause */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_mem_trim.c - uz_mem_trim (mem.c) and the heap under the memory
 * lock (uzram_lock_memory), as the NBD plugin and a swap server run.
 *
 *  - unlocked: 8 MiB of small blocks are allocated below a block that
 *    pins the heap's top, then freed; the heap keeps them resident, and
 *    uz_mem_trim (and uzram_compact, which calls it) gives them back: the
 *    heap's resident size falls below 2 MiB, and what is still allocated
 *    keeps its bytes;
 *  - locked: the same trim never unlocks the heap (every resident page
 *    of it is still counted in Locked:, and pages touched after it are
 *    locked as they fault in), and blocks of 128 KiB and more, the size
 *    of compression streams, are given back when freed (the process's
 *    locked total falls by what they held), whatever size was freed
 *    before.
 * The locked half needs the right to lock without limit (root, or an
 * unlimited RLIMIT_MEMLOCK); without it, it says so and is skipped.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"
#include "uzram.h"

#define NBLK 2048u
#define BLK 4000u           /* below the mmap threshold: from the brk heap */

/* The [heap] mapping's Rss and Locked, in KiB (summed over its lines). */
static void heap_kib(long *rss, long *locked)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    assert_non_null(f);
    char line[512];
    bool in_heap = false;
    *rss = *locked = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char name[256] = "";
        /* a mapping's line: "lo-hi perms offset dev inode [name]" (a
         * field's line, "Name:  value", does not scan as lo-hi) */
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &a, &b, name) >= 2) {
            in_heap = strcmp(name, "[heap]") == 0;
            continue;
        }
        long v;
        if (in_heap && sscanf(line, "Rss: %ld kB", &v) == 1)
            *rss += v;
        if (in_heap && sscanf(line, "Locked: %ld kB", &v) == 1)
            *locked += v;
    }
    fclose(f);
}

/* Allocate NBLK blocks (filled), a pin block above them, free the blocks:
 * returns the pin, filled with 0x5a. */
static unsigned char *fragment_heap(void)
{
    static unsigned char *blk[NBLK];
    for (unsigned i = 0; i < NBLK; i++) {
        blk[i] = malloc(BLK);
        assert_non_null(blk[i]);
        memset(blk[i], (int)(i & 0xff), BLK);
    }
    unsigned char *pin = malloc(64);
    assert_non_null(pin);
    memset(pin, 0x5a, 64);
    for (unsigned i = 0; i < NBLK; i++)
        free(blk[i]);
    return pin;
}

/* A field of /proc/self/status in KiB (VmLck, VmRSS) */
static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    assert_non_null(f);
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &v) == 1)
            break;
    fclose(f);
    assert_true(v >= 0);
    return v;
}

static void check_trim_unlocked(bool through_compact)
{
    unsigned char *pin = fragment_heap();
    long rss0, lck0, rss1, lck1;
    heap_kib(&rss0, &lck0);
    print_message("unlocked%s: heap %ld KiB resident with the blocks freed\n",
                  through_compact ? ", uzram_compact" : "", rss0);
    /* the freed blocks are still resident: the pin holds the top */
    assert_true(rss0 >= (long)(NBLK * BLK / 1024) * 3 / 4);
    if (through_compact) {
        struct uzram_config cfg;
        uzram_config_init(&cfg);
        cfg.disksize = 16u << 20;
        struct uzram *dev;
        assert_int_equal(uzram_create(&cfg, &dev), 0);
        char page[4096];
        memset(page, 0x33, sizeof page);
        assert_int_equal(uzram_write(dev, page, sizeof page, 0), 0);
        (void)uzram_compact(dev);
        char back[4096];
        assert_int_equal(uzram_read(dev, back, sizeof back, 0), 0);
        assert_memory_equal(back, page, sizeof page);
        uzram_destroy(dev);
        /* destroy freed what the device held in the heap: trim again,
         * as the next compaction would */
        uz_mem_trim();
    } else {
        uz_mem_trim();
    }
    heap_kib(&rss1, &lck1);
    print_message("unlocked%s: heap %ld KiB resident before, %ld KiB after\n",
                  through_compact ? ", uzram_compact" : "", rss0, rss1);
    assert_true(rss1 < 2048);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(pin[i], 0x5a);
    free(pin);
}

static void test_trim_unlocked(void **state)
{
    (void)state;
    check_trim_unlocked(false);
    check_trim_unlocked(true);
}

#define BIG (256u * 1024)
#define NBIG 32u

static void test_trim_locked(void **state)
{
    (void)state;
    if (uzram_lock_memory() < 0) {
        print_message("skip: cannot lock memory here (%s): the locked half needs root or an "
                      "unlimited RLIMIT_MEMLOCK\n", uzram_last_error());
        skip();
    }
    /* large blocks go back when freed, even after a larger one was freed
     * (which would raise glibc's dynamic threshold) */
    void *huge = malloc(4u << 20);
    assert_non_null(huge);
    memset(huge, 2, 4u << 20);
    free(huge);
    long v0 = status_kib("VmLck");
    unsigned char *big[NBIG];
    for (unsigned i = 0; i < NBIG; i++) {
        big[i] = malloc(BIG);
        assert_non_null(big[i]);
        memset(big[i], (int)i, BIG);
    }
    unsigned char *top = malloc(64);   /* holds the heap's top, were they in the heap */
    assert_non_null(top);
    long v1 = status_kib("VmLck");
    for (unsigned i = 0; i < NBIG; i++) {
        for (unsigned j = 0; j < BIG; j += 4096)
            assert_int_equal(big[i][j], (unsigned char)i);
        free(big[i]);
    }
    long v2 = status_kib("VmLck");
    print_message("locked: %u blocks of %u KiB: VmLck %ld KiB, %ld with them, %ld after free\n",
                  NBIG, BIG / 1024, v0, v1, v2);
    assert_true(v1 - v0 >= (long)(NBIG * BIG / 1024) * 3 / 4);
    assert_true(v1 - v2 >= (long)(NBIG * BIG / 1024) * 3 / 4);
    free(top);

    /* the trim leaves the heap locked */
    unsigned char *pin = fragment_heap();
    long rss0, lck0, rss1, lck1;
    heap_kib(&rss0, &lck0);
    assert_true(lck0 >= rss0 - 4);
    uz_mem_trim();
    heap_kib(&rss1, &lck1);
    print_message("locked: heap %ld KiB resident (%ld locked) before the trim, %ld (%ld) after\n",
                  rss0, lck0, rss1, lck1);
    assert_true(lck1 >= rss1 - 4);
    /* and so is everything else the process holds */
    long vlck = status_kib("VmLck"), vrss = status_kib("VmRSS");
    print_message("locked: after the trim VmLck %ld KiB of VmRSS %ld KiB\n", vlck, vrss);
    assert_true(vlck >= vrss - 64);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(pin[i], 0x5a);
    unsigned char *again = malloc(64u * 1024);   /* below the threshold: from the heap */
    assert_non_null(again);
    memset(again, 1, 64u * 1024);
    long rss2, lck2;
    heap_kib(&rss2, &lck2);
    assert_true(lck2 >= rss2 - 4);   /* locked as it faulted in */
    free(again);
    free(pin);

    uzram_unlock_memory();
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UZ_FOREIGN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UZ_FOREIGN_MALLOC 1
#endif
#endif

int main(void)
{
#ifdef UZ_FOREIGN_MALLOC
    /* The sanitizer's allocator replaces glibc's: there is no brk heap or
     * malloc_trim to measure.  The plain build runs this test. */
    printf("skip: built with a sanitizer, whose malloc is not glibc's\n");
    return 0;
#endif
    /* Each half in a process of its own, with glibc's thresholds as they
     * are at start (dynamic) and a heap no other test has used: glibc
     * takes a free chunk of the heap before it maps a block of its own,
     * and the halves each leave some. */
    const struct CMUnitTest locked[] = { cmocka_unit_test(test_trim_locked) };
    const struct CMUnitTest unlocked[] = { cmocka_unit_test(test_trim_unlocked) };
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0)
        _exit(cmocka_run_group_tests(locked, NULL, NULL) ? 1 : 0);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    int rc = cmocka_run_group_tests(unlocked, NULL, NULL);
    return rc || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
