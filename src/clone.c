/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * clone.c - layer 1 of the store (src/README.md): clone links, the units
 * of a store that read through to other units, and their dependents.
 *
 * A pool's store is cut into units of UZ_UNIT slots (two table pages, a
 * whole number of the largest group: store.h, struct uz_links); device
 * ranges start on a unit.  uzram_clone (pool.c) makes a device of the
 * source's size whose units read through to the source's wherever they
 * have no page of their own: link[clone unit] names the source unit,
 * deps[source unit] counts the units linked to it.  That is one look per
 * unit, not per page: a clone of a gigabyte takes microseconds and costs
 * nothing until written.  A clone of a clone links to the first one's
 * target while the first one has no page of its own there (else that
 * unit is made whole first), so a read goes through one link at most.
 *
 * A linked unit's target must not change what it holds.  So:
 *   - a whole-page write of one page to a linked unit goes to the unit's
 *     own slot (if the target's page there is not in a compressed group),
 *     the rest of the unit still reading through: a clone written at
 *     random costs what is written and its table pages;
 *   - any other write to a linked unit (part of a page, a discard, a
 *     group), and any write to a unit that units are linked to, first
 *     gives the linked units slots of their own where they have none
 *     (uz_clone_prepare_write): with both units' slots locked, every
 *     object or backing block of the target becomes a shared record
 *     (shared.c) if it is not one, and the clone's slot one more
 *     reference to it; same-filled pages are copied; a compressed group's
 *     chunks are copied (a record holds one page, a group is one stream).
 *     That costs the unit's table pages and a 16-byte record per page the
 *     two then share, never a byte of data.
 * What does not change what a page holds (compaction, writeback,
 * recompression of a page, idle marks, the content index making a
 * record) works on a target as on any unit, and the linked units read it
 * as it is.  Settling regroups a target's window of pages only where no
 * linked unit has a page of its own, under the target's stripe lock for
 * writing, which the linked units' direct writes hold for reading from
 * their check to their commit (uz_clone_regroup_begin; P4 holds); other
 * recompression does not regroup a target's pages (clone.h,
 * uz_unit_has_dependents).  Resetting or removing a device first gives
 * the units linked to its own slots of their own, and drops its own
 * links (uz_clone_release): there are no parent chains, the source, a
 * clone or a clone of a clone can go in any order.
 *
 * Only clones link, and a clone has its source's size: the units linked
 * to a device's k-th unit are other devices' k-th units, so finding them
 * is one look per device of the store (the anon layer's "find every
 * user": bounded by the devices, not by the pages).
 *
 * Every slot change here goes through uz_slot_commit / uz_slot_free
 * (slot.c) and the shared records' functions, which keep the counters
 * and the devices' zones; the zones' linked pages are counted here, when
 * a link is made (zone_link) or dropped (deps_add, the unlinks).
 *
 * Invariants (uz_clone_check, run by uz_store_check):
 *   P4  a linked unit links to a unit that is not linked itself (no
 *       chains) inside the store, and its own pages (where it has them)
 *       lie outside its target's compressed groups;
 *   P5  a unit's deps count equals the units linked to it;
 *   P6  every device's zone (store.h, "Zones": the counters its stats
 *       read) equals a recount of its slots and links.
 *
 * Locking (src/README.md, "Lock order"): a target unit's stripe lock
 * (clone.h) comes after the store's init_lock and before any slot lock:
 * a read through a link holds it for reading; giving a linked unit its
 * own slots holds it for writing and then locks both units' slots in
 * ascending order.  Nothing that holds a slot lock waits for a stripe.
 * Links are made only with the store's init_lock held for writing.
 */
#define _GNU_SOURCE
#include "clone.h"
#include "shared.h"
#include "error.h"

#include <errno.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE
#define RELAXED memory_order_relaxed

/* ------------------------------------------------- copying a unit's slots */

/* Copy the group of k locked slots from sg to the locked empty slots from
 * cg: new objects for the chunks.  0 or -ENOMEM (cg's slots stay empty). */
