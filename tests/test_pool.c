/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pool.c - pools (many devices in one store) and clones, against a
 * model of every device's bytes, with the store's and the pool's
 * invariant check (uzram_check) after every step.
 *
 *   - devices are numbered lowest free first, as hot_add; remove is
 *     -EBUSY while open or held, -ENOENT for no such device;
 *   - devices of one pool keep their own bytes; sizing past the capacity
 *     is -ENOSPC; reset gives the range back;
 *   - a clone reads what its source held (real corpus pages: compressed,
 *     same-filled, huge, written back, deduplicated, grouped); writing
 *     either leaves the other as it was; clones of clones; removing the
 *     source first, or a clone first, leaves the rest correct;
 *   - a clone costs its table and records, not its data: the pool grows
 *     by about the compressed size of what is written to it;
 *   - identical pages of two devices are stored once (dedup 1);
 *   - the pool's settings through a device: the same comp_algorithm is
 *     accepted, another is -EBUSY; mem_limit is the pool's, set through
 *     the pool (a device's store of another value is -EBUSY:
 *     test_pool_settings.c);
 *   - a clone costs nothing until written; the first write to one of its
 *     units that cannot copy the unit's groups (over mem_limit) fails
 *     with -ENOMEM and leaves both devices reading what they did.
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

#include "uzram.h"
#include "lib/test_files.h"

#define PAGE UZRAM_PAGE_SIZE
#define NPAGES 2048                 /* 8 MiB per device */
#define MAXDEV 8

static uint8_t *corpus;
static uint64_t corpus_pages;
static uint8_t *model[MAXDEV + 4];  /* by device id */

/* Page k of the test data: corpus pages (real memory), with every 7th a
 * fill and every 11th a repeat of an earlier one. */
static void content(uint8_t *p, uint64_t k, unsigned salt)
{
    if (k % 7 == 3) {
        memset(p, (int)(k + salt) & 0xff, PAGE);
        return;
    }
    uint64_t src = k % 11 == 5 ? k / 2 : k;
    if (corpus_pages) {
        memcpy(p, corpus + ((src * 7 + salt) % corpus_pages) * PAGE, PAGE);
    } else {
        uint64_t x = src * 0x9e3779b97f4a7c15ull + salt + 1;
        for (size_t i = 0; i < PAGE; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t w = i % 64 < 40 ? (i / 64) * 0x0101010101010101ull : x;
            memcpy(p + i, &w, 8);
        }
    }
}

static void fill(struct uzram *d, uint64_t lo, uint64_t n, unsigned salt)
{
    int id = uzram_device_id(d);
    for (uint64_t k = lo; k < lo + n; k++) {
        uint8_t buf[PAGE];
        content(buf, k, salt);
        assert_int_equal(uzram_write(d, buf, PAGE, k * PAGE), 0);
        memcpy(model[id] + k * PAGE, buf, PAGE);
    }
}

static void verify(struct uzram *d)
{
    int id = uzram_device_id(d);
    static uint8_t buf[NPAGES * PAGE];
    assert_int_equal(uzram_read(d, buf, NPAGES * PAGE, 0), 0);
    for (uint64_t k = 0; k < NPAGES; k++)
        if (memcmp(buf + k * PAGE, model[id] + k * PAGE, PAGE) != 0)
            fail_msg("zram%d: page %llu differs from what was written", id, (unsigned long long)k);
}

static void check(struct uzram *d)
{
    int err = uzram_check(d);
    if (err)
        fail_msg("uzram_check: %s", uzram_last_error());
}

static struct uzram_pool *make_pool(const char *extra_key, const char *extra_val, uint64_t cap)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = cap;
    cfg.algorithm = "lz4";
    if (extra_key && strcmp(extra_key, "dedup") == 0)
        cfg.dedup = extra_val;
    if (extra_key && strcmp(extra_key, "group") == 0) {
        /* groups on the write path: auto makes them only without dedup */
        cfg.group_pages = UZRAM_GROUP_AUTO;
        cfg.dedup = "off";
    }
    struct uzram_pool *p;
    int err = uzram_pool_create(&cfg, &p);
    if (err)
        fail_msg("uzram_pool_create: %s", uzram_last_error());
    return p;
}

