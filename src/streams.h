/*
 * streams.h - per-CPU compression streams (see streams.c).
 */
#ifndef UZRAM_STREAMS_H
#define UZRAM_STREAMS_H

#include <pthread.h>
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
};

struct uz_streams {
    const struct uz_codec *codec;
    int level;
    unsigned n;
    struct uz_stream *s;
    uint64_t bytes;                    /* memory held by buffers */
};

/* Make n streams (0: one per CPU) for codec at level.  0 or -ENOMEM. */
int uz_streams_init(struct uz_streams *ss, const struct uz_codec *codec, int level, unsigned n);
void uz_streams_fini(struct uz_streams *ss);
/* Take a stream (the current CPU's if free, else any free one, else wait). */
struct uz_stream *uz_stream_get(struct uz_streams *ss);
void uz_stream_put(struct uz_stream *s);

#endif
