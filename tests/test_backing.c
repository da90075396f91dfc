/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_backing.c - the backing device: backing_dev, writeback in every
 * mode, writeback_limit, compressed writeback, the compcache forward (over
 * the memory limit, and over forward_threshold), bd_stat, idle marking,
 * and faults (EIO on write and read through the test hook, ENOSPC from a
 * full backing file), every case checked against a model of the disk.
 *
 * The last test prints the "done when" figures on the corpus page
 * files (the .pages.zst files in $UZ_CORPUS): (a) a memory limit well below the data
 * with a backing file, (b) idle all + writeback idle, (c) lz4 + zstd
 * secondary, idle all + recompress type=idle.  Figures are informational;
 * what is checked is that every page reads back correct and the bounds
 * hold (allocator memory within the limit, everything written back but
 * same-filled pages, recompression (idle runs regrouped by default) saving at least 25%).
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

#include "backing.h"
#include "slot.h"
#include "device.h"
#include "page.h"
#include "uzram.h"
#include "lib/test_files.h"

#define PAGE 4096u

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

/* ------------------------------------------------------------ helpers */

static char bd_path[64];

/* A fresh backing file of nblocks 4 KiB blocks; its path in bd_path. */
static const char *make_backing(uint64_t nblocks)
{
    return test_backing_file(bd_path, sizeof bd_path, nblocks);
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* kind 0 random (huge), 1 text, 2 same-filled, 3 random head of seed%4096 */
static void fill(uint8_t *p, int kind, uint64_t seed)
{
    for (size_t i = 0; i < PAGE; i++) {
        switch (kind) {
        case 0: p[i] = (uint8_t)mix(seed * 4096 + i); break;
        case 1: p[i] = (uint8_t)("backing device writeback "[(i + seed) % 25] ^ (i % 301 == seed % 301)); break;
        case 2: p[i] = (uint8_t)seed; break;
        default: p[i] = i < seed % PAGE ? (uint8_t)mix(seed ^ i) : 0; break;
        }
    }
}

struct dev {
    struct uzram *d;
    uint8_t *model;
    uint64_t pages;
};

static void open_dev(struct dev *t, uint64_t pages, const char *bd, const char *algo,
                     const char *secondary, uint64_t limit)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = pages * PAGE;
    cfg.backing_dev = bd;
    cfg.mem_limit = limit;
    cfg.streams = 2;
    if (algo)
        cfg.algorithm = algo;
    cfg.recomp_algorithm[0] = secondary;
    t->d = NULL;
    if (uzram_create(&cfg, &t->d) != 0)
        fail_msg("create: %s", uzram_last_error());
    t->model = calloc(pages, PAGE);
    t->pages = pages;
}

static void close_dev(struct dev *t)
{
    uzram_destroy(t->d);
    free(t->model);
    if (bd_path[0])
        unlink(bd_path);
    bd_path[0] = 0;
}

static void put(struct dev *t, uint64_t p, int kind, uint64_t seed)
{
    uint8_t buf[PAGE];
    fill(buf, kind, seed);
    int rc = uzram_write(t->d, buf, PAGE, p * PAGE);
    if (rc != 0)
        fail_msg("write page %llu: %d %s", (unsigned long long)p, rc, uzram_last_error());
    memcpy(t->model + p * PAGE, buf, PAGE);
}

static void verify(struct dev *t)
{
    uint8_t *buf = malloc(t->pages * PAGE);
    int rc = uzram_read(t->d, buf, t->pages * PAGE, 0);
    if (rc != 0)
        fail_msg("read: %d %s", rc, uzram_last_error());
    for (uint64_t p = 0; p < t->pages; p++)
        if (memcmp(buf + p * PAGE, t->model + p * PAGE, PAGE) != 0)
            fail_msg("page %llu differs from the model", (unsigned long long)p);
    free(buf);
    if (uzram_check(t->d) != 0)
        fail_msg("store check: %s", uzram_last_error());
}

