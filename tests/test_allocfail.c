/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_allocfail.c - allocation-failure sweeps, SQLite style.
 *
 * Every allocation uzram makes goes through mem.c, which can fail the Nth
 * fallible call from the moment it is armed (uz_fault_arm).  For each
 * scenario below -- (a) create and writes, (b) overwrite, discard and
 * compact, (c) the attribute paths, (d) backing device, idle, writeback
 * and recompression -- and each allocator:
 *
 *   1. build the starting state, run the scenario with no fault armed and
 *      count its fallible calls (uz_fault_count after uz_fault_arm(0));
 *   2. for every N in 1..count: rebuild the same starting state with no
 *      fault, arm N, run the scenario, disarm, and check that
 *        - every call returned 0 or -ENOMEM (never another error), and
 *          -ENOMEM only from a call during which the fault fired (or under
 *          a memory limit the scenario set itself), with a message;
 *        - the device reads back exactly the model: for a failed write,
 *          each page of its range is wholly old or wholly new, new pages
 *          first (the model takes what the device holds only then);
 *        - a failed create creates nothing; a failed disksize store leaves
 *          the device uninitialised, and a retry works;
 *        - a failed attribute store changed nothing: every readable
 *          attribute but the event counters reads as before, every slot is
 *          in the state it was; writeback and recompress, the two stores
 *          uzram.h says are not all-or-nothing, may only have moved pages
 *          as they move them (to the backing device, to a secondary);
 *        - the allocator's own consistency check passes, mm_stat and
 *          io_stat agree with what happened (failed_writes counts exactly
 *          the failed write calls);
 *        - nothing leaks: uz_heap_bytes() is back where it started after
 *          the device is destroyed (and, outside sanitizers and valgrind,
 *          the process's address space has not grown by a reservation).
 *      The fault must fire in every run: the scenarios are deterministic.
 *
 * Scenarios:
 *   (a) create + writes of mixed pages: same-filled, huge, normal, zero,
 *       partial unaligned ranges, multi-page ranges, partial writes into
 *       same-filled and huge pages; for every allocator x every codec.
 *   (b) overwrite + discard + compact on a fragmented device: overwrites
 *       with other sizes, partial discards (read-modify-write), write_zeroes,
 *       compaction through uzram_compact() and the "compact" attribute.
 *   (e) shared pages (dedup on): duplicates shared, copy on write,
 *       discard, recompression and writeback of shared pages, the last
 *       references overwritten.
 *   (c) attribute paths: comp_algorithm, algorithm_params and disksize on
 *       an uninitialised device, mem_limit (writes over it fail: expected),
 *       compact, mem_used_max, mm_stat, reset + disksize again.
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
#include <time.h>

#include "lib/model_page.h"
#include "lib/valgrind_detect.h"

#include "alloc.h"
#include "mem.h"
#include "slot.h"
#include "device.h"
#include "page.h"
#include "uzram.h"

#define PAGE 4096u
#define MAXPAGES 64u

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* ------------------------------------------------------------ data */

enum { K_ZERO, K_SAME, K_TEXT, K_RANDOM, K_HALF, K_HEAD };

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* len bytes of kind; an aligned K_SAME page is same-filled, K_RANDOM is
 * huge, K_HEAD has a random head of seed % 4097 bytes per page (any
 * compressed size). */
static void fill(uint8_t *p, size_t len, int kind, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        switch (kind) {
        case K_ZERO: p[i] = 0; break;
        case K_SAME: p[i] = (uint8_t)(mix(seed) >> (8 * (i % 8))); break;
        case K_TEXT: p[i] = (uint8_t)("uzram allocation failure sweep "[(i + seed) % 31] ^
                                      (i % 199 == seed % 199 ? 0x20 : 0)); break;
        case K_RANDOM: p[i] = (uint8_t)(mix(i / 8 + (uint64_t)seed * 1000003u) >> (8 * (i % 8))); break;
        case K_HALF: p[i] = (i % PAGE) < PAGE / 2 ? (uint8_t)mix(i ^ seed) : (uint8_t)(i / 64); break;
        default: p[i] = (i % PAGE) < seed % (PAGE + 1) ? (uint8_t)mix(i * 31 + seed) : 0; break;
        }
    }
}

/* ------------------------------------------------------------ a run */

