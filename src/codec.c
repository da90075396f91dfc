/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * codec.c - the compressor registry over liblz4, liblzo2, libzstd and zlib.
 *
 * The registry is one constant table, `codecs[]`, in the order the kernel's
 * zram lists its algorithms.  Each entry names its level range and four
 * functions: make a context, free it, compress one buffer, decompress one
 * buffer.  Adding a codec is writing those four functions and one row.
 *
 * Design rules every codec here follows:
 *
 *  - Everything a codec needs is allocated when its context is made, so the
 *    data path (compress / decompress) allocates nothing: an lz4 state, an
 *    lz4hc stream, lzo's work memory, zstd's contexts (warmed up on one
 *    page so the compression workspace exists before the first real
 *    write), zlib's deflate and inflate streams, and in every context a
 *    bounce buffer for the worst-case output of a page (see below).  The
 *    allocations go through uz_malloc/uz_free (mem.h), handed to zstd as a
 *    customMem and to zlib as zalloc/zfree, so fault injection reaches them
 *    and the heap counter sees a context's true size.  Two exceptions, both
 *    cold: the bounce buffer regrows for inputs larger than a page, and
 *    zlib's inflate allocates its 32 KiB window the first time a stream does
 *    not finish in one call (which only corrupt or oversized input does).
 *
 *  - compress(ctx, src, slen, dst, dcap) writes at most dcap bytes and
 *    returns the compressed size, or 0 when the result would not fit (or
 *    any other failure): the caller then stores the page raw.  The answer
 *    is exact: whatever dcap is, the output is the same bytes, and it is
 *    returned whenever it fits.  The libraries' own bounded modes are not
 *    exact: lz4 keeps a safety margin and refuses some outputs that would
 *    fit; zstd (measured on real pages) refuses every output when the
 *    capacity is its exact size; zlib cannot tell an exactly full buffer
 *    from an unfinished stream; lzo1x takes no bound at all.  So when dcap is below the library's worst case for
 *    slen, a codec compresses into its context's bounce buffer and copies
 *    the result if it fits: one memcpy of at most a page, against
 *    compressing a page.  When the caller offers the worst case (the
 *    store's 2-page output buffer does), output goes straight to dst.
 *
 *  - decompress(ctx, src, slen, dst, dlen) succeeds only if the whole of
 *    src decodes to exactly dlen bytes.  Anything else, including trailing
 *    bytes after the end of the stream, is -1.  Only the libraries' bounded
 *    ("safe") decoders are used, so dst is never written past dlen and src
 *    is never read past slen, whatever the input.
 *
 * Per codec:
 *
 *  lzo, lzo-rle  lzo1x_1_compress / lzo1x_decompress_safe.  liblzo2 has no
 *                RLE variant, so "lzo-rle" is a second row over the same
 *                functions (it produces plain LZO1X data; the name exists so
 *                that configurations written for the kernel keep working).
 *                No levels: the range is 1..1.  lzo_init() runs once per
 *                process (pthread_once).
 *  lz4           LZ4_compress_fast_extState; the level is the acceleration,
 *                as the kernel's zram treats it: 1 (default, best ratio) up
 *                to the library's maximum of 65537 (fastest).
 *  lz4hc         levels 1..12, default 9.  Rather than
 *                LZ4_compress_HC_extStateHC, which zeroes its 256 KiB tables
 *                on every call, the stream is reset with
 *                LZ4_resetStreamHC_fast() and fed to LZ4_compress_HC_continue:
 *                the library's own pattern for independent blocks, which only
 *                moves the index base (measured on real 4 KiB pages: about
 *                10% faster, same ratio).
 *  zstd          levels 1..22, default 3, in a ZSTD_CCtx / ZSTD_DCtx pair.
 *                The level and frame format are sticky parameters set once;
 *                ZSTD_compress2 knows the input size, so it picks the
 *                small-input parameter table just as ZSTD_compressCCtx would.
 *                A ZSTD_CCtx made by ctx_new resizes its workspace to the
 *                input: grown for a 32 KiB group (541 KiB at level 3), and
 *                shrunk again to 90 KiB after 128 calls on single pages,
 *                which would allocate and free on the data path each time a
 *                device in group mode switches between pages and groups.
 *                ctx_new_unit (the store's group streams) therefore makes a
 *                static ZSTD_CCtx (ZSTD_initStaticCCtx) in one workspace of
 *                ZSTD_estimateCCtxSize_usingCParams(ZSTD_getCParams(level,
 *                unit)) bytes: the size ZSTD_compress2 needs for an input of
 *                unit bytes, and enough for any smaller input (whose
 *                parameters are never larger), allocated once and never
 *                resized.  The compression parameters are the level's, as
 *                with ctx_new, but for one: the hash table is at most the
 *                window (hashLog <= windowLog; level 3 for 32 KiB asks for
 *                2^16 entries over a 2^15 window).  Measured on both page
 *                files in 8-page units: the same ratio (3.663 and 4.760 /
 *                4.759) and CPU time within noise, and 128 KiB less per
 *                context (529 -> 401 KiB at level 3), which is resident
 *                in every stream of a group device.  Single pages give
 *                the same bytes as ctx_new (zstd fits the table to a
 *                page's window either way).
 *                Dictionaries (algorithm_params dict=PATH): dict_check
                accepts only a real zstd dictionary (its magic, a non-zero
                ID, entropy tables that load into a DDict); dict_new
                digests it once into a CDict at the streams' level and a
                DDict (both by copy, through zstd_mem), which every context
                of the set references (ZSTD_CCtx_refCDict,
                ZSTD_DCtx_refDDict): the tables are not copied per stream.
                A context with a dictionary is always the growing kind
                (the workspace a CDict needs depends on whether zstd
                attaches or copies it, by input size).  Its frames carry
                the dictionary ID (ZSTD_c_dictIDFlag, 4 bytes), and
                decompress reads the frame header and refuses a frame
                whose ID is not its own dictionary's (0: none), before
                zstd's own check.
                Frames are written magicless and without the content size:
 *                objects never leave the store and the store knows every
 *                page's length, so those 5 header bytes per page (about
 *                0.4% of the compressed size on real pages) are dropped.
 *  deflate       zlib raw deflate (no zlib header or checksum), levels 1..9,
 *                default 6.  deflateInit2/inflateInit2 run once per
 *                context; each call only resets the stream.  The window is
 *                4 KiB (a page is all there is to look back on) and
 *                memLevel 7: a context takes about 100 KiB instead of the
 *                290 KiB of the 32 KiB-window defaults, at the same ratio.
 *  none          no compression: the raw RAM mode.  compress always answers
 *                0 ("does not fit"), so the store keeps every page raw, one
 *                allocator page each, exactly as it keeps an incompressible
 *                page (same-filled pages are still kept as their word, as
 *                with every algorithm).  A device that costs RAM page for
 *                page, for what a plain RAM disk would give: the floor the
 *                benchmarks compare a compressing device with, and a fast
 *                device in its own right when the data does not compress.
 *                decompress copies (a raw object is its page); no levels
 *                (1..1) and no context (a constant dummy).
 *
 * Contexts are not thread-safe (codec.h); the registry itself is constant
 * and may be read from any thread.
 */
#define _GNU_SOURCE
#define ZSTD_STATIC_LINKING_ONLY    /* ZSTD_customMem, ZSTD_c_format */
#include "codec.h"
#include "dynlib.h"
#include "mem.h"

#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <lz4.h>
#include <lz4hc.h>
#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>
#include <zdict.h>

/* ------------------------------------------------------------ libraries */

/* Each library is loaded the first time a context of one of its codecs is
 * made (dynlib.c: a process maps only the libraries its devices use).  Its
 * functions are called through a table of pointers of their own types,
 * filled by the load; the macros after each table make every call below
 * (and the libraries' own macros, deflateInit2 and lzo_init) go through
 * it, so the codecs read as calls into the library. */
#define UZ_FN_PTR(f) __typeof__(f) *f;
#define UZ_FN_ENTRY(tab, f) {#f, &tab.f},

#define LZ4_FNS(X, t) X(t, LZ4_sizeofState) X(t, LZ4_compressBound) X(t, LZ4_compress_fast_extState) \
    X(t, LZ4_decompress_safe) X(t, LZ4_initStreamHC) X(t, LZ4_resetStreamHC_fast) \
    X(t, LZ4_compress_HC_continue)
#define LZO_FNS(X, t) X(t, __lzo_init_v2) X(t, lzo1x_1_compress) X(t, lzo1x_decompress_safe)
#define ZSTD_FNS(X, t) X(t, ZSTD_CCtx_reset) X(t, ZSTD_CCtx_setParameter) \
    X(t, ZSTD_DCtx_setParameter) X(t, ZSTD_compress2) X(t, ZSTD_compressBound) \
    X(t, ZSTD_createCCtx_advanced) X(t, ZSTD_createDCtx_advanced) X(t, ZSTD_decompressDCtx) \
    X(t, ZSTD_estimateCCtxSize_usingCParams) X(t, ZSTD_freeCCtx) X(t, ZSTD_freeDCtx) \
    X(t, ZSTD_getCParams) X(t, ZSTD_initStaticCCtx) X(t, ZSTD_isError) X(t, ZSTD_maxCLevel) \
    X(t, ZSTD_createCCtxParams) X(t, ZSTD_CCtxParams_init) X(t, ZSTD_freeCCtxParams) \
    X(t, ZSTD_createCDict_advanced2) X(t, ZSTD_freeCDict) X(t, ZSTD_createDDict_advanced) \
    X(t, ZSTD_freeDDict) X(t, ZSTD_CCtx_refCDict) X(t, ZSTD_DCtx_refDDict) \
    X(t, ZSTD_getDictID_fromDict) X(t, ZSTD_getFrameHeader_advanced) \
    X(t, ZDICT_trainFromBuffer) X(t, ZDICT_isError) X(t, ZDICT_getErrorName)
#define ZLIB_FNS(X, t) X(t, deflateInit2_) X(t, deflate) X(t, deflateBound) X(t, deflateEnd) \
    X(t, deflateReset) X(t, inflateInit2_) X(t, inflate) X(t, inflateEnd) X(t, inflateReset)

#define UZ_FN_FIELD(t, f) UZ_FN_PTR(f)
static struct { LZ4_FNS(UZ_FN_FIELD, _) } lz4_fn;
static struct { LZO_FNS(UZ_FN_FIELD, _) } lzo_fn;
static struct { ZSTD_FNS(UZ_FN_FIELD, _) } zstd_fn;
static struct { ZLIB_FNS(UZ_FN_FIELD, _) } zlib_fn;

static const struct uz_dynsym lz4_syms[] = { LZ4_FNS(UZ_FN_ENTRY, lz4_fn) {NULL, NULL} };
static const struct uz_dynsym lzo_syms[] = { LZO_FNS(UZ_FN_ENTRY, lzo_fn) {NULL, NULL} };
static const struct uz_dynsym zstd_syms[] = { ZSTD_FNS(UZ_FN_ENTRY, zstd_fn) {NULL, NULL} };
static const struct uz_dynsym zlib_syms[] = { ZLIB_FNS(UZ_FN_ENTRY, zlib_fn) {NULL, NULL} };

/* The sonames: the libraries' ABI versions, the same on every system that
 * ships them (the build may name others: -DUZ_SONAME_ZSTD=... etc.). */
#ifndef UZ_SONAME_LZ4
#define UZ_SONAME_LZ4 "liblz4.so.1"
#endif
#ifndef UZ_SONAME_LZO
#define UZ_SONAME_LZO "liblzo2.so.2"
#endif
#ifndef UZ_SONAME_ZSTD
#define UZ_SONAME_ZSTD "libzstd.so.1"
#endif
#ifndef UZ_SONAME_ZLIB
#define UZ_SONAME_ZLIB "libz.so.1"
#endif
static struct uz_dynlib lz4_lib = { UZ_SONAME_LZ4, lz4_syms, 0 };
static struct uz_dynlib lzo_lib = { UZ_SONAME_LZO, lzo_syms, 0 };
static struct uz_dynlib zstd_lib = { UZ_SONAME_ZSTD, zstd_syms, 0 };
static struct uz_dynlib zlib_lib = { UZ_SONAME_ZLIB, zlib_syms, 0 };

#define LZ4_sizeofState (lz4_fn.LZ4_sizeofState)
#define LZ4_compressBound (lz4_fn.LZ4_compressBound)
#define LZ4_compress_fast_extState (lz4_fn.LZ4_compress_fast_extState)
#define LZ4_decompress_safe (lz4_fn.LZ4_decompress_safe)
#define LZ4_initStreamHC (lz4_fn.LZ4_initStreamHC)
#define LZ4_resetStreamHC_fast (lz4_fn.LZ4_resetStreamHC_fast)
#define LZ4_compress_HC_continue (lz4_fn.LZ4_compress_HC_continue)
#define __lzo_init_v2 (lzo_fn.__lzo_init_v2)
#define lzo1x_1_compress (lzo_fn.lzo1x_1_compress)
#define lzo1x_decompress_safe (lzo_fn.lzo1x_decompress_safe)
#define ZSTD_CCtx_reset (zstd_fn.ZSTD_CCtx_reset)
#define ZSTD_CCtx_setParameter (zstd_fn.ZSTD_CCtx_setParameter)
#define ZSTD_DCtx_setParameter (zstd_fn.ZSTD_DCtx_setParameter)
#define ZSTD_compress2 (zstd_fn.ZSTD_compress2)
#define ZSTD_compressBound (zstd_fn.ZSTD_compressBound)
#define ZSTD_createCCtx_advanced (zstd_fn.ZSTD_createCCtx_advanced)
#define ZSTD_createDCtx_advanced (zstd_fn.ZSTD_createDCtx_advanced)
#define ZSTD_decompressDCtx (zstd_fn.ZSTD_decompressDCtx)
#define ZSTD_estimateCCtxSize_usingCParams (zstd_fn.ZSTD_estimateCCtxSize_usingCParams)
#define ZSTD_freeCCtx (zstd_fn.ZSTD_freeCCtx)
#define ZSTD_freeDCtx (zstd_fn.ZSTD_freeDCtx)
#define ZSTD_getCParams (zstd_fn.ZSTD_getCParams)
#define ZSTD_initStaticCCtx (zstd_fn.ZSTD_initStaticCCtx)
#define ZSTD_isError (zstd_fn.ZSTD_isError)
#define ZSTD_maxCLevel (zstd_fn.ZSTD_maxCLevel)
#define ZSTD_createCCtxParams (zstd_fn.ZSTD_createCCtxParams)
#define ZSTD_CCtxParams_init (zstd_fn.ZSTD_CCtxParams_init)
#define ZSTD_freeCCtxParams (zstd_fn.ZSTD_freeCCtxParams)
#define ZSTD_createCDict_advanced2 (zstd_fn.ZSTD_createCDict_advanced2)
#define ZSTD_freeCDict (zstd_fn.ZSTD_freeCDict)
#define ZSTD_createDDict_advanced (zstd_fn.ZSTD_createDDict_advanced)
#define ZSTD_freeDDict (zstd_fn.ZSTD_freeDDict)
#define ZSTD_CCtx_refCDict (zstd_fn.ZSTD_CCtx_refCDict)
#define ZSTD_DCtx_refDDict (zstd_fn.ZSTD_DCtx_refDDict)
#define ZSTD_getDictID_fromDict (zstd_fn.ZSTD_getDictID_fromDict)
#define ZSTD_getFrameHeader_advanced (zstd_fn.ZSTD_getFrameHeader_advanced)
#define ZDICT_trainFromBuffer (zstd_fn.ZDICT_trainFromBuffer)
#define ZDICT_isError (zstd_fn.ZDICT_isError)
#define ZDICT_getErrorName (zstd_fn.ZDICT_getErrorName)
#define deflateInit2_ (zlib_fn.deflateInit2_)
#define deflate(s, f) (zlib_fn.deflate(s, f))
#define deflateBound (zlib_fn.deflateBound)
#define deflateEnd (zlib_fn.deflateEnd)
#define deflateReset (zlib_fn.deflateReset)
#define inflateInit2_ (zlib_fn.inflateInit2_)
#define inflate (zlib_fn.inflate)
#define inflateEnd (zlib_fn.inflateEnd)
#define inflateReset (zlib_fn.inflateReset)

/* The unit the store hands us; contexts are sized and warmed up for it. */
#define CODEC_PAGE 4096u

/* Longest buffer handed to a library whose lengths are int-sized (lz4) or
 * that we keep to the same limit (lzo); longer ones are refused
 * (compress: 0, decompress: -1). */
#define CODEC_MAX_LEN ((size_t)INT_MAX)

/* --------------------------------------------------------------- bounce */

/* Where compressed output goes when dst is smaller than the worst case. */
struct bounce {
    unsigned char *buf;
    size_t cap;
};

/* Allocate cap bytes; false on allocation failure. */
static bool bounce_init(struct bounce *b, size_t cap)
{
    b->buf = uz_malloc(cap);
    b->cap = b->buf ? cap : 0;
    return b->buf != NULL;
}

static void bounce_fini(struct bounce *b)
{
    uz_free(b->buf);
    b->buf = NULL;
    b->cap = 0;
}

/* The buffer to compress into: dst if dcap covers the worst case `bound`,
 * else the bounce buffer (grown if an input is larger than a page).  NULL
 * if growing fails. */
static void *out_for(struct bounce *b, void *dst, size_t dcap, size_t bound)
{
    if (dcap >= bound)
        return dst;
    if (b->cap < bound) {
        unsigned char *p = uz_malloc(bound);
        if (!p)
            return NULL;
        uz_free(b->buf);
        b->buf = p;
        b->cap = bound;
    }
    return b->buf;
}

/* n bytes were written to out (from out_for); deliver them to dst.
 * Returns n, or 0 if they do not fit in dcap. */
static size_t out_done(const void *out, void *dst, size_t dcap, size_t n)
{
    if (n == 0 || n > dcap)
        return 0;
    if (out != dst)
        memcpy(dst, out, n);
    return n;
}

/* ------------------------------------------------------------------ lz4 */

#define LZ4_LEVEL_MAX 65537   /* LZ4_ACCELERATION_MAX in lz4.c */

struct lz4_ctx {
    int accel;
    struct bounce out;
    alignas(max_align_t) unsigned char state[];   /* LZ4_sizeofState() bytes */
};

static void *lz4_new(int level)
{
    if (uz_dynlib_load(&lz4_lib) < 0)
        return NULL;
    struct lz4_ctx *c = uz_malloc(sizeof *c + (size_t)LZ4_sizeofState());
    if (!c)
        return NULL;
    c->accel = level;
    if (!bounce_init(&c->out, (size_t)LZ4_compressBound(CODEC_PAGE))) {
        uz_free(c);
        return NULL;
    }
    return c;
}

static void lz4_free(void *ctx)
{
    struct lz4_ctx *c = ctx;
    if (!c)
        return;
    bounce_fini(&c->out);
    uz_free(c);
}

static size_t lz4_compress(void *ctx, const void *src, size_t slen, void *dst, size_t dcap)
{
    struct lz4_ctx *c = ctx;
    if (slen > LZ4_MAX_INPUT_SIZE || dcap == 0)
        return 0;
    int bound = LZ4_compressBound((int)slen);
    char *out = out_for(&c->out, dst, dcap, (size_t)bound);
    if (!out)
        return 0;
    int n = LZ4_compress_fast_extState(c->state, src, out, (int)slen, bound, c->accel);
    return n > 0 ? out_done(out, dst, dcap, (size_t)n) : 0;
}

/* Shared by lz4 and lz4hc: the block format is the same. */
static int lz4_decompress(void *ctx, const void *src, size_t slen, void *dst, size_t dlen)
{
    if (slen == 0 || slen > CODEC_MAX_LEN || dlen > CODEC_MAX_LEN)
        return -1;
    int n = LZ4_decompress_safe(src, dst, (int)slen, (int)dlen);
    return n >= 0 && (size_t)n == dlen ? 0 : -1;
}

/* ---------------------------------------------------------------- lz4hc */

struct lz4hc_ctx {
    int level;
    struct bounce out;
    LZ4_streamHC_t stream;
};

static void lz4hc_free(void *ctx)
{
    struct lz4hc_ctx *c = ctx;
    if (!c)
        return;
    bounce_fini(&c->out);
    uz_free(c);
}

static void *lz4hc_new(int level)
{
    if (uz_dynlib_load(&lz4_lib) < 0)
        return NULL;
    struct lz4hc_ctx *c = uz_malloc(sizeof *c);
    if (!c)
        return NULL;
    c->level = level;
    if (!bounce_init(&c->out, (size_t)LZ4_compressBound(CODEC_PAGE))) {
        uz_free(c);
        return NULL;
    }
    if (!LZ4_initStreamHC(&c->stream, sizeof c->stream)) {
        lz4hc_free(c);
        return NULL;
    }
    return c;
}

static size_t lz4hc_compress(void *ctx, const void *src, size_t slen, void *dst, size_t dcap)
{
    struct lz4hc_ctx *c = ctx;
    if (slen > LZ4_MAX_INPUT_SIZE || dcap == 0)
        return 0;
    /* Start an independent block: previous input is forgotten, and the
     * hash tables are not cleared but moved past (see the top comment). */
    int bound = LZ4_compressBound((int)slen);
    char *out = out_for(&c->out, dst, dcap, (size_t)bound);
    if (!out)
        return 0;
    LZ4_resetStreamHC_fast(&c->stream, c->level);
    int n = LZ4_compress_HC_continue(&c->stream, src, out, (int)slen, bound);
    return n > 0 ? out_done(out, dst, dcap, (size_t)n) : 0;
}

/* ------------------------------------------------------------------ lzo */

/* Worst-case LZO1X output for n input bytes (from the LZO documentation). */
static size_t lzo_bound(size_t n)
{
    return n + n / 16 + 64 + 3;
}

struct lzo_ctx {
    struct bounce out;
    alignas(max_align_t) unsigned char wrkmem[LZO1X_1_MEM_COMPRESS];
};

static pthread_once_t lzo_once = PTHREAD_ONCE_INIT;
static bool lzo_ready;

static void lzo_init_once(void)
{
    lzo_ready = lzo_init() == LZO_E_OK;
}

static void *lzo_new(int level)
{
    if (uz_dynlib_load(&lzo_lib) < 0)
        return NULL;
    pthread_once(&lzo_once, lzo_init_once);
    if (!lzo_ready)
        return NULL;
    struct lzo_ctx *c = uz_malloc(sizeof *c);
    if (!c)
        return NULL;
    if (!bounce_init(&c->out, lzo_bound(CODEC_PAGE))) {
        uz_free(c);
        return NULL;
    }
    return c;
}

static void lzo_free(void *ctx)
{
    struct lzo_ctx *c = ctx;
    if (!c)
        return;
    bounce_fini(&c->out);
    uz_free(c);
}

static size_t lzo_compress(void *ctx, const void *src, size_t slen, void *dst, size_t dcap)
{
    struct lzo_ctx *c = ctx;
    if (slen > CODEC_MAX_LEN || dcap == 0)
        return 0;
    /* The compressor cannot be told dcap at all: it always gets room
     * for the worst case. */
    unsigned char *out = out_for(&c->out, dst, dcap, lzo_bound(slen));
    if (!out)
        return 0;
    lzo_uint olen = 0;
    if (lzo1x_1_compress(src, slen, out, &olen, c->wrkmem) != LZO_E_OK)
        return 0;
    return out_done(out, dst, dcap, olen);
}

static int lzo_decompress(void *ctx, const void *src, size_t slen, void *dst, size_t dlen)
{
    if (slen == 0)
        return -1;
    lzo_uint olen = dlen;
    int r = lzo1x_decompress_safe(src, slen, dst, &olen, NULL);
    return r == LZO_E_OK && olen == dlen ? 0 : -1;
}

/* ----------------------------------------------------------------- zstd */

#define ZSTD_LEVEL_MAX 22     /* ZSTD_maxCLevel() of libzstd 1.x */
/* As a secondary, on groups of cold pages: the knee of zstd's levels on
 * 32 KiB units of real heaps (docs/settling.md has the table). */
#define ZSTD_LEVEL_SECONDARY 6

static void *zstd_alloc(void *opaque, size_t size)
{
    return uz_malloc(size);
}

static void zstd_release(void *opaque, void *p)
{
    uz_free(p);
}

static const ZSTD_customMem zstd_mem = { zstd_alloc, zstd_release, NULL };

/* A digested dictionary (dict_new): one CDict for the level and one
 * DDict, read-only, referenced by every context made with it. */
struct zstd_dict {
    ZSTD_CDict *cdict;
    ZSTD_DDict *ddict;
    uint32_t id;
};

struct zstd_ctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    void *cws;              /* the static cctx's workspace, or NULL (cctx grows) */
    uint32_t dict_id;       /* the dictionary's ID; 0: none */
    struct bounce out;
};

static void zstd_free(void *ctx)
{
    struct zstd_ctx *c = ctx;
    if (!c)
        return;
    if (c->cws)
        uz_free(c->cws);    /* a static cctx lives in its workspace */
    else if (c->cctx)
        ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    bounce_fini(&c->out);
    uz_free(c);
}

/* unit 0: a cctx that sizes itself to each input (ctx_new); else a static
 * cctx sized for inputs of up to unit bytes (ctx_new_unit).  With a
 * dictionary, always the first kind: the workspace a CDict needs depends
 * on how zstd joins it to the input (attached or copied, by input size),
 * which a static size cannot be made sure to cover. */
static void *zstd_make(int level, size_t unit, const struct zstd_dict *dict)
{
    if (uz_dynlib_load(&zstd_lib) < 0)
        return NULL;
    struct zstd_ctx *c = uz_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (level > ZSTD_maxCLevel())
        level = ZSTD_maxCLevel();
    int hash_log = 0;       /* 0: the level's */
    if (unit && !dict) {
        ZSTD_compressionParameters cp = ZSTD_getCParams(level, unit, 0);
        if (cp.hashLog > cp.windowLog) {
            cp.hashLog = cp.windowLog;
            hash_log = (int)cp.hashLog;
        }
        size_t need = ZSTD_estimateCCtxSize_usingCParams(cp);
        c->cws = uz_malloc(need);
        c->cctx = c->cws ? ZSTD_initStaticCCtx(c->cws, need) : NULL;
    } else {
        c->cctx = ZSTD_createCCtx_advanced(zstd_mem);
    }
    c->dctx = ZSTD_createDCtx_advanced(zstd_mem);
    if (!c->cctx || !c->dctx || !bounce_init(&c->out, ZSTD_compressBound(CODEC_PAGE)))
        goto fail;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_format, ZSTD_f_zstd1_magicless)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0)) ||
        (hash_log && ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_hashLog, hash_log))) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_format, ZSTD_f_zstd1_magicless)))
        goto fail;
    /* A dictionary: the frames carry its ID (ZSTD_c_dictIDFlag, on by
     * default), which decompress checks. */
    if (dict && (ZSTD_isError(ZSTD_CCtx_refCDict(c->cctx, dict->cdict)) ||
                 ZSTD_isError(ZSTD_DCtx_refDDict(c->dctx, dict->ddict))))
        goto fail;
    c->dict_id = dict ? dict->id : 0;
    /* Warm up: the compression workspace of a growing cctx is allocated
     * by the first compression, sized for its parameters (which depend on
     * the input size).  Do that here, on one page, so the data path never
     * allocates and an allocation failure is reported now.  (For a static
     * cctx it checks that the workspace serves a page.) */
    static const unsigned char zero_page[CODEC_PAGE];
    size_t r = ZSTD_compress2(c->cctx, c->out.buf, c->out.cap, zero_page, sizeof zero_page);
    if (ZSTD_isError(r))
        goto fail;
    return c;
