/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * shared.c - layer 1 of the store (src/README.md): shared records, the
 * anon layer of ../shared/DESIGN.md carried to compressed pages.
 *
 * A page that several slots hold (found by the content index, dedup.c) is
 * stored once, in a record: 16 bytes, a slot's layout (lock bits, state,
 * handle) plus the number of slots that refer to it.  Each of those slots
 * is SLOT_SHARED with the record's id as its handle.  The record is the
 * one place that says where the page is: an allocator object (whose
 * back-reference is UZ_BACKREF_SHARED | id, so compaction finds and locks
 * the record, not a slot) or a block of the backing device.  Moving the
 * page (compaction, writeback, recompression) changes the record alone:
 * no walk over the slots that share it, however many they are.  A page
 * that is not shared has no record: unique pages pay nothing.
 *
 * Records live in a varray by id (only pages of it holding live records
 * are resident), ids come from a sparse bitmap (first free first).  A
 * record with its last reference dropped frees its page and its id at
 * once.  A record whose references fall to one stays a record (its one
 * slot reads it as before); it is freed with that slot's content.
 *
 * Counters.  A record's page counts once in compr_data_size, huge_pages
 * and the backing device's blocks, and once per reference in
 * orig_data_size (while it is in RAM); saved_bytes is what sharing saves,
 * (refs - 1) * bytes over records in RAM.  Every change of a record's
 * references or place updates them here, under the record's lock, so the
 * counters follow the records exactly (uz_dev_check recounts them).
 *
 * Locking (src/README.md, "Lock order"): a record's lock is taken inside
 * the lock of a slot that refers to it (read, write, writeback,
 * recompression of that slot) and after the primary stream, if any; never
 * two records at once.  Under it: the allocator, the backing device's and
 * the ids' bitmaps, and (recompression) a secondary stream, nothing else.
 * The content index's stripe locks are never held while a record lock is
 * taken.  Compaction only tries the record's lock, as it tries a slot's.
 */
#define _GNU_SOURCE
#include "shared.h"
#include "error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE
#define RELAXED memory_order_relaxed
#define MAX_REFS 0xfffffff0u

int uz_shared_init(struct uzram *dev)
{
    uint64_t n = dev->nslots < 0x7ffffffeull ? dev->nslots : 0x7ffffffeull;
    int err = uz_varray_init(&dev->records, n, sizeof(struct uz_shared));
    if (err < 0)
        return uz_error(-ENOMEM, "disksize: cannot reserve the shared record table");
    atomic_store(&dev->record_hw, 0);
    err = uz_sb_init(&dev->record_ids, n);
    if (err < 0) {
        uz_varray_fini(&dev->records);
        return uz_error(-ENOMEM, "disksize: cannot make the shared record ids");
    }
    return 0;
}

void uz_shared_fini(struct uzram *dev)
{
    if (dev->bd) {
        uint64_t hw = atomic_load(&dev->record_hw);
        for (uint64_t i = 0; i < hw; i++) {
            if (!uz_varray_page_used(&dev->records, i)) {
                i = (i / dev->records.per_page + 1) * dev->records.per_page - 1;
                continue;
            }
            struct uz_shared *r = uz_shared_at(dev, (uint32_t)i);
            if (r->refs && (uz_slot_state(&r->s) & SLOT_WB))
                uz_backing_free(dev->bd, slot_handle(&r->s) & WB_BLK_MASK);
        }
    }
    uz_sb_fini(&dev->record_ids);
    uz_varray_fini(&dev->records);
}

uint64_t uz_shared_bytes(struct uzram *dev)
{
    return atomic_load(&dev->records.resident_pages) * PAGE + dev->record_ids.chunk_bytes;
}

struct uz_shared *uz_shared_get(struct uzram *dev, uint32_t id)
{
    uz_varray_pin(&dev->records, id);
    struct uz_shared *r = uz_shared_at(dev, id);
    uz_slot_lock(&r->s);
    return r;
}

void uz_shared_put(struct uzram *dev, uint32_t id, struct uz_shared *r)
{
    uz_slot_unlock(&r->s);
    uz_varray_unpin(&dev->records, id);
}

/* Bytes of the page of a record in state f with handle h (0 on the
 * backing device). */
