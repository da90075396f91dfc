/*
 * fuse.c - the mount: a uzram device as DIR/disk plus one file per zram
 * attribute (see fuse.h).  The `uzram mount` / `uzram umount` commands
 * that run it are in tools/mount.c.
 *
 * Inodes are fixed: 1 is DIR, 2 is DIR/disk, ATTR_INO0 + i is the i-th
 * attribute of uzram_attr_name().  Nothing is ever created or removed, so
 * lookup and forget keep no state.
 *
 * Threads.  uz_fuse_start() creates a fixed pool of workers; each one
 * loops on fuse_session_receive_buf() / fuse_session_process_buf() (what
 * fuse_session_loop_mt does, minus its habit of creating and destroying
 * threads on demand: a swap device's server must not need new memory for a
 * thread in the middle of reclaim).  Each worker owns one slot of a read
 * buffer pool allocated and touched before the mount serves anything;
 * handlers find it through a thread-local pointer set when the worker
 * starts.  Writes are stored straight from libfuse's receive buffer (one
 * per worker, allocated by libfuse on the worker's first receive; splice
 * is turned off so that libfuse never copies a request into a new buffer).
 *
 * Ending.  When DIR is unmounted the kernel fails every read of
 * /dev/fuse with ENODEV and the workers return; the last one out makes
 * uz_fuse_end_fd() readable.  uz_fuse_stop() unmounts lazily and waits
 * for that; if a user of DIR/disk keeps the connection alive for longer
 * than STOP_GRACE_MS (2 s), the workers are woken by a signal and leave, and
 * the connection dies with the descriptor.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <fuse_lowlevel.h>

#include "fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/falloc.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

extern char **environ;

#define ROOT_INO   FUSE_ROOT_ID
#define DISK_INO   2
#define ATTR_INO0  16

/* Largest read or write request the kernel sends (max_read/max_write),
 * and so the size of each worker's read buffer. */
#define IO_MAX         (128u * 1024)
/* Attribute values are at most a page, as in sysfs. */
#define ATTR_BUF       4096
#define MAX_THREADS    UZ_FUSE_MAX_THREADS
#define WORKER_STACK   (1u << 20)
/* How long uz_fuse_stop() lets users of the disk finish after the lazy
 * unmount before it stops the workers anyway. */
#define STOP_GRACE_MS  2000
/* Signal that interrupts a worker's read of /dev/fuse when stopping: a
 * realtime one that hosts (nbdkit) leave alone. */
#define WAKE_SIGNAL    (SIGRTMAX - 2)

struct worker {
    struct uz_fuse *f;
    pthread_t tid;
    char *rbuf;                 /* IO_MAX bytes from the pool */
    bool created;
    _Atomic bool done;
};

struct uz_fuse {
    struct uzram *dev;
    struct fuse_session *se;
    char *dir;                  /* absolute mount point */
    struct uz_fuse_opts o;
    unsigned nattrs;
    dev_t mnt_dev;              /* st_dev of DIR while mounted */
    time_t born;

    unsigned nworkers;
    struct worker workers[MAX_THREADS];
    char *pool;                 /* nworkers * IO_MAX, touched at start */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned live;              /* workers still running (under lock) */
    _Atomic bool stopping;      /* workers leave after their request */
    int end_pipe[2];

};

/* The worker running on this thread (NULL elsewhere); set before the
 * worker receives its first request. */
static __thread struct worker *cur_worker;