fail:
    zstd_free(c);
    return NULL;
}

static void *zstd_new(int level)
{
    return zstd_make(level, 0, NULL);
}

/* A decoder only: no cctx (zstd_compress returns 0), about 90 KiB less
 * at level 6; with the dictionary of the contexts it stands for. */
static void *zstd_new_decoder(int level, void *dict)
{
    (void)level;
    const struct zstd_dict *d = dict;
    if (uz_dynlib_load(&zstd_lib) < 0)
        return NULL;
    struct zstd_ctx *c = uz_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->dctx = ZSTD_createDCtx_advanced(zstd_mem);
    if (!c->dctx || ZSTD_isError(ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_format, ZSTD_f_zstd1_magicless)) ||
        (d && ZSTD_isError(ZSTD_DCtx_refDDict(c->dctx, d->ddict)))) {
        zstd_free(c);
        return NULL;
    }
    c->dict_id = d ? d->id : 0;
    return c;
}

static void *zstd_new_unit(int level, size_t unit)
{
    return zstd_make(level, unit ? unit : CODEC_PAGE, NULL);
}

static void *zstd_new_dict(int level, size_t unit, void *dict)
{
    return zstd_make(level, unit, dict);
}

/* A zstd dictionary is what ZDICT_trainFromBuffer (or `zstd --train`)
 * writes: the dictionary magic, a non-zero ID, entropy tables and
 * content.  Raw content (no magic) is refused: it has no ID to check a
 * page against.  The tables are checked by digesting them into a DDict. */
