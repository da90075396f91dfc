/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_codec.c - the compressor registry (src/codec.c).
 *
 * What is checked, for every codec in the registry:
 *  - the registry: iteration, lookup by name and alias, level ranges;
 *  - round trips at the minimum, default and maximum level over synthetic
 *    pages (zero, same-filled, random, text-like, half random) and, when
 *    UZ_CORPUS names a directory holding sqlite.pages.zst, over the first
 *    2 MiB of real process pages from it;
 *  - the compress contract: never more than dcap bytes written (a canary
 *    follows dcap), 0 when the output does not fit;
 *  - the decompress contract: -1 unless src decodes to exactly dlen bytes
 *    (wrong dlen, truncated, trailing bytes, flipped bytes, garbage), and
 *    no out-of-bounds access whatever the input: buffers are allocated at
 *    their exact size so ASan sees any overrun;
 *  - contexts: making one survives every injected allocation failure, and
 *    compressing / decompressing pages allocates nothing.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "codec.h"
#include "lib/test_files.h"
#include "mem.h"

#define PAGE 4096u

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so failures reproduce */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(rng() >> 56);
}

/* Log-like text: phrases from a small set with numbers in between, so it
 * has the long repeats real text has (random words alone would be too
 * hard for lz4, which needs 4-byte matches). */
static void fill_text(unsigned char *p, size_t n)
{
    static const char *phrases[] = {
        "the page was written to the store ",
        "compressed object moved by compaction ",
        "kernel zram device swapped out ",
        "allocator class of size ",
        "handle mapped for reading at offset ",
        "user space block store with ",
        "zero filled page freed; slot ",
        "writeback to the backing file of ",
    };
    size_t i = 0;
    while (i < n) {
        char tok[64];
        int len;
        if (rng() % 3 == 0)
            len = snprintf(tok, sizeof tok, "%u%c", (unsigned)(rng() % 100000),
                           rng() % 4 == 0 ? '\n' : ' ');
        else
            len = snprintf(tok, sizeof tok, "%s",
                           phrases[rng() % (sizeof phrases / sizeof phrases[0])]);
        for (int k = 0; k < len && i < n; k++)
            p[i++] = (unsigned char)tok[k];
    }
}

enum { PG_ZERO, PG_SAME, PG_RANDOM, PG_TEXT, PG_HALF, PG_COUNT };
static const char *pg_name[PG_COUNT] = { "zero", "same-filled", "random", "text", "half-random" };

