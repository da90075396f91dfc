/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pool_threads.c - clones made, written, read and removed while
 * other threads write their sources and read the clones (ThreadSanitizer
 * runs it: label "concurrency").
 *
 * A writer thread rewrites the source's pages over and over, each write
 * a new version of the page (its number and version in its bytes).  The
 * main thread clones the source meanwhile: every page of a clone must
 * hold a version the source held while the clone was made (between the
 * versions finished before uzram_clone and the ones started before it
 * returned).  Then two threads write the clone and the source at once
 * (the first write to every unit of either gives the clone its own
 * slots), a reader reads the clone, and at the end the source is removed
 * while the clone is read: every page right, uzram_check clean.  And a
 * source settled while its clones write and read (the regrouping of a
 * unit clones read through, clone.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uzram.h"
#include "lib/test_device.h"

#define PAGE UZRAM_PAGE_SIZE
#define NPAGES 2048
#define ROUNDS 4

static struct uzram_pool *pool;
static _Atomic uint32_t started[NPAGES], finished[NPAGES];
static _Atomic bool stop;

/* Version v of page p: compressible, p and v in it. */
static void content(uint8_t *b, uint32_t p, uint32_t v)
{
    for (size_t i = 0; i < PAGE; i += 8) {
        uint64_t w = (uint64_t)p << 32 | v;
        w ^= (i % 256 == 0) ? i : 0;
        memcpy(b + i, &w, 8);
    }
    if (p % 9 == 4)
        memset(b, (int)(v & 0xff), PAGE);   /* a same-filled page now and then */
}

/* The version b holds as page p (of a fill: modulo 256), or UINT32_MAX. */
static uint32_t version_of(const uint8_t *b, uint32_t p)
{
    uint8_t want[PAGE];
    uint64_t w;
    memcpy(&w, b + 8, 8);
    uint32_t v = (uint32_t)w;
    if (p % 9 == 4)
        v = b[0];
    content(want, p, v);
    if (memcmp(want, b, PAGE) == 0)
        return v;
    return UINT32_MAX;
}

static void *source_writer(void *arg)
{
    struct uzram *src = arg;
    uint8_t b[PAGE];
    uint64_t x = 88172645463325252ull;
    while (!atomic_load(&stop)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t p = (uint32_t)(x % NPAGES);
        uint32_t v = atomic_load(&started[p]) + 1;
        atomic_store(&started[p], v);
        content(b, p, v);
        if (uzram_write(src, b, PAGE, (uint64_t)p * PAGE) != 0)
            abort();
        atomic_store(&finished[p], v);
    }
    return NULL;
}

struct clone_job {
    struct uzram *dev;
    uint32_t salt;                     /* versions this thread writes: >= salt */
    uint32_t *mine;                    /* the version it wrote, by page (0: none) */
};

static void *clone_writer(void *arg)
{
    struct clone_job *j = arg;
    uint8_t b[PAGE];
    for (uint32_t p = 0; p < NPAGES; p += 3) {
        content(b, p, j->salt + p);
        if (uzram_write(j->dev, b, PAGE, (uint64_t)p * PAGE) != 0)
            abort();
        j->mine[p] = j->salt + p;
    }
    return NULL;
}

static void *clone_reader(void *arg)
{
    struct uzram *c = arg;
    uint8_t b[PAGE];
    while (!atomic_load(&stop))
        for (uint32_t p = 1; p < NPAGES && !atomic_load(&stop); p += 7)
            if (uzram_read(c, b, PAGE, (uint64_t)p * PAGE) != 0)
                abort();
    return NULL;
}

static void test_clone_under_io(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 64ull << 20;
    cfg.dedup = "1";
    assert_int_equal(uzram_pool_create(&cfg, &pool), 0);
    struct uzram *src;
    assert_int_equal(uzram_pool_add(pool, &src), 0);
    assert_int_equal(uzram_attr_store(src, "disksize", "8M", 2), 0);
    uint8_t b[PAGE];
    for (uint32_t p = 0; p < NPAGES; p++) {
        content(b, p, 1);
        assert_int_equal(uzram_write(src, b, PAGE, (uint64_t)p * PAGE), 0);
        started[p] = finished[p] = 1;
    }
    static uint32_t lo[NPAGES], hi[NPAGES], mine_c[NPAGES], mine_s[NPAGES];
    for (int round = 0; round < ROUNDS; round++) {
        atomic_store(&stop, false);
        pthread_t w;
        pthread_create(&w, NULL, source_writer, src);
        for (int spin = 0; spin < 2000; spin++)
            sched_yield();
        for (uint32_t p = 0; p < NPAGES; p++)
            lo[p] = atomic_load(&finished[p]);
        struct uzram *c;
        assert_int_equal(uzram_clone(src, &c), 0);
        for (uint32_t p = 0; p < NPAGES; p++)
            hi[p] = atomic_load(&started[p]);
        /* the clone is read and written beside the source's writer */
        pthread_t r;
        pthread_create(&r, NULL, clone_reader, c);
        memset(mine_c, 0, sizeof mine_c);
        struct clone_job jc = {c, 1u << 30, mine_c};
        pthread_t cw;
        pthread_create(&cw, NULL, clone_writer, &jc);
        pthread_join(cw, NULL);
        atomic_store(&stop, true);
        pthread_join(w, NULL);
        pthread_join(r, NULL);
        for (uint32_t p = 0; p < NPAGES; p++) {
            assert_int_equal(uzram_read(c, b, PAGE, (uint64_t)p * PAGE), 0);
            uint32_t v = version_of(b, p);
            if (mine_c[p]) {
                if (v != (p % 9 == 4 ? mine_c[p] & 0xff : mine_c[p]))
                    fail_msg("round %d: clone page %u: version %u, wrote %u", round, p, v, mine_c[p]);
            } else if (p % 9 == 4) {
                if (v == UINT32_MAX)
                    fail_msg("round %d: clone page %u is not a fill", round, p);
            } else if (v < lo[p] || v > hi[p]) {
                fail_msg("round %d: clone page %u: version %u, source held %u..%u", round, p, v,
                         lo[p], hi[p]);
            }
        }
        if (uzram_check(src) != 0)
            fail_msg("uzram_check: %s", uzram_last_error());
        /* both written at once, then the source goes while the clone is read */
        memset(mine_s, 0, sizeof mine_s);
        struct clone_job js = {src, 1u << 29, mine_s};
        memset(mine_c, 0, sizeof mine_c);
        jc.mine = mine_c;
        jc.salt = (1u << 30) + 7;
        pthread_t t1, t2;
        pthread_create(&t1, NULL, clone_writer, &jc);
        pthread_create(&t2, NULL, clone_writer, &js);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        for (uint32_t p = 0; p < NPAGES; p += 3) {
            atomic_store(&started[p], mine_s[p]);
            atomic_store(&finished[p], mine_s[p]);
        }
        if (round == ROUNDS - 1) {
            atomic_store(&stop, false);
            pthread_create(&r, NULL, clone_reader, c);
            assert_int_equal(uzram_pool_remove(pool, uzram_device_id(src)), 0);
            atomic_store(&stop, true);
            pthread_join(r, NULL);
            for (uint32_t p = 0; p < NPAGES; p += 3) {
                assert_int_equal(uzram_read(c, b, PAGE, (uint64_t)p * PAGE), 0);
                assert_int_equal(version_of(b, p), p % 9 == 4 ? mine_c[p] & 0xff : mine_c[p]);
            }
            if (uzram_check(c) != 0)
                fail_msg("uzram_check: %s", uzram_last_error());
        } else {
            assert_int_equal(uzram_pool_remove(pool, uzram_device_id(c)), 0);
        }
    }
    /* the pool as the rounds left it (uzram_check of a device checks the
     * whole pool) */
    int last = uzram_pool_next(pool, -1);
    assert_true(last >= 0);
    struct uzram *d = uzram_pool_get(pool, last);
    assert_non_null(d);
    if (uzram_check(d) != 0)
        fail_msg("uzram_check at the end: %s", uzram_last_error());
    uzram_pool_put(d);
    for (int id = uzram_pool_next(pool, -1); id >= 0; id = uzram_pool_next(pool, -1))
        assert_int_equal(uzram_pool_remove(pool, id), 0);
    assert_int_equal(uzram_pool_destroy(pool), 0);
}

struct settle_job {
    struct uzram *dev;
    _Atomic int runs;
};

static void *settler(void *arg)
{
    struct settle_job *j = arg;
    while (!atomic_load(&stop)) {
        if (uzram_attr_store(j->dev, "recompress", "settle", 6) != 0)
            abort();
        atomic_fetch_add(&j->runs, 1);
    }
    return NULL;
}

/* Settling a source while its clones write pages of their own and read
 * through: a window is regrouped only where no clone has a page of its
 * own (P4), under the target's stripe lock that the clones' direct
 * writes hold for reading; every page of every device right, and
 * uzram_check clean, after each round. */
static void test_settle_under_clone_writes(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);   /* the defaults: zstd secondary, settling */
    cfg.disksize = 64ull << 20;
    uint8_t b[PAGE];
    static uint32_t mine[2][NPAGES];
    unsigned long long groups = 0;
    for (int round = 0; round < ROUNDS; round++) {
        assert_int_equal(uzram_pool_create(&cfg, &pool), 0);
        struct uzram *src, *c[2];
        assert_int_equal(uzram_pool_add(pool, &src), 0);
        assert_int_equal(uzram_attr_store(src, "disksize", "8M", 2), 0);
        for (uint32_t p = 0; p < NPAGES; p++) {
            content(b, p, 1);
            assert_int_equal(uzram_write(src, b, PAGE, (uint64_t)p * PAGE), 0);
        }
        for (int i = 0; i < 2; i++)
            assert_int_equal(uzram_clone(src, &c[i]), 0);
        memset(mine, 0, sizeof mine);
        struct clone_job jc[2] = {{c[0], (1u << 30) + (uint32_t)round, mine[0]},
                                  {c[1], (1u << 29) + (uint32_t)round, mine[1]}};
        struct settle_job sj = {src, 0};
        atomic_store(&stop, false);
        pthread_t ts, tr, tw[2];
        pthread_create(&ts, NULL, settler, &sj);
        pthread_create(&tr, NULL, clone_reader, c[1]);
        for (int i = 0; i < 2; i++)
            pthread_create(&tw[i], NULL, clone_writer, &jc[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(tw[i], NULL);
        while (atomic_load(&sj.runs) < 2)   /* at least one pass after the writes */
            sched_yield();
        atomic_store(&stop, true);
        pthread_join(ts, NULL);
        pthread_join(tr, NULL);
        for (uint32_t p = 0; p < NPAGES; p++) {
            assert_int_equal(uzram_read(src, b, PAGE, (uint64_t)p * PAGE), 0);
            if (version_of(b, p) != 1)
                fail_msg("round %d: source page %u changed", round, p);
            for (int i = 0; i < 2; i++) {
                assert_int_equal(uzram_read(c[i], b, PAGE, (uint64_t)p * PAGE), 0);
                uint32_t v = version_of(b, p), w = mine[i][p] ? mine[i][p] : 1;
                if (v != (p % 9 == 4 ? w & 0xff : w))
                    fail_msg("round %d: clone %d page %u: version %u, want %u", round, i, p, v, w);
            }
        }
        if (uzram_check(src) != 0)
            fail_msg("round %d: uzram_check: %s", round, uzram_last_error());
        groups += debug_stat(src, "settle_groups");
        for (int id = uzram_pool_next(pool, -1); id >= 0; id = uzram_pool_next(pool, -1))
            assert_int_equal(uzram_pool_remove(pool, id), 0);
        assert_int_equal(uzram_pool_destroy(pool), 0);
    }
    assert_true(groups > 0);   /* the sources were regrouped under their clones */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clone_under_io),
        cmocka_unit_test(test_settle_under_clone_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