static int st(struct dev *t, const char *name, const char *v)
{
    return uzram_attr_store(t->d, name, v, strlen(v));
}

static struct uzram_stats stats(struct dev *t)
{
    struct uzram_stats s;
    uzram_get_stats(t->d, &s);
    return s;
}

static uint32_t slot_flags(struct dev *t, uint64_t p)
{
    return uz_slot_peek(t->d->store, p) & SLOT_STATE;
}

/* ------------------------------------------------------------ tests */

static void test_backing_dev_attr(void **state)
{
    (void)state;
    struct uzram *d;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    assert_int_equal(uzram_create(&cfg, &d), 0);
    char buf[256];
    assert_int_equal(uzram_attr_show(d, "backing_dev", buf, sizeof buf), 5);
    assert_string_equal(buf, "none\n");
    assert_int_equal(uzram_attr_store(d, "backing_dev", "/nonexistent/x", 14), -ENOENT);
    assert_int_equal(uzram_attr_store(d, "backing_dev", "relative", 8), -EINVAL);
    const char *path = make_backing(16);
    assert_int_equal(uzram_attr_store(d, "backing_dev", path, strlen(path)), 0);
    uzram_attr_show(d, "backing_dev", buf, sizeof buf);
    assert_int_equal(strncmp(buf, path, strlen(path)), 0);
    assert_int_equal(uzram_attr_store(d, "disksize", "64K", 3), 0);
    assert_int_equal(uzram_attr_store(d, "backing_dev", path, strlen(path)), -EBUSY);
    assert_int_equal(uzram_attr_store(d, "backing_dev", "none", 4), -EBUSY);
    assert_int_equal(uzram_attr_show(d, "bd_stat", buf, sizeof buf), 27);
    assert_string_equal(buf, "       0        0        0\n");
    assert_int_equal(uzram_attr_store(d, "reset", "1", 1), 0);
    uzram_attr_show(d, "backing_dev", buf, sizeof buf);
    assert_string_equal(buf, "none\n");
    /* writeback without one */
    assert_int_equal(uzram_attr_store(d, "disksize", "64K", 3), 0);
    assert_int_equal(uzram_attr_store(d, "writeback", "idle", 4), -ENODEV);
    assert_int_equal(uzram_attr_store(d, "writeback", "bogus", 5), -EINVAL);
    uzram_destroy(d);
    unlink(path);
    /* too small a file */
    path = make_backing(0);
    uzram_config_init(&cfg);
    cfg.backing_dev = path;
    assert_int_equal(uzram_create(&cfg, &d), -EINVAL);
    unlink(path);
    bd_path[0] = 0;
}

