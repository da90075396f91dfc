/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backing_nbd.c - the backing device as an NBD export, through libnbd:
 * far memory, a memory server on another host (`nbdkit uzram`, `nbdkit
 * memory`, any NBD server).  The interface is backing.h; the common part
 * (bitmap, counters, fault hook) backing.c.
 *
 * Names.  nbd://HOST[:PORT]/EXPORT, nbds://[USER@]HOST... (TLS required),
 * nbd+unix:///EXPORT?socket=PATH, nbds+unix://[USER@]/...; the query may
 * carry libnbd's own parameters (tls-psk-file=, tls-certificates=, ...)
 * and two of ours, taken out before libnbd sees the URI.  The TLS user
 * (the PSK identity) is USER, else the process's user name (libnbd's own
 * default, getlogin_r(), fails without a terminal).  Ours:
 *
 *   connections=N  connections to open when the server offers
 *                  multi-conn (1..16, default 4); one when it does not
 *   timeout=S      seconds a request, or a connection attempt, may take
 *                  (1..3600, default 10)
 *
 * Connections.  conn[0..nconn) each have a mutex and a libnbd handle
 * (NULL while down).  A transfer (or a batch) locks the connections it
 * uses in ascending index order, so batches and single reads never wait
 * on each other in a cycle.  A single transfer takes the first free
 * connection from a rotating start (trylock), else waits for one.
 *
 * In flight.  Every request is libnbd aio: a transfer (or a batch)
 * issues all its writes spread over the connections, then drives all
 * their sockets at once with poll(2) until each is answered or the
 * deadline (timeout=) passes.  The buffers are the callers' and are only
 * referenced while the call runs: a connection that times out is closed
 * (nbd_close) before the call returns, so no late reply can land in a
 * buffer that has gone back to its owner.
 *
 * Senders.  Writeback batches (nbd_start) are not sent by the writer:
 * they are queued for two sender threads (started at the first batch),
 * each of which takes the oldest, sends it and waits for its answers
 * (the second try included), then marks it done; nbd_finish waits for
 * that.  So the writer fills batches while two are at the server and
 * others wait their turn, and the socket's cost (on loopback, the
 * receiver's TCP work too) is paid beside the filling, not after it.
 * The queue's lock is a leaf, held only to queue, take and mark; a
 * sender holds no connection between two batches, so it may wait for
 * one, and never waits for anything of the writer's.
 *
 * Reconnection.  A connection that dies (the server went away, a reset,
 * a timeout) is closed; so is one found hung up when it is taken (an idle
 * socket that is readable: hung_up()), and one made before any other
 * connection was last seen dead (nb->deaths: a server that died took
 * them all, even those whose end has not reached us yet, so a second try
 * never goes to the server that failed the first); the next use connects again, at most once per
 * second per connection while the server stays away (a failure in the
 * meantime is immediate, so a dead remote costs -EIO, not a wait).  A
 * transfer (a read, a write, a batch of writeback) that failed because its
 * connection died is tried once more on a fresh connection; one the server
 * answered with an error, or one that timed out, is not (so a request
 * waits at most timeout= once, and a connection attempt timeout= more).
 * Writes are idempotent: a block written twice holds the same bytes.  A
 * server that comes back smaller than it was, or read-only, is refused.
 *
 * Never wrong bytes.  A memory server that restarts comes back empty, and
 * a write that timed out may still land after its block was reused, so
 * what a read returns is checked: every block written keeps a 32-bit
 * XXH3 check of what was sent (sum[], 4 bytes per block of address space,
 * resident only where blocks were written: 0.1% of what went out).  A
 * read whose bytes do not match is -EIO, counted like any failed read.
 *
 * Closing never waits for the server: handles are closed, not shut down.
 */
#define _GNU_SOURCE
#include "backing.h"
#include "error.h"
#include "hash.h"
#include "mem.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dynlib.h"

/* libnbd is loaded when the first NBD backing device is opened (dynlib.c),
 * as the codecs' libraries are: a process that never names one does not
 * map it, nor what it pulls in (libxml2, ICU, libstdc++: about 2 MiB
 * resident in every process that links it, a server of swap included).
 * Its functions are called through a table of pointers of their own
 * types; the macros make the calls below read as calls into libnbd. */
