/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * streams.h - per-CPU compression streams (see streams.c).
 */
#ifndef UZRAM_STREAMS_H
#define UZRAM_STREAMS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "codec.h"

/* page and out are 4096-byte aligned, so they serve as O_DIRECT buffers
 * for the backing device: no allocation on the I/O path. */
struct uz_stream {
    pthread_mutex_t lock;
    void *ctx;                         /* codec context */
    uint8_t *page;                     /* 4096 B: read-modify-write scratch */
    uint8_t *out;                      /* UZ_CODEC_PAGE_BOUND B: compressed output */
    void *mem;                         /* the allocation behind page and out */
    /* Group scratch (only in streams made for groups, else NULL): gbuf
     * holds gpages decompressed pages, gout gcap bytes of compressed group
     * (the worst case of every codec for gpages pages, so compress()
     * writes straight into it). */
    uint8_t *gbuf, *gout;
    size_t gcap;
    void *gmem;
};

/* A dictionary as configured (algorithm_params dict=PATH): its bytes,
 * read and checked (codec->dict_check) when it is set, and its ID; len
 * 0: none.  The streams digest it once (codec->dict_new). */
struct uz_dict_buf {
    void *buf;
    size_t len;
    uint32_t id;
    char path[256];
};

struct uz_streams {
    const struct uz_codec *codec;
    int level;
    void *dict;                        /* the digested dictionary all contexts share, or NULL */
    uint32_t dict_id;
    unsigned n;
    uint32_t gpages;                   /* group scratch per stream, pages (0 = none) */
    struct uz_stream *s;
    _Atomic uint64_t bytes;            /* memory held by buffers and contexts */
    bool group_warm;                   /* contexts sized for a group (uz_streams_warm) */
};

/* Room for the compressed form of a group of k pages with any codec here
 * (deflate's bound is the largest: n + n/8 + n/64 + 5). */
#define UZ_GROUP_BOUND(k) ((size_t)(k) * 4096u * 5u / 4u + 256u)

/* The largest dictionary file algorithm_params takes (zstd's trainer
 * makes 110 KiB by default; `zstd --train --maxdict` rarely past 1 MiB). */
#define UZ_DICT_MAX (4u << 20)

/* Read the dictionary file path for codec c into d (replacing what d
 * held only on success) and check it (c->dict_check).  0, or: -EINVAL
 * (c takes no dictionary, the file is empty, larger than UZ_DICT_MAX, not
 * a regular file, or not a dictionary of c), the open's or read's error
 * (-ENOENT, -EACCES, -EIO ...), -ENOMEM; each with a message
 * (uz_error) "WHAT: dict=PATH: why".  On error d is unchanged. */
int uz_dict_load(struct uz_dict_buf *d, const struct uz_codec *c, const char *path,
                 const char *what);
/* Drop what d holds (len 0 after).  Cannot fail. */
void uz_dict_clear(struct uz_dict_buf *d);

/* Make n streams (0: one per CPU) for codec at level.  gpages > 1: each
 * stream also gets group scratch for groups of up to gpages pages, and if
 * warm is set its codec context is warmed up on a group-sized input (zstd
 * sizes its workspace by the input: done here, not on the I/O path).
 * dict (NULL or len 0: none): digested once, and every context compresses
 * and decompresses with it (the codec must take dictionaries; it was
 * checked when set).  0, -ENOMEM, or -EINVAL (a dictionary for a codec
 * that takes none). */
int uz_streams_init(struct uz_streams *ss, const struct uz_codec *codec, int level, unsigned n,
                    uint32_t gpages, bool warm, const struct uz_dict_buf *dict);
void uz_streams_fini(struct uz_streams *ss);
/* Streams with group scratch whose contexts grow with their input (zstd):
 * uz_streams_warm sizes every context for a group now (one compression
 * of a group of zeros), so the bytes counted are what the streams hold
 * while groups are compressed; uz_streams_rest makes each context anew,
 * a decoder only where the codec has one (ctx_new_decoder) or else one
 * sized for a page, giving the compression workspace back (the same
 * codec and level: it decodes what the old one encoded).  After a rest
 * the streams decompress; compress may return 0 until uz_streams_warm.  Each
 * takes every stream's lock in turn; bytes follows.  warm: 0 or -ENOMEM
 * (the streams keep working: the context grows when it is used); rest
 * cannot fail (a context that cannot be made anew is kept). */
int uz_streams_warm(struct uz_streams *ss);
void uz_streams_rest(struct uz_streams *ss);
/* Take a stream (the current CPU's if free, else any free one, else wait). */
struct uz_stream *uz_stream_get(struct uz_streams *ss);
void uz_stream_put(struct uz_stream *s);

#endif