static int clone_group(struct uz_store *st, uint64_t sg, uint64_t cg, uint32_t k)
{
    uint64_t h[UZ_GROUP_MAX] = {0};
    size_t sz[UZ_GROUP_MAX] = {0};
    for (uint32_t j = 0; j < k; j++) {
        uint64_t sh = slot_handle(uz_slot_at(st, sg + j));
        if (!sh)
            continue;
        sz[j] = st->aops->obj_size(st->alloc, sh);
        if (st->aops->alloc(st->alloc, sz[j], (uint32_t)(cg + j), &h[j]) < 0) {
            for (uint32_t i = 0; i < j; i++)
                if (h[i])
                    st->aops->free(st->alloc, h[i]);
            return uz_error(-ENOMEM, "clone: no memory for a copy of a compressed group%s",
                            atomic_load(&st->limit_pages) ? " (mem_limit)" : "");
        }
        memcpy(st->aops->map(st->alloc, h[j]), st->aops->map(st->alloc, sh), sz[j]);
    }
    for (uint32_t j = 0; j < k; j++) {
        uint32_t f = uz_slot_state(uz_slot_at(st, sg + j)) & ~SLOT_IDLE;
        uz_slot_commit(st, cg + j, uz_slot_at(st, cg + j), f, h[j], sz[j]);
    }
    return 0;
}

/*
 * copy_unit - give the empty ones of the n slots from `to` the
 * content of the n slots from `from` (a slot of `to`
 * that holds a page keeps it), in one pass: the caller holds every one of
 * those 2n slots locked (a clone's unit and its target).  A same-filled
 * page is copied; an object or backing block becomes a record (if it is
 * not one) with one more reference, the new slot's; a compressed group's
 * chunks are copied into new objects (a record holds one page, and a
 * group is one stream; a group is copied only where all its new slots
 * are empty, else -EFAULT).  Every counter is kept (uz_slot_commit).  0, or -ENOMEM (no
 * record id, or no memory for a group's copy) or -EMLINK (a record is full):
 * then the slots done so far are cloned, the rest of [to, to + n) is
 * empty, and every source slot reads what it did; the caller empties the
 * new slots again (uz_slot_free, one reference each).
 */
static int copy_unit(struct uz_store *st, uint64_t from, uint64_t to, uint64_t n)
{
    int err = 0;
    uint64_t end = from + n < st->nslots ? from + n : st->nslots;   /* (scans stop there) */
    for (uint64_t i = uz_next_used(st, from, end); i < end; i = uz_next_used(st, i + 1, end)) {
        struct uz_slot *s = uz_slot_at(st, i), *c;
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s), ci = to + (i - from);
        if (!f || uz_slot_state(c = uz_slot_at(st, ci)))
            continue;   /* nothing there, or the new slot has its own page */
        if (f & SLOT_GROUP) {
            uint32_t k = slot_group_pages(f);   /* the leader comes first */
            for (uint32_t j = 0; j < k && err == 0; j++)
                if (uz_slot_state(uz_slot_at(st, ci + j)))
                    err = uz_error(-EFAULT, "clone: slot %llu has a page of its own inside "
                                   "the group it shares", (unsigned long long)(ci + j));
            if (err == 0)
                err = clone_group(st, i, ci, k);
            if (err < 0)
                break;
            i += k - 1;
            continue;
        }
        if (f & SLOT_SAME) {
            uz_slot_commit(st, ci, c, SLOT_SAME, h, 0);
            continue;
        }
        uint32_t id = (uint32_t)h;
        if (!(f & SLOT_SHARED) && uz_shared_make(st, i, s, &id) < 0) {
            err = uz_error(-ENOMEM, "clone: no shared record id for slot %llu",
                           (unsigned long long)i);
            break;
        }
        /* the record's lock: slots outside the two units may share it */
        struct uz_shared *r = uz_shared_get(st, id);
        err = uz_shared_ref(st, r);
        uz_shared_put(st, id, r);
        if (err < 0) {
            err = uz_error(err, "clone: a shared page has the most references it can take");
            break;
        }
        uz_slot_commit(st, ci, c, SLOT_SHARED, id, 0);
    }
    return err;
}

/* ------------------------------------------------------------- unlinking */

