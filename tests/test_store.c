/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_store.c - every store path of the device, checked against a model
 * (a plain byte array holding what the disk should read as).
 *
 * Same-filled, huge and ordinary pages; partial and unaligned I/O; discard
 * and write-zeroes; out-of-range I/O; the memory limit; failed writes
 * (fault injection through mem.c) leaving the old content; the sparse slot
 * table on a 1 TiB device; every allocator and codec.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/valgrind_detect.h"

#include "alloc.h"
#include "codec.h"
#include "mem.h"
#include "uzram.h"
#include "slot.h"

#define PAGE 4096u

static struct uzram *make(uint64_t size, const char *algo, const char *allocator)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = size;
    if (algo)
        cfg.algorithm = algo;
    if (allocator)
        cfg.allocator = allocator;
    struct uzram *dev = NULL;
    int rc = uzram_create(&cfg, &dev);
    if (rc < 0)
        fail_msg("create: %s", uzram_last_error());
    return dev;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A page that compresses to about `ratio` (0 = random, huge). */
static void make_page(uint8_t *p, int kind, uint64_t seed)
{
    switch (kind) {
    case 0: /* random: incompressible */
        for (size_t i = 0; i < PAGE; i += 8) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            memcpy(p + i, &seed, 8);
        }
        break;
    case 1: /* text-like: compresses well */
        for (size_t i = 0; i < PAGE; i++)
            p[i] = (uint8_t)("the quick brown fox jumps over the lazy dog "[(i + seed) % 44] ^
                             ((i % 97 == 0) ? (uint8_t)seed : 0));
        break;
    case 2: /* half random, half zero */
        make_page(p, 0, seed);
        memset(p + PAGE / 2, 0, PAGE / 2);
        break;
    default: { /* same-filled */
        uint64_t w = seed * 0x0101010101010101ull;
        for (size_t i = 0; i < PAGE; i += 8)
            memcpy(p + i, &w, 8);
    }
    }
}

static void check_model(struct uzram *dev, const uint8_t *model, uint64_t size)
{
    uint8_t *buf = malloc(size);
    assert_int_equal(uzram_read(dev, buf, size, 0), 0);
    for (uint64_t i = 0; i < size; i++)
        if (buf[i] != model[i])
            fail_msg("byte %llu: got %u want %u", (unsigned long long)i, buf[i], model[i]);
    free(buf);
    if (uzram_check(dev) != 0)
        fail_msg("store check: %s", uzram_last_error());
}

/* uzram_check finds what it promises to find: each invariant broken on
 * purpose (a counter, a back-reference, a table page's use count) is
 * reported with -EFAULT, and the device checks clean once it is put back. */
static void test_check_finds_corruption(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 64 * PAGE;
    struct uzram *dev;
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    uint8_t page[PAGE];
    for (int p = 0; p < 64; p += 3) {
        for (size_t i = 0; i < PAGE; i++)
            page[i] = (uint8_t)(i * (unsigned)p / 7 + (i % 13 == 0 ? p : 0));
        assert_int_equal(uzram_write(dev, page, PAGE, (uint64_t)p * PAGE), 0);
    }
    memset(page, 0x5a, PAGE);
    assert_int_equal(uzram_write(dev, page, PAGE, 1 * PAGE), 0);   /* same-filled */
    assert_int_equal(uzram_check(dev), 0);

    /* I1: a counter off by one */
    atomic_fetch_add(&dev->store->tally.compr_bytes, 1);
    assert_int_equal(uzram_check(dev), -EFAULT);
    assert_non_null(strstr(uzram_last_error(), "compressed bytes"));
    atomic_fetch_sub(&dev->store->tally.compr_bytes, 1);
    atomic_fetch_add(&dev->store->tally.same_pages, 1);
    assert_int_equal(uzram_check(dev), -EFAULT);
    atomic_fetch_sub(&dev->store->tally.same_pages, 1);
    assert_int_equal(uzram_check(dev), 0);

    /* I2: an object whose back-reference names another slot */
    struct uz_slot *s = uz_slot_at(dev->store, 3);
    uint64_t h = slot_handle(s);
    dev->store->aops->set_backref(dev->store->alloc, h, 4);
    assert_int_equal(uzram_check(dev), -EFAULT);
    assert_non_null(strstr(uzram_last_error(), "back-reference"));
    dev->store->aops->set_backref(dev->store->alloc, h, 3);
    assert_int_equal(uzram_check(dev), 0);

    /* I3: two kinds of content in one slot */
    atomic_fetch_or(&s->flags, SLOT_WB);
    assert_int_equal(uzram_check(dev), -EFAULT);
    atomic_fetch_and(&s->flags, ~SLOT_WB);
    assert_int_equal(uzram_check(dev), 0);
    uzram_destroy(dev);
}