static void test_writeback_modes(void **state)
{
    (void)state;
    for (int compressed = 0; compressed < 2; compressed++) {
        struct dev t;
        open_dev(&t, 64, make_backing(256), NULL, NULL, 0);
        assert_int_equal(st(&t, "writeback_compressed", compressed ? "1" : "0"), 0);
        for (uint64_t p = 0; p < 64; p++)
            put(&t, p, (int)(p % 4), p * 7 + 1);
        /* nothing is idle yet */
        assert_int_equal(st(&t, "writeback", "idle"), 0);
        assert_int_equal(stats(&t).bd_count, 0);
        /* huge: the random pages (kind 0) */
        assert_int_equal(st(&t, "writeback", "huge"), 0);
        struct uzram_stats s = stats(&t);
        assert_int_equal(s.bd_count, 16);
        assert_int_equal(s.bd_writes, 16);
        assert_int_equal(s.huge_pages, 0);
        assert_true(slot_flags(&t, 0) & SLOT_WB);
        verify(&t);
        assert_int_equal(stats(&t).bd_reads, 16);
        /* idle all, then a page read again is not idle any more */
        assert_int_equal(st(&t, "idle", "all"), 0);
        uint8_t b[PAGE];
        assert_int_equal(uzram_read(t.d, b, PAGE, 1 * PAGE), 0);
        assert_int_equal(st(&t, "writeback", "huge_idle"), 0);   /* none left */
        assert_int_equal(stats(&t).bd_count, 16);
        assert_int_equal(st(&t, "writeback", "idle"), 0);
        s = stats(&t);
        /* all but page 1 and the same-filled pages (16) and the huge ones already out */
        assert_int_equal(s.bd_count, 16 + 31);
        assert_false(slot_flags(&t, 1) & SLOT_WB);
        assert_true(slot_flags(&t, 3) & SLOT_WB);
        assert_true(slot_flags(&t, 2) & SLOT_SAME);
        assert_int_equal(s.orig_data_size, (1 + 16) * PAGE);
        if (compressed)
            assert_true((slot_handle((struct uz_slot *)uz_varray_at(&t.d->store->slots, 3)) >> WB_LEN_SHIFT) > 0);
        verify(&t);
        /* overwrite and discard free blocks; partial write of a WB page */
        put(&t, 3, 1, 999);
        assert_int_equal(uzram_discard(t.d, PAGE, 5 * PAGE), 0);
        memset(t.model + 5 * PAGE, 0, PAGE);
        uint8_t part[100];
        memset(part, 0x5a, sizeof part);
        assert_int_equal(uzram_write(t.d, part, 100, 7 * PAGE + 50), 0);
        memcpy(t.model + 7 * PAGE + 50, part, 100);
        assert_int_equal(stats(&t).bd_count, 16 + 31 - 3);
        verify(&t);
        /* page_index and page_indexes */
        assert_int_equal(st(&t, "writeback", "page_index=1"), 0);
        assert_true(slot_flags(&t, 1) & SLOT_WB);
        assert_int_equal(st(&t, "writeback", "page_indexes=3-7"), 0);
        assert_true(slot_flags(&t, 3) & SLOT_WB);
        assert_true(slot_flags(&t, 7) & SLOT_WB);
        assert_int_equal(st(&t, "writeback", "page_indexes=7-3"), -EINVAL);
        assert_int_equal(st(&t, "writeback", "page_index=64"), -EINVAL);
        assert_int_equal(st(&t, "writeback", "page_indexes=5"), -EINVAL);
        verify(&t);
        char buf[64];
        uzram_attr_show(t.d, "bd_stat", buf, sizeof buf);
        unsigned long long c, r, w;
        assert_int_equal(sscanf(buf, "%llu %llu %llu", &c, &r, &w), 3);
        assert_int_equal(c, stats(&t).bd_count);
        /* reset drops every block with the backing device */
        assert_int_equal(st(&t, "reset", "1"), 0);
        close_dev(&t);
    }
}

static void test_writeback_limit(void **state)
{
    (void)state;
    struct dev t;
    open_dev(&t, 32, make_backing(64), NULL, NULL, 0);
    for (uint64_t p = 0; p < 32; p++)
        put(&t, p, 1, p);
    assert_int_equal(st(&t, "writeback_limit_enable", "1"), 0);
    assert_int_equal(st(&t, "writeback_limit", "5"), 0);
    char buf[32];
    uzram_attr_show(t.d, "writeback_limit", buf, sizeof buf);
    assert_string_equal(buf, "5\n");
    assert_int_equal(st(&t, "idle", "all"), 0);
    assert_int_equal(st(&t, "writeback", "idle"), -EIO);   /* limit reached */
    assert_int_equal(stats(&t).bd_count, 5);
    uzram_attr_show(t.d, "writeback_limit", buf, sizeof buf);
    assert_string_equal(buf, "0\n");
    assert_int_equal(st(&t, "writeback_limit_enable", "0"), 0);
    assert_int_equal(st(&t, "writeback", "idle"), 0);
    assert_int_equal(stats(&t).bd_count, 32);
    verify(&t);
    close_dev(&t);
}

