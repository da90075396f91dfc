/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_group.c - group compression (group_pages, recompress group=K),
 * checked against a model (a plain byte array of what the disk must read).
 *
 *   attr        the group_pages attribute and config: values, -EINVAL,
 *               -EBUSY once initialised, kept across reset.
 *   auto        group_pages auto: each write's groups by its offset and
 *               length (8, 4, 2 or single pages), a page written into a
 *               group, the footprint of its streams' scratch.
 *   model       random operations on a device in group mode, for every
 *               allocator x {lz4, zstd} x K in {2, 4, 8, auto}: whole-group
 *               writes, writes and reads of any range (across group
 *               boundaries too), discards and write_zeroes of any range,
 *               compaction, reset, and regrouping by recompress group=K
 *               with a secondary; after every step the whole disk is read
 *               (whole and page by page) and compared, page states, stats
 *               and the allocator's own check are verified.
 *   stats       mm_stat over group writes, breaks and discards.
 *   allocfail   every allocation of a group write and of a group break is
 *               failed in turn (uz_fault_arm): the call fails with -ENOMEM
 *               and the old content reads back intact, or it succeeds.
 *   skips       writeback and per-page recompression leave groups alone.
 *   corpus      recompress type=idle group=8 with zstd after lz4 on the
 *               real page files (UZ_CORPUS): prints the footprint reduction
 *               and checks every page.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "mem.h"
#include "slot.h"
#include "device.h"
#include "page.h"
#include "uzram.h"
#include "lib/test_files.h"

#define PAGE 4096u
#define NPAGES 67u   /* not a multiple of 8: the tail is not a whole group */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int st(struct uzram *d, const char *name, const char *v)
{
    return uzram_attr_store(d, name, v, strlen(v));
}

/* len bytes of data of a random kind: text-like (compressible), random,
 * zeros, a same-filled word, or a mix per page. */
static void gen(uint8_t *p, size_t len)
{
    static const char *words[] = {"select ", "from ", "where ", "index ", "page ", "btree ",
                                  "cell ", "0x7f3a ", "\n", "NULL "};
    int kind = (int)(rnd() % 8);
    uint64_t seed = rnd();
    for (size_t i = 0; i < len; i++) {
        int k = kind == 7 ? (int)((seed >> ((i / PAGE) % 16 * 4)) % 5) : kind;
        switch (k) {
        case 0: case 5: case 6: {
            const char *w = words[(seed + i / 5 + (i / 64) * 7) % 10];
            p[i] = (uint8_t)w[i % strlen(w)];
            if ((i * 2654435761u ^ seed) % 61 == 0)
                p[i] = (uint8_t)(seed >> (i % 56));
            break;
        }
        case 1: seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                p[i] = (uint8_t)(seed >> 56); break;
        case 2: p[i] = 0; break;
        case 3: p[i] = (uint8_t)(seed >> (8 * (i % 8))); break;
        default: p[i] = (uint8_t)(i % PAGE < 300 ? seed >> (i % 64) : 0); break;
        }
    }
}

struct t {
    struct uzram *d;
    const char *allocator, *algo;
    uint32_t k;
    uint8_t model[NPAGES * PAGE];
    uint8_t buf[NPAGES * PAGE];
};

static struct uzram *make(const char *allocator, const char *algo, uint32_t k, const char *sec,
                          uint64_t pages)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = pages * PAGE;
    cfg.allocator = allocator;
    /* groups on the write path: with dedup (on or auto) group_pages auto
     * stores single pages (test_dedup_groups) */
    cfg.dedup = "off";
    cfg.algorithm = algo;
    cfg.group_pages = k;
    cfg.streams = 2;
    cfg.recomp_algorithm[0] = sec;
    struct uzram *d = NULL;
    if (uzram_create(&cfg, &d) < 0)
        fail_msg("create: %s", uzram_last_error());
    return d;
}

/* mm_stat and the slot table agree, groups agree with their leaders, the
 * allocator's structures are sound: the store's invariant check (slot.h,
 * I1-I8), which counts shared pages too. */
static void check_stats(struct uzram *d)
{
    if (uzram_check(d) != 0)
        fail_msg("store check: %s", uzram_last_error());
    struct uzram_stats s;
    uzram_get_stats(d, &s);
    assert_true(s.mem_used_total >= s.compr_data_size - s.compr_data_size / 8 || s.compr_data_size < 65536);
}

