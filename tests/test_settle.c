/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_settle.c - settling (recompress.c, "Settling") and how it meets
 * the other memory-saving parts: groups with shared pages on the write
 * path, recompression of groups, the default policy by itself, clones.
 * Every test reads every page back against its model and ends with
 * uzram_check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "slot.h"
#include "recompress.h"
#include "uzram.h"
#include "lib/test_device.h"

#define PAGE 4096u
#define NPAGES 256u

static uint8_t model[NPAGES * PAGE];

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Page p of a heap-like pattern: words of a small vocabulary with numbers,
 * which lz4 compresses to about a half and zstd on groups further; every
 * 16th page random (incompressible), every 32nd zero. */
static void make_page(uint8_t *pg, uint64_t p)
{
    static const char *words[] = {"alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ",
                                  "eta ", "theta ", "iota ", "kappa ", "lambda ", "mu "};
    if (p % 32 == 31) {
        memset(pg, 0, PAGE);
        return;
    }
    if (p % 16 == 7) {
        for (size_t i = 0; i < PAGE; i++)
            pg[i] = (uint8_t)mix(p * PAGE + i);
        return;
    }
    size_t o = 0;
    uint64_t x = p;
    while (o < PAGE) {
        x = mix(x);
        const char *w = words[x % 12];
        for (size_t k = 0; w[k] && o < PAGE; k++)
            pg[o++] = (uint8_t)w[k];
        if (o + 8 < PAGE && x % 3 == 0)
            o += (size_t)snprintf((char *)pg + o, 8, "%u ", (unsigned)(x % 1000));
    }
}

/* Every page, whole and one in three alone (test_device.h). */
static void verify(struct uzram *d)
{
    test_verify(d, model, NPAGES, 0, 3);
}

static int st(struct uzram *d, const char *name, const char *v)
{
    int rc = uzram_attr_store(d, name, v, strlen(v));
    if (rc < 0)
        print_message("store %s=%s: %s\n", name, v, uzram_last_error());
    return rc;
}

/* The state of device d's page p in its store (a pool device is a range
 * of its pool's store). */
static uint32_t peek(struct uzram *d, uint64_t p)
{
    return uz_slot_peek(d->store, d->base + p);
}

static struct uzram *make_sized(uint32_t group_pages, const char *dedup, uint64_t npages)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);   /* the defaults: a zstd secondary, settling */
    cfg.disksize = npages * PAGE;
    cfg.group_pages = group_pages;
    cfg.dedup = dedup;
    cfg.streams = 2;
    struct uzram *d = NULL;
    if (uzram_create(&cfg, &d) != 0)
        fail_msg("create: %s", uzram_last_error());
    return d;
}

static struct uzram *make(uint32_t group_pages, const char *dedup)
{
    return make_sized(group_pages, dedup, NPAGES);
}

static void fill(struct uzram *d)
{
    for (uint64_t p = 0; p < NPAGES; p++)
        make_page(model + p * PAGE, p);
    /* the second half repeats the first's pages 0..63 in places */
    for (uint64_t p = 128; p < 192; p += 2)
        memcpy(model + p * PAGE, model + (p - 128) * PAGE, PAGE);
    assert_int_equal(uzram_write(d, model, sizeof model, 0), 0);
}

static uint64_t mem_used(struct uzram *d)
{
    struct uzram_stats s;
    uzram_get_stats(d, &s);
    return s.mem_used_total;
}