static struct uz_fuse *req_fuse(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ------------------------------------------------------------ inodes */

/* The attribute behind an inode, or NULL.  *mode gets its sysfs mode. */
static const char *ino_attr(const struct uz_fuse *f, fuse_ino_t ino, unsigned *mode)
{
    if (ino < ATTR_INO0 || ino - ATTR_INO0 >= f->nattrs)
        return NULL;
    return uzram_attr_name((unsigned)(ino - ATTR_INO0), mode);
}

static bool ino_valid(const struct uz_fuse *f, fuse_ino_t ino)
{
    unsigned mode;
    return ino == ROOT_INO || (ino == DISK_INO && f->o.expose_disk) ||
           ino_attr(f, ino, &mode) != NULL;
}

/* Fill *st for a valid inode. */
static void fill_stat(struct uz_fuse *f, fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_atime = st->st_mtime = st->st_ctime = f->born;
    st->st_blksize = UZRAM_PAGE_SIZE;
    if (ino == ROOT_INO) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else if (ino == DISK_INO) {
        struct uzram_stats s;
        uzram_get_stats(f->dev, &s);
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        st->st_size = (off_t)uzram_disksize(f->dev);
        st->st_blocks = (blkcnt_t)(s.mem_used_total / 512);  /* du shows RAM used */
    } else {
        unsigned mode = 0;
        ino_attr(f, ino, &mode);
        st->st_mode = S_IFREG | mode;
        st->st_nlink = 1;
        st->st_size = ATTR_BUF;      /* as sysfs reports */
    }
}

/* The disk's size changes through disksize and reset, so the kernel must
 * not cache its attributes or its dentry: every open by path looks it up
 * again and so sees the current size. */
static double attr_timeout(fuse_ino_t ino)
{
    return ino == DISK_INO ? 0.0 : 1.0;
}

/* ------------------------------------------------------- operations */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct uz_fuse *f = userdata;
    /* Splicing makes libfuse copy requests into fresh buffers. */
    conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_ASYNC_DIO)
        conn->want |= FUSE_CAP_ASYNC_DIO;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    conn->max_write = IO_MAX;
    conn->max_read = IO_MAX;
    /* Asynchronous direct I/O (a loop device with direct-io=on) is sent
     * as background requests: let enough of them be in flight to keep
     * every worker busy. */
    conn->max_background = 8 * f->nworkers;
    conn->congestion_threshold = 6 * f->nworkers;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct uz_fuse *f = req_fuse(req);
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    if (parent != ROOT_INO) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (f->o.expose_disk && strcmp(name, "disk") == 0) {
        e.ino = DISK_INO;
    } else {
        unsigned mode;
        for (unsigned i = 0; i < f->nattrs; i++)
            if (strcmp(uzram_attr_name(i, &mode), name) == 0)
                e.ino = ATTR_INO0 + i;
    }
    if (e.ino == 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fill_stat(f, e.ino, &e.attr);
    e.attr_timeout = attr_timeout(e.ino);
    e.entry_timeout = attr_timeout(e.ino);
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct uz_fuse *f = req_fuse(req);
    if (!ino_valid(f, ino)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat st;
    fill_stat(f, ino, &st);
    fuse_reply_attr(req, &st, attr_timeout(ino));
}

/* Modes, owners and times are fixed; truncating an attribute file (what
 * `echo x > file` asks first) does nothing, as on sysfs; the disk's size
 * changes only through disksize. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct uz_fuse *f = req_fuse(req);
    if (!ino_valid(f, ino)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) && ino == DISK_INO &&
        (uint64_t)attr->st_size != uzram_disksize(f->dev)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    struct stat st;
    fill_stat(f, ino, &st);
    fuse_reply_attr(req, &st, attr_timeout(ino));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct uz_fuse *f = req_fuse(req);
    int acc = fi->flags & O_ACCMODE;
    unsigned mode;
    if (ino == DISK_INO && f->o.expose_disk) {
        fi->direct_io = 1;
        fi->keep_cache = 0;
        /* zram's open-device rule is the library's: while DIR/disk is
         * open (a loop device on it), reset and disksize are EBUSY */
        uzram_open(f->dev);
        if (fuse_reply_open(req, fi) != 0)
            uzram_close(f->dev);   /* the opener is gone */
        return;
    }
    if (ino_attr(f, ino, &mode) == NULL) {
        fuse_reply_err(req, ino == ROOT_INO ? EISDIR : ENOENT);
        return;
    }
    /* kernfs refuses to open for reading a file without show, and for
     * writing one without store, even for root. */
    if ((acc != O_WRONLY && !(mode & 0444)) || (acc != O_RDONLY && !(mode & 0222))) {
        fuse_reply_err(req, EACCES);
        return;
    }
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct uz_fuse *f = req_fuse(req);
    if (ino == DISK_INO)
        uzram_close(f->dev);
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
    struct uz_fuse *f = req_fuse(req);
    int err = ino == DISK_INO ? uzram_flush(f->dev) : 0;
    fuse_reply_err(req, -err);
}

/* Reads of the disk are copied into this worker's pool buffer and sent
 * from there: nothing is allocated. */
static void read_disk(fuse_req_t req, struct uz_fuse *f, size_t size, off_t off)
{
    uint64_t disksize = uzram_disksize(f->dev);
    struct worker *w = cur_worker;
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
    if (len > IO_MAX)
        len = IO_MAX;                      /* max_read keeps requests below this */
    int err = uzram_read(f->dev, w->rbuf, len, (uint64_t)off);
    if (err < 0)
        fuse_reply_err(req, -err);
    else
        fuse_reply_buf(req, w->rbuf, len);
}