static void test_idle_age(void **state)
{
    (void)state;
    struct dev t;
    open_dev(&t, 16, make_backing(32), NULL, NULL, 0);
    for (uint64_t p = 0; p < 16; p++)
        put(&t, p, 1, p);
    assert_int_equal(st(&t, "idle", "100"), 0);
    for (uint64_t p = 0; p < 16; p++)
        assert_false(slot_flags(&t, p) & SLOT_IDLE);
    assert_int_equal(st(&t, "idle", "2097152"), -EINVAL);   /* past the atime wrap */
    assert_int_equal(st(&t, "idle", "x"), -EINVAL);
    /* move the device clock on by 200 s: everything is 200 s old, then
     * touch pages 0..3 */
    t.d->store->epoch -= 200;
    uint8_t b[PAGE];
    for (uint64_t p = 0; p < 4; p++)
        assert_int_equal(uzram_read(t.d, b, PAGE, p * PAGE), 0);
    assert_int_equal(st(&t, "idle", "150"), 0);
    for (uint64_t p = 0; p < 16; p++)
        assert_int_equal(!!(slot_flags(&t, p) & SLOT_IDLE), p >= 4);
    assert_int_equal(st(&t, "writeback", "idle"), 0);
    assert_int_equal(stats(&t).bd_count, 12);
    verify(&t);
    close_dev(&t);
}

static void test_forward(void **state)
{
    (void)state;
    /* over the memory limit: to the backing device instead of -ENOMEM */
    struct dev t;
    open_dev(&t, 256, make_backing(256), NULL, NULL, 16 * PAGE);
    for (uint64_t p = 0; p < 256; p++)
        put(&t, p, (int)(p % 4), p * 3);
    struct uzram_stats s = stats(&t);
    assert_true(s.mem_used_total <= 16 * PAGE);
    assert_true(s.forwarded > 0);
    assert_int_equal(s.failed_writes, 0);
    assert_int_equal(s.bd_count, s.forwarded);
    verify(&t);
    close_dev(&t);

    /* a full backing device: -ENOMEM, old content kept */
    open_dev(&t, 64, make_backing(4), NULL, NULL, 4 * PAGE);
    int rc = 0;
    uint64_t p;
    for (p = 0; p < 64 && rc == 0; p++) {
        uint8_t buf[PAGE];
        fill(buf, 0, p);
        rc = uzram_write(t.d, buf, PAGE, p * PAGE);
        if (rc == 0)
            memcpy(t.model + p * PAGE, buf, PAGE);
    }
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(stats(&t).bd_count, 4);
    assert_int_equal(stats(&t).failed_writes, 1);
    verify(&t);
    close_dev(&t);

    /* forward_threshold: pages compressing worse than 2048 bytes go out */
    open_dev(&t, 32, make_backing(64), NULL, NULL, 0);
    assert_int_equal(st(&t, "forward_threshold", "2048"), 0);
    assert_int_equal(st(&t, "forward_threshold", "4097"), -EINVAL);
    for (uint64_t q = 0; q < 32; q++)
        put(&t, q, q % 2 ? 0 : 1, q);
    s = stats(&t);
    assert_int_equal(s.forwarded, 16);
    assert_int_equal(s.huge_pages, 0);
    assert_true(slot_flags(&t, 1) & SLOT_WB);
    assert_false(slot_flags(&t, 0) & SLOT_WB);
    verify(&t);
    close_dev(&t);
}

/* ------------------------------------------------------------ faults */

static int fail_writes_err, fail_reads_err;
static int fault_hook(bool write, uint64_t blk)
{
    (void)blk;
    return write ? fail_writes_err : fail_reads_err;
}