static size_t rec_bytes(struct uzram *dev, uint32_t f, uint64_t h)
{
    if (!(f & SLOT_OBJ))
        return 0;
    return uz_obj_bytes(dev, f, h);
}

int uz_shared_make(struct uzram *dev, uint64_t idx, struct uz_slot *s, uint32_t *idp)
{
    uint32_t f = uz_slot_state(s);
    uint64_t h = slot_handle(s), id;
    if (uz_sb_alloc(&dev->record_ids, &id) < 0)
        return -ENOMEM;   /* no message: the caller stores the page alone */
    uz_varray_pin(&dev->records, id);
    struct uz_shared *r = uz_shared_at(dev, (uint32_t)id);
    uz_slot_lock(&r->s);
    r->refs = 1;
    slot_set_handle(&r->s, h);
    uz_slot_set_state(&r->s, f & (SLOT_OBJ | SLOT_WB | SLOT_HUGE | SLOT_PRIO_MASK | SLOT_INCOMP));
    uz_varray_live(&dev->records, id, +1);
    if (f & SLOT_OBJ) {
        dev->aops->set_backref(dev->alloc, h, UZ_BACKREF_SHARED | (uint32_t)id);
        atomic_fetch_add_explicit(&dev->tally.record_bytes, uz_obj_bytes(dev, f, h), RELAXED);
    }
    uz_slot_unlock(&r->s);
    uz_varray_unpin(&dev->records, id);
    uint64_t hw = atomic_load_explicit(&dev->record_hw, RELAXED);
    while (hw < id + 1 &&
           !atomic_compare_exchange_weak_explicit(&dev->record_hw, &hw, id + 1, RELAXED, RELAXED))
        ;
    /* the slot now refers to the record; the page's counts move with it */
    uz_zone_share(dev, idx, f, (f & SLOT_OBJ) ? uz_obj_bytes(dev, f, h) : 0);
    slot_set_handle(s, id);
    uz_slot_set_state(s, SLOT_SHARED | (f & SLOT_IDLE));
    atomic_fetch_add_explicit(&dev->tally.shared_slots, 1, RELAXED);
    atomic_fetch_add_explicit(&dev->tally.records, 1, RELAXED);
    *idp = (uint32_t)id;
    return 0;
}

int uz_shared_ref(struct uzram *dev, struct uz_shared *r)
{
    if (r->refs >= MAX_REFS)
        return -EMLINK;
    r->refs++;
    uint32_t f = uz_slot_state(&r->s);
    if (f & SLOT_OBJ) {
        atomic_fetch_add_explicit(&dev->tally.pages_stored, 1, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.saved_bytes, rec_bytes(dev, f, slot_handle(&r->s)),
                                  RELAXED);
    }
    return 0;
}

/* Release a record's page (its last reference is gone). */
static void release_page(struct uzram *dev, uint32_t f, uint64_t h)
{
    if (f & SLOT_OBJ) {
        size_t bytes = uz_obj_bytes(dev, f, h);
        atomic_fetch_sub_explicit(&dev->tally.compr_bytes, bytes, RELAXED);
        atomic_fetch_sub_explicit(&dev->tally.record_bytes, bytes, RELAXED);
        if (f & SLOT_HUGE)
            atomic_fetch_sub_explicit(&dev->tally.huge_pages, 1, RELAXED);
        dev->aops->free(dev->alloc, h);
        atomic_fetch_add_explicit(&dev->tally.frees, 1, RELAXED);
    } else if (f & SLOT_WB) {
        uz_backing_free(dev->bd, h & WB_BLK_MASK);
        atomic_fetch_sub_explicit(&dev->tally.wb_pages, 1, RELAXED);
    }
}

void uz_shared_unref(struct uzram *dev, uint32_t id)
{
    struct uz_shared *r = uz_shared_get(dev, id);
    uint32_t f = uz_slot_state(&r->s);
    uint64_t h = slot_handle(&r->s);
    if (f & SLOT_OBJ)
        atomic_fetch_sub_explicit(&dev->tally.pages_stored, 1, RELAXED);
    if (--r->refs > 0) {
        if (f & SLOT_OBJ)
            atomic_fetch_sub_explicit(&dev->tally.saved_bytes, rec_bytes(dev, f, h), RELAXED);
        uz_shared_put(dev, id, r);
        return;
    }
    release_page(dev, f, h);
    slot_set_handle(&r->s, 0);
    uz_slot_set_state(&r->s, 0);
    atomic_fetch_sub_explicit(&dev->tally.records, 1, RELAXED);
    uz_sb_clear(&dev->record_ids, id);
    uz_varray_live(&dev->records, id, -1);
    uz_shared_put(dev, id, r);
}

