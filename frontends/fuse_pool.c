/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse_pool.c - a pool mount's own nodes (see fuse.h): the nodes above
 * its devices, which fuse.c hands here.
 *
 *     DIR/zram-control/hot_add      read: a new device (uzram_pool_add), "N\n"
 *     DIR/zram-control/hot_remove   write N: remove zramN (EBUSY while in use)
 *     DIR/mem_limit, pool_stat ...  the pool's attributes (uzram_pool_attr_name)
 *     DIR/zramN/                    device N: fuse.c's, as a single mount's DIR
 *
 * As on sysfs, hot_add is mode 0400 and hot_remove 0200, and a device's
 * clone 0400 as hot_add: only root and the mount's owner may use them
 * (fuse.c, "Who may do what"), checked on open and again on the read or
 * write that acts.  A read that creates (hot_add, and a device's clone)
 * creates at offset 0 only, so the second read(2) a reader makes sees
 * the end of the file.  Every
 * device a node names is looked up afresh (uzram_pool_get), never
 * remembered: a device number can come back with another device.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <fuse_lowlevel.h>

#define UZ_FUSE_INTERNAL
#include "fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define CTL_NAME "zram-control"

/* The pool attribute behind ino, or NULL; *mode its mode. */
static const char *ino_pattr(fuse_ino_t ino, unsigned *mode)
{
    if (ino < UZ_INO_PATTR0 || ino - UZ_INO_PATTR0 >= UZ_INO_PATTR0)
        return NULL;
    return uzram_pool_attr_name((unsigned)(ino - UZ_INO_PATTR0), mode);
}

static unsigned npattrs(void)
{
    unsigned n = 0, mode;
    while (uzram_pool_attr_name(n, &mode))
        n++;
    return n;
}

/* "zramN" (N without leading zeros) -> N, or -1. */
static int device_number(const char *name)
{
    if (strncmp(name, "zram", 4) != 0 || name[4] < '0' || name[4] > '9' ||
        (name[4] == '0' && name[5]))
        return -1;
    char *end;
    long n = strtol(name + 4, &end, 10);
    return *end || n >= UZRAM_POOL_MAX_DEVICES ? -1 : (int)n;
}

static bool device_exists(struct uzfs *f, int id)
{
    struct uzram *dev = id >= 0 ? uzram_pool_get(f->pp->pool, id) : NULL;
    if (dev)
        uzram_pool_put(dev);
    return dev != NULL;
}

static fuse_ino_t device_dir_ino(int id)
{
    return ((fuse_ino_t)id + 1) << UZ_INO_DEV_SHIFT | UZ_INO_ROOT;
}

static void fill_common(struct uzfs *f, fuse_ino_t ino, mode_t mode, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = mode;
    st->st_nlink = S_ISDIR(mode) ? 2 : 1;
    st->st_size = S_ISDIR(mode) ? 0 : UZ_ATTR_BUF;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_atime = st->st_mtime = st->st_ctime = f->born;
    st->st_blksize = UZRAM_PAGE_SIZE;
}

bool uzfs_pool_fill_stat(struct uzfs *f, fuse_ino_t ino, struct stat *st)
{
    unsigned mode;
    if (ino == UZ_INO_ROOT || ino == UZ_INO_CTL)
        fill_common(f, ino, S_IFDIR | 0755, st);
    else if (ino == UZ_INO_HOT_ADD)
        fill_common(f, ino, S_IFREG | UZ_HOT_ADD_MODE, st);
    else if (ino == UZ_INO_HOT_REMOVE)
        fill_common(f, ino, S_IFREG | UZ_HOT_REMOVE_MODE, st);
    else if (ino_pattr(ino, &mode))
        fill_common(f, ino, S_IFREG | mode, st);
    else
        return false;
    return true;
}

void uzfs_pool_lookup(fuse_req_t req, struct uzfs *f, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.attr_timeout = e.entry_timeout = 1.0;
    unsigned mode;
    if (parent == UZ_INO_ROOT) {
        int id = device_number(name);
        if (strcmp(name, CTL_NAME) == 0) {
            e.ino = UZ_INO_CTL;
        } else if (id >= 0 && device_exists(f, id)) {
            /* a device can go: no caching (fuse.c's attr_timeout) */
            e.ino = device_dir_ino(id);
            e.attr_timeout = e.entry_timeout = 0.0;
            fill_common(f, e.ino, S_IFDIR | 0755, &e.attr);
            fuse_reply_entry(req, &e);
            return;
        } else {
            for (unsigned i = 0; uzram_pool_attr_name(i, &mode); i++)
                if (strcmp(uzram_pool_attr_name(i, &mode), name) == 0)
                    e.ino = UZ_INO_PATTR0 + i;
        }
    } else if (parent == UZ_INO_CTL) {
        if (strcmp(name, "hot_add") == 0)
            e.ino = UZ_INO_HOT_ADD;
        else if (strcmp(name, "hot_remove") == 0)
            e.ino = UZ_INO_HOT_REMOVE;
    }
    if (e.ino == 0 || !uzfs_pool_fill_stat(f, e.ino, &e.attr)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fuse_reply_entry(req, &e);
}

void uzfs_pool_getattr(fuse_req_t req, struct uzfs *f, fuse_ino_t ino)
{
    struct stat st;
    if (!uzfs_pool_fill_stat(f, ino, &st))
        fuse_reply_err(req, ENOENT);
    else
        fuse_reply_attr(req, &st, 1.0);
}

void uzfs_pool_open(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    int acc = fi->flags & O_ACCMODE;
    if (!uzfs_pool_fill_stat(f, ino, &st)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (!uzfs_may_open(req, st.st_mode & 0777, acc)) {
        fuse_reply_err(req, EACCES);
        return;
    }
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

/* Reply to a read at off of the text buf (n bytes). */
static void reply_text(fuse_req_t req, const char *buf, int n, size_t size, off_t off)
{
    if (off < 0 || off >= n) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t len = (size_t)(n - off);
    fuse_reply_buf(req, buf + off, len < size ? len : size);
}

/* A new device's number, for a read that made it. */
static void reply_device(fuse_req_t req, int err, struct uzram *dev, size_t size)
{
    if (err < 0) {
        fuse_reply_err(req, -err);
        return;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", uzram_device_id(dev));
    reply_text(req, buf, n, size, 0);
}

void uzfs_pool_read(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, size_t size, off_t off)
{
    unsigned mode;
    const char *name = ino_pattr(ino, &mode);
    if (ino == UZ_INO_HOT_ADD) {
        if (!uzfs_privileged(req)) {
            fuse_reply_err(req, EACCES);
            return;
        }
        if (off != 0) {
            fuse_reply_buf(req, NULL, 0);
            return;
        }
        struct uzram *dev = NULL;
        int err = uzram_pool_add(f->pp->pool, &dev);
        if (err < 0)
            uzfs_log(f, -1, "zram-control/hot_add", err);
        reply_device(req, err, dev, size);
    } else if (name) {
        char buf[UZ_ATTR_BUF];
        int n = uzram_pool_attr_show(f->pp->pool, name, buf, sizeof buf);
        if (n < 0)
            fuse_reply_err(req, -n);
        else
            reply_text(req, buf, n, size, off);
    } else {
        fuse_reply_err(req, ino == UZ_INO_ROOT || ino == UZ_INO_CTL ? EISDIR : EACCES);
    }
}

void uzfs_pool_clone_read(fuse_req_t req, struct uzfs *f, struct uzram *dev, off_t off)
{
    if (!uzfs_privileged(req)) {
        fuse_reply_err(req, EACCES);
        return;
    }
    if (off != 0) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    struct uzram *clone = NULL;
    int err = uzram_clone(dev, &clone);
    if (err < 0)
        uzfs_log(f, uzram_device_id(dev), "clone", err);
    reply_device(req, err, clone, 32);
}

/* hot_remove's number, as the kernel's kstrtoint: decimal digits and
 * one trailing newline at most; no blank, sign or other byte before or
 * after them (strtol would take " 1" and "+1").  -1 if it is not one. */
static int parse_id(const char *buf, size_t size)
{
    if (size > 0 && buf[size - 1] == '\n')
        size--;
    if (size == 0 || size > 10)
        return -1;
    long long n = 0;
    for (size_t i = 0; i < size; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        n = n * 10 + (buf[i] - '0');
    }
    return n > INT_MAX ? -1 : (int)n;
}

void uzfs_pool_write(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, const char *buf,
                     size_t size)
{
    unsigned mode;
    const char *name = ino_pattr(ino, &mode);
    int err;
    if (size >= UZ_ATTR_BUF)
        size = UZ_ATTR_BUF - 1;            /* sysfs hands store at most a page */
    if (!uzfs_privileged(req)) {
        fuse_reply_err(req, EACCES);       /* every store here changes the pool */
        return;
    }
    if (ino == UZ_INO_HOT_REMOVE) {
        int id = parse_id(buf, size);
        err = id < 0 ? -EINVAL : uzram_pool_remove(f->pp->pool, id);
        if (id < 0)
            fprintf(stderr, "uzram: %s/zram-control/hot_remove: %s: write a device number "
                    "(digits, one newline at most)\n", f->dir, strerror(EINVAL));
        else if (err < 0)
            uzfs_log(f, -1, "zram-control/hot_remove", err);
    } else if (name) {
        err = uzram_pool_attr_store(f->pp->pool, name, buf, size);
        if (err < 0)
            uzfs_log(f, -1, name, err);
    } else {
        err = ino == UZ_INO_ROOT || ino == UZ_INO_CTL ? -EISDIR : -EACCES;
    }
    if (err < 0)
        fuse_reply_err(req, -err);
    else
        fuse_reply_write(req, size);
}

/* One directory entry into buf at *pos; false when it is full. */
static bool add_entry(fuse_req_t req, char *buf, size_t cap, size_t *pos, const char *name,
                      fuse_ino_t ino, bool dir, off_t next)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = ino;
    st.st_mode = dir ? S_IFDIR : S_IFREG;
    size_t need = fuse_add_direntry(req, buf + *pos, cap - *pos, name, &st, next);
    if (need > cap - *pos)
        return false;
    *pos += need;
    return true;
}

/* DIR: ".", "..", zram-control, the pool's attributes (offsets: index +
 * 1), then the devices (offset: k + 1 + N, k the count before them).
 * zram-control: ".", "..", hot_add, hot_remove. */
void uzfs_pool_readdir(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, size_t size, off_t off)
{
    char buf[4096];
    size_t cap = size < sizeof buf ? size : sizeof buf, pos = 0;
    unsigned mode;
    if (ino == UZ_INO_CTL) {
        static const char *const names[] = {".", "..", "hot_add", "hot_remove"};
        static const fuse_ino_t inos[] = {UZ_INO_CTL, UZ_INO_ROOT, UZ_INO_HOT_ADD,
                                          UZ_INO_HOT_REMOVE};
        for (off_t i = off < 0 ? 0 : off; i < 4; i++)
            if (!add_entry(req, buf, cap, &pos, names[i], inos[i], i < 2, i + 1))
                break;
        fuse_reply_buf(req, buf, pos);
        return;
    }
    if (ino != UZ_INO_ROOT) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    off_t k = 3 + (off_t)npattrs();
    bool full = false;
    for (off_t i = off < 0 ? 0 : off; i < k && !full; i++) {
        if (i < 2)
            full = !add_entry(req, buf, cap, &pos, i ? ".." : ".", UZ_INO_ROOT, true, i + 1);
        else if (i == 2)
            full = !add_entry(req, buf, cap, &pos, CTL_NAME, UZ_INO_CTL, true, i + 1);
        else
            full = !add_entry(req, buf, cap, &pos, uzram_pool_attr_name((unsigned)(i - 3), &mode),
                              UZ_INO_PATTR0 + (fuse_ino_t)(i - 3), false, i + 1);
    }
    for (int id = uzram_pool_next(f->pp->pool, off > k ? (int)(off - k - 1) : -1);
         id >= 0 && !full; id = uzram_pool_next(f->pp->pool, id)) {
        char name[32];
        snprintf(name, sizeof name, "zram%d", id);
        full = !add_entry(req, buf, cap, &pos, name, device_dir_ino(id), true, k + 1 + id);
    }
    fuse_reply_buf(req, buf, pos);
}

void uzfs_pool_statfs(fuse_req_t req, struct uzfs *f)
{
    struct uzram_pool_stats s;
    uzram_pool_get_stats(f->pp->pool, &s);
    struct statvfs sv;
    memset(&sv, 0, sizeof sv);
    uint64_t blocks = s.disksize / UZRAM_PAGE_SIZE, used = s.orig_data_size / UZRAM_PAGE_SIZE;
    sv.f_bsize = sv.f_frsize = UZRAM_PAGE_SIZE;
    sv.f_blocks = blocks;
    sv.f_bfree = sv.f_bavail = used < blocks ? blocks - used : 0;
    sv.f_files = s.devices;
    sv.f_namemax = 255;
    fuse_reply_statfs(req, &sv);
}

void uzfs_pool_close_all(struct uzfs_pool *pp)
{
    for (int id = 0; id < UZRAM_POOL_MAX_DEVICES; id++) {
        unsigned n = atomic_exchange(&pp->opens[id], 0);
        struct uzram *dev = n ? uzram_pool_get(pp->pool, id) : NULL;
        if (!dev)
            continue;
        while (n--)
            uzram_close(dev);
        uzram_pool_put(dev);
    }
}

int uzfs_start_pool(struct uzram_pool *pool, const char *dir, const struct uzfs_opts *o,
                    struct uzfs **out)
{
    struct uzfs_pool *pp = calloc(1, sizeof *pp);
    *out = NULL;
    if (!pp)
        return -ENOMEM;
    pp->pool = pool;
    return uzfs_serve(NULL, pp, dir, o, out);
}
