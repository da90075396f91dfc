/*
 * test_backing_threads.c - the data path racing writeback, recompression,
 * idle marking, compaction and both policies, with a backing file and a
 * memory limit (so writes are forwarded too).
 *
 * Each I/O thread owns a disjoint set of pages and keeps its own model, so
 * every read is checked exactly while the maintenance thread and the
 * policy thread move the same pages between RAM, the backing file and the
 * secondary algorithm.  Run under ThreadSanitizer by `make check`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uzram.h"
#include "lib/test_files.h"

#define PAGE 4096u
#define NPAGES 512u
#define NIO 3
#define ROUNDS 3000

static struct uzram *dev;
static _Atomic bool done;
static _Atomic int errors;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fill(uint8_t *p, uint64_t seed)
{
    unsigned kind = seed % 5;
    for (size_t i = 0; i < PAGE; i++)
        p[i] = kind == 0 ? (uint8_t)mix(seed + i)
             : kind == 1 ? (uint8_t)seed
             : (uint8_t)("threads write back and recompress "[(i * (kind + 1) + seed) % 34]);
}

static void *io_thread(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t *seeds = calloc(NPAGES, sizeof *seeds);   /* 0 = never written */
    uint8_t buf[PAGE], want[PAGE];
    uint64_t x = id + 1;
    for (int r = 0; r < ROUNDS; r++) {
        x = mix(x);
        uint64_t p = (x % (NPAGES / NIO)) * NIO + id;
        if (x & 0x100) {
            uint64_t seed = mix(x) | 1;
            fill(buf, seed);
            int rc = uzram_write(dev, buf, PAGE, p * PAGE);
            if (rc == 0)
                seeds[p] = seed;
            else if (rc != -ENOMEM)   /* backing full and over the limit */
                atomic_fetch_add(&errors, 1);
        } else if (x & 0x200 && (x & 0x400)) {
            if (uzram_discard(dev, PAGE, p * PAGE) == 0)
                seeds[p] = 0;
        } else {
            if (uzram_read(dev, buf, PAGE, p * PAGE) != 0) {
                atomic_fetch_add(&errors, 1);
                continue;
            }
            if (seeds[p])
                fill(want, seeds[p]);
            else
                memset(want, 0, PAGE);
            if (memcmp(buf, want, PAGE) != 0) {
                fprintf(stderr, "thread %u: page %llu differs\n", id, (unsigned long long)p);
                atomic_fetch_add(&errors, 1);
            }
        }
    }
    free(seeds);
    return NULL;
}

static void *maint_thread(void *arg)
{
    (void)arg;
    static const char *const ops[][2] = {
        {"idle", "all"}, {"writeback", "idle"}, {"recompress", "type=idle max_pages=64"},
        {"writeback", "huge"}, {"compact", "1"}, {"writeback_compressed", "1"},
        {"writeback", "page_indexes=0-100"}, {"writeback_compressed", "0"}, {"recompress", ""},
    };
    unsigned i = 0;
    while (!atomic_load(&done)) {
        const char *const *op = ops[i++ % (sizeof ops / sizeof ops[0])];
        int rc = uzram_attr_store(dev, op[0], op[1], strlen(op[1]));
        if (rc != 0 && rc != -ENOSPC)
            fprintf(stderr, "%s %s: %d %s\n", op[0], op[1], rc, uzram_last_error());
        if (rc != 0 && rc != -ENOSPC)
            atomic_fetch_add(&errors, 1);
        usleep(1000);
    }
    return NULL;
}

static void test_race(void **state)
{
    (void)state;
    char path[64];
    test_backing_file(path, sizeof path, NPAGES);
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = NPAGES * PAGE;
    cfg.backing_dev = path;
    cfg.mem_limit = 64 * PAGE;
    cfg.recomp_algorithm[0] = "zstd";
    cfg.recompress_policy = "idle_secs=0 max_pages=16 period_ms=5";
    cfg.writeback_policy = "idle_secs=0 above=200K max_pages=16 period_ms=7";
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    pthread_t io[NIO], m;
    for (unsigned i = 0; i < NIO; i++)
        pthread_create(&io[i], NULL, io_thread, (void *)(uintptr_t)i);
    pthread_create(&m, NULL, maint_thread, NULL);
    for (unsigned i = 0; i < NIO; i++)
        pthread_join(io[i], NULL);
    atomic_store(&done, true);
    pthread_join(m, NULL);
    char buf[256];
    uzram_attr_show(dev, "policy_stat", buf, sizeof buf);
    print_message("%s", buf);
    uzram_attr_show(dev, "bd_stat", buf, sizeof buf);
    print_message("bd_stat %s", buf);
    assert_int_equal(atomic_load(&errors), 0);
    assert_int_equal(uzram_attr_store(dev, "reset", "1", 1), 0);
    uzram_destroy(dev);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