struct run {
    const char *allocator;
    const char *algo;
    struct uzram *dev;
    uint8_t model[MAXPAGES * PAGE];
    uint64_t size;          /* disksize (0: uninitialised or no device) */
    bool limited;           /* a mem_limit the scenario set is in force */
    uint64_t failed_io;     /* write/discard calls that returned -ENOMEM since init */
    unsigned enomem;        /* calls that returned -ENOMEM in this run */
    bool expect_fault;      /* a fault is armed for this run */
};

static struct run R;
static uint8_t wbuf[MAXPAGES * PAGE], rbuf[MAXPAGES * PAGE];

/* rc of a call: 0, or -ENOMEM from a fault that fired during the call (or
 * under a limit when limit_ok).  Anything else fails the test. */
static void expect_rc(int rc, bool fired_before, bool limit_ok, const char *what)
{
    if (rc == 0)
        return;
    if (rc != -ENOMEM)
        fail_msg("%s: returned %d (%s), want 0 or -ENOMEM [%s/%s]", what, rc,
                 uzram_last_error(), R.allocator, R.algo);
    bool fired_now = !fired_before && uz_fault_fired();
    if (!fired_now && !(limit_ok && R.limited))
        fail_msg("%s: -ENOMEM but no fault fired during the call (%s) [%s/%s]", what,
                 uzram_last_error(), R.allocator, R.algo);
    if (uzram_last_error()[0] == 0)
        fail_msg("%s: -ENOMEM without a message", what);
    R.enomem++;
}

/* After a write-like call of [off, off+len) failed: each page is wholly old
 * or new (newdata NULL: zeros), new ones first; the model takes the device's
 * pages. */
static void accept_partial(uint64_t off, size_t len, const uint8_t *newdata, const char *what)
{
    uint64_t p0 = off / PAGE, p1 = (off + len - 1) / PAGE;
    bool old_seen = false;
    uint8_t now[PAGE], want[PAGE];
    for (uint64_t p = p0; p <= p1; p++) {
        uint8_t *old = R.model + p * PAGE;
        assert_int_equal(uzram_read(R.dev, now, PAGE, p * PAGE), 0);
        model_page_after(want, old, p, off, len, newdata, PAGE);
        bool is_old = memcmp(now, old, PAGE) == 0, is_new = memcmp(now, want, PAGE) == 0;
        if (!is_old && !is_new)
            fail_msg("%s [%llu,+%zu) failed: page %llu is neither old nor new [%s/%s]", what,
                     (unsigned long long)off, len, (unsigned long long)p, R.allocator, R.algo);
        if (is_new && !is_old && old_seen)
            fail_msg("%s [%llu,+%zu) failed: page %llu written after an unwritten page [%s/%s]",
                     what, (unsigned long long)off, len, (unsigned long long)p, R.allocator, R.algo);
        old_seen |= is_old && !is_new;
        memcpy(old, now, PAGE);
    }
}

static void do_write(uint64_t off, size_t len, int kind, uint32_t seed)
{
    fill(wbuf, len, kind, seed);
    bool f0 = uz_fault_fired();
    int rc = uzram_write(R.dev, wbuf, len, off);
    expect_rc(rc, f0, true, "write");
    if (rc == 0) {
        memcpy(R.model + off, wbuf, len);
    } else {
        R.failed_io++;
        accept_partial(off, len, wbuf, "write");
    }
}

static void do_discard(uint64_t off, size_t len, bool zeroes)
{
    bool f0 = uz_fault_fired();
    int rc = zeroes ? uzram_write_zeroes(R.dev, len, off) : uzram_discard(R.dev, len, off);
    expect_rc(rc, f0, true, zeroes ? "write_zeroes" : "discard");
    if (rc == 0) {
        memset(R.model + off, 0, len);
    } else {
        R.failed_io++;
        accept_partial(off, len, NULL, zeroes ? "write_zeroes" : "discard");
    }
}

/* What a store may change and must put back when it fails: the text of
 * every readable attribute but the event counters (io_stat, debug_stat,
 * policy_stat, bd_stat count attempts, failed ones included) and the state
 * bits of every slot (IDLE and the atime aside). */
#define SNAP_MAX 8192
struct snap {
    char text[SNAP_MAX];
    uint32_t slot[64];
    uint64_t nslots;
};

