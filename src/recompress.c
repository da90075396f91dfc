/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * recompress.c - secondary algorithms and recompression (zram's
 * recomp_algorithm and recompress).
 *
 * A device has its primary algorithm (priority 0) and up to three
 * secondaries (priorities 1..3), chosen before initialisation.  Each
 * secondary gets its own set of per-CPU streams (codec contexts cannot be
 * shared across algorithms), made by the first recompression that uses
 * it, so reading a recompressed page is as concurrent as reading any
 * other; between recompressions they are at rest (secondary_ready,
 * uz_secondaries_rest, below).  The slot's priority bits
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
 * each other (src/README.md, "Lock order").
 *
 * Group mode (group=K, K = 2, 4 or 8; see group.c for the layout).  Each
 * aligned run [b, b+K) whose K slots all qualify (the mode's tests, per
 * slot) and are all stored one by one in RAM (OBJ or SAME; not WB, not in
 * a group; objects made by the primary or by the chosen secondary, so one
 * primary and one secondary stream suffice) is locked whole, its pages
 * decompressed into the secondary stream's group scratch, and the K pages
 * compressed together with the secondary.  The group replaces the pages
 * if its chunks' size classes (full chunks are one page each) add up to
 * less than the pages' objects' classes; its chunks are allocated before
 * anything is freed.  Members keep their IDLE bits and access times
 * (recompression is not an access).  max_pages and done count pages;
 * threshold does not apply.  Per-page recompression passes group members
 * by (they have no SLOT_OBJ).
 */
#define _GNU_SOURCE
#include "recompress.h"
#include "shared.h"
#include "clone.h"
#include "page.h"
#include "group.h"
#include "error.h"

#include <errno.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE
#define SETTLE_WINDOW UZ_GROUP_MAX   /* settling looks at aligned windows of 8 slots */

/* The secondaries' streams are made when the first page is recompressed
 * (secondary_ready), not at init: a device that has not settled yet
 * holds none (with zstd, about 270 KiB a stream), and one whose
 * recompression has gone idle gives their groups' workspaces back
 * (uz_secondaries_rest), keeping what reads of recompressed pages use.
 * Init only checks that each configured algorithm exists. */
int uz_secondaries_init(struct uz_store *dev)
{
    for (int i = 0; i < UZ_NR_SECONDARY; i++) {
        memset(&dev->recomp_streams[i], 0, sizeof dev->recomp_streams[i]);
        atomic_store(&dev->recomp_ready[i], false);
        atomic_store(&dev->recomp_bytes[i], 0);
        const struct uz_recomp_algo *sc = &dev->recomp_algo[i];
        if (sc->name[0] && !uz_codec_find(sc->name))
            return uz_error(-EINVAL, "disksize: unknown secondary algorithm %s", sc->name);
    }
    dev->recomp_users = 0;
    return 0;
}

void uz_secondaries_fini(struct uz_store *dev)
{
    for (int i = 0; i < UZ_NR_SECONDARY; i++) {
        if (dev->recomp_streams[i].n)
            uz_streams_fini(&dev->recomp_streams[i]);
        memset(&dev->recomp_streams[i], 0, sizeof dev->recomp_streams[i]);
        atomic_store(&dev->recomp_ready[i], false);
        atomic_store(&dev->recomp_bytes[i], 0);
    }
}

uint64_t uz_secondaries_bytes(struct uz_store *dev)
{
    uint64_t n = 0;
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        n += atomic_load(&dev->recomp_bytes[i]);   /* not the streams': being made meanwhile */
    return n;
}

/* Is there a secondary at priority p (1..UZ_NR_SECONDARY)? */
static bool configured(const struct uz_store *dev, uint32_t p)
{
    return p >= 1 && p <= UZ_NR_SECONDARY && dev->recomp_algo[p - 1].name[0];
}