static void make_page(int kind, unsigned char *p)
{
    switch (kind) {
    case PG_ZERO:
        memset(p, 0, PAGE);
        break;
    case PG_SAME:
        for (size_t i = 0; i < PAGE; i += 8)
            memcpy(p + i, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
        break;
    case PG_RANDOM:
        fill_random(p, PAGE);
        break;
    case PG_TEXT:
        fill_text(p, PAGE);
        break;
    case PG_HALF:
        fill_text(p, PAGE / 2);
        fill_random(p + PAGE / 2, PAGE / 2);
        break;
    }
}

static void *ctx_or_fail(const struct uz_codec *c, int level)
{
    void *ctx = c->ctx_new(level);
    if (!ctx)
        fail_msg("%s: ctx_new(%d) failed", c->name, level);
    return ctx;
}

/* Round-trip one buffer through a context and check everything the
 * contracts promise.  Returns the compressed size (0: did not fit in
 * dcap).  `must_fit` demands a result that fits. */
static size_t roundtrip(const struct uz_codec *c, void *ctx, const unsigned char *src,
                        size_t n, size_t dcap, int must_fit)
{
    enum { CANARY = 64 };
    unsigned char *dst = malloc(dcap + CANARY);
    assert_non_null(dst);
    memset(dst, 0xA5, dcap + CANARY);
    size_t z = c->compress(ctx, src, n, dst, dcap);
    for (size_t i = 0; i < CANARY; i++)
        if (dst[dcap + i] != 0xA5)
            fail_msg("%s: compress wrote past dcap=%zu", c->name, dcap);
    if (must_fit && z == 0) {
        unsigned char *big = malloc(2 * n + 1024);
        assert_non_null(big);
        size_t full = c->compress(ctx, src, n, big, 2 * n + 1024);
        free(big);
        fail_msg("%s: %zu bytes did not compress into %zu (with room: %zu)", c->name, n, dcap, full);
    }
    assert_true(z <= dcap);
    if (z > 0) {
        /* Exact-size buffers: ASan catches any read or write past them. */
        unsigned char *in = malloc(z);
        unsigned char *out = malloc(n);
        assert_non_null(in);
        assert_non_null(out);
        memcpy(in, dst, z);
        if (c->decompress(ctx, in, z, out, n) != 0)
            fail_msg("%s: decompress of its own %zu-byte output failed", c->name, z);
        if (memcmp(out, src, n) != 0)
            fail_msg("%s: round trip changed the data", c->name);
        free(in);
        free(out);
    }
    free(dst);
    return z;
}

static int levels_of(const struct uz_codec *c, int out[3])
{
    int n = 0;
    out[n++] = c->level_min;
    if (c->level_default != c->level_min)
        out[n++] = c->level_default;
    if (c->level_max != c->level_default && c->level_max != c->level_min)
        out[n++] = c->level_max;
    return n;
}

/* "none" (the raw RAM mode) never compresses: the round trips below are
 * for the codecs that do; test_none checks its own contract. */
static bool compresses(const struct uz_codec *c)
{
    return strcmp(c->name, "none") != 0;
}

/* ------------------------------------------------------------- registry */

static void test_registry(void **state)
{
    static const char *expect[] = { "lzo-rle", "lzo", "lz4", "lz4hc", "zstd", "deflate", "none" };
    const size_t nexpect = sizeof expect / sizeof expect[0];
    unsigned n = 0;
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++, n++) {
        assert_non_null(c->name);
        assert_ptr_equal(uz_codec_find(c->name), c);
        assert_true(c->level_min >= 1);
        assert_true(c->level_min <= c->level_default);
        assert_true(c->level_default <= c->level_max);
        assert_non_null(c->ctx_new);
        assert_non_null(c->ctx_free);
        assert_non_null(c->compress);
        assert_non_null(c->decompress);
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(uz_codec_at(j)->name, c->name);
    }
    assert_int_equal(n, nexpect);
    assert_null(uz_codec_at(n));
    assert_null(uz_codec_at(~0u));
    for (size_t i = 0; i < nexpect; i++) {
        c = uz_codec_find(expect[i]);
        assert_non_null(c);
        assert_string_equal(c->name, expect[i]);
    }
    assert_null(uz_codec_find("842"));
    assert_null(uz_codec_find(""));
    assert_null(uz_codec_find(NULL));
    assert_null(uz_codec_find("LZ4"));     /* names are case-sensitive, as in zram */
    assert_null(uz_codec_find("lz4 "));
    assert_null(uz_codec_find("zstd\n"));

    /* the defaults the kernel uses */
    assert_int_equal(uz_codec_find("lz4")->level_default, 1);
    assert_int_equal(uz_codec_find("lz4hc")->level_default, 9);
    assert_int_equal(uz_codec_find("lz4hc")->level_max, 12);
    assert_int_equal(uz_codec_find("zstd")->level_default, 3);
    assert_int_equal(uz_codec_find("zstd")->level_max, ZSTD_maxCLevel());
    assert_int_equal(uz_codec_find("deflate")->level_default, 6);
    assert_int_equal(uz_codec_find("deflate")->level_max, 9);
    assert_int_equal(uz_codec_find("lzo")->level_max, uz_codec_find("lzo")->level_min);
}