static void take_snap(struct snap *sn)
{
    size_t len = 0;
    const char *name;
    unsigned mode;
    for (unsigned i = 0; (name = uzram_attr_name(i, &mode)) != NULL; i++) {
        if (!(mode & 0444) || !strcmp(name, "io_stat") || !strcmp(name, "debug_stat") ||
            !strcmp(name, "policy_stat") || !strcmp(name, "bd_stat"))
            continue;
        len += (size_t)snprintf(sn->text + len, SNAP_MAX - len, "%s: ", name);
        int n = uzram_attr_show(R.dev, name, sn->text + len, SNAP_MAX - len);
        assert_true(n >= 0);
        len += (size_t)n;
    }
    sn->nslots = R.dev->initialised ? R.dev->nslots : 0;
    for (uint64_t i = 0; i < sn->nslots && i < 64; i++)
        sn->slot[i] = uz_slot_peek(R.dev->store, i) & SLOT_STATE & ~SLOT_IDLE;
}

/* A failed store of writeback or recompress may leave pages moved (the
 * contract in uzram.h): each slot is as it was or moved as the store
 * moves pages (to the backing device; to a secondary's object or group),
 * and its bytes are the same (verify() reads every page back). */
static bool moved_as_allowed(const char *name, uint32_t before, uint32_t after)
{
    if (before == after)
        return true;
    if (!strcmp(name, "writeback"))
        return (before & SLOT_OBJ) && (after & SLOT_WB);
    if (!strcmp(name, "recompress"))
        return (before & (SLOT_OBJ | SLOT_SAME)) && (after & (SLOT_PRIO_MASK | SLOT_INCOMP));
    return false;
}

static unsigned failed_stores;   /* failed stores whose effect was checked */

static int store(const char *name, const char *value)
{
    static struct snap before, after;
    take_snap(&before);
    bool f0 = uz_fault_fired();
    int rc = uzram_attr_store(R.dev, name, value, strlen(value));
    char what[96];
    snprintf(what, sizeof what, "store %s=%s", name, value);
    expect_rc(rc, f0, false, what);
    if (rc != 0) {
        failed_stores++;
        take_snap(&after);
        bool scan = !strcmp(name, "writeback") || !strcmp(name, "recompress");
        if (!scan && strcmp(before.text, after.text) != 0)
            fail_msg("%s failed (%d) but changed the attributes:\n--- before\n%s\n--- after\n%s",
                     what, rc, before.text, after.text);
        assert_int_equal(before.nslots, after.nslots);
        for (uint64_t i = 0; i < before.nslots && i < 64; i++)
            if (!moved_as_allowed(name, before.slot[i], after.slot[i]))
                fail_msg("%s failed (%d) but changed slot %llu: state %#x -> %#x", what, rc,
                         (unsigned long long)i, before.slot[i], after.slot[i]);
    }
    return rc;
}

/* Store disksize, retrying once after an injected -ENOMEM (which must
 * leave the device uninitialised).  The model becomes zeros. */
static void set_disksize(const char *value, uint64_t bytes)
{
    if (store("disksize", value) != 0) {
        char st[8];
        assert_int_equal(uzram_attr_show(R.dev, "initstate", st, sizeof st), 2);
        assert_string_equal(st, "0\n");
        assert_int_equal(uzram_disksize(R.dev), 0);   /* a failed store changes nothing */
        assert_int_equal(uzram_read(R.dev, rbuf, 1, 0), -ENXIO);
        assert_int_equal(uzram_attr_store(R.dev, "disksize", value, strlen(value)), 0);
    }
    assert_int_equal(uzram_disksize(R.dev), bytes);
    R.size = bytes;
    R.failed_io = 0;
    memset(R.model, 0, sizeof R.model);
}

/* Create R.dev with disksize pages (0: uninitialised). */
static const char *create_dedup;   /* the dedup mode of devices made (NULL: default) */

static int create(uint64_t pages, unsigned streams)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.dedup = create_dedup;
    cfg.disksize = pages * PAGE;
    cfg.algorithm = R.algo;
    cfg.allocator = R.allocator;
    cfg.streams = streams;
    struct uzram *dev = NULL;
    int rc = uzram_create(&cfg, &dev);
    if (rc == 0) {
        assert_non_null(dev);
        R.dev = dev;
        R.size = pages * PAGE;
        R.failed_io = 0;
        memset(R.model, 0, sizeof R.model);
    } else if (dev != NULL) {
        fail_msg("create failed (%d) but handed out a device", rc);
    }
    return rc;
}