/* Lock / unlock every slot of units a and b (a != b), lower unit first:
 * slot locks go in ascending order. */
static void lock_units(struct uz_store *st, uint64_t a, uint64_t b)
{
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    for (uint64_t i = lo * UZ_UNIT; i < lo * UZ_UNIT + UZ_UNIT; i++)
        (void)uz_slot_get(st, i);
    for (uint64_t i = hi * UZ_UNIT; i < hi * UZ_UNIT + UZ_UNIT; i++)
        (void)uz_slot_get(st, i);
}

static void unlock_units(struct uz_store *st, uint64_t a, uint64_t b)
{
    for (uint64_t i = a * UZ_UNIT; i < a * UZ_UNIT + UZ_UNIT; i++)
        uz_slot_put(st, i, uz_slot_at(st, i));
    for (uint64_t i = b * UZ_UNIT; i < b * UZ_UNIT + UZ_UNIT; i++)
        uz_slot_put(st, i, uz_slot_at(st, i));
}

/* The bytes of the objects unit t's slots own (not records'): what
 * its zone's dep_bytes holds of it while units are linked to it.  The
 * caller keeps t's slots still (their locks, or the store). */
static uint64_t unit_bytes(struct uz_store *st, uint64_t t)
{
    uint64_t n = 0, end = t * UZ_UNIT + UZ_UNIT;
    for (uint64_t i = uz_next_used(st, t * UZ_UNIT, end); i < end; i = uz_next_used(st, i + 1, end)) {
        struct uz_slot *s = uz_slot_at(st, i);
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s);
        if ((f & SLOT_GROUP) && h)
            n += st->aops->obj_size(st->alloc, h);
        else if (!(f & SLOT_GROUP) && (f & SLOT_OBJ))
            n += uz_obj_bytes(st, f, h);
    }
    return n;
}

/* deps[t] += d (+1 or -1); when units become (stop being) linked to t,
 * its bytes enter (leave) its zone's dep_bytes.  The caller keeps t's
 * slots still, as for unit_bytes. */
static void deps_add(struct uz_store *st, uint64_t t, int d)
{
    uint32_t was = atomic_fetch_add(&st->links->deps[t], (uint32_t)d);
    if (!(d > 0 ? was == 0 : was == 1))
        return;
    uint16_t k = atomic_load_explicit(&st->zones->of_unit[t], RELAXED);
    if (!k)
        return;
    uint64_t b = unit_bytes(st, t);
    struct uz_zone *z = &st->zones->zone[k - 1];
    if (d > 0)
        atomic_fetch_add_explicit(&z->dep_bytes, b, RELAXED);
    else
        atomic_fetch_sub_explicit(&z->dep_bytes, b, RELAXED);
}

/* Unit u, linked to t, gets slots of its own where it has none: what t
 * holds, shared (copy_unit).  0 (also if someone did it first), or
 * -ENOMEM / -EMLINK with u still linked and holding only the pages of its
 * own it held. */
static int unlink_copy(struct uz_store *st, uint64_t u, uint64_t t)
{
    struct uz_links *l = st->links;
    pthread_rwlock_wrlock(uz_link_lock(st, t));
    int err = 0;
    if (atomic_load(&l->link[u]) == t + 1) {
        lock_units(st, u, t);
        /* the unit's own pages, which a failure must leave */
        uint64_t own[(UZ_UNIT + 63) / 64] = {0};
        for (uint64_t j = 0; j < UZ_UNIT; j++)
            if (uz_slot_state(uz_slot_at(st, u * UZ_UNIT + j)))
                own[j / 64] |= 1ull << (j % 64);
        err = copy_unit(st, t * UZ_UNIT, u * UZ_UNIT, UZ_UNIT);
        if (err == 0) {
            atomic_store(&l->link[u], 0);
            deps_add(st, t, -1);
        } else {
            for (uint64_t j = 0; j < UZ_UNIT; j++) {
                uint64_t i = u * UZ_UNIT + j;
                if (!(own[j / 64] >> (j % 64) & 1) && uz_slot_state(uz_slot_at(st, i)))
                    uz_slot_free(st, i, uz_slot_at(st, i));
            }
        }
        unlock_units(st, u, t);
    }
    pthread_rwlock_unlock(uz_link_lock(st, t));
    return err;
}

