/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * device.h - layer 4 of the store (src/README.md): the device lifecycle
 * (device.c).  The public side (uzram_create, uzram_open, ...) is in
 * uzram.h.
 */
#ifndef UZRAM_DEVICE_H
#define UZRAM_DEVICE_H

#include "slot.h"
#include "store_life.h"

/* Is dev a device of a pool (its store shared with other devices)? */
static inline bool uz_in_pool(const struct uzram *dev)
{
    return dev->pool != NULL;
}

/* The data path's locks of a device: its init_lock, then its store's,
 * both for reading; uzram_check takes the store's for writing to hold
 * every device's I/O off.  Cannot fail. */
static inline void uz_dev_read_lock(struct uzram *dev)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    pthread_rwlock_rdlock(&dev->store->init_lock);
}

/* A reshaping change of a device (disksize, reset, settings): its
 * init_lock for writing, then its store's: for writing if the store is
 * the device's own (its live part is made and dropped with the device's
 * range), for reading if it is a pool's (the other devices go on).
 * Cannot fail. */
static inline void uz_dev_write_lock(struct uzram *dev)
{
    pthread_rwlock_wrlock(&dev->init_lock);
    if (dev->store->capacity)
        pthread_rwlock_rdlock(&dev->store->init_lock);
    else
        pthread_rwlock_wrlock(&dev->store->init_lock);
}

/* Releases either. */
static inline void uz_dev_unlock(struct uzram *dev)
{
    pthread_rwlock_unlock(&dev->store->init_lock);
    pthread_rwlock_unlock(&dev->init_lock);
}
#define uz_dev_read_unlock uz_dev_unlock

/* A device's holds while it is being removed: uzram_pool_get finds
 * nothing. */
#define UZ_DEV_REMOVING 0x80000000u

/* A new uninitialised device of store st (in its table, numbered lowest
 * free), with its init_lock held for writing if lock_init.  0, or
 * -ENOMEM, -ENOSPC (the store has its most devices). */
int uz_dev_new(struct uz_store *st, bool lock_init, struct uzram **out);
/* Tear d down and free it, and its store if that was its own; with
 * check, refuse (-EBUSY) while it is open or held (uzram_pool_get).
 * Nobody else may hold its locks.  0, or -EBUSY, or uz_dev_teardown's
 * error (d is as it was, still in its store). */
int uz_dev_remove(struct uzram *d, bool check);

/* Give an uninitialised device disksize bytes: a range of its store
 * (store_life.c, uz_store_range_get).  Caller holds uz_dev_write_lock.
 * 0, or -EINVAL (size), -ENOSPC (no room in a pool's capacity), -ENOMEM;
 * on error the device stays uninitialised and unchanged. */
int uz_dev_init(struct uzram *dev, uint64_t disksize);
/* Give the device's range back, everything stored in it dropped (its
 * settings are its store's and stay; a device's own store drops its live
 * part and what zram's reset clears).  The clones linked to its units
 * get slots of their own first.  Caller holds uz_dev_write_lock.  0, or
 * -ENOMEM / -EMLINK (the device holds what it did). */
int uz_dev_teardown(struct uzram *dev);
/* zram's reset: teardown, refused while the device is open.  Caller
 * holds uz_dev_write_lock.  0, -EBUSY (nothing done), or teardown's
 * errors. */
int uz_dev_reset(struct uzram *dev);
/* -EBUSY with a message naming what (an attribute) if the device is open
 * (uzram_open), else 0.  Caller holds init_lock for writing. */
int uz_dev_check_closed(struct uzram *dev, const char *what);

#endif
