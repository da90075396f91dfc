/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dedup.c - identical pages stored once: shared records and the
 * content index, every path on a shared page, checked against a model and
 * by the store's invariant check (uzram_check) after every step.
 *
 *   - duplicates are shared (one object for many slots), unique pages not;
 *   - a forced hash collision (every page hashes alike) shares nothing
 *     wrong: the byte compare refuses, and counts it;
 *   - an entry whose slot was rewritten is dropped at its first compare
 *     (not refused again and again), and the page found again later;
 *   - copy on write: a partial write or a discard of one shared page
 *     leaves the others as they were;
 *   - writeback (plain and compressed) and recompression move a shared
 *     page once; reads of every reference stay right; overwrite frees;
 *   - a duplicate write succeeds over a full memory limit (it needs no
 *     memory), a unique one fails with -ENOMEM and changes nothing;
 *   - auto mode turns to every page on data with duplicates and stays
 *     sampling on data without, and says why in dedup_stat;
 *   - the attribute: 0, 1, auto; anything else -EINVAL; reset keeps it;
 *   - the index's four entry formats (4, 5, 6 and 8 bytes, by disk size),
 *     each grown from its first table under thousands of pages, finds
 *     every duplicate and drops the entries of discarded pages.
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
#include "slot.h"
#include "dedup.h"
#include "lib/test_files.h"

#define PAGE UZRAM_PAGE_SIZE
#define NPAGES 256

static uint8_t model[NPAGES * PAGE];

/* Page content number k: compressible text with k in it (k < 64), or for
 * k >= 64 incompressible bytes (a huge page). */
static void content(uint8_t *p, unsigned k)
{
    uint64_t x = k * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < PAGE; i++) {
        if (k >= 64) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p[i] = (uint8_t)x;
        } else {
            p[i] = (uint8_t)("shared pages of the anon layer "[(i + k) % 31] + (i % 509 == 0 ? k : 0));
        }
    }
}

static void put(struct uzram *d, uint64_t page, unsigned k)
{
    uint8_t buf[PAGE];
    content(buf, k);
    assert_int_equal(uzram_write(d, buf, PAGE, page * PAGE), 0);
    memcpy(model + page * PAGE, buf, PAGE);
}

static void verify(struct uzram *d, uint64_t npages)
{
    static uint8_t buf[NPAGES * PAGE];
    assert_int_equal(uzram_read(d, buf, npages * PAGE, 0), 0);
    for (uint64_t p = 0; p < npages; p++)
        if (memcmp(buf + p * PAGE, model + p * PAGE, PAGE) != 0)
            fail_msg("page %llu differs from the model", (unsigned long long)p);
    if (uzram_check(d) != 0)
        fail_msg("store check: %s", uzram_last_error());
}

static struct uzram *make(const char *mode, const char *backing, uint64_t mem_limit)
{
    memset(model, 0, sizeof model);
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = NPAGES * PAGE;
    cfg.dedup = mode;
    cfg.backing_dev = backing;
    cfg.mem_limit = mem_limit;
    cfg.recomp_algorithm[0] = "zstd";
    struct uzram *d;
    if (uzram_create(&cfg, &d) < 0)
        fail_msg("create: %s", uzram_last_error());
    return d;
}

static void test_duplicates_shared(void **state)
{
    (void)state;
    struct uzram *d = make("1", NULL, 0);
    for (uint64_t p = 0; p < 128; p++)
        put(d, p, (unsigned)(p % 8) + (p % 16 == 15 ? 64 : 0));   /* 8 texts, one huge */
    verify(d, NPAGES);
    struct uzram_stats st;
    uzram_get_stats(d, &st);
    /* 9 distinct contents: 119 pages cost nothing of their own */
    assert_int_equal(st.dedup_pages, 128 - 9);
    assert_true(st.dedup_saved_bytes > 0);
    assert_int_equal(st.orig_data_size, 128 * PAGE);
    assert_int_equal(st.huge_pages, 1);   /* the huge page is stored once */
    /* unique pages have no record */
    for (uint64_t p = 128; p < 136; p++)
        put(d, p, 10 + (unsigned)p);
    verify(d, NPAGES);
    uzram_get_stats(d, &st);
    assert_int_equal(st.dedup_pages, 128 - 9);
    char s[512];
    assert_true(uzram_attr_show(d, "dedup_stat", s, sizeof s) > 0);
    unsigned long long pages, saved, index, hits, refused;
    assert_int_equal(sscanf(s, "%llu %llu %llu %llu %llu", &pages, &saved, &index, &hits, &refused), 5);
    assert_int_equal(pages, 128 - 9);
    assert_true(index > 0);
    assert_int_equal(refused, 0);
    uzram_destroy(d);
}