static struct uzram *add_sized(struct uzram_pool *p, uint64_t bytes)
{
    struct uzram *d;
    assert_int_equal(uzram_pool_add(p, &d), 0);
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)bytes);
    assert_int_equal(uzram_attr_store(d, "disksize", v, strlen(v)), 0);
    int id = uzram_device_id(d);
    memset(model[id], 0, (size_t)NPAGES * PAGE);
    return d;
}

static struct uzram *clone_of(struct uzram *src)
{
    struct uzram *c;
    int err = uzram_clone(src, &c);
    if (err)
        fail_msg("uzram_clone: %s", uzram_last_error());
    memcpy(model[uzram_device_id(c)], model[uzram_device_id(src)], (size_t)NPAGES * PAGE);
    return c;
}

/* ---------------------------------------------------------------- tests */

static void test_numbers_and_remove(void **state)
{
    (void)state;
    struct uzram_pool *p = make_pool(NULL, NULL, 0);
    struct uzram *d[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(uzram_pool_add(p, &d[i]), 0);
        assert_int_equal(uzram_device_id(d[i]), i);
        assert_ptr_equal(uzram_pool_of(d[i]), p);
    }
    assert_int_equal(uzram_pool_next(p, -1), 0);
    assert_int_equal(uzram_pool_next(p, 0), 1);
    assert_int_equal(uzram_pool_next(p, 2), -1);
    /* open: EBUSY; held: EBUSY; then removed; then ENOENT */
    uzram_open(d[1]);
    assert_int_equal(uzram_pool_remove(p, 1), -EBUSY);
    uzram_close(d[1]);
    struct uzram *h = uzram_pool_get(p, 1);
    assert_ptr_equal(h, d[1]);
    assert_int_equal(uzram_pool_remove(p, 1), -EBUSY);
    uzram_pool_put(h);
    assert_int_equal(uzram_pool_remove(p, 1), 0);
    assert_int_equal(uzram_pool_remove(p, 1), -ENOENT);
    assert_null(uzram_pool_get(p, 1));
    assert_int_equal(uzram_pool_next(p, 0), 2);
    /* the lowest free number again */
    struct uzram *e;
    assert_int_equal(uzram_pool_add(p, &e), 0);
    assert_int_equal(uzram_device_id(e), 1);
    assert_int_equal(uzram_pool_destroy(p), -EBUSY);
    for (int i = 0; i < 3; i++)
        assert_int_equal(uzram_pool_remove(p, i), 0);
    assert_int_equal(uzram_pool_destroy(p), 0);
    /* a device of its own is in no pool and cannot be cloned */
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 1 << 20;
    struct uzram *own, *c;
    assert_int_equal(uzram_create(&cfg, &own), 0);
    assert_null(uzram_pool_of(own));
    assert_int_equal(uzram_clone(own, &c), -EINVAL);
    uzram_destroy(own);
}

