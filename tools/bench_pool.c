/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench_pool.c - `uzram bench-pool`: what a clone costs, measured.
 *
 *   uzram bench-pool [--size SIZE] [--algorithm A] [--write-pct P] [--clones N]
 *                    [--seed S] [--sequential] PAGEFILE...
 *
 * Fills device 0 of a new pool with SIZE (default 1G) of real pages: the
 * page files' pages in turn, as many rounds as SIZE needs, each round's
 * copy of a page after the first marked in its last 8 bytes with the round
 * number so that no page repeats another (a repeat would be deduplicated,
 * which is not what is measured here).  Then, every figure from the library's own
 * counters (uzram_pool_get_stats):
 *
 *   1. clone: the time uzram_clone takes (CLOCK_MONOTONIC around the
 *      call) and the pool's footprint after it, against the source's;
 *   2. write P% (default 10) of the clone's pages, at seeded random
 *      places (--sequential: the first P%), with pages of the files not
 *      used there before: the pool's
 *      growth against the compressed size of what was written (the
 *      clone's own compr_data_size: the bytes only it refers to);
 *   3. every page of the source is read back and compared with what was
 *      written to it, and every page of the clone with what it must hold;
 *   4. a new pool with device 0 filled alike and N (default 7) clones of
 *      it, every page of every device read back and compared: the pool's
 *      footprint against device 0's alone.
 *
 * Prints one JSON object.  Exit 0, or 1 if any page read back differs
 * (every figure is then void), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "pagefile.h"
#include "uzram.h"

#define PAGE UZRAM_PAGE_SIZE

static uint8_t *pages;
static uint64_t npages;

/* Page i of the fill: file page i mod npages, marked with its round
 * (the first round, salt 0, is the file's pages as they are). */
static void page_at(uint8_t *out, uint64_t i, uint64_t salt)
{
    memcpy(out, pages + (i % npages) * PAGE, PAGE);
    uint64_t mark = i / npages + salt;
    if (mark)
        memcpy(out + PAGE - 8, &mark, 8);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(const char *what)
{
    fprintf(stderr, "uzram bench-pool: %s: %s\n", what, uzram_last_error());
    return 1;
}

static struct uzram_pool *new_pool(const char *algo)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.algorithm = algo;
    cfg.dedup = "0";   /* the fill has no repeats: measure clones alone */
    struct uzram_pool *p;
    return uzram_pool_create(&cfg, &p) == 0 ? p : NULL;
}

/* Device 0 of p, sized and filled with n pages.  NULL on error. */
static struct uzram *filled(struct uzram_pool *p, uint64_t n)
{
    struct uzram *d;
    if (uzram_pool_add(p, &d) < 0)
        return NULL;
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)(n * PAGE));
    if (uzram_attr_store(d, "disksize", v, strlen(v)) < 0)
        return NULL;
    static uint8_t buf[256 * PAGE];
    for (uint64_t i = 0; i < n; i += 256) {
        uint64_t m = n - i < 256 ? n - i : 256;
        for (uint64_t j = 0; j < m; j++)
            page_at(buf + j * PAGE, i + j, 0);
        if (uzram_write(d, buf, m * PAGE, i * PAGE) < 0)
            return NULL;
    }
    return d;
}

/* Compare every page of d with what it must hold: the fill, except pages
 * in written[] (non-NULL), which hold page_at(i, salt).  Returns the
 * number of pages that differ. */
static uint64_t verify(struct uzram *d, uint64_t n, const uint8_t *written, uint64_t salt)
{
    static uint8_t buf[256 * PAGE];
    uint8_t want[PAGE];
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i += 256) {
        uint64_t m = n - i < 256 ? n - i : 256;
        if (uzram_read(d, buf, m * PAGE, i * PAGE) < 0)
            return n;
        for (uint64_t j = 0; j < m; j++) {
            page_at(want, i + j, written && written[i + j] ? salt : 0);
            bad += memcmp(buf + j * PAGE, want, PAGE) != 0;
        }
    }
    return bad;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: uzram bench-pool [--size SIZE] [--algorithm A] [--write-pct P] "
               "[--clones N] [--seed S] [--sequential] PAGEFILE...\n"
               "  what a clone of a device holding SIZE (default 1G) of the files' pages\n"
               "  costs: clone time, footprint, growth on writing P%% (default 10) of it,\n"
               "  and N (default 7) clones in one pool; every page verified; JSON out.\n"
               "  The P%% written are seeded random pages, or with --sequential the first\n");
}

