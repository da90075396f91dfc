/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse.c - the mount's file system: a uzram device as DIR/disk plus one
 * file per zram attribute, and in a pool mount one such directory per
 * device (see fuse.h).  The worker threads and the mount are in
 * fuse_server.c, a pool's own nodes (zram-control, its attributes) in
 * fuse_pool.c; the `uzram mount`, `uzram pool` and `uzram umount`
 * commands that run them in tools/mount.c.
 *
 * Inodes are fixed numbers (fuse.h says which); nothing is created or
 * removed but a pool's devices, whose numbers come back with the device,
 * so lookup and forget keep no state.  In a pool every operation on a
 * node of a device holds the device (dev_get / dev_put: uzram_pool_get),
 * so that hot_remove is EBUSY under it; an open disk holds its device
 * open (uzram_open) until release, and its I/O goes to the device in the
 * file handle without another look-up.
 *
 * Who may do what.  Every node is owned by the server's user (the
 * mount's owner), and its mode is sysfs's: the disk 0600, an attribute
 * its table mode, clone 0400 as hot_add.  The mount is made with
 * default_permissions, so the kernel checks those modes; the server
 * checks them again on every open (uzfs_may_open), and on every use
 * of a file that changes state (a store, a read that creates) it checks
 * that the sender is root or the owner (uzfs_privileged): an
 * allow_other mount lets any user read the statistics, and only those
 * two change anything.  A store that fails is logged on stderr with the
 * library's message (uzfs_log; a refused sender is not): the writer
 * sees only its errno, as on sysfs.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <fuse_lowlevel.h>

#define UZ_FUSE_INTERNAL
#include "fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <linux/falloc.h>