#define NBD_FNS(X) X(nbd_create) X(nbd_close) X(nbd_get_errno) X(nbd_get_error) \
    X(nbd_get_size) X(nbd_get_block_size) X(nbd_aio_get_fd) X(nbd_supports_uri) \
    X(nbd_set_uri_allow_local_file) X(nbd_is_read_only) X(nbd_can_multi_conn) \
    X(nbd_aio_pwrite) X(nbd_aio_pread) X(nbd_aio_notify_write) X(nbd_aio_notify_read) \
    X(nbd_aio_is_ready) X(nbd_aio_is_dead) X(nbd_aio_is_connecting) X(nbd_aio_is_closed) \
    X(nbd_aio_get_direction) X(nbd_aio_connect_uri) X(nbd_aio_command_completed) \
    X(nbd_set_tls_username)
#define NBD_FN_FIELD(f) __typeof__(f) *f;
#define NBD_FN_ENTRY(f) {#f, &nbd_fn.f},
static struct { NBD_FNS(NBD_FN_FIELD) } nbd_fn;
static const struct uz_dynsym nbd_syms[] = { NBD_FNS(NBD_FN_ENTRY) {NULL, NULL} };
#ifndef UZ_SONAME_NBD
#define UZ_SONAME_NBD "libnbd.so.0"
#endif
static struct uz_dynlib nbd_lib = { UZ_SONAME_NBD, nbd_syms, 0 };
#define nbd_create (nbd_fn.nbd_create)
#define nbd_close (nbd_fn.nbd_close)
#define nbd_get_errno (nbd_fn.nbd_get_errno)
#define nbd_get_error (nbd_fn.nbd_get_error)
#define nbd_get_size (nbd_fn.nbd_get_size)
#define nbd_get_block_size (nbd_fn.nbd_get_block_size)
#define nbd_aio_get_fd (nbd_fn.nbd_aio_get_fd)
#define nbd_supports_uri (nbd_fn.nbd_supports_uri)
#define nbd_set_uri_allow_local_file (nbd_fn.nbd_set_uri_allow_local_file)
#define nbd_is_read_only (nbd_fn.nbd_is_read_only)
#define nbd_can_multi_conn (nbd_fn.nbd_can_multi_conn)
#define nbd_aio_pwrite (nbd_fn.nbd_aio_pwrite)
#define nbd_aio_pread (nbd_fn.nbd_aio_pread)
#define nbd_aio_notify_write (nbd_fn.nbd_aio_notify_write)
#define nbd_aio_notify_read (nbd_fn.nbd_aio_notify_read)
#define nbd_aio_is_ready (nbd_fn.nbd_aio_is_ready)
#define nbd_aio_is_dead (nbd_fn.nbd_aio_is_dead)
#define nbd_aio_is_connecting (nbd_fn.nbd_aio_is_connecting)
#define nbd_aio_is_closed (nbd_fn.nbd_aio_is_closed)
#define nbd_aio_get_direction (nbd_fn.nbd_aio_get_direction)
#define nbd_aio_connect_uri (nbd_fn.nbd_aio_connect_uri)
#define nbd_aio_command_completed (nbd_fn.nbd_aio_command_completed)
#define nbd_set_tls_username (nbd_fn.nbd_set_tls_username)

#define BLK 4096u
#define MAX_CONN 16
#define DEFAULT_CONN 4
#define DEFAULT_TIMEOUT_S 10
#define RETRY_NS 1000000000ull   /* between connection attempts to a server that is away */
#define BATCH 128                /* transfers in flight at most, per call */
#define REQ_BLOCKS 128           /* blocks joined into one request at most (512 KiB) */
#define SENDERS 2                /* threads sending writeback batches */
#define SENDER_STACK (256u * 1024)

struct conn {
    pthread_mutex_t mu;
    struct nbd_handle *h;        /* NULL: down */
    uint64_t retry_at;           /* down after a failed attempt: not before this (ns) */
    unsigned deaths;             /* nb->deaths when it was made */
};

struct job;

/* The senders: threads that send the writeback batches handed to them
 * (nbd_start) and wait for their answers, so that the writer fills the
 * next batches meanwhile (q: FIFO, under mu; done signalled on done). */
struct senders {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct job *head, *tail;
    unsigned n;                  /* threads running (started at the first batch) */
    bool tried;                  /* started, or failed to: do not try again */
    bool stop;
    pthread_t th[SENDERS];
};