static void check_all(struct t *t)
{
    size_t size = NPAGES * PAGE;
    assert_int_equal(uzram_read(t->d, t->buf, size, 0), 0);
    if (memcmp(t->buf, t->model, size) != 0) {
        for (size_t i = 0; i < size; i++)
            if (t->buf[i] != t->model[i])
                fail_msg("%s/%s k=%u: byte %zu (page %zu) reads %02x, model %02x", t->allocator,
                         t->algo, t->k, i, i / PAGE, t->buf[i], t->model[i]);
    }
    /* page by page: the partial-group path */
    for (uint64_t p = 0; p < NPAGES; p++) {
        uint8_t pg[PAGE];
        assert_int_equal(uzram_read(t->d, pg, PAGE, p * PAGE), 0);
        assert_memory_equal(pg, t->model + p * PAGE, PAGE);
        int ps = uzram_page_state(t->d, p * PAGE);
        if (ps == UZRAM_PAGE_ZERO) {
            static const uint8_t zero[PAGE];
            assert_memory_equal(t->model + p * PAGE, zero, PAGE);
        }
    }
    check_stats(t->d);
}

/* An offset and length inside the disk: aligned groups, page runs, or bytes. */
static void pick_range(struct t *t, uint64_t *off, size_t *len)
{
    uint64_t size = NPAGES * PAGE;
    uint64_t gb = (uint64_t)t->k * PAGE;
    switch (rnd() % 4) {
    case 0: {   /* whole groups */
        uint64_t ng = size / gb;
        uint64_t g = rnd() % ng, n = 1 + rnd() % 3;
        if (g + n > ng)
            n = ng - g;
        *off = g * gb;
        *len = (size_t)(n * gb);
        break;
    }
    case 1: {   /* pages */
        uint64_t p = rnd() % NPAGES, n = 1 + rnd() % 10;
        if (p + n > NPAGES)
            n = NPAGES - p;
        *off = p * PAGE;
        *len = (size_t)(n * PAGE);
        break;
    }
    default: {  /* bytes */
        *off = rnd() % size;
        uint64_t n = 1 + rnd() % (3 * gb);
        if (*off + n > size)
            n = size - *off;
        *len = (size_t)n;
        break;
    }
    }
}

static unsigned long long model_group_writes, model_breaks;

static void run_model(const char *allocator, const char *algo, uint32_t k, int steps)
{
    struct t *t = calloc(1, sizeof *t);
    t->allocator = allocator;
    t->algo = algo;
    t->k = k == UZRAM_GROUP_AUTO ? 8 : k;     /* auto: ranges up to 8-page groups */
    t->d = make(allocator, algo, k, "zstd", NPAGES);
    for (int step = 0; step < steps; step++) {
        uint64_t off;
        size_t len;
        pick_range(t, &off, &len);
        int op = (int)(rnd() % 16);
        switch (op) {
        case 0: case 1: case 2: case 3: case 4: case 5:   /* write */
            gen(t->buf, len);
            assert_int_equal(uzram_write(t->d, t->buf, len, off), 0);
            memcpy(t->model + off, t->buf, len);
            break;
        case 6: case 7: case 8:                           /* read */
            assert_int_equal(uzram_read(t->d, t->buf, len, off), 0);
            assert_memory_equal(t->buf, t->model + off, len);
            break;
        case 9: case 10:                                  /* discard */
            assert_int_equal(uzram_discard(t->d, len, off), 0);
            memset(t->model + off, 0, len);
            break;
        case 11:                                          /* write_zeroes */
            assert_int_equal(uzram_write_zeroes(t->d, len, off), 0);
            memset(t->model + off, 0, len);
            break;
        case 12:
            uzram_compact(t->d);
            break;
        case 13: {                                        /* regroup idle pages */
            static const char *gs[] = {"group=2", "group=4", "group=8"};
            char cmd[64];
            assert_int_equal(st(t->d, "idle", "all"), 0);
            snprintf(cmd, sizeof cmd, "type=idle %s", gs[rnd() % 3]);
            assert_int_equal(st(t->d, "recompress", cmd), 0);
            break;
        }
        case 14:                                          /* per-page recompress */
            assert_int_equal(st(t->d, "idle", "all"), 0);
            assert_int_equal(st(t->d, "recompress", "type=idle"), 0);
            break;
        default:
            if (rnd() % 4 == 0) {                         /* reset */
                assert_int_equal(st(t->d, "reset", "1"), 0);
                char ds[32];
                snprintf(ds, sizeof ds, "%u", NPAGES * PAGE);
                assert_int_equal(st(t->d, "disksize", ds), 0);
                memset(t->model, 0, sizeof t->model);
            }
            break;
        }
        check_all(t);
    }
    /* the mix above must have made and broken groups */
    char buf[512];
    assert_true(uzram_attr_show(t->d, "debug_stat", buf, sizeof buf) > 0);
    unsigned long long gw = 0, gf = 0, gbk = 0;
    const char *g = strstr(buf, "group_writes:");
    assert_non_null(g);
    assert_int_equal(sscanf(g, "group_writes: %llu group_fallbacks: %llu group_breaks: %llu", &gw,
                            &gf, &gbk), 3);
    if (k > 1) {
        model_group_writes += gw;
        model_breaks += gbk;
    }
    struct uzram_stats s;
    uzram_get_stats(t->d, &s);
    print_message("%s/%s k=%u: group writes %llu, fallbacks %llu, breaks %llu, recompressed %llu\n",
                  allocator, algo, k, gw, gf, gbk, (unsigned long long)s.recompressed);
    uzram_destroy(t->d);
    free(t);
}

