/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * shared.c - layer 1 of the store (src/README.md): the shared records'
 * table, the anon layer of ../shared/DESIGN.md carried to compressed pages.
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
 * This file holds the record table (its reserve, its ids, its bytes);
 * what a record holds changes in slot.c alone, as a slot's content does
 * (uz_shared_make, _ref, _unref, _commit beside uz_slot_commit): a
 * record's page counts once in compr_data_size, huge_pages and the
 * backing device's blocks, and once per reference in orig_data_size
 * (while it is in RAM); saved_bytes is what sharing saves, (refs - 1) *
 * bytes over records in RAM.  uz_dev_check recounts them (I8,
 * uz_shared_check, slot.c).  shared.c calls nothing in slot.c but the
 * lock of a record (a slot's lock word, shared.h's uz_shared_get).
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

int uz_shared_init(struct uz_store *dev)
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

void uz_shared_fini(struct uz_store *dev)
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

uint64_t uz_shared_bytes(struct uz_store *dev)
{
    return atomic_load(&dev->records.resident_pages) * PAGE + dev->record_ids.chunk_bytes;
}