/* The defaults: settling is on, with zstd as the secondary. */
static void test_defaults(void **state)
{
    (void)state;
    struct uzram *d = make(0, NULL);
    char buf[256];
    assert_true(uzram_attr_show(d, "recompress_policy", buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "settle idle_secs=120 algo=zstd"));
    assert_non_null(strstr(buf, "cpu=5"));
    assert_true(uzram_attr_show(d, "algorithm_params", buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "priority=1 algo=zstd level=6"));
    /* one setting turns it off, and bad ones are refused */
    assert_int_equal(st(d, "recompress_policy", "off"), 0);
    assert_true(uzram_attr_show(d, "recompress_policy", buf, sizeof buf) > 0);
    assert_string_equal(buf, "0\n");
    assert_int_equal(st(d, "recompress_policy", "settle cpu=101"), -EINVAL);
    assert_int_equal(st(d, "recompress_policy", "settle group=8"), -EINVAL);
    assert_int_equal(st(d, "recompress_policy", "settle idle_secs=30 cpu=10"), 0);
    assert_true(uzram_attr_show(d, "recompress_policy", buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "idle_secs=30"));
    assert_non_null(strstr(buf, "cpu=10"));
    uzram_destroy(d);

    /* with no secondary at all, the default leaves settling off */
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = NPAGES * PAGE;
    cfg.recomp_algorithm[0] = NULL;
    assert_int_equal(uzram_create(&cfg, &d), 0);
    assert_true(uzram_attr_show(d, "recompress_policy", buf, sizeof buf) > 0);
    assert_string_equal(buf, "0\n");
    assert_int_equal(st(d, "recompress_policy", "settle"), -EINVAL);
    uzram_destroy(d);
}

/* group_pages 8 with dedup on: a whole-group write looks its pages up
 * first; the pages stored already become references, the rest stay in
 * groups.  Then settling keeps the shared pages shared. */
static void test_groups_with_dedup(void **state)
{
    (void)state;
    struct uzram *d = make(8, "on");
    for (uint64_t p = 0; p < NPAGES; p++)
        make_page(model + p * PAGE, p);
    for (uint64_t p = 128; p < 192; p += 2)
        memcpy(model + p * PAGE, model + (p - 128) * PAGE, PAGE);
    /* the first half page by page (each page indexed), the second half in
     * one write of whole groups, whose even pages in 128..190 repeat pages
     * of the first */
    for (uint64_t p = 0; p < 128; p++)
        assert_int_equal(uzram_write(d, model + p * PAGE, PAGE, p * PAGE), 0);
    assert_int_equal(uzram_write(d, model + 128 * PAGE, 128 * PAGE, 128 * PAGE), 0);
    struct uzram_stats s;
    uzram_get_stats(d, &s);
    assert_true(s.dedup_pages >= 32);
    for (uint64_t p = 128; p < 192; p += 2)
        if (!(uz_slot_peek(d->store, p) & SLOT_SHARED))
            fail_msg("page %llu repeats page %llu but is not shared", (unsigned long long)p,
                     (unsigned long long)(p - 128));
    /* the rest of the second half is still grouped */
    for (uint64_t p = 192; p < NPAGES; p++)
        assert_true(uz_slot_peek(d->store, p) & SLOT_GROUP);
    verify(d);
    uint64_t before = mem_used(d);
    assert_int_equal(st(d, "recompress", "settle"), 0);
    uint64_t after = mem_used(d);
    uzram_get_stats(d, &s);
    assert_true(s.dedup_pages >= 32);   /* still shared */
    assert_true(after < before);
    assert_true(debug_stat(d, "settle_pages") > 0);
    verify(d);
    uzram_destroy(d);
}

/* group_pages auto with dedup auto (the mount's defaults): single pages on
 * the write path, every one of them found by the index; settling makes the
 * groups. */
static void test_auto_then_settle(void **state)
{
    (void)state;
    struct uzram *d = make(UZRAM_GROUP_AUTO, "on");
    fill(d);
    for (uint64_t p = 0; p < NPAGES; p++)
        assert_int_equal(uz_slot_peek(d->store, p) & SLOT_GROUP, 0);
    struct uzram_stats s0, s1;
    uzram_get_stats(d, &s0);
    assert_true(s0.dedup_pages >= 30);
    assert_int_equal(st(d, "compact", "1"), 0);
    uint64_t before = mem_used(d);
    assert_int_equal(st(d, "recompress", "settle"), 0);
    uzram_compact(d);
    uzram_get_stats(d, &s1);
    assert_int_equal(s1.dedup_pages, s0.dedup_pages);
    /* settling regrouped: aligned runs of own pages are groups of the
     * secondary now, and every page it left single is the secondary's or
     * flagged incompressible */
    uint64_t grouped = 0;
    for (uint64_t p = 0; p < NPAGES; p++) {
        uint32_t f = uz_slot_peek(d->store, p);
        if (f & SLOT_GROUP) {
            grouped++;
            assert_int_equal(slot_prio(f), 1);
        } else if (f & SLOT_OBJ) {
            assert_true(slot_prio(f) == 1 || (f & SLOT_INCOMP));
        }
    }
    assert_true(grouped >= NPAGES / 4);
    assert_true(debug_stat(d, "settle_groups") > 0);
    /* at least a quarter less memory on these pages */
    assert_true(s1.mem_used_total * 4 <= before * 3);
    verify(d);
    /* a settled window is not settled again until written */
    uint64_t sp = debug_stat(d, "settle_pages");
    assert_int_equal(st(d, "recompress", "settle"), 0);
    assert_int_equal(debug_stat(d, "settle_pages"), sp);
    /* a page that turns hot again: a write breaks its group, and the
     * group's other pages read back as they were */
    make_page(model + 9 * PAGE, 9999);
    assert_int_equal(uzram_write(d, model + 9 * PAGE, PAGE, 9 * PAGE), 0);
    assert_int_equal(uz_slot_peek(d->store, 9) & SLOT_GROUP, 0);
    verify(d);
    uzram_destroy(d);
}

