/*
 * pool.h - layer 4 of the store (src/README.md): pools, many devices in
 * one store, and clones (pool.c).  The public side is in uzram.h
 * ("Pools").
 */
#ifndef UZRAM_POOL_H
#define UZRAM_POOL_H

#include "slot.h"

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
 * store's for reading.  Cannot fail: every page of the range is freed
 * whole (shared pages lose one reference; the range holds whole groups). */
void uz_pool_dev_teardown(struct uzram *dev);

/* uzram_destroy of a device of a pool: take it out of the pool and free
 * it, whatever holds it (the caller's promise: nothing else uses it).
 * Cannot fail. */
void uz_pool_dev_destroy(struct uzram *dev);

/* The content counters of the slots [lo, hi) of a store, recounted under
 * their locks (a device of a pool has no counters of its own).  What
 * refers to a shared record counts in shared_slots (and in pages_stored
 * while the record's page is in RAM), not in compr_bytes.  Cannot fail. */
void uz_pool_recount(struct uzram *st, uint64_t lo, uint64_t hi, struct uz_tally_snap *t);

/* For uzram_check: the pool's own invariants (pool.c, "Invariants").
 * The caller holds the store's init_lock for writing.  0 or -EFAULT. */
int uz_pool_check(struct uzram *st);

#endif
