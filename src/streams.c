/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * streams.c - per-CPU compression streams, as zram has them.
 *
 * A stream is a codec context plus scratch buffers.  Making one can be
 * costly (a zstd context is hundreds of KiB), so a device makes a fixed set
 * at initialisation and the data path only borrows them: nothing is
 * allocated on the I/O path.  A thread takes the stream of the CPU it runs
 * on; if that one is busy it tries the others, and only if all are busy it
 * waits for its own.  Each stream has its own lock: there is no device-wide
 * lock on the data path.  (A stream lock is taken inside slot locks, the
 * primary's before a secondary's: src/README.md, "Lock order".)  Waiting for its own CPU's stream (rather than for
 * whichever frees first) keeps a stream, and the hundreds of KiB of codec
 * tables it works in, in one CPU's cache.  (Waiting for any free stream, a
 * counting semaphore, was tried: with 16 threads writing zstd groups on 2
 * CPUs it was no faster, and slower in some series.)
 *
 * Streams of a device in group mode (and those of secondary algorithms,
 * which recompression may use for groups) also carry group scratch: room
 * for a group's pages and for its compressed stream, so that reading part
 * of a group or breaking one allocates nothing either.  The codec contexts
 * of a device in group mode are made for a group's size at once
 * (ctx_new_unit, where the codec has it): one workspace, never resized.
 */
#define _GNU_SOURCE
#include "streams.h"
#include "mem.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

int uz_streams_init(struct uz_streams *ss, const struct uz_codec *codec, int level, unsigned n,
                    uint32_t gpages, bool warm)
{
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned)cpus : 1;
    }
    memset(ss, 0, sizeof *ss);
    uint64_t heap0 = uz_heap_bytes();
    ss->codec = codec;
    ss->level = level;
    ss->gpages = gpages > 1 ? gpages : 0;
    /* Streams warmed up for groups get contexts sized for a group once
     * (codec.c: zstd's would otherwise shrink back after a run of single
     * pages and regrow on the next group, on the data path). */
    bool sized = warm && ss->gpages && codec->ctx_new_unit;
    ss->s = uz_calloc(n, sizeof *ss->s);
    if (!ss->s)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct uz_stream *s = &ss->s[i];
        /* page and out, 4096-aligned (O_DIRECT I/O) */
        s->mem = uz_malloc_aligned(4096, 4096 + UZ_CODEC_PAGE_BOUND);
        s->ctx = !s->mem ? NULL
               : sized ? codec->ctx_new_unit(level, (size_t)ss->gpages * 4096u)
               : codec->ctx_new(level);
        if (!s->ctx) {
            uz_free(s->mem);
            ss->n = i;
            uz_streams_fini(ss);
            return -ENOMEM;
        }
        s->page = s->mem;
        s->out = s->page + 4096;
        pthread_mutex_init(&s->lock, NULL);
        ss->n = i + 1;
        if (ss->gpages) {
            size_t glen = (size_t)ss->gpages * 4096u;
            s->gcap = UZ_GROUP_BOUND(ss->gpages);
            s->gmem = uz_calloc(1, glen + s->gcap);
            if (!s->gmem) {
                uz_streams_fini(ss);
                return -ENOMEM;
            }
            s->gbuf = s->gmem;
            s->gout = s->gbuf + glen;
            /* a failed warm-up only means the codec grows later */
            if (warm && !sized)
                (void)codec->compress(s->ctx, s->gbuf, glen, s->gout, s->gcap);
        }
    }
    /* Everything the streams hold, codec contexts included, was allocated
     * through uz_malloc: the heap counter's growth is their footprint
     * (exact unless another thread allocates at the same moment). */
    ss->bytes = uz_heap_bytes() - heap0;
    return 0;
}

void uz_streams_fini(struct uz_streams *ss)
{
    for (unsigned i = 0; i < ss->n; i++) {
        ss->codec->ctx_free(ss->s[i].ctx);
        uz_free(ss->s[i].mem);
        uz_free(ss->s[i].gmem);
        pthread_mutex_destroy(&ss->s[i].lock);
    }
    uz_free(ss->s);
    ss->s = NULL;
    ss->n = 0;
}

struct uz_stream *uz_stream_get(struct uz_streams *ss)
{
    int cpu = sched_getcpu();
    unsigned first = cpu > 0 ? (unsigned)cpu % ss->n : 0;
    for (unsigned k = 0; k < ss->n; k++) {
        struct uz_stream *s = &ss->s[(first + k) % ss->n];
        if (pthread_mutex_trylock(&s->lock) == 0)
            return s;
    }
    pthread_mutex_lock(&ss->s[first].lock);
    return &ss->s[first];
}

void uz_stream_put(struct uz_stream *s)
{
    pthread_mutex_unlock(&s->lock);
}
