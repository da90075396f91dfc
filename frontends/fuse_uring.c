/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse_uring.c - the FUSE server's io_uring transport (fuse_uring.h; the
 * kernel's side is in fuse_kabi.h).
 *
 * Queues.  One per possible CPU, as the kernel has: queue q is a thread
 * pinned to CPU q (where the process may run there), with its own ring
 * (128-byte SQEs; single issuer with deferred task work where the kernel
 * has them) and UZ_RING_DEPTH entries.  An entry is one piece of memory,
 * touched before the mount serves anything:
 *
 *     [ fuse_uring_req_header | ... free ... | hdr+op | payload (UZ_IO_MAX) ]
 *     0                                      PREFIX - n  PREFIX
 *
 * The kernel writes a request's header and its opcode's header into the
 * fuse_uring_req_header and the rest into the payload.  The thread copies
 * those two headers to just before the payload, which makes the request
 * exactly what read(2) of /dev/fuse would have given (header, arguments,
 * data), and hands it to libfuse (fuse_session_process_buf): the same
 * handlers as the /dev/fuse workers', with no copy of the data.  The
 * handler's reply reaches the session's writev (fuse_server.c), which
 * gives it to uzfs_ring_reply(): the thread-local entry takes its header in
 * in_out and its arguments in the payload.  A read of the disk needs no
 * copy there either: the queue's worker read buffer (rbuf) is the entry's
 * payload, so uzram_read decompresses straight into it.  The thread then
 * commits the entry and fetches the next request in the same SQE
 * (COMMIT_AND_FETCH), and submits and waits in one io_uring_enter.
 *
 * The side lane.  A queue thread serves the disks' requests itself, and
 * whatever else is not a read or write of an attribute (lookups, opens,
 * getattr: no work).  A read or write of an attribute may take seconds
 * (`echo idle > writeback`, recompress, compact, a clone), and the
 * requests of that CPU must not wait behind it: each goes to a thread of
 * its own (detached), which serves it into its entry and hands the entry
 * back on the queue's done list, waking the queue through an eventfd
 * whose read the queue keeps in its ring; the queue thread commits it (a
 * ring has one issuer).  The entry is the kernel's again only then, so
 * the queue serves on with its other entries.  If no thread can be made
 * the request is served in place.  uzfs_ring_destroy waits for the side
 * threads (side_live) before the entries go.
 *
 * Start.  uzfs_ring_create() starts the threads, and each makes its ring
 * and entries and waits.  The INIT reply accepts FUSE_OVER_IO_URING only
 * if every queue got that far (uzfs_ring_accept): once the kernel has the
 * flag it holds every new request until all queues have registered, so a
 * flag the server cannot follow up would hang the mount.  After the reply
 * the queues register (uzfs_ring_go); a registration the kernel refuses
 * makes the kernel drop the rings for the connection, and the server
 * stays on /dev/fuse (uzfs_ring_fallback says why).
 *
 * End.  When the connection ends the kernel completes every entry it holds
 * with -ENOTCONN and the thread leaves once it has none left;
 * uzfs_ring_destroy() also stops a thread that still waits (the wake signal
 * interrupts io_uring_enter), and closes the rings, whose entries the
 * kernel then cancels.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <fuse_lowlevel.h>

#define UZ_FUSE_INTERNAL
#include "fuse.h"
#include "fuse_kabi.h"
#include "fuse_uring.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

void uzfs_ring_fallback(struct uzfs *f, const char *reason)
{
    bool was = false;
    if (!atomic_compare_exchange_strong(&f->ring_fell_back, &was, true))
        return;
    snprintf(f->transport_note, sizeof f->transport_note, "%s", reason);
    fprintf(stderr, "uzram: %s: serving over /dev/fuse, not io_uring: %s\n",
            f->dir ? f->dir : "?", reason);
}

#ifndef UZ_HAVE_URING
/* Built without liburing: /dev/fuse only. */
int uzfs_ring_probe(char *why, size_t size)
{
    snprintf(why, size, "uzram was built without liburing");
    return -ENOSYS;
}

int uzfs_ring_create(struct uzfs *f, struct uzfs_ring **out, char *why, size_t size)
{
    (void)f;
    *out = NULL;
    return uzfs_ring_probe(why, size);
}

bool uzfs_ring_accept(struct uzfs_ring *r, bool offered, size_t max_payload)
{
    (void)r, (void)offered, (void)max_payload;
    return false;
}

