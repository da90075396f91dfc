/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_raw.c - the raw RAM mode: a device with algorithm "none".
 *
 * What it promises, through the public API only, on every allocator:
 *  - every page reads back as written: random, text, half-random and real
 *    memory pages (the corpus, when it is there), in single-page and
 *    multi-page calls, after overwrites, partial writes and discards;
 *  - same-filled pages are still kept as their word (no memory);
 *  - every other page is kept raw: huge_pages counts it, compr_data_size
 *    is 4096 bytes a page, and the allocator holds one page per page
 *    (mem_used_total, so the device costs what a plain RAM disk would;
 *    the malloc baseline: that plus malloc's rounding);
 *  - a group device (group_pages=8) with "none" still reads back right
 *    (a group that does not compress falls back to single raw pages);
 *  - the mem_limit is kept: a write past it fails with -ENOMEM and leaves
 *    the page as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uzram.h"
#include "lib/test_files.h"

#define PAGE 4096u
#define NPAGES 512u

static const char *const allocators[] = { "zsmalloc", "xvmalloc", "malloc" };

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Page i of the synthetic set: kinds in turn (zero, same-filled, random,
 * text, half-random), each page different. */
static void make_page(uint8_t *p, uint64_t i)
{
    uint64_t s = i * 0x9e3779b97f4a7c15ull + 7;
    switch (i % 5) {
    case 0:
        memset(p, 0, PAGE);
        break;
    case 1:
        memset(p, (int)(i % 251) + 1, PAGE);
        break;
    case 2:
        for (size_t k = 0; k < PAGE; k += 8) {
            uint64_t v = rng(&s);
            memcpy(p + k, &v, 8);
        }
        break;
    case 3:
        for (size_t k = 0; k < PAGE; k++)
            p[k] = (uint8_t)("raw ram mode page "[k % 18] + (k / 18 + i) % 3);
        break;
    default:
        for (size_t k = 0; k < PAGE / 2; k++)
            p[k] = (uint8_t)('a' + k % 7);
        for (size_t k = PAGE / 2; k < PAGE; k += 8) {
            uint64_t v = rng(&s);
            memcpy(p + k, &v, 8);
        }
    }
}

static bool same_filled(const uint8_t *p)
{
    uint64_t w, v;
    memcpy(&w, p, 8);
    for (size_t k = 8; k < PAGE; k += 8) {
        memcpy(&v, p + k, 8);
        if (v != w)
            return false;
    }
    return true;
}

static const char *current = "";

static struct uzram *raw_device(const char *allocator, uint64_t pages, uint32_t group,
                                uint64_t mem_limit)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = pages * PAGE;
    cfg.algorithm = "none";
    cfg.allocator = allocator;
    cfg.dedup = "off";   /* every page its own raw object, as the stats below count */
    cfg.group_pages = group;
    cfg.mem_limit = mem_limit;
    current = allocator;
    struct uzram *dev = NULL;
    int err = uzram_create(&cfg, &dev);
    if (err < 0)
        fail_msg("create none/%s: %s", allocator, uzram_last_error());
    return dev;
}

/* Every page of dev equals model (npages pages); stats say raw. */
static void check_all(struct uzram *dev, const uint8_t *model, uint64_t npages, bool exact_stats)
{
    static uint8_t buf[8 * PAGE];
    uint64_t raw = 0, same = 0;
    for (uint64_t i = 0; i < npages; i += 8) {
        assert_int_equal(uzram_read(dev, buf, 8 * PAGE, i * PAGE), 0);
        for (uint64_t k = 0; k < 8; k++) {
            const uint8_t *want = model + (i + k) * PAGE;
            if (memcmp(buf + k * PAGE, want, PAGE) != 0)
                fail_msg("page %llu differs", (unsigned long long)(i + k));
            same_filled(want) ? same++ : raw++;
        }
    }
    /* and one page at a time too */
    for (uint64_t i = 0; i < npages; i++) {
        assert_int_equal(uzram_read(dev, buf, PAGE, i * PAGE), 0);
        assert_memory_equal(buf, model + i * PAGE, PAGE);
    }
    if (!exact_stats)
        return;
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    /* zero pages are same-filled too; a never-written page is neither */
    assert_int_equal(st.huge_pages, raw);
    assert_int_equal(st.compr_data_size, raw * PAGE);
    /* the malloc baseline pays malloc's own rounding on top */
    bool baseline = strcmp(current, "malloc") == 0;
    if (baseline ? st.mem_used_total < raw * PAGE || st.mem_used_total > raw * (PAGE + 256) + (1u << 20)
                 : st.mem_used_total != raw * PAGE)
        fail_msg("%s: mem_used_total %llu, %llu raw pages", current,
                 (unsigned long long)st.mem_used_total, (unsigned long long)raw);
    assert_int_equal(st.same_pages, same);
    assert_int_equal(st.orig_data_size, (raw + same) * PAGE);
}

