/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_store.c - libFuzzer target: the input drives a small uzram device
 * through a sequence of operations, and every result is checked against a
 * model (a plain byte array holding what the disk must read as).
 *
 * Built by mk/reliability.mk with clang -fsanitize=fuzzer,address,undefined
 * straight from the library sources (so the library is instrumented too):
 *
 *     make fuzz FUZZ_SECONDS=60
 *
 * Input layout (every read past the end of the input yields 0 bytes, so any
 * input is valid):
 *
 *     byte 0   allocator:  uz_alloc_at(b % number of allocators)
 *     byte 1   codec:      uzram_algorithm_name(b % number of codecs); if
 *                          (b / number of codecs) is odd, the device also
 *                          has a 16-block backing file and zstd as its
 *                          secondary algorithm ("beyond RAM")
 *     byte 2   disk pages: 1 + b % 64; group_pages: 1, 2, 4, 8 by b / 64
 *              (group compression: whole aligned groups are written as one
 *              unit, partial writes and discards break groups)
 *     byte 3   flags:      bit 0  disksize is not a page multiple (rounded up)
 *                          bit 1  start with a small mem_limit
 *                          bit 2  a configured huge threshold (next byte)
 *                          bit 3  two streams instead of one
 *                          bit 5  pool mode: the device is zram0 of a pool
 *                          (uzram_pool_create); the check op then also
 *                          clones, switches to and removes devices
 *     then ops, one byte each (b % 16 through op_table[]) plus its operands.
 *
 * Pool mode (bit 5): up to three more devices live beside the current one,
 * each with its own model: clones of the current device (of a clone: a
 * clone of a clone), which the input switches to, writes, resets and
 * removes in any order (a source before its clones), every device checked
 * against its model and the pool's invariants (uzram_check) as the
 * current one is.
 *
 * Ops: write (data from generators: zeros, same-filled word, compressible,
 * random, mixed, random head + zero tail, and two that draw whole pages
 * from a pool of four, so that duplicates are common and deduplication,
 * which is on unless bit 6 of the flags byte is set, shares them), read and compare, discard,
 * write_zeroes, out-of-range I/O (must fail with -EINVAL and change
 * nothing), compact, reset (then set disksize again, maybe with another
 * algorithm: the model becomes zeros), mem_limit (small limits make writes
 * fail with -ENOMEM), malformed attribute stores (random bytes to random
 * attribute names), attribute shows into buffers of any size, one-shot
 * allocation-failure injection (uz_fault_arm), a full check, and the
 * beyond-RAM op: idle, writeback in every mode, writeback_compressed,
 * forward_threshold, recompress (a full backing file gives -ENOSPC, an
 * empty selection nothing; data must not change).
 *
 * A write (or a discard's partial pages) may fail with -ENOMEM only under a
 * memory limit or when an injected fault fired during the call.  Then the
 * range is read back: each page must be wholly old or wholly new, and the
 * new pages must come first (pages are written in order); the model takes
 * what was read.  Anything else is a bug: the target prints what it saw and
 * calls abort().
 *
 * After every op the touched range is compared with the model; every
 * CHECK_EVERY ops, and at the end of the input, everything is: the whole
 * disk, page states, mm_stat invariants and the store's invariant check
 * (uzram_check: slot.h lists what it verifies).
 *
 * Nothing is printed per input (unless FUZZ_STORE_TRACE=1 is set in the
 * environment: then every op and its result, to follow a crash input).
 * At exit a destructor prints
 * "fuzz_store: N operations" (the number of ops executed in this process).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uzram.h"
#include "alloc.h"
#include "mem.h"
#include "../lib/model_page.h"

#define PAGE 4096u
#define MAXPAGES 64u
#define DISK_MAX (MAXPAGES * PAGE)
#define CHECK_EVERY 16
#define MAX_OPS 400

/* The harness's own data loops (generators, model compares) need no
 * coverage feedback: without this, most of the time goes to tracing their
 * comparisons instead of running the library. */
#define NOCOV __attribute__((no_sanitize("coverage")))

/* ------------------------------------------------------------ input */

struct input {
    const uint8_t *p;
    size_t n;
};

static uint8_t in_u8(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint32_t in_u16(struct input *in)
{
    uint32_t v = in_u8(in);
    return v | (uint32_t)in_u8(in) << 8;
}

static uint32_t in_u24(struct input *in)
{
    uint32_t v = in_u16(in);
    return v | (uint32_t)in_u8(in) << 16;
}

static uint32_t in_u32(struct input *in)
{
    uint32_t v = in_u16(in);
    return v | in_u16(in) << 16;
}

static uint64_t in_u64(struct input *in)
{
    uint64_t v = in_u32(in);
    return v | (uint64_t)in_u32(in) << 32;
}

/* ------------------------------------------------------------ state */

static uint64_t n_ops;       /* ops executed in this process */
static uint64_t n_enomem;    /* write-like calls that failed with -ENOMEM, checked page by page */
static uint64_t n_refused;   /* bad I/O and malformed stores refused */
static uint64_t n_resets;    /* resets (the device re-made) */

__attribute__((destructor)) static void report_ops(void)
{
    fprintf(stderr, "fuzz_store: %llu operations (%llu -ENOMEM failures checked, "
            "%llu bad inputs refused, %llu resets)\n", (unsigned long long)n_ops,
            (unsigned long long)n_enomem, (unsigned long long)n_refused,
            (unsigned long long)n_resets);
}

struct fz {
    struct uzram *dev;
    struct uzram_pool *pool; /* pool mode: the pool of dev and the siblings */
    bool beyond;             /* backing file + secondary algorithm */
    uint64_t size;           /* disksize in bytes (a page multiple) */
    uint64_t npages;
    const char *algo;
    const char *allocator;
    bool limited;            /* a mem_limit is in force */
    uint64_t limit_bytes;
    uint64_t used_at_limit;  /* mem_used_total when the limit was set */
    unsigned step;
};

static uint8_t model[DISK_MAX];
static uint8_t buf[DISK_MAX + PAGE];   /* data to write; big enough for any valid range */

/* Pool mode: the other devices of the pool, each with what it must read as. */
#define MAXSIB 3
static struct sibling {
    struct uzram *dev;
    uint64_t size, npages;
    uint8_t model[DISK_MAX];
} sib[MAXSIB];
static int nsib;
static uint8_t rbuf[DISK_MAX + PAGE];  /* data read back */

static struct fz *cur;   /* for failure reports */
static int trace = -1;   /* FUZZ_STORE_TRACE set: print every op */

#define TRACE(...) do { if (trace > 0) fprintf(stderr, __VA_ARGS__); } while (0)

__attribute__((noreturn, format(printf, 1, 2))) static void bug(const char *fmt, ...);

static void bug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_store: BUG: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cur)
        fprintf(stderr, "\n  (allocator %s, algorithm %s, disk %llu bytes, step %u, last_error \"%s\")",
                cur->allocator, cur->algo, (unsigned long long)cur->size, cur->step,
                uzram_last_error());
    fprintf(stderr, "\n");
    abort();
}

