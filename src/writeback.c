/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * writeback.c - moving pages out of RAM to the backing device, reading
 * them back, and idle tracking (zram's writeback and idle).
 *
 * A page on the backing device is a slot with SLOT_WB whose handle names
 * a 4 KiB block (store.h).  Two ways get it there:
 *
 *   writeback   the `writeback` attribute (or the writeback policy):
 *               slots that qualify (idle, huge, huge_idle, incompressible,
 *               page_index=N, page_indexes=LO-HI) are written out one by
 *               one, each under its slot lock: block allocated, data
 *               written, and only then the object freed and the slot
 *               switched to SLOT_WB.  An I/O error frees the block and
 *               leaves the page in RAM; the error ends the run and is
 *               returned (zram's -EIO), so a failing medium loses nothing.
 *   forward     the write path (page.c), when a page is over the memory
 *               limit or compresses worse than forward_threshold.
 *
 * Raw or compressed.  By default a page goes out as its raw 4 KiB (as
 * zram does).  With writeback_compressed the compressed object goes out
 * as it is, at the start of its own block: the block is still one per
 * page (allocation stays a bitmap, a block is freed like any other), but
 * the transfer is the object's size rounded up to the I/O alignment, and
 * the handle records the size (bits 48..60) so a read transfers exactly
 * that and decompresses with the slot's algorithm (its priority bits).
 *
 * Batches.  Where the backing device takes several transfers at once
 * (its batch > 1: an NBD remote), a run goes in batches of
 * writeback_batch_size pages: each page's slot is locked, its page
 * copied into the batch's buffer (decompressed, or as the object when
 * compressed) and a block allocated; the batch is sent and the next one
 * fills.  The batches are a ring of WB_DEPTH: up to WB_DEPTH - 1 in
 * flight, oldest first, and one filling; when the ring is full, the
 * oldest is ended after the newest is sent: the pages whose write
 * succeeded are committed in slot order up to the first failure, and
 * that page and every later one (in that batch and in every batch after
 * it) stay in RAM with their blocks freed.  So the result is the same as
 * page by page: req->next is the first page that failed.
 *
 * Shared pages are batched too.  The record's lock is held only while
 * its page is copied (one record lock at a time; a primary stream taken
 * before it), the slot's until its batch ends; at the end the record is
 * locked again and committed if its state and handle are still those
 * copied (else the block goes back: another run, or recompression,
 * changed it meanwhile).  A slot whose record is already in a batch of
 * the ring is skipped, as page by page it would find it written back.
 * A local file (batch 1) goes page by page as before, through the
 * streams' buffers.
 *
 * Locking: each page under its slot lock, a primary stream inside it, the
 * backing bitmap's lock inside that (src/README.md, "Lock order"); a
 * batch holds its slots' locks (ascending) until it ends, and while one
 * is in flight the next slot is only tried (README, lock 10), and if it
 * is taken every batch in flight is ended before it is waited for.
 *
 * Groups (group.c) are never written back: their members carry no
 * SLOT_OBJ, so no mode selects them (page_index= included); they stay in
 * RAM, compressed together.  Idle marking works on them slot by slot.
 *
 * Buffers.  Page by page, all I/O goes through a stream's page/out
 * buffers, which are page-aligned (O_DIRECT): the data path allocates
 * nothing.  A batched run allocates its ring's buffers once, at its
 * start (and goes page by page if it cannot).
 *
 * Idle.  Every access stamps the slot's atime (20 bits of seconds in the
 * flags word, free in the 12-byte slot) and clears SLOT_IDLE.  `idle all`
 * sets SLOT_IDLE on every live slot; `idle N` on those not accessed for N
 * seconds.  The policies use the age directly, without the flag.
 */
#define _GNU_SOURCE
#include "writeback.h"
#include "shared.h"
#include "page.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE

void uz_idle_mark(struct uz_store *dev, uint64_t lo, uint64_t hi, uint32_t min_age)
{
    uint32_t now = uz_now(dev);
    if (hi > dev->nslots)
        hi = dev->nslots;
    for (uint64_t i = uz_next_used(dev, lo, hi); i < hi; i = uz_next_used(dev, i + 1, hi)) {
        uint32_t f = uz_slot_peek(dev, i);
        if (!(f & SLOT_STATE) || (f & SLOT_IDLE))
            continue;
        struct uz_slot *s = uz_slot_get(dev, i);
        f = atomic_load_explicit(&s->flags, memory_order_relaxed);
        if ((f & SLOT_STATE) && (min_age == 0 || slot_age(f, now) >= min_age))
            uz_slot_mark(s, SLOT_IDLE, 0);
        uz_slot_put(dev, i, s);
    }
}