static void test_faults(void **state)
{
    (void)state;
    for (int compressed = 0; compressed < 2; compressed++) {
        struct dev t;
        open_dev(&t, 32, make_backing(64), NULL, NULL, 0);
        assert_int_equal(st(&t, "writeback_compressed", compressed ? "1" : "0"), 0);
        for (uint64_t p = 0; p < 32; p++)
            put(&t, p, 3, p * 131 + 7);
        uz_backing_fault_hook = fault_hook;
        assert_int_equal(st(&t, "idle", "all"), 0);
        /* EIO on write: reported, the page stays in RAM, no block held */
        fail_writes_err = -EIO;
        assert_int_equal(st(&t, "writeback", "idle"), -EIO);
        struct uzram_stats s = stats(&t);
        assert_int_equal(s.bd_count, 0);
        assert_int_equal(s.bd_failed, 1);
        verify(&t);
        /* ENOSPC likewise */
        fail_writes_err = -ENOSPC;
        assert_int_equal(st(&t, "writeback", "page_index=4"), -ENOSPC);
        assert_false(slot_flags(&t, 4) & SLOT_WB);
        verify(&t);
        /* the medium recovers: writeback works */
        fail_writes_err = 0;
        assert_int_equal(st(&t, "idle", "all"), 0);
        assert_int_equal(st(&t, "writeback", "idle"), 0);
        assert_int_equal(stats(&t).bd_count, 32);
        /* EIO on read: -EIO, counted in failed_reads; others read fine */
        fail_reads_err = -EIO;
        uint8_t b[PAGE];
        assert_int_equal(uzram_read(t.d, b, PAGE, 2 * PAGE), -EIO);
        assert_int_equal(uzram_read(t.d, b, 10, 2 * PAGE + 5), -EIO);
        assert_int_equal(uzram_write(t.d, b, 10, 2 * PAGE + 5), -EIO);   /* RMW needs the read */
        assert_int_equal(stats(&t).failed_reads, 3);
        /* a whole-page overwrite needs no read: it works and frees the block */
        put(&t, 2, 1, 5);
        fail_reads_err = 0;
        uz_backing_fault_hook = NULL;
        verify(&t);
        assert_int_equal(stats(&t).bd_count, 31);
        close_dev(&t);
    }
    /* a real ENOSPC: a 3-block backing file, writeback stops when full */
    struct dev t;
    open_dev(&t, 8, make_backing(3), NULL, NULL, 0);
    for (uint64_t p = 0; p < 8; p++)
        put(&t, p, 1, p);
    assert_int_equal(st(&t, "idle", "all"), 0);
    assert_int_equal(st(&t, "writeback", "idle"), -ENOSPC);
    assert_int_equal(stats(&t).bd_count, 3);
    verify(&t);
    close_dev(&t);
}

/* ------------------------------------------------------------ corpus figures */

static double mib(uint64_t b) { return (double)b / (1 << 20); }

static void check_all(struct uzram *d, const uint8_t *data, uint64_t pages, const char *what)
{
    uint8_t *buf = malloc(1 << 20);
    for (uint64_t p = 0; p < pages; p += 256) {
        uint64_t n = pages - p < 256 ? pages - p : 256;
        int rc = uzram_read(d, buf, n * PAGE, p * PAGE);
        if (rc != 0)
            fail_msg("%s: read at page %llu: %d %s", what, (unsigned long long)p, rc, uzram_last_error());
        if (memcmp(buf, data + p * PAGE, n * PAGE) != 0)
            fail_msg("%s: pages %llu.. differ", what, (unsigned long long)p);
    }
    free(buf);
}

static struct uzram *corpus_dev(uint64_t pages, const char *bd, uint64_t limit, const char *secondary)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = pages * PAGE;
    cfg.backing_dev = bd;
    cfg.mem_limit = limit;
    cfg.recomp_algorithm[0] = secondary;
    struct uzram *d = NULL;
    if (uzram_create(&cfg, &d) != 0)
        fail_msg("create: %s", uzram_last_error());
    return d;
}

static void write_all(struct uzram *d, const uint8_t *data, uint64_t pages)
{
    for (uint64_t p = 0; p < pages; p += 256) {
        uint64_t n = pages - p < 256 ? pages - p : 256;
        int rc = uzram_write(d, data + p * PAGE, n * PAGE, p * PAGE);
        if (rc != 0)
            fail_msg("write at page %llu: %d %s", (unsigned long long)p, rc, uzram_last_error());
    }
}