/* recompress type=idle (as zram users run it) settles idle pages, groups
 * included; recompress of groups made by the primary recompresses them as
 * units. */
static void test_recompress_idle(void **state)
{
    (void)state;
    struct uzram *d = make(8, "off");
    fill(d);
    uint64_t gw = debug_stat(d, "group_writes");
    assert_true(gw > 0);
    assert_int_equal(st(d, "idle", "all"), 0);
    uint64_t before = mem_used(d);
    assert_int_equal(st(d, "recompress", "type=idle"), 0);
    assert_true(debug_stat(d, "recomp_groups") > 0);
    uzram_compact(d);
    assert_true(mem_used(d) < before);
    for (uint64_t p = 0; p < NPAGES; p += 8) {
        uint32_t f = uz_slot_peek(d->store, p);
        if (f & SLOT_GROUP)
            assert_true(slot_prio(f) == 1 || (f & SLOT_INCOMP));
    }
    verify(d);
    uzram_destroy(d);
}

/* The default policy by itself (idle_secs shortened): a written device
 * settles with nobody asking, within the policy's CPU bound. */
static void test_policy_by_itself(void **state)
{
    (void)state;
    struct uzram *d = make(UZRAM_GROUP_AUTO, NULL);
    assert_int_equal(st(d, "recompress_policy", "settle idle_secs=1 cpu=50"), 0);
    fill(d);
    uint64_t before = mem_used(d);
    /* wait for the condition: every window settled (10 s at most) */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t want = NPAGES - NPAGES / 32;   /* all but the zero pages */
    for (;;) {
        if (debug_stat(d, "settle_pages") >= want * 3 / 4)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("the policy settled %llu pages in 10 s, want %llu",
                     debug_stat(d, "settle_pages"), (unsigned long long)want * 3 / 4);
        usleep(20000);
    }
    assert_true(debug_stat(d, "settle_groups") > 0);
    assert_int_equal(st(d, "recompress_policy", "off"), 0);
    uzram_compact(d);
    assert_true(mem_used(d) < before);
    verify(d);
    uzram_destroy(d);
}

/* A device whose size is not a multiple of 8 pages (an NBD export of a
 * file's size): the policy's passes reach the tail while the pages are
 * still young, and must wrap to settle them once they are idle, not stay
 * at the tail, where no whole window is left. */