static struct uzfs *req_fuse(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ------------------------------------------------------- permissions */

/* Invariant: a sender that is neither root nor the mount's owner (the
 * server's user, every node's st_uid) gets a node's "other" bits alone,
 * and no file that changes state has any (the tables' modes: stores are
 * 0200 or 0644, hot_add and clone 0400, the disk 0600). */
bool uzfs_privileged(fuse_req_t req)
{
    const struct fuse_ctx *c = fuse_req_ctx(req);
    return c->uid == 0 || c->uid == getuid();
}

bool uzfs_may_open(fuse_req_t req, unsigned mode, int acc)
{
    unsigned r = 0444, w = 0222;   /* kernfs: no reading without show, even for root */
    if (!uzfs_privileged(req))
        r = 0004, w = 0002;
    return !((acc != O_WRONLY && !(mode & r)) || (acc != O_RDONLY && !(mode & w)));
}

void uzfs_log(const struct uzfs *f, int id, const char *name, int err)
{
    const char *msg = uzram_last_error();
    char where[32] = "";
    if (id >= 0)
        snprintf(where, sizeof where, "zram%d/", id);
    fprintf(stderr, "uzram: %s/%s%s: %s%s%s\n", f->dir, where, name, strerror(-err),
            msg && *msg ? ": " : "", msg ? msg : "");
}

/* ------------------------------------------------------------ inodes */

/* Is ino one of a pool's own nodes (DIR, zram-control, its attributes)? */
static bool pool_node(const struct uzfs *f, fuse_ino_t ino)
{
    return f->pp && (ino >> UZ_INO_DEV_SHIFT) == 0;
}

/* The device whose node ino is, held in a pool (dev_put it); NULL if the
 * device is gone. */
static struct uzram *dev_get(struct uzfs *f, fuse_ino_t ino)
{
    if (!f->pp)
        return f->dev;
    uint64_t n = ino >> UZ_INO_DEV_SHIFT;
    return n >= 1 && n <= UZRAM_POOL_MAX_DEVICES ? uzram_pool_get(f->pp->pool, (int)(n - 1))
                                                 : NULL;
}

static void dev_put(const struct uzfs *f, struct uzram *dev)
{
    if (f->pp && dev)
        uzram_pool_put(dev);
}

/* The device an open disk holds (op_open put it there). */
static struct uzram *fh_dev(const struct fuse_file_info *fi)
{
    return (struct uzram *)(uintptr_t)fi->fh;
}

/* The attribute behind an inode, or NULL.  *mode gets its sysfs mode. */
static const char *ino_attr(const struct uzfs *f, fuse_ino_t ino, unsigned *mode)
{
    fuse_ino_t l = UZ_INO_LOCAL(ino);
    if (l < UZ_INO_ATTR0 || l - UZ_INO_ATTR0 >= f->nattrs)
        return NULL;
    return uzram_attr_name((unsigned)(l - UZ_INO_ATTR0), mode);
}

static bool ino_valid(const struct uzfs *f, fuse_ino_t ino)
{
    unsigned mode;
    fuse_ino_t l = UZ_INO_LOCAL(ino);
    return l == UZ_INO_ROOT || (l == UZ_INO_DISK && f->o.expose_disk) ||
           (l == UZ_INO_CLONE && f->pp) || ino_attr(f, ino, &mode) != NULL;
}

/* Fill *st for a valid inode of dev. */
static void fill_stat(struct uzfs *f, struct uzram *dev, fuse_ino_t ino, struct stat *st)
{
    fuse_ino_t l = UZ_INO_LOCAL(ino);
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_atime = st->st_mtime = st->st_ctime = f->born;
    st->st_blksize = UZRAM_PAGE_SIZE;
    if (l == UZ_INO_ROOT) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else if (l == UZ_INO_DISK) {
        struct uzram_stats s;
        uzram_get_stats(dev, &s);
        st->st_mode = S_IFREG | UZ_DISK_MODE;
        st->st_nlink = 1;
        st->st_size = (off_t)uzram_disksize(dev);
        st->st_blocks = (blkcnt_t)(s.mem_used_total / 512);  /* du shows RAM used */
    } else {
        unsigned mode = UZ_CLONE_MODE;
        ino_attr(f, ino, &mode);
        st->st_mode = S_IFREG | mode;
        st->st_nlink = 1;
        st->st_size = UZ_ATTR_BUF;   /* as sysfs reports */
    }
}

/* DIR/.transport: the FUSE transport and its counters
 * (uzfs_transport_show), for `uzram stat`.  Not listed in DIR, as it
 * is no zram attribute; anyone may read it. */
static const char transport_name[] = ".transport";
#define UZ_TRANSPORT_MODE 0444

static void transport_stat(struct uzfs *f, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = UZ_INO_TRANSPORT;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_atime = st->st_mtime = st->st_ctime = f->born;
    st->st_blksize = UZRAM_PAGE_SIZE;
    st->st_mode = S_IFREG | UZ_TRANSPORT_MODE;
    st->st_nlink = 1;
    st->st_size = UZ_ATTR_BUF;
}

/* The disk's size changes through disksize and reset, and a pool's
 * device can go, so the kernel must not cache those attributes or
 * dentries: every open by path looks them up again. */
static double attr_timeout(const struct uzfs *f, fuse_ino_t ino)
{
    fuse_ino_t l = UZ_INO_LOCAL(ino);
    return l == UZ_INO_DISK || (f->pp && l == UZ_INO_ROOT) ? 0.0 : 1.0;
}

/* ------------------------------------------------------- operations */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct uzfs *f = userdata;
    /* Splicing makes libfuse copy requests into fresh buffers. */
    conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_ASYNC_DIO)
        conn->want |= FUSE_CAP_ASYNC_DIO;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    conn->max_write = UZ_IO_MAX;
    conn->max_read = UZ_IO_MAX;
    /* Asynchronous direct I/O (a loop device with direct-io=on) is sent
     * as background requests: let enough of them be in flight to keep
     * every worker busy. */
    conn->max_background = 8 * f->nworkers;
    conn->congestion_threshold = 6 * f->nworkers;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct uzfs *f = req_fuse(req);
    if (parent == UZ_INO_ROOT && strcmp(name, transport_name) == 0) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.ino = UZ_INO_TRANSPORT;
        transport_stat(f, &e.attr);
        e.attr_timeout = e.entry_timeout = 1.0;
        fuse_reply_entry(req, &e);
        return;
    }
    if (pool_node(f, parent)) {
        uzfs_pool_lookup(req, f, parent, name);
        return;
    }
    struct uzram *dev = UZ_INO_LOCAL(parent) == UZ_INO_ROOT ? dev_get(f, parent) : NULL;
    if (!dev) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fuse_ino_t base = parent - UZ_INO_ROOT, l = 0;
    if (f->o.expose_disk && strcmp(name, "disk") == 0) {
        l = UZ_INO_DISK;
    } else if (f->pp && strcmp(name, "clone") == 0) {
        l = UZ_INO_CLONE;
    } else {
        unsigned mode;
        for (unsigned i = 0; i < f->nattrs; i++)
            if (strcmp(uzram_attr_name(i, &mode), name) == 0)
                l = UZ_INO_ATTR0 + i;
    }
    if (l == 0) {
        dev_put(f, dev);
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = base + l;
    fill_stat(f, dev, e.ino, &e.attr);
    dev_put(f, dev);
    e.attr_timeout = attr_timeout(f, e.ino);
    e.entry_timeout = attr_timeout(f, e.ino);
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    if (ino == UZ_INO_TRANSPORT) {
        struct stat st;
        transport_stat(f, &st);
        fuse_reply_attr(req, &st, 1.0);
        return;
    }
    if (pool_node(f, ino)) {
        uzfs_pool_getattr(req, f, ino);
        return;
    }
    struct uzram *dev = ino_valid(f, ino) ? dev_get(f, ino) : NULL;
    if (!dev) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat st;
    fill_stat(f, dev, ino, &st);
    dev_put(f, dev);
    fuse_reply_attr(req, &st, attr_timeout(f, ino));
}