/* The streams of the secondary at priority p, ready to compress groups:
 * made, or warmed again after a rest, now.  Called before the first
 * compression of each recompression, with slot (or record) locks and a
 * primary stream held; takes recomp_lock and, under it, the secondary's
 * stream locks (src/README.md, "Lock order").  0 or -ENOMEM. */
static int secondary_ready(struct uz_store *dev, uint32_t p)
{
    if (atomic_load_explicit(&dev->recomp_ready[p - 1], memory_order_acquire))
        return 0;
    pthread_mutex_lock(&dev->recomp_lock);
    int err = 0;
    struct uz_streams *ss = &dev->recomp_streams[p - 1];
    if (!atomic_load_explicit(&dev->recomp_ready[p - 1], memory_order_relaxed)) {
        const struct uz_recomp_algo *sc = &dev->recomp_algo[p - 1];
        const struct uz_codec *c = uz_codec_find(sc->name);
        /* group scratch always: recompress group=K and settling make
         * groups with any secondary, and the contexts sized for them */
        if (ss->n == 0)
            err = !c ? -EINVAL
                : uz_streams_init(ss, c, sc->level ? sc->level
                                  : c->level_secondary ? c->level_secondary : c->level_default,
                                  dev->nstreams, UZ_GROUP_MAX, true, &sc->dict);
        else
            err = uz_streams_warm(ss);
        /* a failure leaves the streams made (decoders, perhaps) and not
         * ready: this recompression stops, a later one tries again */
        if (err == 0)
            atomic_store_explicit(&dev->recomp_ready[p - 1], true, memory_order_release);
        else if (ss->n == 0)
            memset(ss, 0, sizeof *ss);
        atomic_store(&dev->recomp_bytes[p - 1], ss->n ? atomic_load(&ss->bytes) : 0);
    }
    pthread_mutex_unlock(&dev->recomp_lock);
    if (err < 0)
        return uz_error(err, "recompress: cannot make streams for the secondary algorithm %s",
                        dev->recomp_algo[p - 1].name);
    return 0;
}

void uz_secondaries_rest(struct uz_store *dev)
{
    pthread_mutex_lock(&dev->recomp_lock);
    if (dev->recomp_users == 0)
        for (int i = 0; i < UZ_NR_SECONDARY; i++)
            if (atomic_load_explicit(&dev->recomp_ready[i], memory_order_relaxed)) {
                uz_streams_rest(&dev->recomp_streams[i]);
                atomic_store_explicit(&dev->recomp_ready[i], false, memory_order_relaxed);
                atomic_store(&dev->recomp_bytes[i], atomic_load(&dev->recomp_streams[i].bytes));
            }
    pthread_mutex_unlock(&dev->recomp_lock);
}

static size_t class_of(struct uz_store *dev, size_t size)
{
    if (size >= PAGE)
        return PAGE;
    return dev->aops->class_size ? dev->aops->class_size(dev->alloc, size) : size;
}

/* Does a slot (state f) match the request's type (idle, huge, age)? */
static bool rc_mode_matches(const struct uz_rc_req *req, uint32_t f, uint32_t now)
{
    if ((req->mode & RC_IDLE) && !(f & SLOT_IDLE))
        return false;
    if ((req->mode & RC_HUGE) && !(f & SLOT_HUGE))
        return false;
    return !((req->mode & RC_AGE) && slot_age(f, now) < req->min_age);
}

static bool rc_wanted(const struct uz_rc_req *req, uint32_t f, uint32_t now, uint32_t prio_max)
{
    if (!(f & SLOT_OBJ) || (f & SLOT_INCOMP))
        return false;
    return rc_mode_matches(req, f, now) && slot_prio(f) < prio_max;
}

/* Recompress one locked, qualifying slot.  Returns 1 if replaced, 0 if
 * not (flagged incompressible when nothing could help), or -errno. */