void uzfs_ring_go(struct uzfs_ring *r, bool accepted)
{
    (void)r, (void)accepted;
}

ssize_t uzfs_ring_reply(const struct iovec *iov, int count)
{
    (void)iov, (void)count;
    return -1;
}

bool uzfs_ring_active(const struct uzfs_ring *r)
{
    (void)r;
    return false;
}

unsigned uzfs_ring_queues(const struct uzfs_ring *r)
{
    (void)r;
    return 0;
}

uint64_t uzfs_ring_requests(const struct uzfs_ring *r)
{
    (void)r;
    return 0;
}

void uzfs_ring_destroy(struct uzfs_ring *r)
{
    (void)r;
}
#else
#include <liburing.h>

#define ENT_SIZE ((size_t)UZ_RING_PREFIX + UZ_IO_MAX)
#define QUEUE_STACK (1u << 20)

struct uzfs_ring_ent {
    struct uzfs_ring_queue *q;
    struct fuse_uring_req_header *hdr;  /* at the start of the entry */
    char *payload;                      /* UZ_RING_PREFIX bytes after it */
    struct iovec iov[2];                /* what REGISTER gives the kernel */
    uint64_t commit_id;                 /* of the request it holds */
    uint64_t unique;
    bool replied;
    bool live;                          /* held by the kernel or by us */
    struct uzfs_ring_ent *next_done;      /* on the queue's done list (side lane) */
};

struct uzfs_ring_queue {
    struct uzfs_ring *r;
    unsigned qid;
    pthread_t tid;
    bool created;
    _Atomic bool done;
    struct io_uring ring;
    bool ring_ok;
    char *mem;                          /* the entries, UZ_RING_DEPTH * ENT_SIZE */
    struct uzfs_ring_ent ent[UZ_RING_DEPTH];
    unsigned live;                      /* entries not yet lost */
    struct uzfs_worker w;            /* for the handlers: rbuf is the entry's payload */
    _Atomic uint64_t served;
    int efd;                            /* the side lane's wake-up (-1: none) */
    uint64_t efd_val;                   /* what the ring's read of it reads */
    pthread_mutex_t done_lock;
    struct uzfs_ring_ent *done_list;      /* served by side threads, to commit */
    int err;                            /* preparation failed: -errno, why */
    char why[128];
};

struct uzfs_ring {
    struct uzfs *f;
    int fd;                             /* /dev/fuse */
    unsigned nq;
    struct uzfs_ring_queue *q;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned prepared;                  /* queues ready to register or failed (under lock) */
    int go;                             /* 0 waiting, 1 register, -1 end (under lock) */
    _Atomic unsigned registered;        /* queues whose entries the kernel took */
    _Atomic bool stopping;
    _Atomic unsigned side_live;         /* side-lane threads running */
};

/* The CQE tag of a queue's eventfd read (not an entry). */
#define EFD_TAG ((void *)1)

/* The entry whose request this thread is serving. */
static __thread struct uzfs_ring_ent *cur_ent;

/* How many CPUs may ever exist (the kernel's num_possible_cpus(), its
 * number of queues): the count in /sys/devices/system/cpu/possible. */
static unsigned possible_cpus(void)
{
    FILE *fp = fopen("/sys/devices/system/cpu/possible", "re");
    unsigned n = 0;
    if (fp) {
        unsigned a, b;
        char sep;
        for (;;) {
            if (fscanf(fp, "%u", &a) != 1)
                break;
            b = a;
            int c = fgetc(fp);
            if (c == '-' && fscanf(fp, "%u", &b) == 1)
                c = fgetc(fp);
            if (b >= a)
                n += b - a + 1;
            sep = (char)c;
            if (sep != ',')
                break;
        }
        fclose(fp);
    }
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_CONF);
        n = c > 0 ? (unsigned)c : 1;
    }
    return n;
}

/* A ring with 128-byte SQEs: single issuer with deferred task work (the
 * kernel runs a request's copy-in when this thread waits, not by
 * interrupting it), else cooperative task work, else plain. */
static int ring_init(struct io_uring *ring, unsigned entries)
{
    static const unsigned tries[] = {
        IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_SQE128,
    };
    int err = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i];
        err = io_uring_queue_init_params(entries, ring, &p);
        if (err != -EINVAL)
            break;
    }
    return err;
}

