/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backing.c - the backing file or block device: where written-back and
 * forwarded pages live, one 4 KiB block per page.
 *
 * Blocks are handed out by a two-level sparse bitmap (sparsebits.c):
 * first free block first, so the file fills from the front and a sparse
 * file stays compact; a block is freed when its page is overwritten,
 * discarded or reset.  Block 0 is used like any other (a slot's handle
 * says which block; nothing is kept in the file besides page data).
 *
 * I/O is pread/pwrite at block * 4096.  The file is opened with O_DIRECT
 * when the file system takes it (the page cache would otherwise keep a
 * second copy of what was just moved out of RAM); then transfers are
 * rounded up to the direct-I/O alignment (statx's dio_offset_align, else
 * 4096), and buffers must be aligned: callers pass the streams' buffers,
 * which are page-aligned, so nothing is allocated on the I/O path.
 * Without O_DIRECT a compressed object is transferred at its exact size.
 *
 * Errors are returned, never hidden: a short transfer is -EIO, ENOSPC
 * from a sparse file on a full file system comes back as -ENOSPC; the
 * caller keeps the page in RAM (writeback) or fails the read (counted in
 * failed_reads).  uz_backing_fault_hook lets tests fail any I/O.
 */
#define _GNU_SOURCE
#include "backing.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK 4096u

int (*uz_backing_fault_hook)(bool write, uint64_t blk);

/* The direct-I/O alignment of fd, if the kernel tells it (statx, Linux
 * 6.1+), else 4096 (always enough). */
static uint32_t dio_align(int fd)
{
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) &&
        sx.stx_dio_offset_align && sx.stx_dio_offset_align <= BLK &&
        sx.stx_dio_mem_align <= BLK && BLK % sx.stx_dio_offset_align == 0)
        return sx.stx_dio_offset_align;
#endif
    (void)fd;
    return BLK;
}

int uz_backing_open(struct uz_backing **out, const char *path)
{
    if (strlen(path) >= PATH_MAX)
        return uz_error(-ENAMETOOLONG, "backing_dev: path too long");
    int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
    bool direct = fd >= 0;
    if (fd < 0 && errno == EINVAL)   /* the file system refuses O_DIRECT */
        fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return uz_error(-errno, "backing_dev: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    uint64_t bytes = 0;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return uz_error(-e, "backing_dev: %s: %s", path, strerror(e));
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
            bytes = 0;
    } else if (S_ISREG(st.st_mode)) {
        bytes = (uint64_t)st.st_size;
    } else {
        close(fd);
        return uz_error(-ENOTBLK, "backing_dev: '%s' is neither a file nor a block device", path);
    }
    if (bytes < BLK) {
        close(fd);
        return uz_error(-EINVAL, "backing_dev: '%s' is smaller than one 4 KiB block "
                        "(make it the size you want, e.g. truncate -s 1G)", path);
    }
    struct uz_backing *b = uz_calloc(1, sizeof *b);
    if (!b || uz_sb_init(&b->used, bytes / BLK) < 0) {
        uz_free(b);
        close(fd);
        return uz_error(-ENOMEM, "backing_dev: out of memory");
    }
    b->fd = fd;
    b->direct = direct;
    b->io_align = direct ? dio_align(fd) : 1;
    b->nblocks = bytes / BLK;
    strcpy(b->path, path);
    *out = b;
    return 0;
}

void uz_backing_close(struct uz_backing *b)
{
    if (!b)
        return;
    close(b->fd);
    uz_sb_fini(&b->used);
    uz_free(b);
}

int uz_backing_alloc(struct uz_backing *b, uint64_t *blk)
{
    int err = uz_sb_alloc(&b->used, blk);
    if (err == -ENOSPC)
        return uz_error(err, "backing_dev: all %llu blocks are in use",
                        (unsigned long long)b->nblocks);
    if (err < 0)
        return uz_error(err, "backing_dev: no memory for the block bitmap");
    return 0;
}

void uz_backing_free(struct uz_backing *b, uint64_t blk)
{
    uz_sb_clear(&b->used, blk);
}

static int io(struct uz_backing *b, bool write, uint64_t blk, void *buf, size_t len)
{
    size_t n = uz_backing_iolen(b, len);
    int err = uz_backing_fault_hook ? uz_backing_fault_hook(write, blk) : 0;
    if (err == 0) {
        off_t off = (off_t)(blk * BLK);
        ssize_t r = write ? pwrite(b->fd, buf, n, off) : pread(b->fd, buf, n, off);
        if (r < 0)
            err = -errno;
        else if ((size_t)r != n)
            err = write ? -ENOSPC : -EIO;   /* a short write: the file system is full */
    }
    if (err < 0) {
        atomic_fetch_add_explicit(&b->failed, 1, memory_order_relaxed);
        return uz_error(err, "backing_dev: %s of block %llu failed: %s",
                        write ? "write" : "read", (unsigned long long)blk, strerror(-err));
    }
    atomic_fetch_add_explicit(write ? &b->writes : &b->reads, 1, memory_order_relaxed);
    return 0;
}

int uz_backing_write(struct uz_backing *b, uint64_t blk, const void *buf, size_t len)
{
    return io(b, true, blk, (void *)buf, len);
}

int uz_backing_read(struct uz_backing *b, uint64_t blk, void *buf, size_t len)
{
    return io(b, false, blk, buf, len);
}