struct nbd_backing {
    unsigned nconn;
    int timeout_ms;
    uint64_t size;               /* the export's size when first opened */
    _Atomic unsigned next;       /* where a single transfer starts looking */
    _Atomic unsigned deaths;     /* connections seen dead so far (any of them) */
    uint32_t *sum;               /* per block: check of what was written (0: never) */
    size_t sum_len;
    struct conn conn[MAX_CONN];
    struct senders snd;
    char uri[PATH_MAX];          /* what libnbd is given */
    char tls_user[64];           /* the TLS user unless the URI names one: the process's */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t check_of(const void *buf, size_t n)
{
    return (uint32_t)(uz_hash(buf, n) >> 32) | 1u;   /* never 0; XXH3, AVX2 where the CPU has it */
}

/* Take our parameters out of uri's query into nb; the rest into nb->uri. */
static int parse_uri(struct nbd_backing *nb, const char *uri, unsigned *conns)
{
    *conns = DEFAULT_CONN;
    nb->timeout_ms = DEFAULT_TIMEOUT_S * 1000;
    const char *q = strchr(uri, '?');
    size_t base = q ? (size_t)(q - uri) : strlen(uri);
    if (base >= sizeof nb->uri)
        return uz_error(-ENAMETOOLONG, "backing_dev: URI too long");
    memcpy(nb->uri, uri, base);
    nb->uri[base] = 0;
    if (!q)
        return 0;
    char sep = '?';
    for (const char *p = q + 1; *p;) {
        size_t len = strcspn(p, "&");
        char kv[256];
        if (len >= sizeof kv)
            return uz_error(-EINVAL, "backing_dev: a URI parameter is too long");
        memcpy(kv, p, len);
        kv[len] = 0;
        p += len + (p[len] == '&');
        char *end;
        if (strncmp(kv, "connections=", 12) == 0) {
            unsigned long x = strtoul(kv + 12, &end, 10);
            if (!kv[12] || *end || x < 1 || x > MAX_CONN)
                return uz_error(-EINVAL, "backing_dev: connections=%s: give 1 to %d", kv + 12,
                                MAX_CONN);
            *conns = (unsigned)x;
        } else if (strncmp(kv, "timeout=", 8) == 0) {
            unsigned long x = strtoul(kv + 8, &end, 10);
            if (!kv[8] || *end || x < 1 || x > 3600)
                return uz_error(-EINVAL, "backing_dev: timeout=%s: give 1 to 3600 seconds", kv + 8);
            nb->timeout_ms = (int)x * 1000;
        } else if (len) {
            size_t have = strlen(nb->uri);
            if (have + 1 + len >= sizeof nb->uri)
                return uz_error(-ENAMETOOLONG, "backing_dev: URI too long");
            nb->uri[have] = sep;
            memcpy(nb->uri + have + 1, kv, len + 1);
            sep = '&';
        }
    }
    return 0;
}

/* Poll h's socket once for what libnbd waits for, up to ms; then let it
 * move.  0, or -ETIMEDOUT, or -ENOTCONN (the handle died). */
static int drive(struct nbd_handle **hs, unsigned n, int ms)
{
    struct pollfd pfd[MAX_CONN];
    for (unsigned i = 0; i < n; i++) {
        int fd = nbd_aio_get_fd(hs[i]);
        if (fd < 0)
            return -ENOTCONN;
        unsigned dir = nbd_aio_get_direction(hs[i]);
        pfd[i] = (struct pollfd){.fd = fd,
                                 .events = (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                                                   ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0))};
    }
    int r = poll(pfd, n, ms);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    if (r == 0)
        return -ETIMEDOUT;
    for (unsigned i = 0; i < n; i++) {
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
            nbd_aio_notify_read(hs[i]);
        else if (pfd[i].revents & POLLOUT)
            nbd_aio_notify_write(hs[i]);
    }
    return 0;
}

static int remaining_ms(uint64_t deadline)
{
    uint64_t t = now_ns();
    return t >= deadline ? 0 : (int)((deadline - t + 999999) / 1000000);
}

static bool dead(struct nbd_handle *h)
{
    return nbd_aio_is_dead(h) || nbd_aio_is_closed(h);
}

/* A new handle, connected to nb->uri within the timeout: 0 and *out, or
 * -errno with a message. */