static int zstd_dict_check(const void *buf, size_t len, uint32_t *id, const char **why)
{
    if (uz_dynlib_load(&zstd_lib) < 0) {
        *why = "libzstd cannot be loaded";
        return -1;
    }
    uint32_t n = len >= 8 ? ZSTD_getDictID_fromDict(buf, len) : 0;
    if (n == 0) {
        *why = "not a zstd dictionary (no dictionary magic and ID; make one with "
               "`uzram train` or `zstd --train`)";
        return -1;
    }
    ZSTD_DDict *dd = ZSTD_createDDict_advanced(buf, len, ZSTD_dlm_byRef, ZSTD_dct_fullDict,
                                               zstd_mem);
    if (!dd) {
        *why = "a corrupt zstd dictionary (its entropy tables do not load), or no memory";
        return -1;
    }
    ZSTD_freeDDict(dd);
    *id = n;
    return 0;
}

static void zstd_dict_free(void *p)
{
    struct zstd_dict *d = p;
    if (!d)
        return;
    ZSTD_freeCDict(d->cdict);
    ZSTD_freeDDict(d->ddict);
    uz_free(d);
}

static void *zstd_dict_new(const void *buf, size_t len, int level)
{
    if (uz_dynlib_load(&zstd_lib) < 0)
        return NULL;
    struct zstd_dict *d = uz_calloc(1, sizeof *d);
    ZSTD_CCtx_params *cp = d ? ZSTD_createCCtxParams() : NULL;
    if (!cp || ZSTD_isError(ZSTD_CCtxParams_init(cp, level > ZSTD_maxCLevel() ? ZSTD_maxCLevel()
                                                                               : level))) {
        ZSTD_freeCCtxParams(cp);
        uz_free(d);
        return NULL;
    }
    /* byCopy: the digested forms own their content (the caller's buffer
     * may go); fullDict: only a real dictionary loads. */
    d->cdict = ZSTD_createCDict_advanced2(buf, len, ZSTD_dlm_byCopy, ZSTD_dct_fullDict, cp,
                                          zstd_mem);
    d->ddict = ZSTD_createDDict_advanced(buf, len, ZSTD_dlm_byCopy, ZSTD_dct_fullDict, zstd_mem);
    ZSTD_freeCCtxParams(cp);
    d->id = ZSTD_getDictID_fromDict(buf, len);
    if (!d->cdict || !d->ddict || d->id == 0) {
        zstd_dict_free(d);
        return NULL;
    }
    return d;
}