static void test_model(void **state)
{
    (void)state;
    static const char *algos[] = {"lz4", "zstd"};
    static const uint32_t ks[] = {2, 4, 8, UZRAM_GROUP_AUTO};
    const struct uz_alloc_ops *a;
    for (unsigned i = 0; (a = uz_alloc_at(i)) != NULL; i++)
        for (unsigned c = 0; c < 2; c++)
            for (unsigned g = 0; g < 4; g++)
                run_model(a->name, algos[c], ks[g], 150);
    assert_true(model_group_writes > 50 && model_breaks > 50);
}

/* group mode off: the same random operations, groups only from recompress */
static void test_model_regroup_only(void **state)
{
    (void)state;
    const struct uz_alloc_ops *a;
    for (unsigned i = 0; (a = uz_alloc_at(i)) != NULL; i++)
        run_model(a->name, "lz4", 1, 200);
}

static void test_attr(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.group_pages = 3;
    struct uzram *d = NULL;
    assert_int_equal(uzram_create(&cfg, &d), -EINVAL);
    cfg.group_pages = 16;
    assert_int_equal(uzram_create(&cfg, &d), -EINVAL);
    cfg.group_pages = 0;
    assert_int_equal(uzram_create(&cfg, &d), 0);
    char buf[64];
    assert_true(uzram_attr_show(d, "group_pages", buf, sizeof buf) > 0);
    assert_string_equal(buf, "1\n");
    assert_int_equal(st(d, "group_pages", "3"), -EINVAL);
    assert_int_equal(st(d, "group_pages", "0"), -EINVAL);
    assert_int_equal(st(d, "group_pages", "x"), -EINVAL);
    assert_int_equal(st(d, "group_pages", "4\n"), 0);
    uzram_attr_show(d, "group_pages", buf, sizeof buf);
    assert_string_equal(buf, "4\n");
    assert_int_equal(st(d, "disksize", "1M"), 0);
    assert_int_equal(st(d, "group_pages", "8"), -EBUSY);
    assert_int_equal(st(d, "group_pages", "9"), -EINVAL);
    assert_int_equal(st(d, "reset", "1"), 0);
    uzram_attr_show(d, "group_pages", buf, sizeof buf);
    assert_string_equal(buf, "4\n");
    assert_int_equal(st(d, "group_pages", "8"), 0);
    assert_int_equal(st(d, "disksize", "1M"), 0);
    /* a whole-group write makes a group */
    uint8_t *p = malloc(8 * PAGE);
    memset(p, 'a', 8 * PAGE);
    for (int i = 0; i < 8; i++)
        p[i * PAGE + 100] = (uint8_t)i;
    assert_int_equal(uzram_write(d, p, 8 * PAGE, 8 * PAGE), 0);
    for (int i = 8; i < 16; i++)
        assert_true(uz_slot_peek(d->store, (uint64_t)i) & SLOT_GROUP);
    assert_int_equal(uz_slot_peek(d->store, 7) & SLOT_GROUP, 0);
    /* recompress group= needs a valid K */
    assert_int_equal(st(d, "recompress", "type=idle group=3"), -EINVAL);
    uzram_destroy(d);

    d = make("zsmalloc", "lz4", 1, "zstd", 64);
    assert_int_equal(st(d, "recompress", "type=idle group=3"), -EINVAL);
    assert_int_equal(st(d, "recompress", "type=idle group=16"), -EINVAL);
    assert_int_equal(st(d, "recompress", "type=idle group=8"), 0);
    assert_int_equal(st(d, "recompress_policy", "idle_secs=5 group=3"), -EINVAL);
    assert_int_equal(st(d, "recompress_policy", "idle_secs=5 group=4 period_ms=50"), 0);
    uzram_attr_show(d, "recompress_policy", buf, sizeof buf);
    assert_string_equal(buf, "idle_secs=5 algo=zstd max_pages=256 period_ms=50 group=4\n");
    assert_int_equal(st(d, "recompress_policy", "0"), 0);
    uzram_destroy(d);
    free(p);
}

