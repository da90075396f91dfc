/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_group_threads.c - group compression under concurrency (run under
 * ThreadSanitizer by the TSan build: `ctest -L concurrency`).
 *
 * A device with group_pages = 4 and zstd as its secondary.  Writer threads
 * share every group without sharing a page:
 *
 *   region A  page p belongs to thread p % NT, so each group holds pages of
 *             every thread.  Threads write whole pages and parts of pages,
 *             discard pages, and read their pages alone and whole groups
 *             (checking only their own pages in them): every write breaks
 *             a group that other threads' pages live in.
 *   region B  group g belongs to thread g % NT: whole-group writes (the
 *             group path), partial writes and discards inside it, whole
 *             and partial reads.
 *
 * Beside them a compactor thread compacts in a loop, and a regrouper
 * thread marks everything idle and recompresses with group=4 and group=8
 * (groups of 8 straddle two threads' groups in region B, so whole-group
 * writes there meet larger groups) and per page.  Each writer keeps the
 * model of its own pages and checks every read; at the end the whole disk
 * is checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uzram.h"

#define PAGE 4096u
#define K 4u
#define NT 4u
#define APAGES 128u
#define BPAGES 128u
#define NPAGES (APAGES + BPAGES)

#if defined(__SANITIZE_THREAD__)
#define ITERS 1500
#else
#define ITERS 20000
#endif

static struct uzram *dev;
static uint8_t model[NPAGES * PAGE];
static atomic_bool stop;
static atomic_int failures;

static int st(const char *name, const char *v)
{
    return uzram_attr_store(dev, name, v, strlen(v));
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Compressible text-like bytes. */
static void gen(uint8_t *p, size_t len, uint64_t *rs)
{
    static const char *w[] = {"alpha ", "beta ", "gamma ", "delta ", "page ", "group ", "\n"};
    uint64_t seed = next(rs);
    for (size_t i = 0; i < len; i++) {
        const char *s = w[(seed + i / 6) % 7];
        p[i] = (uint8_t)s[i % strlen(s)];
        if ((i ^ seed) % 97 == 0)
            p[i] = (uint8_t)(seed >> (i % 48));
    }
}

static void check(const uint8_t *got, uint64_t page, size_t n, const char *what, unsigned t)
{
    if (memcmp(got, model + page * PAGE, n) != 0) {
        fprintf(stderr, "thread %u: %s at page %llu differs\n", t, what, (unsigned long long)page);
        atomic_fetch_add(&failures, 1);
    }
}

static void *writer(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    uint64_t rs = 0x1234567ull * (t + 1);
    uint8_t *buf = malloc(K * PAGE);
    for (int it = 0; it < ITERS && !atomic_load(&failures); it++) {
        int op = (int)(next(&rs) % 10);
        if (next(&rs) % 2) {
            /* region A: my pages are p % NT == t */
            uint64_t p = (next(&rs) % (APAGES / NT)) * NT + t;
            if (op < 3) {
                gen(buf, PAGE, &rs);
                if (uzram_write(dev, buf, PAGE, p * PAGE) == 0)
                    memcpy(model + p * PAGE, buf, PAGE);
                else
                    atomic_fetch_add(&failures, 1);
            } else if (op < 5) {
                size_t in = next(&rs) % PAGE, n = 1 + next(&rs) % (PAGE - in);
                gen(buf, n, &rs);
                if (uzram_write(dev, buf, n, p * PAGE + in) == 0)
                    memcpy(model + p * PAGE + in, buf, n);
                else
                    atomic_fetch_add(&failures, 1);
            } else if (op < 6) {
                if (uzram_discard(dev, PAGE, p * PAGE) == 0)
                    memset(model + p * PAGE, 0, PAGE);
                else
                    atomic_fetch_add(&failures, 1);
            } else if (op < 8) {
                if (uzram_read(dev, buf, PAGE, p * PAGE) != 0)
                    atomic_fetch_add(&failures, 1);
                check(buf, p, PAGE, "page read", t);
            } else {
                uint64_t g = p / K * K;
                if (uzram_read(dev, buf, K * PAGE, g * PAGE) != 0)
                    atomic_fetch_add(&failures, 1);
                check(buf + (p - g) * PAGE, p, PAGE, "group read", t);
            }
        } else {
            /* region B: my groups are g % NT == t */
            uint64_t g = (next(&rs) % (BPAGES / K / NT)) * NT + t;
            uint64_t base = APAGES + g * K;
            if (op < 4) {
                gen(buf, K * PAGE, &rs);
                if (next(&rs) % 4 == 0)
                    memset(buf + (next(&rs) % K) * PAGE, 0, PAGE);
                if (uzram_write(dev, buf, K * PAGE, base * PAGE) == 0)
                    memcpy(model + base * PAGE, buf, K * PAGE);
                else
                    atomic_fetch_add(&failures, 1);
            } else if (op < 6) {
                size_t in = next(&rs) % (K * PAGE), n = 1 + next(&rs) % (K * PAGE - in);
                gen(buf, n, &rs);
                bool zero = next(&rs) % 4 == 0;
                int rc = zero ? uzram_write_zeroes(dev, n, base * PAGE + in)
                              : uzram_write(dev, buf, n, base * PAGE + in);
                if (rc != 0)
                    atomic_fetch_add(&failures, 1);
                else if (zero)
                    memset(model + base * PAGE + in, 0, n);
                else
                    memcpy(model + base * PAGE + in, buf, n);
            } else if (op < 8) {
                if (uzram_read(dev, buf, K * PAGE, base * PAGE) != 0)
                    atomic_fetch_add(&failures, 1);
                check(buf, base, K * PAGE, "whole group read", t);
            } else {
                size_t in = next(&rs) % (K * PAGE), n = 1 + next(&rs) % (K * PAGE - in);
                if (uzram_read(dev, buf, n, base * PAGE + in) != 0)
                    atomic_fetch_add(&failures, 1);
                if (memcmp(buf, model + base * PAGE + in, n) != 0) {
                    fprintf(stderr, "thread %u: partial group read at %llu+%zu differs\n", t,
                            (unsigned long long)base, in);
                    atomic_fetch_add(&failures, 1);
                }
            }
        }
    }
    free(buf);
    return NULL;
}

static void *compactor(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        uzram_compact(dev);
        usleep(200);
    }
    return NULL;
}