/* Known library bug (reported): the "malloc" allocator's destroy() does not
 * free the objects still live, so reset and uzram_destroy leak every stored
 * page.  Until it is fixed, the fuzzer empties a malloc-allocator device
 * before resetting or destroying it, so LeakSanitizer can still catch other
 * leaks.  Build with -DFUZZ_MALLOC_LEAK_WORKAROUND=0 to see the bug. */
#ifndef FUZZ_MALLOC_LEAK_WORKAROUND
#define FUZZ_MALLOC_LEAK_WORKAROUND 1
#endif

static void before_teardown(struct fz *f)
{
    if (FUZZ_MALLOC_LEAK_WORKAROUND && !f->pool && strcmp(f->allocator, "malloc") == 0 &&
        uzram_disksize(f->dev) != 0) {
        if (uzram_discard(f->dev, (size_t)f->size, 0) != 0)
            bug("workaround discard of the whole disk failed");
        memset(model, 0, sizeof model);
    }
}

/* ------------------------------------------------------------ data */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

enum { GEN_ZERO, GEN_SAME, GEN_TEXT, GEN_RANDOM, GEN_MIXED, GEN_HEAD, GEN_POOL, GEN_POOL2, NGEN };

/* Fill dst (len bytes, destined for disk offset off) from generator kind.
 * Patterns are laid out by absolute disk offset, so an aligned write of a
 * same-fill pattern makes same-filled pages whatever the range. */
NOCOV static void gen(uint8_t *dst, size_t len, unsigned kind, uint32_t seed, uint64_t off)
{
    switch (kind % NGEN) {
    case GEN_ZERO:
        memset(dst, 0, len);
        break;
    case GEN_SAME: {
        uint64_t w = (seed & 1) ? (uint64_t)(seed & 0xff) * 0x0101010101010101ull : mix(seed);
        for (size_t i = 0; i < len; i++)
            dst[i] = (uint8_t)(w >> (8 * ((off + i) % 8)));
        break;
    }
    case GEN_TEXT: {
        static const char words[] = "zram compcache ramzswap zsmalloc xvmalloc page slot ";
        for (size_t i = 0; i < len; i++) {
            uint64_t o = off + i;
            dst[i] = (uint8_t)words[(o + seed % 7) % (sizeof words - 1)];
            if (o % 251 == seed % 251)
                dst[i] ^= (uint8_t)(seed >> 8);
        }
        break;
    }
    case GEN_RANDOM:
        for (size_t i = 0; i < len; i++)
            dst[i] = (uint8_t)(mix((off + i) / 8 * 0x1000193u ^ seed) >> (8 * ((off + i) % 8)));
        break;
    case GEN_MIXED:   /* 512-byte blocks, random or text */
        for (size_t i = 0; i < len; i++) {
            uint64_t o = off + i;
            if (mix(o / 512 ^ seed) & 1)
                dst[i] = (uint8_t)(mix(o / 8 ^ seed) >> (8 * (o % 8)));
            else
                dst[i] = (uint8_t)("abcdefgh"[(o / 16) % 8]);
        }
        break;
    case GEN_POOL:    /* pages from a pool of four, whatever their offset: duplicates */
    case GEN_POOL2: {
        uint32_t k = seed % 4;
        for (size_t i = 0; i < len; i++) {
            uint64_t o = (off + i) % PAGE;
            if (k == 3)   /* incompressible: a huge page shared */
                dst[i] = (uint8_t)(mix(o / 8 * 0x9e37u + 77) >> (8 * (o % 8)));
            else
                dst[i] = (uint8_t)("dedup anon layer shared page "[(o + k * 5) % 29] ^ (o == k * 100 ? 0x55 : 0));
        }
        break;
    }
    default: {        /* random head of x bytes, zero tail: every compressed size */
        uint32_t x = seed % (PAGE + 1);
        for (size_t i = 0; i < len; i++) {
            uint64_t o = off + i;
            dst[i] = (o % PAGE) < x ? (uint8_t)(mix(o ^ seed) & 0xff) : 0;
        }
        break;
    }
    }
}

/* ------------------------------------------------------------ checks */

NOCOV static void check_range(struct fz *f, uint64_t off, size_t len, const char *what)
{
    if (len == 0)
        return;
    memset(rbuf, 0xa5, len);
    int rc = uzram_read(f->dev, rbuf, len, off);
    if (rc != 0)
        bug("%s: read [%llu,+%zu) returned %d", what, (unsigned long long)off, len, rc);
    if (memcmp(rbuf, model + off, len) != 0) {
        size_t i = 0;
        while (rbuf[i] == model[off + i])
            i++;
        bug("%s: byte %llu reads %#x, model has %#x", what, (unsigned long long)(off + i),
            rbuf[i], model[off + i]);
    }
}