static void test_devices_keep_their_bytes(void **state)
{
    (void)state;
    struct uzram_pool *p = make_pool(NULL, NULL, 64ull << 20);
    struct uzram *a = add_sized(p, NPAGES * PAGE), *b = add_sized(p, NPAGES * PAGE);
    fill(a, 0, NPAGES, 1);
    fill(b, 0, NPAGES, 2);
    check(a);
    verify(a);
    verify(b);
    /* past the capacity: 64 MiB holds 8 MiB + 8 MiB + at most 48 more */
    struct uzram *big;
    assert_int_equal(uzram_pool_add(p, &big), 0);
    assert_int_equal(uzram_attr_store(big, "disksize", "60M", 3), -ENOSPC);
    assert_int_equal(uzram_attr_store(big, "disksize", "40M", 3), 0);
    /* the pool's settings through a device */
    assert_int_equal(uzram_attr_store(a, "comp_algorithm", "lz4", 3), 0);
    assert_int_equal(uzram_attr_store(a, "comp_algorithm", "zstd", 4), -EBUSY);
    assert_int_equal(uzram_pool_attr_store(p, "mem_limit", "1G", 2), 0);
    struct uzram_pool_stats ps;
    uzram_pool_get_stats(p, &ps);
    assert_int_equal(ps.mem_limit, 1ull << 30);
    assert_int_equal(ps.devices, 3);
    assert_int_equal(ps.disksize, 56ull << 20);
    /* each device's figures are its own; the pool's the sum */
    struct uzram_stats sa, sb;
    uzram_get_stats(a, &sa);
    uzram_get_stats(b, &sb);
    assert_true(sa.orig_data_size > 0 && sb.orig_data_size > 0);
    assert_int_equal(ps.orig_data_size, sa.orig_data_size + sb.orig_data_size);
    /* (duplicates the index found are the pool's shared bytes) */
    assert_int_equal(ps.compr_data_size, sa.compr_data_size + sb.compr_data_size + ps.shared_bytes);
    char buf[256];
    assert_true(uzram_pool_attr_show(p, "pool_stat", buf, sizeof buf) > 0);
    assert_int_equal(uzram_pool_attr_store(p, "comp_algorithm", "lz4", 3), -EACCES);
    assert_int_equal(uzram_pool_attr_store(p, "compact", "1", 1), 0);
    /* reset gives the range back and frees what a held */
    assert_int_equal(uzram_attr_store(a, "reset", "1", 1), 0);
    check(b);
    assert_int_equal(uzram_attr_store(a, "disksize", "8M", 2), 0);
    memset(model[0], 0, (size_t)NPAGES * PAGE);
    verify(a);
    verify(b);
    check(a);
    for (int i = 0; i < 3; i++)
        assert_int_equal(uzram_pool_remove(p, i), 0);
    assert_int_equal(uzram_pool_destroy(p), 0);
}

static void test_clone(void **state)
{
    (void)state;
    struct uzram_pool *p = make_pool(NULL, NULL, 0);
    struct uzram *src = add_sized(p, NPAGES * PAGE);
    fill(src, 0, NPAGES, 3);
    struct uzram_pool_stats before, after;
    uzram_pool_get_stats(p, &before);
    struct uzram *c = clone_of(src);
    check(src);
    verify(c);
    verify(src);
    uzram_pool_get_stats(p, &after);
    /* a clone reads through to its source: no compressed byte more (all
     * of them shared now), and its own figures are its source's pages,
     * shared; the pool counts both devices' pages */
    assert_int_equal(after.compr_data_size, before.compr_data_size);
    assert_int_equal(after.shared_bytes, before.compr_data_size);
    assert_int_equal(after.orig_data_size, 2 * before.orig_data_size);
    assert_true(after.footprint - before.footprint < before.footprint / 100);
    struct uzram_stats ss, cs;
    uzram_get_stats(src, &ss);
    uzram_get_stats(c, &cs);
    assert_int_equal(cs.orig_data_size, ss.orig_data_size);
    assert_int_equal(cs.compr_data_size, 0);
    assert_int_equal(cs.same_pages, ss.same_pages);
    /* write 10% of the clone: the source reads as before; the units
     * written share the rest of their pages through records */
    fill(c, 100, NPAGES / 10, 9);
    check(c);
    verify(src);
    verify(c);
    struct uzram_pool_stats written;
    uzram_pool_get_stats(p, &written);
    assert_true(written.shared_bytes > before.shared_bytes);
    assert_true(written.compr_data_size > before.compr_data_size);
    /* a read of a page never written, a discard of one the clone holds
     * through its link, a partial write into one */
    uint8_t z[PAGE];
    assert_int_equal(uzram_discard(c, PAGE, 1500 * PAGE), 0);
    memset(model[uzram_device_id(c)] + 1500 * PAGE, 0, PAGE);
    assert_int_equal(uzram_read(c, z, PAGE, 1500 * PAGE), 0);
    assert_int_equal(uzram_page_state(c, 1500 * PAGE), UZRAM_PAGE_ZERO);
    assert_int_equal(uzram_page_state(c, 1200 * PAGE), UZRAM_PAGE_DATA);
    memset(z, 0x5a, 100);
    assert_int_equal(uzram_write(c, z, 100, 1900 * PAGE + 7), 0);
    memcpy(model[uzram_device_id(c)] + 1900 * PAGE + 7, z, 100);
    check(c);
    verify(c);
    verify(src);
    /* and the source's writes are not the clone's */
    fill(src, 900, 50, 11);
    verify(c);
    verify(src);
    /* a clone of the clone; then the source goes first */
    struct uzram *cc = clone_of(c);
    fill(cc, 0, 10, 12);
    assert_int_equal(uzram_pool_remove(p, uzram_device_id(src)), 0);
    check(c);
    verify(c);
    verify(cc);
    /* the middle one goes: the grandchild keeps its bytes */
    assert_int_equal(uzram_pool_remove(p, uzram_device_id(c)), 0);
    check(cc);
    verify(cc);
    struct uzram_pool_stats end;
    uzram_pool_get_stats(p, &end);
    struct uzram_stats s;
    uzram_get_stats(cc, &s);
    assert_int_equal(end.orig_data_size, s.orig_data_size);
    assert_int_equal(uzram_pool_remove(p, uzram_device_id(cc)), 0);
    uzram_pool_get_stats(p, &end);
    assert_int_equal(end.compr_data_size, 0);
    assert_int_equal(end.shared_pages, 0);
    assert_int_equal(uzram_pool_destroy(p), 0);
}

