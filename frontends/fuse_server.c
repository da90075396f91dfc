/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse_server.c - the FUSE server's threads, mount and session I/O; the
 * file system they serve is fuse.c's (see fuse.h).
 *
 * Threads.  uzfs_serve() creates a fixed pool of workers (with
 * o->deferred, uzfs_run() does, after the host's fork); each one
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
 * Shared mappings of the disk.  The disk is opened direct_io (no second
 * copy in the page cache), and the kernel refuses mmap(MAP_SHARED) of a
 * direct_io file with ENODEV unless the server accepts
 * FUSE_DIRECT_IO_ALLOW_MMAP at INIT (kernel 6.6 on): then a shared
 * mapping is served through the page cache while it exists, read and
 * written back with ordinary FUSE reads and writes, and direct I/O stays
 * as it was (the kernel writes back and drops the cached pages of a
 * range before a direct write to it: nothing to do when nothing is
 * mapped).  libfuse 3.14 knows no such capability (its flags2 carries only
 * the bits it knows), so the session's I/O goes through two small
 * functions (fuse_session_custom_io): the read one notes the INIT
 * request's id and whether the kernel offers the flag, the write one sets
 * the flag in that one reply.  Every other request costs one relaxed
 * load of init_state each way.
 *
 * FUSE over io_uring (fuse_uring.c).  Where the kernel offers
 * FUSE_OVER_IO_URING at INIT and the server's per-CPU queues are ready
 * (o->io_uring, probed before the mount, made before the workers
 * start), the INIT reply accepts it too, and the same two functions tie
 * it in: the write one sets the flag in the INIT reply and then lets the
 * queues register; and, for every reply, it first offers the reply to the
 * ring entry whose request this thread is serving (uzfs_ring_reply: one
 * thread-local load when there is none).  The workers keep reading
 * /dev/fuse, which still carries INIT, FORGET and INTERRUPT.
 *
 * Ending.  When DIR is unmounted the kernel fails every read of
 * /dev/fuse with ENODEV and the workers return; the last one out makes
 * uzfs_end_fd() readable.  uzfs_stop() unmounts lazily and waits
 * for that; if a user of DIR/disk keeps the connection alive for longer
 * than STOP_GRACE_MS (2 s), the workers are woken by a signal and leave, and
 * the connection dies with the descriptor.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <fuse_lowlevel.h>

#define UZ_FUSE_INTERNAL
#include "fuse.h"
#include "fuse_kabi.h"
#include "fuse_uring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/fuse.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

extern char **environ;

#define WORKER_STACK   (1u << 20)
/* How long uzfs_stop() lets users of the disk finish after the lazy
 * unmount before it stops the workers anyway. */
#define STOP_GRACE_MS  2000
#define WAKE_SIGNAL    UZ_FUSE_WAKE_SIGNAL

__thread struct uzfs_worker *uzfs_cur_worker;

/* ------------------------------------------------------ session I/O */

/* A request read from /dev/fuse: note the INIT request (the first the
 * kernel sends) and what it offers. */
static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
    struct uzfs *f = userdata;
    ssize_t n = read(fd, buf, len);
    if (atomic_load_explicit(&f->init_state, memory_order_relaxed) == 0 &&
        n >= (ssize_t)(sizeof(struct fuse_in_header) + sizeof(struct fuse_init_in))) {
        const struct fuse_in_header *h = buf;
        const struct fuse_init_in *in = (const void *)(h + 1);
        if (h->opcode == FUSE_INIT) {
            f->init_unique = h->unique;
            f->init_allow_mmap = (in->flags & FUSE_INIT_EXT) &&
                                 (in->flags2 & UZ_KFUSE_DIRECT_IO_ALLOW_MMAP_HI);
            f->init_uring = (in->flags & FUSE_INIT_EXT) &&
                            (in->flags2 & UZ_KFUSE_OVER_IO_URING_HI);
            atomic_store(&f->init_state, 1);
        }
    }
    return n;
}

/* The largest request of the connection an INIT reply makes, as the
 * kernel sizes ring entries: max(8 KiB, max_write, max_pages pages). */
static size_t init_max_payload(const struct fuse_init_out *out)
{
    size_t pages = (out->flags & FUSE_MAX_PAGES) && out->max_pages ? out->max_pages : 32;
    size_t m = out->max_write > 8192 ? out->max_write : 8192;
    size_t p = pages * (size_t)sysconf(_SC_PAGESIZE);
    return p > m ? p : m;
}