static void verify(const char *scenario)
{
    if (!R.dev)
        return;
    if (R.size == 0) {
        assert_int_equal(uzram_read(R.dev, rbuf, 1, 0), -ENXIO);
        return;
    }
    assert_int_equal(uzram_read(R.dev, rbuf, R.size, 0), 0);
    if (memcmp(rbuf, R.model, R.size) != 0) {
        uint64_t i = 0;
        while (rbuf[i] == R.model[i])
            i++;
        fail_msg("%s [%s/%s]: byte %llu (page %llu) reads %#x, model %#x", scenario, R.allocator,
                 R.algo, (unsigned long long)i, (unsigned long long)(i / PAGE), rbuf[i], R.model[i]);
    }
    int rc = uzram_check(R.dev);
    if (rc != 0)
        fail_msg("%s [%s/%s]: store check: %s", scenario, R.allocator, R.algo,
                 uzram_last_error());
    struct uzram_stats st;
    uzram_get_stats(R.dev, &st);
    uint64_t nonzero = 0;
    static const uint8_t zero[PAGE];
    for (uint64_t p = 0; p < R.size / PAGE; p++)
        nonzero += memcmp(R.model + p * PAGE, zero, PAGE) != 0;
    /* as in zram, written-back pages leave orig_data_size for bd_count (a
     * shared one is one block for all its references: dedup_pages) */
    if (st.orig_data_size + (st.bd_count + st.dedup_pages) * PAGE < nonzero * PAGE ||
        st.orig_data_size > R.size ||
        st.compr_data_size > st.orig_data_size || st.mem_used_total > st.mem_used_max)
        fail_msg("%s [%s/%s]: mm_stat disagrees: orig %llu (%llu pages hold data) compr %llu "
                 "used %llu max %llu", scenario, R.allocator, R.algo,
                 (unsigned long long)st.orig_data_size, (unsigned long long)nonzero,
                 (unsigned long long)st.compr_data_size, (unsigned long long)st.mem_used_total,
                 (unsigned long long)st.mem_used_max);
    if (st.failed_writes != R.failed_io)
        fail_msg("%s [%s/%s]: io_stat failed_writes %llu, but %llu write calls failed", scenario,
                 R.allocator, R.algo, (unsigned long long)st.failed_writes,
                 (unsigned long long)R.failed_io);
}

static void teardown_dev(void)
{
    uzram_destroy(R.dev);
    R.dev = NULL;
    R.size = 0;
}

/* ------------------------------------------------------------ scenarios */

/* (a) create + writes of mixed pages */
static void a_setup(void) {}

static void a_body(void)
{
    bool f0 = uz_fault_fired();
    int rc = create(24, 2);
    expect_rc(rc, f0, false, "create");
    if (rc != 0) {
        /* nothing was created; the fault is spent, so a retry works */
        assert_null(R.dev);
        assert_int_equal(create(24, 2), 0);
    }
    do_write(0 * PAGE, PAGE, K_SAME, 1);
    do_write(1 * PAGE, PAGE, K_RANDOM, 2);
    do_write(2 * PAGE, PAGE, K_TEXT, 3);
    do_write(3 * PAGE, PAGE, K_ZERO, 4);
    do_write(4 * PAGE + 100, 2 * PAGE + 500, K_TEXT, 5);       /* partial, unaligned */
    for (int i = 0; i < 6; i++)                                 /* pages 8..13, one call */
        fill(wbuf + i * PAGE, PAGE, (int[]){K_SAME, K_RANDOM, K_TEXT, K_HALF, K_HEAD, K_RANDOM}[i],
             1000 + 700 * (uint32_t)i);
    memcpy(rbuf, wbuf, 6 * PAGE);
    {
        bool f1 = uz_fault_fired();
        int w = uzram_write(R.dev, rbuf, 6 * PAGE, 8 * PAGE);
        expect_rc(w, f1, false, "write of 6 mixed pages");
        if (w == 0) {
            memcpy(R.model + 8 * PAGE, rbuf, 6 * PAGE);
        } else {
            R.failed_io++;
            accept_partial(8 * PAGE, 6 * PAGE, rbuf, "write of 6 mixed pages");
        }
    }
    do_write(0 * PAGE + 1000, 50, K_RANDOM, 6);                /* into a same-filled page */
    do_write(1 * PAGE + 4000, 200, K_TEXT, 7);                 /* huge page -> next page */
    do_write(8 * PAGE, 3 * PAGE, K_HEAD, 2500);                /* replace objects */
    do_write(15 * PAGE + 17, 5 * PAGE, K_HALF, 8);             /* unaligned, 6 pages */
    do_write(24 * PAGE - 10, 10, K_RANDOM, 9);                 /* the last bytes */
    do_write(20 * PAGE, PAGE, K_SAME, 10);
    do_write(20 * PAGE + 8, 8, K_TEXT, 11);                    /* same-filled no more */
}