static void figures_for(const char *name)
{
    uint64_t pages;
    uint8_t *data = test_corpus_load(name, UNDER_SANITIZER ? 4096 : 0, &pages);
    if (!data) {
        print_message("%s: not found, skipped\n", name);
        return;
    }
    struct uzram_stats s0, s1;

    /* (a) memory limit at a quarter of what the data compresses to */
    struct uzram *d = corpus_dev(pages, NULL, 0, NULL);
    write_all(d, data, pages);
    uzram_get_stats(d, &s0);
    uzram_destroy(d);
    uint64_t limit = s0.mem_used_total / 4 / PAGE * PAGE;
    d = corpus_dev(pages, make_backing(pages), limit, NULL);
    write_all(d, data, pages);
    check_all(d, data, pages, "(a)");
    uzram_get_stats(d, &s1);
    print_message("%s (a) %llu pages (%.1f MiB), mem_limit %.1f MiB: mem_used %.1f MiB, footprint "
                  "%.1f MiB (slot table %.2f, streams+meta %.2f), forwarded %llu, bd_count %llu, "
                  "failed_writes %llu, all pages correct\n", name, (unsigned long long)pages,
                  mib(pages * PAGE), mib(limit), mib(s1.mem_used_total), mib(s1.footprint),
                  mib(s1.slot_table_bytes), mib(s1.footprint - s1.mem_used_total - s1.slot_table_bytes),
                  (unsigned long long)s1.forwarded, (unsigned long long)s1.bd_count,
                  (unsigned long long)s1.failed_writes);
    assert_true(s1.mem_used_total <= limit);
    assert_int_equal(s1.failed_writes, 0);
    uzram_destroy(d);
    unlink(bd_path);

    /* (b) idle all + writeback idle, raw then compressed */
    for (int comp = 0; comp < 2; comp++) {
        d = corpus_dev(pages, make_backing(pages), 0, NULL);
        if (comp)
            assert_int_equal(uzram_attr_store(d, "writeback_compressed", "1", 1), 0);
        write_all(d, data, pages);
        uzram_get_stats(d, &s0);
        assert_int_equal(uzram_attr_store(d, "idle", "all", 3), 0);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(uzram_attr_store(d, "writeback", "idle", 4), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        uzram_get_stats(d, &s1);
        check_all(d, data, pages, "(b)");
        char cmd[128];
        snprintf(cmd, sizeof cmd, "du -k %s", bd_path);
        FILE *f = popen(cmd, "r");
        unsigned long long kb = 0;
        if (f) {
            if (fscanf(f, "%llu", &kb) != 1)
                kb = 0;
            pclose(f);
        }
        print_message("%s (b%s) writeback idle: footprint %.1f -> %.2f MiB (slot table %.2f, "
                      "allocator %.2f), bd_count %llu of %llu pages (rest same-filled: %llu), "
                      "%.0f MB/s, file uses %.1f MiB, all pages correct\n", name,
                      comp ? " compressed" : "", mib(s0.footprint), mib(s1.footprint),
                      mib(s1.slot_table_bytes), mib(s1.mem_used_total),
                      (unsigned long long)s1.bd_count, (unsigned long long)pages,
                      (unsigned long long)s1.same_pages,
                      (double)s1.bd_count * PAGE / 1e6 /
                          ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9),
                      kb / 1024.0);
        assert_int_equal(s1.bd_count + s1.same_pages, s0.orig_data_size / PAGE);
        assert_int_equal(s1.mem_used_total, 0);
        uzram_destroy(d);
        unlink(bd_path);
    }
    bd_path[0] = 0;

    /* (c) lz4 + zstd secondary: idle all, recompress type=idle */
    d = corpus_dev(pages, NULL, 0, "zstd");
    write_all(d, data, pages);
    uzram_get_stats(d, &s0);
    assert_int_equal(uzram_attr_store(d, "idle", "all", 3), 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(uzram_attr_store(d, "recompress", "type=idle", 9), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    uzram_compact(d);
    uzram_get_stats(d, &s1);
    check_all(d, data, pages, "(c)");
    double fall = 1.0 - (double)s1.footprint / (double)s0.footprint;
    print_message("%s (c) lz4 -> zstd recompress type=idle: footprint %.1f -> %.1f MiB (-%.1f%%), "
                  "compr %.1f -> %.1f MiB, %llu recompressed, %llu incompressible, %.0f MB/s, "
                  "all pages correct\n", name, mib(s0.footprint), mib(s1.footprint), 100 * fall,
                  mib(s0.compr_data_size), mib(s1.compr_data_size),
                  (unsigned long long)s1.recompressed, (unsigned long long)s1.recomp_incomp,
                  (double)s1.recompressed * PAGE / 1e6 /
                      ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9));
    /* The issue asks for >= 25%: perl's pages clear it by far, sqlite's do
     * not with per-page zstd (about 17%; see the report).  What is checked
     * here is that recompression pays at all. */
    assert_true(fall >= 0.25);
    uzram_destroy(d);
    free(data);
}

static void test_corpus_figures(void **state)
{
    (void)state;
    figures_for("sqlite.pages.zst");
    figures_for("perl.pages.zst");
}

/* Backing device names (backing.c): paths and NBD URIs judged by their
 * text alone, as the attribute, the CLI, uzram.conf and the plugin see
 * them. */
static void test_backing_names(void **state)
{
    (void)state;
    static const char *const good[] = {
        "/var/lib/uzram/backing.img", "/dev/sdb1",
        "nbd://memhost/cold", "nbd://memhost:10809/cold", "nbd://127.0.0.1:10809/",
        "nbd://[::1]:10809/x", "nbds://memhost/cold?tls-psk-file=/etc/psk",
        "nbd+unix:///cold?socket=/run/mem.sock", "nbds+unix:///?socket=/run/m.sock&tls-psk-file=/p",
        "nbd://h/x?connections=2&timeout=5",
        "nbds://alice@memhost:10809/cold?tls-psk-file=/etc/psk", "nbds://alice@[::1]:10809/",
        "nbds+unix://alice@/?socket=/run/m.sock&tls-psk-file=/p",
    };
    static const char *const bad[] = {
        "", "relative/file", "nbd://", "nbd:///export", "nbd://:10809/x", "nbd://host:/x",
        "nbd://host:port/x", "nbd://[::1/x", "nbd+unix:///x", "nbd+unix:///x?socket=rel.sock",
        "nbd+unix://host/x?socket=/s", "nbd://host/ex port", "/path with blank",
        "nbds://alice@/x", "nbds+unix://alice@host/?socket=/s",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int r = uzram_backing_name(good[i]);
        if (r < 0)
            fail_msg("'%s' refused: %s", good[i], uzram_last_error());
        assert_int_equal(r, good[i][0] == '/' ? 0 : 1);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (uzram_backing_name(bad[i]) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(uzram_last_error(), "backing_dev"));
    }
    /* a URI that parses but whose own parameters are out of range, and a
     * server that is not there: errors at open, with the reason */
    struct uz_backing *b = NULL;
    assert_int_equal(uz_backing_open(&b, "nbd://127.0.0.1:1/?connections=99"), -EINVAL);
    assert_int_equal(uz_backing_open(&b, "nbd://127.0.0.1:1/?timeout=0"), -EINVAL);
    int err = uz_backing_open(&b, "nbd+unix:///?socket=/nonexistent/uzram-test.sock&timeout=2");
    assert_true(err < 0);
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backing_names),
        cmocka_unit_test(test_backing_dev_attr),
        cmocka_unit_test(test_writeback_modes),
        cmocka_unit_test(test_writeback_limit),
        cmocka_unit_test(test_idle_age),
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_corpus_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