/* lzo-rle is an alias of lzo here: same format both ways. */
static void test_lzo_alias(void **state)
{
    const struct uz_codec *a = uz_codec_find("lzo-rle"), *b = uz_codec_find("lzo");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_equal(a->compress, b->compress);
    assert_ptr_equal(a->decompress, b->decompress);
    void *ca = ctx_or_fail(a, a->level_default), *cb = ctx_or_fail(b, b->level_default);
    unsigned char src[PAGE], z[2 * PAGE], out[PAGE];
    fill_text(src, PAGE);
    size_t n = a->compress(ca, src, PAGE, z, sizeof z);
    assert_true(n > 0 && n < PAGE);
    assert_int_equal(b->decompress(cb, z, n, out, PAGE), 0);
    assert_memory_equal(out, src, PAGE);
    a->ctx_free(ca);
    b->ctx_free(cb);
}

/* ----------------------------------------------------------- round trips */

static void test_roundtrip_synthetic(void **state)
{
    unsigned char *page = malloc(PAGE);
    assert_non_null(page);
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        int lv[3], nl = levels_of(c, lv);
        for (int l = 0; l < nl; l++) {
            void *ctx = ctx_or_fail(c, lv[l]);
            for (int kind = 0; kind < PG_COUNT; kind++) {
                make_page(kind, page);
                /* Room for the worst case: everything must fit. */
                size_t big = roundtrip(c, ctx, page, PAGE, 2 * PAGE, 1);
                /* A page's worth of room: uniform pages always fit, text
                 * at the default level; random content may not (half a
                 * random page is already too much for lz4).  lz4's level
                 * is its acceleration, and lz4 first probes `accel` bytes
                 * ahead: past a page, nothing compresses at all. */
                bool matching_off = strcmp(c->name, "lz4") == 0 && lv[l] >= (int)PAGE;
                bool uniform = (kind == PG_ZERO || kind == PG_SAME) && !matching_off;
                bool dflt = lv[l] == c->level_default;
                size_t z = roundtrip(c, ctx, page, PAGE, PAGE, uniform || (dflt && kind == PG_TEXT));
                if ((uniform && (z == 0 || z > PAGE / 8)) ||
                    (dflt && kind == PG_TEXT && (z == 0 || z > PAGE * 3 / 4)))
                    fail_msg("%s level %d: %s page compressed to %zu",
                             c->name, lv[l], pg_name[kind], z);
                if (z)
                    assert_int_equal(z, big);   /* the cap does not change the output */
                if (big == 0)
                    continue;
                /* Exactly enough room fits; one byte less does not. */
                assert_int_equal(roundtrip(c, ctx, page, PAGE, big, 1), big);
                assert_int_equal(roundtrip(c, ctx, page, PAGE, big - 1, 0), 0);
                /* Tiny capacities: 0 and no writes past the end. */
                assert_int_equal(roundtrip(c, ctx, page, PAGE, 1, 0), 0);
                if (big > 8)
                    assert_int_equal(roundtrip(c, ctx, page, PAGE, big / 2, 0), 0);
            }
            c->ctx_free(ctx);
        }
    }
    free(page);
}

/* The 3/4-page cap the store uses for huge pages, over mixed content. */
static void test_roundtrip_caps(void **state)
{
    unsigned char page[PAGE];
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        void *ctx = ctx_or_fail(c, c->level_default);
        for (int t = 0; t < 64; t++) {
            /* text with a growing random tail: sizes sweep past the cap */
            size_t r = (size_t)t * PAGE / 64;
            fill_text(page, PAGE - r);
            fill_random(page + PAGE - r, r);
            size_t full = roundtrip(c, ctx, page, PAGE, 2 * PAGE, 1);
            size_t z = roundtrip(c, ctx, page, PAGE, PAGE * 3 / 4, 0);
            assert_int_equal(z, full <= PAGE * 3 / 4 ? full : 0);
        }
        c->ctx_free(ctx);
    }
}

