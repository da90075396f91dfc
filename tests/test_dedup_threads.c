/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dedup_threads.c - many threads writing the same pages at once and
 * discarding them, with compaction, writeback and recompression of the
 * shared pages running beside them.  Run under ThreadSanitizer by `make
 * check`.
 *
 * Four writers each own a quarter of the disk and fill it with pages drawn
 * from one pool of six contents (one of them incompressible), so the same
 * content is written by every thread at the same moment and found in the
 * content index by all of them: records are made, taken, dropped and freed
 * concurrently.  They also discard pages, write parts of pages (copy on
 * write of a shared page) and read back their own pages, each checked
 * against the thread's model.  A fifth thread compacts, marks everything
 * idle, writes idle pages back and recompresses them.  At the end the
 * whole disk is compared with the models and the store's invariant check
 * runs.  Configurations: zsmalloc and xvmalloc, lz4.
 *
 * The second test makes the content index grow while it is used: four
 * writers fill a larger disk with pages that are mostly unique (each made
 * from a key, the page's model) and partly drawn from a shared pool, and
 * discard some, so that lookups, inserts, moves between buckets, entries
 * pointed at new records and stale entries dropped all run beside the
 * growth steps, which replace the whole table.  UZ_STRESS_SECONDS (default
 * 4) is shared between the three runs.
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

#define PAGE UZRAM_PAGE_SIZE
#define NT 4
#define PER 256                      /* pages per writer */
#define NPOOL 6

static uint8_t pool[NPOOL][PAGE];
static uint8_t model[NT * PER][PAGE];
static struct uzram *dev;
static atomic_bool stop;
static atomic_int failures;

/* A thread's failures, counted for the test to fail on. */
static void op_failed(unsigned t, unsigned op, uint64_t p, int rc)
{
    if (rc == 0)
        return;
    fprintf(stderr, "thread %u: op %u on page %llu: %d %s\n", t, op, (unsigned long long)p, rc,
            uzram_last_error());
    atomic_fetch_add(&failures, 1);
}

static void read_wrong(unsigned t, uint64_t p, const uint8_t *got, const uint8_t *want)
{
    if (memcmp(got, want, PAGE) == 0)
        return;
    fprintf(stderr, "thread %u: page %llu reads wrong\n", t, (unsigned long long)p);
    atomic_fetch_add(&failures, 1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* NT threads of worker and one of helper, for seconds; then no failure. */
static void run_threads(void *(*worker)(void *), void *(*helper)(void *), double seconds)
{
    pthread_t w[NT], m;
    for (unsigned t = 0; t < NT; t++)
        pthread_create(&w[t], NULL, worker, (void *)(uintptr_t)t);
    pthread_create(&m, NULL, helper, NULL);
    double end = now_s() + seconds;
    while (now_s() < end)
        usleep(10000);
    atomic_store(&stop, true);
    for (unsigned t = 0; t < NT; t++)
        pthread_join(w[t], NULL);
    pthread_join(m, NULL);
    assert_int_equal(atomic_load(&failures), 0);
}

static void make_pool(void)
{
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < NPOOL; k++)
        for (size_t i = 0; i < PAGE; i++) {
            if (k == NPOOL - 1) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pool[k][i] = (uint8_t)x;
            } else {
                pool[k][i] = (uint8_t)("many threads, the same pages "[(i + (size_t)k * 3) % 29]);
            }
        }
}

static void *writer(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    unsigned seed = 1234 + t;
    uint8_t buf[PAGE];
    while (!atomic_load(&stop)) {
        uint64_t p = t * PER + (unsigned)rand_r(&seed) % PER;
        unsigned op = (unsigned)rand_r(&seed) % 16;
        int rc;
        if (op < 10) {
            unsigned k = (unsigned)rand_r(&seed) % NPOOL;
            rc = uzram_write(dev, pool[k], PAGE, p * PAGE);
            if (rc == 0)
                memcpy(model[p], pool[k], PAGE);
        } else if (op < 12) {
            rc = uzram_discard(dev, PAGE, p * PAGE);
            if (rc == 0)
                memset(model[p], 0, PAGE);
        } else if (op < 13) {
            size_t in = (unsigned)rand_r(&seed) % (PAGE - 64);
            memset(buf, (int)t + 1, 64);
            rc = uzram_write(dev, buf, 64, p * PAGE + in);
            if (rc == 0)
                memset(model[p] + in, (int)t + 1, 64);
        } else {
            rc = uzram_read(dev, buf, PAGE, p * PAGE);
            if (rc == 0)
                read_wrong(t, p, buf, model[p]);
        }
        op_failed(t, op, p, rc);
    }
    return NULL;
}

static int st(const char *name, const char *v)
{
    return uzram_attr_store(dev, name, v, strlen(v));
}

static void *maintainer(void *arg)
{
    (void)arg;
    char buf[512];
    unsigned round = 0;
    while (!atomic_load(&stop)) {
        uzram_compact(dev);
        if (st("idle", "all") != 0)
            atomic_fetch_add(&failures, 1);
        int rc = round % 4 ? 0 : st("writeback", "idle");
        /* the backing file may fill up: -ENOSPC ends a run, nothing lost */
        if (rc != 0 && rc != -ENOSPC)
            atomic_fetch_add(&failures, 1);
        if (st("recompress", round % 2 ? "type=idle group=1" : "type=huge") != 0)
            atomic_fetch_add(&failures, 1);
        if (uzram_attr_show(dev, "dedup_stat", buf, sizeof buf) <= 0)
            atomic_fetch_add(&failures, 1);
        round++;
        usleep(2000);
    }
    return NULL;
}

static void run(const char *allocator, double seconds)
{
    char path[64];
    test_backing_file(path, sizeof path, 512);
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = NT * PER * PAGE;
    cfg.allocator = allocator;
    cfg.streams = 2;
    cfg.dedup = "1";
    cfg.backing_dev = path;
    cfg.recomp_algorithm[0] = "zstd";
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    memset(model, 0, sizeof model);
    atomic_store(&stop, false);
    run_threads(writer, maintainer, seconds);
    static uint8_t all[NT * PER][PAGE];
    assert_int_equal(uzram_read(dev, all, sizeof all, 0), 0);
    for (uint64_t p = 0; p < NT * PER; p++)
        if (memcmp(all[p], model[p], PAGE) != 0)
            fail_msg("[%s] page %llu differs at the end", allocator, (unsigned long long)p);
    if (uzram_check(dev) != 0)
        fail_msg("[%s] store check: %s", allocator, uzram_last_error());
    struct uzram_stats s;
    uzram_get_stats(dev, &s);
    print_message("[%s] %.1f s: %llu pages deduplicated, %llu hits, %llu written back, "
                  "%llu recompressed\n", allocator, seconds, (unsigned long long)s.dedup_pages,
                  (unsigned long long)s.dedup_hits, (unsigned long long)s.written_back,
                  (unsigned long long)s.recompressed);
    assert_true(s.dedup_hits > 0);
    uzram_destroy(dev);
    unlink(path);
}

static double stress_seconds(void)
{
    const char *e = getenv("UZ_STRESS_SECONDS");
    return e ? atof(e) : 4.0;
}

static void test_same_pages_many_threads(void **state)
{
    (void)state;
    make_pool();
    double total = stress_seconds();
    run("zsmalloc", total / 3);
    run("xvmalloc", total / 3);
}

/* ---- the index growing under lookups ---- */

#define GPER 4096                     /* pages per writer */
#define GPOOL 32                      /* shared contents */
static _Atomic uint64_t gkey[NT * GPER]; /* a page's content: 0 zeros, else made from its key */

/* The page of key k: 64 bytes from the key, then text that compresses. */
static void gen(uint8_t *p, uint64_t k)
{
    if (!k) {
        memset(p, 0, PAGE);
        return;
    }
    uint64_t x = k * 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 8; i++) {
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        memcpy(p + 8 * i, &x, 8);
    }
    for (size_t i = 64; i < PAGE; i++)
        p[i] = (uint8_t)("the index grows while it is used "[(i + k) % 33]);
}