static size_t zstd_compress(void *ctx, const void *src, size_t slen, void *dst, size_t dcap)
{
    struct zstd_ctx *c = ctx;
    if (dcap == 0 || !c->cctx)
        return 0;
    size_t bound = ZSTD_compressBound(slen);    /* 0 if slen is too large */
    void *out = bound ? out_for(&c->out, dst, dcap, bound) : NULL;
    if (!out)
        return 0;
    size_t r = ZSTD_compress2(c->cctx, out, bound, src, slen);
    if (ZSTD_isError(r)) {
        /* A failed call can leave a frame half written inside the context;
         * drop it (parameters are kept) so the next page starts clean. */
        ZSTD_CCtx_reset(c->cctx, ZSTD_reset_session_only);
        return 0;
    }
    return out_done(out, dst, dcap, r);
}

static int zstd_decompress(void *ctx, const void *src, size_t slen, void *dst, size_t dlen)
{
    struct zstd_ctx *c = ctx;
    if (slen == 0)
        return -1;
    /* A frame names the dictionary it was made with (0: none); only the
     * context's own decodes it.  (zstd checks this too; the check here
     * does not depend on how the library was built.) */
    ZSTD_frameHeader fh;
    if (ZSTD_getFrameHeader_advanced(&fh, src, slen, ZSTD_f_zstd1_magicless) != 0 ||
        fh.dictID != c->dict_id)
        return -1;
    size_t r = ZSTD_decompressDCtx(c->dctx, dst, dlen, src, slen);
    return !ZSTD_isError(r) && r == dlen ? 0 : -1;
}