/* Inputs larger than a page (the contexts are sized for pages). */
static void test_roundtrip_large(void **state)
{
    /* a text page repeated with small edits: compresses well everywhere */
    const size_t n = 64 * 1024;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    fill_text(buf, PAGE);
    for (size_t off = PAGE; off < n; off += PAGE) {
        memcpy(buf + off, buf, PAGE);
        for (int k = 0; k < 16; k++)
            buf[off + rng() % PAGE] = (unsigned char)rng();
    }
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        void *ctx = ctx_or_fail(c, c->level_default);
        size_t z = roundtrip(c, ctx, buf, n, PAGE * 8, 1);   /* below lzo's bound */
        assert_true(z < n / 2);
        roundtrip(c, ctx, buf, n, n + n / 8 + 1024, 1);
        /* and a page again after that */
        roundtrip(c, ctx, buf, PAGE, PAGE, 1);
        c->ctx_free(ctx);
    }
    free(buf);
}

static unsigned char *corpus;      /* first pages of sqlite.pages.zst */
static size_t corpus_len;

static int corpus_setup(void **state)
{
    const char *dir = getenv("UZ_CORPUS");
    if (!dir || !*dir)
        return 0;
    uint64_t pages;
    corpus = test_corpus_load("sqlite.pages.zst", (2u << 20) / PAGE, &pages);
    corpus_len = pages * PAGE;
    return 0;
}

static int corpus_teardown(void **state)
{
    free(corpus);
    corpus = NULL;
    return 0;
}

static void test_roundtrip_corpus(void **state)
{
    if (!corpus || corpus_len == 0) {
        print_message("note: UZ_CORPUS/sqlite.pages.zst not found; real pages skipped\n");
        skip();
    }
    size_t pages = corpus_len / PAGE;
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        int lv[3], nl = levels_of(c, lv);
        for (int l = 0; l < nl; l++) {
            void *ctx = ctx_or_fail(c, lv[l]);
            size_t total = 0, fit = 0;
            for (size_t p = 0; p < pages; p++) {
                size_t z = roundtrip(c, ctx, corpus + p * PAGE, PAGE, PAGE, 0);
                total += z ? z : PAGE;
                fit += z != 0;
            }
            print_message("  %-8s level %-5d %zu pages  ratio %.2f  (%zu fit in a page)\n",
                          c->name, lv[l], pages, (double)(pages * PAGE) / (double)total, fit);
            /* Real process pages compress: at the default level well over
             * half of them fit, and the set shrinks by more than 1.5x (lz4
             * alone is ~2.5x on it). */
            if (lv[l] == c->level_default) {
                assert_true(fit > pages / 2);
                assert_true(total * 3 < pages * PAGE * 2);
            }
            c->ctx_free(ctx);
        }
    }
}

/* --------------------------------------------------- decompress contract */

/* Compress a text page at the default level; returns the size. */
static size_t compress_text(const struct uz_codec *c, void *ctx, unsigned char *src,
                            unsigned char *z, size_t zcap)
{
    fill_text(src, PAGE);
    size_t n = c->compress(ctx, src, PAGE, z, zcap);
    assert_true(n > 0);
    return n;
}

/* Call decompress with exact-size copies of src and dst. */
static int decompress_exact(const struct uz_codec *c, void *ctx, const unsigned char *src,
                            size_t slen, size_t dlen)
{
    unsigned char *in = malloc(slen ? slen : 1), *out = malloc(dlen ? dlen : 1);
    assert_non_null(in);
    assert_non_null(out);
    memcpy(in, src, slen);
    int r = c->decompress(ctx, in, slen, out, dlen);
    free(in);
    free(out);
    return r;
}