NOCOV static bool page_is_zero(const uint8_t *p)
{
    static const uint8_t zero[PAGE];
    return memcmp(p, zero, PAGE) == 0;
}

NOCOV static void check_stats(struct fz *f)
{
    struct uzram_stats st;
    uzram_get_stats(f->dev, &st);
    uint64_t nonzero = 0;
    for (uint64_t p = 0; p < f->npages; p++)
        nonzero += !page_is_zero(model + p * PAGE);
    if (st.orig_data_size % PAGE || st.orig_data_size > f->size)
        bug("mm_stat: orig_data_size %llu", (unsigned long long)st.orig_data_size);
    /* a page on the backing device is one block, however many slots share
     * it (dedup_pages counts the references beyond the first) */
    if (st.orig_data_size + (st.bd_count + st.dedup_pages) * PAGE < nonzero * PAGE)
        bug("mm_stat: orig_data_size %llu but %llu pages hold data",
            (unsigned long long)st.orig_data_size, (unsigned long long)nonzero);
    uint64_t stored = st.orig_data_size / PAGE;
    if (st.same_pages > stored || st.huge_pages > stored ||
        st.compr_data_size > (stored - st.same_pages) * PAGE)
        bug("mm_stat: stored %llu same %llu huge %llu compr %llu", (unsigned long long)stored,
            (unsigned long long)st.same_pages, (unsigned long long)st.huge_pages,
            (unsigned long long)st.compr_data_size);
    if (st.huge_pages_since < st.huge_pages)
        bug("mm_stat: huge_pages %llu > huge_pages_since %llu",
            (unsigned long long)st.huge_pages, (unsigned long long)st.huge_pages_since);
    if (st.mem_used_total > st.mem_used_max)
        bug("mm_stat: mem_used_total %llu > mem_used_max %llu",
            (unsigned long long)st.mem_used_total, (unsigned long long)st.mem_used_max);
    if (st.mem_limit != f->limit_bytes)
        bug("mm_stat: mem_limit %llu, set %llu", (unsigned long long)st.mem_limit,
            (unsigned long long)f->limit_bytes);
    if (f->limited) {
        uint64_t cap = f->limit_bytes > f->used_at_limit ? f->limit_bytes : f->used_at_limit;
        if (st.mem_used_total > cap)
            bug("mm_stat: mem_used_total %llu over the limit %llu (usage when set %llu)",
                (unsigned long long)st.mem_used_total, (unsigned long long)f->limit_bytes,
                (unsigned long long)f->used_at_limit);
    }
}

static void check_all(struct fz *f, const char *what)
{
    check_range(f, 0, f->size, what);
    for (uint64_t p = 0; p < f->npages; p++) {
        int st = uzram_page_state(f->dev, p * PAGE + (p % PAGE));
        bool zero = page_is_zero(model + p * PAGE);
        if (st != UZRAM_PAGE_ZERO && st != UZRAM_PAGE_DATA)
            bug("%s: page_state(%llu) = %d", what, (unsigned long long)p, st);
        if (st == UZRAM_PAGE_ZERO && !zero)
            bug("%s: page %llu says ZERO but holds data", what, (unsigned long long)p);
    }
    check_stats(f);
    /* the store's invariants (slot.h: counters against a recount, back-
     * references, groups, backing blocks, the allocator's own check) */
    int rc = uzram_check(f->dev);
    if (rc != 0)
        bug("%s: store check: %d: %s", what, rc, uzram_last_error());
}

/* A write-like call of [off, off+len) failed with -ENOMEM.  newdata holds
 * what the range was to become (NULL: zeros).  Each page must read wholly
 * old or wholly new, new ones first; the model takes what the device has. */
NOCOV static void accept_partial(struct fz *f, uint64_t off, size_t len, const uint8_t *newdata,
                           const char *what)
{
    if (len == 0)
        bug("%s: -ENOMEM for an empty range", what);
    n_enomem++;
    uint64_t p0 = off / PAGE, p1 = (off + len - 1) / PAGE;
    bool old_seen = false;   /* a page that is old (and not new) was seen */
    static uint8_t now[PAGE], want[PAGE];
    for (uint64_t p = p0; p <= p1; p++) {
        uint8_t *old = model + p * PAGE;
        int rc = uzram_read(f->dev, now, PAGE, p * PAGE);
        if (rc != 0)
            bug("%s: re-read of page %llu after -ENOMEM: %d", what, (unsigned long long)p, rc);
        model_page_after(want, old, p, off, len, newdata, PAGE);
        bool is_old = memcmp(now, old, PAGE) == 0;
        bool is_new = memcmp(now, want, PAGE) == 0;
        if (!is_old && !is_new) {
            size_t i = 0;
            while (now[i] == old[i] || now[i] == want[i])
                i++;
            bug("%s failed (-ENOMEM) and page %llu is neither old nor new: byte %zu is %#x, "
                "old %#x, new %#x", what, (unsigned long long)p, i, now[i], old[i], want[i]);
        }
        if (is_new && !is_old && old_seen)
            bug("%s failed (-ENOMEM): page %llu is new after an unwritten page", what,
                (unsigned long long)p);
        if (is_old && !is_new)
            old_seen = true;
        memcpy(old, now, PAGE);
    }
}

/* May this call's -ENOMEM be genuine?  Under a limit, or when an injected
 * fault fired during it. */
static bool enomem_ok(struct fz *f, bool fired_before)
{
    return f->limited || (!fired_before && uz_fault_fired());
}

static void sync_limit(struct fz *f)
{
    struct uzram_stats st;
    uzram_get_stats(f->dev, &st);
    f->limit_bytes = st.mem_limit;
    f->limited = st.mem_limit != 0;
    f->used_at_limit = st.mem_used_total;
}