/* The group size of page p's slot, 1 if it is not in a group. */
static uint32_t group_of(struct uzram *d, uint64_t p)
{
    uint32_t f = uz_slot_peek(d->store, p);
    return (f & SLOT_GROUP) ? slot_group_pages(f) : 1;
}

/* group_pages auto: the config value and the attribute, and each write
 * choosing its groups by its own offset and length. */
static void test_auto(void **state)
{
    (void)state;
    char buf[64];
    struct uzram *d = make("zsmalloc", "zstd", UZRAM_GROUP_AUTO, NULL, 64);
    assert_true(uzram_attr_show(d, "group_pages", buf, sizeof buf) > 0);
    assert_string_equal(buf, "auto\n");
    assert_int_equal(st(d, "group_pages", "auto"), -EBUSY);
    uint8_t *p = malloc(64 * PAGE), *r = malloc(64 * PAGE);
    for (size_t i = 0; i < 64 * PAGE; i++)
        p[i] = (uint8_t)("group auto "[i % 11] + (i / PAGE) % 7 + (i % 997 == 0 ? i / 7 : 0));
    /* single pages: a 4 KiB write, and an unaligned 8 KiB one */
    assert_int_equal(uzram_write(d, p + 3 * PAGE, PAGE, 3 * PAGE), 0);
    assert_int_equal(uzram_write(d, p + 5 * PAGE, 2 * PAGE, 5 * PAGE), 0);
    for (uint64_t i = 3; i < 7; i++)
        assert_int_equal(group_of(d, i), 1);
    /* 32 KiB aligned: one group of 8; 16 KiB aligned to 4 pages: a group
     * of 4; 12 KiB at page 9: page 9 alone, then a group of 2 */
    assert_int_equal(uzram_write(d, p + 16 * PAGE, 8 * PAGE, 16 * PAGE), 0);
    assert_int_equal(uzram_write(d, p + 28 * PAGE, 4 * PAGE, 28 * PAGE), 0);
    assert_int_equal(uzram_write(d, p + 9 * PAGE, 3 * PAGE, 9 * PAGE), 0);
    for (uint64_t i = 16; i < 24; i++)
        assert_int_equal(group_of(d, i), 8);
    for (uint64_t i = 28; i < 32; i++)
        assert_int_equal(group_of(d, i), 4);
    assert_int_equal(group_of(d, 9), 1);
    assert_int_equal(group_of(d, 10), 2);
    assert_int_equal(group_of(d, 11), 2);
    /* a large write starting mid-group: pages up to the boundary alone,
     * whole groups of 8 after, the tail by what it covers */
    assert_int_equal(uzram_write(d, p + 33 * PAGE, 30 * PAGE, 33 * PAGE), 0);
    for (uint64_t i = 33; i < 40; i++)
        assert_int_equal(group_of(d, i), i == 33 ? 1 : i < 36 ? 2 : 4);
    for (uint64_t i = 40; i < 56; i++)
        assert_int_equal(group_of(d, i), 8);
    for (uint64_t i = 56; i < 63; i++)
        assert_int_equal(group_of(d, i), i < 60 ? 4 : i < 62 ? 2 : 1);
    /* a page written into a group breaks only that group */
    p[18 * PAGE + 7] ^= 0x55;
    assert_int_equal(uzram_write(d, p + 18 * PAGE, PAGE, 18 * PAGE), 0);
    for (uint64_t i = 16; i < 24; i++)
        assert_int_equal(group_of(d, i), 1);
    assert_int_equal(group_of(d, 40), 8);
    /* everything reads back, whole and page by page */
    memset(p, 0, 3 * PAGE);
    memset(p + 4 * PAGE, 0, PAGE);
    memset(p + 7 * PAGE, 0, 2 * PAGE);
    memset(p + 12 * PAGE, 0, 4 * PAGE);
    memset(p + 24 * PAGE, 0, 4 * PAGE);
    memset(p + 32 * PAGE, 0, PAGE);
    memset(p + 63 * PAGE, 0, PAGE);
    assert_int_equal(uzram_read(d, r, 64 * PAGE, 0), 0);
    assert_memory_equal(r, p, 64 * PAGE);
    for (uint64_t i = 0; i < 64; i++) {
        assert_int_equal(uzram_read(d, r, PAGE, i * PAGE), 0);
        assert_memory_equal(r, p + i * PAGE, PAGE);
    }
    check_stats(d);
    /* auto's streams carry 8-page scratch, and the footprint says so */
    struct uzram_stats sa, s1;
    uzram_get_stats(d, &sa);
    assert_int_equal(st(d, "reset", "1"), 0);
    uzram_attr_show(d, "group_pages", buf, sizeof buf);
    assert_string_equal(buf, "auto\n");           /* kept across reset */
    assert_int_equal(st(d, "group_pages", "1"), 0);
    assert_int_equal(st(d, "disksize", "256K"), 0);
    uzram_get_stats(d, &s1);
    assert_true(sa.footprint > s1.footprint + 2 * 8 * PAGE);
    assert_int_equal(st(d, "reset", "1"), 0);
    assert_int_equal(st(d, "group_pages", "auto\n"), 0);
    assert_int_equal(st(d, "group_pages", "autox"), -EINVAL);
    uzram_attr_show(d, "group_pages", buf, sizeof buf);
    assert_string_equal(buf, "auto\n");
    uzram_destroy(d);

    /* with a backing device, auto makes no groups (they are never
     * written back) */
    char path[64];
    test_backing_file(path, sizeof path, 64);
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 64 * PAGE;
    cfg.algorithm = "zstd";
    cfg.group_pages = UZRAM_GROUP_AUTO;
    cfg.backing_dev = path;
    assert_int_equal(uzram_create(&cfg, &d), 0);
    unlink(path);
    assert_int_equal(uzram_write(d, p, 64 * PAGE, 0), 0);
    for (uint64_t i = 0; i < 64; i++)
        assert_int_equal(group_of(d, i), 1);
    assert_int_equal(uzram_read(d, r, 64 * PAGE, 0), 0);
    assert_memory_equal(r, p, 64 * PAGE);
    uzram_destroy(d);
    free(p);
    free(r);
}