void uz_shared_commit(struct uzram *dev, uint32_t id, struct uz_shared *r, uint32_t state,
                      uint64_t handle, size_t bytes)
{
    (void)id;
    uint32_t f = uz_slot_state(&r->s);
    uint64_t h = slot_handle(&r->s);
    uint64_t refs = r->refs;
    size_t old = rec_bytes(dev, f, h);
    if (f & SLOT_OBJ) {
        atomic_fetch_sub_explicit(&dev->tally.pages_stored, refs, RELAXED);
        atomic_fetch_sub_explicit(&dev->tally.saved_bytes, (refs - 1) * old, RELAXED);
    }
    release_page(dev, f, h);
    state &= SLOT_STATE & ~(SLOT_LOCKBITS | SLOT_IDLE);
    if (state & SLOT_OBJ) {
        atomic_fetch_add_explicit(&dev->tally.compr_bytes, bytes, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.record_bytes, bytes, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.pages_stored, refs, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.saved_bytes, (refs - 1) * bytes, RELAXED);
        if (state & SLOT_HUGE) {
            atomic_fetch_add_explicit(&dev->tally.huge_pages, 1, RELAXED);
            atomic_fetch_add_explicit(&dev->tally.huge_pages_since, 1, RELAXED);
        }
    } else if (state & SLOT_WB) {
        atomic_fetch_add_explicit(&dev->tally.wb_pages, 1, RELAXED);
    }
    slot_set_handle(&r->s, handle);
    uz_slot_set_state(&r->s, state);
}

/* ---------------------------------------------------------------- clone */

/* Copy the group of k locked slots from sg to the locked empty slots from
 * cg: new objects for the chunks.  0 or -ENOMEM (cg's slots stay empty). */
static int clone_group(struct uzram *dev, uint64_t sg, uint64_t cg, uint32_t k)
{
    uint64_t h[UZ_GROUP_MAX] = {0};
    size_t sz[UZ_GROUP_MAX] = {0};
    for (uint32_t j = 0; j < k; j++) {
        uint64_t sh = slot_handle(uz_slot_at(dev, sg + j));
        if (!sh)
            continue;
        sz[j] = dev->aops->obj_size(dev->alloc, sh);
        if (dev->aops->alloc(dev->alloc, sz[j], (uint32_t)(cg + j), &h[j]) < 0) {
            for (uint32_t i = 0; i < j; i++)
                if (h[i])
                    dev->aops->free(dev->alloc, h[i]);
            return uz_error(-ENOMEM, "clone: no memory for a copy of a compressed group%s",
                            atomic_load(&dev->limit_pages) ? " (mem_limit)" : "");
        }
        memcpy(dev->aops->map(dev->alloc, h[j]), dev->aops->map(dev->alloc, sh), sz[j]);
    }
    for (uint32_t j = 0; j < k; j++) {
        uint32_t f = uz_slot_state(uz_slot_at(dev, sg + j)) & ~SLOT_IDLE;
        uz_slot_commit(dev, cg + j, uz_slot_at(dev, cg + j), f, h[j], sz[j]);
    }
    return 0;
}