static int rc_one(struct uz_store *dev, uint64_t idx, struct uz_slot *s, uint32_t f,
                  const struct uz_rc_req *req, uint32_t last_prio, int64_t rec,
                  struct uz_stream *held)
{
    /* s is the slot, or (rec >= 0) the record of the shared page it names */
    uint32_t backref = rec >= 0 ? UZ_BACKREF_SHARED | (uint32_t)rec : (uint32_t)idx;
    uint64_t h = slot_handle(s);
    size_t size = uz_obj_bytes(dev, f, h);
    if (req->threshold && size < req->threshold)
        return 0;
    uint32_t cur = slot_prio(f);
    const uint8_t *obj = dev->aops->map(dev->alloc, h);
    /* held: the primary stream a shared page's caller took before its
     * record's lock (src/README.md, "Lock order") */
    struct uz_stream *st = held ? held : uz_stream_get(&dev->streams);
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
        struct uz_streams *ss = &dev->recomp_streams[p - 1];
        if (!configured(dev, p))
            continue;
        if ((err = secondary_ready(dev, p)) < 0)
            break;
        struct uz_stream *s2 = uz_stream_get(ss);
        size_t clen = ss->codec->compress(s2->ctx, st->page, PAGE, s2->out, UZ_CODEC_PAGE_BOUND);
        if (clen && clen < dev->huge_threshold && class_of(dev, clen) < old_class) {
            uint64_t nh;
            if (dev->aops->alloc(dev->alloc, clen, backref, &nh) == 0) {
                memcpy(dev->aops->map(dev->alloc, nh), s2->out, clen);
                if (rec >= 0)
                    uz_shared_commit(dev, (uint32_t)rec, (struct uz_shared *)s,
                                     SLOT_OBJ | (p << SLOT_PRIO_SHIFT), nh, clen);
                else
                    uz_slot_commit(dev, idx, s,
                                   SLOT_OBJ | (p << SLOT_PRIO_SHIFT) | (f & SLOT_IDLE),
                                   nh, clen);
                atomic_fetch_add_explicit(&dev->ev.recompressed, 1, memory_order_relaxed);
                won = 1;
            }
            /* a failed allocation (memory limit): keep the old object, and
             * do not call the page incompressible */
            else
                err = 1;
        }
        uz_stream_put(s2);
    }
    if (!held)
        uz_stream_put(st);
    if (err < 0)
        return err;
    if (!won && err == 0 && last >= last_prio) {
        uz_slot_mark(s, SLOT_INCOMP, 0);
        atomic_fetch_add_explicit(&dev->ev.recomp_incomp, 1, memory_order_relaxed);
    }
    return won;
}

/* The locked slots [gb, gb+k) are the members of a group, as they were
 * when looked at unlocked?  (It may have been broken or replaced.) */
static uint32_t group_at(struct uz_store *dev, uint64_t gb)
{
    uint32_t f = uz_slot_state(uz_slot_at(dev, gb));
    return (f & SLOT_GROUP) ? slot_group_pages(f) : 0;
}

/* Bytes of a locked group's chunks, as compr_data_size counts them. */
static size_t group_bytes(struct uz_store *dev, uint64_t gb, uint32_t k)
{
    size_t n = 0;
    for (uint32_t j = 0; j < k; j++) {
        uint64_t h = slot_handle(uz_slot_at(dev, gb + j));
        if (h)
            n += dev->aops->obj_size(dev->alloc, h);
    }
    return n;
}

/* Recompress the locked group at gb (its slots [gb, gb+k) locked) as a
 * unit, if the request wants it: every member matches the mode (idle,
 * age), the group is not flagged incompressible, its average bytes per
 * page reach the threshold, and a secondary above the group's algorithm
 * (or the one asked for) is left to try.  Groups are never huge, so
 * type=huge passes them by.  Pages replaced (k), 0, or -EIO. */
