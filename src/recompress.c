/*
 * recompress.c - secondary algorithms and recompression (zram's
 * recomp_algorithm and recompress).
 *
 * A device has its primary algorithm (priority 0) and up to three
 * secondaries (priorities 1..3), chosen before initialisation.  Each
 * secondary gets its own set of per-CPU streams at init (codec contexts
 * cannot be shared across algorithms), so reading a recompressed page is
 * as concurrent as reading any other.  The slot's priority bits
 * (SLOT_PRIO_MASK) say which algorithm made its object; reads decompress
 * with that one.
 *
 * Recompression of one slot (under its lock): decompress the object with
 * its current algorithm into a primary stream's page, then try the
 * secondaries in priority order above the current one (or only the one
 * asked for).  A candidate wins only if it lands in a smaller size class
 * of the allocator (class_size op; a huge object is a 4096-byte class)
 * and is below the huge threshold: a few bytes saved inside the same class
 * save nothing.  The winner is allocated before the old object is freed
 * (a failed allocation, e.g. the memory limit, changes nothing).  A page
 * that no algorithm could shrink, after all of them up to the last
 * configured one were tried, is flagged SLOT_INCOMP and never tried again
 * (until it is written anew).
 *
 * Stream order: a primary stream, then a secondary's (the read path and
 * writeback take them in the same order), so no two threads can wait on
 * each other.
 */
#define _GNU_SOURCE
#include "store.h"
#include "error.h"

#include <errno.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE

int uz_secondaries_init(struct uzram *dev)
{
    for (int i = 0; i < UZ_NR_SECONDARY; i++) {
        memset(&dev->sec[i], 0, sizeof dev->sec[i]);
        const struct uz_secondary *sc = &dev->secondary[i];
        if (!sc->name[0])
            continue;
        const struct uz_codec *c = uz_codec_find(sc->name);
        int err = c ? uz_streams_init(&dev->sec[i], c, sc->level ? sc->level : c->level_default,
                                      dev->nstreams)
                    : -EINVAL;
        if (err < 0) {
            memset(&dev->sec[i], 0, sizeof dev->sec[i]);
            uz_secondaries_fini(dev);
            return uz_error(err, "disksize: cannot create streams for secondary algorithm %s",
                            sc->name);
        }
    }
    return 0;
}

void uz_secondaries_fini(struct uzram *dev)
{
    for (int i = 0; i < UZ_NR_SECONDARY; i++) {
        if (dev->sec[i].n)
            uz_streams_fini(&dev->sec[i]);
        memset(&dev->sec[i], 0, sizeof dev->sec[i]);
    }
}

uint64_t uz_secondaries_bytes(struct uzram *dev)
{
    uint64_t n = 0;
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        n += dev->sec[i].n ? dev->sec[i].bytes : 0;
    return n;
}

int uz_decompress(struct uzram *dev, uint32_t prio, const void *src, size_t clen, void *dst,
                  struct uz_stream *st)
{
    struct uz_streams *ss = prio ? &dev->sec[prio - 1] : &dev->streams;
    if (ss->n == 0)
        return -EIO;
    struct uz_stream *use = (prio == 0 && st) ? st : uz_stream_get(ss);
    int rc = ss->codec->decompress(use->ctx, src, clen, dst, PAGE);
    if (use != st)
        uz_stream_put(use);
    return rc == 0 ? 0 : -EIO;
}

static size_t class_of(struct uzram *dev, size_t size)
{
    if (size >= PAGE)
        return PAGE;
    return dev->aops->class_size ? dev->aops->class_size(dev->alloc, size) : size;
}

static bool rc_wanted(const struct uz_rc_req *req, uint32_t f, uint32_t now, uint32_t prio_max)
{
    if (!(f & SLOT_OBJ) || (f & SLOT_INCOMP))
        return false;
    if ((req->mode & RC_IDLE) && !(f & SLOT_IDLE))
        return false;
    if ((req->mode & RC_HUGE) && !(f & SLOT_HUGE))
        return false;
    if ((req->mode & RC_AGE) && slot_age(f, now) < req->min_age)
        return false;
    return slot_prio(f) < prio_max;
}

/* Recompress one locked, qualifying slot.  Returns 1 if replaced, 0 if
 * not (flagged incompressible when nothing could help), or -errno. */