size_t uz_zstd_train(void *dict, size_t cap, const void *samples, const size_t *sizes,
                     unsigned n, const char **why)
{
    if (uz_dynlib_load(&zstd_lib) < 0) {
        *why = "libzstd cannot be loaded";
        return 0;
    }
    size_t r = ZDICT_trainFromBuffer(dict, cap, samples, sizes, n);
    if (ZDICT_isError(r)) {
        *why = ZDICT_getErrorName(r);
        return 0;
    }
    return r;
}

/* -------------------------------------------------------------- deflate */

/* Raw deflate (negative windowBits: no zlib header, no Adler-32).  A
 * smaller window does not help 4 KiB inputs: measured on real pages, the
 * windowBits/memLevel pairs tried (12/5, 12/6, 13/7, 15/8, 15/9) give the
 * same ratio and speed within noise, so the library's defaults stay. */
#define DEFLATE_WBITS   (-12)
#define DEFLATE_MEMLEVEL 7

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size)
{
    return uz_malloc((size_t)items * size);
}

static void zlib_release(voidpf opaque, voidpf p)
{
    uz_free(p);
}

struct deflate_ctx {
    z_stream def, inf;
    bool def_ok, inf_ok;      /* which streams need deflateEnd/inflateEnd */
    struct bounce out;
};