int uz_shared_clone(struct uzram *dev, uint64_t from, uint64_t to, uint64_t n)
{
    int err = 0;
    uint64_t end = from + n < dev->nslots ? from + n : dev->nslots;   /* (scans stop there) */
    for (uint64_t i = uz_next_used(dev, from, end); i < end; i = uz_next_used(dev, i + 1, end)) {
        struct uz_slot *s = uz_slot_at(dev, i), *c;
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s), ci = to + (i - from);
        if (!f || uz_slot_state(c = uz_slot_at(dev, ci)))
            continue;   /* nothing there, or the new slot has its own page */
        if (f & SLOT_GROUP) {
            uint32_t k = slot_group_pages(f);   /* the leader comes first */
            for (uint32_t j = 0; j < k && err == 0; j++)
                if (uz_slot_state(uz_slot_at(dev, ci + j)))
                    err = uz_error(-EFAULT, "clone: slot %llu has a page of its own inside "
                                   "the group it shares", (unsigned long long)(ci + j));
            if (err == 0)
                err = clone_group(dev, i, ci, k);
            if (err < 0)
                break;
            i += k - 1;
            continue;
        }
        if (f & SLOT_SAME) {
            uz_slot_commit(dev, ci, c, SLOT_SAME, h, 0);
            continue;
        }
        uint32_t id = (uint32_t)h;
        if (!(f & SLOT_SHARED) && uz_shared_make(dev, i, s, &id) < 0) {
            err = uz_error(-ENOMEM, "clone: no shared record id for slot %llu",
                           (unsigned long long)i);
            break;
        }
        /* the record's lock: slots outside the two units may share it */
        struct uz_shared *r = uz_shared_get(dev, id);
        err = uz_shared_ref(dev, r);
        uz_shared_put(dev, id, r);
        if (err < 0) {
            err = uz_error(err, "clone: a shared page has the most references it can take");
            break;
        }
        uz_slot_commit(dev, ci, c, SLOT_SHARED, id, 0);
    }
    return err;
}

#define FAIL(...) uz_error(-EFAULT, "check: " __VA_ARGS__)

int uz_shared_check(struct uzram *dev, const uint32_t *refs_seen, struct uz_tally_snap *n,
                    uint64_t *objects, uint64_t *obj_bytes)
{
    uint64_t live = 0, hw = atomic_load(&dev->record_hw);
    for (uint64_t i = 0; i < hw; i++) {
        if (i % dev->records.per_page == 0 && !uz_varray_page_used(&dev->records, i)) {
            i += dev->records.per_page - 1;
            continue;
        }
        struct uz_shared *r = uz_shared_at(dev, (uint32_t)i);
        uint32_t f = uz_slot_state(&r->s);
        uint64_t h = slot_handle(&r->s);
        bool used = uz_sb_test(&dev->record_ids, i);
        if (!r->refs) {
            if (f || used)
                return FAIL("record %llu: no references but state %#x, id %s",
                            (unsigned long long)i, f, used ? "in use" : "free");
            continue;
        }
        live++;
        if (!used)
            return FAIL("record %llu: live but its id is free", (unsigned long long)i);

        if (r->refs != refs_seen[i])
            return FAIL("record %llu: counts %u references, %u slots refer to it",
                        (unsigned long long)i, r->refs, refs_seen[i]);
        if ((f & (SLOT_OBJ | SLOT_WB)) == 0 || (f & (SLOT_OBJ | SLOT_WB)) == (SLOT_OBJ | SLOT_WB) ||
            (f & (SLOT_SAME | SLOT_GROUP | SLOT_SHARED)))
            return FAIL("record %llu: state %#x is not one object or one block",
                        (unsigned long long)i, f);
        if (f & SLOT_OBJ) {
            size_t sz = dev->aops->obj_size(dev->alloc, h);
            if ((f & SLOT_HUGE) && sz != PAGE)
                return FAIL("record %llu: huge object of %zu bytes", (unsigned long long)i, sz);
            uint32_t b = dev->aops->backref(dev->alloc, h);
            if (b != (UZ_BACKREF_SHARED | (uint32_t)i))
                return FAIL("record %llu: its object's back-reference is %#x",
                            (unsigned long long)i, b);
            n->compr_bytes += sz;
            n->pages_stored += r->refs;
            n->huge_pages += !!(f & SLOT_HUGE);
            n->saved_bytes += (uint64_t)(r->refs - 1) * sz;
            n->record_bytes += sz;
            (*objects)++;
            *obj_bytes += sz;
        } else {
            n->wb_pages++;
            if (!dev->bd || !uz_sb_test(&dev->bd->used, h & WB_BLK_MASK))
                return FAIL("record %llu: backing block %llu is not allocated",
                            (unsigned long long)i, (unsigned long long)(h & WB_BLK_MASK));
        }
    }
    n->records = live;
    if (uz_sb_count(&dev->record_ids) != live)
        return FAIL("%llu record ids in use, %llu records live",
                    (unsigned long long)uz_sb_count(&dev->record_ids), (unsigned long long)live);
    return 0;
}
