/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse_uring.h - the FUSE server's io_uring transport (fuse_uring.c):
 * requests served from per-CPU rings instead of read(2) and write(2) on
 * /dev/fuse.  Internal to the server (fuse_server.c); include fuse.h with
 * UZ_FUSE_INTERNAL first.
 *
 * Life of a transport, driven by fuse_server.c:
 *
 *     uzfs_ring_probe()          before the mount: may the kernel do it?
 *     uzfs_ring_create()         before the workers start: one queue per
 *                              possible CPU, each a thread with its ring and
 *                              entries, ready to register
 *     uzfs_ring_accept()         in the INIT reply: may FUSE_OVER_IO_URING be
 *                              accepted for this connection?
 *     uzfs_ring_go()             once the INIT reply is written: the queues
 *                              register their entries (or end)
 *     uzfs_ring_reply()          the session's writev: a reply to a request
 *                              that came through a ring goes back through it
 *     uzfs_ring_destroy()        at stop
 *
 * Where the kernel says no at any step the server stays on /dev/fuse,
 * which it serves in any case (INIT, FORGET, INTERRUPT, and everything
 * until the rings are ready); uzfs_ring_fallback() states the reason once.
 */
#ifndef UZRAM_FUSE_URING_H
#define UZRAM_FUSE_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct uzfs;
struct uzfs_ring;

/* Ring entries per queue, and the bytes before each entry's payload (its
 * header, and room to rebuild a request as /dev/fuse would give it). */
#define UZ_RING_DEPTH  2
#define UZ_RING_PREFIX 4096u

/*
 * Can this kernel serve this process's FUSE mounts over io_uring?  Reads
 * /sys/module/fuse/parameters/enable_uring and makes (and drops) a ring
 * with 128-byte SQEs.  0; or a negative errno (-EOPNOTSUPP, -ENOSYS,
 * -EPERM) with the reason, a phrase, in why (size bytes).
 */
int uzfs_ring_probe(char *why, size_t size);

/*
 * Start f's queues: one thread per possible CPU (pinned to it where it
 * may run), each with its ring and UZ_RING_DEPTH entries of
 * UZ_RING_PREFIX + UZ_IO_MAX bytes, touched; returns once each is ready to
 * register or has failed.  0 and the transport in *out; or a negative
 * errno with the reason in why, and nothing left behind.
 */
int uzfs_ring_create(struct uzfs *f, struct uzfs_ring **out, char *why, size_t size);

/*
 * The INIT reply is being written: may FUSE_OVER_IO_URING be set in it?
 * offered: the kernel offered it in the request; max_payload: the largest
 * request of the connection the reply makes (max(8 KiB, max_write,
 * max_pages pages)).  True when every queue is ready and its payload
 * buffers are large enough; else false, with the reason given to
 * uzfs_ring_fallback().
 */
bool uzfs_ring_accept(struct uzfs_ring *r, bool offered, size_t max_payload);

/*
 * The INIT reply has been written (accepted: with the flag, and the write
 * succeeded).  Accepted, every queue registers its entries and serves;
 * otherwise the queues end.  Called once.
 */
void uzfs_ring_go(struct uzfs_ring *r, bool accepted);

/*
 * The session's writev, on any thread: when the calling thread is a
 * queue's serving a request that came through its ring and iov is that
 * request's reply (its unique), the reply is put in the ring entry
 * (header and payload) and its length returned, to be committed when the
 * handler returns.  -1 otherwise: the caller writes to /dev/fuse.
 */
ssize_t uzfs_ring_reply(const struct iovec *iov, int count);

/*
 * The transport's state, for DIR/.transport: is it serving (every queue
 * registered, no failure), how many queues and entries, how many requests
 * came through the rings.
 */
bool uzfs_ring_active(const struct uzfs_ring *r);
unsigned uzfs_ring_queues(const struct uzfs_ring *r);
uint64_t uzfs_ring_requests(const struct uzfs_ring *r);

/*
 * The server stays on /dev/fuse, for reason (a phrase): kept in f for
 * DIR/.transport and logged on stderr, the first time only.
 */
void uzfs_ring_fallback(struct uzfs *f, const char *reason);

/*
 * Stop the queues (each thread leaves at its next wake-up; the wake signal
 * interrupts a wait), tear down the rings (the kernel cancels the
 * entries it holds) and free everything.  NULL is accepted.  Call before
 * /dev/fuse is closed.
 */
void uzfs_ring_destroy(struct uzfs_ring *r);

#endif