static void test_stats(void **state)
{
    (void)state;
    struct uzram *d = make("zsmalloc", "zstd", 4, NULL, 64);
    uint8_t *p = malloc(16 * PAGE);
    gen(p, 16 * PAGE);
    memset(p, 'x', 16 * PAGE);
    for (int i = 0; i < 16 * (int)PAGE; i += 97)
        p[i] = (uint8_t)i;
    memset(p, 0, PAGE);   /* a zero page inside the first group */
    assert_int_equal(uzram_write(d, p, 16 * PAGE, 0), 0);
    struct uzram_stats s;
    uzram_get_stats(d, &s);
    assert_int_equal(s.orig_data_size, 16 * PAGE);
    assert_int_equal(s.same_pages, 0);
    assert_true(s.compr_data_size > 0 && s.compr_data_size < 4 * PAGE);
    /* a zero page in a group is data (it is stored in the group) */
    assert_int_equal(uzram_page_state(d, 0), UZRAM_PAGE_DATA);
    check_stats(d);
    /* discard one page: the group is broken; that page is freed */
    assert_int_equal(uzram_discard(d, PAGE, 5 * PAGE), 0);
    uzram_get_stats(d, &s);
    assert_int_equal(s.orig_data_size, 15 * PAGE);
    assert_int_equal(s.same_pages, 0);
    assert_int_equal(uz_slot_peek(d->store, 5) & SLOT_STATE, 0);
    assert_int_equal(uz_slot_peek(d->store, 4) & SLOT_GROUP, 0);
    assert_true(uz_slot_peek(d->store, 0) & SLOT_GROUP);
    assert_int_equal(uzram_page_state(d, 5 * PAGE), UZRAM_PAGE_ZERO);
    check_stats(d);
    /* discard a whole group */
    uint64_t nf = s.notify_free;
    assert_int_equal(uzram_discard(d, 4 * PAGE, 8 * PAGE), 0);
    uzram_get_stats(d, &s);
    assert_int_equal(s.orig_data_size, 11 * PAGE);
    assert_int_equal(s.notify_free, nf + 4);
    check_stats(d);
    /* the first group's zero page, after a break, is a same-filled page */
    assert_int_equal(uzram_write(d, "y", 1, 3 * PAGE), 0);
    assert_int_equal(uzram_page_state(d, 0), UZRAM_PAGE_ZERO);
    uzram_get_stats(d, &s);
    assert_int_equal(s.same_pages, 1);
    char buf[512];
    assert_true(uzram_attr_show(d, "debug_stat", buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "group_writes: 4 group_fallbacks: 0 group_breaks: 2"));
    check_stats(d);
    /* all-same and incompressible groups are stored page by page */
    memset(p, 7, 4 * PAGE);
    for (size_t i = 4 * PAGE; i < 8 * PAGE; i++)
        p[i] = (uint8_t)(rnd() >> 40);
    assert_int_equal(uzram_write(d, p, 8 * PAGE, 32 * PAGE), 0);
    assert_int_equal(uz_slot_peek(d->store, 32) & (SLOT_GROUP | SLOT_SAME), SLOT_SAME);
    assert_int_equal(uz_slot_peek(d->store, 36) & (SLOT_GROUP | SLOT_HUGE), SLOT_HUGE);
    assert_true(uzram_attr_show(d, "debug_stat", buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "group_fallbacks: 2"));
    check_stats(d);
    uint8_t *q = malloc(8 * PAGE);
    assert_int_equal(uzram_read(d, q, 8 * PAGE, 32 * PAGE), 0);
    assert_memory_equal(p, q, 8 * PAGE);
    free(q);
    free(p);
    uzram_destroy(d);
}