/* (b) a fragmented device; overwrite + discard + compact */
static void b_setup(void)
{
    assert_int_equal(create(64, 1), 0);
    for (uint32_t p = 0; p < 64; p++)
        do_write(p * PAGE, PAGE, p % 11 == 0 ? K_SAME : K_HEAD, p * 61 + 300);
    for (uint32_t p = 0; p < 64; p += 3)
        do_discard(p * PAGE, PAGE, false);
    for (uint32_t p = 1; p < 64; p += 5)
        do_write(p * PAGE, PAGE, K_HEAD, p * 977 + 100);
    assert_int_equal(R.enomem, 0);
}

static void b_body(void)
{
    do_write(10 * PAGE, 4 * PAGE, K_HEAD, 3900);               /* bigger objects */
    do_write(40 * PAGE, 2 * PAGE, K_TEXT, 12);                 /* smaller objects */
    do_write(50 * PAGE + 300, 1000, K_RANDOM, 13);
    do_discard(20 * PAGE + 100, 3 * PAGE, false);              /* partial head and tail */
    do_discard(30 * PAGE + 5, 10, true);                       /* write_zeroes in a page */
    do_discard(31 * PAGE, 2 * PAGE, false);                    /* whole pages */
    (void)uzram_compact(R.dev);
    store("compact", "1");
    do_write(31 * PAGE, 2 * PAGE, K_HEAD, 1200);
    do_write(60 * PAGE, 4 * PAGE, K_RANDOM, 14);
    do_discard(0, 16 * PAGE, false);
    store("compact", "1\n");
    do_write(0, 3 * PAGE, K_HEAD, 2000);
    for (uint32_t i = 0; i < 24; i++)                          /* churn over every class */
        do_write((i * 7 % 64) * PAGE, PAGE, K_HEAD, i * 173 + 50);
    (void)uzram_compact(R.dev);
}

/* (c) attribute paths */
static void c_setup(void)
{
    assert_int_equal(create(0, 1), 0);
}

static void c_body(void)
{
    store("comp_algorithm", "zstd");
    store("algorithm_params", "algo=zstd level=5");
    store("max_comp_streams", "2");
    set_disksize("128K", 128 * 1024);
    for (uint32_t p = 0; p < 8; p++)
        do_write(p * PAGE, PAGE, (int)(p % 6), p + 77);
    store("mem_limit", "24K");
    R.limited = true;
    for (uint32_t p = 8; p < 24; p++)
        do_write(p * PAGE, PAGE, K_RANDOM, p);                  /* over the limit: -ENOMEM */
    store("mem_limit", "0");
    R.limited = false;
    do_write(24 * PAGE, 4 * PAGE, K_HEAD, 1800);
    store("compact", "1");
    char mm[256];
    assert_true(uzram_attr_show(R.dev, "mm_stat", mm, sizeof mm) > 0);
    store("mem_used_max", "0");
    store("reset", "1");
    R.size = 0;
    assert_int_equal(uzram_read(R.dev, rbuf, 1, 0), -ENXIO);
    set_disksize("65536", 65536);
    assert_int_equal(uzram_attr_store(R.dev, "comp_algorithm", "deflate", 7), -EBUSY);
    for (uint32_t p = 0; p < 16; p += 2)
        do_write(p * PAGE, 2 * PAGE, K_HEAD, p * 250 + 9);
    store("reset", "1\n");
    store("comp_algorithm", "lz4");
    set_disksize("32K\n", 32768);
    do_write(PAGE / 2, 3 * PAGE, K_TEXT, 15);
}

/* (d) beyond RAM: backing device, idle, writeback, recompression (groups
 * and pages), through the attribute paths */
static char backing_path[64];

