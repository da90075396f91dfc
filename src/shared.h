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
static inline struct uz_shared *uz_shared_at(struct uzram *dev, uint32_t id)
{
    return uz_varray_at(&dev->records, id);
}

/* The state of the page a slot in state f (handle h) holds: its own, or
 * for a shared slot its record's with the slot's own IDLE bit and atime.
 * The slot and the record are locked. */
static inline uint32_t uz_shared_view(struct uzram *dev, uint32_t f, uint64_t h)
{
    if (!(f & SLOT_SHARED) || h >= dev->records.nelems)
        return f;
    uint32_t r = atomic_load_explicit(&uz_shared_at(dev, (uint32_t)h)->s.flags, memory_order_relaxed);
    return (r & SLOT_STATE & ~SLOT_IDLE) | (f & (SLOT_IDLE | SLOT_ATIME_MASK));
}

/* Make and free the record table of a device being initialised / torn
 * down.  init: 0 or -ENOMEM (nothing made).  fini frees the backing
 * blocks of written-back records (the allocator goes as a whole). */
int uz_shared_init(struct uzram *dev);
void uz_shared_fini(struct uzram *dev);
/* Resident bytes of the record table and its id bitmap. */
uint64_t uz_shared_bytes(struct uzram *dev);

/* Pin and lock record id / unlock and unpin.  Cannot fail. */
struct uz_shared *uz_shared_get(struct uzram *dev, uint32_t id);
void uz_shared_put(struct uzram *dev, uint32_t id, struct uz_shared *r);

/*
 * uz_shared_make - turn the unique page of locked slot idx (state OBJ or
 * WB, not a group member) into a record with one reference, the slot's:
 * the object or block stays where it is, an object's back-reference
 * becomes the record's, the
 * slot becomes SLOT_SHARED (keeping its IDLE bit and atime).  0 and the
 * id in *id, or -ENOMEM (no id could be allocated: nothing changed).
 */
int uz_shared_make(struct uzram *dev, uint64_t idx, struct uz_slot *s, uint32_t *id);

/* Take one more reference on a locked record that is in use (refs > 0),
 * for a slot that is about to be committed SLOT_SHARED with this id
 * (uz_slot_commit).  Cannot fail: refs saturate below 2^32 - 1 with
 * -EMLINK (the caller then stores its page alone). */
int uz_shared_ref(struct uzram *dev, struct uz_shared *r);
/* Drop one reference (what uz_slot_commit does when a shared slot's
 * content is replaced); the last one frees the page and the record.
 * Takes the record's lock.  Cannot fail. */
void uz_shared_unref(struct uzram *dev, uint32_t id);

/*
 * uz_shared_commit - replace where a locked record's page is (writeback,
 * recompression): state (OBJ [| HUGE | prio | INCOMP] or WB [| prio |
 * INCOMP]) with handle, bytes long (0 for WB).  The old object or block is
 * freed; every counter is kept (for all of the record's references at
 * once).  The caller made the new object or block first.  Cannot fail.
 */
void uz_shared_commit(struct uzram *dev, uint32_t id, struct uz_shared *r, uint32_t state,
                      uint64_t handle, size_t bytes);

/*
 * uz_shared_clone - give the empty ones of the n slots from `to` the
 * content of the n slots from `from` (pool.c's clones; a slot of `to`
 * that holds a page keeps it), in one pass: the caller holds every one of
 * those 2n slots locked (a clone's unit, pool.c).  A same-filled
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
int uz_shared_clone(struct uzram *dev, uint64_t from, uint64_t to, uint64_t n);

/* For uz_dev_check: I8 for every record (refs equal the slots that refer
 * to it, counted into refs_seen[] by the caller; the object's back-
 * reference is the record's) and its part of the recount.  0 or -EFAULT. */
struct uz_tally_snap;
int uz_shared_check(struct uzram *dev, const uint32_t *refs_seen, struct uz_tally_snap *n,
                    uint64_t *objects, uint64_t *obj_bytes);

#endif
