/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * clone.h - layer 1 of the store (src/README.md): clone links between
 * units of a store (clone.c).  struct uz_links is in store.h; the public
 * side, uzram_clone, is pool.c's.  Every other file reaches the links
 * through this header alone.
 */
#ifndef UZRAM_CLONE_H
#define UZRAM_CLONE_H

#include "slot.h"

/* Can the store's units be linked at all (a pool's store)? */
static inline bool uz_store_links(const struct uz_store *st)
{
    return st->links != NULL;
}

/* The link of the unit under store slot idx (0: none; else its target
 * unit + 1), racy.  0 in a store without links. */
static inline uint32_t uz_link_of(const struct uz_store *st, uint64_t idx)
{
    if (!st->links)
        return 0;
    return atomic_load_explicit(&st->links->link[idx / UZ_UNIT], memory_order_acquire);
}

/* Do units read through to the unit under store slot idx?  Racy, exact
 * enough for its callers: links are made only with the store held
 * exclusively.  A unit that has dependents keeps its groups as they are;
 * settling regroups its pages only where no linked unit has a page of
 * its own (uz_clone_regroup_begin). */
static inline bool uz_unit_has_dependents(const struct uz_store *st, uint64_t idx)
{
    return st->links &&
           atomic_load_explicit(&st->links->deps[idx / UZ_UNIT], memory_order_relaxed) != 0;
}

/* Can a write to store slot idx go ahead without giving units slots of
 * their own (its unit is not linked, and no unit is linked to it)?
 * Racy, exact enough: links are made only with the store held
 * exclusively.  True in a store without links. */
static inline bool uz_clone_write_prepared(const struct uz_store *st, uint64_t idx)
{
    const struct uz_links *l = st->links;
    if (!l)
        return true;
    uint64_t u = idx / UZ_UNIT;
    return atomic_load_explicit(&l->link[u], memory_order_acquire) == 0 &&
           atomic_load_explicit(&l->deps[u], memory_order_acquire) == 0;
}

/* May a whole-page write of one page to store slot idx, in a linked unit,
 * go straight to the unit's own slot (the target's page there is not in
 * a compressed group, whose layout the unit's own slots must not cut)?
 * The caller holds the target's stripe lock for reading from this check
 * until the page is committed: settling makes a target's groups only
 * under it for writing (uz_clone_regroup_begin); if the link goes
 * meanwhile the slot is the unit's own anyway. */
static inline bool uz_clone_write_direct(const struct uz_store *st, uint64_t idx)
{
    uint32_t l = uz_link_of(st, idx);
    if (!l)
        return false;
    uint64_t t = (uint64_t)(l - 1) * UZ_UNIT + idx % UZ_UNIT;
    return !(atomic_load_explicit(&uz_slot_at((struct uz_store *)st, t)->flags,
                                  memory_order_relaxed) & SLOT_GROUP);
}

/* The stripe lock of target unit t. */
static inline pthread_rwlock_t *uz_link_lock(struct uz_store *st, uint64_t t)
{
    return &st->links->stripe[t % UZ_LINK_STRIPES];
}

/* Before a write to store slot idx: if its unit is linked, give it slots
 * of its own for all it still reads through; if units of other devices
 * are linked to it, give them theirs.  Holds no slot lock.  0, or -ENOMEM
 * (a record id, or a copy of a compressed group over mem_limit) or
 * -EMLINK (a shared page has the most references it can take), with a
 * message: nothing is written, every device reads what it did. */
int uz_clone_prepare_write(struct uz_store *st, uint64_t idx);

/* Before store slots [lo, hi) (a device's range, a whole number of
 * units) are freed: the units linked to them get slots of their own,
 * and their own links are dropped.  The caller holds the device's
 * init_lock for writing and the store's for reading.  0, or -ENOMEM /
 * -EMLINK with a message (the units given slots keep them; the range
 * holds what it did).  0 at once in a store without links. */
int uz_clone_release(struct uz_store *st, uint64_t lo, uint64_t hi);

/* Link the units of device c (just sized to src's size, empty) to src's
 * (or to what src's are linked to).  The caller holds the store's
 * init_lock for writing.  0, or uz_clone_prepare_write's errors; on
 * error the links made so far stay (the caller releases c's range). */
int uz_clone_link(struct uz_store *st, const struct uzram *src, const struct uzram *c);

/* Before settling store slots [lo, lo + n) of a unit that units are
 * linked to (n divides UZ_UNIT, lo a multiple of n, so one unit): takes
 * the unit's stripe lock for writing, which holds off reads through it
 * and the linked units' direct writes (io.c), and says whether the
 * window's pages may be regrouped: no linked unit has a page of its own
 * among them (P4).  The caller then regroups only pages of the target's
 * own that are not same-filled (the linked units count what they read
 * through to a same-filled page: slot.c, zone_commit), and calls
 * uz_clone_regroup_end.  Cannot fail. */
bool uz_clone_regroup_begin(struct uz_store *st, uint64_t lo, uint64_t n);
void uz_clone_regroup_end(struct uz_store *st, uint64_t lo);

/* For uzram_check: P4-P6 (clone.c, "Invariants").  The caller holds the
 * store's init_lock for writing.  0 or -EFAULT; 0 without links. */
int uz_clone_check(struct uz_store *st);

#endif