static void d_setup(void)
{
    if (!backing_path[0]) {
        snprintf(backing_path, sizeof backing_path, "/tmp/uzram-allocfail.%d", (int)getpid());
        FILE *f = fopen(backing_path, "w");
        assert_non_null(f);
        assert_int_equal(ftruncate(fileno(f), 1 << 20), 0);
        fclose(f);
    }
    assert_int_equal(create(0, 1), 0);
}

static void d_body(void)
{
    /* a store that failed on an injected fault changed nothing: do it
     * again, so the rest of the scenario has what it needs */
    if (store("backing_dev", backing_path) != 0)
        assert_int_equal(uzram_attr_store(R.dev, "backing_dev", backing_path, strlen(backing_path)), 0);
    if (store("recomp_algorithm", "algo=zstd priority=1") != 0)
        assert_int_equal(uzram_attr_store(R.dev, "recomp_algorithm", "algo=zstd priority=1", 20), 0);
    set_disksize("128K", 128 * 1024);
    for (uint32_t p = 0; p < 24; p++)
        do_write(p * PAGE, PAGE, (int)(p % 6), p + 300);
    store("idle", "all");
    store("recompress", "type=idle");              /* regroups runs of 8, then pages */
    do_write(3 * PAGE + 100, 200, K_TEXT, 5);       /* breaks a group */
    store("idle", "all");
    store("recompress", "type=idle group=1");
    store("writeback", "page_index=20");
    store("writeback", "page_indexes=16-19");
    store("writeback_compressed", "1");
    store("writeback", "idle");
    do_discard(17 * PAGE, 2 * PAGE, false);        /* frees backing blocks */
    do_write(20 * PAGE, PAGE, K_TEXT, 9);           /* overwrites a written-back page */
    store("writeback", "huge");
    char bd[64];
    assert_true(uzram_attr_show(R.dev, "bd_stat", bd, sizeof bd) > 0);
}

/* (e) shared pages: duplicates found and shared, copy on write, discard,
 * recompression and writeback of shared pages, overwrites that free them */
static void e_setup(void)
{
    create_dedup = "1";
    d_setup();
}

static void e_body(void)
{
    if (store("backing_dev", backing_path) != 0)
        assert_int_equal(uzram_attr_store(R.dev, "backing_dev", backing_path, strlen(backing_path)), 0);
    if (store("recomp_algorithm", "algo=zstd priority=1") != 0)
        assert_int_equal(uzram_attr_store(R.dev, "recomp_algorithm", "algo=zstd priority=1", 20), 0);
    set_disksize("128K", 128 * 1024);
    for (uint32_t p = 0; p < 24; p++)                          /* 4 contents, each 6 times */
        do_write(p * PAGE, PAGE, p % 4 == 3 ? K_RANDOM : K_TEXT, p % 4);
    do_write(5 * PAGE + 300, 100, K_TEXT, 77);                  /* copy on write */
    do_discard(6 * PAGE, PAGE, false);                          /* one reference less */
    store("idle", "all");
    store("recompress", "type=idle group=1");                  /* shared pages once */
    store("writeback", "page_index=1");                        /* a shared page out */
    store("writeback", "huge");
    for (uint32_t p = 0; p < 24; p += 4)                        /* the last references go */
        do_write(p * PAGE, PAGE, K_HEAD, p + 900);
    do_write(30 * PAGE, PAGE, K_TEXT, 1);                       /* a new duplicate */
}

struct scenario {
    const char *name;
    void (*setup)(void);
    void (*body)(void);
};

static const struct scenario SA = {"create+writes", a_setup, a_body};
static const struct scenario SB = {"overwrite+discard+compact", b_setup, b_body};
static const struct scenario SC = {"attributes", c_setup, c_body};
static const struct scenario SD = {"backing+writeback+recompress", d_setup, d_body};
static const struct scenario SE = {"shared pages", e_setup, e_body};

/* ------------------------------------------------------------ the sweep */

static uint64_t vm_size_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %llu", (unsigned long long *)&kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static unsigned total_runs;

/* One run: starting state without faults, then the body with fault n armed
 * (0: none).  Returns the number of fallible calls the body made. */