/* Written back, deduplicated and grouped pages clone too. */
static void test_clone_every_kind(void **state)
{
    (void)state;
    char path[64];
    test_backing_file(path, sizeof path, NPAGES);
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.algorithm = "lz4";
    cfg.backing_dev = path;
    cfg.dedup = "1";
    struct uzram_pool *p;
    assert_int_equal(uzram_pool_create(&cfg, &p), 0);
    struct uzram *src = add_sized(p, NPAGES * PAGE);
    fill(src, 0, NPAGES, 4);
    assert_int_equal(uzram_attr_store(src, "writeback", "huge", 4), 0);
    assert_int_equal(uzram_attr_store(src, "writeback", "page_indexes=0-99", 17), 0);
    check(src);
    struct uzram *c = clone_of(src);
    check(c);
    verify(c);
    /* recompression and writeback of shared pages on either side */
    assert_int_equal(uzram_attr_store(c, "idle", "all", 3), 0);
    assert_int_equal(uzram_attr_store(c, "writeback", "idle", 4), 0);
    check(c);
    verify(c);
    verify(src);
    /* identical pages of two devices are stored once */
    struct uzram *other = add_sized(p, NPAGES * PAGE);
    struct uzram_pool_stats b1, b2;
    uzram_pool_get_stats(p, &b1);
    uint8_t page[PAGE];
    content(page, 1, 77);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(uzram_write(other, page, PAGE, (uint64_t)i * PAGE), 0);
        memcpy(model[uzram_device_id(other)] + i * PAGE, page, PAGE);
    }
    assert_int_equal(uzram_write(src, page, PAGE, 5 * PAGE), 0);
    memcpy(model[0] + 5 * PAGE, page, PAGE);
    uzram_pool_get_stats(p, &b2);
    assert_true(b2.saved_bytes > b1.saved_bytes);
    check(other);
    verify(other);
    verify(src);
    verify(c);
    for (int id = uzram_pool_next(p, -1); id >= 0; id = uzram_pool_next(p, -1))
        assert_int_equal(uzram_pool_remove(p, id), 0);
    assert_int_equal(uzram_pool_destroy(p), 0);
    unlink(path);

    /* groups: auto makes groups of sequential writes; the clone copies them */
    p = make_pool("group", NULL, 0);
    src = add_sized(p, NPAGES * PAGE);
    static uint8_t big[64 * PAGE];
    for (uint64_t k = 0; k < NPAGES; k += 64) {
        for (uint64_t j = 0; j < 64; j++)
            content(big + j * PAGE, k + j, 5);
        assert_int_equal(uzram_write(src, big, sizeof big, k * PAGE), 0);
        memcpy(model[0] + k * PAGE, big, sizeof big);
    }
    char dbg[1024];
    assert_true(uzram_attr_show(src, "debug_stat", dbg, sizeof dbg) > 0);
    assert_null(strstr(dbg, "group_writes: 0 "));
    c = clone_of(src);
    check(c);
    verify(c);
    fill(c, 3, 5, 13);          /* inside a group: breaks the clone's copy */
    check(c);
    verify(c);
    verify(src);
    /* over the memory limit: a clone is made (it needs no memory), but
     * the first write to a unit of it cannot copy the unit's groups:
     * -ENOMEM, and both devices read what they did */
    struct uzram *c2 = clone_of(src);
    struct uzram_pool_stats s1, s2;
    uzram_pool_get_stats(p, &s1);
    char lim[32];
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)s1.mem_used_total);
    assert_int_equal(uzram_pool_attr_store(p, "mem_limit", lim, strlen(lim)), 0);
    content(page, 999, 1);
    assert_int_equal(uzram_write(c2, page, PAGE, 1024 * PAGE), -ENOMEM);
    assert_int_equal(uzram_write(src, page, PAGE, 1024 * PAGE), -ENOMEM);
    uzram_pool_get_stats(p, &s2);
    assert_int_equal(s1.compr_data_size, s2.compr_data_size);
    check(src);
    verify(src);
    verify(c);
    verify(c2);
    assert_int_equal(uzram_pool_attr_store(p, "mem_limit", "0", 1), 0);
    assert_int_equal(uzram_write(c2, page, PAGE, 1024 * PAGE), 0);
    memcpy(model[uzram_device_id(c2)] + 1024 * PAGE, page, PAGE);
    check(src);
    verify(src);
    verify(c2);
    for (int id = uzram_pool_next(p, -1); id >= 0; id = uzram_pool_next(p, -1))
        assert_int_equal(uzram_pool_remove(p, id), 0);
    assert_int_equal(uzram_pool_destroy(p), 0);
}