int uzfs_ring_probe(char *why, size_t size)
{
    FILE *fp = fopen("/sys/module/fuse/parameters/enable_uring", "re");
    if (!fp) {
        snprintf(why, size, "this kernel has no FUSE over io_uring (no fuse.enable_uring parameter)");
        return -ENOSYS;
    }
    int c = fgetc(fp);
    fclose(fp);
    if (c != 'Y' && c != '1') {
        snprintf(why, size, "the fuse module's enable_uring parameter is off");
        return -EOPNOTSUPP;
    }
    struct io_uring ring;
    int err = ring_init(&ring, 2);
    if (err < 0) {
        snprintf(why, size, "no io_uring for this process: %s%s", strerror(-err),
                 err == -EPERM ? " (sysctl kernel.io_uring_disabled?)" : "");
        return err;
    }
    io_uring_queue_exit(&ring);
    return 0;
}

/* A cleared 128-byte SQE of q's ring, as *area (the whole of it); NULL if
 * the SQ is full.  The command area (cmd[], declared empty) is its second
 * half; the compiler is not told where the pointer came from. */
static struct io_uring_sqe *get_sqe128(struct uzfs_ring_queue *q, void **area)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
    if (!sqe)
        return NULL;
    void *p = sqe;
    __asm__("" : "+r"(p));
    memset(p, 0, 2 * sizeof *sqe);
    *area = p;
    return sqe;
}

/* A command on /dev/fuse for entry e: REGISTER or COMMIT_AND_FETCH.  The
 * SQ has room for every entry, so there is always an SQE. */
static void queue_cmd(struct uzfs_ring_queue *q, struct uzfs_ring_ent *e, unsigned op)
{
    void *p;
    struct io_uring_sqe *sqe = get_sqe128(q, &p);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = q->r->fd;
    sqe->cmd_op = op;
    io_uring_sqe_set_data(sqe, e);
    struct fuse_uring_cmd_req *c = (void *)((char *)p + offsetof(struct io_uring_sqe, cmd));
    c->qid = (uint16_t)q->qid;
    c->commit_id = e->commit_id;
    if (op == FUSE_IO_URING_CMD_REGISTER) {
        sqe->addr = (uint64_t)(uintptr_t)e->iov;
        sqe->len = 2;
    }
}

/* Answer the entry's request with an error, without libfuse. */
static void reply_error(struct uzfs_ring_ent *e, int err)
{
    struct fuse_out_header oh = {.len = sizeof oh, .error = -err, .unique = e->unique};
    memcpy(e->hdr->in_out, &oh, sizeof oh);
    e->hdr->ring_ent_in_out.payload_sz = 0;
    e->replied = true;
}

ssize_t uzfs_ring_reply(const struct iovec *iov, int count)
{
    struct uzfs_ring_ent *e = cur_ent;
    if (!e || e->replied || count < 1 || iov[0].iov_len < sizeof(struct fuse_out_header))
        return -1;
    struct fuse_out_header oh;
    memcpy(&oh, iov[0].iov_base, sizeof oh);
    if (oh.unique != e->unique)
        return -1;                        /* a notification: /dev/fuse */
    size_t total = 0, psz = 0;
    for (int i = 0; i < count; i++)
        total += iov[i].iov_len;
    if (total - sizeof oh > UZ_IO_MAX) {
        reply_error(e, EIO);
        return (ssize_t)total;
    }
    for (int i = 0; i < count; i++) {
        const char *p = iov[i].iov_base;
        size_t n = iov[i].iov_len;
        if (i == 0) {
            p += sizeof oh;
            n -= sizeof oh;
        }
        if (n && p != e->payload + psz)  /* a read decompressed in place needs nothing */
            memmove(e->payload + psz, p, n);
        psz += n;
    }
    memcpy(e->hdr->in_out, &oh, sizeof oh);
    e->hdr->ring_ent_in_out.payload_sz = (uint32_t)psz;
    e->replied = true;
    return (ssize_t)total;
}

/* Rebuild the request the kernel put in e in front of its payload, as
 * /dev/fuse gives it.  Its start, or NULL (e is answered: EIO). */
static char *rebuild(struct uzfs_ring_ent *e, struct fuse_in_header *in)
{
    memcpy(in, e->hdr->in_out, sizeof *in);
    uint32_t psz = e->hdr->ring_ent_in_out.payload_sz;
    e->commit_id = e->hdr->ring_ent_in_out.commit_id;
    e->unique = in->unique;
    e->replied = false;
    /* Invariant: the request is header + opcode header + payload, and
     * the opcode header fits op_in (the kernel's own layout). */
    if (in->len < sizeof *in + (uint64_t)psz || psz > UZ_IO_MAX ||
        in->len - sizeof *in - psz > FUSE_URING_OP_IN_OUT_SZ) {
        reply_error(e, EIO);
        return NULL;
    }
    size_t opsz = in->len - sizeof *in - psz;
    char *start = e->payload - opsz - sizeof *in;
    memcpy(start, in, sizeof *in);
    memcpy(start + sizeof *in, e->hdr->op_in, opsz);
    return start;
}

