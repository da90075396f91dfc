/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_backing_threads.c - the data path racing writeback, recompression,
 * idle marking, compaction and both policies, with a backing file and a
 * memory limit (so writes are forwarded too).
 *
 * Each I/O thread owns a disjoint set of pages (p % NIO == its id) and
 * keeps their model, so every read is checked exactly while the
 * maintenance thread and the policy thread move the same pages between
 * RAM, the backing file and the secondary algorithm.  The I/O threads run
 * until the maintenance thread has been through its list MAINT_CYCLES
 * times (a condition, with a time limit), so the race always covers
 * writeback.  At the end the test requires what the race is about to
 * have happened: writes that succeeded (at most one in ten refused, and
 * only with -ENOMEM), pages written back, forwarded and read back from
 * the backing file; then every page is read once more against the model,
 * with some of them read from the backing file, and uzram_check() must
 * pass.  Run under ThreadSanitizer by `make check`.
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
#include <time.h>
#include <unistd.h>

#include "uzram.h"
#include "lib/test_files.h"

#define PAGE 4096u
#define NPAGES 512u
#define NIO 3
#define ROUNDS 3000
#define MAINT_CYCLES 3
#define TIME_LIMIT_S 120.0

static struct uzram *dev;
static _Atomic bool done;
static _Atomic unsigned maint_cycles;
static _Atomic int errors;
static _Atomic unsigned long writes_ok, writes_enomem, reads_ok;
/* The model: the seed of each page's content, 0 = zeros.  Page p is
 * written by thread p % NIO only; the main thread reads it after the
 * joins. */
static uint64_t seeds[NPAGES];

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Page p against the model; false (and counted) if it differs. */
static bool page_right(const uint8_t *buf, uint64_t p, const char *who)
{
    uint8_t want[PAGE];
    if (seeds[p])
        fill(want, seeds[p]);
    else
        memset(want, 0, PAGE);
    if (memcmp(buf, want, PAGE) == 0)
        return true;
    fprintf(stderr, "%s: page %llu differs\n", who, (unsigned long long)p);
    atomic_fetch_add(&errors, 1);
    return false;
}