static void *grower(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    unsigned seed = 777 + t;
    uint64_t serial = 0;
    uint8_t buf[PAGE], back[PAGE];
    while (!atomic_load(&stop)) {
        uint64_t p = t * GPER + (unsigned)rand_r(&seed) % GPER;
        unsigned op = (unsigned)rand_r(&seed) % 16;
        int rc;
        if (op < 11) {
            uint64_t k = op < 7 ? ((uint64_t)(t + 1) << 40 | ++serial) + GPOOL
                                : 1 + (unsigned)rand_r(&seed) % GPOOL;
            gen(buf, k);
            rc = uzram_write(dev, buf, PAGE, p * PAGE);
            if (rc == 0)
                atomic_store(&gkey[p], k);
        } else if (op < 13) {
            rc = uzram_discard(dev, PAGE, p * PAGE);
            if (rc == 0)
                atomic_store(&gkey[p], 0);
        } else {
            rc = uzram_read(dev, back, PAGE, p * PAGE);
            gen(buf, atomic_load(&gkey[p]));
            if (rc == 0)
                read_wrong(t, p, buf, back);
        }
        op_failed(t, op, p, rc);
    }
    return NULL;
}

static void *watcher(void *arg)
{
    (void)arg;
    char buf[1024];
    while (!atomic_load(&stop)) {
        uzram_compact(dev);
        if (uzram_attr_show(dev, "dedup_stat", buf, sizeof buf) <= 0)
            atomic_fetch_add(&failures, 1);
        struct uzram_stats s;
        uzram_get_stats(dev, &s);
        usleep(1000);
    }
    return NULL;
}

static void test_index_grows_under_lookups(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = (uint64_t)NT * GPER * PAGE;
    cfg.streams = 2;
    cfg.dedup = "1";
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    for (uint64_t p = 0; p < NT * GPER; p++)
        atomic_store(&gkey[p], 0);
    atomic_store(&stop, false);
    atomic_store(&failures, 0);
    run_threads(grower, watcher, stress_seconds() / 3);
    uint8_t want[PAGE], got[PAGE];
    for (uint64_t p = 0; p < NT * GPER; p++) {
        assert_int_equal(uzram_read(dev, got, PAGE, p * PAGE), 0);
        gen(want, atomic_load(&gkey[p]));
        if (memcmp(want, got, PAGE) != 0)
            fail_msg("page %llu differs at the end", (unsigned long long)p);
    }
    if (uzram_check(dev) != 0)
        fail_msg("store check: %s", uzram_last_error());
    char s[1024];
    assert_true(uzram_attr_show(dev, "dedup_stat", s, sizeof s) > 0);
    const char *g = strstr(s, "grown ");
    assert_non_null(g);
    unsigned long long grown = strtoull(g + 6, NULL, 10);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    print_message("index grown %llu times; %llu pages deduplicated, %llu hits\n", grown,
                  (unsigned long long)st.dedup_pages, (unsigned long long)st.dedup_hits);
    assert_true(grown > 0);
    assert_true(st.dedup_hits > 0);
    uzram_destroy(dev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_pages_many_threads),
        cmocka_unit_test(test_index_grows_under_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
