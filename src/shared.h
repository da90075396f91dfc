/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * shared.h - layer 1 of the store (src/README.md): shared records, the
 * anon layer's shared object (shared.c).  A record holds one page for
 * every slot that refers to it, with one reference count and one record
 * of where the page is.
 */
#ifndef UZRAM_SHARED_H
#define UZRAM_SHARED_H

#include "slot.h"

/* The record with this id (no pin, no lock). */
static inline struct uz_shared *uz_shared_at(struct uz_store *dev, uint32_t id)
{
    return uz_varray_at(&dev->records, id);
}

/* The state of the page a slot in state f (handle h) holds: its own, or
 * for a shared slot its record's with the slot's own IDLE bit and atime.
 * The slot and the record are locked. */
static inline uint32_t uz_shared_view(struct uz_store *dev, uint32_t f, uint64_t h)
{
    if (!(f & SLOT_SHARED) || h >= dev->records.nelems)
        return f;
    uint32_t r = atomic_load_explicit(&uz_shared_at(dev, (uint32_t)h)->s.flags, memory_order_relaxed);
    return (r & SLOT_STATE & ~SLOT_IDLE) | (f & (SLOT_IDLE | SLOT_ATIME_MASK));
}

/* Make and free the record table of a device being initialised / torn
 * down.  init: 0 or -ENOMEM (nothing made).  fini frees the backing
 * blocks of written-back records (the allocator goes as a whole). */
int uz_shared_init(struct uz_store *dev);
void uz_shared_fini(struct uz_store *dev);
/* Resident bytes of the record table and its id bitmap. */
uint64_t uz_shared_bytes(struct uz_store *dev);

/* Pin and lock record id / unlock and unpin.  Cannot fail. */
static inline struct uz_shared *uz_shared_get(struct uz_store *dev, uint32_t id)
{
    uz_varray_pin(&dev->records, id);
    struct uz_shared *r = uz_shared_at(dev, id);
    uz_slot_lock(&r->s);
    return r;
}

static inline void uz_shared_put(struct uz_store *dev, uint32_t id, struct uz_shared *r)
{
    uz_slot_unlock(&r->s);
    uz_varray_unpin(&dev->records, id);
}

/* A record's content (its references, its page, the counters) changes
 * in slot.c alone, as a slot's does: uz_shared_make, uz_shared_ref,
 * uz_shared_unref, uz_shared_commit and uz_shared_check are declared in
 * slot.h. */

#endif
