/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * varray.h - a virtually indexed on-demand array (see varray.c).
 */
#ifndef UZRAM_VARRAY_H
#define UZRAM_VARRAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define UZ_VARRAY_HDR 16u   /* bytes at the head of every page: its use count */

struct uz_varray {
    uint8_t *base;            /* reserved address space, npages * 4096 */
    size_t elem_size;
    size_t per_page;          /* elements on one page after the header */
    size_t npages;
    uint64_t nelems;
    _Atomic uint64_t resident_pages;
    /* One bit per page, set while the page is resident (its use count is
     * not 0): reserved address space, npages bits.  Scans find resident
     * pages here in a word a 64 pages, never touching the pages (a
     * read of a page that is not resident would map the zero page). */
    _Atomic uint64_t *used;
};

int uz_varray_init(struct uz_varray *va, uint64_t nelems, size_t elem_size);
void uz_varray_fini(struct uz_varray *va);

/* Address of element i.  Reading it without a pin is allowed (a released
 * page reads as zeros); writing it requires a pin. */
static inline void *uz_varray_at(const struct uz_varray *va, uint64_t i)
{
    uint64_t pg = i / va->per_page;
    return va->base + pg * 4096u + UZ_VARRAY_HDR + (i - pg * va->per_page) * va->elem_size;
}

/* True if the page under element i may hold live elements (it is
 * resident).  Racy, for scans that skip empty ranges; reads the bitmap,
 * not the page. */
static inline int uz_varray_page_used(const struct uz_varray *va, uint64_t i)
{
    uint64_t pg = i / va->per_page;
    return (atomic_load_explicit(&va->used[pg / 64], memory_order_relaxed) >> (pg % 64)) & 1;
}

/* The first element at or after i, and before end, whose page is
 * resident; end if there is none.  Racy as uz_varray_page_used.  Costs
 * a load per 64 pages of [i, end), whatever the array's size. */
uint64_t uz_varray_next_used(const struct uz_varray *va, uint64_t i, uint64_t end);

/* The page's use count (live elements plus pins), for checks. */
static inline uint32_t uz_varray_count(const struct uz_varray *va, uint64_t i)
{
    const _Atomic uint32_t *c = (const _Atomic uint32_t *)(va->base + (i / va->per_page) * 4096u);
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Pin the page under element i (it will not be released while pinned). */
void uz_varray_pin(struct uz_varray *va, uint64_t i);
/* Drop a pin; the page is released when no pin and no live element is left. */
void uz_varray_unpin(struct uz_varray *va, uint64_t i);
/* While pinned: element i became live (+1; +N: N elements of its page
 * did) or empty (-1). */
void uz_varray_live(struct uz_varray *va, uint64_t i, int delta);

#endif