/* ------------------------------------------------------------ ranges */

/* A valid range [*off, *off + *len) of the disk, chosen by the input. */
static void pick_range(struct fz *f, struct input *in, uint64_t *off, size_t *len)
{
    uint8_t mode = in_u8(in);
    uint64_t size = f->size;
    switch (mode & 3) {
    case 0: {   /* whole pages */
        uint64_t first = in_u8(in) % f->npages;
        uint64_t n = 1 + in_u8(in) % 4;
        if (n > f->npages - first)
            n = f->npages - first;
        *off = first * PAGE;
        *len = (size_t)(n * PAGE);
        break;
    }
    case 1:     /* anything, empty included */
        *off = in_u24(in) % (size + 1);
        *len = (size_t)(in_u24(in) % (size - *off + 1));
        break;
    case 2:     /* inside or around one page */
        *off = in_u24(in) % size;
        *len = 1 + in_u16(in) % PAGE;
        if (*len > size - *off)
            *len = (size_t)(size - *off);
        break;
    default: {  /* across a page boundary */
        uint64_t page = in_u8(in) % f->npages;
        uint64_t back = 1 + in_u8(in) % 256;
        *off = (page + 1) * PAGE - back;
        *len = 1 + in_u16(in) % (2 * PAGE);
        if (*len > size - *off)
            *len = (size_t)(size - *off);
        break;
    }
    }
}

/* ------------------------------------------------------------ ops */

static void op_write(struct fz *f, struct input *in)
{
    uint64_t off;
    size_t len;
    pick_range(f, in, &off, &len);
    unsigned kind = in_u8(in);
    uint32_t seed = in_u32(in);
    gen(buf, len, kind, seed, off);
    bool fired = uz_fault_fired();
    int rc = uzram_write(f->dev, buf, len, off);
    TRACE("  write [%llu,+%zu) gen %u: %d\n", (unsigned long long)off, len, kind % NGEN, rc);
    if (rc == 0) {
        memcpy(model + off, buf, len);
    } else if (rc == -ENOMEM && enomem_ok(f, fired)) {
        accept_partial(f, off, len, buf, "write");
    } else {
        bug("write [%llu,+%zu) returned %d", (unsigned long long)off, len, rc);
    }
    check_range(f, off, len, "write");
}

static void op_read(struct fz *f, struct input *in)
{
    uint64_t off;
    size_t len;
    pick_range(f, in, &off, &len);
    check_range(f, off, len, "read");
}

static void op_discard(struct fz *f, struct input *in, bool zeroes)
{
    uint64_t off;
    size_t len;
    pick_range(f, in, &off, &len);
    const char *what = zeroes ? "write_zeroes" : "discard";
    bool fired = uz_fault_fired();
    int rc = zeroes ? uzram_write_zeroes(f->dev, len, off) : uzram_discard(f->dev, len, off);
    TRACE("  %s [%llu,+%zu): %d\n", what, (unsigned long long)off, len, rc);
    if (rc == 0)
        memset(model + off, 0, len);
    else if (rc == -ENOMEM && enomem_ok(f, fired))
        accept_partial(f, off, len, NULL, what);
    else
        bug("%s [%llu,+%zu) returned %d", what, (unsigned long long)off, len, rc);
    /* a page wholly inside a discarded range must be free again */
    if (rc == 0 && !zeroes) {
        for (uint64_t p = (off + PAGE - 1) / PAGE; (p + 1) * PAGE <= off + len; p++)
            if (uzram_page_state(f->dev, p * PAGE) != UZRAM_PAGE_ZERO)
                bug("discard [%llu,+%zu): page %llu still holds data", (unsigned long long)off,
                    len, (unsigned long long)p);
    }
    check_range(f, off, len, what);
}

/* Out-of-range I/O of every kind: -EINVAL, nothing changes. */
static void op_badio(struct fz *f, struct input *in)
{
    uint8_t mode = in_u8(in);
    uint64_t size = f->size;
    uint64_t off;
    uint64_t len;
    switch (mode % 6) {
    case 0:   /* starts past the end */
        off = size + 1 + in_u16(in);
        len = in_u16(in) % (2 * PAGE);
        break;
    case 1:   /* starts inside, runs past the end */
        off = in_u24(in) % (size + 1);
        len = size - off + 1 + in_u16(in);
        break;
    case 2:   /* off + len wraps around 2^64 */
        off = UINT64_MAX - in_u16(in);
        len = 1 + (uint64_t)in_u16(in) + (UINT64_MAX - off);
        break;
    case 3:   /* anywhere far away */
        off = in_u64(in) | (1ull << 40);
        len = in_u16(in);
        break;
    case 4:   /* a small off with a length that wraps */
        off = in_u24(in) % (size + 1);
        len = UINT64_MAX - in_u16(in);
        break;
    default:  /* empty, just past the end */
        off = size + 1 + in_u8(in);
        len = 0;
        break;
    }
    if (len > SIZE_MAX)
        len = SIZE_MAX;
    unsigned which = in_u8(in) % 5;
    int rc;
    const char *what;
    switch (which) {
    case 0:
        what = "write";
        /* the library must not touch buf: it is far shorter than len */
        rc = uzram_write(f->dev, buf, (size_t)len, off);
        break;
    case 1:
        what = "read";
        rc = uzram_read(f->dev, rbuf, (size_t)len, off);
        break;
    case 2:
        what = "discard";
        rc = uzram_discard(f->dev, (size_t)len, off);
        break;
    case 3:
        what = "write_zeroes";
        rc = uzram_write_zeroes(f->dev, (size_t)len, off);
        break;
    default:
        what = "page_state";
        off = size + (off % 4096);
        rc = uzram_page_state(f->dev, off);
        break;
    }
    TRACE("  bad %s [%llu,+%llu): %d\n", what, (unsigned long long)off, (unsigned long long)len, rc);
    if (rc != -EINVAL)
        bug("out-of-range %s [%llu,+%llu) on a %llu-byte disk returned %d (want -EINVAL)", what,
            (unsigned long long)off, (unsigned long long)len, (unsigned long long)size, rc);
    if (uzram_last_error()[0] == 0)
        bug("out-of-range %s: no error message", what);
    n_refused++;
    check_all(f, "after out-of-range I/O");
}

