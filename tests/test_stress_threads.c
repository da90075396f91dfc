/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_stress_threads.c - four threads mixing every operation on one
 * device, on overlapping ranges, each checking its own data.  Run under
 * ThreadSanitizer by `make check` (and by `make stress STRESS_SECONDS=N`).
 *
 * The disk has two regions:
 *
 *   A (pages 0..A_PAGES-1)  ownership interleaved by 512-byte chunk: thread t
 *                           owns chunks c with c % NT == t, so every page has
 *                           two chunks of every thread.  Every write here is
 *                           a partial-page read-modify-write under the page's
 *                           lock, racing with the other owners of the page;
 *                           a lost update shows as a chunk that does not hold
 *                           what its owner last wrote.  When all owners write
 *                           zeros or the common fill word, the page becomes
 *                           same-filled, and stops being so on the next write.
 *   B (the rest)            one block of B_PAGES pages per thread: full-page
 *                           and multi-page writes, unaligned writes across
 *                           pages, discards of whole and partial pages,
 *                           write_zeroes - while the other threads read over
 *                           it and compact the allocator under it.
 *
 * Every thread also reads ranges that cross other threads' bytes (checking
 * only its own), asks page_state (a ZERO page must be zero in its own
 * bytes), compacts (uzram_compact and the "compact" attribute), shows
 * mm_stat / io_stat / debug_stat and stores mem_used_max.  Each thread keeps
 * a model of its own bytes; at the end, with the threads joined, the whole
 * disk is compared with the union of the models, the allocator's check()
 * runs and mm_stat must agree with the data.
 *
 * Configurations: every allocator x {lz4, zstd}, with 2 compression streams
 * for 4 threads (so streams are contended too).  The total duration is
 * UZ_STRESS_SECONDS (default 5), shared between the configurations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "slot.h"
#include "device.h"
#include "page.h"
#include "uzram.h"

#define PAGE 4096u
#define CHUNK 512u
#define NT 4
#define A_PAGES 48u
#define B_PAGES 16u
#define NPAGES (A_PAGES + NT * B_PAGES)
#define A_END ((uint64_t)A_PAGES * PAGE)
#define DISK ((uint64_t)NPAGES * PAGE)
#define A_CHUNKS (A_END / CHUNK)
#define FILL_WORD 0x5555aaaa5555aaaaull   /* the common same-fill word */

struct worker {
    struct uzram *dev;
    int t;
    uint64_t rng;
    uint8_t model[DISK];        /* only this thread's bytes are meaningful */
    uint8_t buf[8 * PAGE], rbuf[DISK];
    uint64_t ops;
    char err[512];              /* first failure, "" if none */
};

static atomic_bool stop, failed;

/* ------------------------------------------------------------ helpers */

static uint64_t rnd(struct worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

static bool owns(int t, uint64_t off)
{
    if (off < A_END)
        return (off / CHUNK) % NT == (uint64_t)t;
    return (off - A_END) / ((uint64_t)B_PAGES * PAGE) == (uint64_t)t;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

enum { K_ZERO, K_FILL, K_TEXT, K_RANDOM, K_HEAD, NKIND };

/* len bytes for disk offset off.  K_FILL lays the common word by absolute
 * offset so that aligned pieces from different threads make one
 * same-filled page. */
static void gen(uint8_t *p, size_t len, int kind, uint32_t seed, uint64_t off)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t o = off + i;
        switch (kind) {
        case K_ZERO: p[i] = 0; break;
        case K_FILL: p[i] = (uint8_t)(FILL_WORD >> (8 * (o % 8))); break;
        case K_TEXT: p[i] = (uint8_t)("four threads, one device, "[(o + seed) % 26] + (o % 509 == 0)); break;
        case K_RANDOM: p[i] = (uint8_t)(mix(o / 8 ^ ((uint64_t)seed << 32)) >> (8 * (o % 8))); break;
        default: p[i] = (o % PAGE) < seed % PAGE ? (uint8_t)mix(o ^ seed) : (uint8_t)(o / 1024); break;
        }
    }
}