/* Unit u, linked to t, is dropped (its device is reset or removed). */
static void unlink_drop(struct uz_store *st, uint64_t u, uint64_t t)
{
    struct uz_links *l = st->links;
    pthread_rwlock_wrlock(uz_link_lock(st, t));
    if (atomic_load(&l->link[u]) == t + 1) {
        /* t's slots still while its bytes may leave dep_bytes */
        for (uint64_t i = t * UZ_UNIT; i < t * UZ_UNIT + UZ_UNIT; i++)
            (void)uz_slot_get(st, i);
        atomic_store(&l->link[u], 0);
        deps_add(st, t, -1);
        for (uint64_t i = t * UZ_UNIT; i < t * UZ_UNIT + UZ_UNIT; i++)
            uz_slot_put(st, i, uz_slot_at(st, i));
    }
    pthread_rwlock_unlock(uz_link_lock(st, t));
}

/* The units linked to unit t, into cand (at most UZRAM_POOL_MAX_DEVICES):
 * only clones link, and a clone has its source's size, so such units are
 * the k-th of other devices, if t is the k-th of its own (of_unit): one
 * look per device.  Their number. */
static int find_dependents(struct uz_store *st, uint64_t t, uint32_t *cand)
{
    uint16_t owner = atomic_load_explicit(&st->zones->of_unit[t], RELAXED);
    if (!owner)
        return 0;
    int n = 0;
    pthread_mutex_lock(&st->dev_lock);
    struct uzram *d = st->dev[owner - 1];
    uint64_t k = d ? t - d->base / UZ_UNIT : 0;
    for (unsigned i = 0; d && i < st->max_devices; i++) {
        struct uzram *e = st->dev[i];
        if (!e || e == d || !e->initialised || k * UZ_UNIT >= atomic_load(&e->nslots))
            continue;
        uint64_t u = e->base / UZ_UNIT + k;
        if (atomic_load(&st->links->link[u]) == t + 1)
            cand[n++] = (uint32_t)u;
    }
    pthread_mutex_unlock(&st->dev_lock);
    return n;
}

/* Every unit linked to unit t gets slots of its own. */
static int unlink_dependents(struct uz_store *st, uint64_t t)
{
    uint32_t cand[UZRAM_POOL_MAX_DEVICES];
    int n = find_dependents(st, t, cand);
    for (int i = 0; i < n; i++) {
        int err = unlink_copy(st, cand[i], t);
        if (err < 0)
            return err;
    }
    return 0;
}

bool uz_clone_regroup_begin(struct uz_store *st, uint64_t lo, uint64_t n)
{
    uint64_t t = lo / UZ_UNIT, j0 = lo % UZ_UNIT;
    uint32_t cand[UZRAM_POOL_MAX_DEVICES];
    /* found before the stripe lock (dev_lock is not taken under one);
     * a unit linked meanwhile is empty, so has no page of its own */
    int nc = find_dependents(st, t, cand);
    pthread_rwlock_wrlock(uz_link_lock(st, t));
    bool ok = true;
    for (int i = 0; i < nc && ok; i++) {
        if (atomic_load(&st->links->link[cand[i]]) != t + 1)
            continue;
        for (uint64_t j = j0; j < j0 + n && ok; j++)
            ok = !uz_slot_state(uz_slot_at(st, (uint64_t)cand[i] * UZ_UNIT + j));
    }
    return ok;
}

void uz_clone_regroup_end(struct uz_store *st, uint64_t lo)
{
    pthread_rwlock_unlock(uz_link_lock(st, lo / UZ_UNIT));
}

int uz_clone_prepare_write(struct uz_store *st, uint64_t idx)
{
    struct uz_links *l = st->links;
    uint64_t u = idx / UZ_UNIT;
    uint32_t t = atomic_load(&l->link[u]);
    int err = t ? unlink_copy(st, u, t - 1) : 0;
    if (err == 0 && atomic_load(&l->deps[u]))
        err = unlink_dependents(st, u);
    return err;
}