static void deflate_free(void *ctx)
{
    struct deflate_ctx *c = ctx;
    if (!c)
        return;
    if (c->def_ok)
        deflateEnd(&c->def);
    if (c->inf_ok)
        inflateEnd(&c->inf);
    bounce_fini(&c->out);
    uz_free(c);
}

static void *deflate_new(int level)
{
    if (uz_dynlib_load(&zlib_lib) < 0)
        return NULL;
    struct deflate_ctx *c = uz_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->def.zalloc = c->inf.zalloc = zlib_alloc;
    c->def.zfree = c->inf.zfree = zlib_release;
    c->def_ok = deflateInit2(&c->def, level, Z_DEFLATED, DEFLATE_WBITS,
                             DEFLATE_MEMLEVEL, Z_DEFAULT_STRATEGY) == Z_OK;
    c->inf_ok = c->def_ok && inflateInit2(&c->inf, DEFLATE_WBITS) == Z_OK;
    if (!c->inf_ok || !bounce_init(&c->out, deflateBound(&c->def, CODEC_PAGE))) {
        deflate_free(c);
        return NULL;
    }
    return c;
}

static size_t deflate_compress(void *ctx, const void *src, size_t slen, void *dst, size_t dcap)
{
    struct deflate_ctx *c = ctx;
    if (slen > UINT_MAX || dcap == 0)
        return 0;
    if (deflateReset(&c->def) != Z_OK)
        return 0;
    /* With deflateBound() bytes of room, one deflate(Z_FINISH) finishes. */
    uLong bound = deflateBound(&c->def, (uLong)slen);
    Bytef *out = bound <= UINT_MAX ? out_for(&c->out, dst, dcap, bound) : NULL;
    if (!out)
        return 0;
    c->def.next_in = (Bytef *)src;   /* zlib does not write through next_in */
    c->def.avail_in = (uInt)slen;
    c->def.next_out = out;
    c->def.avail_out = (uInt)bound;
    if (deflate(&c->def, Z_FINISH) != Z_STREAM_END)
        return 0;
    return out_done(out, dst, dcap, c->def.total_out);
}

