/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * page.h - layer 2 of the store (src/README.md): one page of one slot.
 * Store, read, patch and forward a page whose slot the caller holds
 * locked (and that is not a group member: group.c handles those), and the
 * backing block of one page.
 */
#ifndef UZRAM_PAGE_H
#define UZRAM_PAGE_H

#include "slot.h"

/* If the page is one 64-bit word repeated, store it in *word.  src need
 * not be aligned.  Cannot fail. */
bool uz_page_same_filled(const void *page, uint64_t *word);
/* Fill a page with a word.  Cannot fail. */
void uz_fill_page(void *dst, uint64_t word);

/* Store one whole page into a locked slot that is not a group member.  st:
 * a primary stream the caller holds, or NULL (one is taken here).  0, or
 * -ENOMEM (memory limit or allocation failure, with no backing device to
 * forward to) / the backing device's error; on error the slot is
 * unchanged. */
int uz_write_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, const void *src,
                  struct uz_stream *st);
/* Read one whole page of a locked slot (not a group member) into dst.  0,
 * or -EIO (does not decompress, backing I/O error); the slot is unchanged
 * but for its atime. */
int uz_read_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, void *dst,
                 struct uz_stream *st);
/* uz_read_page that is not an access: the atime and IDLE bit stay (a
 * look at the content, as dictionary training takes). */
int uz_peek_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, void *dst);
/* Part of a locked slot's page (not a group member): read bytes
 * [in, in+n) into dst; or replace them with src (zeros if NULL), a
 * read-modify-write.  Errors as the two above; a failed patch leaves the
 * page as it was. */
int uz_read_part(struct uz_store *dev, uint64_t idx, struct uz_slot *s, size_t in, size_t n,
                 uint8_t *dst);
int uz_patch_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, size_t in, size_t n,
                  const uint8_t *src);

/* Decompress an object of clen bytes compressed at priority prio into dst
 * (4096 bytes).  st: a primary stream the caller holds, or NULL.  0, or
 * -EIO (corrupt object, or no algorithm at that priority). */
int uz_decompress(struct uz_store *dev, uint32_t prio, const void *src, size_t clen, void *dst,
                  struct uz_stream *st);

/* Store page (or its compressed form: clen bytes in st->out, clen != 0)
 * on a new block of the backing device; on success *handle is the WB
 * handle for the slot.  src need not be aligned (it is copied into
 * st->page unless it is st->page).  0, -ENOSPC (full), -EIO ...; on error
 * no block is kept. */
int uz_wb_put(struct uz_store *dev, struct uz_stream *st, const void *src, size_t clen,
              uint64_t *handle);
/* Read the page of a WB slot (state f, handle h) into dst.  st: a primary
 * stream the caller holds, or NULL.  0 or -EIO. */
int uz_wb_read(struct uz_store *dev, uint32_t f, uint64_t h, void *dst, struct uz_stream *st);

#endif