/* Modes, owners and times are fixed; truncating an attribute file (what
 * `echo x > file` asks first) does nothing, as on sysfs; the disk's size
 * changes only through disksize. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    if (ino == UZ_INO_TRANSPORT) {
        op_getattr(req, ino, fi);
        return;
    }
    if (pool_node(f, ino)) {
        uzfs_pool_getattr(req, f, ino);
        return;
    }
    struct uzram *dev = ino_valid(f, ino) ? dev_get(f, ino) : NULL;
    if (!dev) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) && UZ_INO_LOCAL(ino) == UZ_INO_DISK &&
        (uint64_t)attr->st_size != uzram_disksize(dev)) {
        dev_put(f, dev);
        fuse_reply_err(req, EPERM);
        return;
    }
    struct stat st;
    fill_stat(f, dev, ino, &st);
    dev_put(f, dev);
    fuse_reply_attr(req, &st, attr_timeout(f, ino));
}

static void disk_close(struct uzfs *f, struct uzram *dev)
{
    if (f->pp)
        atomic_fetch_sub(&f->pp->opens[uzram_device_id(dev)], 1);
    uzram_close(dev);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    if (ino == UZ_INO_TRANSPORT) {
        if (!uzfs_may_open(req, UZ_TRANSPORT_MODE, fi->flags & O_ACCMODE)) {
            fuse_reply_err(req, EACCES);
            return;
        }
        fi->direct_io = 1;
        fi->keep_cache = 0;
        fuse_reply_open(req, fi);
        return;
    }
    if (pool_node(f, ino)) {
        uzfs_pool_open(req, f, ino, fi);
        return;
    }
    int acc = fi->flags & O_ACCMODE;
    fuse_ino_t l = UZ_INO_LOCAL(ino);
    unsigned mode = UZ_CLONE_MODE;
    struct uzram *dev = dev_get(f, ino);
    if (!dev) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (l == UZ_INO_DISK && f->o.expose_disk) {
        if (!uzfs_may_open(req, UZ_DISK_MODE, acc)) {
            dev_put(f, dev);
            fuse_reply_err(req, EACCES);
            return;
        }
        fi->direct_io = 1;
        fi->keep_cache = 0;
        fi->fh = (uintptr_t)dev;
        /* zram's open-device rule is the library's: while DIR/disk is
         * open (a loop device on it), reset and disksize are EBUSY, and
         * in a pool hot_remove too */
        uzram_open(dev);
        if (f->pp)
            atomic_fetch_add(&f->pp->opens[uzram_device_id(dev)], 1);
        dev_put(f, dev);
        if (fuse_reply_open(req, fi) != 0)
            disk_close(f, dev);   /* the opener is gone */
        return;
    }
    dev_put(f, dev);
    if (!(l == UZ_INO_CLONE && f->pp) && ino_attr(f, ino, &mode) == NULL) {
        fuse_reply_err(req, l == UZ_INO_ROOT ? EISDIR : ENOENT);
        return;
    }
    if (!uzfs_may_open(req, mode, acc)) {
        fuse_reply_err(req, EACCES);
        return;
    }
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    if (!pool_node(f, ino) && UZ_INO_LOCAL(ino) == UZ_INO_DISK)
        disk_close(f, fh_dev(fi));
    fuse_reply_err(req, 0);
}