static int deflate_decompress(void *ctx, const void *src, size_t slen, void *dst, size_t dlen)
{
    struct deflate_ctx *c = ctx;
    if (slen == 0 || slen > UINT_MAX || dlen > UINT_MAX)
        return -1;
    if (inflateReset(&c->inf) != Z_OK)
        return -1;
    c->inf.next_in = (Bytef *)src;
    c->inf.avail_in = (uInt)slen;
    c->inf.next_out = dst;
    c->inf.avail_out = (uInt)dlen;
    int r = inflate(&c->inf, Z_FINISH);
    /* The stream must end, having filled dst exactly and used all of src. */
    return r == Z_STREAM_END && c->inf.avail_out == 0 && c->inf.avail_in == 0 ? 0 : -1;
}

/* ----------------------------------------------------------------- none */

static char none_dummy;

static void *none_new(int level)
{
    (void)level;
    return &none_dummy;
}

static void none_free(void *ctx)
{
    (void)ctx;
}

/* Never smaller: the caller keeps the page raw. */
static size_t none_compress(void *ctx, const void *src, size_t slen, void *dst, size_t dcap)
{
    (void)ctx;
    (void)src;
    (void)slen;
    (void)dst;
    (void)dcap;
    return 0;
}

/* A raw object is its own contents: only an exact length decodes. */
static int none_decompress(void *ctx, const void *src, size_t slen, void *dst, size_t dlen)
{
    (void)ctx;
    if (slen != dlen)
        return -1;
    memcpy(dst, src, dlen);
    return 0;
}