static void failf(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct worker *w, const char *fmt, ...)
{
    if (w->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(w->err, sizeof w->err, "thread %d, op %llu: ", w->t,
                     (unsigned long long)w->ops);
    vsnprintf(w->err + n, sizeof w->err - (size_t)n, fmt, ap);
    va_end(ap);
    atomic_store(&failed, true);
}

/* Read [off, off+len) and compare this thread's bytes with its model. */
static void check_read(struct worker *w, uint64_t off, size_t len, const char *what)
{
    int rc = uzram_read(w->dev, w->rbuf, len, off);
    if (rc != 0) {
        failf(w, "%s: read [%llu,+%zu): %d %s", what, (unsigned long long)off, len, rc,
              uzram_last_error());
        return;
    }
    for (size_t i = 0; i < len; i++) {
        uint64_t o = off + i;
        if (owns(w->t, o) && w->rbuf[i] != w->model[o]) {
            failf(w, "%s: byte %llu (page %llu, chunk %llu) reads %#x, its owner wrote %#x",
                  what, (unsigned long long)o, (unsigned long long)(o / PAGE),
                  (unsigned long long)(o / CHUNK), w->rbuf[i], w->model[o]);
            return;
        }
    }
}

static void do_write(struct worker *w, uint64_t off, size_t len, int kind, uint32_t seed)
{
    gen(w->buf, len, kind, seed, off);
    int rc = uzram_write(w->dev, w->buf, len, off);
    if (rc != 0) {
        failf(w, "write [%llu,+%zu): %d %s", (unsigned long long)off, len, rc, uzram_last_error());
        return;
    }
    memcpy(w->model + off, w->buf, len);
}

static void do_zero(struct worker *w, uint64_t off, size_t len, bool discard)
{
    int rc = discard ? uzram_discard(w->dev, len, off) : uzram_write_zeroes(w->dev, len, off);
    if (rc != 0) {
        failf(w, "%s [%llu,+%zu): %d %s", discard ? "discard" : "write_zeroes",
              (unsigned long long)off, len, rc, uzram_last_error());
        return;
    }
    memset(w->model + off, 0, len);
}

/* A range inside one of my region-A chunks: the whole chunk or a piece. */
static void my_chunk_range(struct worker *w, uint64_t *off, size_t *len)
{
    uint64_t c = (rnd(w) % (A_CHUNKS / NT)) * NT + (uint64_t)w->t;
    uint64_t r = rnd(w);
    if (r & 1) {
        *off = c * CHUNK;
        *len = CHUNK;
    } else {
        size_t a = (size_t)((r >> 8) % CHUNK);
        *off = c * CHUNK + a;
        *len = 1 + (size_t)((r >> 24) % (CHUNK - a));
    }
}

/* A range inside my region-B block: whole pages or unaligned. */
static void my_block_range(struct worker *w, uint64_t *off, size_t *len)
{
    uint64_t base = A_END + (uint64_t)w->t * B_PAGES * PAGE;
    uint64_t r = rnd(w);
    if (r & 1) {
        uint64_t first = (r >> 8) % B_PAGES, n = 1 + (r >> 16) % 4;
        if (n > B_PAGES - first)
            n = B_PAGES - first;
        *off = base + first * PAGE;
        *len = (size_t)(n * PAGE);
    } else {
        uint64_t a = (r >> 8) % (B_PAGES * PAGE);
        uint64_t l = 1 + (r >> 32) % (3 * PAGE);
        if (l > B_PAGES * PAGE - a)
            l = B_PAGES * PAGE - a;
        *off = base + a;
        *len = (size_t)l;
    }
}

static bool mine_zero(struct worker *w, uint64_t page)
{
    for (uint64_t o = page * PAGE; o < (page + 1) * PAGE; o++)
        if (owns(w->t, o) && w->model[o])
            return false;
    return true;
}

static void check_stats_text(struct worker *w, const char *name)
{
    char b[512];
    int n = uzram_attr_show(w->dev, name, b, sizeof b);
    if (n <= 0 || b[n - 1] != '\n') {
        failf(w, "show %s: %d", name, n);
        return;
    }
    if (strcmp(name, "mm_stat") == 0) {
        unsigned long long f[9];
        if (sscanf(b, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3],
                   &f[4], &f[5], &f[6], &f[7], &f[8]) != 9)
            failf(w, "mm_stat does not parse: %s", b);
        else if (f[0] > DISK || f[5] > NPAGES || f[7] > NPAGES || f[0] % PAGE)
            failf(w, "mm_stat out of bounds: %s", b);
    }
}