/* Eight devices, seven clones of the first: about one device's memory. */
static void test_eight_devices(void **state)
{
    (void)state;
    struct uzram_pool *p = make_pool(NULL, NULL, 0);
    struct uzram *src = add_sized(p, NPAGES * PAGE);
    fill(src, 0, NPAGES, 6);
    struct uzram_pool_stats one, eight;
    uzram_pool_get_stats(p, &one);
    for (int i = 0; i < 7; i++)
        clone_of(src);
    uzram_pool_get_stats(p, &eight);
    assert_int_equal(eight.devices, 8);
    assert_int_equal(eight.compr_data_size, one.compr_data_size);
    /* tables and records only: a few percent of a small device */
    if (eight.footprint > one.footprint * 13 / 10)
        fail_msg("eight devices hold %llu bytes, one held %llu", (unsigned long long)eight.footprint,
                 (unsigned long long)one.footprint);
    check(src);
    for (int id = 0; id < 8; id++) {
        struct uzram *d = uzram_pool_get(p, id);
        verify(d);
        uzram_pool_put(d);
    }
    for (int id = uzram_pool_next(p, -1); id >= 0; id = uzram_pool_next(p, -1))
        assert_int_equal(uzram_pool_remove(p, id), 0);
    assert_int_equal(uzram_pool_destroy(p), 0);
}

int main(void)
{
    /* The footprint comparisons below need it to stay put while no I/O
     * runs; zsmalloc's prefault helper fills its window of resident pages
     * (counted in the footprint) by itself, in the background, so a
     * before/after pair could differ by up to its 64 KiB floor. */
    setenv("UZ_PREFAULT", "0", 1);
    corpus = test_corpus_load("sqlite.pages.zst", 4096, &corpus_pages);
    for (int i = 0; i < MAXDEV + 4; i++) {
        model[i] = calloc(NPAGES, PAGE);
        if (!model[i])
            return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_and_remove),
        cmocka_unit_test(test_devices_keep_their_bytes),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_clone_every_kind),
        cmocka_unit_test(test_eight_devices),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < MAXDEV + 4; i++)
        free(model[i]);
    free(corpus);
    return rc;
}
