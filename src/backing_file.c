/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backing_file.c - the backing device as a local regular file or block
 * device (the interface is backing.h; the common part backing.c).
 *
 * I/O is pread/pwrite at block * 4096, one transfer after another: a
 * local file gains nothing from having several in flight through one
 * thread, so batch is 1.  The file is opened with O_DIRECT when the file
 * system takes it (the page cache would otherwise keep a second copy of
 * what was just moved out of RAM); then transfers are rounded up to the
 * direct-I/O alignment (statx's dio_offset_align, else 4096), and buffers
 * must be aligned: callers pass the streams' buffers, which are
 * page-aligned.  Without O_DIRECT a compressed object is transferred at
 * its exact size.  A short write is -ENOSPC (a sparse file on a full file
 * system), a short read -EIO.
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

struct file_backing {
    int fd;
};

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

static void file_rw(struct uz_backing *b, bool write, struct uz_bio *v, unsigned n)
{
    struct file_backing *f = b->impl;
    for (unsigned i = 0; i < n; i++) {
        off_t off = (off_t)(v[i].blk * BLK);
        ssize_t r = write ? pwrite(f->fd, v[i].buf, v[i].n, off) : pread(f->fd, v[i].buf, v[i].n, off);
        if (r < 0)
            v[i].err = -errno;
        else if ((size_t)r != v[i].n)
            v[i].err = write ? -ENOSPC : -EIO;   /* a short write: the file system is full */
        else
            v[i].err = 0;
    }
}

static void file_close(struct uz_backing *b)
{
    struct file_backing *f = b->impl;
    close(f->fd);
    uz_free(f);
}

static const struct uz_backing_ops file_ops = {
    .kind = "file",
    .rw = file_rw,
    .close = file_close,
};

int uz_backing_file_open(struct uz_backing *b, const char *path)
{
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
    struct file_backing *f = uz_malloc(sizeof *f);
    if (!f) {
        close(fd);
        return uz_error(-ENOMEM, "backing_dev: out of memory");
    }
    f->fd = fd;
    b->ops = &file_ops;
    b->impl = f;
    b->io_align = direct ? dio_align(fd) : 1;
    b->batch = 1;
    b->nblocks = bytes / BLK;
    return 0;
}