static int connect_one(struct nbd_backing *nb, struct nbd_handle **out)
{
    struct nbd_handle *h = nbd_create();
    if (!h)
        return uz_error(-ENOMEM, "backing_dev: libnbd: %s", nbd_get_error());
    int err = 0;
    if (!nbd_supports_uri(h)) {
        err = uz_error(-ENOTSUP, "backing_dev: this libnbd was built without URI support");
        goto fail;
    }
    nbd_set_uri_allow_local_file(h, true);   /* tls-psk-file=, tls-certificates= */
    /* the TLS (PSK) user when the URI names none: libnbd would ask
     * getlogin_r(), which fails without a terminal (a systemd unit) */
    if (nb->tls_user[0] && nbd_set_tls_username(h, nb->tls_user) == -1) {
        err = uz_error(-EINVAL, "backing_dev: TLS user %s: %s", nb->tls_user, nbd_get_error());
        goto fail;
    }
    if (nbd_aio_connect_uri(h, nb->uri) == -1) {
        int e = nbd_get_errno() ? nbd_get_errno() : EINVAL;
        err = uz_error(-e, "backing_dev: %s: %s", nb->uri, nbd_get_error());
        goto fail;
    }
    uint64_t deadline = now_ns() + (uint64_t)nb->timeout_ms * 1000000ull;
    while (nbd_aio_is_connecting(h)) {
        int ms = remaining_ms(deadline);
        err = ms ? drive(&h, 1, ms) : -ETIMEDOUT;
        if (err == -ETIMEDOUT) {
            err = uz_error(err, "backing_dev: %s: no connection within %d s", nb->uri,
                           nb->timeout_ms / 1000);
            goto fail;
        }
        if (err < 0)
            break;
    }
    if (!nbd_aio_is_ready(h)) {
        const char *why = nbd_get_error();
        err = uz_error(-ECONNREFUSED, "backing_dev: %s: cannot connect: %s", nb->uri,
                       why ? why : "connection failed");
        goto fail;
    }
    if (nbd_is_read_only(h) == 1) {
        err = uz_error(-EROFS, "backing_dev: %s: the export is read-only", nb->uri);
        goto fail;
    }
    int64_t size = nbd_get_size(h);
    if (size < 0 || (nb->size && (uint64_t)size < nb->size)) {
        err = uz_error(-EIO, "backing_dev: %s: the export is %lld bytes, it was %llu", nb->uri,
                       (long long)size, (unsigned long long)nb->size);
        goto fail;
    }
    *out = h;
    return 0;
fail:
    nbd_close(h);
    return err;
}

/* Has the server hung up on an idle handle (c's lock held, nothing in
 * flight)?  Its socket then reads as the end of the stream (a restart, a
 * crash): found here, before a request is lost on it.  Bytes waiting are
 * not an end (a TLS server sends session tickets after the handshake):
 * libnbd reads them with the next reply. */