static void *io_thread(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    char who[32];
    snprintf(who, sizeof who, "thread %u", id);
    uint8_t buf[PAGE];
    uint64_t x = id + 1;
    const double end = now_s() + TIME_LIMIT_S;
    for (int r = 0; r < ROUNDS || atomic_load(&maint_cycles) < MAINT_CYCLES; r++) {
        if (now_s() > end) {
            fprintf(stderr, "%s: the maintenance thread did %u of %u cycles in %.0f s\n", who,
                    atomic_load(&maint_cycles), MAINT_CYCLES, TIME_LIMIT_S);
            atomic_fetch_add(&errors, 1);
            break;
        }
        x = mix(x);
        uint64_t p = (x % (NPAGES / NIO)) * NIO + id;
        if (x & 0x100) {
            uint64_t seed = mix(x) | 1;
            fill(buf, seed);
            int rc = uzram_write(dev, buf, PAGE, p * PAGE);
            if (rc == 0) {
                seeds[p] = seed;
                atomic_fetch_add(&writes_ok, 1);
            } else if (rc == -ENOMEM) {   /* backing full and over the limit */
                atomic_fetch_add(&writes_enomem, 1);
            } else {
                fprintf(stderr, "%s: write page %llu: %d %s\n", who, (unsigned long long)p, rc,
                        uzram_last_error());
                atomic_fetch_add(&errors, 1);
            }
        } else if (x & 0x200 && (x & 0x400)) {
            int rc = uzram_discard(dev, PAGE, p * PAGE);
            if (rc == 0) {
                seeds[p] = 0;
            } else {
                fprintf(stderr, "%s: discard page %llu: %d %s\n", who, (unsigned long long)p, rc,
                        uzram_last_error());
                atomic_fetch_add(&errors, 1);
            }
        } else {
            int rc = uzram_read(dev, buf, PAGE, p * PAGE);
            if (rc != 0) {
                fprintf(stderr, "%s: read page %llu: %d %s\n", who, (unsigned long long)p, rc,
                        uzram_last_error());
                atomic_fetch_add(&errors, 1);
                continue;
            }
            if (page_right(buf, p, who))
                atomic_fetch_add(&reads_ok, 1);
        }
    }
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
    const unsigned nops = sizeof ops / sizeof ops[0];
    unsigned i = 0;
    while (!atomic_load(&done)) {
        const char *const *op = ops[i % nops];
        int rc = uzram_attr_store(dev, op[0], op[1], strlen(op[1]));
        if (rc != 0 && rc != -ENOSPC) {
            fprintf(stderr, "%s %s: %d %s\n", op[0], op[1], rc, uzram_last_error());
            atomic_fetch_add(&errors, 1);
        }
        if (++i % nops == 0)
            atomic_fetch_add(&maint_cycles, 1);
        usleep(1000);   /* pacing: the I/O threads run between the stores */
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
    cfg.dedup = "off";   /* every page its own object, so the limit forwards some */
    cfg.recomp_algorithm[0] = "zstd";
    cfg.recompress_policy = "idle_secs=0 max_pages=16 period_ms=5";
    cfg.writeback_policy = "idle_secs=0 above=200K max_pages=16 period_ms=7";
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    pthread_t io[NIO], m;
    for (unsigned i = 0; i < NIO; i++)
        assert_int_equal(pthread_create(&io[i], NULL, io_thread, (void *)(uintptr_t)i), 0);
    assert_int_equal(pthread_create(&m, NULL, maint_thread, NULL), 0);
    for (unsigned i = 0; i < NIO; i++)
        pthread_join(io[i], NULL);
    atomic_store(&done, true);
    pthread_join(m, NULL);

    char buf[256];
    assert_true(uzram_attr_show(dev, "policy_stat", buf, sizeof buf) > 0);
    print_message("%s", buf);
    assert_true(uzram_attr_show(dev, "bd_stat", buf, sizeof buf) > 0);
    print_message("bd_stat %s", buf);
    struct uzram_stats s;
    uzram_get_stats(dev, &s);
    unsigned long ok = atomic_load(&writes_ok), enomem = atomic_load(&writes_enomem);
    print_message("writes %lu (-ENOMEM %lu), reads checked %lu, maintenance cycles %u; "
                  "written back %llu, forwarded %llu, bd_reads %llu, bd_writes %llu, "
                  "recompressed %llu\n", ok, enomem, atomic_load(&reads_ok),
                  atomic_load(&maint_cycles), (unsigned long long)s.written_back,
                  (unsigned long long)s.forwarded, (unsigned long long)s.bd_reads,
                  (unsigned long long)s.bd_writes, (unsigned long long)s.recompressed);
    assert_int_equal(atomic_load(&errors), 0);
    /* the race did what it is about */
    assert_true(atomic_load(&maint_cycles) >= MAINT_CYCLES);
    assert_true(ok > 0 && enomem * 10 <= ok + enomem);
    assert_true(atomic_load(&reads_ok) > 0);
    assert_true(s.written_back > 0);
    /* forwarded: whether a write finds the limit reached depends on how
     * far the writeback thread is ahead (under TSan it always is), so it
     * is printed, not asserted; the pages written back and read back are */
    assert_true(s.bd_writes >= s.written_back);
    assert_true(s.bd_reads > 0);
    assert_int_equal(s.bd_failed, 0);
    assert_int_equal(s.failed_reads + s.failed_writes, 0);

    /* every page once more, some of them from the backing file */
    assert_int_equal(uzram_attr_store(dev, "idle", "all", 3), 0);
    int rc = uzram_attr_store(dev, "writeback", "idle", 4);
    assert_true(rc == 0 || rc == -ENOSPC);
    struct uzram_stats before, after;
    uzram_get_stats(dev, &before);
    assert_true(before.bd_count > 0);
    uint8_t page[PAGE];
    for (uint64_t p = 0; p < NPAGES; p++) {
        assert_int_equal(uzram_read(dev, page, PAGE, p * PAGE), 0);
        page_right(page, p, "final pass");
    }
    uzram_get_stats(dev, &after);
    assert_int_equal(atomic_load(&errors), 0);
    assert_true(after.bd_reads > before.bd_reads);
    if (uzram_check(dev) != 0)
        fail_msg("uzram_check: %s", uzram_last_error());
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