/* Does a slot in state f (atime in f) qualify for req? */
static bool wb_wanted(const struct uz_wb_req *req, uint32_t f, uint32_t now)
{
    if (!(f & SLOT_OBJ))
        return false;   /* empty, same-filled, or already out */
    if ((req->mode & WB_IDLE) && !(f & SLOT_IDLE))
        return false;
    if ((req->mode & WB_HUGE) && !(f & SLOT_HUGE))
        return false;
    if ((req->mode & WB_INCOMP) && !(f & SLOT_INCOMP))
        return false;
    if ((req->mode & WB_AGE) && slot_age(f, now) < req->min_age)
        return false;
    return true;
}

/* Take one page of writeback_limit, if it is enabled. */
static bool take_limit(struct uz_store *dev)
{
    if (!atomic_load(&dev->wb_limit_enable))
        return true;
    uint64_t v = atomic_load(&dev->wb_limit);
    while (v > 0 && !atomic_compare_exchange_weak(&dev->wb_limit, &v, v - 1))
        ;
    return v > 0;
}

static void give_back_limit(struct uz_store *dev)
{
    if (atomic_load(&dev->wb_limit_enable))
        atomic_fetch_add(&dev->wb_limit, 1);
}

/* Write back one locked slot (state f, qualifying).  0 or the error. */
static int wb_one(struct uz_store *dev, uint64_t idx, struct uz_slot *s, uint32_t f, int64_t rec,
                  struct uz_stream *held)
{
    /* s is the slot, or (rec >= 0) the record of the shared page it names:
     * a shared page goes out once, for every slot that shares it */
    uint64_t h = slot_handle(s);
    size_t size = uz_obj_bytes(dev, f, h);
    const uint8_t *obj = dev->aops->map(dev->alloc, h);
    /* held: the primary stream a shared page's caller took before its
     * record's lock (src/README.md, "Lock order") */
    struct uz_stream *st = held ? held : uz_stream_get(&dev->streams);
    size_t clen = 0;
    int err = 0;
    if (f & SLOT_HUGE) {
        memcpy(st->page, obj, PAGE);
    } else if (atomic_load(&dev->wb_compressed)) {
        memcpy(st->out, obj, size);
        clen = size;
    } else {
        err = uz_decompress(dev, slot_prio(f), obj, size, st->page, st);
        if (err < 0)
            err = uz_error(-EIO, "writeback: page %llu does not decompress",
                           (unsigned long long)idx);
    }
    uint64_t wh = 0;
    if (err == 0)
        err = uz_wb_put(dev, st, st->page, clen, &wh);
    if (!held)
        uz_stream_put(st);
    if (err < 0)
        return err;
    uint32_t keep = f & (SLOT_IDLE | SLOT_INCOMP);
    if (clen)
        keep |= f & SLOT_PRIO_MASK;
    if (rec >= 0)
        uz_shared_commit(dev, (uint32_t)rec, (struct uz_shared *)s, SLOT_WB | keep, wh, 0);
    else
        uz_slot_commit(dev, idx, s, SLOT_WB | keep, wh, 0);
    atomic_fetch_add_explicit(&dev->ev.written_back, 1, memory_order_relaxed);
    return 0;
}

/* A batch: pages locked and copied out, their blocks allocated, going out
 * together (the backing device has them in flight at once). */
struct wb_batch {
    unsigned n;
    bool sent;                         /* started: fl is in flight */
    uint8_t *buf;                      /* the pipe's max pages, page-aligned */
    struct uz_inflight fl;
    struct uz_bio bio[UZ_WB_BATCH_MAX];
    struct {
        uint64_t idx;
        struct uz_slot *s;
        uint32_t keep;                 /* the state bits the slot keeps */
        size_t clen;                   /* 0: the raw page */
        int64_t rec;                   /* a shared page: its record (else -1) */
        uint32_t rstate;               /* ... and the record's state and handle */
        uint64_t rh;                   /* when it was copied */
    } item[UZ_WB_BATCH_MAX];
};

/* Batches in a ring: b[head..head+nfly) in flight, oldest first, and the
 * one after them filling.  Up to WB_DEPTH - 1 in flight at once. */
#define WB_DEPTH 4
struct wb_pipe {
    unsigned max;                      /* pages per batch */
    unsigned head, nfly;
    struct wb_batch b[WB_DEPTH];
};

static struct wb_batch *pipe_cur(struct wb_pipe *p)
{
    return &p->b[(p->head + p->nfly) % WB_DEPTH];
}