static uint64_t same_hash(const void *page)
{
    (void)page;
    return 0x123456789abcdef0ull;
}

/* Every page hashes alike: only the byte compare keeps pages apart. */
static void test_forced_collisions(void **state)
{
    (void)state;
    uz_dedup_hash_hook = same_hash;
    struct uzram *d = make("1", NULL, 0);
    for (uint64_t p = 0; p < 64; p++)
        put(d, p, (unsigned)(p % 5));
    verify(d, NPAGES);
    struct uzram_stats st;
    uzram_get_stats(d, &st);
    assert_true(st.dedup_refused > 0);     /* matches on the hash, refused by the bytes */
    /* every page goes to the same two index buckets and every entry in
     * them matches the hash: the byte compare picks the one with the same
     * content, so sharing still happens where there is one */
    assert_true(st.dedup_pages <= 64 - 5);
    uzram_destroy(d);
    uz_dedup_hash_hook = NULL;
}

/* The stale-dropped count of dedup_stat's index line. */
static unsigned long long stale_dropped(struct uzram *d)
{
    char s[1024];
    assert_true(uzram_attr_show(d, "dedup_stat", s, sizeof s) > 0);
    const char *m = strstr(s, " moved, ");
    unsigned long long n = 0;
    if (!m || sscanf(m + 8, "%llu stale dropped", &n) != 1)
        fail_msg("no stale count in dedup_stat: %s", s);
    return n;
}

/* A page is compared with a candidate before it is compressed, and the
 * candidate's entry is dropped when the slot holds another page now. */
static void test_stale_entry_dropped(void **state)
{
    (void)state;
    struct uzram *d = make("1", NULL, 0);
    put(d, 0, 1);                   /* content 1 in slot 0, indexed */
    put(d, 0, 2);                   /* slot 0 rewritten: the entry is stale */
    assert_int_equal(stale_dropped(d), 0);
    put(d, 1, 1);                   /* finds the entry, compares, drops it */
    verify(d, NPAGES);
    struct uzram_stats st;
    uzram_get_stats(d, &st);
    assert_int_equal(st.dedup_pages, 0);
    assert_int_equal(st.dedup_refused, 0);  /* stale, not a collision */
    assert_int_equal(stale_dropped(d), 1);
    put(d, 2, 1);                   /* slot 1's content 1 is found */
    put(d, 3, 2);                   /* and slot 0's content 2 */
    put(d, 4, 70);                  /* a huge page, then its copy */
    put(d, 5, 70);
    verify(d, NPAGES);
    uzram_get_stats(d, &st);
    assert_int_equal(st.dedup_pages, 3);
    assert_int_equal(stale_dropped(d), 1);
    uzram_destroy(d);
}