static int rc_group_unit(struct uz_store *dev, const struct uz_rc_req *req, uint64_t gb, uint32_t now,
                         uint32_t last_prio, uint64_t *tried)
{
    uint32_t k = group_at(dev, gb);
    if (k == 0 || (req->mode & RC_HUGE))
        return 0;
    uint32_t f = uz_slot_state(uz_slot_at(dev, gb));
    if (f & SLOT_INCOMP)
        return 0;
    for (uint32_t j = 0; j < k; j++)
        if (!rc_mode_matches(req, uz_slot_state(uz_slot_at(dev, gb + j)), now))
            return 0;
    if (req->threshold && group_bytes(dev, gb, k) < req->threshold * k)
        return 0;
    uint32_t cur = slot_prio(f);
    uint32_t first = req->prio ? req->prio : cur + 1;
    uint32_t last = req->prio ? req->prio : last_prio;
    if (first <= cur || first > last)
        return 0;
    *tried += k;
    for (uint32_t p = first; p <= last; p++) {
        if (!configured(dev, p))
            continue;
        int r = secondary_ready(dev, p);
        if (r < 0)
            return r;
        r = uz_group_recode(dev, gb, k, p);
        if (r < 0)
            return r;
        if (r > 0) {
            atomic_fetch_add_explicit(&dev->ev.recompressed, k, memory_order_relaxed);
            atomic_fetch_add_explicit(&dev->ev.recomp_groups, 1, memory_order_relaxed);
            return (int)k;
        }
    }
    if (last >= last_prio) {
        uz_slot_mark(uz_slot_at(dev, gb), SLOT_INCOMP, 0);
        atomic_fetch_add_explicit(&dev->ev.recomp_incomp, k, memory_order_relaxed);
    }
    return 0;
}

/* Does a slot (state f) qualify for a group of the run being looked at? */
static bool rcg_wanted(const struct uz_rc_req *req, uint32_t f, uint32_t now, uint32_t prio)
{
    if (!(f & (SLOT_OBJ | SLOT_SAME)) || (f & (SLOT_WB | SLOT_GROUP)))
        return false;
    return rc_mode_matches(req, f, now) && (slot_prio(f) == 0 || slot_prio(f) == prio);
}

/* Regroup the locked, qualifying slots [b, b+k) with the secondary at
 * priority p.  1 if replaced, 0 if not worth it (or no memory), -EIO. */
static int rc_group_one(struct uz_store *dev, uint64_t b, uint32_t k, uint32_t p)
{
    int ready = secondary_ready(dev, p);
    if (ready < 0)
        return ready;
    struct uz_streams *ss = &dev->recomp_streams[p - 1];
    struct uz_stream *st = uz_stream_get(&dev->streams);
    struct uz_stream *s2 = uz_stream_get(ss);
    size_t old_cost = 0;
    int err = 0;
    for (uint32_t j = 0; j < k && err == 0; j++) {
        struct uz_slot *s = uz_varray_at(&dev->slots, b + j);
        uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed) & SLOT_STATE;
        uint8_t *dst = s2->gbuf + (size_t)j * PAGE;
        uint64_t h = slot_handle(s);
        if (f & SLOT_SAME) {
            uz_fill_page(dst, h);
            continue;
        }
        size_t size = uz_obj_bytes(dev, f, h);
        const uint8_t *obj = dev->aops->map(dev->alloc, h);
        old_cost += class_of(dev, size);
        int rc;
        if (f & SLOT_HUGE) {
            memcpy(dst, obj, PAGE);
            rc = 0;
        } else if (slot_prio(f) == 0) {
            rc = dev->streams.codec->decompress(st->ctx, obj, size, dst, PAGE);
        } else {
            rc = ss->codec->decompress(s2->ctx, obj, size, dst, PAGE);
        }
        if (rc != 0)
            err = uz_error(-EIO, "recompress: page %llu does not decompress",
                           (unsigned long long)(b + j));
    }
    size_t clen = 0;
    if (err == 0)
        clen = ss->codec->compress(s2->ctx, s2->gbuf, (size_t)k * PAGE, s2->gout, s2->gcap);
    int won = 0;
    if (err == 0 && clen && clen <= (size_t)k * PAGE && uz_group_cost(dev, clen) < old_cost) {
        uint64_t h[UZ_GROUP_MAX] = {0};
        uint32_t nch = (uint32_t)((clen + PAGE - 1) / PAGE), j;
        int aerr = 0;
        for (j = 0; j < nch && aerr == 0; j++) {
            size_t sz = clen - (size_t)j * PAGE < PAGE ? clen - (size_t)j * PAGE : PAGE;
            aerr = dev->aops->alloc(dev->alloc, sz, (uint32_t)(b + j), &h[j]);
            if (aerr == 0)
                memcpy(dev->aops->map(dev->alloc, h[j]), s2->gout + (size_t)j * PAGE, sz);
        }
        if (aerr < 0) {
            /* no memory (the limit): keep the pages as they are */
            for (uint32_t i = 0; i + 1 < j; i++)
                dev->aops->free(dev->alloc, h[i]);
        } else {
            for (j = 0; j < k; j++) {
                struct uz_slot *s = uz_varray_at(&dev->slots, b + j);
                uint32_t idle = uz_slot_state(s) & SLOT_IDLE;
                uz_slot_commit(dev, b + j, s,
                               slot_group_bits(k) | (p << SLOT_PRIO_SHIFT) | idle,
                               h[j], chunk_bytes(clen, j));
            }
            atomic_fetch_add_explicit(&dev->ev.recompressed, k, memory_order_relaxed);
            won = 1;
        }
    }
    uz_stream_put(s2);
    uz_stream_put(st);
    return err < 0 ? err : won;
}