static void test_decompress_wrong_size(void **state)
{
    unsigned char src[PAGE], z[2 * PAGE + 1];
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        void *ctx = ctx_or_fail(c, c->level_default);
        size_t n = compress_text(c, ctx, src, z, 2 * PAGE);
        assert_int_equal(decompress_exact(c, ctx, z, n, PAGE), 0);
        /* dst one byte short or one byte long: not exactly dlen */
        assert_int_equal(decompress_exact(c, ctx, z, n, PAGE - 1), -1);
        assert_int_equal(decompress_exact(c, ctx, z, n, PAGE + 1), -1);
        assert_int_equal(decompress_exact(c, ctx, z, n, PAGE / 2), -1);
        assert_int_equal(decompress_exact(c, ctx, z, n, 2 * PAGE), -1);
        assert_int_equal(decompress_exact(c, ctx, z, n, 1), -1);
        /* truncated input */
        assert_int_equal(decompress_exact(c, ctx, z, 0, PAGE), -1);
        assert_int_equal(decompress_exact(c, ctx, z, 1, PAGE), -1);
        assert_int_equal(decompress_exact(c, ctx, z, n / 2, PAGE), -1);
        assert_int_equal(decompress_exact(c, ctx, z, n - 1, PAGE), -1);
        /* trailing bytes after the stream */
        z[n] = 0;
        assert_int_equal(decompress_exact(c, ctx, z, n + 1, PAGE), -1);
        /* the context still works afterwards */
        assert_int_equal(decompress_exact(c, ctx, z, n, PAGE), 0);
        c->ctx_free(ctx);
    }
}

static void test_decompress_corrupt(void **state)
{
    unsigned char src[PAGE], z[2 * PAGE], bad[2 * PAGE], out[PAGE];
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        void *ctx = ctx_or_fail(c, c->level_default);
        size_t n = compress_text(c, ctx, src, z, sizeof z);
        unsigned rejected = 0;
        for (int t = 0; t < 3000; t++) {
            memcpy(bad, z, n);
            int flips = 1 + (int)(rng() % 4);
            for (int f = 0; f < flips; f++) {
                size_t at = t < 200 ? rng() % (n < 16 ? n : 16)   /* headers first */
                                    : rng() % n;
                bad[at] ^= (unsigned char)(1 + rng() % 255);
            }
            int r = decompress_exact(c, ctx, bad, n, PAGE);
            assert_true(r == 0 || r == -1);
            rejected += r == -1;
        }
        /* Without checksums some flips decode to other data of the right
         * size; most must still be caught. */
        assert_true(rejected > 100);
        /* pure garbage, of every small size and a few large ones */
        for (size_t len = 1; len <= 64; len++) {
            fill_random(bad, len);
            int r = decompress_exact(c, ctx, bad, len, PAGE);
            assert_true(r == 0 || r == -1);
        }
        for (int t = 0; t < 200; t++) {
            size_t len = 1 + rng() % sizeof bad;
            fill_random(bad, len);
            int r = decompress_exact(c, ctx, bad, len, PAGE);
            assert_true(r == 0 || r == -1);
        }
        /* and the context is still good after all that */
        assert_int_equal(c->decompress(ctx, z, n, out, PAGE), 0);
        assert_memory_equal(out, src, PAGE);
        c->ctx_free(ctx);
    }
}

/* ------------------------------------------------------------- contexts */

/* ctx_new fails cleanly at every allocation it makes (ASan's leak check
 * at exit catches anything a failed attempt leaves behind). */
static void test_ctx_alloc_failure(void **state)
{
    unsigned char page[PAGE];
    fill_text(page, PAGE);
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        unsigned fired = 0;
        for (uint64_t k = 1; k < 1000; k++) {
            uz_fault_arm(k);
            void *ctx = c->ctx_new(c->level_default);
            bool hit = uz_fault_fired();
            uz_fault_arm(0);
            if (ctx) {
                /* usable whether or not a failure was swallowed inside */
                roundtrip(c, ctx, page, PAGE, PAGE, 1);
                c->ctx_free(ctx);
            }
            if (!hit) {
                assert_non_null(ctx);
                break;
            }
            fired++;
            assert_null(ctx);
        }
        assert_true(fired >= 1);     /* every context allocates something */
    }
}