/* Is record rec already going out in one of p's batches (another slot
 * sharing it came first)? */
static bool pipe_has_rec(struct wb_pipe *p, int64_t rec)
{
    for (unsigned k = 0; k <= p->nfly; k++) {
        struct wb_batch *w = &p->b[(p->head + k) % WB_DEPTH];
        for (unsigned j = 0; j < w->n; j++)
            if (w->item[j].rec == rec)
                return true;
    }
    return false;
}

/* Copy a locked slot's page (state f, qualifying) into the filling batch
 * and give it a block.  src is the slot, or for a shared page (rec >= 0)
 * its record, locked, with st a primary stream taken before the record
 * (src/README.md, "Lock order").  0 or the error (nothing added). */
static int batch_add(struct uz_store *dev, struct wb_batch *w, uint64_t idx, struct uz_slot *s,
                     struct uz_slot *src, uint32_t f, int64_t rec, struct uz_stream *st)
{
    struct uz_backing *b = dev->bd;
    uint64_t h = slot_handle(src);
    size_t size = uz_obj_bytes(dev, f, h);
    const uint8_t *obj = dev->aops->map(dev->alloc, h);
    uint8_t *buf = w->buf + (size_t)w->n * PAGE;
    size_t clen = 0;
    if (f & SLOT_HUGE) {
        memcpy(buf, obj, PAGE);
    } else if (atomic_load(&dev->wb_compressed)) {
        memcpy(buf, obj, size);
        clen = size;
        memset(buf + clen, 0, PAGE - clen);   /* no stale bytes out; the whole block may go */
    } else if (uz_decompress(dev, slot_prio(f), obj, size, buf, st) < 0) {
        return uz_error(-EIO, "writeback: page %llu does not decompress", (unsigned long long)idx);
    }
    uint64_t blk;
    int err = uz_backing_alloc(b, &blk);
    if (err < 0)
        return err;
    uint32_t keep = f & (SLOT_IDLE | SLOT_INCOMP);
    if (clen)
        keep |= f & SLOT_PRIO_MASK;
    w->bio[w->n] = (struct uz_bio){.blk = blk, .buf = buf, .n = clen ? clen : PAGE, .whole = true};
    w->item[w->n].idx = idx;
    w->item[w->n].s = s;
    w->item[w->n].keep = keep;
    w->item[w->n].clen = clen;
    w->item[w->n].rec = rec;
    w->item[w->n].rstate = uz_slot_state(src);
    w->item[w->n].rh = h;
    w->n++;
    return 0;
}

/* Wait for a batch (if sent), then commit what went out, in order, up to
 * the first failure: that page and every later one stay in RAM, their
 * blocks freed; with drop, none is committed (a batch after a failed
 * one).  Unlocks every slot of it.  0 or the first failure's error;
 * *first_bad is the slot it happened on. */
static int batch_end(struct uz_store *dev, struct wb_batch *w, struct uz_wb_req *req, bool drop,
                     uint64_t *first_bad)
{
    int err = 0;
    if (w->sent)
        uz_backing_write_finish(dev->bd, &w->fl);
    for (unsigned j = 0; j < w->n; j++) {
        int e = w->sent ? w->bio[j].err : 0;
        if (!drop && err == 0 && e < 0) {
            err = e;
            *first_bad = w->item[j].idx;
        }
        bool gone = false;   /* a shared page's record changed meanwhile */
        if (!drop && err == 0) {
            uint64_t wh = w->bio[j].blk | (uint64_t)w->item[j].clen << WB_LEN_SHIFT;
            int64_t rec = w->item[j].rec;
            if (rec < 0) {
                uz_slot_commit(dev, w->item[j].idx, w->item[j].s, SLOT_WB | w->item[j].keep, wh, 0);
            } else {
                /* the record's lock again (under the slot's, which kept
                 * the record alive): committed if nobody changed it since
                 * it was copied (recompressed, written back by another
                 * run); else the block goes back, the page stays where
                 * it now is */
                struct uz_shared *r = uz_shared_get(dev, (uint32_t)rec);
                gone = uz_slot_state(&r->s) != w->item[j].rstate || slot_handle(&r->s) != w->item[j].rh;
                if (!gone)
                    uz_shared_commit(dev, (uint32_t)rec, r, SLOT_WB | w->item[j].keep, wh, 0);
                uz_shared_put(dev, (uint32_t)rec, r);
            }
        }
        if (!drop && err == 0 && !gone) {
            atomic_fetch_add_explicit(&dev->ev.written_back, 1, memory_order_relaxed);
            req->done++;
        } else {
            uz_backing_free(dev->bd, w->bio[j].blk);
            give_back_limit(dev);
            if (e < 0)
                atomic_fetch_add_explicit(&dev->ev.wb_failed, 1, memory_order_relaxed);
        }
        uz_slot_put(dev, w->item[j].idx, w->item[j].s);
    }
    w->n = 0;
    w->sent = false;
    return err;
}