/* The flush every close sends: nothing is volatile, nothing to do (and
 * not a block-layer flush, which the library would count in "stat"). */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fuse_reply_err(req, 0);
}

/* fsync, not flush (which every close sends), is the block layer's flush:
 * what a loop device sends for REQ_OP_FLUSH, counted in "stat". */
static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    bool disk = !pool_node(f, ino) && UZ_INO_LOCAL(ino) == UZ_INO_DISK;
    int err = disk ? uzram_flush(fh_dev(fi)) : 0;
    fuse_reply_err(req, -err);
}

/* Reads of the disk are copied into this worker's pool buffer and sent
 * from there: nothing is allocated. */
static void read_disk(fuse_req_t req, struct uzram *dev, size_t size, off_t off)
{
    uint64_t disksize = uzram_disksize(dev);
    struct uzfs_worker *w = uzfs_cur_worker;
    if (off < 0 || !w) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if ((uint64_t)off >= disksize) {
        fuse_reply_buf(req, NULL, 0);      /* end of file */
        return;
    }
    size_t len = size;
    if (len > disksize - (uint64_t)off)
        len = (size_t)(disksize - (uint64_t)off);
    if (len > UZ_IO_MAX)
        len = UZ_IO_MAX;                   /* max_read keeps requests below this */
    int err = uzram_read(dev, w->rbuf, len, (uint64_t)off);
    if (err < 0)
        fuse_reply_err(req, -err);
    else
        fuse_reply_buf(req, w->rbuf, len);
}

/* An attribute is shown afresh on every read (direct_io), like sysfs. */
static void read_attr(fuse_req_t req, struct uzram *dev, const char *name, size_t size, off_t off)
{
    char buf[UZ_ATTR_BUF];
    int n = uzram_attr_show(dev, name, buf, sizeof buf);
    if (n < 0) {
        fuse_reply_err(req, -n);
        return;
    }
    if (off < 0 || off >= n) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t len = (size_t)(n - off);
    fuse_reply_buf(req, buf + off, len < size ? len : size);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    fuse_ino_t l = UZ_INO_LOCAL(ino);
    unsigned mode;
    const char *name;
    if (ino == UZ_INO_TRANSPORT) {
        char buf[UZ_ATTR_BUF];
        int n = uzfs_transport_show(f, buf, sizeof buf);
        size_t len = off >= 0 && off < n ? (size_t)(n - off) : 0;
        fuse_reply_buf(req, buf + (len ? off : 0), len < size ? len : size);
        return;
    }
    if (pool_node(f, ino)) {
        uzfs_pool_read(req, f, ino, size, off);
        return;
    }
    if (l == UZ_INO_DISK) {
        read_disk(req, fh_dev(fi), size, off);
        return;
    }
    struct uzram *dev = dev_get(f, ino);
    if (!dev)
        fuse_reply_err(req, ENOENT);
    else if (l == UZ_INO_CLONE && f->pp)
        uzfs_pool_clone_read(req, f, dev, off);
    else if ((name = ino_attr(f, ino, &mode)) != NULL)
        read_attr(req, dev, name, size, off);
    else
        fuse_reply_err(req, EISDIR);
    dev_put(f, dev);
}