/* An attribute is shown afresh on every read (direct_io), like sysfs. */
static void read_attr(fuse_req_t req, struct uz_fuse *f, const char *name, size_t size, off_t off)
{
    char buf[ATTR_BUF];
    int n = uzram_attr_show(f->dev, name, buf, sizeof buf);
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
    struct uz_fuse *f = req_fuse(req);
    unsigned mode;
    const char *name;
    if (ino == DISK_INO)
        read_disk(req, f, size, off);
    else if ((name = ino_attr(f, ino, &mode)) != NULL)
        read_attr(req, f, name, size, off);
    else
        fuse_reply_err(req, EISDIR);
}

/* Writes are stored from libfuse's receive buffer.  Like a block device,
 * the disk cannot grow: a write that starts at its end fails with ENOSPC
 * and one that crosses it is cut short. */
static void write_disk(fuse_req_t req, struct uz_fuse *f, const char *buf, size_t size, off_t off)
{
    uint64_t disksize = uzram_disksize(f->dev);
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
    int err = uzram_write(f->dev, buf, len, (uint64_t)off);
    if (err < 0)
        fuse_reply_err(req, -err);
    else
        fuse_reply_write(req, len);
}

/* Every write(2) to an attribute is one store, whatever its offset (as
 * kernfs does); the store's error is the writer's errno. */
static void write_attr(fuse_req_t req, struct uz_fuse *f, const char *name, const char *buf,
                       size_t size)
{
    if (size >= ATTR_BUF)
        size = ATTR_BUF - 1;               /* sysfs hands store at most a page */
    int err = uzram_attr_store(f->dev, name, buf, size);
    if (err < 0)
        fuse_reply_err(req, -err);
    else
        fuse_reply_write(req, size);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct uz_fuse *f = req_fuse(req);
    unsigned mode;
    const char *name;
    if (ino == DISK_INO)
        write_disk(req, f, buf, size, off);
    else if ((name = ino_attr(f, ino, &mode)) != NULL)
        write_attr(req, f, name, buf, size);
    else
        fuse_reply_err(req, EISDIR);
}

/* fallocate on the disk: PUNCH_HOLE|KEEP_SIZE is discard, ZERO_RANGE is
 * write-zeroes (what a loop device sends for its discard and write-zeroes
 * requests), plain allocation succeeds inside the disk.  Ranges are cut
 * at the disk's end; nothing can grow it. */
static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                         struct fuse_file_info *fi)
{
    struct uz_fuse *f = req_fuse(req);
    if (ino != DISK_INO) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
    }
    if (off < 0 || length <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    uint64_t disksize = uzram_disksize(f->dev);
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
        err = uzram_discard(f->dev, (size_t)(end - start), start);
    else if (start < end && op == FALLOC_FL_ZERO_RANGE)
        err = uzram_write_zeroes(f->dev, (size_t)(end - start), start);
    fuse_reply_err(req, -err);
}

