/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * slot.h - layer 1 of the store (see src/README.md): a slot's lock, pin
 * and state, the one function that changes what a slot holds, and the
 * store's invariant check.  The slot format itself is in store.h.
 *
 * Locking: the slot lock and the varray pin, in the global order of
 * src/README.md ("Lock order").
 */
#ifndef UZRAM_SLOT_H
#define UZRAM_SLOT_H

#include "store.h"

/* The table entry of slot idx (no pin, no lock: see uz_slot_get). */
static inline struct uz_slot *uz_slot_at(struct uz_store *dev, uint64_t idx)
{
    return uz_varray_at(&dev->slots, idx);
}

/* The state bits of a locked slot. */
static inline uint32_t uz_slot_state(const struct uz_slot *s)
{
    return atomic_load_explicit(&s->flags, memory_order_relaxed) & SLOT_STATE;
}

/* The device clock, seconds since creation.  Cannot fail. */
uint32_t uz_now(const struct uz_store *dev);

/* Pin the table page and lock slot idx / unlock and unpin.  Cannot fail;
 * uz_slot_get may sleep on the lock. */
struct uz_slot *uz_slot_get(struct uz_store *dev, uint64_t idx);
void uz_slot_put(struct uz_store *dev, uint64_t idx, struct uz_slot *s);
/* Lock / unlock a slot whose table page the caller has pinned; try: true
 * if locked, false (nothing done) if another holds it. */
void uz_slot_lock(struct uz_slot *s);
bool uz_slot_trylock(struct uz_slot *s);
void uz_slot_unlock(struct uz_slot *s);
/* Pin and lock slots [lo, hi) in ascending order (at most two table
 * pages: hi - lo <= UZ_GROUP_MAX) / unlock and unpin them. */
void uz_lock_range(struct uz_store *dev, uint64_t lo, uint64_t hi);
void uz_unlock_range(struct uz_store *dev, uint64_t lo, uint64_t hi);

/* Set or clear SLOT_IDLE / SLOT_INCOMP of a locked slot: the flags that
 * are not content (uz_slot_commit does not look at them).  Keeps the lock
 * bits and the atime. */
void uz_slot_mark(struct uz_slot *s, uint32_t set, uint32_t clear);
/* Replace the state bits of a locked slot (or record), keeping lock bits
 * and atime: for uz_slot_commit and shared.c alone, which keep the
 * counters. */
void uz_slot_set_state(struct uz_slot *s, uint32_t state);
/* Stamp a locked slot's atime and clear IDLE (an access). */
void uz_slot_touch(struct uz_store *dev, struct uz_slot *s);

/* The first index >= idx, below end and nslots, whose slot may be
 * non-empty, or end if there is none: skips unused table pages without
 * touching them (the slot table's used bitmap, varray.h), in time
 * proportional to the bitmap words of [idx, end). */
uint64_t uz_next_used(struct uz_store *dev, uint64_t idx, uint64_t end);
/* Racy look at a slot's flags (no lock): for scans that skip slots. */
uint32_t uz_slot_peek(struct uz_store *dev, uint64_t idx);
/* Compressed size of the object of a locked slot (state f, handle h). */
size_t uz_obj_bytes(struct uz_store *dev, uint32_t f, uint64_t h);

/*
 * uz_slot_commit - replace what a locked slot holds.
 *
 * The one place where a slot's content changes and the store's content
 * counters (struct uz_tally) are kept.  The old content is released: its
 * object freed (OBJ, or a group member's chunk), its backing block freed
 * (WB).  The new content is state (SLOT_* bits without lock or atime:
 * 0 empty, SAME, OBJ [| HUGE | RECOMP | prio | INCOMP | IDLE], WB [| ...],
 * group bits [| RECOMP | prio | IDLE]) with handle, whose object, if it
 * has one, is bytes long (a HUGE object: 4096; a group member: its
 * chunk's size, 0 past the last chunk).  The caller made the new object
 * (or block) before calling: commit itself cannot fail, and a failure
 * before it leaves the slot as it was.  The atime is not touched
 * (uz_slot_touch is an access, commit is not).
 *
 * Compaction moving an object changes only its handle (the owner ops in
 * slot.c), never its content or size: that is the one other writer of a
 * slot's handle.
 */
void uz_slot_commit(struct uz_store *dev, uint64_t idx, struct uz_slot *s, uint32_t state,
                    uint64_t handle, size_t bytes);
/* The slot idx of a pool's store, in state f with an object of bytes,
 * became a reference to a shared record (uz_shared_make): its zone's
 * counters follow (store.h, "Zones").  Nothing for a store without
 * zones. */
/* A device's kept content counters (store.h, "Zones"), by its id, read
 * racily (each counter is exact, the set is not a snapshot).  O(1);
 * cannot fail.  The store has zones (a pool's). */
struct uz_zone_snap {
    uint64_t pages_stored, compr_bytes, same_pages, huge_pages, shared_slots, linked, linked_same,
             dep_bytes;
};
static inline void uz_zone_read(const struct uz_store *st, int id, struct uz_zone_snap *o)
{
    const struct uz_zone *z = &st->zones->zone[id];
    o->pages_stored = atomic_load_explicit(&z->pages_stored, memory_order_relaxed);
    o->compr_bytes = atomic_load_explicit(&z->compr_bytes, memory_order_relaxed);
    o->same_pages = atomic_load_explicit(&z->same_pages, memory_order_relaxed);
    o->huge_pages = atomic_load_explicit(&z->huge_pages, memory_order_relaxed);
    o->shared_slots = atomic_load_explicit(&z->shared_slots, memory_order_relaxed);
    o->linked = atomic_load_explicit(&z->linked, memory_order_relaxed);
    o->linked_same = atomic_load_explicit(&z->linked_same, memory_order_relaxed);
    o->dep_bytes = atomic_load_explicit(&z->dep_bytes, memory_order_relaxed);
}

