/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backing.h - the backing device of a device: one interface (backing.c),
 * two implementations, a local file or block device (backing_file.c) and
 * a remote NBD export (backing_nbd.c).
 *
 * What is common lives here and in backing.c: the block bitmap, the
 * counters, the fault hook, the name.  An implementation is a struct
 * uz_backing_ops: it moves bytes, and says how many at a time it wants.
 */
#ifndef UZRAM_BACKING_H
#define UZRAM_BACKING_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparsebits.h"

struct uz_backing;

/* One transfer of a batch: n bytes (already rounded to the I/O
 * granularity) at the start of block blk; err is the result (0 or
 * -errno), set by the implementation. */
struct uz_bio {
    uint64_t blk;
    void *buf;
    size_t n;
    bool whole;                  /* buf holds the whole 4 KiB block, zeros after
                                  * n: the implementation may send all of it
                                  * (to join it with the next block's transfer) */
    int err;
};

struct uz_backing_ops {
    const char *kind;            /* "file", "nbd" */
    /* Move v[0..n) (all writes or all reads), as many at once as the
     * implementation can; each v[i].err says how that one went.  Returns
     * nothing: the results are per transfer.  Never waits longer than the
     * implementation's stated timeout. */
    void (*rw)(struct uz_backing *b, bool write, struct uz_bio *v, unsigned n);
    /* Optional (NULL: start is rw, finish nothing): writes v[0..n) sent
     * by start and waited for by finish, so the caller prepares the next
     * batch meanwhile.  start returns 0 (*state for finish; NULL when it
     * is all done already) or -EAGAIN when it would have to wait for a
     * resource another batch in flight may hold and !may_wait (nothing
     * done, nothing held).  (NBD queues the batch for its sender
     * threads and never returns -EAGAIN.) */
    int (*start)(struct uz_backing *b, struct uz_bio *v, unsigned n, bool may_wait, void **state);
    void (*finish)(struct uz_backing *b, struct uz_bio *v, unsigned n, void *state);
    void (*close)(struct uz_backing *b);
};

struct uz_backing {
    const struct uz_backing_ops *ops;
    void *impl;                  /* the implementation's own state */
    uint32_t io_align;           /* I/O granularity in bytes (O_DIRECT: dio alignment) */
    uint32_t batch;              /* transfers worth having in flight at once (1: file) */
    uint64_t nblocks;            /* 4 KiB blocks on the device */
    struct uz_sparsebits used;   /* blocks holding a page */
    _Atomic uint64_t reads, writes, failed;  /* 4 KiB units; I/O errors */
    char path[PATH_MAX];         /* the name it was opened by (a path or an NBD URI) */
};

/* Open name as a backing device: an absolute path (a regular file or a
 * block device, backing_file.c) or an NBD URI (nbd://, nbds://,
 * nbd+unix://, nbds+unix://; backing_nbd.c).  Its size must be at least
 * one block.  0, or -errno with a message through uz_error(). */
int uz_backing_open(struct uz_backing **out, const char *name);
void uz_backing_close(struct uz_backing *b);

/* Does name start with an NBD URI scheme (so it is not a path)? */
bool uz_backing_is_uri(const char *name);
/* Is name a backing device's name that could be opened: an absolute
 * path, or an NBD URI of a form libnbd takes (a host for nbd:// and
 * nbds://, an absolute socket= for the +unix forms, no blanks)?  Checks
 * the text only, opens nothing.  0, or -EINVAL with a message. */
int uz_backing_check_name(const char *name);

/* The implementations' openers (backing_file.c, backing_nbd.c): fill b's
 * ops, impl, io_align, batch and nblocks; the rest is backing.c's.  0 or
 * -errno with a message. */
int uz_backing_file_open(struct uz_backing *b, const char *path);
int uz_backing_nbd_open(struct uz_backing *b, const char *uri);

/* A free block into *blk: 0, -ENOSPC (full), -ENOMEM. */
int uz_backing_alloc(struct uz_backing *b, uint64_t *blk);
void uz_backing_free(struct uz_backing *b, uint64_t blk);
static inline uint64_t uz_backing_count(struct uz_backing *b) { return uz_sb_count(&b->used); }

/* Bytes actually transferred for an object of len bytes (len rounded up to
 * the I/O granularity). */
static inline size_t uz_backing_iolen(const struct uz_backing *b, size_t len)
{
    return (len + b->io_align - 1) / b->io_align * b->io_align;
}

/* Write / read len bytes (<= 4096) at the start of block blk.  buf must be
 * 4096-byte aligned with uz_backing_iolen(len) bytes of room (the streams'
 * buffers are).  0, or -EIO / -ENOSPC / -ETIMEDOUT / -errno with a
 * message; errors are counted in b->failed.  A read that fails has put no
 * trustworthy byte in buf. */
int uz_backing_write(struct uz_backing *b, uint64_t blk, const void *buf, size_t len);
int uz_backing_read(struct uz_backing *b, uint64_t blk, void *buf, size_t len);

/* Write v[0..n) at once (n <= b->batch worth in flight; more is split),
 * v[i].n being the object's length (rounded here).  Each v[i].err is set;
 * returns the number that failed.  Each failure is counted and reported
 * as the single calls do. */
unsigned uz_backing_write_batch(struct uz_backing *b, struct uz_bio *v, unsigned n);

/* The same in two halves, so that a writer keeps a batch in flight while
 * it prepares the next (writeback.c): start sends v[0..n) (n <=
 * b->batch); finish waits for them, sets each v[i].err, counts and
 * reports as above and returns the number that failed.  Between the two,
 * v and its buffers belong to the backing device.  With may_wait false,
 * start may return -EAGAIN instead of waiting for a resource (an NBD
 * connection) that the caller's own batch in flight may hold: finish
 * that one first, then start again with may_wait.  0 otherwise. */
struct uz_inflight {
    struct uz_bio *v;
    unsigned n;
    bool done;                   /* all done at start (the file; a hook's failure) */
    void *state;
};
int uz_backing_write_start(struct uz_backing *b, struct uz_bio *v, unsigned n, bool may_wait,
                           struct uz_inflight *f);
unsigned uz_backing_write_finish(struct uz_backing *b, struct uz_inflight *f);

/* Test hook: when set, called before every backing I/O; a negative return
 * is taken as that I/O's result (-EIO, -ENOSPC ...) and nothing is
 * transferred.  NULL in production.  Not thread-safe to change while I/O
 * runs. */
extern int (*uz_backing_fault_hook)(bool write, uint64_t blk);

#endif