static int rc_groups(struct uz_store *dev, struct uz_rc_req *req, uint32_t prio)
{
    uint32_t k = req->group;
    uint64_t hi = req->hi < dev->nslots ? req->hi : dev->nslots;
    uint32_t now = uz_now(dev);
    uint64_t tried = 0, scanned = 0;
    int err = 0;
    uint64_t b = (req->lo + k - 1) / k * k;
    for (;;) {
        /* past the last whole group, or nothing used after b: the pass is
         * over (next = hi), so a policy's next pass starts again at 0 (as
         * rc_settle's tail) */
        if (b + k > hi) {
            b = hi;
            break;
        }
        uint64_t nb = uz_next_used(dev, b, hi);
        if (nb >= hi) {
            b = hi;
            break;
        }
        if (nb / k * k > b) {
            b = nb / k * k;
            continue;
        }
        if ((req->max_pages && tried >= req->max_pages) || (req->scan_max && scanned >= req->scan_max))
            break;
        scanned += k;
        bool want = true;
        for (uint32_t j = 0; j < k && want; j++)
            want = rcg_wanted(req, uz_slot_peek(dev, b + j), now, prio);
        /* a pool's unit that clones read through keeps its layout
         * (clone.h) */
        if (want && uz_unit_has_dependents(dev, b))
            want = false;
        if (want) {
            uz_lock_range(dev, b, b + k);
            for (uint32_t j = 0; j < k && want; j++)
                want = rcg_wanted(req, uz_slot_peek(dev, b + j), now, prio);
            if (want) {
                tried += k;
                err = rc_group_one(dev, b, k, prio);
                if (err > 0)
                    req->done += k;
            }
            uz_unlock_range(dev, b, b + k);
            if (err < 0)
                break;
            err = 0;
        }
        b += k;
    }
    req->next = b < hi ? b : hi;
    if (req->done)
        uz_note_mem_used(dev);
    return err < 0 ? err : 0;
}

/* Settling, one window.  Does the slot (state f) wait to be settled: a
 * page of its own in RAM (OBJ or SAME; not written back, not in a group,
 * not shared), made by the primary, idle long enough? */
static bool settle_single(const struct uz_rc_req *req, uint32_t f, uint32_t now)
{
    if (!(f & (SLOT_OBJ | SLOT_SAME)) || (f & (SLOT_WB | SLOT_GROUP | SLOT_SHARED)))
        return false;
    return slot_prio(f) == 0 && rc_mode_matches(req, f, now);
}