/* The data path allocates nothing: no fallible memory call is made while
 * pages are compressed and decompressed with a ready context. */
static void test_no_alloc_on_data_path(void **state)
{
    unsigned char page[PAGE], z[PAGE], out[PAGE];
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        int lv[3], nl = levels_of(c, lv);
        for (int l = 0; l < nl; l++) {
            void *ctx = ctx_or_fail(c, lv[l]);
            uz_fault_arm(0);
            for (int kind = 0; kind < PG_COUNT; kind++) {
                make_page(kind, page);
                for (size_t cap = PAGE; cap >= 64; cap /= 4) {
                    size_t n = c->compress(ctx, page, PAGE, z, cap);
                    if (n) {
                        assert_int_equal(c->decompress(ctx, z, n, out, PAGE), 0);
                        assert_memory_equal(out, page, PAGE);
                    }
                }
            }
            for (size_t p = 0; corpus && p < 64 && (p + 1) * PAGE <= corpus_len; p++) {
                size_t n = c->compress(ctx, corpus + p * PAGE, PAGE, z, PAGE);
                if (n)
                    assert_int_equal(c->decompress(ctx, z, n, out, PAGE), 0);
            }
            if (uz_fault_count() != 0)
                fail_msg("%s level %d: %llu allocations on the data path", c->name, lv[l],
                         (unsigned long long)uz_fault_count());
            c->ctx_free(ctx);
        }
    }
}

/* A context made for a unit size (ctx_new_unit, the store's group streams)
 * never allocates, whether it compresses whole units or single pages in
 * any order; it writes the same bytes as a growing context for single
 * pages, and for whole units output within 1% of its size (zstd's unit
 * context caps its hash table at the window: codec.c). */
static void test_unit_context(void **state)
{
    (void)state;
    enum { UNIT = 8 * PAGE };
    unsigned char *in = malloc(UNIT), *za = malloc(2 * UNIT), *zb = malloc(2 * UNIT), *out = malloc(UNIT);
    assert_non_null(in);
    assert_non_null(za);
    assert_non_null(zb);
    assert_non_null(out);
    for (size_t off = 0; off < UNIT; off += PAGE) {
        if (corpus && off + PAGE <= corpus_len)
            memcpy(in + off, corpus + off, PAGE);
        else
            fill_text(in + off, PAGE);
    }
    const struct uz_codec *c;
    unsigned tested = 0;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        if (!c->ctx_new_unit)
            continue;
        tested++;
        int lv[3], nl = levels_of(c, lv);
        for (int l = 0; l < nl; l++) {
            void *u = c->ctx_new_unit(lv[l], UNIT), *g = ctx_or_fail(c, lv[l]);
            assert_non_null(u);
            uz_fault_arm(0);
            for (int round = 0; round < 300; round++) {
                /* units and pages mixed, then 220 pages in a row (a
                 * growing zstd context shrinks after 128 small inputs),
                 * then units again */
                size_t len = (round < 30 || round >= 250) && round % 3 == 0 ? UNIT : PAGE;
                const unsigned char *src = len == UNIT ? in : in + (size_t)(round % 8) * PAGE;
                size_t na = c->compress(u, src, len, za, 2 * UNIT);
                assert_true(na > 0);
                assert_int_equal(c->decompress(u, za, na, out, len), 0);
                assert_memory_equal(out, src, len);
                if (round < 12) {
                    /* the growing context may allocate: restart the count */
                    size_t nb = c->compress(g, src, len, zb, 2 * UNIT);
                    if (len == PAGE) {
                        assert_int_equal(nb, na);
                        assert_memory_equal(za, zb, na);
                    } else {
                        assert_true(na <= nb + nb / 100 && nb <= na + na / 100);
                    }
                    uz_fault_arm(0);
                }
            }
            if (uz_fault_count() != 0)
                fail_msg("%s level %d: %llu allocations by a unit context", c->name, lv[l],
                         (unsigned long long)uz_fault_count());
            c->ctx_free(u);
            c->ctx_free(g);
        }
    }
    assert_true(tested >= 1);   /* zstd has one */
    free(in);
    free(za);
    free(zb);
    free(out);
}