/* ------------------------------------------------------------- registry */

/* The four dictionary functions of a codec that takes none. */
#define NO_DICT NULL, NULL, NULL, NULL

static const struct uz_codec codecs[] = {
    { "lzo-rle", 1, 1, 1, lzo_new, lzo_free, lzo_compress, lzo_decompress, NULL, 0, NO_DICT, NULL },
    { "lzo", 1, 1, 1, lzo_new, lzo_free, lzo_compress, lzo_decompress, NULL, 0, NO_DICT, NULL },
    { "lz4", 1, LZ4_LEVEL_MAX, 1, lz4_new, lz4_free, lz4_compress, lz4_decompress, NULL, 0, NO_DICT, NULL },
    { "lz4hc", 1, LZ4HC_CLEVEL_MAX, LZ4HC_CLEVEL_DEFAULT,
      lz4hc_new, lz4hc_free, lz4hc_compress, lz4_decompress, NULL, 0, NO_DICT, NULL },
    { "zstd", 1, ZSTD_LEVEL_MAX, ZSTD_CLEVEL_DEFAULT,
      zstd_new, zstd_free, zstd_compress, zstd_decompress, zstd_new_unit, ZSTD_LEVEL_SECONDARY,
      zstd_dict_check, zstd_dict_new, zstd_dict_free, zstd_new_dict, zstd_new_decoder },
    { "deflate", 1, 9, 6, deflate_new, deflate_free, deflate_compress, deflate_decompress, NULL, 0, NO_DICT, NULL },
    { "none", 1, 1, 1, none_new, none_free, none_compress, none_decompress, NULL, 0, NO_DICT, NULL },
};

#define NCODECS (sizeof codecs / sizeof codecs[0])

/* uz_codec_find("zstd") -> the zstd entry; NULL for an unknown name. */
const struct uz_codec *uz_codec_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < NCODECS; i++)
        if (strcmp(codecs[i].name, name) == 0)
            return &codecs[i];
    return NULL;
}

/* for (unsigned i = 0; (c = uz_codec_at(i)); i++) ... visits every codec. */
const struct uz_codec *uz_codec_at(unsigned i)
{
    return i < NCODECS ? &codecs[i] : NULL;
}