static void test_config_errors(void **state)
{
    struct uzram_config cfg;
    struct uzram *dev = NULL;
    uzram_config_init(&cfg);
    cfg.disksize = 1 << 20;
    cfg.algorithm = "nope";
    assert_int_equal(uzram_create(&cfg, &dev), -EINVAL);
    assert_non_null(strstr(uzram_last_error(), "nope"));
    cfg.algorithm = "zstd";
    cfg.level = 1000;
    assert_int_equal(uzram_create(&cfg, &dev), -EINVAL);
    cfg.level = 0;
    cfg.allocator = "slab";
    assert_int_equal(uzram_create(&cfg, &dev), -EINVAL);
    cfg.allocator = NULL;
    cfg.huge_threshold = 5000;
    assert_int_equal(uzram_create(&cfg, &dev), -EINVAL);
    cfg.huge_threshold = 0;
    cfg.disksize = 1ull << 60;   /* more slots than back-references can name */
    assert_int_equal(uzram_create(&cfg, &dev), -EINVAL);
    assert_null(dev);
    /* disksize 0: uninitialised device; I/O says so */
    cfg.disksize = 0;
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    char b[16];
    assert_int_equal(uzram_read(dev, b, 16, 0), -ENXIO);
    assert_int_equal(uzram_write(dev, b, 16, 0), -ENXIO);
    uzram_destroy(dev);
    uzram_destroy(NULL);
}

