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
 *
 * A dictionary (algorithm_params dict=PATH) is digested once per set of
 * streams (codec->dict_new: for zstd a CDict at the streams' level and a
 * DDict) and every context of the set refers to it: the tables are not
 * copied per stream.  It lives as long as the streams, that is until the
 * store's reset, and a dictionary can be set only while the store is not
 * initialised (attr.c): every page compressed with it is freed before it
 * can change.
 */
#define _GNU_SOURCE
#include "streams.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

int uz_streams_init(struct uz_streams *ss, const struct uz_codec *codec, int level, unsigned n,
                    uint32_t gpages, bool warm, const struct uz_dict_buf *dict)
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
    if (dict && dict->len) {
        if (!codec->dict_new)
            return -EINVAL;
        ss->dict = codec->dict_new(dict->buf, dict->len, level);
        if (!ss->dict)
            return -ENOMEM;
        ss->dict_id = dict->id;
    }
    ss->s = uz_calloc(n, sizeof *ss->s);
    if (!ss->s) {
        uz_streams_fini(ss);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        struct uz_stream *s = &ss->s[i];
        /* page and out, 4096-aligned (O_DIRECT I/O) */
        s->mem = uz_malloc_aligned(4096, 4096 + UZ_CODEC_PAGE_BOUND);
        s->ctx = !s->mem ? NULL
               : ss->dict ? codec->ctx_new_dict(level, warm ? (size_t)ss->gpages * 4096u : 0,
                                                ss->dict)
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
            if (warm && (!sized || ss->dict))
                (void)codec->compress(s->ctx, s->gbuf, glen, s->gout, s->gcap);
        }
    }
    /* Everything the streams hold, codec contexts included, was allocated
     * through uz_malloc: the heap counter's growth is their footprint
     * (exact unless another thread allocates at the same moment). */
    ss->bytes = uz_heap_bytes() - heap0;
    ss->group_warm = warm && ss->gpages;
    return 0;
}

int uz_streams_warm(struct uz_streams *ss)
{
    if (ss->group_warm || !ss->gpages)
        return 0;
    int64_t heap0 = (int64_t)uz_heap_bytes();
    int err = 0;
    for (unsigned i = 0; i < ss->n && err == 0; i++) {
        struct uz_stream *s = &ss->s[i];
        size_t glen = (size_t)ss->gpages * 4096u;
        /* a decoder at rest becomes a whole context again */
        void *whole = !ss->codec->ctx_new_decoder ? NULL
                    : ss->dict ? ss->codec->ctx_new_dict(ss->level, glen, ss->dict)
                    : ss->codec->ctx_new(ss->level);
        void *old = NULL;
        if (ss->codec->ctx_new_decoder && !whole) {
            err = -ENOMEM;
            break;
        }
        pthread_mutex_lock(&s->lock);
        if (whole) {
            old = s->ctx;
            s->ctx = whole;
        }
        /* the scratch is not in use under the lock; zeros compress fast
         * and size the workspace as any group does */
        memset(s->gbuf, 0, glen);
        if (ss->codec->compress(s->ctx, s->gbuf, glen, s->gout, s->gcap) == 0)
            err = -ENOMEM;
        pthread_mutex_unlock(&s->lock);
        if (old)
            ss->codec->ctx_free(old);
    }
    atomic_fetch_add(&ss->bytes, (uint64_t)((int64_t)uz_heap_bytes() - heap0));
    ss->group_warm = err == 0;
    return err;
}

void uz_streams_rest(struct uz_streams *ss)
{
    if (!ss->group_warm)
        return;
    int64_t heap0 = (int64_t)uz_heap_bytes();
    for (unsigned i = 0; i < ss->n; i++) {
        struct uz_stream *s = &ss->s[i];
        void *fresh = ss->codec->ctx_new_decoder ? ss->codec->ctx_new_decoder(ss->level, ss->dict)
                    : ss->dict ? ss->codec->ctx_new_dict(ss->level, 0, ss->dict)
                    : ss->codec->ctx_new(ss->level);
        if (!fresh)
            continue;
        pthread_mutex_lock(&s->lock);
        void *old = s->ctx;
        s->ctx = fresh;
        pthread_mutex_unlock(&s->lock);
        ss->codec->ctx_free(old);
    }
    atomic_fetch_add(&ss->bytes, (uint64_t)((int64_t)uz_heap_bytes() - heap0));
    ss->group_warm = false;
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
    if (ss->dict)
        ss->codec->dict_free(ss->dict);
    ss->dict = NULL;
    ss->dict_id = 0;
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

/* ----------------------------------------------------------- dictionaries */

int uz_dict_load(struct uz_dict_buf *d, const struct uz_codec *c, const char *path,
                 const char *what)
{
    if (!c->dict_check)
        return uz_error(-EINVAL, "%s: %s takes no dictionary (dict= is for zstd)", what, c->name);
    if (!path[0])
        return uz_error(-EINVAL, "%s: dict=: give the path of a dictionary file", what);
    if (strlen(path) >= sizeof d->path)
        return uz_error(-EINVAL, "%s: dict=%.40s...: path too long", what, path);
    /* O_NONBLOCK: a FIFO (or a device) must not hold the caller until a
     * writer comes; it is refused below, and a regular file reads the same */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return uz_error(-errno, "%s: dict=%s: cannot open: %s", what, path, strerror(errno));
    struct stat sb;
    const char *bad = NULL;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return uz_error(-e, "%s: dict=%s: cannot stat: %s", what, path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode))
        bad = "not a regular file";
    else if (sb.st_size == 0)
        bad = "an empty file";
    else if ((uint64_t)sb.st_size > UZ_DICT_MAX)
        bad = "larger than the 4 MiB a dictionary may be";
    if (bad) {
        close(fd);
        return uz_error(-EINVAL, "%s: dict=%s: %s", what, path, bad);
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = uz_malloc(len);
    if (!buf) {
        close(fd);
        return uz_error(-ENOMEM, "%s: dict=%s: no memory for %zu bytes", what, path, len);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            uz_free(buf);
            return uz_error(-e, "%s: dict=%s: cannot read: %s", what, path,
                            r < 0 ? strerror(e) : "shorter than its size");
        }
        got += (size_t)r;
    }
    close(fd);
    uint32_t id = 0;
    const char *why = "not a dictionary";
    if (c->dict_check(buf, len, &id, &why) < 0) {
        uz_free(buf);
        return uz_error(-EINVAL, "%s: dict=%s: %s", what, path, why);
    }
    uz_dict_clear(d);
    d->buf = buf;
    d->len = len;
    d->id = id;
    snprintf(d->path, sizeof d->path, "%s", path);
    return 0;
}

void uz_dict_clear(struct uz_dict_buf *d)
{
    uz_free(d->buf);
    memset(d, 0, sizeof *d);
}