/* Hand the rebuilt request at start to libfuse, on this thread. */
static void process(struct uzfs_ring_queue *q, struct uzfs_ring_ent *e, char *start, uint32_t len)
{
    struct fuse_buf b;
    memset(&b, 0, sizeof b);
    b.mem = start;
    b.size = len;
    cur_ent = e;
    fuse_session_process_buf(q->r->f->se, &b);
    cur_ent = NULL;
    if (!e->replied)
        reply_error(e, EIO);              /* every ring request is answered */
    atomic_fetch_add_explicit(&q->served, 1, memory_order_relaxed);
}

/* Is the request a read or write of a node that is not a disk (an
 * attribute, a pool's control file, a clone file): one that may take
 * long, for the side lane? */
static bool side_request(const struct uzfs *f, const struct fuse_in_header *in)
{
    if (in->opcode != FUSE_READ && in->opcode != FUSE_WRITE)
        return false;
    bool pool_node = f->pp && (in->nodeid >> UZ_INO_DEV_SHIFT) == 0;
    return pool_node || UZ_INO_LOCAL(in->nodeid) != UZ_INO_DISK;
}

struct side_job {
    struct uzfs_ring_queue *q;
    struct uzfs_ring_ent *e;
    char *start;
    uint32_t len;
};

static void *side_main(void *arg)
{
    struct side_job j = *(struct side_job *)arg;
    free(arg);
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    uzfs_cur_worker = NULL;               /* no disk read comes here */
    process(j.q, j.e, j.start, j.len);
    struct uzfs_ring_queue *q = j.q;
    pthread_mutex_lock(&q->done_lock);
    j.e->next_done = q->done_list;
    q->done_list = j.e;
    pthread_mutex_unlock(&q->done_lock);
    uint64_t one = 1;
    ssize_t n = write(q->efd, &one, sizeof one);   /* an eventfd write fails only on overflow */
    (void)n;
    atomic_fetch_sub(&q->r->side_live, 1);
    return NULL;
}

/* Serve the request the kernel put in e: here, or on a side thread (then
 * false: the entry is committed when the thread hands it back). */
static bool serve(struct uzfs_ring_queue *q, struct uzfs_ring_ent *e)
{
    struct fuse_in_header in;
    char *start = rebuild(e, &in);
    if (!start)
        return true;
    if (q->efd >= 0 && side_request(q->r->f, &in)) {
        struct side_job *j = malloc(sizeof *j);
        pthread_attr_t ta;
        if (j && pthread_attr_init(&ta) == 0) {
            *j = (struct side_job){q, e, start, in.len};
            pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
            pthread_attr_setstacksize(&ta, QUEUE_STACK);
            pthread_t t;
            atomic_fetch_add(&q->r->side_live, 1);
            int err = pthread_create(&t, &ta, side_main, j);
            pthread_attr_destroy(&ta);
            if (err == 0)
                return false;
            atomic_fetch_sub(&q->r->side_live, 1);
        }
        free(j);                          /* no thread: served here */
    }
    q->w.rbuf = e->payload;
    process(q, e, start, in.len);
    return true;
}

/* Keep a read of the queue's eventfd in its ring. */
static void queue_efd_read(struct uzfs_ring_queue *q)
{
    void *p;
    struct io_uring_sqe *sqe = get_sqe128(q, &p);
    if (!sqe)
        return;
    io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof q->efd_val, 0);
    io_uring_sqe_set_data(sqe, EFD_TAG);
}