/* Copy on write: writing part of a shared page, or discarding one. */
static void test_copy_on_write(void **state)
{
    (void)state;
    struct uzram *d = make("1", NULL, 0);
    for (uint64_t p = 0; p < 32; p++)
        put(d, p, 3);
    uint8_t bytes[100];
    memset(bytes, 0xee, sizeof bytes);
    assert_int_equal(uzram_write(d, bytes, sizeof bytes, 5 * PAGE + 1000), 0);
    memcpy(model + 5 * PAGE + 1000, bytes, sizeof bytes);
    assert_int_equal(uzram_discard(d, PAGE, 6 * PAGE), 0);
    memset(model + 6 * PAGE, 0, PAGE);
    assert_int_equal(uzram_write_zeroes(d, 10, 7 * PAGE + 7), 0);
    memset(model + 7 * PAGE + 7, 0, 10);
    verify(d, NPAGES);
    /* overwrite every reference: the record goes with the last one */
    for (uint64_t p = 0; p < 32; p++)
        put(d, p, 40 + (unsigned)p);
    verify(d, NPAGES);
    struct uzram_stats st;
    uzram_get_stats(d, &st);
    assert_int_equal(st.dedup_pages, 0);
    uzram_destroy(d);
}

static int st_attr(struct uzram *d, const char *name, const char *v)
{
    return uzram_attr_store(d, name, v, strlen(v));
}

/* Writeback (raw and compressed) and recompression move a shared page
 * once, for all its references. */
static void test_beyond_ram(void **state)
{
    (void)state;
    char path[64];
    test_backing_file(path, sizeof path, 256);
    for (int compressed = 0; compressed < 2; compressed++) {
        struct uzram *d = make("1", path, 0);
        assert_int_equal(st_attr(d, "writeback_compressed", compressed ? "1" : "0"), 0);
        for (uint64_t p = 0; p < 64; p++)
            put(d, p, (unsigned)(p % 4) + (p % 8 == 7 ? 64 : 0));
        verify(d, NPAGES);
        struct uzram_stats st0;
        uzram_get_stats(d, &st0);
        assert_int_equal(st_attr(d, "idle", "all"), 0);
        assert_int_equal(st_attr(d, "recompress", "type=idle group=1"), 0);
        verify(d, NPAGES);
        struct uzram_stats st;
        uzram_get_stats(d, &st);
        assert_true(st.recompressed > 0);
        assert_true(st.recompressed <= 5);   /* one per stored page, not per reference */
        assert_int_equal(st_attr(d, "writeback", "page_index=1"), 0);   /* page 1: content 1, shared */
        verify(d, NPAGES);
        uzram_get_stats(d, &st);
        assert_int_equal(st.bd_count, 1);     /* one block for all of content 1's pages */
        assert_int_equal(st_attr(d, "writeback", "huge"), 0);
        verify(d, NPAGES);
        uzram_get_stats(d, &st);
        assert_int_equal(st.bd_count, 2);
        /* the written-back page is still shared: a new duplicate of it is
         * stored anew (candidates on the backing device are not compared),
         * and rewriting its references frees its block */
        for (uint64_t p = 1; p < 64; p += 4)
            put(d, p, 50);
        verify(d, NPAGES);
        uzram_get_stats(d, &st);
        assert_int_equal(st.bd_count, 1);
        assert_int_equal(st_attr(d, "reset", "1"), 0);
        uzram_destroy(d);
    }
    unlink(path);
}

/* A duplicate needs no memory: it is stored over a full limit; a unique
 * page is refused with -ENOMEM and nothing changes. */
static void test_memory_limit(void **state)
{
    (void)state;
    struct uzram *d = make("1", NULL, 0);
    for (uint64_t p = 0; p < 8; p++)
        put(d, p, 64 + (unsigned)p);             /* 8 huge pages */
    struct uzram_stats st;
    uzram_get_stats(d, &st);
    char lim[32];
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)st.mem_used_total);
    assert_int_equal(st_attr(d, "mem_limit", lim), 0);
    uint8_t buf[PAGE];
    content(buf, 99);
    assert_int_equal(uzram_write(d, buf, PAGE, 20 * PAGE), -ENOMEM);
    for (uint64_t p = 8; p < 40; p++)
        put(d, p, 64 + (unsigned)(p % 8));        /* duplicates: no new memory */
    verify(d, NPAGES);
    uzram_destroy(d);
}

/* auto: data with duplicates turns it to every page, data without keeps
 * it sampling; dedup_stat says which and why. */
