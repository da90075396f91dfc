/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * group.h - layer 3 of the store (src/README.md): compressed groups,
 * K = 2, 4 or 8 aligned pages compressed together (group.c; the slot
 * layout is in store.h).
 */
#ifndef UZRAM_GROUP_H
#define UZRAM_GROUP_H

#include "slot.h"

/* Bytes of chunk j of a group stream of clen bytes (0 past the last). */
static inline size_t chunk_bytes(size_t clen, uint32_t j)
{
    size_t at = (size_t)j * UZRAM_PAGE_SIZE;
    if (at >= clen)
        return 0;
    return clen - at < UZRAM_PAGE_SIZE ? clen - at : UZRAM_PAGE_SIZE;
}

/* Whole-group write: k pages (2, 4 or 8, at most dev->group_pages, the
 * streams' group scratch) from src at slot base (a multiple of k).  0 or -ENOMEM (no memory, no backing device
 * to forward to) / a backing device error; on error every page of the
 * group is wholly old or wholly new, new ones first. */
int uz_group_write(struct uz_store *dev, uint64_t base, uint32_t k, const uint8_t *src);
/* Single-page operations that met a group member: they cover the bytes
 * [off, off + len) that lie in the unit (group or page) holding off, and
 * say in *done how many bytes that was.  Read: into dst (0 or -EIO).
 * Update: write src (NULL: zeros; discard: pages wholly covered become
 * empty).  A group partly overwritten is broken into single pages, all
 * allocated before anything is freed: on error (-ENOMEM, -EIO) nothing
 * changed. */
int uz_group_read(struct uz_store *dev, uint64_t off, size_t len, uint8_t *dst, size_t *done);
/* Bytes the chunks of a compressed stream of clen bytes occupy in the
 * allocator: full chunks are one page each, the tail its size class.
 * Cannot fail. */
size_t uz_group_cost(struct uz_store *dev, size_t clen);
/* Recompress the locked group of k pages at gb with the secondary at
 * priority prio, as one unit: decoded with the algorithm that made it,
 * compressed again, and kept only if its chunks take fewer bytes than the
 * old ones (the new chunks are allocated before the old are freed).  The
 * members keep their IDLE bits and access times.  1 if replaced; 0 if not
 * smaller, if there is no such secondary with group scratch, if the group
 * is already that algorithm's, or if the allocation failed (the memory
 * limit: nothing changes); -EIO if the group does not decompress. */
int uz_group_recode(struct uz_store *dev, uint64_t gb, uint32_t k, uint32_t prio);
/* Copy page idx (a group member or not) into dst without an access (its
 * atime and IDLE bit stay), if it is stored in RAM compressed (an object,
 * a group member or a shared page; not same-filled, raw, written back or
 * empty) and its idleness is idle_only: idle means SLOT_IDLE, or (idle_age
 * > 0) not accessed for idle_age seconds.  1 if copied, 0 if not such a
 * page, -EIO if it does not decompress.  Takes the unit's locks. */
int uz_group_peek(struct uz_store *dev, uint64_t idx, bool idle_only, uint32_t idle_age,
                  uint8_t *dst);
int uz_group_update(struct uz_store *dev, uint64_t off, size_t len, const uint8_t *src,
                    bool discard, size_t *done);

#endif