int uz_clone_release(struct uz_store *st, uint64_t lo, uint64_t hi)
{
    struct uz_links *l = st->links;
    if (!l)
        return 0;
    for (uint64_t u = lo / UZ_UNIT; u * UZ_UNIT < hi; u++) {
        uint32_t t = atomic_load(&l->link[u]);
        if (t)
            unlink_drop(st, u, t - 1);
        if (atomic_load(&l->deps[u])) {
            int err = unlink_dependents(st, u);
            if (err < 0)
                return err;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- linking */

/* Does unit u hold a live slot (either of its table pages in use)? */
static bool unit_used(struct uz_store *st, uint64_t u)
{
    uint64_t end = u * UZ_UNIT + UZ_UNIT;
    return uz_next_used(st, u * UZ_UNIT, end) < end;
}

/* A clone's unit was linked to unit u (the store held exclusively):
 * its zone reads u's pages (store.h, "Zones"). */
static void zone_link(struct uz_store *st, struct uz_zone *z, uint64_t u)
{
    uint64_t n = 0, same = 0, end = u * UZ_UNIT + UZ_UNIT;
    for (uint64_t i = uz_next_used(st, u * UZ_UNIT, end); i < end; i = uz_next_used(st, i + 1, end)) {
        uint32_t f = uz_slot_state(uz_slot_at(st, i));
        n += f != 0;
        same += (f & (SLOT_SAME | SLOT_GROUP)) == SLOT_SAME;
    }
    atomic_fetch_add_explicit(&z->linked, n, RELAXED);
    atomic_fetch_add_explicit(&z->linked_same, same, RELAXED);
}

int uz_clone_link(struct uz_store *st, const struct uzram *src, const struct uzram *c)
{
    struct uz_links *l = st->links;
    uint64_t su = src->base / UZ_UNIT, cu = c->base / UZ_UNIT;
    uint64_t units = (atomic_load(&src->nslots) + UZ_UNIT - 1) / UZ_UNIT;
    int err = 0;
    for (uint64_t k = 0; k < units && err == 0; k++) {
        uint32_t t = atomic_load(&l->link[su + k]);
        uint64_t target = t ? t - 1 : su + k;
        if (t && unit_used(st, su + k)) {
            /* the source's unit is linked but has pages of its own:
             * it becomes whole first, and the clone links to it */
            err = unlink_copy(st, su + k, t - 1);
            target = su + k;
        } else if (!t && !unit_used(st, target)) {
            continue;
        }
        if (err == 0) {
            atomic_store(&l->link[cu + k], (uint32_t)target + 1);
            deps_add(st, target, +1);
            zone_link(st, &st->zones->zone[c->id], target);
        }
    }
    return err;
}

/* ----------------------------------------------------------------- check */

/* Recount device d's zone from its slots (store.h, "Zones"), for the
 * check: no locks, the caller holds the store exclusively. */
static void zone_recount(struct uz_store *st, const struct uzram *d, struct uz_zone_snap *t)
{
    memset(t, 0, sizeof *t);
    uint64_t lo = d->base, hi = d->base + atomic_load(&d->nslots);
    for (uint64_t i = uz_next_used(st, lo, hi); i < hi; i = uz_next_used(st, i + 1, hi)) {
        struct uz_slot *s = uz_slot_at(st, i);
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s);
        if (!f)
            continue;
        if (f & SLOT_SHARED) {
            t->shared_slots++;
            t->pages_stored++;
            continue;
        }
        t->pages_stored += !!(f & (SLOT_OBJ | SLOT_SAME | SLOT_GROUP));
        if (f & SLOT_GROUP) {
            if (h)
                t->compr_bytes += st->aops->obj_size(st->alloc, h);
            continue;
        }
        t->same_pages += !!(f & SLOT_SAME);
        t->huge_pages += !!(f & SLOT_HUGE);
        if (f & SLOT_OBJ)
            t->compr_bytes += uz_obj_bytes(st, f, h);
    }
    /* linked units: the target's pages where d has none */
    for (uint64_t u = lo / UZ_UNIT; u * UZ_UNIT < hi; u++) {
        if (atomic_load(&st->links->deps[u]))
            t->dep_bytes += unit_bytes(st, u);
        uint32_t l = atomic_load(&st->links->link[u]);
        if (!l)
            continue;
        uint64_t q = (uint64_t)(l - 1) * UZ_UNIT, end = q + UZ_UNIT;
        for (uint64_t i = uz_next_used(st, q, end); i < end; i = uz_next_used(st, i + 1, end)) {
            uint32_t tf = uz_slot_state(uz_slot_at(st, i));
            if (!tf || uz_slot_state(uz_slot_at(st, u * UZ_UNIT + (i - q))))
                continue;
            t->linked++;
            t->linked_same += (tf & (SLOT_SAME | SLOT_GROUP)) == SLOT_SAME;
        }
    }
}

#define FAIL(...) uz_error(-EFAULT, "check: " __VA_ARGS__)

int uz_clone_check(struct uz_store *st)
{
    struct uz_links *l = st->links;
    if (!l)
        return 0;
    int err = 0;
    uint64_t end = atomic_load(&st->nslots);
    uint64_t units = (end + UZ_UNIT - 1) / UZ_UNIT;
    /* P4, P5: links */
    for (uint64_t u = 0; err == 0 && u < units; u++) {
        uint32_t t = atomic_load(&l->link[u]);
        if (!t)
            continue;
        if (t - 1 >= units || atomic_load(&l->link[t - 1])) {
            err = FAIL("pool: unit %llu links to unit %u, which is %s", (unsigned long long)u,
                       t - 1, t - 1 >= units ? "past the store's end" : "linked itself");
            break;
        }
        /* its own pages lie outside the target's groups */
        uint64_t q = (uint64_t)(t - 1) * UZ_UNIT;
        for (uint64_t j = 0; err == 0 && j < UZ_UNIT; j++)
            if (uz_slot_state(uz_slot_at(st, u * UZ_UNIT + j)) &&
                (uz_slot_state(uz_slot_at(st, q + j)) & SLOT_GROUP))
                err = FAIL("pool: slot %llu of linked unit %llu has a page of its own inside "
                           "its target's group", (unsigned long long)(u * UZ_UNIT + j),
                           (unsigned long long)u);
    }
    for (uint64_t t = 0; err == 0 && t < units; t++) {
        uint32_t want = atomic_load(&l->deps[t]), seen = 0;
        if (!want)
            continue;
        for (uint64_t u = 0; u < units; u++)
            seen += atomic_load(&l->link[u]) == t + 1;
        if (seen != want)
            err = FAIL("pool: unit %llu counts %u units linked to it, %u are",
                       (unsigned long long)t, want, seen);
    }
    /* P6: every device's kept counters equal a recount of its slots */
    for (unsigned i = 0; err == 0 && i < st->max_devices; i++) {
        struct uzram *d = st->dev[i];
        if (!d || !d->initialised)
            continue;
        struct uz_zone_snap kept, seen;
        uz_zone_read(st, d->id, &kept);
        zone_recount(st, d, &seen);
        if (memcmp(&kept, &seen, sizeof kept))
            err = FAIL("pool: zram%d counts stored %llu bytes %llu same %llu huge %llu shared "
                       "%llu linked %llu (%llu same) dep bytes %llu; its slots hold %llu %llu %llu "
                       "%llu %llu %llu (%llu) %llu", d->id,
                       (unsigned long long)kept.pages_stored, (unsigned long long)kept.compr_bytes,
                       (unsigned long long)kept.same_pages, (unsigned long long)kept.huge_pages,
                       (unsigned long long)kept.shared_slots, (unsigned long long)kept.linked,
                       (unsigned long long)kept.linked_same, (unsigned long long)kept.dep_bytes,
                       (unsigned long long)seen.pages_stored, (unsigned long long)seen.compr_bytes,
                       (unsigned long long)seen.same_pages, (unsigned long long)seen.huge_pages,
                       (unsigned long long)seen.shared_slots, (unsigned long long)seen.linked,
                       (unsigned long long)seen.linked_same, (unsigned long long)seen.dep_bytes);
    }
    return err;
}