static bool hung_up(struct nbd_handle *h)
{
    struct pollfd pfd = {.fd = nbd_aio_get_fd(h), .events = POLLIN | POLLRDHUP};
    if (pfd.fd < 0)
        return true;
    if (poll(&pfd, 1, 0) != 1)
        return false;
    char c;
    ssize_t r = recv(pfd.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Bring c (locked) up if it is down and may be tried.  0 or -errno. */
static int conn_up(struct nbd_backing *nb, struct conn *c)
{
    unsigned deaths = atomic_load_explicit(&nb->deaths, memory_order_relaxed);
    if (c->h && !dead(c->h) && !hung_up(c->h) && c->deaths == deaths)
        return 0;
    if (c->h) {
        nbd_close(c->h);
        c->h = NULL;
    }
    uint64_t t = now_ns();
    if (t < c->retry_at)
        return -ENOTCONN;
    int err = connect_one(nb, &c->h);
    if (err < 0)
        c->retry_at = now_ns() + RETRY_NS;
    else
        c->deaths = deaths;
    return err;
}

static void conn_drop(struct conn *c)
{
    if (c->h)
        nbd_close(c->h);
    c->h = NULL;
}

struct pending {
    unsigned ci;                 /* index into the flight's connections */
    int64_t cookie;              /* < 0: not issued (err says why) */
    struct uz_bio *bio;          /* bio[0..cnt): one request (consecutive blocks) */
    unsigned cnt;
    size_t len;                  /* bytes of the request */
    bool transport;              /* failed because the connection died */
};

/* Requests on their way: the connections they hold (locked) and their
 * cookies, from flight_start to flight_finish. */
struct flight {
    bool write;
    unsigned nh;                 /* connections held, conn[k] with handle hs[k] */
    unsigned conn[MAX_CONN];
    struct nbd_handle *hs[MAX_CONN];
    unsigned np;
    struct pending p[BATCH];
    uint64_t deadline;
};

/* Lock up to want connections without waiting (trylock from a rotating
 * start); if none is free and may_wait, wait for one (holding nothing
 * else, so no cycle).  The number locked into f->conn. */
static unsigned lock_conns(struct nbd_backing *nb, struct flight *f, unsigned want, bool may_wait)
{
    unsigned start = atomic_fetch_add_explicit(&nb->next, 1, memory_order_relaxed);
    unsigned got = 0;
    for (unsigned k = 0; k < nb->nconn && got < want; k++) {
        unsigned c = (start + k) % nb->nconn;
        if (pthread_mutex_trylock(&nb->conn[c].mu) == 0)
            f->conn[got++] = c;
    }
    if (got == 0 && may_wait) {
        f->conn[0] = start % nb->nconn;
        pthread_mutex_lock(&nb->conn[f->conn[0]].mu);
        got = 1;
    }
    return got;
}

/* Group the transfers of v[0..n) still to do (err == 1) into requests:
 * runs of whole blocks that follow each other on the device and in
 * memory (a batch's blocks mostly do: they are allocated first free
 * first) go as one, up to REQ_BLOCKS.  Fewer, larger requests cost
 * fewer system calls and wake-ups on both sides than one a connection:
 * a batch of writeback_batch_size 128 (the default) is one request on
 * one connection, and the next batch goes on another while it is in
 * flight. */
static unsigned make_requests(struct pending *p, struct uz_bio *v, unsigned n)
{
    unsigned np = 0;
    for (unsigned i = 0; i < n; i++) {
        if (v[i].err != 1)
            continue;
        struct pending *q = np ? &p[np - 1] : NULL;
        struct uz_bio *last = q ? &q->bio[q->cnt - 1] : NULL;
        if (q && last + 1 == &v[i] && q->cnt < REQ_BLOCKS && last->whole && v[i].blk == last->blk + 1 &&
            (uint8_t *)v[i].buf == (uint8_t *)last->buf + BLK) {
            /* the one before goes as its whole block (zeros after its
             * object: backing.h, uz_bio.whole) */
            q->cnt++;
            q->len = (size_t)(q->cnt - 1) * BLK + v[i].n;
            continue;
        }
        p[np++] = (struct pending){.bio = &v[i], .cnt = 1, .len = v[i].n};
    }
    return np;
}

/* Let the sockets take what libnbd still has to send of f's requests
 * (what did not fit at once), without waiting: the server gets the whole
 * batch while the caller prepares the next. */
static void push(struct flight *f)
{
    for (unsigned k = 0; k < f->nh; k++) {
        struct nbd_handle *h = f->hs[k];
        for (int round = 0; round < 64; round++) {
            if (!(nbd_aio_get_direction(h) & LIBNBD_AIO_DIRECTION_WRITE) || dead(h))
                break;
            struct pollfd pfd = {.fd = nbd_aio_get_fd(h), .events = POLLOUT};
            if (pfd.fd < 0 || poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
                break;
            nbd_aio_notify_write(h);
        }
    }
}

/* Send the transfers of v[0..n) marked to do (err == 1).  0: sent, or
 * failed at once (then f->np == 0: nothing is in flight); -EAGAIN: no
 * connection was free and !may_wait (nothing done, nothing held). */
static int flight_start(struct nbd_backing *nb, bool write, struct uz_bio *v, unsigned n,
                        bool may_wait, struct flight *f)
{
    f->write = write;
    f->np = 0;
    f->nh = 0;
    unsigned nreq = make_requests(f->p, v, n);
    unsigned want = nreq < nb->nconn ? nreq : nb->nconn;
    unsigned got = want ? lock_conns(nb, f, want, may_wait) : 0;
    if (got == 0)
        return want ? -EAGAIN : 0;
    int uperr = -ENOTCONN;
    for (unsigned k = 0; k < got; k++) {
        struct conn *c = &nb->conn[f->conn[k]];
        int err = conn_up(nb, c);
        if (err == 0) {
            f->conn[f->nh] = f->conn[k];
            f->hs[f->nh++] = c->h;
        } else {
            uperr = err;
            pthread_mutex_unlock(&c->mu);
        }
    }
    if (f->nh == 0) {
        for (unsigned i = 0; i < n; i++)
            if (v[i].err == 1)
                v[i].err = uperr;   /* the server is away: no second try now */
        return 0;
    }
    f->np = nreq;
    for (unsigned i = 0; i < f->np; i++) {
        struct pending *q = &f->p[i];
        q->ci = i % f->nh;
        struct nbd_handle *h = f->hs[q->ci];
        uint64_t off = q->bio->blk * BLK;
        q->cookie = write ? nbd_aio_pwrite(h, q->bio->buf, q->len, off, NBD_NULL_COMPLETION, 0)
                          : nbd_aio_pread(h, q->bio->buf, q->len, off, NBD_NULL_COMPLETION, 0);
        q->transport = false;
        if (q->cookie < 0) {
            q->bio->err = -(nbd_get_errno() ? nbd_get_errno() : EIO);
            q->transport = dead(h);
        } else {
            q->bio->err = 1;   /* in flight */
        }
    }
    f->deadline = now_ns() + (uint64_t)nb->timeout_ms * 1000000ull;
    push(f);
    return 0;
}

/* Wait for every answer of f (or its deadline), close the connections
 * that died or timed out, unlock f's connections.  Each request's result
 * goes to all its transfers; p[i].transport says which died with their
 * connection. */
static void flight_finish(struct nbd_backing *nb, struct flight *f)
{
    struct pending *p = f->p;
    unsigned np = f->np;
    bool broken[MAX_CONN] = {false};
    while (np) {
        unsigned left = 0;
        for (unsigned i = 0; i < np; i++) {
            if (p[i].bio->err != 1)
                continue;
            struct nbd_handle *h = f->hs[p[i].ci];
            int r = nbd_aio_command_completed(h, (uint64_t)p[i].cookie);
            if (r == 1) {
                p[i].bio->err = 0;
            } else if (r < 0) {
                p[i].bio->err = -(nbd_get_errno() ? nbd_get_errno() : EIO);
                p[i].transport = dead(h);
            } else if (dead(h)) {
                p[i].bio->err = -ENOTCONN;
                p[i].transport = true;
            } else {
                left++;
            }
        }
        if (!left)
            break;
        /* drive the handles that still owe answers */
        struct nbd_handle *wait[MAX_CONN];
        unsigned nw = 0, idx[MAX_CONN];
        for (unsigned c = 0; c < f->nh; c++) {
            bool owes = false;
            for (unsigned i = 0; i < np && !owes; i++)
                owes = p[i].bio->err == 1 && p[i].ci == c;
            if (owes) {
                idx[nw] = c;
                wait[nw++] = f->hs[c];
            }
        }
        int ms = remaining_ms(f->deadline);
        int err = ms ? drive(wait, nw, ms) : -ETIMEDOUT;
        if (err == -ETIMEDOUT) {
            for (unsigned i = 0; i < np; i++)
                if (p[i].bio->err == 1) {
                    p[i].bio->err = -ETIMEDOUT;
                    broken[p[i].ci] = true;
                }
            break;
        }
        if (err < 0) {
            for (unsigned w = 0; w < nw; w++)
                if (dead(wait[w]) || nbd_aio_get_fd(wait[w]) < 0)
                    broken[idx[w]] = true;
            for (unsigned i = 0; i < np; i++)
                if (p[i].bio->err == 1 && broken[p[i].ci]) {
                    p[i].bio->err = -ENOTCONN;
                    p[i].transport = true;
                }
        }
    }
    for (unsigned i = 0; i < np; i++)
        for (unsigned k = 1; k < p[i].cnt; k++)
            p[i].bio[k].err = p[i].bio[0].err;
    /* a connection that timed out is closed here, so nothing still in
     * flight on it can reach a caller's buffer after we return */
    for (unsigned c = 0; c < f->nh; c++) {
        struct conn *cn = &nb->conn[f->conn[c]];
        if (dead(f->hs[c]))
            atomic_fetch_add_explicit(&nb->deaths, 1, memory_order_relaxed);
        if (broken[c] || dead(f->hs[c]))
            conn_drop(cn);
        pthread_mutex_unlock(&cn->mu);
    }
    f->nh = 0;
}

/* After a flight: the final errors, and the checks (set for what was
 * written; compared for what was read). */
static void settle(struct nbd_backing *nb, bool write, struct uz_bio *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (v[i].err == 1 || v[i].err == -ENOTCONN)
            v[i].err = -EIO;
        if (v[i].err < 0)
            continue;
        uint32_t *sum = &nb->sum[v[i].blk];
        if (write) {
            *sum = check_of(v[i].buf, v[i].n);
        } else if (*sum != check_of(v[i].buf, v[i].n)) {
            memset(v[i].buf, 0, v[i].n);   /* no wrong byte leaves */
            v[i].err = -EIO;
            uz_error(-EIO, "backing_dev: %s: block %llu does not read back as written "
                     "(the server lost it, or restarted empty)", nb->uri,
                     (unsigned long long)v[i].blk);
        }
    }
}

/* Up to BATCH transfers of v[0..n) marked to do (err == 1), waited for:
 * tried, then those whose connection died tried once more; the final
 * errors and the checks set (settle).  The caller holds no connection
 * (so it may wait for one). */
static void rw_tries(struct nbd_backing *nb, bool write, struct uz_bio *v, unsigned n,
                     struct flight *f)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        flight_start(nb, write, v, n, true, f);
        flight_finish(nb, f);
        bool again = false;
        for (unsigned i = 0; i < f->np; i++)
            if (f->p[i].bio->err < 0 && f->p[i].transport && attempt == 0)
                for (unsigned k = 0; k < f->p[i].cnt; k++) {
                    f->p[i].bio[k].err = 1;   /* once more, on a fresh connection */
                    again = true;
                }
        if (!again)
            break;
    }
    settle(nb, write, v, n);
}

