/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pool.h - layer 4 of the store (src/README.md): pools, many devices in
 * one store, and clones (pool.c).  The public side is in uzram.h
 * ("Pools").
 */
#ifndef UZRAM_POOL_H
#define UZRAM_POOL_H

#include "slot.h"

/* Clone units: struct uz_links (store.h) and pool.c, "Clones". */
/* The link of the unit under store slot idx (0: none), racy. */
static inline uint32_t uz_link_of(const struct uzram *st, uint64_t idx)
{
    return atomic_load_explicit(&st->links->link[idx / UZ_UNIT], memory_order_acquire);
}

/* Can a write to store slot idx go ahead without giving units slots of
 * their own (its unit is not linked, and no unit is linked to it)?
 * Racy, exact enough: links are made only with the store held
 * exclusively. */
static inline bool uz_pool_write_prepared(const struct uzram *st, uint64_t idx)
{
    const struct uz_links *l = st->links;
    uint64_t u = idx / UZ_UNIT;
    return atomic_load_explicit(&l->link[u], memory_order_acquire) == 0 &&
           atomic_load_explicit(&l->deps[u], memory_order_acquire) == 0;
}

/* May a whole-page write of one page to store slot idx, in a linked unit,
 * go straight to the unit's own slot (the target's page there is not in
 * a compressed group, whose layout the unit's own slots must not cut)?
 * Racy, exact enough: a target's groups do not change while units are
 * linked to it (recompress leaves them be), and if the link goes
 * meanwhile the slot is the unit's own anyway. */
static inline bool uz_pool_write_direct(const struct uzram *st, uint64_t idx)
{
    uint32_t l = uz_link_of(st, idx);
    if (!l)
        return false;
    uint64_t t = (uint64_t)(l - 1) * UZ_UNIT + idx % UZ_UNIT;
    return !(atomic_load_explicit(&uz_slot_at((struct uzram *)st, t)->flags,
                                  memory_order_relaxed) & SLOT_GROUP);
}

/* Before a write to store slot idx of device dev (in a pool): if its
 * unit is linked, give it slots of its own for all it still reads
 * through; if units of other devices are linked to it, give them theirs.  Holds no slot lock.  0, or -ENOMEM
 * (a record id, or a copy of a compressed group over mem_limit): nothing
 * is written, every device reads what it did. */
int uz_pool_prepare_write(struct uzram *dev, uint64_t idx);

/* The stripe lock of target unit t. */
static inline pthread_rwlock_t *uz_link_lock(struct uzram *st, uint64_t t)
{
    return &st->links->stripe[t % UZ_LINK_STRIPES];
}

/* Is dev a device of a pool (its pages in another struct's store)? */
static inline bool uz_in_pool(const struct uzram *dev)
{
    return dev->store != dev;
}

/* The data path's locks of a device: its init_lock, then (a device of a
 * pool) the store's, both for reading; uzram_check of a pool takes the
 * store's for writing to hold every device's I/O off.  Cannot fail. */
static inline void uz_dev_read_lock(struct uzram *dev)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    if (uz_in_pool(dev))
        pthread_rwlock_rdlock(&dev->store->init_lock);
}

static inline void uz_dev_read_unlock(struct uzram *dev)
{
    if (uz_in_pool(dev))
        pthread_rwlock_unlock(&dev->store->init_lock);
    pthread_rwlock_unlock(&dev->init_lock);
}

/* The pool's store (for its attributes). */
struct uzram *uz_pool_store(struct uzram_pool *pool);

/* Give an uninitialised device of a pool disksize bytes: a free range of
 * the store.  Caller holds its init_lock for writing and the store's for
 * reading.  0, or -EINVAL (size), -ENOSPC (no room in the pool's
 * capacity); on error nothing changes. */
int uz_pool_dev_init(struct uzram *dev, uint64_t disksize);
/* Free everything a device of a pool holds and give its range back (it
 * becomes uninitialised).  Caller holds its init_lock for writing and the
 * store's for reading.  Units of clones linked to its units get slots of
 * their own first, which can fail: -ENOMEM, and the device holds what it
 * did (the clones given slots keep them).  Every page is freed whole
 * (shared pages lose one reference; the range holds whole groups). */
int uz_pool_dev_teardown(struct uzram *dev);

/* uzram_destroy of a device of a pool: take it out of the pool and free
 * it, whatever holds it (the caller's promise: nothing else uses it).
 * Cannot fail. */
void uz_pool_dev_destroy(struct uzram *dev);

/* A device of a pool's kept content counters (store.h, "Zones"), read
 * racily (each counter is exact, the set is not a snapshot).  O(1);
 * cannot fail. */
struct uz_zone_snap {
    uint64_t pages_stored, compr_bytes, same_pages, huge_pages, shared_slots, linked, linked_same,
             dep_bytes;
};
void uz_pool_zone_read(struct uzram *dev, struct uz_zone_snap *out);

/* For uzram_check: the pool's own invariants (pool.c, "Invariants").
 * The caller holds the store's init_lock for writing.  0 or -EFAULT. */
int uz_pool_check(struct uzram *st);

#endif