static uint64_t one_run(const struct scenario *s, const char *allocator, const char *algo,
                        uint64_t n)
{
    uint64_t heap0 = uz_heap_bytes();
    memset(&R, 0, sizeof R);
    R.allocator = allocator;
    R.algo = algo;
    uz_fault_arm(0);
    s->setup();
    R.enomem = 0;
    R.expect_fault = n != 0;
    uz_fault_arm(n);
    s->body();
    uint64_t calls = uz_fault_count();
    bool fired = uz_fault_fired();
    uz_fault_arm(0);
    if (n && !fired)
        fail_msg("%s [%s/%s]: fault %llu of %llu never fired: the scenario is not deterministic",
                 s->name, allocator, algo, (unsigned long long)n, (unsigned long long)calls);
    verify(s->name);
    teardown_dev();
    if (uz_heap_bytes() != heap0)
        fail_msg("%s [%s/%s] fault %llu: %lld heap bytes leaked", s->name, allocator, algo,
                 (unsigned long long)n, (long long)(uz_heap_bytes() - heap0));
    total_runs++;
    return calls;
}

static void sweep(const struct scenario *s, const char *allocator, const char *algo)
{
    uint64_t vm0 = vm_size_kb();
    uint64_t count = one_run(s, allocator, algo, 0);
    if (R.enomem && s != &SC)
        fail_msg("%s [%s/%s]: -ENOMEM with no fault armed", s->name, allocator, algo);
    assert_true(count > 0);
    for (uint64_t n = 1; n <= count; n++)
        one_run(s, allocator, algo, n);
    uint64_t vm1 = vm_size_kb();
    if (!UNDER_SANITIZER && !RUNNING_ON_VALGRIND && vm1 > vm0 + 16 * 1024)
        fail_msg("%s [%s/%s]: address space grew by %llu KiB over %llu runs: a reservation leaks?",
                 s->name, allocator, algo, (unsigned long long)(vm1 - vm0),
                 (unsigned long long)count);
    if (getenv("UZ_ALLOCFAIL_VERBOSE"))
        fprintf(stderr, "  %-26s %-9s %-8s %4llu fallible calls swept\n", s->name, allocator,
                algo, (unsigned long long)count);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_create_and_writes(void **state)
{
    (void)state;
    double t0 = now_s();
    unsigned runs0 = total_runs;
    for (unsigned a = 0; uz_alloc_at(a); a++)
        for (unsigned c = 0; uzram_algorithm_name(c); c++)
            sweep(&SA, uz_alloc_at(a)->name, uzram_algorithm_name(c));
    print_message("(a) create+writes: %u runs in %.1f s\n", total_runs - runs0, now_s() - t0);
}

static void test_overwrite_discard_compact(void **state)
{
    (void)state;
    double t0 = now_s();
    unsigned runs0 = total_runs;
    for (unsigned a = 0; uz_alloc_at(a); a++) {
        sweep(&SB, uz_alloc_at(a)->name, "lz4");
        sweep(&SB, uz_alloc_at(a)->name, "zstd");
    }
    print_message("(b) overwrite+discard+compact: %u runs in %.1f s\n", total_runs - runs0,
                  now_s() - t0);
}

static void test_attribute_paths(void **state)
{
    (void)state;
    double t0 = now_s();
    unsigned runs0 = total_runs;
    for (unsigned a = 0; uz_alloc_at(a); a++)
        sweep(&SC, uz_alloc_at(a)->name, "lz4");
    print_message("(c) attributes: %u runs in %.1f s\n", total_runs - runs0, now_s() - t0);
}

static void test_beyond_ram_paths(void **state)
{
    (void)state;
    double t0 = now_s();
    unsigned runs0 = total_runs;
    for (unsigned a = 0; uz_alloc_at(a); a++)
        sweep(&SD, uz_alloc_at(a)->name, "lz4");
    print_message("(c)+(d): %u failed attribute stores checked to have changed nothing "
                  "(or, for writeback and recompress, only what uzram.h allows)\n", failed_stores);
    print_message("(d) backing+writeback+recompress: %u runs in %.1f s\n", total_runs - runs0,
                  now_s() - t0);
}

static void test_shared_paths(void **state)
{
    (void)state;
    double t0 = now_s();
    unsigned runs0 = total_runs;
    for (unsigned a = 0; uz_alloc_at(a); a++)
        sweep(&SE, uz_alloc_at(a)->name, "lz4");
    create_dedup = NULL;
    print_message("(e) shared pages: %u runs in %.1f s\n", total_runs - runs0, now_s() - t0);
    unlink(backing_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_writes),
        cmocka_unit_test(test_overwrite_discard_compact),
        cmocka_unit_test(test_attribute_paths),
        cmocka_unit_test(test_beyond_ram_paths),
        cmocka_unit_test(test_shared_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