/* The listing: ".", "..", "disk", then the attributes; the offset of an
 * entry is its index + 1. */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct uz_fuse *f = req_fuse(req);
    if (ino != ROOT_INO) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    char buf[4096];
    size_t cap = size < sizeof buf ? size : sizeof buf;
    size_t pos = 0;
    unsigned n = 3 + f->nattrs;
    for (unsigned i = off < 0 ? 0 : (unsigned)off; i < n; i++) {
        struct stat st;
        memset(&st, 0, sizeof st);
        const char *name;
        unsigned mode;
        if (i == 0) {
            name = ".";
            st.st_ino = ROOT_INO;
            st.st_mode = S_IFDIR;
        } else if (i == 1) {
            name = "..";
            st.st_ino = ROOT_INO;
            st.st_mode = S_IFDIR;
        } else if (i == 2) {
            if (!f->o.expose_disk)
                continue;
            name = "disk";
            st.st_ino = DISK_INO;
            st.st_mode = S_IFREG;
        } else {
            name = uzram_attr_name(i - 3, &mode);
            st.st_ino = ATTR_INO0 + (i - 3);
            st.st_mode = S_IFREG;
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
    struct uz_fuse *f = req_fuse(req);
    struct uzram_stats s;
    uzram_get_stats(f->dev, &s);
    struct statvfs sv;
    memset(&sv, 0, sizeof sv);
    uint64_t blocks = uzram_disksize(f->dev) / UZRAM_PAGE_SIZE;
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

static const struct fuse_lowlevel_ops ops = {
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

/* ----------------------------------------------------------- server */

static void wake_handler(int sig)
{
    (void)sig;   /* only interrupts a blocked read(2) */
}

void uz_fuse_opts_init(struct uz_fuse_opts *o)
{
    memset(o, 0, sizeof *o);
    o->expose_disk = true;
    o->fsname = "uzram";
    o->subtype = "uzram";
    o->threads = 8;
    o->allow_other = geteuid() == 0;
}


static void worker_exit(struct worker *w)
{
    struct uz_fuse *f = w->f;
    pthread_mutex_lock(&f->lock);
    atomic_store(&w->done, true);
    if (--f->live == 0) {
        char c = 'x';
        ssize_t r = write(f->end_pipe[1], &c, 1);
        (void)r;
    }
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct uz_fuse *f = w->f;
    cur_worker = w;

    /* Only the wake signal may interrupt this thread. */
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, WAKE_SIGNAL);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    /* Memory this thread asks for must not be reclaimed by I/O to the
     * device it serves (needs CAP_SYS_RESOURCE; harmless without). */
    prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);

    struct fuse_buf fbuf;
    memset(&fbuf, 0, sizeof fbuf);
    while (!atomic_load(&f->stopping) && !fuse_session_exited(f->se)) {
        int res = fuse_session_receive_buf(f->se, &fbuf);
        if (res == -EINTR || res == -EAGAIN)
            continue;
        if (res <= 0)
            break;      /* -ENODEV: unmounted or aborted */
        fuse_session_process_buf(f->se, &fbuf);
    }
    free(fbuf.mem);
    worker_exit(w);
    return NULL;
}

/* Unmount DIR lazily (it never fails for being busy).  Root does it
 * directly; others through the setuid fusermount3. */
static void lazy_unmount(const char *dir)
{
    if (geteuid() == 0) {
        umount2(dir, MNT_DETACH);
        return;
    }
    char *argv[] = {"fusermount3", "-u", "-z", "-q", (char *)dir, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) == 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
}

/* Is DIR still the mount this server made (possibly a dead one)? */
static bool still_mounted(const struct uz_fuse *f)
{
    struct stat st;
    if (stat(f->dir, &st) != 0)
        return errno == ENOTCONN;   /* an aborted connection */
    return st.st_dev == f->mnt_dev;
}

/* Wait until every worker is out, or for at most ms milliseconds.
 * True when all are out. */
static bool wait_workers(struct uz_fuse *f, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    while (f->live > 0) {
        if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) == ETIMEDOUT)
            break;
    }
    bool all = f->live == 0;
    pthread_mutex_unlock(&f->lock);
    return all;
}

/* Stop the workers that are still running: flag them, and interrupt
 * their read of /dev/fuse until each has left (a signal that lands while
 * a worker is busy is lost, so it is repeated). */
static void force_workers(struct uz_fuse *f)
{
    atomic_store(&f->stopping, true);
    fuse_session_exit(f->se);
    for (;;) {
        for (unsigned i = 0; i < f->nworkers; i++)
            if (f->workers[i].created && !atomic_load(&f->workers[i].done))
                pthread_kill(f->workers[i].tid, WAKE_SIGNAL);
        if (wait_workers(f, 50))
            break;
    }
}

static void free_server(struct uz_fuse *f)
{
    for (unsigned i = 0; i < f->nworkers; i++)
        if (f->workers[i].created)
            pthread_join(f->workers[i].tid, NULL);
    if (f->se)
        fuse_session_destroy(f->se);   /* closes /dev/fuse: the connection ends */
    if (f->end_pipe[0] >= 0)
        close(f->end_pipe[0]);
    if (f->end_pipe[1] >= 0)
        close(f->end_pipe[1]);
    if (f->pool)
        munmap(f->pool, (size_t)f->nworkers * IO_MAX);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f->dir);
    free(f);
}

void uz_fuse_stop(struct uz_fuse *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    bool serving = f->live > 0;
    pthread_mutex_unlock(&f->lock);
    if (f->mnt_dev != 0 && (serving || still_mounted(f)))
        lazy_unmount(f->dir);
    /* Unused, the mount ends at once and the workers see ENODEV; a loop
     * device or an open file keeps it alive until it lets go. */
    if (!wait_workers(f, STOP_GRACE_MS))
        force_workers(f);
    free_server(f);
}