/* Is there anything to settle in the window at b (looked at unlocked)? */
static bool settle_wanted(struct uz_store *dev, const struct uz_rc_req *req, uint64_t b, uint32_t now)
{
    for (uint32_t j = 0; j < SETTLE_WINDOW; j++) {
        uint32_t f = uz_slot_peek(dev, b + j);
        if (f & SLOT_INCOMP)
            continue;
        if ((f & SLOT_GROUP) ? slot_prio(f) == 0 && rc_mode_matches(req, f, now)
                             : (f & SLOT_SHARED) ? rc_mode_matches(req, f, now)
                                                 : settle_single(req, f, now) && (f & SLOT_OBJ))
            return true;
    }
    return false;
}

/* How settle_window may change a window's layout: regroup its waiting
 * pages, only those that are not same-filled (a unit clones read
 * through), or none (a clone has a page of its own in the window). */
enum settle_layout { SETTLE_REGROUP, SETTLE_REGROUP_OBJ, SETTLE_KEEP };

/* Settle the locked window [b, b+8): the largest aligned runs of 8, 4 or 2
 * waiting pages become groups of the secondary p (as layout allows),
 * groups the primary made are
 * recompressed as a unit, and what is left page by page, shared pages in
 * their record.  Every page is then settled (prio p), or flagged
 * incompressible, so a window is settled once until it is written again.
 * Pages settled, or -EIO. */
static int settle_window(struct uz_store *dev, struct uz_rc_req *req, uint64_t b, uint32_t p,
                         uint32_t now, uint32_t last_prio, enum settle_layout layout,
                         uint64_t *tried)
{
    uint32_t f[SETTLE_WINDOW];
    bool done[SETTLE_WINDOW] = {false};
    int settled = 0;
    for (uint32_t j = 0; j < SETTLE_WINDOW; j++)
        f[j] = uz_slot_state(uz_slot_at(dev, b + j));
    for (uint32_t k = SETTLE_WINDOW; k > 1 && layout != SETTLE_KEEP; k /= 2) {
        for (uint32_t o = 0; o < SETTLE_WINDOW; o += k) {
            bool run = true, obj = false;
            for (uint32_t j = o; j < o + k && run; j++) {
                run = !done[j] && settle_single(req, f[j], now) && !(f[j] & SLOT_INCOMP) &&
                      (layout == SETTLE_REGROUP || (f[j] & SLOT_OBJ));
                obj |= (f[j] & SLOT_OBJ) != 0;
            }
            if (!run || !obj)
                continue;
            *tried += k;
            int r = rc_group_one(dev, b + o, k, p);
            if (r < 0)
                return r;
            for (uint32_t j = o; j < o + k; j++)
                done[j] = true;   /* a run of all waiting pages no group shrank: page by page */
            if (r > 0) {
                settled += (int)k;
                atomic_fetch_add_explicit(&dev->ev.settle_groups, 1, memory_order_relaxed);
                for (uint32_t j = o; j < o + k; j++)
                    f[j] = 0;
            }
        }
    }
    struct uz_rc_req one = *req;
    one.prio = p;
    one.threshold = 0;
    for (uint32_t j = 0; j < SETTLE_WINDOW; j++) {
        uint64_t i = b + j;
        uint32_t fj = f[j];
        int r = 0;
        if (!fj || (fj & SLOT_INCOMP))
            continue;
        if (fj & SLOT_GROUP) {
            uint32_t k = slot_group_pages(fj);
            if (j % k == 0 && slot_prio(fj) == 0)
                r = rc_group_unit(dev, &one, i, now, last_prio, tried);
            j += k - 1;
        } else if (fj & SLOT_SHARED) {
            if (!rc_mode_matches(req, fj, now))
                continue;
            struct uz_slot *s = uz_slot_at(dev, i);
            uint32_t id = (uint32_t)slot_handle(s);
            struct uz_stream *st = uz_stream_get(&dev->streams);
            struct uz_shared *rec = uz_shared_get(dev, id);
            uint32_t fr = uz_shared_view(dev, fj, id);
            if ((fr & SLOT_OBJ) && !(fr & SLOT_INCOMP) && slot_prio(fr) < p) {
                (*tried)++;
                r = rc_one(dev, i, &rec->s, fr & SLOT_STATE, &one, last_prio, id, st);
            }
            uz_shared_put(dev, id, rec);
            uz_stream_put(st);
        } else if ((fj & SLOT_OBJ) && settle_single(req, fj, now)) {
            (*tried)++;
            r = rc_one(dev, i, uz_slot_at(dev, i), fj, &one, last_prio, -1, NULL);
        }
        if (r < 0)
            return r;
        settled += r;
    }
    if (settled)
        atomic_fetch_add_explicit(&dev->ev.settle_pages, (uint64_t)settled, memory_order_relaxed);
    return settled;
}

