/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store_life.h - layer 4 of the store (src/README.md): a store's
 * lifecycle (store_life.c).  struct uz_store is in store.h.
 */
#ifndef UZRAM_STORE_LIFE_H
#define UZRAM_STORE_LIFE_H

#include "slot.h"

/* A new store with the default settings, no live part and room for
 * max_devices devices (1: a device's own store).  0, or -ENOMEM. */
int uz_store_create(unsigned max_devices, struct uz_store **out);
/* The dedup attribute's value: "0"/"off", "1"/"on", "auto" into *mode
 * (UZ_DEDUP_*).  0 or -EINVAL with a message. */
int uz_dedup_parse(const char *s, int *mode);
/* Make the live part of an uninitialised store for nslots slots with its
 * current settings; its nslots (the end of scans) is set to nslots.
 * Caller holds the store's init_lock for writing (or nobody else can
 * reach the store).  0, or -EINVAL (an unknown algorithm or allocator),
 * -ENOMEM; on error the store stays uninitialised and unchanged. */
int uz_store_init(struct uz_store *st, uint64_t nslots);
/* Drop the live part and everything stored; settings are kept.  Same
 * locking.  Cannot fail. */
void uz_store_teardown(struct uz_store *st);
/* What zram's reset clears of the settings: mem_limit, the backing
 * device (closed), writeback_limit and writeback_limit_enable. */
void uz_store_reset_settings(struct uz_store *st);
/* Teardown, close the backing device, free.  NULL is a no-op. */
void uz_store_destroy(struct uz_store *st);

/* Everything the live store holds, in bytes (as uzram_stats.footprint),
 * given the allocator's stats. */
uint64_t uz_footprint(struct uz_store *st, const struct uz_alloc_stats *as);
/* mem_used_max := current use (what writing 0 to mem_used_max does). */
void uz_mem_used_max_reset(struct uz_store *st);
/* After a write or discard, no slot locked, the store's init_lock held
 * for reading: run bounded compaction steps if the footprint is over
 * auto_compact's bound.  Cannot fail. */
void uz_store_auto_compact(struct uz_store *st);

/* Put device d in the store's table, numbered lowest free (d->id).  0,
 * or -ENOSPC (the table is full). */
int uz_store_add(struct uz_store *st, struct uzram *d);
/* Take d out of the table.  True if the store is now a device's own
 * store with no device: the caller destroys it. */
bool uz_store_del(struct uz_store *st, struct uzram *d);

/* Give uninitialised device d a range of n slots (it becomes
 * initialised): in a pool's store, the first free range of whole units
 * in the capacity; in a device's own store, the live part made for n
 * slots.  The caller holds d's init_lock for writing and the store's
 * (uz_dev_write_lock).  0, or -ENOSPC (no room in the capacity), or
 * uz_store_init's errors; on error nothing changes. */
int uz_store_range_get(struct uz_store *st, struct uzram *d, uint64_t n);
/* Free every page of d's range and give it back (d becomes
 * uninitialised); a device's own store drops its live part.  Same
 * locking; the clones' links to the range are released first
 * (uz_clone_release).  Cannot fail. */
void uz_store_range_put(struct uz_store *st, struct uzram *d);

/* For uzram_check: the store's device ranges (store_life.c, P1-P3) and
 * the clones' invariants (clone.c, P4-P6).  The caller holds the store's
 * init_lock for writing.  0 or -EFAULT. */
int uz_store_check(struct uz_store *st);

#endif