static void test_zero_and_unwritten(void **state)
{
    struct uzram *dev = make(64 * PAGE, NULL, NULL);
    uint8_t buf[3 * PAGE];
    memset(buf, 0xaa, sizeof buf);
    assert_int_equal(uzram_read(dev, buf, sizeof buf, 5 * PAGE + 7), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(uzram_page_state(dev, 0), UZRAM_PAGE_ZERO);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_int_equal(st.orig_data_size, 0);
    assert_int_equal(st.slot_table_bytes, 0);   /* reads touch nothing */
    uzram_destroy(dev);
}

static void test_same_filled(void **state)
{
    struct uzram *dev = make(64 * PAGE, NULL, NULL);
    uint8_t p[PAGE], q[PAGE];
    for (uint64_t i = 0; i < 10; i++) {
        make_page(p, 3, i);
        assert_int_equal(uzram_write(dev, p, PAGE, i * PAGE), 0);
    }
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_int_equal(st.same_pages, 10);
    assert_int_equal(st.orig_data_size, 10 * PAGE);
    assert_int_equal(st.compr_data_size, 0);
    assert_int_equal(st.mem_used_total, 0);
    for (uint64_t i = 0; i < 10; i++) {
        make_page(p, 3, i);
        assert_int_equal(uzram_read(dev, q, PAGE, i * PAGE), 0);
        assert_memory_equal(p, q, PAGE);
    }
    assert_int_equal(uzram_page_state(dev, 0), UZRAM_PAGE_ZERO);   /* fill word 0 */
    assert_int_equal(uzram_page_state(dev, PAGE), UZRAM_PAGE_DATA);
    /* a page of a repeated word that is not a repeated byte */
    uint64_t w = 0x0123456789abcdefull;
    for (size_t i = 0; i < PAGE; i += 8)
        memcpy(p + i, &w, 8);
    assert_int_equal(uzram_write(dev, p, PAGE, 20 * PAGE), 0);
    assert_int_equal(uzram_read(dev, q, PAGE, 20 * PAGE), 0);
    assert_memory_equal(p, q, PAGE);
    uzram_get_stats(dev, &st);
    assert_int_equal(st.same_pages, 11);
    uzram_destroy(dev);
}

static void test_huge_and_normal(void **state)
{
    struct uzram *dev = make(64 * PAGE, NULL, NULL);
    uint8_t p[PAGE], q[PAGE];
    make_page(p, 0, 42);
    assert_int_equal(uzram_write(dev, p, PAGE, 0), 0);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_int_equal(st.huge_pages, 1);
    assert_int_equal(st.huge_pages_since, 1);
    assert_int_equal(st.compr_data_size, PAGE);
    assert_int_equal(st.mem_used_total, PAGE);   /* a raw page costs one page */
    assert_int_equal(uzram_read(dev, q, PAGE, 0), 0);
    assert_memory_equal(p, q, PAGE);
    /* overwrite with a compressible page: no longer huge */
    make_page(p, 1, 1);
    assert_int_equal(uzram_write(dev, p, PAGE, 0), 0);
    uzram_get_stats(dev, &st);
    assert_int_equal(st.huge_pages, 0);
    assert_int_equal(st.huge_pages_since, 1);
    assert_true(st.compr_data_size > 0 && st.compr_data_size < PAGE / 2);
    assert_int_equal(uzram_read(dev, q, PAGE, 0), 0);
    assert_memory_equal(p, q, PAGE);
    /* half-compressible */
    make_page(p, 2, 9);
    assert_int_equal(uzram_write(dev, p, PAGE, PAGE), 0);
    assert_int_equal(uzram_read(dev, q, PAGE, PAGE), 0);
    assert_memory_equal(p, q, PAGE);
    /* discard everything: memory returns */
    assert_int_equal(uzram_discard(dev, 64 * PAGE, 0), 0);
    uzram_get_stats(dev, &st);
    assert_int_equal(st.orig_data_size, 0);
    assert_int_equal(st.compr_data_size, 0);
    assert_int_equal(st.mem_used_total, 0);
    assert_int_equal(st.slot_table_bytes, 0);
    assert_int_equal(st.notify_free, 2);
    uzram_destroy(dev);
}

/* Random partial, unaligned, multi-page I/O against the model, for every
 * codec and allocator. */
static void model_run(const char *algo, const char *allocator, int ops)
{
    const uint64_t size = 48 * PAGE;
    struct uzram *dev = make(size, algo, allocator);
    uint8_t *model = calloc(1, size);
    uint8_t *buf = malloc(size);
    for (int op = 0; op < ops; op++) {
        uint64_t off = rnd() % size;
        uint64_t len = rnd() % (size - off + 1);
        if (rnd() % 4)
            len %= 3 * PAGE;   /* mostly short */
        switch (rnd() % 6) {
        case 0: case 1: case 2: { /* write */
            int kind = (int)(rnd() % 4);
            for (uint64_t i = 0; i < len; i += PAGE) {
                uint8_t p[PAGE];
                make_page(p, kind, rnd());
                memcpy(buf + i, p, len - i < PAGE ? len - i : PAGE);
            }
            assert_int_equal(uzram_write(dev, buf, len, off), 0);
            memcpy(model + off, buf, len);
            break;
        }
        case 3: /* read and compare */
            assert_int_equal(uzram_read(dev, buf, len, off), 0);
            assert_memory_equal(buf, model + off, len);
            break;
        case 4:
            assert_int_equal(uzram_discard(dev, len, off), 0);
            memset(model + off, 0, len);
            break;
        case 5:
            if (rnd() % 8 == 0) {
                uzram_compact(dev);
            } else {
                assert_int_equal(uzram_write_zeroes(dev, len, off), 0);
                memset(model + off, 0, len);
            }
            break;
        }
    }
    check_model(dev, model, size);
    assert_int_equal(uzram_discard(dev, size, 0), 0);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_int_equal(st.mem_used_total, 0);
    assert_int_equal(st.compr_data_size, 0);
    uzram_destroy(dev);
    free(model);
    free(buf);
}

static void test_model_every_codec(void **state)
{
    const char *name;
    for (unsigned i = 0; (name = uzram_algorithm_name(i)) != NULL; i++)
        model_run(name, NULL, 1500);
}

static void test_model_every_allocator(void **state)
{
    const struct uz_alloc_ops *a;
    for (unsigned i = 0; (a = uz_alloc_at(i)) != NULL; i++)
        model_run("lz4", a->name, 3000);
}

static void test_out_of_range(void **state)
{
    struct uzram *dev = make(16 * PAGE, NULL, NULL);
    uint8_t p[PAGE * 2] = {1};
    assert_int_equal(uzram_write(dev, p, PAGE, 16 * PAGE), -EINVAL);
    assert_int_equal(uzram_write(dev, p, 2, 16 * PAGE - 1), -EINVAL);
    assert_int_equal(uzram_read(dev, p, PAGE, UINT64_MAX - 10), -EINVAL);
    assert_int_equal(uzram_discard(dev, 2 * PAGE, 15 * PAGE), -EINVAL);
    assert_int_equal(uzram_page_state(dev, 16 * PAGE), -EINVAL);
    assert_int_equal(uzram_write(dev, p, 0, 16 * PAGE), 0);   /* empty at the end: fine */
    assert_int_equal(uzram_write(dev, p, 0, 17 * PAGE), -EINVAL);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_int_equal(st.invalid_io, 6);
    assert_int_equal(st.orig_data_size, 0);   /* nothing happened */
    uzram_destroy(dev);
}

/* Over the memory limit a write fails with ENOMEM and the slot keeps its
 * previous content. */
static void test_mem_limit(void **state)
{
    struct uzram *dev = make(256 * PAGE, NULL, NULL);
    assert_int_equal(uzram_attr_store(dev, "mem_limit", "64K\n", 4), 0);
    uint8_t p[PAGE], q[PAGE];
    uint64_t written = 0;
    int rc = 0;
    for (uint64_t i = 0; i < 256; i++) {
        make_page(p, 0, i);
        rc = uzram_write(dev, p, PAGE, i * PAGE);
        if (rc < 0)
            break;
        written++;
    }
    assert_int_equal(rc, -ENOMEM);
    assert_true(written >= 8 && written <= 16);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_true(st.mem_used_total <= 64 * 1024);
    assert_int_equal(st.failed_writes, 1);
    /* overwriting a stored page with a huge one fails, old data stays */
    make_page(p, 0, 1000);
    assert_int_equal(uzram_write(dev, p, PAGE, 0), -ENOMEM);
    make_page(p, 0, 0);
    assert_int_equal(uzram_read(dev, q, PAGE, 0), 0);
    assert_memory_equal(p, q, PAGE);
    for (uint64_t i = 0; i < written; i++) {
        make_page(p, 0, i);
        assert_int_equal(uzram_read(dev, q, PAGE, i * PAGE), 0);
        assert_memory_equal(p, q, PAGE);
    }
    /* same-filled pages need no memory: still accepted */
    make_page(p, 3, 7);
    assert_int_equal(uzram_write(dev, p, PAGE, 200 * PAGE), 0);
    /* lift the limit: writes work again */
    assert_int_equal(uzram_attr_store(dev, "mem_limit", "0", 1), 0);
    make_page(p, 0, 999);
    assert_int_equal(uzram_write(dev, p, PAGE, 100 * PAGE), 0);
    uzram_destroy(dev);
}

/* Every allocation a write makes, failed in turn: the write fails cleanly
 * and the old content is intact. */
static void test_failed_allocation(void **state)
{
    struct uzram *dev = make(64 * PAGE, NULL, NULL);
    uint8_t p[PAGE], q[PAGE], old[PAGE];
    for (uint64_t i = 0; i < 64; i++) {
        make_page(p, (int)(i % 3), i);
        assert_int_equal(uzram_write(dev, p, PAGE, i * PAGE), 0);
    }
    int failures = 0;
    for (uint64_t n = 1; n < 50; n++) {
        uint64_t slot = rnd() % 64;
        assert_int_equal(uzram_read(dev, old, PAGE, slot * PAGE), 0);
        make_page(p, (int)(rnd() % 3), rnd());
        uz_fault_arm(1);   /* the next fallible allocation fails */
        int rc = uzram_write(dev, p, PAGE, slot * PAGE);
        bool fired = uz_fault_fired();
        uz_fault_arm(0);
        assert_int_equal(uzram_read(dev, q, PAGE, slot * PAGE), 0);
        if (rc < 0) {
            assert_int_equal(rc, -ENOMEM);
            assert_true(fired);
            assert_memory_equal(q, old, PAGE);
            failures++;
        } else {
            assert_memory_equal(q, p, PAGE);
        }
    }
    assert_true(failures > 0);
    uzram_destroy(dev);
}

/* A 1 TiB device with a thousand scattered pages written holds < 8 MiB.
 * (Under valgrind, which cannot reserve terabytes of address space, the
 * device is 16 GiB; the footprint bound is the same.) */
static void test_sparse_terabyte(void **state)
{
    uint64_t size = RUNNING_ON_VALGRIND ? 16ull << 30 : 1ull << 40;
    struct uzram *dev = make(size, NULL, NULL);
    uint8_t p[PAGE], q[PAGE];
    uint64_t slots[1000];
    for (int i = 0; i < 1000; i++) {
        slots[i] = rnd() % (size / PAGE);
        make_page(p, 1, slots[i]);
        assert_int_equal(uzram_write(dev, p, PAGE, slots[i] * PAGE), 0);
    }
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    printf("1 TiB, 1000 scattered pages: footprint %llu bytes (slot table %llu)\n",
           (unsigned long long)st.footprint, (unsigned long long)st.slot_table_bytes);
    assert_true(st.footprint < 8ull << 20);
    for (int i = 0; i < 1000; i++) {
        make_page(p, 1, slots[i]);
        assert_int_equal(uzram_read(dev, q, PAGE, slots[i] * PAGE), 0);
        /* a later write may have hit the same slot */
        int same = memcmp(p, q, PAGE) == 0;
        for (int k = i + 1; k < 1000 && !same; k++)
            same = slots[k] == slots[i];
        assert_true(same);
    }
    /* discard all of it: the slot table goes back to nothing */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(uzram_discard(dev, PAGE, slots[i] * PAGE), 0);
    uzram_get_stats(dev, &st);
    assert_int_equal(st.slot_table_bytes, 0);
    assert_int_equal(st.mem_used_total, 0);
    uzram_destroy(dev);
}

static void test_compact_keeps_data(void **state)
{
    const uint64_t n = 2048;
    struct uzram *dev = make(n * PAGE, NULL, NULL);
    uint8_t p[PAGE], q[PAGE];
    for (uint64_t i = 0; i < n; i++) {
        make_page(p, 1 + (int)(i % 2), i);
        assert_int_equal(uzram_write(dev, p, PAGE, i * PAGE), 0);
    }
    for (uint64_t i = 0; i < n; i++)
        if (rnd() % 10 < 7)
            assert_int_equal(uzram_discard(dev, PAGE, i * PAGE), 0);
    struct uzram_stats before, after;
    uzram_get_stats(dev, &before);
    assert_int_equal(uzram_attr_store(dev, "compact", "1", 1), 0);
    uzram_get_stats(dev, &after);
    assert_true(after.mem_used_total <= before.mem_used_total);
    assert_int_equal((after.pages_compacted - before.pages_compacted) * PAGE,
                     before.mem_used_total - after.mem_used_total);
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(uzram_read(dev, q, PAGE, i * PAGE), 0);
        if (uzram_page_state(dev, i * PAGE) == UZRAM_PAGE_DATA) {
            make_page(p, 1 + (int)(i % 2), i);
            assert_memory_equal(p, q, PAGE);
        }
    }
    uzram_destroy(dev);
}