static void test_policy_odd_size(void **state)
{
    (void)state;
    const uint64_t n = NPAGES - 3;
    struct uzram *d = make_sized(UZRAM_GROUP_AUTO, NULL, n);
    assert_int_equal(st(d, "recompress_policy", "settle idle_secs=2 cpu=50"), 0);
    for (uint64_t p = 0; p < NPAGES; p++)
        make_page(model + p * PAGE, p);
    assert_int_equal(uzram_write(d, model, n * PAGE, 0), 0);
    uint64_t want = (n - n / 32) / 8 * 8 * 3 / 4;   /* most whole windows, zero pages aside */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (debug_stat(d, "settle_pages") < want) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 15)
            fail_msg("a device of %llu pages: the policy settled %llu pages in 15 s, want %llu",
                     (unsigned long long)n, debug_stat(d, "settle_pages"),
                     (unsigned long long)want);
        usleep(20000);
    }
    assert_int_equal(st(d, "recompress_policy", "off"), 0);
    uint8_t pg[PAGE];
    for (uint64_t p = 0; p < n; p++) {
        assert_int_equal(uzram_read(d, pg, PAGE, p * PAGE), 0);
        assert_memory_equal(pg, model + p * PAGE, PAGE);
    }
    uzram_destroy(d);

    /* zram's form with groups (group=K) wraps from the tail too */
    d = make_sized(1, "0", n);
    assert_int_equal(st(d, "recompress_policy", "idle_secs=2 group=4"), 0);
    assert_int_equal(uzram_write(d, model, n * PAGE, 0), 0);
    want = n / 4 * 4 / 2;   /* pages of half the whole groups of 4 */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (debug_stat(d, "recompressed") < want) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 15)
            fail_msg("group=4: the policy grouped %llu pages in 15 s, want %llu",
                     debug_stat(d, "recompressed"), (unsigned long long)want);
        usleep(20000);
    }
    assert_int_equal(st(d, "recompress_policy", "off"), 0);
    for (uint64_t p = 0; p < n; p++) {
        assert_int_equal(uzram_read(d, pg, PAGE, p * PAGE), 0);
        assert_memory_equal(pg, model + p * PAGE, PAGE);
    }
    uzram_destroy(d);
}

/* The secondary's streams: none before the first recompression, sized
 * for groups while one runs, at rest (decoders: zstd without its
 * compression workspace) once it is over, by an attribute's whole pass or
 * by the policy's idle pass; settled pages read back through them, and a
 * later recompression sizes them again. */
static void test_streams_at_rest(void **state)
{
    (void)state;
    struct uzram *d = make(UZRAM_GROUP_AUTO, NULL);
    assert_int_equal(st(d, "recompress_policy", "off"), 0);
    fill(d);
    assert_int_equal(uz_secondaries_bytes(d->store), 0);
    struct uzram_stats s0;
    uzram_get_stats(d, &s0);
    assert_int_equal(st(d, "recompress", "settle"), 0);
    assert_true(debug_stat(d, "settle_pages") > 0);
    uint64_t rest = uz_secondaries_bytes(d->store);
    assert_true(rest > 0);
    assert_false(atomic_load(&d->store->recomp_ready[0]));
    /* two streams of zstd level 6: a group's workspace is over 500 KiB
     * each, a decoder with its scratch under 300 KiB */
    assert_true(rest < 2 * 300 * 1024);
    verify(d);

    /* written again, settled by the policy: at rest once a pass finds
     * nothing left (10 s at most) */
    for (uint64_t p = 0; p < NPAGES; p += 2)
        make_page(model + p * PAGE, p + 1000);
    assert_int_equal(uzram_write(d, model, sizeof model, 0), 0);
    unsigned long long before = debug_stat(d, "settle_pages");
    assert_int_equal(st(d, "recompress_policy", "settle idle_secs=1 cpu=50"), 0);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (debug_stat(d, "settle_pages") > before && !atomic_load(&d->store->recomp_ready[0]))
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("not settled and at rest in 10 s: %llu pages settled, ready %d",
                     debug_stat(d, "settle_pages") - before, (int)atomic_load(&d->store->recomp_ready[0]));
        usleep(20000);
    }
    assert_int_equal(st(d, "recompress_policy", "off"), 0);
    assert_true(uz_secondaries_bytes(d->store) < 2 * 300 * 1024);
    verify(d);
    uzram_destroy(d);
}

/* A source that clones read through is settled once for all of them: its
 * windows are regrouped where no clone has a page of its own (the window
 * of the page a clone wrote keeps its layout, P4), and every device reads
 * what it was written, also after the clones write into a regrouped
 * window (which gives them slots of their own). */