static void rw_chunk(struct nbd_backing *nb, bool write, struct uz_bio *v, unsigned n)
{
    struct flight f;
    for (unsigned i = 0; i < n; i++)
        v[i].err = 1;   /* to do */
    rw_tries(nb, write, v, n, &f);
}

static void nbd_rw(struct uz_backing *b, bool write, struct uz_bio *v, unsigned n)
{
    for (unsigned i = 0; i < n; i += BATCH)
        rw_chunk(b->impl, write, v + i, n - i < BATCH ? n - i : BATCH);
}

/* A batch of writeback handed to the senders: its transfers, and the
 * flight a sender sends them with. */
struct job {
    struct job *next;
    struct uz_bio *v;
    unsigned n;
    bool done;                   /* under snd.mu: the results are in v */
    struct flight f;
};

/* A sender: takes the oldest batch queued, sends it and waits for its
 * answers (rw_tries: the second try of a write whose connection died
 * included; the sender holds no connection between two jobs, so it may
 * wait for one), then marks it done.  Two senders keep two batches at
 * the server while the writer fills the next. */
static void *sender_main(void *arg)
{
    struct nbd_backing *nb = arg;
    struct senders *q = &nb->snd;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->work, &q->mu);
        if (!q->head)
            break;
        struct job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        pthread_mutex_unlock(&q->mu);
        rw_tries(nb, true, j->v, j->n, &j->f);
        pthread_mutex_lock(&q->mu);
        j->done = true;
        pthread_cond_broadcast(&q->done);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Start the senders (q->mu held), once.  With none (pthread_create
 * failed) batches are sent by the caller, waited for at once. */
