/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_mem_trim.c - uz_mem_trim (mem.c): the malloc heap's free pages go
 * back to the operating system, in a process whose memory is locked as
 * the NBD plugin's is (uzram_lock_memory), and in one that is not.
 *
 *  - 8 MiB of small blocks are allocated below a block that pins the
 *    heap's top, then freed: the heap keeps them resident (under the lock
 *    a locked page cannot be dropped, so glibc's own trim cannot; without
 *    it, free() trims only the top);
 *  - uz_mem_trim gives them back: the heap's resident size falls below
 *    2 MiB, what is still allocated keeps its bytes, and under the lock
 *    the heap is locked again (its resident pages are counted in Locked:,
 *    and pages touched after the trim are locked when they fault in);
 *  - uzram_compact does it too, after compacting a device.
 * The locked half needs the right to lock without limit (root, or an
 * unlimited RLIMIT_MEMLOCK); without it, it says so and only the unlocked
 * half runs.
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

static void check_trim(bool locked_mode, bool through_compact)
{
    unsigned char *pin = fragment_heap();
    long rss0, lck0, rss1, lck1;
    heap_kib(&rss0, &lck0);
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
    print_message("%s%s: heap %ld KiB resident (%ld locked) before, %ld KiB (%ld locked) after\n",
                  locked_mode ? "locked" : "unlocked", through_compact ? ", uzram_compact" : "",
                  rss0, lck0, rss1, lck1);
    assert_true(rss1 < 2048);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(pin[i], 0x5a);
    if (locked_mode) {
        assert_true(lck0 >= rss0 - 4);   /* everything resident was locked */
        assert_true(lck1 >= rss1 - 4);   /* and is again after the trim */
        /* a page touched after the trim is locked as it faults in */
        unsigned char *again = malloc(256u * 1024 - 64);   /* under the threshold, as raised */
        assert_non_null(again);
        memset(again, 1, 256u * 1024 - 64);
        long rss2, lck2;
        heap_kib(&rss2, &lck2);
        assert_true(lck2 >= rss2 - 4);
        free(again);
    }
    free(pin);
}

static void test_trim_unlocked(void **state)
{
    (void)state;
    check_trim(false, false);
}

static void test_trim_locked(void **state)
{
    (void)state;
    if (uzram_lock_memory() < 0) {
        print_message("skip: cannot lock memory here (%s): the locked half needs root or an "
                      "unlimited RLIMIT_MEMLOCK\n", uzram_last_error());
        skip();
    }
    check_trim(true, false);
    check_trim(true, true);
    uzram_unlock_memory();
}

int main(void)
{
    /* fixed thresholds: the test's blocks come from the brk heap, and
     * glibc's own trim on free leaves the pinned heap alone */
    mallopt(M_MMAP_THRESHOLD, 512 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_unlocked),
        cmocka_unit_test(test_trim_locked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