/* Settling: windows of 8 aligned slots from req->lo, each looked at
 * unlocked, then locked whole (groups are aligned and at most 8 pages, so
 * none crosses a window) and settled. */
static int rc_settle(struct uz_store *dev, struct uz_rc_req *req, uint32_t p, uint32_t last_prio)
{
    uint64_t hi = req->hi < dev->nslots ? req->hi : dev->nslots;
    uint32_t now = uz_now(dev);
    uint64_t tried = 0, scanned = 0;
    int err = 0;
    uint64_t b = req->lo / SETTLE_WINDOW * SETTLE_WINDOW;
    for (;;) {
        if (b + SETTLE_WINDOW > hi) {
            /* the last whole window is behind: the tail of a device
             * whose size is not a multiple of 8 pages (under 8 pages,
             * never settled) ends the pass, so that the next one starts
             * again at 0 rather than here, where a pass would find no
             * window and never wrap */
            b = hi;
            break;
        }
        uint64_t nb = uz_next_used(dev, b, hi);
        if (nb >= hi) {
            b = hi;
            break;
        }
        if (nb / SETTLE_WINDOW * SETTLE_WINDOW > b) {
            b = nb / SETTLE_WINDOW * SETTLE_WINDOW;
            continue;
        }
        if ((req->max_pages && tried >= req->max_pages) || (req->scan_max && scanned >= req->scan_max))
            break;
        scanned += SETTLE_WINDOW;
        if (settle_wanted(dev, req, b, now)) {
            /* a pool's unit that clones read through is regrouped where
             * none of them has a page of its own, its same-filled pages
             * left out (clone.h, uz_clone_regroup_begin); elsewhere it
             * keeps its layout and is recompressed page by page */
            bool linked = uz_unit_has_dependents(dev, b);
            enum settle_layout layout = SETTLE_REGROUP;
            if (linked)
                layout = uz_clone_regroup_begin(dev, b, SETTLE_WINDOW) ? SETTLE_REGROUP_OBJ
                                                                        : SETTLE_KEEP;
            uz_lock_range(dev, b, b + SETTLE_WINDOW);
            int r = settle_window(dev, req, b, p, now, last_prio, layout, &tried);
            uz_unlock_range(dev, b, b + SETTLE_WINDOW);
            if (linked)
                uz_clone_regroup_end(dev, b);
            if (r < 0) {
                err = r;
                break;
            }
            req->done += (uint64_t)r;
        }
        b += SETTLE_WINDOW;
    }
    req->next = b < hi ? b : hi;
    if (req->done)
        uz_note_mem_used(dev);
    return err;
}