static void senders_start(struct nbd_backing *nb)
{
    struct senders *q = &nb->snd;
    q->tried = true;
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    /* a small stack: a locked server (mlockall) pays for every byte */
    pthread_attr_setstacksize(&ta, SENDER_STACK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* signals stay the process's */
    while (q->n < SENDERS && pthread_create(&q->th[q->n], &ta, sender_main, nb) == 0)
        q->n++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&ta);
    if (q->n == 0)
        uz_error(-EAGAIN, "backing_dev: %s: no sender thread; writeback batches are sent "
                 "one at a time", nb->uri);
}

/* Writes in flight while the caller prepares more (backing.h,
 * uz_backing_write_start): the batch is queued for the senders and
 * start returns at once; never -EAGAIN (the caller holds no connection:
 * the senders do). */
static int nbd_start(struct uz_backing *b, struct uz_bio *v, unsigned n, bool may_wait,
                     void **state)
{
    (void)may_wait;
    struct nbd_backing *nb = b->impl;
    struct senders *q = &nb->snd;
    *state = NULL;
    struct job *j = n <= BATCH ? uz_malloc(sizeof *j) : NULL;
    pthread_mutex_lock(&q->mu);
    if (!q->tried)
        senders_start(nb);
    if (!j || q->n == 0) {
        pthread_mutex_unlock(&q->mu);
        uz_free(j);
        nbd_rw(b, true, v, n);   /* done at once */
        return 0;
    }
    for (unsigned i = 0; i < n; i++)
        v[i].err = 1;
    *j = (struct job){.v = v, .n = n};
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    *state = j;
    return 0;
}