/* End the oldest batch in flight (see batch_end). */
static int pipe_end_oldest(struct uz_store *dev, struct wb_pipe *p, struct uz_wb_req *req,
                           bool drop, uint64_t *bad)
{
    struct wb_batch *w = &p->b[p->head];
    p->head = (p->head + 1) % WB_DEPTH;
    p->nfly--;
    return batch_end(dev, w, req, drop, bad);
}

/* End every batch in flight, oldest first: committed up to the first
 * failure, every batch after it dropped.  0 or that failure. */
static int pipe_end_all(struct uz_store *dev, struct wb_pipe *p, struct uz_wb_req *req,
                        uint64_t *bad)
{
    int err = 0;
    while (p->nfly) {
        int e = pipe_end_oldest(dev, p, req, err < 0, bad);
        if (err == 0)
            err = e;
    }
    return err;
}

/* Send the filling batch; when the ring is full, end the oldest in
 * flight (sent first, so its pages come first) after it.  Afterwards
 * the sent batch is in flight and the next one fills.  0 or the first
 * failure (then nothing is in flight and every page not written back is
 * in RAM). */
static int pipe_push(struct uz_store *dev, struct wb_pipe *p, struct uz_wb_req *req, uint64_t *bad)
{
    struct wb_batch *cur = pipe_cur(p);
    int err = 0;
    /* without waiting while our own batches hold what it would wait for */
    while (uz_backing_write_start(dev->bd, cur->bio, cur->n, p->nfly == 0, &cur->fl) == -EAGAIN) {
        err = pipe_end_oldest(dev, p, req, false, bad);
        if (err < 0) {
            pipe_end_all(dev, p, req, bad);   /* dropped: after the failure */
            batch_end(dev, cur, req, true, bad);
            return err;
        }
    }
    cur->sent = true;
    p->nfly++;
    if (p->nfly == WB_DEPTH) {
        err = pipe_end_oldest(dev, p, req, false, bad);
        if (err < 0) {
            while (p->nfly)
                pipe_end_oldest(dev, p, req, true, bad);
            return err;
        }
    }
    return 0;
}

/* Everything batched out and ended: 0 or the first failure. */
static int pipe_drain(struct uz_store *dev, struct wb_pipe *p, struct uz_wb_req *req, uint64_t *bad)
{
    int err = pipe_cur(p)->n ? pipe_push(dev, p, req, bad) : 0;
    if (err < 0)
        return err;
    return pipe_end_all(dev, p, req, bad);
}