/* ------------------------------------------------------- allocation faults */

/* Build the starting state: groups of text at 0..4K*PAGE. */
static struct uzram *fault_start(const char *allocator, uint8_t *old, uint32_t k)
{
    struct uzram *d = make(allocator, "lz4", k, NULL, 32);
    rng = 12345;
    for (size_t i = 0; i < 32 * PAGE; i += 8 * PAGE)
        gen(old + i, 8 * PAGE);
    memset(old, 'q', 8 * PAGE);
    for (size_t i = 0; i < 8 * PAGE; i += 53)
        old[i] = (uint8_t)(i >> 3);
    assert_int_equal(uzram_write(d, old, 32 * PAGE, 0), 0);
    return d;
}

/* scenario 0: a whole-group write over a group; 1: a partial write that
 * breaks a group; 2: a discard of one page of a group. */
static int fault_scenario(struct uzram *d, int sc, uint8_t *model, uint32_t k)
{
    static uint8_t data[8 * PAGE];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)("fault sweep of groups "[i % 22] + (i % 1000 == 0));
    switch (sc) {
    case 0: {
        int rc = uzram_write(d, data, (size_t)k * PAGE, 0);
        if (rc == 0)
            memcpy(model, data, (size_t)k * PAGE);
        return rc;
    }
    case 1: {
        int rc = uzram_write(d, data, 100, PAGE + 50);
        if (rc == 0)
            memcpy(model + PAGE + 50, data, 100);
        return rc;
    }
    default: {
        int rc = uzram_discard(d, PAGE, PAGE);
        if (rc == 0)
            memset(model + PAGE, 0, PAGE);
        return rc;
    }
    }
}