static void op_compact(struct fz *f, struct input *in)
{
    if (in_u8(in) & 1) {
        (void)uzram_compact(f->dev);
    } else {
        int rc = uzram_attr_store(f->dev, "compact", "1\n", 2);
        if (rc != 0)
            bug("store compact: %d", rc);
    }
    check_all(f, "after compact");
}

static char bd_file[64];

/* The process's backing file (16 blocks), made on first use. */
static const char *backing_file(void)
{
    if (!bd_file[0]) {
        snprintf(bd_file, sizeof bd_file, "/tmp/fuzz_store-bd-XXXXXX");
        int fd = mkstemp(bd_file);
        if (fd < 0 || ftruncate(fd, 16 * PAGE) != 0)
            bug("cannot make a backing file");
        close(fd);
    }
    return bd_file;
}

__attribute__((destructor)) static void drop_backing_file(void)
{
    if (bd_file[0])
        unlink(bd_file);
}

/* Store disksize until it takes (an injected fault may fail it once). */
static void set_disksize(struct fz *f, uint64_t bytes, bool in_k)
{
    if (f->beyond && !f->pool) {   /* reset dropped the backing device: set it again
                                    * (a pool's stays the pool's) */
        const char *p = backing_file();
        int rc;
        do {
            bool fired = uz_fault_fired();
            rc = uzram_attr_store(f->dev, "backing_dev", p, strlen(p));
            if (rc != 0 && !(rc == -ENOMEM && !fired && uz_fault_fired()))
                bug("store backing_dev: %d", rc);
        } while (rc != 0);
    }
    char s[64];
    int n = in_k && bytes % 1024 == 0 ? snprintf(s, sizeof s, "%lluK\n", (unsigned long long)(bytes / 1024))
                                      : snprintf(s, sizeof s, "%llu", (unsigned long long)bytes);
    int rc;
    for (int tries = 0;; tries++) {
        bool fired = uz_fault_fired();
        rc = uzram_attr_store(f->dev, "disksize", s, (size_t)n);
        if (rc == 0)
            break;
        if (!(rc == -ENOMEM && !fired && uz_fault_fired()) || tries > 2)
            bug("store disksize '%s': %d", s, rc);
        char st[8];
        if (uzram_attr_show(f->dev, "initstate", st, sizeof st) != 2 || st[0] != '0')
            bug("disksize failed with -ENOMEM but initstate is %s", st);
    }
    uint64_t want = (bytes + PAGE - 1) / PAGE * PAGE;
    if (uzram_disksize(f->dev) != want)
        bug("disksize %llu: device has %llu, want %llu", (unsigned long long)bytes,
            (unsigned long long)uzram_disksize(f->dev), (unsigned long long)want);
    f->size = want;
    f->npages = want / PAGE;
    memset(model, 0, sizeof model);
    sync_limit(f);
}

static void op_reset(struct fz *f, struct input *in)
{
    uint8_t flags = in_u8(in);
    uint8_t pages = in_u8(in);
    uint8_t algo = in_u8(in);
    before_teardown(f);
    bool fired0 = uz_fault_fired();
    int rc = uzram_attr_store(f->dev, "reset", "1", 1);
    if (rc == -ENOMEM && f->pool && enomem_ok(f, fired0)) {
        /* its clones could not get pages of their own: nothing changed */
        TRACE("  reset: -ENOMEM, kept\n");
        check_all(f, "after a refused reset");
        return;
    }
    if (rc != 0)
        bug("store reset: %d", rc);
    n_resets++;
    if (uzram_disksize(f->dev) != 0)
        bug("after reset disksize is %llu", (unsigned long long)uzram_disksize(f->dev));
    char s[256];
    if (flags & 1) {   /* the uninitialised device: I/O says so, nothing breaks */
        if ((rc = uzram_read(f->dev, rbuf, 1, 0)) != -ENXIO)
            bug("read on a reset device: %d", rc);
        if ((rc = uzram_write(f->dev, buf, PAGE, 0)) != -ENXIO)
            bug("write on a reset device: %d", rc);
        if ((rc = uzram_discard(f->dev, PAGE, 0)) != -ENXIO)
            bug("discard on a reset device: %d", rc);
        /* (a pool's device compacts the pool, which is initialised) */
        if ((rc = uzram_attr_store(f->dev, "compact", "1", 1)) != (f->pool ? 0 : -EINVAL))
            bug("compact on a reset device: %d", rc);
        if ((rc = uzram_attr_store(f->dev, "mem_used_max", "0", 1)) != 0)
            bug("mem_used_max on a reset device: %d", rc);
        if ((rc = uzram_attr_show(f->dev, "mm_stat", s, sizeof s)) <= 0)
            bug("mm_stat on a reset device: %d", rc);
        (void)uzram_compact(f->dev);
    }
    if (flags & 2) {   /* another algorithm */
        unsigned n = 0;
        while (uzram_algorithm_name(n))
            n++;
        const char *name = uzram_algorithm_name(algo % n);
        rc = uzram_attr_store(f->dev, "comp_algorithm", name, strlen(name));
        /* a pool's devices share the pool's: only the same one is taken */
        if (f->pool ? rc != 0 && !(rc == -EBUSY && strcmp(name, f->algo) != 0) : rc != 0)
            bug("comp_algorithm %s on a reset device: %d", name, rc);
        if (!f->pool)
            f->algo = name;
    }
    if (flags & 4) {   /* a level, maybe out of range (then -EINVAL, no change) */
        int l = (int)(algo >> 2) - 8;
        int len = snprintf(s, sizeof s, "level=%d", l);
        rc = uzram_attr_store(f->dev, "algorithm_params", s, (size_t)len);
        if (rc != 0 && rc != -EINVAL && !(f->pool && rc == -EBUSY))
            bug("algorithm_params %s: %d", s, rc);
    }
    uint64_t bytes = (1 + pages % MAXPAGES) * (uint64_t)PAGE;
    if (flags & 8)
        bytes -= 1 + (flags >> 4) * 37u;
    set_disksize(f, bytes, flags & 16);
    TRACE("  reset: %s, %llu bytes\n", f->algo, (unsigned long long)f->size);
}