/* Writes are stored from libfuse's receive buffer.  Like a block device,
 * the disk cannot grow: a write that starts at its end fails with ENOSPC
 * and one that crosses it is cut short. */
static void write_disk(fuse_req_t req, struct uzram *dev, const char *buf, size_t size, off_t off)
{
    uint64_t disksize = uzram_disksize(dev);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (size == 0) {
        fuse_reply_write(req, 0);
        return;
    }
    if ((uint64_t)off >= disksize) {
        fuse_reply_err(req, ENOSPC);
        return;
    }
    size_t len = size;
    if (len > disksize - (uint64_t)off)
        len = (size_t)(disksize - (uint64_t)off);
    int err = uzram_write(dev, buf, len, (uint64_t)off);
    if (err < 0)
        fuse_reply_err(req, -err);
    else
        fuse_reply_write(req, len);
}

/* Every write(2) to an attribute is one store, whatever its offset (as
 * kernfs does); the store's error is the writer's errno. */
static void write_attr(fuse_req_t req, struct uzfs *f, struct uzram *dev, const char *name,
                       const char *buf, size_t size)
{
    if (size >= UZ_ATTR_BUF)
        size = UZ_ATTR_BUF - 1;            /* sysfs hands store at most a page */
    if (!uzfs_privileged(req)) {
        fuse_reply_err(req, EACCES);      /* (not logged: anyone may try) */
        return;
    }
    int err = uzram_attr_store(dev, name, buf, size);
    if (err < 0) {
        uzfs_log(f, f->pp ? uzram_device_id(dev) : -1, name, err);
        fuse_reply_err(req, -err);
    } else {
        fuse_reply_write(req, size);
    }
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    fuse_ino_t l = UZ_INO_LOCAL(ino);
    unsigned mode;
    const char *name;
    if (pool_node(f, ino)) {
        uzfs_pool_write(req, f, ino, buf, size);
        return;
    }
    if (l == UZ_INO_DISK) {
        write_disk(req, fh_dev(fi), buf, size, off);
        return;
    }
    struct uzram *dev = dev_get(f, ino);
    if (!dev)
        fuse_reply_err(req, ENOENT);
    else if ((name = ino_attr(f, ino, &mode)) != NULL)
        write_attr(req, f, dev, name, buf, size);
    else
        fuse_reply_err(req, EISDIR);
    dev_put(f, dev);
}

/* fallocate on the disk: PUNCH_HOLE|KEEP_SIZE is discard, ZERO_RANGE is
 * write-zeroes (what a loop device sends for its discard and write-zeroes
 * requests), plain allocation succeeds inside the disk.  Ranges are cut
 * at the disk's end; nothing can grow it. */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                         struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    struct uzram *dev = fh_dev(fi);
    if (pool_node(f, ino) || UZ_INO_LOCAL(ino) != UZ_INO_DISK) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
    }
    if (off < 0 || length <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    uint64_t disksize = uzram_disksize(dev);
    uint64_t start = (uint64_t)off;
    uint64_t end = start + (uint64_t)length;
    bool keep = (mode & FALLOC_FL_KEEP_SIZE) != 0;
    int op = mode & ~FALLOC_FL_KEEP_SIZE;
    if (end < start) {
        fuse_reply_err(req, EFBIG);
        return;
    }
    if (op != 0 && op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
    }
    if (op == FALLOC_FL_PUNCH_HOLE && !keep) {
        fuse_reply_err(req, EINVAL);       /* as the kernel requires */
        return;
    }
    if (end > disksize && !keep) {
        fuse_reply_err(req, ENOSPC);
        return;
    }
    if (end > disksize)
        end = disksize;
    int err = 0;
    if (start < end && op == FALLOC_FL_PUNCH_HOLE)
        err = uzram_discard(dev, (size_t)(end - start), start);
    else if (start < end && op == FALLOC_FL_ZERO_RANGE)
        err = uzram_write_zeroes(dev, (size_t)(end - start), start);
    fuse_reply_err(req, -err);
}