/* Wait until a sender has done the batch (each v[i].err set, the checks
 * of what went out kept).  A sender ends its batch within about 2 x
 * timeout= (rw_tries). */
static void nbd_finish(struct uz_backing *b, struct uz_bio *v, unsigned n, void *state)
{
    (void)v;
    (void)n;
    struct job *j = state;
    if (!j)
        return;
    struct senders *q = &((struct nbd_backing *)b->impl)->snd;
    pthread_mutex_lock(&q->mu);
    while (!j->done)
        pthread_cond_wait(&q->done, &q->mu);
    pthread_mutex_unlock(&q->mu);
    uz_free(j);
}

static void nbd_close_all(struct uz_backing *b)
{
    struct nbd_backing *nb = b->impl;
    /* no batch is queued at close: every writeback has waited for its own */
    struct senders *q = &nb->snd;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->mu);
    for (unsigned t = 0; t < q->n; t++)
        pthread_join(q->th[t], NULL);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->mu);
    for (unsigned c = 0; c < nb->nconn; c++) {
        conn_drop(&nb->conn[c]);
        pthread_mutex_destroy(&nb->conn[c].mu);
    }
    if (nb->sum)
        uz_vm_unreserve(nb->sum, nb->sum_len);
    uz_free(nb);
}

static const struct uz_backing_ops nbd_ops = {
    .kind = "nbd",
    .rw = nbd_rw,
    .start = nbd_start,
    .finish = nbd_finish,
    .close = nbd_close_all,
};

int uz_backing_nbd_open(struct uz_backing *b, const char *uri)
{
    int loaded = uz_dynlib_load(&nbd_lib);   /* its message names the library */
    if (loaded < 0)
        return loaded;
    struct nbd_backing *nb = uz_calloc(1, sizeof *nb);
    if (!nb)
        return uz_error(-ENOMEM, "backing_dev: out of memory");
    unsigned want;
    int err = parse_uri(nb, uri, &want);
    struct passwd pw, *pwp = NULL;
    char pwbuf[1024];
    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp &&
        strlen(pw.pw_name) < sizeof nb->tls_user)
        strcpy(nb->tls_user, pw.pw_name);
    struct nbd_handle *h = NULL;
    if (err == 0)
        err = connect_one(nb, &h);
    if (err < 0) {
        uz_free(nb);
        return err;
    }
    int64_t size = nbd_get_size(h);
    int64_t minbs = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    int64_t maxbs = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    if (minbs <= 0)
        minbs = 1;
    if (size < BLK) {
        nbd_close(h);
        uz_free(nb);
        return uz_error(-EINVAL, "backing_dev: %s: the export is smaller than one 4 KiB block", uri);
    }
    if (minbs > BLK || BLK % minbs || (maxbs > 0 && maxbs < BLK)) {
        nbd_close(h);
        uz_free(nb);
        return uz_error(-EINVAL, "backing_dev: %s: the server's block sizes (%lld..%lld) do not "
                        "take 4 KiB transfers", uri, (long long)minbs, (long long)maxbs);
    }
    nb->size = (uint64_t)size;
    nb->nconn = nbd_can_multi_conn(h) == 1 ? want : 1;
    b->nblocks = nb->size / BLK;
    nb->sum_len = (size_t)((b->nblocks * sizeof(uint32_t) + 4095) / 4096 * 4096);
    nb->sum = b->nblocks ? uz_vm_reserve(nb->sum_len) : NULL;
    if (b->nblocks && !nb->sum) {
        nbd_close(h);
        uz_free(nb);
        return uz_error(-ENOMEM, "backing_dev: no address space for %llu blocks' checks",
                        (unsigned long long)b->nblocks);
    }
    for (unsigned c = 0; c < nb->nconn; c++)
        pthread_mutex_init(&nb->conn[c].mu, NULL);
    pthread_mutex_init(&nb->snd.mu, NULL);
    pthread_cond_init(&nb->snd.work, NULL);
    pthread_cond_init(&nb->snd.done, NULL);
    nb->conn[0].h = h;
    /* the others now, so that a server that refuses a second connection
     * says so at open; one that fails later is retried on use */
    for (unsigned c = 1; c < nb->nconn; c++) {
        err = connect_one(nb, &nb->conn[c].h);
        if (err < 0) {
            b->impl = nb;
            nbd_close_all(b);
            return err;
        }
    }
    b->ops = &nbd_ops;
    b->impl = nb;
    b->io_align = (uint32_t)minbs;
    b->batch = BATCH;
    return 0;
}