static void op_limit(struct fz *f, struct input *in)
{
    uint8_t mode = in_u8(in);
    uint32_t v = in_u16(in);
    char s[64];
    int n;
    switch (mode % 5) {
    case 0:
        n = snprintf(s, sizeof s, "0");
        break;
    case 1:   /* a few pages */
        n = snprintf(s, sizeof s, "%u\n", (1 + v % 32) * PAGE);
        break;
    case 2:   /* any byte count */
        n = snprintf(s, sizeof s, "%u", v);
        break;
    case 3:
        n = snprintf(s, sizeof s, "%uK", 1 + v % 256);
        break;
    default:
        n = snprintf(s, sizeof s, "%uM", 1 + v % 4);
        break;
    }
    /* a pool's limit is the pool's: set through the pool (through a
     * device it is EBUSY unless unchanged) */
    int rc = f->pool ? uzram_pool_attr_store(f->pool, "mem_limit", s, (size_t)n)
                     : uzram_attr_store(f->dev, "mem_limit", s, (size_t)n);
    TRACE("  mem_limit %s: %d\n", s, rc);
    if (rc != 0)
        bug("mem_limit '%s': %d", s, rc);
    sync_limit(f);
    check_stats(f);
}

static unsigned n_attrs(void)
{
    unsigned n = 0;
    while (uzram_attr_name(n, NULL))
        n++;
    return n;
}

static const char *pick_attr(uint8_t b)
{
    static const char *const bogus[] = {"", "nonexistent", "disksize ", "mm_stat\n"};
    unsigned n = n_attrs();
    unsigned i = b % (n + 4);
    return i < n ? uzram_attr_name(i, NULL) : bogus[i - n];
}

/* Random bytes into a random attribute: must not crash or corrupt data. */
static void op_badattr(struct fz *f, struct input *in)
{
    const char *name = pick_attr(in_u8(in));
    size_t len = in_u8(in);
    if (len > 250 && (len & 1))
        len = 300 + len * 16;   /* longer than any accepted value */
    char *v = malloc(len ? len : 1);
    /* printable-ish: digits and suffixes are likelier to reach the parsers */
    static const char alpha[] = "0123456789KMGTPEkmgtpex -+\n\t=algoprityevdc.";
    uint8_t style = in_u8(in);
    for (size_t i = 0; i < len; i++) {
        uint8_t b = in_u8(in);
        v[i] = (style & 1) ? (char)b : alpha[b % (sizeof alpha - 1)];
    }
    if (strcmp(name, "reset") == 0)
        before_teardown(f);
    bool fired = uz_fault_fired();
    int rc = uzram_attr_store(f->dev, name, v, len);
    free(v);
    TRACE("  store %s (%zu bytes): %d %s\n", name, len, rc, uzram_last_error());
    if (!(rc == 0 || rc == -EINVAL || rc == -EBUSY || rc == -EACCES || rc == -ENOENT ||
          rc == -ENODEV || rc == -ENOSPC || rc == -EIO ||   /* writeback's own errors */
          (rc == -ENOMEM && !fired && uz_fault_fired())))
        bug("store '%s' of %zu random bytes: %d", name, len, rc);
    if (rc < 0 && uzram_last_error()[0] == 0)
        bug("store '%s' failed (%d) with no message", name, rc);
    n_refused += rc < 0;
    if (rc == 0) {
        if (strcmp(name, "disksize") == 0 || (strcmp(name, "comp_algorithm") == 0 && !f->pool))
            bug("store '%s' succeeded on an initialised device", name);
        if (strcmp(name, "reset") == 0) {
            if (uzram_disksize(f->dev) != 0)
                bug("reset succeeded but the device is still initialised");
            n_resets++;
            set_disksize(f, f->size, false);
        }
        if (strcmp(name, "mem_limit") == 0)
            sync_limit(f);
    }
    check_all(f, "after a malformed attribute store");
}

/* Show any attribute into a buffer of any size: exact length or -ENOSPC. */
static void op_show(struct fz *f, struct input *in)
{
    const char *name = pick_attr(in_u8(in));
    size_t size = in_u8(in);
    char *b = malloc(size ? size : 1);
    int rc = uzram_attr_show(f->dev, name, b, size);
    if (rc >= 0) {
        if ((size_t)rc >= size || strlen(b) != (size_t)rc || rc == 0 || b[rc - 1] != '\n')
            bug("show '%s' into %zu bytes returned %d", name, size, rc);
    } else if (rc != -ENOSPC && rc != -EACCES && rc != -ENOENT) {
        bug("show '%s' into %zu bytes: %d", name, size, rc);
    }
    free(b);
    if (strcmp(name, "mm_stat") == 0)
        check_stats(f);
}

/* Beyond RAM: idle, writeback, recompress and their switches.  None may
 * change what the disk reads as. */
