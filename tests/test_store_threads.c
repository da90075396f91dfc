/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_store_threads.c - threads hammering overlapping ranges of one
 * device, each checking its own bytes; a compactor and a reader of
 * everything run beside them.  Runs under ThreadSanitizer in `make check`.
 *
 * Ownership is interleaved inside pages: thread t owns the 512-byte chunks
 * c with c % NT == t.  So every page is written by every thread, always by
 * read-modify-write of a part of it, under the page's lock; a lost update
 * shows as a chunk that does not hold what its owner last wrote.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uzram.h"

#define PAGE 4096u
#define CHUNK 512u
#define NT 3
#define PAGES 32
#define CHUNKS (PAGES * PAGE / CHUNK)

struct ctx {
    struct uzram *dev;
    int t;
    int iters;
    long bad;
};

static atomic_bool stop;

static void fill_chunk(uint8_t *p, unsigned chunk, uint32_t gen)
{
    /* compressible but distinct per chunk and generation; generation 0 is
     * all zeros (discarded) */
    for (unsigned i = 0; i < CHUNK; i++)
        p[i] = gen ? (uint8_t)((chunk * 31 + gen * 7 + (i / 16)) & 0xff) : 0;
}

static void *worker(void *arg)
{
    struct ctx *c = arg;
    uint32_t gen[CHUNKS] = {0};
    uint64_t s = 1234567 + (uint64_t)c->t * 7919;
    uint8_t buf[CHUNK], want[CHUNK];
    for (int it = 0; it < c->iters; it++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        unsigned k = (unsigned)(s % (CHUNKS / NT));
        unsigned chunk = k * NT + (unsigned)c->t;
        uint64_t off = (uint64_t)chunk * CHUNK;
        switch (s >> 60) {
        case 0: case 1:   /* zero my chunk */
            if (uzram_write_zeroes(c->dev, CHUNK, off) != 0)
                c->bad++;
            gen[chunk] = 0;
            break;
        default:
            gen[chunk] = gen[chunk] + 1 ? gen[chunk] + 1 : 1;
            fill_chunk(buf, chunk, gen[chunk]);
            /* unaligned split into two writes sometimes */
            if (s & 1) {
                if (uzram_write(c->dev, buf, 100, off) || uzram_write(c->dev, buf + 100, CHUNK - 100, off + 100))
                    c->bad++;
            } else if (uzram_write(c->dev, buf, CHUNK, off)) {
                c->bad++;
            }
        }
        /* check a random chunk of mine */
        unsigned v = (unsigned)((s >> 20) % (CHUNKS / NT)) * NT + (unsigned)c->t;
        if (uzram_read(c->dev, buf, CHUNK, (uint64_t)v * CHUNK)) {
            c->bad++;
            continue;
        }
        fill_chunk(want, v, gen[v]);
        if (memcmp(buf, want, CHUNK))
            c->bad++;
    }
    for (unsigned chunk = (unsigned)c->t; chunk < CHUNKS; chunk += NT) {
        fill_chunk(want, chunk, gen[chunk]);
        if (uzram_read(c->dev, buf, CHUNK, (uint64_t)chunk * CHUNK) || memcmp(buf, want, CHUNK))
            c->bad++;
    }
    return NULL;
}

static void *compactor(void *arg)
{
    struct uzram *dev = arg;
    char buf[256];
    while (!atomic_load(&stop)) {
        uzram_compact(dev);
        uzram_attr_show(dev, "mm_stat", buf, sizeof buf);
        uzram_attr_store(dev, "mem_used_max", "0", 1);
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct uzram *dev = arg;
    uint8_t *buf = malloc(PAGES * PAGE);
    long errs = 0;
    while (!atomic_load(&stop))
        if (uzram_read(dev, buf, PAGES * PAGE - 3, 1) != 0)
            errs++;
    free(buf);
    return (void *)errs;
}

static void run(const char *algo, const char *allocator, int iters)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = PAGES * PAGE;
    cfg.algorithm = algo;
    cfg.allocator = allocator;
    struct uzram *dev;
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    pthread_t th[NT], ct, rt;
    struct ctx cx[NT];
    atomic_store(&stop, false);
    pthread_create(&ct, NULL, compactor, dev);
    pthread_create(&rt, NULL, reader, dev);
    for (int t = 0; t < NT; t++) {
        cx[t] = (struct ctx){.dev = dev, .t = t, .iters = iters};
        pthread_create(&th[t], NULL, worker, &cx[t]);
    }
    long bad = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        bad += cx[t].bad;
    }
    atomic_store(&stop, true);
    void *rerr;
    pthread_join(ct, NULL);
    pthread_join(rt, &rerr);
    assert_int_equal(bad, 0);
    assert_int_equal((long)rerr, 0);
    if (uzram_check(dev) != 0)
        fail_msg("[%s/%s] uzram_check: %s", algo, allocator, uzram_last_error());
    uzram_destroy(dev);
}

static void test_threads_lz4(void **state) { run("lz4", "zsmalloc", 20000); }
static void test_threads_zstd(void **state) { run("zstd", "zsmalloc", 5000); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_lz4),
        cmocka_unit_test(test_threads_zstd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