static void test_auto(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 64ull << 20;   /* 16384 pages */
    cfg.dedup = "auto";
    struct uzram *d;
    assert_int_equal(uzram_create(&cfg, &d), 0);
    char s[512];
    assert_true(uzram_attr_show(d, "dedup", s, sizeof s) > 0);
    assert_string_equal(s, "auto\n");
    uint8_t buf[PAGE];
    /* unique pages: stays sampling */
    for (uint64_t p = 0; p < 8192; p++) {
        content(buf, 1);
        memcpy(buf, &p, sizeof p);
        memcpy(buf + 2048, &p, sizeof p);
        assert_int_equal(uzram_write(d, buf, PAGE, p * PAGE), 0);
    }
    assert_true(uzram_attr_show(d, "dedup_stat", s, sizeof s) > 0);
    assert_non_null(strstr(s, "auto: a sample of pages"));
    struct uzram_stats st;
    uzram_get_stats(d, &st);
    assert_int_equal(st.dedup_pages, 0);
    /* then pages from a pool of 64: turns to every page, and shares */
    for (uint64_t p = 8192; p < 16384; p++) {
        content(buf, 1);
        uint64_t k = p % 64;
        memcpy(buf, &k, sizeof k);
        assert_int_equal(uzram_write(d, buf, PAGE, p * PAGE), 0);
    }
    assert_true(uzram_attr_show(d, "dedup_stat", s, sizeof s) > 0);
    assert_non_null(strstr(s, "auto: every page"));
    uzram_get_stats(d, &st);
    assert_true(st.dedup_pages > 2048);
    for (uint64_t p = 8192; p < 16384; p += 97) {
        uint8_t back[PAGE];
        content(buf, 1);
        uint64_t k = p % 64;
        memcpy(buf, &k, sizeof k);
        assert_int_equal(uzram_read(d, back, PAGE, p * PAGE), 0);
        assert_memory_equal(back, buf, PAGE);
    }
    assert_int_equal(uzram_check(d), 0);
    uzram_destroy(d);
}

static void test_attribute(void **state)
{
    (void)state;
    struct uzram *d = make("auto", NULL, 0);
    char s[64];
    assert_int_equal(st_attr(d, "dedup", "1"), 0);
    assert_true(uzram_attr_show(d, "dedup", s, sizeof s) > 0);
    assert_string_equal(s, "1\n");
    assert_int_equal(st_attr(d, "dedup", "yes"), -EINVAL);
    assert_int_equal(st_attr(d, "dedup", ""), -EINVAL);
    assert_true(uzram_attr_show(d, "dedup", s, sizeof s) > 0);
    assert_string_equal(s, "1\n");                /* a failed store changed nothing */
    assert_int_equal(st_attr(d, "reset", "1"), 0);
    assert_true(uzram_attr_show(d, "dedup", s, sizeof s) > 0);
    assert_string_equal(s, "1\n");                /* kept across reset */
    assert_int_equal(st_attr(d, "dedup", "0"), 0);
    assert_int_equal(st_attr(d, "disksize", "1M"), 0);
    for (uint64_t p = 0; p < 16; p++)
        put(d, p, 1);
    verify(d, 256);
    struct uzram_stats st;
    uzram_get_stats(d, &st);
    assert_int_equal(st.dedup_pages, 0);           /* off: nothing shared */
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.dedup = "maybe";
    struct uzram *bad;
    assert_int_equal(uzram_create(&cfg, &bad), -EINVAL);
    uzram_destroy(d);
}

/* Page number key: 64 bytes from the key, then text (it compresses). */
static void keyed(uint8_t *p, uint64_t key)
{
    uint64_t x = key * 0x9e3779b97f4a7c15ull + 7;
    for (int i = 0; i < 8; i++) {
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        memcpy(p + 8 * i, &x, 8);
    }
    for (size_t i = 64; i < PAGE; i++)
        p[i] = (uint8_t)("four entry formats "[(i + key) % 19]);
}

