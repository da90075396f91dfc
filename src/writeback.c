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
 * Locking: each page under its slot lock, a primary stream inside it, the
 * backing bitmap's lock inside that (src/README.md, "Lock order").
 *
 * Groups (group.c) are never written back: their members carry no
 * SLOT_OBJ, so no mode selects them (page_index= included); they stay in
 * RAM, compressed together.  Idle marking works on them slot by slot.
 *
 * Buffers.  All I/O goes through a stream's page/out buffers, which are
 * page-aligned (O_DIRECT): the data path allocates nothing.
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
    for (i = uz_next_used(dev, req->lo, hi); i < hi; i = uz_next_used(dev, i + 1, hi)) {
        if (req->max_pages && req->done >= req->max_pages)
            break;
        uint32_t f0 = uz_slot_peek(dev, i);
        /* a shared slot is looked at under its lock (its record says) */
        if (!(f0 & SLOT_SHARED) && !wb_wanted(req, f0, now))
            continue;
        struct uz_slot *s = uz_slot_get(dev, i);
        uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
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
    req->next = i;
    return err;
}