void uz_zone_share(struct uz_store *dev, uint64_t idx, uint32_t f, size_t bytes);
/* Empty a locked slot: uz_slot_commit(dev, idx, s, 0, 0, 0). */
void uz_slot_free(struct uz_store *dev, uint64_t idx, struct uz_slot *s);
/* Free every page of store slots [lo, hi), which hold whole groups (a
 * device's range), slot by slot and group by group, each under its
 * locks; shared pages lose one reference.  The caller keeps anyone else
 * from writing to the range.  Cannot fail. */
void uz_slot_free_range(struct uz_store *st, uint64_t lo, uint64_t hi);

/* The content counters, read (racy but each field atomic). */
struct uz_tally_snap {
    uint64_t pages_stored, compr_bytes, same_pages, huge_pages, huge_pages_since;
    uint64_t group_members, wb_pages, frees;
    uint64_t shared_slots, records, saved_bytes, record_bytes;
};
void uz_tally_read(struct uz_store *dev, struct uz_tally_snap *t);
uint64_t uz_tally_compr_bytes(struct uz_store *dev);
uint64_t uz_tally_frees(struct uz_store *dev);
/* Zero the content counters (an empty table: device init). */
void uz_tally_clear(struct uz_store *dev);

/* mem_used_max := max(itself, the allocator's pages now). */
void uz_note_mem_used(struct uz_store *dev);

/* The allocator's owner callbacks (compaction pins slots through them). */
extern const struct uz_owner_ops uz_slot_owner_ops;

/*
 * uz_dev_check - verify the store's invariants.  The caller has the
 * device to itself (no I/O, policy or compaction running: uzram_check
 * takes init_lock for writing).  0, or -EFAULT with a message naming the
 * first slot and invariant that failed.  Slow: every live slot is looked
 * at.  The invariants:
 *
 *   I1  counters: pages_stored, compr_data_size, same_pages, huge_pages,
 *       group members and written-back pages equal a recount of the table;
 *   I2  every object's back-reference is the slot that holds its handle,
 *       no two slots hold one object, and the allocator holds no object
 *       that no slot refers to (objects and their bytes match);
 *   I3  a slot holds one kind of content: not both OBJ and WB; SAME, OBJ
 *       and WB never with SLOT_GROUP; a HUGE object is 4096 bytes;
 *   I4  group members agree with their leader (the first slot of the
 *       aligned run): every one of the K slots is a member of a group of
 *       K with the leader's priority bits; chunk handles are a
 *       non-empty prefix (the leader has one), zeros after;
 *   I5  a written-back slot's block is allocated on the backing device,
 *       and the device holds no other blocks;
 *   I6  the table's per-page live counts equal the live slots on them;
 *   I7  the allocator's own check passes;
 *   I8  shared records: a shared slot carries SLOT_SHARED alone (and IDLE)
 *       and names a live record; a record's reference count equals the
 *       slots that name it, it holds one object (whose back-reference is
 *       UZ_BACKREF_SHARED | its id) or one allocated backing block, its
 *       id is in use and no free id has a record; shared slots, records
 *       and saved bytes equal the recount, and a record's page counts
 *       once in the allocator's objects.
 */
int uz_dev_check(struct uz_store *dev);

/* ----------------------------------------------- shared records' content
 * The record table is shared.c's (shared.h: uz_shared_at, _get, _put);
 * what a record holds changes here, as a slot's does. */

/*
 * uz_shared_make - turn the unique page of locked slot idx (state OBJ or
 * WB, not a group member) into a record with one reference, the slot's:
 * the object or block stays where it is, an object's back-reference
 * becomes the record's, the
 * slot becomes SLOT_SHARED (keeping its IDLE bit and atime).  0 and the
 * id in *id, or -ENOMEM (no id could be allocated: nothing changed).
 */
int uz_shared_make(struct uz_store *dev, uint64_t idx, struct uz_slot *s, uint32_t *id);

/* Take one more reference on a locked record that is in use (refs > 0),
 * for a slot that is about to be committed SLOT_SHARED with this id
 * (uz_slot_commit).  Cannot fail: refs saturate below 2^32 - 1 with
 * -EMLINK (the caller then stores its page alone). */
int uz_shared_ref(struct uz_store *dev, struct uz_shared *r);
/* Drop one reference (what uz_slot_commit does when a shared slot's
 * content is replaced); the last one frees the page and the record.
 * Takes the record's lock.  Cannot fail. */
void uz_shared_unref(struct uz_store *dev, uint32_t id);

/*
 * uz_shared_commit - replace where a locked record's page is (writeback,
 * recompression): state (OBJ [| HUGE | prio | INCOMP] or WB [| prio |
 * INCOMP]) with handle, bytes long (0 for WB).  The old object or block is
 * freed; every counter is kept (for all of the record's references at
 * once).  The caller made the new object or block first.  Cannot fail.
 */
void uz_shared_commit(struct uz_store *dev, uint32_t id, struct uz_shared *r, uint32_t state,
                      uint64_t handle, size_t bytes);

/* For uz_dev_check: I8 for every record (refs equal the slots that refer
 * to it, counted into refs_seen[] by the caller; the object's back-
 * reference is the record's) and its part of the recount.  0 or -EFAULT. */
struct uz_tally_snap;
int uz_shared_check(struct uz_store *dev, const uint32_t *refs_seen, struct uz_tally_snap *n,
                    uint64_t *objects, uint64_t *obj_bytes);

#endif