static void test_clones(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.algorithm = "lz4";
    struct uzram_pool *pool;
    assert_int_equal(uzram_pool_create(&cfg, &pool), 0);
    struct uzram *src;
    assert_int_equal(uzram_pool_add(pool, &src), 0);
    char v[32];
    snprintf(v, sizeof v, "%u", NPAGES * PAGE);
    assert_int_equal(st(src, "disksize", v), 0);
    fill(src);
    struct uzram *c[3];
    for (int i = 0; i < 3; i++)
        if (uzram_clone(src, &c[i]) != 0)
            fail_msg("clone: %s", uzram_last_error());
    /* one clone writes one page of its own */
    static uint8_t mine[PAGE];
    make_page(mine, 4242);
    assert_int_equal(uzram_write(c[0], mine, PAGE, 5 * PAGE), 0);
    uint64_t before = mem_used(src);
    assert_int_equal(st(src, "recompress", "settle"), 0);
    /* the window of page 5 (pages 0-7) keeps its layout */
    for (uint64_t p = 0; p < 8; p++)
        assert_int_equal(peek(src, p) & SLOT_GROUP, 0);
    uint64_t grouped = 0;
    for (uint64_t p = 8; p < NPAGES; p++)
        grouped += (peek(src, p) & SLOT_GROUP) != 0;
    assert_true(grouped >= NPAGES / 4);
    assert_true(debug_stat(src, "settle_pages") > 0);
    assert_true(debug_stat(src, "settle_groups") > 0);
    uzram_compact(src);
    assert_true(mem_used(src) < before);
    for (int i = 0; i < 3; i++)
        assert_int_equal(uzram_check(c[i]), 0);
    assert_int_equal(uzram_check(src), 0);
    verify(src);
    verify(c[1]);
    verify(c[2]);
    uint8_t buf[PAGE];
    assert_int_equal(uzram_read(c[0], buf, PAGE, 5 * PAGE), 0);
    assert_memory_equal(buf, mine, PAGE);
    assert_int_equal(uzram_read(c[0], buf, PAGE, 6 * PAGE), 0);
    assert_memory_equal(buf, model + 6 * PAGE, PAGE);
    /* a clone writes into a regrouped window: its unit gets slots of its
     * own (the group copied), the source and the other clones unchanged */
    uint64_t g = 8;
    while (g < NPAGES && !(peek(src, g) & SLOT_GROUP))
        g++;
    assert_true(g < NPAGES);
    make_page(mine, 4343);
    assert_int_equal(uzram_write(c[1], mine, PAGE, g * PAGE), 0);
    assert_int_equal(uzram_read(c[1], buf, PAGE, g * PAGE), 0);
    assert_memory_equal(buf, mine, PAGE);
    assert_int_equal(uzram_read(c[1], buf, PAGE, (g + 1) * PAGE), 0);
    assert_memory_equal(buf, model + (g + 1) * PAGE, PAGE);
    verify(src);
    verify(c[2]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(uzram_check(c[i]), 0);
    /* and the source writes into one: the clones get theirs first */
    make_page(mine, 4444);
    assert_int_equal(uzram_write(src, mine, PAGE, (g + 8) * PAGE), 0);
    assert_int_equal(uzram_read(c[2], buf, PAGE, (g + 8) * PAGE), 0);
    assert_memory_equal(buf, model + (g + 8) * PAGE, PAGE);
    memcpy(model + (g + 8) * PAGE, mine, PAGE);
    verify(src);
    assert_int_equal(uzram_check(src), 0);
    assert_int_equal(uzram_check(c[2]), 0);
    /* without clones the source is regrouped */
    for (int i = 0; i < 3; i++)
        if (uzram_pool_remove(pool, uzram_device_id(c[i])) != 0)
            fail_msg("remove: %s", uzram_last_error());
    for (uint64_t p = 0; p < NPAGES; p++) {
        /* written again (primary, single pages) so there is work */
        assert_int_equal(uzram_write(src, model + p * PAGE, PAGE, p * PAGE), 0);
    }
    assert_int_equal(st(src, "recompress", "settle"), 0);
    grouped = 0;
    for (uint64_t p = 0; p < NPAGES; p++)
        grouped += (peek(src, p) & SLOT_GROUP) != 0;
    assert_true(grouped > 0);
    verify(src);
    assert_int_equal(uzram_pool_remove(pool, uzram_device_id(src)), 0);
    assert_int_equal(uzram_pool_destroy(pool), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_groups_with_dedup),
        cmocka_unit_test(test_auto_then_settle),
        cmocka_unit_test(test_recompress_idle),
        cmocka_unit_test(test_policy_by_itself),
        cmocka_unit_test(test_policy_odd_size),
        cmocka_unit_test(test_clones),
        cmocka_unit_test(test_streams_at_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