/* The listing: ".", "..", "disk", the attributes, and in a pool
 * "clone"; the offset of an entry is its index + 1. */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct uzfs *f = req_fuse(req);
    if (pool_node(f, ino)) {
        uzfs_pool_readdir(req, f, ino, size, off);
        return;
    }
    struct uzram *dev = UZ_INO_LOCAL(ino) == UZ_INO_ROOT ? dev_get(f, ino) : NULL;
    if (!dev) {
        fuse_reply_err(req, UZ_INO_LOCAL(ino) == UZ_INO_ROOT ? ENOENT : ENOTDIR);
        return;
    }
    dev_put(f, dev);
    fuse_ino_t base = ino - UZ_INO_ROOT;
    char buf[4096];
    size_t cap = size < sizeof buf ? size : sizeof buf;
    size_t pos = 0;
    unsigned n = 3 + f->nattrs + (f->pp ? 1 : 0);
    for (unsigned i = off < 0 ? 0 : (unsigned)off; i < n; i++) {
        struct stat st;
        memset(&st, 0, sizeof st);
        const char *name;
        unsigned mode;
        st.st_mode = S_IFREG;
        if (i < 2) {
            name = i == 0 ? "." : "..";
            st.st_ino = i == 0 ? ino : UZ_INO_ROOT;
            st.st_mode = S_IFDIR;
        } else if (i == 2) {
            if (!f->o.expose_disk)
                continue;
            name = "disk";
            st.st_ino = base + UZ_INO_DISK;
        } else if (i - 3 < f->nattrs) {
            name = uzram_attr_name(i - 3, &mode);
            st.st_ino = base + UZ_INO_ATTR0 + (i - 3);
        } else {
            name = "clone";
            st.st_ino = base + UZ_INO_CLONE;
        }
        size_t need = fuse_add_direntry(req, buf + pos, cap - pos, name, &st, (off_t)i + 1);
        if (need > cap - pos)
            break;
        pos += need;
    }
    fuse_reply_buf(req, buf, pos);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct uzfs *f = req_fuse(req);
    if (pool_node(f, ino)) {
        uzfs_pool_statfs(req, f);
        return;
    }
    struct uzram *dev = dev_get(f, ino);
    if (!dev) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct uzram_stats s;
    uzram_get_stats(dev, &s);
    struct statvfs sv;
    memset(&sv, 0, sizeof sv);
    uint64_t blocks = uzram_disksize(dev) / UZRAM_PAGE_SIZE;
    dev_put(f, dev);
    uint64_t used = s.orig_data_size / UZRAM_PAGE_SIZE;
    sv.f_bsize = sv.f_frsize = UZRAM_PAGE_SIZE;
    sv.f_blocks = blocks;
    sv.f_bfree = sv.f_bavail = used < blocks ? blocks - used : 0;
    sv.f_files = 2 + f->nattrs;
    sv.f_namemax = 255;
    fuse_reply_statfs(req, &sv);
}

/* Nothing can be created or removed here: sysfs says EACCES / EPERM. */
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    fuse_reply_err(req, EACCES);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fuse_reply_err(req, EACCES);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    fuse_reply_err(req, EACCES);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM);
}

const struct fuse_lowlevel_ops uzfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .open = op_open,
    .release = op_release,
    .flush = op_flush,
    .fsync = op_fsync,
    .read = op_read,
    .write = op_write,
    .fallocate = op_fallocate,
    .readdir = op_readdir,
    .statfs = op_statfs,
    .create = op_create,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
};