int uz_fuse_end_fd(const struct uz_fuse *f)
{
    return f->end_pipe[0];
}

int uz_fuse_start(struct uzram *dev, const char *dir, const struct uz_fuse_opts *o,
                  struct uz_fuse **out)
{
    struct uz_fuse_opts defaults;
    if (!o) {
        uz_fuse_opts_init(&defaults);
        o = &defaults;
    }
    *out = NULL;
    struct uz_fuse *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->dev = dev;
    f->o = *o;
    f->end_pipe[0] = f->end_pipe[1] = -1;
    f->born = time(NULL);
    f->nworkers = o->threads == 0 ? 8 : o->threads > MAX_THREADS ? MAX_THREADS : o->threads;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    unsigned mode;
    while (uzram_attr_name(f->nattrs, &mode))
        f->nattrs++;

    int err = 0;
    struct stat st;
    f->dir = realpath(dir, NULL);
    if (!f->dir || stat(f->dir, &st) != 0) {
        err = -errno;
        fprintf(stderr, "uzram: %s: %s\n", dir, strerror(errno));
        goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
        err = -ENOTDIR;
        fprintf(stderr, "uzram: %s: not a directory\n", dir);
        goto fail;
    }
    if (pipe2(f->end_pipe, O_CLOEXEC) != 0) {
        err = -errno;
        goto fail;
    }
    /* The read buffers, touched now so that they are resident (and
     * locked, under mlockall) before the first request. */
    f->pool = mmap(NULL, (size_t)f->nworkers * IO_MAX, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (f->pool == MAP_FAILED) {
        f->pool = NULL;
        err = -ENOMEM;
        goto fail;
    }
    memset(f->pool, 0, (size_t)f->nworkers * IO_MAX);

    char optbuf[512];
    snprintf(optbuf, sizeof optbuf, "fsname=%s,subtype=%s,default_permissions,max_read=%u%s",
             o->fsname ? o->fsname : "uzram", o->subtype ? o->subtype : "uzram", IO_MAX,
             o->allow_other ? ",allow_other" : "");
    char *argv[] = {"uzram", "-o", optbuf, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    f->se = fuse_session_new(&args, &ops, sizeof ops, f);
    if (!f->se) {
        err = -EINVAL;
        fprintf(stderr, "uzram: cannot create a FUSE session\n");
        goto fail;
    }
    if (fuse_session_mount(f->se, f->dir) != 0) {
        err = access("/dev/fuse", R_OK | W_OK) != 0 ? -errno : -EIO;
        fprintf(stderr, "uzram: cannot mount %s%s%s\n", f->dir, err == -EIO ? "" : ": ",
                err == -EIO ? "" : strerror(-err));
        goto fail;
    }
    /* The wake signal interrupts reads (no SA_RESTART).  Installed only
     * if nobody else handles it. */
    struct sigaction old;
    if (sigaction(WAKE_SIGNAL, NULL, &old) == 0 &&
        (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = wake_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(WAKE_SIGNAL, &sa, NULL);
    }

    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setstacksize(&ta, WORKER_STACK);
    for (unsigned i = 0; i < f->nworkers; i++) {
        struct worker *w = &f->workers[i];
        w->f = f;
        w->rbuf = f->pool + (size_t)i * IO_MAX;
        pthread_mutex_lock(&f->lock);
        f->live++;
        pthread_mutex_unlock(&f->lock);
        int e = pthread_create(&w->tid, &ta, worker_main, w);
        if (e != 0) {
            pthread_mutex_lock(&f->lock);
            f->live--;
            pthread_mutex_unlock(&f->lock);
            err = -e;
            fprintf(stderr, "uzram: cannot start a worker thread: %s\n", strerror(e));
            break;
        }
        w->created = true;
    }
    pthread_attr_destroy(&ta);
    if (err < 0) {
        lazy_unmount(f->dir);      /* the workers that run see ENODEV */
        uz_fuse_stop(f);
        return err;
    }
    /* Only now: a stat of the new mount waits for the kernel's INIT
     * request, which a worker has to answer. */
    if (stat(f->dir, &st) == 0)
        f->mnt_dev = st.st_dev;
    *out = f;
    return 0;

fail:
    free_server(f);
    return err;
}

