/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * device.h - layer 4 of the store (src/README.md): the device lifecycle
 * (device.c).  The public side (uzram_create, uzram_open, ...) is in
 * uzram.h.
 */
#ifndef UZRAM_DEVICE_H
#define UZRAM_DEVICE_H

#include "slot.h"

/* Initialise an uninitialised device to disksize bytes with its current
 * config.  Caller holds init_lock for writing.  0, or -EINVAL (size),
 * -ENOMEM; on error the device stays uninitialised and unchanged. */
int uz_dev_init(struct uzram *dev, uint64_t disksize);
/* Tear the live device down (everything stored is dropped); settings are
 * kept.  Caller holds init_lock for writing.  Cannot fail. */
void uz_dev_teardown(struct uzram *dev);
/* zram's reset: teardown, and the settings reset puts back (device.c's
 * head lists what is kept and what is cleared).  Caller holds init_lock
 * for writing.  0, or -EBUSY while the device is open (nothing done). */
int uz_dev_reset(struct uzram *dev);
/* -EBUSY with a message naming what (an attribute) if the device is open
 * (uzram_open), else 0.  Caller holds init_lock for writing. */
int uz_dev_check_closed(struct uzram *dev, const char *what);

/* The dedup attribute's value: "0"/"off", "1"/"on", "auto" into *mode
 * (UZ_DEDUP_*).  0 or -EINVAL with a message. */
int uz_dedup_parse(const char *s, int *mode);

/* Everything the live device holds, in bytes (as uzram_stats.footprint),
 * given the allocator's stats. */
uint64_t uz_footprint(struct uzram *dev, const struct uz_alloc_stats *as);
/* mem_used_max := current use (what writing 0 to mem_used_max does). */
void uz_mem_used_max_reset(struct uzram *dev);
/* After a write or discard, no slot locked, init_lock held for reading:
 * run bounded compaction steps if the footprint is over auto_compact's
 * bound.  Cannot fail. */
void uz_dev_auto_compact(struct uzram *dev);

#endif