static void test_allocfail(void **state)
{
    (void)state;
    static uint8_t old[32 * PAGE], model[32 * PAGE], got[32 * PAGE];
    uint64_t total_calls = 0;
    const struct uz_alloc_ops *a;
    for (unsigned i = 0; (a = uz_alloc_at(i)) != NULL; i++) {
        for (uint32_t k = 2; k <= 8; k *= 2) {
            for (int sc = 0; sc < 3; sc++) {
                struct uzram *d = fault_start(a->name, old, k);
                memcpy(model, old, sizeof model);
                uz_fault_arm(0);
                assert_int_equal(fault_scenario(d, sc, model, k), 0);
                uint64_t count = uz_fault_count();
                if (count == 0)
                    print_message("%s k=%u scenario %d: no fallible call\n", a->name, k, sc);
                total_calls += count;
                uzram_destroy(d);
                uint64_t fired = 0;
                for (uint64_t n = 1; n <= count; n++) {
                    d = fault_start(a->name, old, k);
                    memcpy(model, old, sizeof model);
                    uz_fault_arm(n);
                    int rc = fault_scenario(d, sc, model, k);
                    bool f = uz_fault_fired();
                    uz_fault_arm(0);
                    if (rc != 0) {
                        assert_int_equal(rc, -ENOMEM);
                        assert_true(f);
                    }
                    fired += f;
                    assert_int_equal(uzram_read(d, got, sizeof got, 0), 0);
                    if (memcmp(got, model, sizeof got) != 0)
                        fail_msg("%s k=%u scenario %d fault %llu: content changed (rc %d)", a->name,
                                 k, sc, (unsigned long long)n, rc);
                    check_stats(d);
                    uzram_destroy(d);
                }
                assert_int_equal(fired, count);
            }
        }
    }
    print_message("allocfail: %llu faults injected\n", (unsigned long long)total_calls);
    assert_true(total_calls > 20);
}

/* ------------------------------------------------- writeback and recompress */

static void test_skips(void **state)
{
    (void)state;
    char path[64];
    test_backing_file(path, sizeof path, 64);
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 64 * PAGE;
    cfg.group_pages = 8;
    cfg.backing_dev = path;
    cfg.recomp_algorithm[0] = "zstd";
    struct uzram *d = NULL;
    assert_int_equal(uzram_create(&cfg, &d), 0);
    uint8_t *p = malloc(64 * PAGE), *q = malloc(64 * PAGE);
    rng = 77;
    gen(p, 32 * PAGE);
    memset(p, 'z', 32 * PAGE);
    for (size_t i = 0; i < 32 * PAGE; i += 31)
        p[i] = (uint8_t)i;
    gen(p + 32 * PAGE, 32 * PAGE);
    assert_int_equal(uzram_write(d, p, 32 * PAGE, 0), 0);           /* 4 groups */
    for (uint64_t i = 32; i < 64; i++)                               /* pages */
        assert_int_equal(uzram_write(d, p + i * PAGE, PAGE, i * PAGE), 0);
    assert_int_equal(st(d, "idle", "all"), 0);
    for (uint64_t i = 0; i < 32; i++)
        assert_true(uz_slot_peek(d->store, i) & SLOT_IDLE);
    /* per-page recompression takes groups as units: each of the four is
     * recompressed with the secondary or flagged, never passed by */
    assert_int_equal(st(d, "recompress", "type=idle"), 0);
    char dbg[1024];
    assert_true(uzram_attr_show(d, "debug_stat", dbg, sizeof dbg) > 0);
    unsigned long long rg = 0;
    const char *at = strstr(dbg, "recomp_groups: ");
    assert_non_null(at);
    rg = strtoull(at + 15, NULL, 10);
    unsigned long long flagged = 0;
    for (uint64_t g = 0; g < 32; g += 8) {
        uint32_t f = uz_slot_peek(d->store, g);
        assert_true(f & SLOT_GROUP);
        if (slot_prio(f) == 1)
            for (uint64_t i = g; i < g + 8; i++)
                assert_int_equal(slot_prio(uz_slot_peek(d->store, i)), 1);
        else
            flagged += (f & SLOT_INCOMP) != 0;
    }
    assert_int_equal(rg + flagged, 4);
    assert_int_equal(st(d, "writeback", "idle"), 0);
    for (uint64_t i = 0; i < 32; i++)
        assert_true(uz_slot_peek(d->store, i) & SLOT_GROUP);
    assert_int_equal(st(d, "writeback", "page_indexes=0-63"), 0);
    for (uint64_t i = 0; i < 32; i++)
        assert_true(uz_slot_peek(d->store, i) & SLOT_GROUP);
    assert_int_equal(uzram_read(d, q, 64 * PAGE, 0), 0);
    assert_memory_equal(p, q, 64 * PAGE);
    check_stats(d);
    uzram_destroy(d);
    unlink(path);
    free(p);
    free(q);
}