/* ------------------------------------------------------------ the thread */

static void one_op(struct worker *w)
{
    uint64_t off;
    size_t len;
    uint64_t r = rnd(w);
    uint32_t seed = (uint32_t)(r >> 32);
    int kind = (int)((r >> 8) % NKIND);
    switch (r % 32) {
    case 0: case 1: case 2: case 3: case 4: case 5:      /* partial write, region A */
        my_chunk_range(w, &off, &len);
        /* the common fill word and zeros make same-filled pages */
        do_write(w, off, len, (r >> 16) % 3 == 0 ? K_FILL : kind, seed);
        check_read(w, off - off % PAGE, PAGE, "after a chunk write");
        break;
    case 6: case 7:                                      /* zero a chunk or a piece */
        my_chunk_range(w, &off, &len);
        do_zero(w, off, len, r & 0x100);
        check_read(w, off, len, "after zeroing a chunk");
        break;
    case 8: case 9: case 10: case 11:                    /* full / partial write, region B */
        my_block_range(w, &off, &len);
        do_write(w, off, len, kind, seed);
        check_read(w, off, len, "after a block write");
        break;
    case 12: case 13:                                    /* discard / write_zeroes, region B */
        my_block_range(w, &off, &len);
        do_zero(w, off, len, r & 0x100);
        check_read(w, off, len, "after a block discard");
        break;
    case 14: case 15: case 16: case 17: case 18: {       /* overlapping reads anywhere */
        off = (r >> 8) % DISK;
        len = 1 + (size_t)((r >> 40) % (6 * PAGE));
        if (len > DISK - off)
            len = (size_t)(DISK - off);
        check_read(w, off, len, "overlapping read");
        break;
    }
    case 19: case 20: {                                  /* page_state */
        uint64_t p = (r >> 8) % NPAGES;
        int st = uzram_page_state(w->dev, p * PAGE + (r >> 40) % PAGE);
        if (st != UZRAM_PAGE_ZERO && st != UZRAM_PAGE_DATA)
            failf(w, "page_state(%llu): %d", (unsigned long long)p, st);
        else if (st == UZRAM_PAGE_ZERO && !mine_zero(w, p))
            failf(w, "page %llu is ZERO but holds my data", (unsigned long long)p);
        break;
    }
    case 21:
        if ((r >> 8) % 4 == 0) {
            if (uzram_attr_store(w->dev, "compact", "1\n", 2) != 0)
                failf(w, "store compact: %s", uzram_last_error());
        } else {
            (void)uzram_compact(w->dev);
        }
        break;
    case 22:
        check_stats_text(w, "mm_stat");
        break;
    case 23:
        check_stats_text(w, (r >> 8) & 1 ? "io_stat" : "debug_stat");
        break;
    case 24:
        if (uzram_attr_store(w->dev, "mem_used_max", "0", 1) != 0)
            failf(w, "store mem_used_max: %s", uzram_last_error());
        break;
    case 25: {                                           /* get_stats */
        struct uzram_stats st;
        uzram_get_stats(w->dev, &st);
        if (st.orig_data_size > DISK || st.same_pages > NPAGES)
            failf(w, "stats out of bounds");
        break;
    }
    case 26:                                             /* everything I own */
        if ((r >> 8) % 8 == 0)
            check_read(w, 0, (size_t)DISK, "whole-disk read");
        break;
    default: {                                           /* a multi-chunk pass over a page */
        uint64_t p = (r >> 8) % A_PAGES;
        for (unsigned k = 0; k < PAGE / CHUNK; k++) {
            uint64_t o = p * PAGE + k * CHUNK;
            if (owns(w->t, o))
                do_write(w, o, CHUNK, (r >> 20) & 1 ? K_FILL : K_TEXT, seed + k);
        }
        check_read(w, p * PAGE, PAGE, "after a pass over a page");
        break;
    }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed) &&
           !atomic_load_explicit(&failed, memory_order_relaxed)) {
        one_op(w);
        w->ops++;
        if (w->ops % 512 == 0)
            check_read(w, 0, (size_t)DISK, "periodic whole-disk read");
    }
    return NULL;
}