int uz_writeback(struct uz_store *dev, struct uz_wb_req *req)
{
    req->done = 0;
    req->next = req->lo;
    if (!dev->bd)
        return uz_error(-ENODEV, "writeback: no backing device (set backing_dev before disksize)");
    uint64_t hi = req->hi < dev->nslots ? req->hi : dev->nslots;
    uint32_t now = uz_now(dev);
    int err = 0;
    uint64_t i;
    /* several pages in flight when the backing device takes them so (its
     * batch) and writeback_batch_size allows: a batch fills while the one
     * before is in flight.  The buffers are the run's; without them the
     * run goes page by page. */
    struct wb_pipe *p = NULL;
    unsigned max = atomic_load(&dev->wb_batch);
    if (max > dev->bd->batch)
        max = dev->bd->batch;
    if (max > 1) {
        p = uz_malloc(sizeof *p);
        uint8_t *buf = p ? uz_malloc_aligned(PAGE, (size_t)max * PAGE * WB_DEPTH) : NULL;
        if (buf) {
            p->max = max;
            p->head = p->nfly = 0;
            for (int k = 0; k < WB_DEPTH; k++) {
                p->b[k].n = 0;
                p->b[k].sent = false;
                p->b[k].buf = buf + (size_t)k * max * PAGE;
            }
        } else {
            uz_free(p);
            p = NULL;
        }
    }
    uint64_t bad = 0;
    for (i = uz_next_used(dev, req->lo, hi); i < hi; i = uz_next_used(dev, i + 1, hi)) {
        uint64_t queued = 0;
        for (unsigned k = 0; p && k <= p->nfly; k++)
            queued += p->b[(p->head + k) % WB_DEPTH].n;
        if (req->max_pages && req->done + queued >= req->max_pages)
            break;
        uint32_t f0 = uz_slot_peek(dev, i);
        /* a shared slot is looked at under its lock (its record says) */
        if (!(f0 & SLOT_SHARED) && !wb_wanted(req, f0, now))
            continue;
        struct uz_slot *s;
        if (p && p->nfly) {
            /* batches in flight may hold backing resources (NBD
             * connections) that a reader holding this slot's lock may be
             * waiting for: the lock is only tried, and if it is taken the
             * batches in flight are ended before we wait for it */
            uz_varray_pin(&dev->slots, i);
            s = uz_slot_at(dev, i);
            if (!uz_slot_trylock(s)) {
                err = pipe_end_all(dev, p, req, &bad);
                if (err < 0) {
                    uz_varray_unpin(&dev->slots, i);
                    batch_end(dev, pipe_cur(p), req, true, &bad);
                    i = bad;
                    break;
                }
                uz_slot_lock(s);
            }
        } else {
            s = uz_slot_get(dev, i);
        }
        uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
        if (p) {
            /* batched: the slot stays locked until its batch ends (slot
             * locks in ascending order, src/README.md).  A shared page is
             * copied under its record's lock, which is then let go (one
             * record lock at a time): batch_end takes it again to commit */
            struct uz_shared *r = NULL;
            struct uz_stream *st = NULL;
            int64_t rec = -1;
            uint32_t fv = f;
            if (f & SLOT_SHARED) {
                rec = (uint32_t)slot_handle(s);
                if (pipe_has_rec(p, rec)) {
                    uz_slot_put(dev, i, s);   /* going out already, for an earlier slot */
                    continue;
                }
                st = uz_stream_get(&dev->streams);
                r = uz_shared_get(dev, (uint32_t)rec);
                fv = uz_shared_view(dev, f, (uint64_t)rec);
            }
            if (!wb_wanted(req, fv, now)) {
                err = 1;
            } else if (!take_limit(dev)) {
                err = uz_error(-EIO, "writeback: writeback_limit reached");
            } else if ((err = batch_add(dev, pipe_cur(p), i, s, r ? &r->s : s, fv & SLOT_STATE, rec,
                                        st)) < 0) {
                give_back_limit(dev);
                atomic_fetch_add_explicit(&dev->ev.wb_failed, 1, memory_order_relaxed);
            }
            if (r) {
                uz_shared_put(dev, (uint32_t)rec, r);
                uz_stream_put(st);
            }
            if (err == 1) {
                err = 0;
                uz_slot_put(dev, i, s);
                continue;
            }
            if (err < 0) {
                uz_slot_put(dev, i, s);
                /* the pages batched before this one still go out */
                int ferr = pipe_drain(dev, p, req, &bad);
                if (ferr < 0)
                    err = ferr, i = bad;
                break;
            }
            if (pipe_cur(p)->n == p->max && (err = pipe_push(dev, p, req, &bad)) < 0) {
                i = bad;
                break;
            }
            continue;
        }
        /* no batch: this page alone */
        struct uz_shared *r = NULL;
        struct uz_stream *st = NULL;
        int64_t rec = -1;
        struct uz_slot *target = s;
        if (f & SLOT_SHARED) {
            rec = (uint32_t)slot_handle(s);
            st = uz_stream_get(&dev->streams);
            r = uz_shared_get(dev, (uint32_t)rec);
            f = uz_shared_view(dev, f, (uint64_t)rec);
            target = &r->s;
        }
        if (wb_wanted(req, f, now)) {
            if (!take_limit(dev)) {
                err = uz_error(-EIO, "writeback: writeback_limit reached");
            } else {
                err = wb_one(dev, i, target, f & SLOT_STATE, rec, st);
                if (err < 0) {
                    give_back_limit(dev);
                    atomic_fetch_add_explicit(&dev->ev.wb_failed, 1, memory_order_relaxed);
                } else {
                    req->done++;
                }
            }
        }
        if (r) {
            uz_shared_put(dev, (uint32_t)rec, r);
            uz_stream_put(st);
        }
        uz_slot_put(dev, i, s);
        if (err < 0)
            break;
    }
    if (p) {
        /* the last batches: the scan went to i; a failure stops it earlier */
        int ferr = pipe_drain(dev, p, req, &bad);
        if (ferr < 0 && err == 0)
            err = ferr, i = bad;
        uz_free(p->b[0].buf);
        uz_free(p);
    }
    req->next = i;
    return err;
}