static void *regrouper(void *arg)
{
    (void)arg;
    static const char *cmds[] = {"type=idle group=4", "type=idle group=8", "type=idle",
                                 "type=idle group=2"};
    unsigned i = 0;
    while (!atomic_load(&stop)) {
        if (st("idle", "all") != 0 || st("recompress", cmds[i++ % 4]) != 0)
            atomic_fetch_add(&failures, 1);
        usleep(500);
    }
    return NULL;
}

static void test_group_threads(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = NPAGES * PAGE;
    cfg.algorithm = "lz4";
    cfg.group_pages = K;
    cfg.streams = 2;
    cfg.recomp_algorithm[0] = "zstd";
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    /* start with data everywhere, in groups */
    uint64_t rs = 99;
    gen(model, sizeof model, &rs);
    assert_int_equal(uzram_write(dev, model, sizeof model, 0), 0);

    pthread_t w[NT], c, r;
    for (unsigned t = 0; t < NT; t++)
        pthread_create(&w[t], NULL, writer, (void *)(uintptr_t)t);
    pthread_create(&c, NULL, compactor, NULL);
    pthread_create(&r, NULL, regrouper, NULL);
    for (unsigned t = 0; t < NT; t++)
        pthread_join(w[t], NULL);
    atomic_store(&stop, true);
    pthread_join(c, NULL);
    pthread_join(r, NULL);
    assert_int_equal(atomic_load(&failures), 0);

    uint8_t *got = malloc(sizeof model);
    assert_int_equal(uzram_read(dev, got, sizeof model, 0), 0);
    assert_memory_equal(got, model, sizeof model);
    free(got);
    char buf[1024];
    assert_true(uzram_attr_show(dev, "debug_stat", buf, sizeof buf) > 0);
    const char *g = strstr(buf, "group_writes");
    print_message("%s", g ? g : buf);
    struct uzram_stats s;
    uzram_get_stats(dev, &s);
    print_message("recompressed %llu\n", (unsigned long long)s.recompressed);
    /* what the race is about happened: groups written and broken by
     * partial writes, and regrouped by recompress */
    assert_non_null(g);
    unsigned long long gw = 0, gf = 0, gb = 0;
    assert_int_equal(sscanf(g, "group_writes: %llu group_fallbacks: %llu group_breaks: %llu", &gw,
                            &gf, &gb), 3);
    assert_true(gw > 0);
    assert_true(gb > 0);
    assert_true(s.recompressed > 0);
    if (uzram_check(dev) != 0)
        fail_msg("uzram_check: %s", uzram_last_error());
    uzram_destroy(dev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