static void op_beyond(struct fz *f, struct input *in)
{
    static const char *const stores[][2] = {
        {"idle", "all"}, {"idle", "0"}, {"idle", "5"},
        {"writeback", "idle"}, {"writeback", "huge"}, {"writeback", "huge_idle"},
        {"writeback", "incompressible"}, {"writeback", "page_index=0"},
        {"writeback", "page_indexes=0-3"}, {"writeback_compressed", "1"},
        {"writeback_compressed", "0"}, {"forward_threshold", "1024"},
        {"forward_threshold", "0"}, {"recompress", ""}, {"recompress", "type=idle"},
        {"recompress", "type=huge"}, {"recompress", "type=huge_idle max_pages=2"},
        {"recompress", "threshold=1000 priority=1"}, {"writeback_limit_enable", "1"},
        {"writeback_limit", "3"}, {"writeback_limit_enable", "0"},
        {"recompress", "type=idle group=8"}, {"recompress", "type=idle group=4 max_pages=8"},
        {"recompress", "group=2"}, {"recompress", "type=huge_idle group=2 priority=1"},
    };
    const char *const *s = stores[in_u8(in) % (sizeof stores / sizeof stores[0])];
    bool fired = uz_fault_fired();
    int rc = uzram_attr_store(f->dev, s[0], s[1], strlen(s[1]));
    if (f->pool && rc == -EBUSY && strstr(uzram_last_error(), "a pool-wide setting"))
        rc = uzram_pool_attr_store(f->pool, s[0], s[1], strlen(s[1]));   /* as documented */
    TRACE("  %s %s: %d %s\n", s[0], s[1], rc, uzram_last_error());
    bool wb = strcmp(s[0], "writeback") == 0;
    if (!(rc == 0 || (rc == -ENOMEM && !fired && uz_fault_fired()) ||
          (wb && !f->beyond && rc == -ENODEV) ||
          (wb && (rc == -ENOSPC || rc == -EIO)) ||
          (wb && rc == -EINVAL && f->npages < 4 && strstr(s[1], "0-3")) ||
          (!f->beyond && strcmp(s[0], "recompress") == 0 && rc == -EINVAL)))
        bug("store %s '%s': %d", s[0], s[1], rc);
    check_all(f, "after a beyond-RAM op");
}

/* Arm a one-shot allocation failure a few allocations from now. */
static void op_fault(struct fz *f, struct input *in)
{
    (void)f;
    unsigned n = 1 + in_u8(in) % 24;
    TRACE("  fault armed at %u\n", n);
    uz_fault_arm(n);
}

/* Pool mode: compare sibling k with its model. */
NOCOV static void check_sibling(struct fz *f, int k, const char *what)
{
    struct sibling *b = &sib[k];
    if (b->size == 0)
        return;
    int rc = uzram_read(b->dev, rbuf, b->size, 0);
    if (rc != 0)
        bug("%s: read of zram%d: %d", what, uzram_device_id(b->dev), rc);
    if (memcmp(rbuf, b->model, b->size) != 0) {
        size_t i = 0;
        while (rbuf[i] == b->model[i])
            i++;
        bug("%s: zram%d byte %zu reads %#x, its model has %#x", what, uzram_device_id(b->dev), i,
            rbuf[i], b->model[i]);
    }
    (void)f;
}

/* The current device and sibling k trade places. */
static void swap_with(struct fz *f, int k)
{
    static uint8_t tmp[DISK_MAX];
    struct sibling *b = &sib[k];
    memcpy(tmp, model, sizeof tmp);
    memcpy(model, b->model, sizeof model);
    memcpy(b->model, tmp, sizeof tmp);
    struct uzram *d = f->dev;
    uint64_t size = f->size, np = f->npages;
    f->dev = b->dev;
    f->size = b->size;
    f->npages = b->npages;
    b->dev = d;
    b->size = size;
    b->npages = np;
}

/* Pool mode's check op: clone the current device, switch to another, remove
 * the current one (a source goes before its clones as often as not), or
 * check every device. */
static void op_pool(struct fz *f, struct input *in)
{
    uint8_t b = in_u8(in);
    bool fired = uz_fault_fired();
    int rc;
    switch (b % 4) {
    case 0:
        if (nsib == MAXSIB)
            break;
        rc = uzram_clone(f->dev, &sib[nsib].dev);
        TRACE("  clone of zram%d: %d\n", uzram_device_id(f->dev), rc);
        /* (a clone of a clone that wrote part of a shared unit makes that
         * unit whole first: copies of groups, under the memory limit) */
        if (rc == -ENOMEM && enomem_ok(f, fired))
            break;
        if (rc != 0)
            bug("clone: %d", rc);
        memcpy(sib[nsib].model, model, sizeof model);
        sib[nsib].size = f->size;
        sib[nsib].npages = f->npages;
        nsib++;
        break;
    case 1:
        if (nsib) {
            swap_with(f, (b / 4) % nsib);
            TRACE("  now on zram%d\n", uzram_device_id(f->dev));
        }
        break;
    case 2:
        if (nsib == 0)
            break;
        before_teardown(f);
        int id = uzram_device_id(f->dev);
        rc = uzram_pool_remove(f->pool, id);
        TRACE("  remove zram%d: %d\n", id, rc);
        if (rc == -ENOMEM && enomem_ok(f, fired))
            break;   /* its clones could not get pages of their own: all kept */
        if (rc != 0)
            bug("remove: %d", rc);
        f->dev = NULL;
        swap_with(f, nsib - 1);
        nsib--;
        sync_limit(f);
        break;
    default:
        for (int k = 0; k < nsib; k++)
            check_sibling(f, k, "pool check");
        break;
    }
    check_all(f, "after a pool op");
}

enum { OP_WRITE, OP_READ, OP_DISCARD, OP_ZEROES, OP_BADIO, OP_COMPACT, OP_RESET, OP_LIMIT,
       OP_BADATTR, OP_SHOW, OP_FAULT, OP_CHECK, OP_BEYOND };