/* ------------------------------------------------------------ driver */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_config(const char *allocator, const char *algo, double seconds)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = DISK;
    cfg.allocator = allocator;
    cfg.algorithm = algo;
    cfg.streams = 2;
    struct uzram *dev = NULL;
    if (uzram_create(&cfg, &dev) != 0)
        fail_msg("create %s/%s: %s", allocator, algo, uzram_last_error());

    static struct worker ws[NT];
    pthread_t th[NT];
    atomic_store(&stop, false);
    atomic_store(&failed, false);
    for (int t = 0; t < NT; t++) {
        memset(&ws[t], 0, sizeof ws[t]);
        ws[t].dev = dev;
        ws[t].t = t;
        ws[t].rng = 0x2545f4914f6cdd1dull * (uint64_t)(t + 1) ^ (uint64_t)(uintptr_t)algo;
        if (pthread_create(&th[t], NULL, worker_main, &ws[t]) != 0)
            fail_msg("pthread_create");
    }
    double end = now_s() + seconds;
    while (now_s() < end && !atomic_load(&failed)) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, true);
    uint64_t ops = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        ops += ws[t].ops;
    }
    for (int t = 0; t < NT; t++)
        if (ws[t].err[0])
            fail_msg("[%s/%s] %s", allocator, algo, ws[t].err);

    /* quiescent: the whole disk is the union of the models */
    static uint8_t model[DISK], got[DISK];
    for (uint64_t o = 0; o < DISK; o++)
        for (int t = 0; t < NT; t++)
            if (owns(t, o))
                model[o] = ws[t].model[o];
    assert_int_equal(uzram_read(dev, got, DISK, 0), 0);
    for (uint64_t o = 0; o < DISK; o++)
        if (got[o] != model[o])
            fail_msg("[%s/%s] at the end byte %llu reads %#x, want %#x", allocator, algo,
                     (unsigned long long)o, got[o], model[o]);
    if (uzram_check(dev) != 0)
        fail_msg("[%s/%s] store check: %s", allocator, algo, uzram_last_error());
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    static const uint8_t zero[PAGE];
    uint64_t nonzero = 0;
    for (uint64_t p = 0; p < NPAGES; p++)
        nonzero += memcmp(model + p * PAGE, zero, PAGE) != 0;
    if (st.orig_data_size < nonzero * PAGE || st.orig_data_size > DISK ||
        st.compr_data_size > st.orig_data_size || st.failed_writes || st.failed_reads)
        fail_msg("[%s/%s] stats disagree: orig %llu with %llu pages of data, compr %llu, "
                 "failed writes %llu reads %llu", allocator, algo,
                 (unsigned long long)st.orig_data_size, (unsigned long long)nonzero,
                 (unsigned long long)st.compr_data_size, (unsigned long long)st.failed_writes,
                 (unsigned long long)st.failed_reads);
    /* every page the models say is zero reads as zero; discarding everything
     * frees everything */
    assert_int_equal(uzram_discard(dev, DISK, 0), 0);
    uzram_get_stats(dev, &st);
    assert_int_equal(st.orig_data_size, 0);
    assert_int_equal(st.compr_data_size, 0);
    uzram_destroy(dev);
    print_message("  %-9s %-5s %8llu ops in %.1f s\n", allocator, algo, (unsigned long long)ops,
                  seconds);
}

static void test_stress(void **state)
{
    (void)state;
    double total = 5;
    const char *env = getenv("UZ_STRESS_SECONDS");
    if (env && atof(env) > 0)
        total = atof(env);
    static const char *const algos[] = {"lz4", "zstd"};
    unsigned nalloc = 0;
    while (uz_alloc_at(nalloc))
        nalloc++;
    double each = total / (nalloc * 2);
    if (each < 0.2)
        each = 0.2;
    for (unsigned a = 0; a < nalloc; a++)
        for (unsigned c = 0; c < 2; c++)
            run_config(uz_alloc_at(a)->name, algos[c], each);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