/* The INIT reply, gathered, with FUSE_DIRECT_IO_ALLOW_MMAP set, and
 * FUSE_OVER_IO_URING when the ring transport can follow it up (then its
 * queues register once the kernel has the reply). */
static ssize_t write_init_reply(struct uzfs *f, int fd, const struct iovec *iov, int count)
{
    char msg[512];
    size_t len = 0;
    for (int i = 0; i < count; i++) {
        if (iov[i].iov_len > sizeof msg - len) {
            if (f->ring) {
                uzfs_ring_fallback(f, "the INIT reply was not one the server knows");
                uzfs_ring_go(f->ring, false);
            }
            return writev(fd, iov, count);       /* not an INIT reply we know */
        }
        memcpy(msg + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    struct fuse_out_header *h = (void *)msg;
    struct fuse_init_out *out = (void *)(h + 1);
    bool known = len >= sizeof *h + offsetof(struct fuse_init_out, unused) && h->error == 0 &&
                 (out->flags & FUSE_INIT_EXT);
    if (known && f->init_allow_mmap)
        out->flags2 |= UZ_KFUSE_DIRECT_IO_ALLOW_MMAP_HI;
    bool uring = false;
    if (f->ring) {
        if (!known)
            uzfs_ring_fallback(f, "the INIT reply has no flags2 (FUSE_INIT_EXT)");
        else
            uring = uzfs_ring_accept(f->ring, f->init_uring, init_max_payload(out));
    }
    if (uring)
        out->flags2 |= UZ_KFUSE_OVER_IO_URING_HI;
    ssize_t n = write(fd, msg, len);
    if (f->ring) {
        if (uring && n < 0)
            uzfs_ring_fallback(f, "the INIT reply could not be written");
        uzfs_ring_go(f->ring, uring && n >= 0);
    }
    return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    struct uzfs *f = userdata;
    ssize_t n = uzfs_ring_reply(iov, count);   /* a request that came through a ring */
    if (n >= 0)
        return n;
    if (atomic_load_explicit(&f->init_state, memory_order_relaxed) == 1 && count > 0 &&
        iov[0].iov_len >= sizeof(struct fuse_out_header) &&
        ((const struct fuse_out_header *)iov[0].iov_base)->unique == f->init_unique) {
        atomic_store(&f->init_state, 2);
        return write_init_reply(f, fd, iov, count);
    }
    return writev(fd, iov, count);
}

static const struct fuse_custom_io session_io = {.read = io_read, .writev = io_writev};

/* ----------------------------------------------------------- server */

static void wake_handler(int sig)
{
    (void)sig;   /* only interrupts a blocked read(2) */
}

void uzfs_opts_init(struct uzfs_opts *o)
{
    memset(o, 0, sizeof *o);
    o->expose_disk = true;
    o->fsname = "uzram";
    o->subtype = "uzram";
    o->threads = 8;
    o->allow_other = geteuid() == 0;
}


static void worker_exit(struct uzfs_worker *w)
{
    struct uzfs *f = w->f;
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
    struct uzfs_worker *w = arg;
    struct uzfs *f = w->f;
    uzfs_cur_worker = w;

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
        atomic_fetch_add_explicit(&w->served, 1, memory_order_relaxed);
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
static bool still_mounted(const struct uzfs *f)
{
    struct stat st;
    if (stat(f->dir, &st) != 0)
        return errno == ENOTCONN;   /* an aborted connection */
    return st.st_dev == f->mnt_dev;
}

/* Wait until every worker is out, or for at most ms milliseconds.
 * True when all are out. */
static bool wait_workers(struct uzfs *f, long ms)
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
static void force_workers(struct uzfs *f)
{
    atomic_store(&f->stopping, true);
    fuse_session_exit(f->se);
    uzfs_ring_destroy(f->ring);
    f->ring = NULL;
    for (;;) {
        for (unsigned i = 0; i < f->nworkers; i++)
            if (f->workers[i].created && !atomic_load(&f->workers[i].done))
                pthread_kill(f->workers[i].tid, WAKE_SIGNAL);
        if (wait_workers(f, 50))
            break;
    }
}

static void free_server(struct uzfs *f)
{
    for (unsigned i = 0; i < f->nworkers; i++)
        if (f->workers[i].created)
            pthread_join(f->workers[i].tid, NULL);
    uzfs_ring_destroy(f->ring);      /* before /dev/fuse closes */
    f->ring = NULL;
    if (f->se)
        fuse_session_destroy(f->se);   /* closes /dev/fuse: the connection ends */
    if (f->end_pipe[0] >= 0)
        close(f->end_pipe[0]);
    if (f->end_pipe[1] >= 0)
        close(f->end_pipe[1]);
    if (f->bufs)
        munmap(f->bufs, (size_t)f->nworkers * UZ_IO_MAX);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    if (f->pp)
        uzfs_pool_close_all(f->pp);
    free(f->pp);
    free(f->dir);
    free(f);
}

void uzfs_stop(struct uzfs *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    bool serving = f->live > 0;
    pthread_mutex_unlock(&f->lock);
    /* A deferred mount was never served (its INIT never answered): its
     * st_dev is unknown, and a stat would wait for that answer. */
    if (f->deferred || (f->mnt_dev != 0 && (serving || still_mounted(f))))
        lazy_unmount(f->dir);
    f->deferred = false;
    /* Unused, the mount ends at once and the workers see ENODEV; a loop
     * device or an open file keeps it alive until it lets go. */
    if (!wait_workers(f, STOP_GRACE_MS))
        force_workers(f);
    free_server(f);
}

int uzfs_transport_show(struct uzfs *f, char *buf, size_t size)
{
    uint64_t dev = 0;
    for (unsigned i = 0; i < f->nworkers; i++)
        dev += atomic_load_explicit(&f->workers[i].served, memory_order_relaxed);
    bool ring = uzfs_ring_active(f->ring);
    int n = snprintf(buf, size, "%s\nqueues=%u depth=%u ring_requests=%llu dev_requests=%llu\n",
                     ring ? "io_uring" : "dev_fuse", ring ? uzfs_ring_queues(f->ring) : 0,
                     ring ? UZ_RING_DEPTH : 0, (unsigned long long)uzfs_ring_requests(f->ring),
                     (unsigned long long)dev);
    if (!ring && n >= 0 && (size_t)n < size) {
        const char *why = atomic_load(&f->ring_fell_back) ? f->transport_note
                          : f->o.io_uring == UZ_FUSE_URING_OFF ? "--io-uring off"
                          : !f->o.expose_disk ? "a mount without the disk"
                          : f->ring ? "the rings are not registered yet"
                          : "not asked";
        n += snprintf(buf + n, size - (size_t)n, "%s\n", why);
    }
    return n < 0 ? 0 : (size_t)n < size ? n : (int)size - 1;
}

int uzfs_end_fd(const struct uzfs *f)
{
    return f->end_pipe[0];
}

/* One field of a /proc/self/mounts line, its octal escapes (\040 for a
 * blank, \011, \012, \134) undone, into out (size bytes). */
static void unescape_field(const char *in, char *out, size_t size)
{
    size_t n = 0;
    while (*in && n + 1 < size) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
            in[3] >= '0' && in[3] <= '7') {
            out[n++] = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 4;
        } else {
            out[n++] = *in++;
        }
    }
    out[n] = 0;
}

bool uzfs_is_mounted(const char *dir)
{
    FILE *fp = fopen("/proc/self/mounts", "re");
    if (!fp)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, fp) > 0) {
        /* SOURCE MOUNTPOINT TYPE OPTIONS ...: the blanks are escaped */
        char *save = NULL;
        char *src = strtok_r(line, " ", &save);
        char *mnt = src ? strtok_r(NULL, " ", &save) : NULL;
        char *type = mnt ? strtok_r(NULL, " ", &save) : NULL;
        if (!type || strcmp(type, "fuse.uzram") != 0)
            continue;
        char path[PATH_MAX];
        unescape_field(mnt, path, sizeof path);
        found = strcmp(path, dir) == 0;
    }
    free(line);
    fclose(fp);
    return found;
}