static int rc_one(struct uzram *dev, uint64_t idx, struct uz_slot *s, uint32_t f,
                  const struct uz_rc_req *req, uint32_t last_prio)
{
    uint64_t h = slot_handle(s);
    size_t size = uz_obj_bytes(dev, f, h);
    if (req->threshold && size < req->threshold)
        return 0;
    uint32_t cur = slot_prio(f);
    const uint8_t *obj = dev->aops->map(dev->alloc, h);
    struct uz_stream *st = uz_stream_get(&dev->streams);
    int err = 0;
    if (f & SLOT_HUGE)
        memcpy(st->page, obj, PAGE);
    else if (uz_decompress(dev, cur, obj, size, st->page, st) != 0)
        err = uz_error(-EIO, "recompress: page %llu does not decompress", (unsigned long long)idx);
    size_t old_class = class_of(dev, size);
    uint32_t first = req->prio ? req->prio : cur + 1;
    uint32_t last = req->prio ? req->prio : last_prio;
    int won = 0;
    for (uint32_t p = first; err == 0 && p <= last && !won; p++) {
        struct uz_streams *ss = &dev->sec[p - 1];
        if (ss->n == 0)
            continue;
        struct uz_stream *s2 = uz_stream_get(ss);
        size_t clen = ss->codec->compress(s2->ctx, st->page, PAGE, s2->out, UZ_CODEC_PAGE_BOUND);
        if (clen && clen < dev->huge_threshold && class_of(dev, clen) < old_class) {
            uint64_t nh;
            if (dev->aops->alloc(dev->alloc, clen, (uint32_t)idx, &nh) == 0) {
                memcpy(dev->aops->map(dev->alloc, nh), s2->out, clen);
                dev->aops->free(dev->alloc, h);
                slot_set_handle(s, nh);
                uz_slot_set(s, SLOT_OBJ | SLOT_RECOMP | (p << SLOT_PRIO_SHIFT) | (f & SLOT_IDLE));
                atomic_fetch_add_explicit(&dev->c.compr_bytes, clen, memory_order_relaxed);
                atomic_fetch_sub_explicit(&dev->c.compr_bytes, size, memory_order_relaxed);
                atomic_fetch_add_explicit(&dev->c.frees, 1, memory_order_relaxed);
                if (f & SLOT_HUGE)
                    atomic_fetch_sub_explicit(&dev->c.huge_pages, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&dev->c.recompressed, 1, memory_order_relaxed);
                won = 1;
            }
            /* a failed allocation (memory limit): keep the old object, and
             * do not call the page incompressible */
            else
                err = 1;
        }
        uz_stream_put(s2);
    }
    uz_stream_put(st);
    if (err < 0)
        return err;
    if (!won && err == 0 && last >= last_prio) {
        uz_slot_set(s, f | SLOT_INCOMP);
        atomic_fetch_add_explicit(&dev->c.recomp_incomp, 1, memory_order_relaxed);
    }
    return won;
}

int uz_recompress(struct uzram *dev, struct uz_rc_req *req)
{
    req->done = 0;
    req->next = req->lo;
    uint32_t last_prio = 0;
    for (uint32_t p = 1; p <= UZ_NR_SECONDARY; p++)
        if (dev->sec[p - 1].n)
            last_prio = p;
    if (last_prio == 0)
        return uz_error(-EINVAL, "recompress: no secondary algorithm (set recomp_algorithm "
                        "before disksize)");
    if (req->prio && (req->prio > UZ_NR_SECONDARY || dev->sec[req->prio - 1].n == 0))
        return uz_error(-EINVAL, "recompress: no secondary algorithm at priority %u", req->prio);
    uint32_t prio_max = req->prio ? req->prio : last_prio;
    uint64_t hi = req->hi < dev->nslots ? req->hi : dev->nslots;
    uint32_t now = uz_now(dev);
    uint64_t tried = 0, scanned = 0;
    int err = 0;
    uint64_t i;
    for (i = uz_next_used(dev, req->lo); i < hi; i = uz_next_used(dev, i + 1)) {
        if ((req->max_pages && tried >= req->max_pages) || (req->scan_max && scanned >= req->scan_max))
            break;
        scanned++;
        if (!rc_wanted(req, uz_slot_peek(dev, i), now, prio_max))
            continue;
        struct uz_slot *s = uz_slot_get(dev, i);
        uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed) & ~SLOT_LOCKBITS;
        if (rc_wanted(req, f, now, prio_max)) {
            tried++;
            err = rc_one(dev, i, s, f & SLOT_STATE, req, last_prio);
            if (err > 0)
                req->done++;
        }
        uz_slot_put(dev, i, s);
        if (err < 0)
            break;
        err = 0;
    }
    req->next = i;
    if (req->done)
        uz_note_mem_used(dev);
    return err < 0 ? err : 0;
}
