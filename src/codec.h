/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * codec.h - the compressor registry over the real libraries
 * (liblz4, liblzo2, libzstd, zlib).
 *
 * A codec is one table entry: a name, its level range, and functions to
 * make a per-stream context and to compress / decompress one page.  Adding
 * a codec is adding one entry to the table in codec.c.
 *
 * Contexts are not thread-safe; the store keeps one per compression stream
 * and a stream is used by one thread at a time.
 */
#ifndef UZRAM_CODEC_H
#define UZRAM_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Room for the compressed form of one 4096-byte page with any codec here
 * (the worst case is lzo's, 4096 + 4096/16 + 64 + 3).  Offering this much
 * to compress() means the codec writes straight into dst. */
#define UZ_CODEC_PAGE_BOUND (4096u + 512u)

struct uz_codec {
    const char *name;
    int level_min, level_max, level_default;
    /* Make a context for this level (level already validated); NULL on
     * allocation failure.  May return a non-NULL dummy for stateless codecs. */
    void *(*ctx_new)(int level);
    void (*ctx_free)(void *ctx);
    /* Compress src (slen bytes) into dst (dcap bytes).  Returns the
     * compressed size, or 0 if it did not fit in dcap or failed. */
    size_t (*compress)(void *ctx, const void *src, size_t slen, void *dst, size_t dcap);
    /* Decompress src (slen bytes) into dst, which must come out exactly
     * dlen bytes.  Returns 0, or -1 on corrupt input. */
    int (*decompress)(void *ctx, const void *src, size_t slen, void *dst, size_t dlen);
    /* Optional (NULL for codecs whose contexts do not depend on the input
     * size): make a context whose workspace is sized once, now, for
     * inputs of up to unit bytes (a group), and never resized; larger
     * inputs fail (compress returns 0).  ctx_new's contexts grow and
     * shrink with the input instead. */
    void *(*ctx_new_unit)(int level, size_t unit);
    /* The level a secondary (recomp_algorithm) gets when none is given:
     * it compresses cold pages once, so it may spend more; 0 = the same
     * as level_default. */
    int level_secondary;
    /* Dictionaries (NULL: the codec takes none; zstd's alone here).
     * dict_check: is buf (len bytes) a dictionary of this codec?  0 and
     * its ID (never 0) in *id, or -1 with the reason in *why (a constant
     * string).  dict_new: digest it once for contexts at level; NULL on
     * allocation failure.  The digested dictionary is read-only and
     * shared by every context made with it (ctx_new_dict), and must
     * outlive them; it copies buf.  ctx_new_dict: a context that
     * compresses with dict and decompresses only what was compressed
     * with a dictionary of its ID (decompress fails on any other);
     * unit as for ctx_new_unit (0: a page), but the context may grow
     * with its input. */
    int (*dict_check)(const void *buf, size_t len, uint32_t *id, const char **why);
    void *(*dict_new)(const void *buf, size_t len, int level);
    void (*dict_free)(void *dict);
    void *(*ctx_new_dict)(int level, size_t unit, void *dict);
    /* Optional (NULL: ctx_new serves): make a context that only
     * decompresses (its compress returns 0), for streams at rest
     * (uz_streams_rest): zstd's without its compression workspace.  dict:
     * the streams' digested dictionary (dict_new), or NULL. */
    void *(*ctx_new_decoder)(int level, void *dict);
};

/* By name ("lz4", "lz4hc", "lzo", "lzo-rle", "zstd", "deflate", "none": no
 * compression, every page kept raw); NULL if unknown. */
const struct uz_codec *uz_codec_find(const char *name);
/* Train a zstd dictionary of at most cap bytes into dict from n samples
 * laid end to end in samples (sample i is sizes[i] bytes): libzstd's
 * ZDICT_trainFromBuffer.  Its size, or 0 with the reason in *why (a
 * constant string: too few samples, libzstd missing ...). */
size_t uz_zstd_train(void *dict, size_t cap, const void *samples, const size_t *sizes,
                     unsigned n, const char **why);
/* i-th codec, NULL past the end. */
const struct uz_codec *uz_codec_at(unsigned i);

#endif