static void test_raw_roundtrip(void **state)
{
    (void)state;
    uint8_t *model = malloc((size_t)NPAGES * PAGE);
    assert_non_null(model);
    for (size_t a = 0; a < sizeof allocators / sizeof allocators[0]; a++) {
        struct uzram *dev = raw_device(allocators[a], NPAGES, 1, 0);
        /* fill: single pages in the first half, 8-page calls in the second */
        for (uint64_t i = 0; i < NPAGES; i++)
            make_page(model + i * PAGE, i);
        for (uint64_t i = 0; i < NPAGES / 2; i++)
            assert_int_equal(uzram_write(dev, model + i * PAGE, PAGE, i * PAGE), 0);
        for (uint64_t i = NPAGES / 2; i < NPAGES; i += 8)
            assert_int_equal(uzram_write(dev, model + i * PAGE, 8 * PAGE, i * PAGE), 0);
        check_all(dev, model, NPAGES, true);

        /* churn: seeded overwrites with other pages, partial writes, discards */
        uint64_t seed = 0x5eed + a;
        for (int op = 0; op < 3000; op++) {
            uint64_t i = rng(&seed) % NPAGES, r = rng(&seed) % 10;
            uint8_t *m = model + i * PAGE;
            if (r < 6) {
                make_page(m, rng(&seed) % 100000);
                assert_int_equal(uzram_write(dev, m, PAGE, i * PAGE), 0);
            } else if (r < 8) {
                uint32_t off = (uint32_t)(rng(&seed) % PAGE) & ~511u, len = 512;
                for (uint32_t k = 0; k < len; k++)
                    m[off + k] = (uint8_t)rng(&seed);
                assert_int_equal(uzram_write(dev, m + off, len, i * PAGE + off), 0);
            } else {
                memset(m, 0, PAGE);
                assert_int_equal(uzram_discard(dev, PAGE, i * PAGE), 0);
            }
        }
        /* discarded pages are zero but stored as nothing: skip exact stats */
        check_all(dev, model, NPAGES, false);
        struct uzram_stats st;
        uzram_get_stats(dev, &st);
        assert_int_equal(st.compr_data_size, st.huge_pages * PAGE);
        if (strcmp(allocators[a], "malloc") != 0)
            assert_int_equal(st.mem_used_total, st.huge_pages * PAGE);
        uzram_destroy(dev);
    }
    free(model);
}

/* Real memory: every non-same-filled corpus page costs exactly a page. */
static void test_raw_corpus(void **state)
{
    (void)state;
    uint64_t n = 0;
    uint8_t *pages = test_corpus_load("sqlite.pages.zst", 4096, &n);
    if (!pages)
        skip();
    n -= n % 8;
    for (size_t a = 0; a < sizeof allocators / sizeof allocators[0]; a++) {
        struct uzram *dev = raw_device(allocators[a], n, 1, 0);
        assert_int_equal(uzram_write(dev, pages, n * PAGE, 0), 0);
        check_all(dev, pages, n, true);
        uzram_destroy(dev);
    }
    free(pages);
}

/* Group mode over "none": no group ever compresses, every page stays raw
 * and right. */
static void test_raw_groups(void **state)
{
    (void)state;
    uint8_t *model = malloc((size_t)NPAGES * PAGE);
    assert_non_null(model);
    for (uint64_t i = 0; i < NPAGES; i++)
        make_page(model + i * PAGE, i + 11);
    struct uzram *dev = raw_device("zsmalloc", NPAGES, 8, 0);
    for (uint64_t i = 0; i < NPAGES; i += 8)
        assert_int_equal(uzram_write(dev, model + i * PAGE, 8 * PAGE, i * PAGE), 0);
    check_all(dev, model, NPAGES, false);
    /* part of a group rewritten */
    make_page(model + 3 * PAGE, 999);
    assert_int_equal(uzram_write(dev, model + 3 * PAGE, PAGE, 3 * PAGE), 0);
    check_all(dev, model, NPAGES, false);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_true(st.mem_used_total <= (uint64_t)NPAGES * PAGE);
    uzram_destroy(dev);
    free(model);
}

/* The limit holds: pages past it fail with -ENOMEM and leave the old data. */
static void test_raw_limit(void **state)
{
    (void)state;
    struct uzram *dev = raw_device("zsmalloc", 64, 1, 16 * PAGE);
    uint8_t p[PAGE], back[PAGE];
    int ok = 0, full = 0;
    for (uint64_t i = 0; i < 64; i++) {
        make_page(p, i * 5 + 2);   /* random: raw */
        int err = uzram_write(dev, p, PAGE, i * PAGE);
        if (err == 0) {
            ok++;
            assert_int_equal(uzram_read(dev, back, PAGE, i * PAGE), 0);
            assert_memory_equal(back, p, PAGE);
        } else {
            assert_int_equal(err, -ENOMEM);
            full++;
            assert_int_equal(uzram_read(dev, back, PAGE, i * PAGE), 0);
            static const uint8_t zero[PAGE];
            assert_memory_equal(back, zero, PAGE);
        }
    }
    assert_int_equal(ok, 16);
    assert_int_equal(full, 48);
    uzram_destroy(dev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_roundtrip),
        cmocka_unit_test(test_raw_corpus),
        cmocka_unit_test(test_raw_groups),
        cmocka_unit_test(test_raw_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