/* Start the workers; then the mount serves.  On error everything is
 * undone and f freed. */
static int start_workers(struct uzfs *f)
{
    int err = 0;
    /* The ring transport's queues, ready before the INIT request is read
     * (its reply says whether they serve). */
    if (f->want_ring) {
        char why[160];
        err = uzfs_ring_create(f, &f->ring, why, sizeof why);
        if (err < 0 && f->o.io_uring == UZ_FUSE_URING_ON) {
            fprintf(stderr, "uzram: %s: --io-uring on: %s\n", f->dir, why);
            lazy_unmount(f->dir);
            f->deferred = false;
            uzfs_stop(f);
            return err;
        }
        if (err < 0)
            uzfs_ring_fallback(f, why);
        err = 0;
    }
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setstacksize(&ta, WORKER_STACK);
    for (unsigned i = 0; i < f->nworkers; i++) {
        struct uzfs_worker *w = &f->workers[i];
        w->f = f;
        w->rbuf = f->bufs + (size_t)i * UZ_IO_MAX;
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
    f->deferred = false;
    if (err < 0) {
        lazy_unmount(f->dir);      /* the workers that run see ENODEV */
        uzfs_stop(f);
        return err;
    }
    /* Only now: a stat of the new mount waits for the kernel's INIT
     * request, which a worker has to answer. */
    struct stat st;
    if (stat(f->dir, &st) == 0)
        f->mnt_dev = st.st_dev;
    return 0;
}

int uzfs_run(struct uzfs *f)
{
    if (!f->deferred)
        return 0;
    return start_workers(f);
}

int uzfs_start(struct uzram *dev, const char *dir, const struct uzfs_opts *o,
               struct uzfs **out)
{
    return uzfs_serve(dev, NULL, dir, o, out);
}

int uzfs_serve(struct uzram *dev, struct uzfs_pool *pp, const char *dir,
               const struct uzfs_opts *o, struct uzfs **out)
{
    struct uzfs_opts defaults;
    if (!o) {
        uzfs_opts_init(&defaults);
        o = &defaults;
    }
    *out = NULL;
    struct uzfs *f = calloc(1, sizeof *f);
    if (!f) {
        free(pp);
        return -ENOMEM;
    }
    f->dev = dev;
    f->pp = pp;
    f->o = *o;
    f->end_pipe[0] = f->end_pipe[1] = -1;
    f->born = time(NULL);
    f->nworkers = o->threads == 0 ? 8 : o->threads > UZ_FUSE_MAX_THREADS ? UZ_FUSE_MAX_THREADS : o->threads;
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
    if (uzfs_is_mounted(f->dir)) {
        err = -EBUSY;
        fprintf(stderr, "uzram: %s: a uzram is already mounted there\n", f->dir);
        goto fail;
    }
    /* The transport: may the kernel serve this mount over io_uring?  Asked
     * before mounting, so that --io-uring on fails with nothing mounted. */
    if (o->io_uring != UZ_FUSE_URING_OFF && o->expose_disk) {
        char why[160];
        err = uzfs_ring_probe(why, sizeof why);
        if (err < 0 && o->io_uring == UZ_FUSE_URING_ON) {
            fprintf(stderr, "uzram: %s: --io-uring on: %s (see uzram(1), \"FUSE over io_uring\")\n",
                    f->dir, why);
            err = -EOPNOTSUPP;
            goto fail;
        }
        if (err < 0)
            uzfs_ring_fallback(f, why);
        f->want_ring = err == 0;
        err = 0;
    }
    if (pipe2(f->end_pipe, O_CLOEXEC) != 0) {
        err = -errno;
        goto fail;
    }
    /* The read buffers, touched now so that they are resident (and
     * locked, under mlockall) before the first request. */
    f->bufs = mmap(NULL, (size_t)f->nworkers * UZ_IO_MAX, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (f->bufs == MAP_FAILED) {
        f->bufs = NULL;
        err = -ENOMEM;
        goto fail;
    }
    memset(f->bufs, 0, (size_t)f->nworkers * UZ_IO_MAX);

    char optbuf[512];
    /* A deferred mount's host may die before it serves (nbdkit exits
     * between get_ready and after_fork when its socket cannot be bound),
     * or lose the right to unmount (nbdkit -u): auto_unmount leaves
     * fusermount3 watching, and it unmounts DIR once the last copy of the
     * session's descriptor is closed. */
    snprintf(optbuf, sizeof optbuf, "fsname=%s,subtype=%s,default_permissions,max_read=%u%s%s",
             o->fsname ? o->fsname : "uzram", o->subtype ? o->subtype : "uzram", UZ_IO_MAX,
             o->allow_other ? ",allow_other" : "", o->deferred ? ",auto_unmount" : "");
    char *argv[] = {"uzram", "-o", optbuf, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    f->se = fuse_session_new(&args, &uzfs_ops, sizeof uzfs_ops, f);
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
    /* Our own session I/O, for the INIT flag libfuse cannot give (see
     * the top); without it a shared mapping of the disk is ENODEV. */
    if (fuse_session_custom_io(f->se, &session_io, fuse_session_fd(f->se)) != 0) {
        fprintf(stderr, "uzram: warning: shared mappings of %s/disk will fail\n", f->dir);
        if (f->want_ring)
            uzfs_ring_fallback(f, "the session's I/O could not be taken over");
        f->want_ring = false;
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

    if (o->deferred) {
        f->deferred = true;         /* uzfs_run starts the workers */
        *out = f;
        return 0;
    }
    err = start_workers(f);
    if (err < 0)
        return err;
    *out = f;
    return 0;

fail:
    free_server(f);
    return err;
}