/* Many contexts of one codec are independent. */
static void test_independent_contexts(void **state)
{
    unsigned char a[PAGE], b[PAGE], za[2 * PAGE], zb[2 * PAGE], out[PAGE];
    fill_text(a, PAGE);
    fill_text(b, PAGE);
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)); i++) {
        if (!compresses(c))
            continue;
        void *x = ctx_or_fail(c, c->level_default), *y = ctx_or_fail(c, c->level_max);
        size_t na = c->compress(x, a, PAGE, za, sizeof za);
        size_t nb = c->compress(y, b, PAGE, zb, sizeof zb);
        assert_true(na > 0 && nb > 0);
        /* decode each with the other context */
        assert_int_equal(c->decompress(y, za, na, out, PAGE), 0);
        assert_memory_equal(out, a, PAGE);
        assert_int_equal(c->decompress(x, zb, nb, out, PAGE), 0);
        assert_memory_equal(out, b, PAGE);
        /* compressing the same page twice gives the same bytes */
        unsigned char again[2 * PAGE];
        assert_int_equal(c->compress(x, a, PAGE, again, sizeof again), na);
        assert_memory_equal(again, za, na);
        c->ctx_free(x);
        c->ctx_free(y);
        c->ctx_free(NULL);   /* accepted, like free() */
    }
}

/* ----------------------------------------------------------------- none */

/* The raw RAM mode's contract: compress never answers a size, whatever the
 * input and the room (so the store keeps the page raw), and never writes
 * dst; decompress copies exactly dlen bytes and refuses any other length. */
static void test_none(void **state)
{
    (void)state;
    const struct uz_codec *c = uz_codec_find("none");
    assert_non_null(c);
    assert_int_equal(c->level_min, 1);
    assert_int_equal(c->level_max, 1);
    void *ctx = ctx_or_fail(c, 1);
    static unsigned char src[PAGE], dst[2 * PAGE], back[PAGE];
    for (int kind = PG_ZERO; kind <= PG_HALF; kind++) {
        make_page(kind, src);
        size_t caps[] = { 1, PAGE - 1, PAGE, 2 * PAGE };
        for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
            memset(dst, 0xA5, sizeof dst);
            assert_int_equal(c->compress(ctx, src, PAGE, dst, caps[k]), 0);
            for (size_t i = 0; i < sizeof dst; i++)
                assert_int_equal(dst[i], 0xA5);
        }
        memset(back, 0, sizeof back);
        assert_int_equal(c->decompress(ctx, src, PAGE, back, PAGE), 0);
        assert_memory_equal(back, src, PAGE);
        assert_int_equal(c->decompress(ctx, src, PAGE - 1, back, PAGE), -1);
        assert_int_equal(c->decompress(ctx, src, PAGE, back, PAGE - 1), -1);
    }
    c->ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_unit_context),
        cmocka_unit_test(test_lzo_alias),
        cmocka_unit_test(test_roundtrip_synthetic),
        cmocka_unit_test(test_roundtrip_caps),
        cmocka_unit_test(test_roundtrip_large),
        cmocka_unit_test(test_roundtrip_corpus),
        cmocka_unit_test(test_decompress_wrong_size),
        cmocka_unit_test(test_decompress_corrupt),
        cmocka_unit_test(test_ctx_alloc_failure),
        cmocka_unit_test(test_no_alloc_on_data_path),
        cmocka_unit_test(test_independent_contexts),
    };
    return cmocka_run_group_tests(tests, corpus_setup, corpus_teardown);
}