int cmd_bench_pool(int argc, char **argv)
{
    uint64_t size = 1ull << 30, pct = 10, nclones = 7, seed = 1;
    bool sequential = false;
    const char *algo = "lz4";
    static const struct option opts[] = {
        {"size", required_argument, 0, 's'},    {"algorithm", required_argument, 0, 'a'},
        {"write-pct", required_argument, 0, 'w'}, {"clones", required_argument, 0, 'c'},
        {"seed", required_argument, 0, 'S'},    {"sequential", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            if (uzram_parse_size(optarg, &size) < 0 || size < PAGE) {
                fprintf(stderr, "uzram bench-pool: --size: '%s' is not a size\n", optarg);
                return 2;
            }
            break;
        case 'a': algo = optarg; break;
        case 'w': pct = strtoull(optarg, NULL, 10); break;
        case 'c': nclones = strtoull(optarg, NULL, 10); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'q': sequential = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc || pct > 100 || nclones < 1 || nclones > 63) {
        usage(stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        uint8_t *d;
        uint64_t n;
        char msg[256];
        if (pagefile_load(argv[i], 0, &d, &n, msg, sizeof msg) < 0) {
            fprintf(stderr, "uzram bench-pool: %s: %s\n", argv[i], msg);
            return 2;
        }
        uint8_t *all = realloc(pages, (npages + n) * PAGE);
        if (!all) {
            fprintf(stderr, "uzram bench-pool: out of memory\n");
            return 2;
        }
        pages = all;
        memcpy(pages + npages * PAGE, d, n * PAGE);
        npages += n;
        free(d);
    }
    uint64_t n = size / PAGE;

    /* 1. one clone */
    struct uzram_pool *p = new_pool(algo);
    if (!p)
        return fail("pool");
    struct uzram *src = filled(p, n);
    if (!src)
        return fail("fill");
    struct uzram_pool_stats s0, s1, s2;
    uzram_pool_get_stats(p, &s0);
    struct uzram *c;
    double t0 = now_ms();
    if (uzram_clone(src, &c) < 0)
        return fail("clone");
    double clone_ms = now_ms() - t0;
    uzram_pool_get_stats(p, &s1);
    struct uzram *c2;
    t0 = now_ms();
    if (uzram_clone(src, &c2) < 0)   /* the source's pages are shared already */
        return fail("clone");
    double clone2_ms = now_ms() - t0;
    uzram_pool_remove(p, uzram_device_id(c2));

    /* 2. write pct% of the clone at seeded random pages */
    uint8_t *written = calloc(n, 1);
    if (!written)
        return fail("memory");
    uint64_t todo = n * pct / 100, done = 0, x = seed * 0x9e3779b97f4a7c15ull + 1;
    const uint64_t salt = 1ull << 40;   /* marks no fill page carries */
    uint8_t buf[PAGE];
    while (done < todo) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t i = sequential ? done : x % n;
        if (written[i])
            continue;
        written[i] = 1;
        page_at(buf, i, salt);
        if (uzram_write(c, buf, PAGE, i * PAGE) < 0)
            return fail("write to the clone");
        done++;
    }
    uzram_pool_get_stats(p, &s2);
    struct uzram_stats cs;
    uzram_get_stats(c, &cs);

    /* 3. every page */
    uint64_t bad = verify(src, n, NULL, 0) + verify(c, n, written, salt);
    if (uzram_check(src) < 0)
        return fail("check");
    uzram_pool_remove(p, uzram_device_id(c));
    uzram_pool_remove(p, uzram_device_id(src));
    uzram_pool_destroy(p);

    /* 4. N clones of one device */
    p = new_pool(algo);
    if (!p)
        return fail("pool");
    src = filled(p, n);
    if (!src)
        return fail("fill");
    struct uzram_pool_stats one, all;
    uzram_pool_get_stats(p, &one);
    double many_ms = 0;
    for (uint64_t k = 0; k < nclones; k++) {
        t0 = now_ms();
        if (uzram_clone(src, &c) < 0)
            return fail("clone");
        double ms = now_ms() - t0;
        if (ms > many_ms)
            many_ms = ms;
    }
    uzram_pool_get_stats(p, &all);
    for (int id = uzram_pool_next(p, -1); id >= 0; id = uzram_pool_next(p, id)) {
        struct uzram *d = uzram_pool_get(p, id);
        bad += verify(d, n, NULL, 0);
        uzram_pool_put(d);
    }
    if (uzram_check(src) < 0)
        return fail("check");
    for (int id = uzram_pool_next(p, -1); id >= 0; id = uzram_pool_next(p, -1))
        uzram_pool_remove(p, id);
    uzram_pool_destroy(p);

    double growth = (double)(s2.footprint - s1.footprint);
    printf("{\"pages\": %llu, \"algorithm\": \"%s\", \"source_footprint_bytes\": %llu, "
           "\"source_compr_bytes\": %llu, \"clone_ms\": %.3f, \"clone_again_ms\": %.3f, "
           "\"clone_footprint_bytes\": %llu, \"clone_cost_pct\": %.3f, "
           "\"write\": \"%s\", \"written_pages\": %llu, \"written_compr_bytes\": %llu, "
           "\"growth_bytes\": %.0f, \"growth_over_written\": %.3f, "
           "\"devices\": %llu, \"one_footprint_bytes\": %llu, \"all_footprint_bytes\": %llu, "
           "\"all_over_one\": %.4f, \"clone_max_ms\": %.3f, \"pages_differing\": %llu}\n",
           (unsigned long long)n, algo, (unsigned long long)s0.footprint,
           (unsigned long long)s0.compr_data_size, clone_ms, clone2_ms,
           (unsigned long long)(s1.footprint - s0.footprint),
           100.0 * (double)(s1.footprint - s0.footprint) / (double)s0.footprint,
           sequential ? "sequential" : "random", (unsigned long long)todo,
           (unsigned long long)cs.compr_data_size, growth,
           cs.compr_data_size ? growth / (double)cs.compr_data_size : 0.0,
           (unsigned long long)(nclones + 1), (unsigned long long)one.footprint,
           (unsigned long long)all.footprint, (double)all.footprint / (double)one.footprint,
           many_ms, (unsigned long long)bad);
    free(written);
    free(pages);
    if (bad) {
        fprintf(stderr, "uzram bench-pool: %llu pages read back wrong\n", (unsigned long long)bad);
        return 1;
    }
    return 0;
}