/* Swap-like churn (overwrite, discard) fragments zspages; automatic
 * compaction must keep the footprint near its bound with no one asking,
 * and without it the allocator must be looser (so the test can fail). */
static double churn_ratio(const char *bound)
{
    const uint64_t n = 6000;
    struct uzram *dev = make(n * PAGE, NULL, NULL);
    assert_int_equal(uzram_attr_store(dev, "auto_compact", bound, strlen(bound)), 0);
    uint8_t p[PAGE];
    for (uint64_t i = 0; i < n; i++) {
        make_page(p, 1 + (int)(i % 2), i * 7);
        assert_int_equal(uzram_write(dev, p, PAGE, i * PAGE), 0);
    }
    /* A fill frees nothing, so compaction has nothing to take: a step
     * that finds so backs off until frees come (the first pages' fixed
     * costs put the footprint over the bound, and once every write ran
     * a step in vain: 9% of the fill's time) */
    struct uzram_stats fill;
    uzram_get_stats(dev, &fill);
    assert_true(fill.compact_steps <= 2);
    for (int round = 0; round < 3; round++) {
        for (uint64_t k = 0; k < n / 2; k++) {
            uint64_t i = rnd() % n;
            make_page(p, 1 + (int)(rnd() % 2), rnd());
            assert_int_equal(uzram_write(dev, p, PAGE, i * PAGE), 0);
        }
        for (uint64_t k = 0; k < n / 5; k++)
            assert_int_equal(uzram_discard(dev, PAGE, (rnd() % n) * PAGE), 0);
    }
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    uzram_destroy(dev);
    return (double)st.mem_used_total / (double)st.compr_data_size;
}

static void test_auto_compact(void **state)
{
    double off = churn_ratio("0"), on = churn_ratio("1.05");
    printf("allocator pages / compressed bytes after churn: %.3f without, %.3f with auto compaction\n",
           off, on);
    assert_true(on <= 1.05);
    assert_true(off > on);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_finds_corruption),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_zero_and_unwritten),
        cmocka_unit_test(test_same_filled),
        cmocka_unit_test(test_huge_and_normal),
        cmocka_unit_test(test_model_every_codec),
        cmocka_unit_test(test_model_every_allocator),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_mem_limit),
        cmocka_unit_test(test_failed_allocation),
        cmocka_unit_test(test_sparse_terabyte),
        cmocka_unit_test(test_compact_keeps_data),
        cmocka_unit_test(test_auto_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