/* op byte % 16 -> op; writes are the most frequent. */
static const uint8_t op_table[16] = {
    OP_WRITE, OP_WRITE, OP_WRITE, OP_BEYOND, OP_READ, OP_READ, OP_DISCARD, OP_ZEROES,
    OP_BADIO, OP_COMPACT, OP_RESET, OP_LIMIT, OP_BADATTR, OP_SHOW, OP_FAULT, OP_CHECK,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    if (trace < 0)
        trace = getenv("FUZZ_STORE_TRACE") && atoi(getenv("FUZZ_STORE_TRACE")) > 0;
    static struct fz f;
    memset(&f, 0, sizeof f);
    cur = &f;

    unsigned nalloc = 0, ncodec = 0;
    while (uz_alloc_at(nalloc))
        nalloc++;
    while (uzram_algorithm_name(ncodec))
        ncodec++;
    f.allocator = uz_alloc_at(in_u8(&in) % nalloc)->name;
    uint8_t cb = in_u8(&in);
    f.algo = uzram_algorithm_name(cb % ncodec);
    f.beyond = (cb / ncodec) & 1;
    uint8_t pb = in_u8(&in);
    uint64_t pages = 1 + pb % MAXPAGES;
    uint8_t flags = in_u8(&in);

    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.allocator = f.allocator;
    cfg.algorithm = f.algo;
    cfg.disksize = pages * PAGE - ((flags & 1) ? 1 + (flags >> 4) * 200u : 0);
    cfg.streams = (flags & 8) ? 2 : 1;
    cfg.group_pages = 1u << (pb / MAXPAGES);
    if (flags & 2)
        cfg.mem_limit = (1 + (flags >> 4)) * PAGE;
    if (flags & 4)
        cfg.huge_threshold = 16 + in_u8(&in) * 16u;   /* 16..4096 */
    /* identical pages stored once (the pool generators make them), unless
     * bit 6 says otherwise */
    cfg.dedup = (flags & 64) ? "0" : "1";
    if (f.beyond) {
        cfg.backing_dev = backing_file();
        cfg.recomp_algorithm[0] = "zstd";
    }
    int rc;
    nsib = 0;
    if (flags & 32) {   /* pool mode: zram0 of a pool with room for five such devices */
        uint64_t size = cfg.disksize;
        cfg.disksize = 8 * 680 * (uint64_t)PAGE;
        rc = uzram_pool_create(&cfg, &f.pool);
        if (rc == 0)
            rc = uzram_pool_add(f.pool, &f.dev);
        if (rc != 0)
            bug("pool create (%s, %s): %d", f.allocator, f.algo, rc);
        char s[32];
        int n = snprintf(s, sizeof s, "%llu", (unsigned long long)size);
        if ((rc = uzram_attr_store(f.dev, "disksize", s, (size_t)n)) != 0)
            bug("pool device disksize %s: %d", s, rc);
        cfg.disksize = size;
    } else {
        rc = uzram_create(&cfg, &f.dev);
    }
    if (rc != 0)
        bug("create (%s, %s, %llu bytes): %d", f.allocator, f.algo,
            (unsigned long long)cfg.disksize, rc);
    f.size = pages * PAGE;
    f.npages = pages;
    TRACE("create %s %s %llu bytes, limit %llu, huge %u, streams %u, group %u\n", f.allocator,
          f.algo, (unsigned long long)cfg.disksize, (unsigned long long)cfg.mem_limit,
          cfg.huge_threshold, cfg.streams, cfg.group_pages);
    if (uzram_disksize(f.dev) != f.size)
        bug("create: disksize %llu, want %llu", (unsigned long long)uzram_disksize(f.dev),
            (unsigned long long)f.size);
    memset(model, 0, sizeof model);
    sync_limit(&f);

    for (f.step = 0; in.n > 0 && f.step < MAX_OPS; f.step++) {
        uint8_t op = op_table[in_u8(&in) & 15];
        TRACE("step %u op %u\n", f.step, op);
        switch (op) {
        case OP_WRITE: op_write(&f, &in); break;
        case OP_READ: op_read(&f, &in); break;
        case OP_DISCARD: op_discard(&f, &in, false); break;
        case OP_ZEROES: op_discard(&f, &in, true); break;
        case OP_BADIO: op_badio(&f, &in); break;
        case OP_COMPACT: op_compact(&f, &in); break;
        case OP_RESET: op_reset(&f, &in); break;
        case OP_LIMIT: op_limit(&f, &in); break;
        case OP_BADATTR: op_badattr(&f, &in); break;
        case OP_SHOW: op_show(&f, &in); break;
        case OP_FAULT: op_fault(&f, &in); break;
        case OP_BEYOND: op_beyond(&f, &in); break;
        default:
            if (f.pool)
                op_pool(&f, &in);
            else
                check_all(&f, "check op");
            break;
        }
        n_ops++;
        if (f.step % CHECK_EVERY == CHECK_EVERY - 1)
            check_all(&f, "periodic check");
    }
    uz_fault_arm(0);
    check_all(&f, "end of input");
    if (f.pool) {
        for (int k = 0; k < nsib; k++)
            check_sibling(&f, k, "end of input");
        /* every device goes, the current one (maybe a source) first */
        if (uzram_pool_attr_store(f.pool, "mem_limit", "0", 1) != 0)
            bug("mem_limit 0: %s", uzram_last_error());
        sync_limit(&f);
        for (;;) {
            before_teardown(&f);
            if ((rc = uzram_pool_remove(f.pool, uzram_device_id(f.dev))) != 0)
                bug("remove at the end: %d", rc);
            if (nsib == 0)
                break;
            f.dev = NULL;
            swap_with(&f, nsib - 1);
            nsib--;
            check_all(&f, "after a removal at the end");
        }
        if ((rc = uzram_pool_destroy(f.pool)) != 0)
            bug("pool destroy: %d", rc);
    } else {
        before_teardown(&f);
        uzram_destroy(f.dev);
    }
    cur = NULL;
    return 0;
}
