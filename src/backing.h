/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backing.h - the backing file or block device of a device (see backing.c).
 */
#ifndef UZRAM_BACKING_H
#define UZRAM_BACKING_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparsebits.h"

struct uz_backing {
    int fd;
    bool direct;                 /* opened with O_DIRECT */
    uint32_t io_align;           /* I/O granularity in bytes (O_DIRECT: dio alignment) */
    uint64_t nblocks;            /* 4 KiB blocks in the file */
    struct uz_sparsebits used;   /* blocks holding a page */
    _Atomic uint64_t reads, writes, failed;  /* 4 KiB units; I/O errors */
    char path[PATH_MAX];
};

/* Open path (a regular file or a block device) as a backing device: with
 * O_DIRECT when the file system allows it, else buffered.  Its size must be
 * at least one block.  0, or -errno with a message through uz_error(). */
int uz_backing_open(struct uz_backing **out, const char *path);
void uz_backing_close(struct uz_backing *b);

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
 * buffers are).  0, or -EIO / -ENOSPC / -errno with a message; errors are
 * counted in b->failed. */
int uz_backing_write(struct uz_backing *b, uint64_t blk, const void *buf, size_t len);
int uz_backing_read(struct uz_backing *b, uint64_t blk, void *buf, size_t len);

/* Test hook: when set, called before every backing I/O; a negative return
 * is taken as that I/O's result (-EIO, -ENOSPC ...) and nothing is
 * transferred.  NULL in production.  Not thread-safe to change while I/O
 * runs. */
extern int (*uz_backing_fault_hook)(bool write, uint64_t blk);

#endif