/* Commit the entries the side threads served. */
static void commit_done(struct uzfs_ring_queue *q)
{
    pthread_mutex_lock(&q->done_lock);
    struct uzfs_ring_ent *e = q->done_list;
    q->done_list = NULL;
    pthread_mutex_unlock(&q->done_lock);
    for (; e; e = e->next_done)
        queue_cmd(q, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
}

/* A completion with an error: the entry is gone.  Before the queue has
 * served anything, a refused registration. */
static void lost_entry(struct uzfs_ring_queue *q, struct uzfs_ring_ent *e, int res)
{
    if (!e->live)
        return;
    e->live = false;
    q->live--;
    if (res == -ENOTCONN || res == -ECONNABORTED || res == -ECANCELED ||
        atomic_load(&q->r->stopping))
        return;                           /* the connection or the ring ends */
    char why[160];
    snprintf(why, sizeof why, "the kernel refused a ring entry of queue %u: %s", q->qid,
             strerror(-res));
    uzfs_ring_fallback(q->r->f, why);
}

/* Memory and ring for q.  0 or -errno with q->why. */
static int prepare(struct uzfs_ring_queue *q)
{
    size_t bytes = (size_t)UZ_RING_DEPTH * ENT_SIZE;
    q->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                  -1, 0);
    if (q->mem == MAP_FAILED) {
        q->mem = NULL;
        snprintf(q->why, sizeof q->why, "no memory for the ring entries");
        return -ENOMEM;
    }
    memset(q->mem, 0, bytes);
    pthread_mutex_init(&q->done_lock, NULL);
    q->efd = eventfd(0, EFD_CLOEXEC);     /* none: every request served in place */
    int err = ring_init(&q->ring, 2 * UZ_RING_DEPTH + 2);
    if (err < 0) {
        snprintf(q->why, sizeof q->why, "io_uring_queue_init: %s", strerror(-err));
        return err;
    }
    q->ring_ok = true;
    for (unsigned i = 0; i < UZ_RING_DEPTH; i++) {
        struct uzfs_ring_ent *e = &q->ent[i];
        char *m = q->mem + (size_t)i * ENT_SIZE;
        e->q = q;
        e->hdr = (void *)m;
        e->payload = m + UZ_RING_PREFIX;
        e->iov[0].iov_base = e->hdr;
        e->iov[0].iov_len = sizeof *e->hdr;
        e->iov[1].iov_base = e->payload;
        e->iov[1].iov_len = UZ_IO_MAX;
    }
    return 0;
}

static void *queue_main(void *arg)
{
    struct uzfs_ring_queue *q = arg;
    struct uzfs_ring *r = q->r;
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, UZ_FUSE_WAKE_SIGNAL);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(q->qid, &cpus);
    pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);   /* where allowed */
    q->w.f = r->f;
    q->w.tid = pthread_self();
    q->w.created = true;
    uzfs_cur_worker = &q->w;

    q->err = prepare(q);
    pthread_mutex_lock(&r->lock);
    r->prepared++;
    pthread_cond_broadcast(&r->cond);
    while (r->go == 0)
        pthread_cond_wait(&r->cond, &r->lock);
    int go = r->go;
    pthread_mutex_unlock(&r->lock);
    if (go < 0 || q->err < 0)
        goto out;

    for (unsigned i = 0; i < UZ_RING_DEPTH; i++) {
        q->ent[i].live = true;
        queue_cmd(q, &q->ent[i], FUSE_IO_URING_CMD_REGISTER);
    }
    q->live = UZ_RING_DEPTH;
    if (q->efd >= 0)
        queue_efd_read(q);
    int rc = io_uring_submit(&q->ring);
    bool refused = rc < 0;
    struct io_uring_cqe *cqe;
    /* a refusal completes at once; an accepted entry only with a request */
    while (!refused && io_uring_peek_cqe(&q->ring, &cqe) == 0 && cqe->res < 0 &&
           io_uring_cqe_get_data(cqe) != EFD_TAG) {
        lost_entry(q, io_uring_cqe_get_data(cqe), cqe->res);
        io_uring_cqe_seen(&q->ring, cqe);
        refused = true;
    }
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "io_uring_submit: %s", strerror(-rc));
        uzfs_ring_fallback(r->f, why);
    }
    if (!refused)
        atomic_fetch_add(&r->registered, 1);

    while (q->live > 0 && !atomic_load(&r->stopping)) {
        rc = io_uring_submit_and_wait(&q->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            char why[128];
            snprintf(why, sizeof why, "io_uring_enter: %s", strerror(-rc));
            uzfs_ring_fallback(r->f, why);
            break;
        }
        unsigned head, n = 0;
        bool woken = false;
        io_uring_for_each_cqe(&q->ring, head, cqe) {
            n++;
            if (io_uring_cqe_get_data(cqe) == EFD_TAG) {
                woken = true;
                continue;
            }
            struct uzfs_ring_ent *e = io_uring_cqe_get_data(cqe);
            if (cqe->res < 0) {
                lost_entry(q, e, cqe->res);
                continue;
            }
            if (serve(q, e))
                queue_cmd(q, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
        }
        io_uring_cq_advance(&q->ring, n);
        if (woken) {
            commit_done(q);
            queue_efd_read(q);
        }
    }
out:
    atomic_store(&q->done, true);
    return NULL;
}

