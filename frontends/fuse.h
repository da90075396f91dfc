/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse.h - serve a uzram device as a directory (FUSE).
 *
 * The directory looks like /sys/block/zramN with the block device added:
 *
 *     DIR/disk            the device's bytes, disksize long (read, write,
 *                         fallocate PUNCH_HOLE|KEEP_SIZE = discard,
 *                         ZERO_RANGE = write zeroes, fsync = flush)
 *     DIR/disksize        one file per zram attribute, with the mode
 *     DIR/mm_stat ...     uzram_attr_name() gives; reading one shows the
 *                         value fresh, writing one is a single store whose
 *                         error the writer gets as errno (EINVAL, EBUSY...)
 *
 *     DIR/.transport      (not listed; read-only) how the kernel hands the
 *                         server its requests: "io_uring" or "dev_fuse",
 *                         the requests each carried, and why dev_fuse
 *
 * so `losetup -f DIR/disk` makes a block device of it (swap, ext4, ...)
 * and `cat DIR/mm_stat`, `echo 1 > DIR/compact` work as on sysfs.  Both
 * kinds of file are opened direct_io: the page cache never holds a second
 * copy of the disk, and every read of an attribute calls show.  Where the
 * kernel allows it (FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6 on) the disk can
 * also be mapped shared (mmap MAP_SHARED): the mapping alone goes through
 * the page cache, written back by msync or the kernel (fuse_server.c).
 *
 * The server runs on its own fixed pool of threads, all created by
 * uzfs_start() (and, over io_uring, one more per CPU: fuse_uring.h); its I/O path allocates nothing (requests are decoded in
 * each thread's receive buffer and reads are copied out of a buffer
 * preallocated per thread), and each thread runs with PR_SET_IO_FLUSHER so
 * that the kernel does not recurse into swap to give it memory.  A process
 * that serves swap should also lock its memory (uzram_lock_memory()).
 * While DIR/disk is open the server holds the device open (uzram_open):
 * reset and the other reshaping stores are EBUSY, as on zram.
 *
 * Usage (the nbdkit plugin's control=DIR, attributes only):
 *
 *     struct uzfs_opts o;
 *     uzfs_opts_init(&o);
 *     o.expose_disk = false;
 *     o.deferred = true;          // mount now, serve after a fork
 *     struct uzfs *f;
 *     int err = uzfs_start(dev, "/run/uzram-ctl", &o, &f);
 *     ... fork ...
 *     err = uzfs_run(f);       // in the process that serves
 *     ...
 *     uzfs_stop(f);
 *
 * Signals: the workers block every signal but SIGRTMAX-2, which
 * uzfs_stop() sends them to interrupt their read of /dev/fuse; its
 * handler is installed by uzfs_start() unless the process has one (which
 * then must not use SA_RESTART).
 *
 * Thread-safety: uzfs_start / uzfs_stop on one server must not race
 * with each other; uzfs_end_fd() may be polled from any thread.  The
 * device must outlive the server (destroy it after uzfs_stop()).
 */
#ifndef UZRAM_FUSE_H
#define UZRAM_FUSE_H

#include <stdbool.h>

#include "uzram.h"

struct uzfs;

#define UZ_FUSE_MAX_THREADS 64   /* most worker threads a server runs */

struct uzfs_opts {
    /* Show DIR/disk (default true).  false: attribute files only. */
    bool expose_disk;
    /* Source and type in /proc/mounts: "uzram" and "uzram" give
     * "uzram DIR fuse.uzram ...". */
    const char *fsname;
    const char *subtype;
    /* Worker threads serving requests (default 8, at most
     * UZ_FUSE_MAX_THREADS). */
    unsigned threads;
    /* Let users other than the mounting one in (default: true when the
     * mounter is root; otherwise it needs user_allow_other in
     * /etc/fuse.conf). */
    bool allow_other;
    /* Mount, but start no worker thread until uzfs_run() (default
     * false).  For a host that forks between its checks and its serving
     * (nbdkit: get_ready, then after_fork): every error of the mount is
     * seen before the fork, and the threads, which do not survive one,
     * start after it.  Until then a process that uses DIR waits. */
    bool deferred;
    /* The transport of requests (default UZ_FUSE_URING_AUTO): FUSE over
     * io_uring where the kernel allows it (Linux 6.14 on, with the fuse
     * module's enable_uring parameter on), else /dev/fuse, saying why once
     * on stderr; UZ_FUSE_URING_ON refuses to mount (-EOPNOTSUPP) where
     * the parameter is off or no ring can be made; UZ_FUSE_URING_OFF is
     * /dev/fuse alone.  A mount without the disk uses /dev/fuse. */
    int io_uring;
};

enum { UZ_FUSE_URING_AUTO = 0, UZ_FUSE_URING_ON, UZ_FUSE_URING_OFF };

/* Fill *o with the defaults above.  Never fails. */
void uzfs_opts_init(struct uzfs_opts *o);

/*
 * Mount DIR (an existing directory) and serve dev there from background
 * threads (with o->deferred, from uzfs_run() on).  o may be NULL for the
 * defaults.  Returns 0 and the server in *out, or a negative errno
 * (-ENOTDIR, -ENOENT, -EBUSY when a uzram is mounted at DIR already,
 * -EPERM, -ENOMEM, -EIO for a failed mount) with a message in
 * uzram_last_error() style on stderr.  Nothing stays mounted on error.
 */
int uzfs_start(struct uzram *dev, const char *dir, const struct uzfs_opts *o,
               struct uzfs **out);

/*
 * Start the workers of a server started with o.deferred, in this process
 * (the one that forked from the starter, or the starter itself).  0; or a
 * negative errno (-EAGAIN, -ENOMEM) with a message on stderr, and then f
 * is stopped and freed as by uzfs_stop() (nothing stays mounted).  On
 * a server that already serves, 0.
 */
int uzfs_run(struct uzfs *f);

/*
 * Is a uzram (a mount of type fuse.uzram: `uzram mount`, `uzram pool`, the
 * plugin's control=DIR) mounted at dir, an absolute path without symbolic
 * links (as realpath gives)?  A second mount there would hide the first
 * one's files, so uzfs_start refuses it (-EBUSY).
 */
bool uzfs_is_mounted(const char *dir);

/*
 * Unmount (lazily, so it never fails), wait for every worker to finish
 * its request and exit, and free the server.  If something still uses
 * DIR/disk after two seconds (a loop device left attached), the
 * workers are stopped anyway and that user's I/O fails from then on.
 * NULL is accepted.  The device is not destroyed.
 */
void uzfs_stop(struct uzfs *f);

/*
 * A pool mount (`uzram pool`): DIR/zram-control/{hot_add,hot_remove},
 * the pool's attributes (uzram_pool_attr_name) in DIR itself, and one
 * directory DIR/zramN per device of the pool, which is exactly what a
 * single-device mount's DIR is (disk and every attribute file) plus one
 * file, clone (mode 0400, as hot_add): reading it makes a clone of zramN
 * (uzram_clone) and returns the new device's number, as reading hot_add
 * returns a new device's.  In every mount only root and the mount's
 * owner may change anything (fuse.c, "Who may do what").  Every operation on a device holds it (uzram_pool_get) and
 * an open disk holds it open (uzram_open), so hot_remove of a device in
 * use is EBUSY.  Returns and errors as uzfs_start's; the pool must
 * outlive the server (remove its devices and destroy it after
 * uzfs_stop(), which closes every disk the kernel left open).
 */
int uzfs_start_pool(struct uzram_pool *pool, const char *dir, const struct uzfs_opts *o,
                    struct uzfs **out);

/*
 * A descriptor that becomes readable (POLLIN) once the mount has ended
 * from outside: `umount DIR`, `fusermount3 -u DIR`, or an abort of the
 * connection.  A daemon polls it next to its signals and then calls
 * uzfs_stop().  Owned by the server; do not close or read it.
 */
int uzfs_end_fd(const struct uzfs *f);

#ifdef UZ_FUSE_INTERNAL
/*
 * The server's own parts, shared by its three files and nobody else
 * (define UZ_FUSE_INTERNAL and include fuse_lowlevel.h first):
 * fuse.c, the file system (every operation, for a device's nodes);
 * fuse_pool.c, a pool mount's nodes above its devices (zram-control, the
 * pool's attributes, the device directories); fuse_server.c, the worker
 * threads, the mount and the session's I/O.
 *
 * Inodes are fixed numbers.  A single-device mount: 1 is DIR, 2 DIR/disk,
 * UZ_INO_ATTR0 + i the i-th attribute of uzram_attr_name().  A pool mount:
 * below 1 << UZ_INO_DEV_SHIFT the pool's own nodes (1 DIR, 3 zram-control
 * and its files, UZ_INO_PATTR0 + i the i-th pool attribute); device N's
 * nodes are (N + 1) << UZ_INO_DEV_SHIFT plus the same numbers as a
 * single mount's (1 its directory, 2 its disk, ...) and UZ_INO_CLONE.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#define UZ_INO_ROOT       1
#define UZ_INO_DISK       2
#define UZ_INO_CLONE      3     /* a pool device's clone file */
#define UZ_INO_ATTR0      16
#define UZ_INO_CTL        4     /* the pool's zram-control and its files */
#define UZ_INO_HOT_ADD    5
#define UZ_INO_HOT_REMOVE 6
#define UZ_INO_TRANSPORT  7     /* DIR/.transport, in every mount's root */
#define UZ_INO_PATTR0     64
#define UZ_INO_DEV_SHIFT  12
/* The modes of the nodes that are not attributes (these are the
 * tables'): only their owner may use them, as only root may use
 * /dev/zramN and /sys/class/zram-control/hot_add. */
#define UZ_DISK_MODE      0600
#define UZ_CLONE_MODE     0400  /* a read that creates, as hot_add */
#define UZ_HOT_ADD_MODE   0400
#define UZ_HOT_REMOVE_MODE 0200
#define UZ_INO_LOCAL(ino) ((ino) & ((1u << UZ_INO_DEV_SHIFT) - 1))

/* Largest read or write request (max_read/max_write), and so the size of
 * each worker's read buffer; attribute values are at most a page. */
#define UZ_IO_MAX   (128u * 1024)
#define UZ_ATTR_BUF 4096

struct uzfs_worker {
    struct uzfs *f;
    pthread_t tid;
    char *rbuf;                 /* UZ_IO_MAX bytes from the pool */
    bool created;
    _Atomic bool done;
    _Atomic uint64_t served;    /* requests read from /dev/fuse */
};

/* Signal that interrupts a worker's read of /dev/fuse, or a ring queue's
 * wait, when stopping: a realtime one that hosts (nbdkit) leave alone. */
#define UZ_FUSE_WAKE_SIGNAL (SIGRTMAX - 2)

struct uzfs_ring;                 /* the io_uring transport (fuse_uring.h) */

/* A pool mount's state (fuse_pool.c). */
struct uzfs_pool {
    struct uzram_pool *pool;
    /* opens of DIR/zramN/disk still held, so that uzfs_stop() can
     * close those the kernel never released */
    _Atomic unsigned opens[UZRAM_POOL_MAX_DEVICES];
};

struct uzfs {
    struct uzram *dev;          /* a single-device mount's, else NULL */
    struct uzfs_pool *pp;    /* a pool mount's, else NULL */
    struct fuse_session *se;
    char *dir;                  /* absolute mount point */
    struct uzfs_opts o;
    unsigned nattrs;
    dev_t mnt_dev;              /* st_dev of DIR while mounted */
    bool deferred;              /* mounted, no worker started yet (uzfs_run) */
    time_t born;

    unsigned nworkers;
    struct uzfs_worker workers[UZ_FUSE_MAX_THREADS];
    char *bufs;                 /* nworkers * UZ_IO_MAX, touched at start */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned live;              /* workers still running (under lock) */
    _Atomic bool stopping;      /* workers leave after their request */
    int end_pipe[2];
    /* the INIT exchange (fuse_server.c): 0 before the request, 1 between
     * it and its reply, 2 after */
    _Atomic int init_state;
    uint64_t init_unique;
    bool init_allow_mmap;       /* the kernel offers FUSE_DIRECT_IO_ALLOW_MMAP */
    bool init_uring;            /* the kernel offers FUSE_OVER_IO_URING */

    /* the io_uring transport: NULL when off or not made */
    struct uzfs_ring *ring;
    bool want_ring;             /* probed: make the ring at start */
    _Atomic bool ring_fell_back;    /* on /dev/fuse for the reason below */
    char transport_note[192];
};

/* fuse_server.c: DIR/.transport's text into buf (size bytes): the
 * transport ("io_uring" or "dev_fuse"), its counters, and why /dev/fuse
 * when it is.  Returns the length. */
int uzfs_transport_show(struct uzfs *f, char *buf, size_t size);

/* fuse.c: is the sender of req root or the mount's owner (the server's
 * user)?  May it open a node of this mode for acc (O_RDONLY, O_WRONLY,
 * O_RDWR): the owner's bits for those two (of a file that has a show or
 * a store: kernfs refuses the rest even to root), the others' bits for
 * anyone else.  Log a failed store or creating read of NAME (of device id
 * of a pool, -1 for a single mount's or the pool's own) on stderr, with
 * the calling thread's uzram_last_error(). */
bool uzfs_privileged(fuse_req_t req);
bool uzfs_may_open(fuse_req_t req, unsigned mode, int acc);
void uzfs_log(const struct uzfs *f, int id, const char *name, int err);

/* fuse.c's operations, and the worker running on this thread (NULL
 * elsewhere; set before the worker receives its first request). */
extern const struct fuse_lowlevel_ops uzfs_ops;
extern __thread struct uzfs_worker *uzfs_cur_worker;

/* fuse_server.c: mount and serve (dev for a single-device mount, pp for
 * a pool's); uzfs_start and uzfs_start_pool are this. */
int uzfs_serve(struct uzram *dev, struct uzfs_pool *pp, const char *dir,
               const struct uzfs_opts *o, struct uzfs **out);

/* fuse_pool.c: the operations on a pool's own nodes (ino below
 * 1 << UZ_INO_DEV_SHIFT), each replying to req, and what fuse.c asks of
 * the pool. */
void uzfs_pool_lookup(fuse_req_t req, struct uzfs *f, fuse_ino_t parent, const char *name);
void uzfs_pool_getattr(fuse_req_t req, struct uzfs *f, fuse_ino_t ino);
void uzfs_pool_open(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, struct fuse_file_info *fi);
void uzfs_pool_read(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, size_t size, off_t off);
void uzfs_pool_write(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, const char *buf,
                     size_t size);
void uzfs_pool_readdir(fuse_req_t req, struct uzfs *f, fuse_ino_t ino, size_t size, off_t off);
void uzfs_pool_statfs(fuse_req_t req, struct uzfs *f);
/* Read of DIR/zramN/clone: clone dev (held by the caller). */
void uzfs_pool_clone_read(fuse_req_t req, struct uzfs *f, struct uzram *dev, off_t off);
/* The stat of the pool's own node ino into *st; false if there is none. */
bool uzfs_pool_fill_stat(struct uzfs *f, fuse_ino_t ino, struct stat *st);
/* Close the disks the kernel left open (at stop, once no worker runs). */
void uzfs_pool_close_all(struct uzfs_pool *pp);
#endif

#endif