static void test_entry_formats(void **state)
{
    (void)state;
    static const struct {
        uint64_t disk;
        unsigned esize;
    } cases[] = {{16ull << 20, 4}, {1ull << 30, 4}, {2ull << 30, 5}, {64ull << 30, 6},
                 {1ull << 40, 8}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct uzram_config cfg;
        uzram_config_init(&cfg);
        cfg.disksize = cases[c].disk;
        cfg.dedup = "1";
        struct uzram *d;
        int err = uzram_create(&cfg, &d);
        if (err == -ENOMEM && cases[c].disk > (64ull << 30)) {
            /* a sanitizer's or a small machine's address space */
            print_message("%llu MiB disk: no address space for it, skipped (%s)\n",
                          (unsigned long long)(cases[c].disk >> 20), uzram_last_error());
            continue;
        }
        if (err < 0)
            fail_msg("create: %s", uzram_last_error());
        uint64_t nslots = cases[c].disk / PAGE, n = nslots / 2 < 12000 ? nslots / 2 : 12000;
        uint64_t stride = nslots / (2 * n);
        uint8_t buf[PAGE], back[PAGE];
        /* n unique pages spread over the disk, then a copy of every third
         * beside it */
        for (uint64_t i = 0; i < n; i++) {
            keyed(buf, i);
            assert_int_equal(uzram_write(d, buf, PAGE, 2 * i * stride * PAGE), 0);
        }
        for (uint64_t i = 0; i < n; i += 3) {
            keyed(buf, i);
            assert_int_equal(uzram_write(d, buf, PAGE, (2 * i * stride + 1) * PAGE), 0);
        }
        struct uzram_stats st;
        uzram_get_stats(d, &st);
        char s[1024];
        assert_true(uzram_attr_show(d, "dedup_stat", s, sizeof s) > 0);
        if (st.dedup_pages != (n + 2) / 3)
            fail_msg("%llu MiB disk: %llu of %llu copies found; dedup_stat:\n%s",
                     (unsigned long long)(cases[c].disk >> 20), (unsigned long long)st.dedup_pages,
                     (unsigned long long)(n + 2) / 3, s);
        unsigned esize = 0;
        unsigned long long grown = 0;
        const char *ix = strstr(s, "index: ");
        assert_non_null(ix);
        assert_int_equal(sscanf(ix, "index: %u-byte", &esize), 1);
        assert_non_null(strstr(ix, "grown "));
        grown = strtoull(strstr(ix, "grown ") + 6, NULL, 10);
        print_message("%llu MiB disk: %u-byte entries, grown %llu times\n",
                      (unsigned long long)(cases[c].disk >> 20), esize, grown);
        assert_int_equal(esize, cases[c].esize);
        assert_true(grown > 0);
        /* discard the originals: their entries are stale, the copies found
         * through their records still */
        for (uint64_t i = 0; i < n; i += 3)
            assert_int_equal(uzram_discard(d, PAGE, 2 * i * stride * PAGE), 0);
        for (uint64_t i = 0; i < n; i += 3) {
            keyed(buf, i);
            assert_int_equal(uzram_write(d, buf, PAGE, 2 * i * stride * PAGE), 0);
        }
        uzram_get_stats(d, &st);
        assert_int_equal(st.dedup_pages, (n + 2) / 3);
        for (uint64_t i = 0; i < n; i++) {
            keyed(buf, i);
            assert_int_equal(uzram_read(d, back, PAGE, 2 * i * stride * PAGE), 0);
            assert_memory_equal(back, buf, PAGE);
            if (i % 3 == 0) {
                assert_int_equal(uzram_read(d, back, PAGE, (2 * i * stride + 1) * PAGE), 0);
                assert_memory_equal(back, buf, PAGE);
            }
        }
        if (uzram_check(d) != 0)
            fail_msg("store check: %s", uzram_last_error());
        uzram_destroy(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicates_shared),
        cmocka_unit_test(test_forced_collisions),
        cmocka_unit_test(test_stale_entry_dropped),
        cmocka_unit_test(test_copy_on_write),
        cmocka_unit_test(test_beyond_ram),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_attribute),
        cmocka_unit_test(test_entry_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