/* Stop every queue thread that runs and wait for it. */
static void stop_threads(struct uzfs_ring *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->go == 0)
        r->go = -1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    atomic_store(&r->stopping, true);
    for (unsigned i = 0; i < r->nq; i++) {
        struct uzfs_ring_queue *q = &r->q[i];
        if (!q->created)
            continue;
        /* a signal that lands outside the wait is lost: repeat it */
        while (!atomic_load(&q->done)) {
            pthread_kill(q->tid, UZ_FUSE_WAKE_SIGNAL);
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        pthread_join(q->tid, NULL);
        q->created = false;
    }
}

void uzfs_ring_destroy(struct uzfs_ring *r)
{
    if (!r)
        return;
    stop_threads(r);
    /* side threads write into entries and the queues' done lists */
    while (atomic_load(&r->side_live)) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < r->nq; i++) {
        struct uzfs_ring_queue *q = &r->q[i];
        if (q->ring_ok)
            io_uring_queue_exit(&q->ring);
        if (q->mem) {
            munmap(q->mem, (size_t)UZ_RING_DEPTH * ENT_SIZE);
            pthread_mutex_destroy(&q->done_lock);
            if (q->efd >= 0)
                close(q->efd);
        }
    }
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r->q);
    free(r);
}

int uzfs_ring_create(struct uzfs *f, struct uzfs_ring **out, char *why, size_t size)
{
    *out = NULL;
    struct uzfs_ring *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(why, size, "no memory");
        return -ENOMEM;
    }
    r->f = f;
    r->fd = fuse_session_fd(f->se);
    r->nq = possible_cpus();
    r->q = calloc(r->nq, sizeof *r->q);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (!r->q) {
        free(r);
        snprintf(why, size, "no memory");
        return -ENOMEM;
    }
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setstacksize(&ta, QUEUE_STACK);
    int err = 0;
    unsigned started = 0;
    for (unsigned i = 0; i < r->nq; i++) {
        struct uzfs_ring_queue *q = &r->q[i];
        q->r = r;
        q->qid = i;
        q->efd = -1;
        int e = pthread_create(&q->tid, &ta, queue_main, q);
        if (e != 0) {
            err = -e;
            snprintf(why, size, "cannot start a queue thread: %s", strerror(e));
            break;
        }
        q->created = true;
        started++;
    }
    pthread_attr_destroy(&ta);
    pthread_mutex_lock(&r->lock);
    while (r->prepared < started)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; err == 0 && i < r->nq; i++)
        if (r->q[i].err < 0) {
            err = r->q[i].err;
            snprintf(why, size, "queue %u: %s", i, r->q[i].why);
        }
    if (err < 0) {
        uzfs_ring_destroy(r);
        return err;
    }
    *out = r;
    return 0;
}

bool uzfs_ring_accept(struct uzfs_ring *r, bool offered, size_t max_payload)
{
    char why[160];
    if (!offered) {
        uzfs_ring_fallback(r->f, "the kernel did not offer FUSE_OVER_IO_URING at INIT");
        return false;
    }
    if (max_payload > UZ_IO_MAX) {
        snprintf(why, sizeof why, "requests of %zu bytes exceed the ring entries' %u", max_payload,
                 UZ_IO_MAX);
        uzfs_ring_fallback(r->f, why);
        return false;
    }
    return true;
}

void uzfs_ring_go(struct uzfs_ring *r, bool accepted)
{
    pthread_mutex_lock(&r->lock);
    r->go = accepted ? 1 : -1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

bool uzfs_ring_active(const struct uzfs_ring *r)
{
    return r && atomic_load(&r->registered) == r->nq && !atomic_load(&r->f->ring_fell_back);
}

unsigned uzfs_ring_queues(const struct uzfs_ring *r)
{
    return r ? r->nq : 0;
}

uint64_t uzfs_ring_requests(const struct uzfs_ring *r)
{
    uint64_t n = 0;
    for (unsigned i = 0; r && i < r->nq; i++)
        n += atomic_load_explicit(&r->q[i].served, memory_order_relaxed);
    return n;
}
#endif