/* ------------------------------------------------------------ real pages */

static void corpus_one(const char *name)
{
    uint64_t pages;
    char file[64];
    snprintf(file, sizeof file, "%s.pages.zst", name);
    uint8_t *data = test_corpus_load(file, 0, &pages);
    if (!data) {
        print_message("corpus %s: not found (set UZ_CORPUS to ../shared/corpus): skipped\n", name);
        return;
    }
    struct uzram *d = make("zsmalloc", "lz4", 1, "zstd", pages);
    assert_int_equal(uzram_write(d, data, pages * PAGE, 0), 0);
    uzram_compact(d);
    struct uzram_stats s0, s1, s2;
    uzram_get_stats(d, &s0);
    assert_int_equal(st(d, "idle", "all"), 0);
    assert_int_equal(st(d, "recompress", "type=idle group=8"), 0);
    uzram_compact(d);
    uzram_get_stats(d, &s1);
    /* then the pages left out (runs with a page that did not qualify or
     * did not gain) one by one */
    assert_int_equal(st(d, "recompress", "type=idle"), 0);
    uzram_compact(d);
    uzram_get_stats(d, &s2);
    double r1 = 1.0 - (double)s1.footprint / (double)s0.footprint;
    double r2 = 1.0 - (double)s2.footprint / (double)s0.footprint;
    print_message("corpus %s: %llu pages, lz4 footprint %.1f MiB -> zstd group=8 %.1f MiB "
                  "(-%.1f%%), + per page %.1f MiB (-%.1f%%); %llu pages grouped\n",
                  name, (unsigned long long)pages, s0.footprint / 1048576.0,
                  s1.footprint / 1048576.0, 100 * r1, s2.footprint / 1048576.0, 100 * r2,
                  (unsigned long long)s1.recompressed);
    /* for comparison: the same pages recompressed one by one */
    struct uzram *d1 = make("zsmalloc", "lz4", 1, "zstd", pages);
    assert_int_equal(uzram_write(d1, data, pages * PAGE, 0), 0);
    assert_int_equal(st(d1, "idle", "all"), 0);
    assert_int_equal(st(d1, "recompress", "type=idle"), 0);
    uzram_compact(d1);
    struct uzram_stats sp;
    uzram_get_stats(d1, &sp);
    uzram_destroy(d1);
    print_message("corpus %s: per-page recompress alone: %.1f MiB (-%.1f%%)\n", name,
                  sp.footprint / 1048576.0, 100 * (1.0 - (double)sp.footprint / (double)s0.footprint));
    uint8_t *got = malloc(pages * PAGE);
    assert_int_equal(uzram_read(d, got, pages * PAGE, 0), 0);
    assert_memory_equal(got, data, pages * PAGE);
    for (uint64_t i = 0; i < pages; i += 7) {   /* partial-group reads */
        assert_int_equal(uzram_read(d, got, PAGE, i * PAGE), 0);
        assert_memory_equal(got, data + i * PAGE, PAGE);
    }
    check_stats(d);
    assert_true(r1 >= 0.25);
    free(got);
    uzram_destroy(d);
    free(data);
}

static void test_corpus(void **state)
{
    (void)state;
    corpus_one("sqlite");
    corpus_one("perl");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attr),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_model_regroup_only),
        cmocka_unit_test(test_allocfail),
        cmocka_unit_test(test_skips),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