/* The request's work (uz_recompress less its bookkeeping). */
static int recompress(struct uz_store *dev, struct uz_rc_req *req)
{
    uint32_t last_prio = 0;
    for (uint32_t p = 1; p <= UZ_NR_SECONDARY; p++)
        if (configured(dev, p))
            last_prio = p;
    if (last_prio == 0)
        return uz_error(-EINVAL, "recompress: no secondary algorithm (set recomp_algorithm "
                        "before disksize)");
    if (req->prio && !configured(dev, req->prio))
        return uz_error(-EINVAL, "recompress: no secondary algorithm at priority %u", req->prio);
    uint32_t prio_max = req->prio ? req->prio : last_prio;
    if (req->settle) {
        uint32_t p = req->prio;
        for (uint32_t q = 1; q <= UZ_NR_SECONDARY && !p; q++)
            if (configured(dev, q))
                p = q;
        return rc_settle(dev, req, p, last_prio);
    }
    if (req->group > 1) {
        /* groups: the secondary asked for, or the first one configured */
        uint32_t p = req->prio;
        for (uint32_t q = 1; q <= UZ_NR_SECONDARY && !p; q++)
            if (configured(dev, q))
                p = q;
        if (req->group > UZ_GROUP_MAX || (req->group & (req->group - 1)))
            return uz_error(-EINVAL, "recompress: group is 2, 4 or 8 pages");
        return rc_groups(dev, req, p);
    }
    uint64_t hi = req->hi < dev->nslots ? req->hi : dev->nslots;
    uint32_t now = uz_now(dev);
    uint64_t tried = 0, scanned = 0;
    int err = 0;
    uint64_t i;
    for (i = uz_next_used(dev, req->lo, hi); i < hi; i = uz_next_used(dev, i + 1, hi)) {
        if ((req->max_pages && tried >= req->max_pages) || (req->scan_max && scanned >= req->scan_max))
            break;
        scanned++;
        uint32_t f0 = uz_slot_peek(dev, i);
        if (f0 & SLOT_GROUP) {
            /* a group: recompressed as a unit, from its first member */
            uint32_t k = slot_group_pages(f0);
            if (i % k == 0 && i + k <= hi) {
                uz_lock_range(dev, i, i + k);
                int r = rc_group_unit(dev, req, i, now, last_prio, &tried);
                uz_unlock_range(dev, i, i + k);
                if (r < 0) {
                    err = r;
                    break;
                }
                if (r > 0)
                    req->done += r;
            }
            continue;
        }
        /* a shared slot is looked at under its lock (its record says) */
        if (!(f0 & SLOT_SHARED) && !rc_wanted(req, f0, now, prio_max))
            continue;
        struct uz_slot *s = uz_slot_get(dev, i);
        uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed) & ~SLOT_LOCKBITS;
        if (f & SLOT_SHARED) {
            /* a shared page: recompressed once, in its record */
            uint32_t id = (uint32_t)slot_handle(s);
            struct uz_stream *st = uz_stream_get(&dev->streams);
            struct uz_shared *r = uz_shared_get(dev, id);
            uint32_t fr = uz_shared_view(dev, f, id);
            if (rc_wanted(req, fr, now, prio_max)) {
                tried++;
                err = rc_one(dev, i, &r->s, fr & SLOT_STATE, req, last_prio, id, st);
                if (err > 0)
                    req->done++;
            }
            uz_shared_put(dev, id, r);
            uz_stream_put(st);
        } else if (rc_wanted(req, f, now, prio_max)) {
            tried++;
            err = rc_one(dev, i, s, f & SLOT_STATE, req, last_prio, -1, NULL);
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

int uz_recompress(struct uz_store *dev, struct uz_rc_req *req)
{
    req->done = 0;
    req->next = req->lo;
    pthread_mutex_lock(&dev->recomp_lock);
    dev->recomp_users++;
    pthread_mutex_unlock(&dev->recomp_lock);
    int err = recompress(dev, req);
    pthread_mutex_lock(&dev->recomp_lock);
    dev->recomp_users--;
    pthread_mutex_unlock(&dev->recomp_lock);
    /* a request for the whole range (an attribute's) is a whole pass:
     * the group workspaces go back until the next one */
    if (!req->max_pages && !req->scan_max)
        uz_secondaries_rest(dev);
    return err;
}
