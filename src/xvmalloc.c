/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xvmalloc.c - a TLSF-style object allocator: compcache's xvmalloc, redone.
 *
 * One of the allocators behind alloc.h (see there for the contract).  It is
 * kept for comparison with zsmalloc: its objects never cross a page, so an
 * object a little over half a page wastes the rest of its page unless a small
 * object happens to fit the hole.
 *
 * Memory.  Pages come from one arena of address space reserved at create()
 * (2 * max_bytes + 64 MiB).  Page n lives at base + n * 4096; page number 0
 * is never used, so no handle is 0.  Fresh pages are taken from the stack of
 * released page numbers first, else from the never-used tail of the arena.
 * A page whose last object is freed is given back to the OS (uz_vm_release)
 * at once and its number pushed on the stack.  Besides the arena there is a
 * descriptor array, one struct xv_page per arena page, also reserved address
 * space; it is touched (becomes resident) up to the highest page ever used.
 *
 * Pages are of two kinds:
 *
 *   normal  the page is tiled by blocks, each starting at a multiple of 8:
 *
 *             block:  [size 16][prev 16][ body ... ]
 *             allocated body: [backref 32][payload][tail padding]
 *             free body:      [next page 32][prev page 32][next off 16][prev off 16]
 *
 *           size  = the block's length in bytes, header included (a multiple
 *                   of 8, 16..4096), with the flags in its low bits:
 *                   BLOCK_FREE (this block is free), PREV_FREE (the block
 *                   just before it is free);
 *           prev  = bits 0..8: the previous block's offset / 8 (0 for the
 *                   first block); bits 12..15: for an allocated block, the
 *                   tail padding (size - 8 - object size, 0..15), so the exact
 *                   object size is known without another field.
 *
 *           An object of s bytes (1..4072) takes a block of round_up(s + 8, 8)
 *           bytes, or 8 more when splitting would leave an 8-byte remainder
 *           (too small to hold the free-list links).
 *
 *   huge    an object of more than XV_HUGE_CLASS (4072) bytes, up to 4096,
 *           fills a page by itself with no header; its size and backref are
 *           kept in the page's descriptor.
 *
 * Handles.  handle = page << 12 | offset, where offset is the block offset
 * (a multiple of 8) for a normal object and 1 for a huge one.  map() is one
 * add and needs no lock: base + handle's page * 4096 + offset + 8, or the
 * page start for huge objects.
 *
 * Free lists.  There is one doubly linked list of free blocks per block size
 * (16, 24, ..., 4096: 511 lists, 8 B apart), whose heads live in struct xv.
 * A two-level bitmap says which lists are non-empty: bit i of l2[w] is set
 * iff list 64*w + i is non-empty, and bit w of l1 iff l2[w] != 0.  Finding
 * the smallest non-empty list at least as large as a request is two
 * count-trailing-zeros: O(1).  Allocation takes the head of that list (good
 * fit), keeps the front of the block and puts the rest back on its list.
 * Free merges the block with both neighbours at once.
 *
 * Invariants (check() verifies every one of them):
 *   - a normal page's blocks chain from offset 0 and end exactly at 4096;
 *     each block's prev offset names the block before it;
 *   - PREV_FREE of a block equals BLOCK_FREE of the block before it, and the
 *     first block has PREV_FREE clear;
 *   - no two free blocks are adjacent (free merges at once);
 *   - a normal page is never wholly free (it would have been released);
 *   - every free block is on the list of its size, exactly once, unless its
 *     page is being drained by compaction, when it is on no list;
 *   - the bitmaps agree with the emptiness of the lists;
 *   - a page descriptor's free bytes and object count match its blocks;
 *   - pages_used = normal pages + huge pages; the free-page stack holds
 *     exactly the released pages.
 *
 * Locking (under the store's slot locks: src/README.md, "Lock order").  One mutex guards everything (compcache had one pool lock).
 * map() takes no lock.  obj_size() and set_backref() take none either: an
 * allocated block's size and padding never change while it lives, and the
 * header is read and written with relaxed atomics because a neighbour's
 * merge may rewrite the PREV_FREE bit or the prev offset beside them.
 *
 * Compaction.  The original had none; this one picks the normal pages with
 * the most free space (as many as the free space elsewhere could absorb),
 * takes their free blocks off the lists ("draining": allocation then cannot
 * land in them), and moves each object out: pin the owner (non-blocking),
 * allocate elsewhere from the free lists only (never a fresh page), copy,
 * tell the owner, unpin, free the source block.  A page that empties is
 * released; one that cannot be emptied (an owner was busy, no room) gets its
 * free blocks back on the lists.  The pool lock is dropped between pages, so
 * while compaction runs other writers may not see the free space of the
 * pages still waiting to be drained.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "mem.h"

extern const struct uz_alloc_ops uz_xvmalloc_ops;

#define XV_PAGE_SHIFT 12
#define XV_PAGE (1u << XV_PAGE_SHIFT)
#define XV_ALIGN 8u
#define XV_OBJ_HDR 8u                    /* block header + backref */
#define XV_MIN_BLOCK 16u                 /* block header + free-list links */
#define XV_NLISTS ((XV_PAGE - XV_MIN_BLOCK) / XV_ALIGN + 1)  /* 511 */
#define XV_NWORDS ((XV_NLISTS + 63) / 64)                     /* 8 */
/* Largest object that leaves room for another block in its page. */
#define XV_HUGE_CLASS (XV_PAGE - XV_MIN_BLOCK - XV_OBJ_HDR)  /* 4072 */

/* Block header: flags in the low bits of the size field. */
#define BLOCK_FREE 1u
#define PREV_FREE 2u
#define SIZE_MASK 0xfff8u
/* Block header: the prev field. */
#define PREV_OFF_MASK 0x01ffu   /* previous block's offset / 8 */
#define PAD_SHIFT 12            /* tail padding of an allocated block */

#define XV_HUGE_OFF 1u          /* handle offset of a huge object */

/* Arena size: enough for every live byte at the worst xvmalloc waste (just
 * over half a page per object) plus slack; at most 2^31 pages. */
#define XV_ARENA_SLACK (64ull << 20)
#define XV_MAX_PAGES (1ull << 31)

enum { PG_UNUSED = 0, PG_NORMAL, PG_HUGE, PG_FREE };

/* One per arena page, indexed by page number. */
struct xv_page {
    uint32_t link;    /* normal: live objects; huge: backref; free: next free page */
    uint16_t val;     /* normal: free bytes; huge: object size */
    uint8_t kind;     /* PG_* */
    uint8_t draining; /* normal: compaction is emptying it; its free blocks are on no list */
};

/* The body of a free block (at block offset + 4). */
struct xv_links {
    uint32_t next_page, prev_page;   /* 0 = none */
    uint16_t next_off, prev_off;
};

struct xv_head {
    uint32_t page;    /* 0 = empty list */
    uint16_t off;
};

struct xv {
    pthread_mutex_t lock;          /* everything below */
    pthread_mutex_t compact_lock;  /* one compaction at a time */
    char *base;                    /* the arena; page n at base + n * XV_PAGE */
    size_t arena_len;
    uint32_t arena_pages;          /* pages in the arena, page 0 included */
    struct xv_page *pages;         /* descriptors, arena_pages of them */
    size_t pages_len;
    uint32_t next_page;            /* lowest page number never used */
    uint32_t free_pages;           /* stack of released page numbers (0 = empty) */
    uint32_t nfree_pages;
    uint32_t ndraining;            /* pages marked draining */
    bool compacting;               /* a compaction is between its pages */
    uint64_t l1;                   /* bit w: l2[w] != 0 */
    uint64_t l2[XV_NWORDS];        /* bit i of word w: list 64w+i non-empty */
    struct xv_head heads[XV_NLISTS];
    uint64_t pages_used, huge_pages, objects, obj_bytes, pages_compacted;
    const struct uz_owner_ops *owner_ops;
    void *owner;
    _Atomic uint64_t *limit_pages;
};

/* ---- addressing and headers ---- */

static inline char *page_addr(struct xv *a, uint32_t page)
{
    return a->base + ((size_t)page << XV_PAGE_SHIFT);
}

static inline uint16_t *hdr_size_p(struct xv *a, uint32_t page, unsigned off)
{
    return (uint16_t *)(page_addr(a, page) + off);
}

static inline uint16_t *hdr_prev_p(struct xv *a, uint32_t page, unsigned off)
{
    return (uint16_t *)(page_addr(a, page) + off + 2);
}

static inline uint16_t ld16(const uint16_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void st16(uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

static inline unsigned blk_size(struct xv *a, uint32_t page, unsigned off)
{
    return ld16(hdr_size_p(a, page, off)) & SIZE_MASK;
}

static inline unsigned blk_flags(struct xv *a, uint32_t page, unsigned off)
{
    return ld16(hdr_size_p(a, page, off)) & ~SIZE_MASK;
}

static inline unsigned blk_prev_off(struct xv *a, uint32_t page, unsigned off)
{
    return (ld16(hdr_prev_p(a, page, off)) & PREV_OFF_MASK) * XV_ALIGN;
}

static inline unsigned blk_pad(struct xv *a, uint32_t page, unsigned off)
{
    return ld16(hdr_prev_p(a, page, off)) >> PAD_SHIFT;
}

static inline void set_hdr(struct xv *a, uint32_t page, unsigned off, unsigned size,
                           unsigned flags, unsigned prev_off, unsigned pad)
{
    st16(hdr_size_p(a, page, off), (uint16_t)(size | flags));
    st16(hdr_prev_p(a, page, off), (uint16_t)(prev_off / XV_ALIGN | pad << PAD_SHIFT));
}

/* Set or clear PREV_FREE of the block at off. */
static inline void set_prev_free(struct xv *a, uint32_t page, unsigned off, bool on)
{
    uint16_t *p = hdr_size_p(a, page, off);
    uint16_t v = ld16(p);
    st16(p, on ? (uint16_t)(v | PREV_FREE) : (uint16_t)(v & ~PREV_FREE));
}

/* Point the block at off back at prev_off, keeping its padding. */
static inline void set_prev_off(struct xv *a, uint32_t page, unsigned off, unsigned prev_off)
{
    uint16_t *p = hdr_prev_p(a, page, off);
    st16(p, (uint16_t)((ld16(p) & ~PREV_OFF_MASK) | prev_off / XV_ALIGN));
}

static inline struct xv_links *links(struct xv *a, uint32_t page, unsigned off)
{
    return (struct xv_links *)(page_addr(a, page) + off + 4);
}

static inline uint32_t *backref_p(struct xv *a, uint32_t page, unsigned off)
{
    return (uint32_t *)(page_addr(a, page) + off + 4);
}

static inline uint64_t make_handle(uint32_t page, unsigned off)
{
    return (uint64_t)page << XV_PAGE_SHIFT | off;
}

static inline uint32_t handle_page(uint64_t h) { return (uint32_t)(h >> XV_PAGE_SHIFT); }
static inline unsigned handle_off(uint64_t h) { return (unsigned)(h & (XV_PAGE - 1)); }

/* Block size for an object of s bytes (1..XV_HUGE_CLASS). */
static inline unsigned block_for(size_t s)
{
    return (unsigned)((s + XV_OBJ_HDR + XV_ALIGN - 1) & ~(size_t)(XV_ALIGN - 1));
}

static inline unsigned list_index(unsigned size)
{
    return size / XV_ALIGN - XV_MIN_BLOCK / XV_ALIGN;
}

/* ---- free lists ---- */

/* Put the free block (page, off) of size bytes at the head of its list.
 * Blocks of a draining page stay off the lists. */
static void list_insert(struct xv *a, uint32_t page, unsigned off, unsigned size)
{
    if (a->pages[page].draining)
        return;
    unsigned i = list_index(size);
    struct xv_head *h = &a->heads[i];
    struct xv_links *l = links(a, page, off);
    l->next_page = h->page;
    l->next_off = h->off;
    l->prev_page = 0;
    l->prev_off = 0;
    if (h->page) {
        struct xv_links *n = links(a, h->page, h->off);
        n->prev_page = page;
        n->prev_off = (uint16_t)off;
    }
    h->page = page;
    h->off = (uint16_t)off;
    a->l2[i / 64] |= 1ull << (i % 64);
    a->l1 |= 1ull << (i / 64);
}

/* Take the free block (page, off) of size bytes off its list. */
static void list_remove(struct xv *a, uint32_t page, unsigned off, unsigned size)
{
    if (a->pages[page].draining)
        return;
    unsigned i = list_index(size);
    struct xv_links *l = links(a, page, off);
    if (l->prev_page) {
        struct xv_links *p = links(a, l->prev_page, l->prev_off);
        p->next_page = l->next_page;
        p->next_off = l->next_off;
    } else {
        a->heads[i].page = l->next_page;
        a->heads[i].off = l->next_off;
    }
    if (l->next_page) {
        struct xv_links *n = links(a, l->next_page, l->next_off);
        n->prev_page = l->prev_page;
        n->prev_off = l->prev_off;
    }
    if (!a->heads[i].page) {
        a->l2[i / 64] &= ~(1ull << (i % 64));
        if (!a->l2[i / 64])
            a->l1 &= ~(1ull << (i / 64));
    }
}

/* The smallest non-empty list whose blocks hold size bytes, or -1. */
static int find_list(struct xv *a, unsigned size)
{
    unsigned i = list_index(size);
    unsigned w = i / 64;
    uint64_t bits = a->l2[w] & (~0ull << (i % 64));
    if (bits)
        return (int)(w * 64 + (unsigned)__builtin_ctzll(bits));
    uint64_t top = w + 1 < 64 ? a->l1 & (~0ull << (w + 1)) : 0;
    if (!top)
        return -1;
    w = (unsigned)__builtin_ctzll(top);
    return (int)(w * 64 + (unsigned)__builtin_ctzll(a->l2[w]));
}

/* ---- pages ---- */

/* Get a page for the allocator: checks the memory limit, the arena and
 * fault injection.  0 and *page, or -ENOMEM with nothing changed. */
static int take_page(struct xv *a, uint32_t *page)
{
    uint64_t limit = a->limit_pages ? atomic_load(a->limit_pages) : 0;
    if (limit && a->pages_used + 1 > limit)
        return -ENOMEM;
    if (!a->free_pages && a->next_page >= a->arena_pages)
        return uz_error(-ENOMEM, "xvmalloc: arena of %u pages exhausted", a->arena_pages - 1);
    if (!uz_vm_commit_ok())
        return -ENOMEM;
    uint32_t p;
    if (a->free_pages) {
        p = a->free_pages;
        a->free_pages = a->pages[p].link;
        a->nfree_pages--;
    } else {
        p = a->next_page++;
    }
    a->pages_used++;
    *page = p;
    return 0;
}

/* Give a page back to the OS and push it on the free-page stack. */
static void put_page(struct xv *a, uint32_t page)
{
    uz_vm_release(page_addr(a, page), XV_PAGE);
    struct xv_page *d = &a->pages[page];
    if (d->draining)
        a->ndraining--;
    d->kind = PG_FREE;
    d->draining = 0;
    d->val = 0;
    d->link = a->free_pages;
    a->free_pages = page;
    a->nfree_pages++;
    a->pages_used--;
}

/* ---- blocks ---- */

/* Allocate the object (s bytes, backref) in the free block (page, off) of
 * fsize bytes, already off its list: keep the front, return the rest to the
 * lists.  Returns the handle. */
static uint64_t carve(struct xv *a, uint32_t page, unsigned off, unsigned fsize,
                      size_t s, uint32_t backref)
{
    unsigned need = block_for(s);
    unsigned prev_off = blk_prev_off(a, page, off);
    unsigned end = off + fsize;
    if (fsize - need >= XV_MIN_BLOCK) {
        unsigned r = off + need;
        set_hdr(a, page, r, fsize - need, BLOCK_FREE, off, 0);
        if (end < XV_PAGE)
            set_prev_off(a, page, end, r);   /* PREV_FREE stays set */
        list_insert(a, page, r, fsize - need);
    } else {
        need = fsize;                        /* absorb a 0 or 8 byte rest */
        if (end < XV_PAGE)
            set_prev_free(a, page, end, false);
    }
    /* The block before a free block is never free: PREV_FREE is clear. */
    set_hdr(a, page, off, need, 0, prev_off, (unsigned)(need - XV_OBJ_HDR - s));
    __atomic_store_n(backref_p(a, page, off), backref, __ATOMIC_RELAXED);
    struct xv_page *d = &a->pages[page];
    d->val = (uint16_t)(d->val - need);
    d->link++;
    a->objects++;
    a->obj_bytes += s;
    return make_handle(page, off);
}

/* Allocate s bytes from the free lists only.  0 if nothing fits. */
static uint64_t alloc_from_lists(struct xv *a, size_t s, uint32_t backref)
{
    unsigned need = block_for(s);
    int i = find_list(a, need);
    if (i < 0)
        return 0;
    uint32_t page = a->heads[i].page;
    unsigned off = a->heads[i].off;
    unsigned fsize = blk_size(a, page, off);
    list_remove(a, page, off, fsize);
    return carve(a, page, off, fsize, s, backref);
}

/* Free the normal block at (page, off).  Merges it with free neighbours;
 * releases the page when it becomes wholly free.  Returns the offset of
 * the resulting free block, or -1 if the page was released. */
static int free_block(struct xv *a, uint32_t page, unsigned off)
{
    unsigned size = blk_size(a, page, off);
    unsigned flags = blk_flags(a, page, off);
    unsigned s = size - XV_OBJ_HDR - blk_pad(a, page, off);
    unsigned start = off, len = size;
    unsigned prev_off = blk_prev_off(a, page, off);
    struct xv_page *d = &a->pages[page];

    d->val = (uint16_t)(d->val + size);
    d->link--;
    a->objects--;
    a->obj_bytes -= s;

    unsigned next = off + size;
    if (next < XV_PAGE && (blk_flags(a, page, next) & BLOCK_FREE)) {
        unsigned nsize = blk_size(a, page, next);
        list_remove(a, page, next, nsize);
        len += nsize;
    }
    if (flags & PREV_FREE) {
        unsigned psize = blk_size(a, page, prev_off);
        list_remove(a, page, prev_off, psize);
        start = prev_off;
        len += psize;
        prev_off = blk_prev_off(a, page, start);
    }
    if (len == XV_PAGE) {
        put_page(a, page);
        return -1;
    }
    set_hdr(a, page, start, len, BLOCK_FREE, prev_off, 0);
    unsigned end = start + len;
    if (end < XV_PAGE) {
        set_prev_free(a, page, end, true);
        set_prev_off(a, page, end, start);
    }
    list_insert(a, page, start, len);
    return (int)start;
}

/* ---- the interface ---- */

static struct uz_allocator *xv_create(const struct uz_alloc_params *p)
{
    struct xv *a = uz_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    uint64_t want = p->max_bytes;
    if (want > (XV_MAX_PAGES << XV_PAGE_SHIFT))
        want = XV_MAX_PAGES << XV_PAGE_SHIFT;
    uint64_t npages = (2 * want + XV_ARENA_SLACK + XV_PAGE - 1) / XV_PAGE + 1;
    if (npages > XV_MAX_PAGES)
        npages = XV_MAX_PAGES;
    a->arena_pages = (uint32_t)npages;
    a->arena_len = (size_t)npages << XV_PAGE_SHIFT;
    a->pages_len = ((size_t)npages * sizeof(struct xv_page) + XV_PAGE - 1) & ~(size_t)(XV_PAGE - 1);
    a->base = uz_vm_reserve(a->arena_len);
    if (!a->base)
        goto fail;
    a->pages = uz_vm_reserve(a->pages_len);
    if (!a->pages)
        goto fail;
    if (pthread_mutex_init(&a->lock, NULL))
        goto fail;
    if (pthread_mutex_init(&a->compact_lock, NULL)) {
        pthread_mutex_destroy(&a->lock);
        goto fail;
    }
    a->next_page = 1;
    a->owner_ops = p->owner_ops;
    a->owner = p->owner;
    a->limit_pages = p->limit_pages;
    return (struct uz_allocator *)a;
fail:
    if (a->pages)
        uz_vm_unreserve(a->pages, a->pages_len);
    if (a->base)
        uz_vm_unreserve(a->base, a->arena_len);
    uz_free(a);
    return NULL;
}

static void xv_destroy(struct uz_allocator *ua)
{
    struct xv *a = (struct xv *)ua;
    if (!a)
        return;
    pthread_mutex_destroy(&a->compact_lock);
    pthread_mutex_destroy(&a->lock);
    uz_vm_unreserve(a->pages, a->pages_len);
    uz_vm_unreserve(a->base, a->arena_len);
    uz_free(a);
}

static int xv_alloc(struct uz_allocator *ua, size_t size, uint32_t backref, uint64_t *handle)
{
    struct xv *a = (struct xv *)ua;
    if (size < 1 || size > XV_PAGE)
        return uz_error(-EINVAL, "xvmalloc: object size %zu not in 1..%u", size, XV_PAGE);
    uint32_t page;
    int err;
    pthread_mutex_lock(&a->lock);
    if (size > XV_HUGE_CLASS) {
        err = take_page(a, &page);
        if (err == 0) {
            struct xv_page *d = &a->pages[page];
            d->kind = PG_HUGE;
            d->draining = 0;
            d->val = (uint16_t)size;
            __atomic_store_n(&d->link, backref, __ATOMIC_RELAXED);
            a->huge_pages++;
            a->objects++;
            a->obj_bytes += size;
            *handle = make_handle(page, XV_HUGE_OFF);
        }
        pthread_mutex_unlock(&a->lock);
        return err;
    }
    uint64_t h = alloc_from_lists(a, size, backref);
    if (!h) {
        err = take_page(a, &page);
        if (err) {
            pthread_mutex_unlock(&a->lock);
            return err;
        }
        struct xv_page *d = &a->pages[page];
        d->kind = PG_NORMAL;
        d->draining = 0;
        d->val = XV_PAGE;
        d->link = 0;
        set_hdr(a, page, 0, XV_PAGE, BLOCK_FREE, 0, 0);
        h = carve(a, page, 0, XV_PAGE, size, backref);
    }
    pthread_mutex_unlock(&a->lock);
    *handle = h;
    return 0;
}

static void xv_free(struct uz_allocator *ua, uint64_t handle)
{
    struct xv *a = (struct xv *)ua;
    uint32_t page = handle_page(handle);
    unsigned off = handle_off(handle);
    pthread_mutex_lock(&a->lock);
    if (off == XV_HUGE_OFF) {
        a->objects--;
        a->obj_bytes -= a->pages[page].val;
        a->huge_pages--;
        put_page(a, page);
    } else {
        free_block(a, page, off);
    }
    pthread_mutex_unlock(&a->lock);
}

static void *xv_map(struct uz_allocator *ua, uint64_t handle)
{
    struct xv *a = (struct xv *)ua;
    unsigned off = handle_off(handle);
    char *p = page_addr(a, handle_page(handle));
    return off == XV_HUGE_OFF ? p : p + off + XV_OBJ_HDR;
}

static size_t xv_obj_size(struct uz_allocator *ua, uint64_t handle)
{
    struct xv *a = (struct xv *)ua;
    uint32_t page = handle_page(handle);
    unsigned off = handle_off(handle);
    if (off == XV_HUGE_OFF)
        return __atomic_load_n(&a->pages[page].val, __ATOMIC_RELAXED);
    return blk_size(a, page, off) - XV_OBJ_HDR - blk_pad(a, page, off);
}

static void xv_set_backref(struct uz_allocator *ua, uint64_t handle, uint32_t backref)
{
    struct xv *a = (struct xv *)ua;
    uint32_t page = handle_page(handle);
    unsigned off = handle_off(handle);
    if (off == XV_HUGE_OFF)
        __atomic_store_n(&a->pages[page].link, backref, __ATOMIC_RELAXED);
    else
        __atomic_store_n(backref_p(a, page, off), backref, __ATOMIC_RELAXED);
}

static uint32_t xv_backref(struct uz_allocator *ua, uint64_t handle)
{
    struct xv *a = (struct xv *)ua;
    uint32_t page = handle_page(handle);
    unsigned off = handle_off(handle);
    if (off == XV_HUGE_OFF)
        return __atomic_load_n(&a->pages[page].link, __ATOMIC_RELAXED);
    return __atomic_load_n(backref_p(a, page, off), __ATOMIC_RELAXED);
}

static size_t xv_huge_class_size(struct uz_allocator *ua)
{
    (void)ua;
    return XV_HUGE_CLASS;
}

/* Blocks are the size plus the header, rounded up to 8 bytes. */
static size_t xv_class_size(struct uz_allocator *ua, size_t size)
{
    (void)ua;
    if (size > XV_HUGE_CLASS)
        return XV_PAGE;
    return (size + XV_OBJ_HDR + XV_ALIGN - 1) & ~(size_t)(XV_ALIGN - 1);
}

/* ---- compaction ---- */

/* Take the free blocks of a normal page off the lists and mark it draining. */
static void drain_begin(struct xv *a, uint32_t page)
{
    for (unsigned off = 0; off < XV_PAGE; off += blk_size(a, page, off))
        if (blk_flags(a, page, off) & BLOCK_FREE)
            list_remove(a, page, off, blk_size(a, page, off));
    a->pages[page].draining = 1;
    a->ndraining++;
}

/* Put a draining page's free blocks back on the lists. */
static void drain_end(struct xv *a, uint32_t page)
{
    a->pages[page].draining = 0;
    a->ndraining--;
    for (unsigned off = 0; off < XV_PAGE; off += blk_size(a, page, off))
        if (blk_flags(a, page, off) & BLOCK_FREE)
            list_insert(a, page, off, blk_size(a, page, off));
}

/* Move every object out of a draining page.  True if the page was emptied
 * (and released); otherwise the page is no longer draining. */
static bool drain_page(struct xv *a, uint32_t page)
{
    const struct uz_owner_ops *ops = a->owner_ops;
    unsigned off = 0;
    while (off < XV_PAGE) {
        unsigned size = blk_size(a, page, off);
        if (blk_flags(a, page, off) & BLOCK_FREE) {
            off += size;
            continue;
        }
        uint32_t *brp = backref_p(a, page, off);
        uint32_t br = __atomic_load_n(brp, __ATOMIC_RELAXED);
        if (!ops->pin(a->owner, br))
            break;                     /* busy: this page cannot empty now */
        if (__atomic_load_n(brp, __ATOMIC_RELAXED) != br) {
            ops->unpin(a->owner, br);  /* owner changed under us */
            break;
        }
        size_t s = size - XV_OBJ_HDR - blk_pad(a, page, off);
        uint64_t nh = alloc_from_lists(a, s, br);
        if (!nh) {
            ops->unpin(a->owner, br);
            break;                     /* no room elsewhere */
        }
        memcpy(xv_map((struct uz_allocator *)a, nh), page_addr(a, page) + off + XV_OBJ_HDR, s);
        ops->moved(a->owner, br, make_handle(page, off), nh);
        ops->unpin(a->owner, br);
        int r = free_block(a, page, off);
        if (r < 0)
            return true;
        off = (unsigned)r + blk_size(a, page, (unsigned)r);
    }
    drain_end(a, page);
    return false;
}

struct xv_cand {
    uint32_t page;
    uint32_t free;
};

static int cand_cmp(const void *x, const void *y)
{
    const struct xv_cand *p = x, *q = y;
    if (p->free != q->free)
        return p->free > q->free ? -1 : 1;
    return p->page < q->page ? -1 : p->page > q->page;
}

static uint64_t xv_compact(struct uz_allocator *ua, uint64_t max_pages)
{
    struct xv *a = (struct xv *)ua;
    if (!a->owner_ops)
        return 0;
    pthread_mutex_lock(&a->compact_lock);
    pthread_mutex_lock(&a->lock);

    size_t n = 0;
    uint64_t total_free = 0;
    for (uint32_t p = 1; p < a->next_page; p++)
        if (a->pages[p].kind == PG_NORMAL)
            n++;
    struct xv_cand *c = n ? uz_malloc(n * sizeof *c) : NULL;
    if (!c) {
        pthread_mutex_unlock(&a->lock);
        pthread_mutex_unlock(&a->compact_lock);
        return 0;
    }
    n = 0;
    for (uint32_t p = 1; p < a->next_page; p++) {
        if (a->pages[p].kind != PG_NORMAL)
            continue;
        c[n].page = p;
        c[n].free = a->pages[p].val;
        total_free += c[n].free;
        n++;
    }
    qsort(c, n, sizeof *c, cand_cmp);

    /* Sources: the emptiest pages, while what they hold could fit into the
     * free space of the pages that stay. */
    size_t nsel = 0;
    uint64_t sel_used = 0, sel_free = 0;
    while (nsel < n && (!max_pages || nsel < max_pages)) {
        uint64_t f = c[nsel].free, used = XV_PAGE - f;
        if (sel_used + used > total_free - sel_free - f)
            break;
        sel_used += used;
        sel_free += f;
        nsel++;
    }
    for (size_t i = 0; i < nsel; i++)
        drain_begin(a, c[i].page);
    a->compacting = true;
    pthread_mutex_unlock(&a->lock);

    uint64_t freed = 0;
    for (size_t i = 0; i < nsel; i++) {
        pthread_mutex_lock(&a->lock);
        uint32_t p = c[i].page;
        /* A page released by a plain free meanwhile is no longer draining. */
        if (a->pages[p].kind == PG_NORMAL && a->pages[p].draining && drain_page(a, p)) {
            freed++;
            a->pages_compacted++;
        }
        pthread_mutex_unlock(&a->lock);
    }
    pthread_mutex_lock(&a->lock);
    a->compacting = false;
    pthread_mutex_unlock(&a->lock);
    uz_free(c);
    pthread_mutex_unlock(&a->compact_lock);
    return freed;
}

static void xv_stats(struct uz_allocator *ua, struct uz_alloc_stats *st)
{
    struct xv *a = (struct xv *)ua;
    pthread_mutex_lock(&a->lock);
    size_t desc = ((size_t)a->next_page * sizeof(struct xv_page) + XV_PAGE - 1) & ~(size_t)(XV_PAGE - 1);
    st->pages_used = a->pages_used;
    st->meta_bytes = sizeof *a + desc;
    st->obj_bytes = a->obj_bytes;
    st->objects = a->objects;
    st->pages_compacted = a->pages_compacted;
    pthread_mutex_unlock(&a->lock);
}

/* ---- consistency check ---- */

#define FAIL(...) do { err = uz_error(-EFAULT, "xvmalloc: " __VA_ARGS__); goto out; } while (0)

static int xv_check(struct uz_allocator *ua)
{
    struct xv *a = (struct xv *)ua;
    int err = 0;
    pthread_mutex_lock(&a->lock);

    /* Pages: blocks, headers, per-page counters; count free blocks. */
    uint64_t normal = 0, huge = 0, nfree = 0, objects = 0, obj_bytes = 0, listed_free = 0;
    uint64_t draining = 0;
    for (uint32_t p = 1; p < a->next_page; p++) {
        struct xv_page *d = &a->pages[p];
        if (d->kind == PG_FREE) {
            nfree++;
            continue;
        }
        if (d->kind == PG_HUGE) {
            if (d->val <= XV_HUGE_CLASS || d->val > XV_PAGE)
                FAIL("page %u: huge object of %u bytes", p, d->val);
            huge++;
            objects++;
            obj_bytes += d->val;
            continue;
        }
        if (d->kind != PG_NORMAL)
            FAIL("page %u below next_page %u has kind %u", p, a->next_page, d->kind);
        normal++;
        draining += d->draining;
        unsigned off = 0, prev = 0, free_bytes = 0, nobj = 0;
        bool prev_free = false;
        while (off < XV_PAGE) {
            unsigned size = blk_size(a, p, off), flags = blk_flags(a, p, off);
            if (size < XV_MIN_BLOCK || off + size > XV_PAGE)
                FAIL("page %u off %u: block size %u", p, off, size);
            if (flags & ~(BLOCK_FREE | PREV_FREE))
                FAIL("page %u off %u: stray flags %#x", p, off, flags);
            if (blk_prev_off(a, p, off) != prev)
                FAIL("page %u off %u: prev offset %u, expected %u", p, off, blk_prev_off(a, p, off), prev);
            if (!!(flags & PREV_FREE) != prev_free)
                FAIL("page %u off %u: PREV_FREE %d, previous block free %d", p, off,
                     !!(flags & PREV_FREE), prev_free);
            if (flags & BLOCK_FREE) {
                if (prev_free)
                    FAIL("page %u off %u: two adjacent free blocks", p, off);
                if (blk_pad(a, p, off))
                    FAIL("page %u off %u: free block with padding", p, off);
                free_bytes += size;
                if (!d->draining)
                    listed_free++;
            } else {
                unsigned pad = blk_pad(a, p, off);
                if (size < XV_OBJ_HDR + pad + 1 || pad > 15 || size - XV_OBJ_HDR - pad > XV_HUGE_CLASS)
                    FAIL("page %u off %u: block %u with padding %u", p, off, size, pad);
                nobj++;
                obj_bytes += size - XV_OBJ_HDR - pad;
            }
            prev_free = flags & BLOCK_FREE;
            prev = off;
            off += size;
        }
        if (free_bytes == XV_PAGE)
            FAIL("page %u: wholly free but not released", p);
        if (free_bytes != d->val)
            FAIL("page %u: %u free bytes, descriptor says %u", p, free_bytes, d->val);
        if (nobj != d->link)
            FAIL("page %u: %u objects, descriptor says %u", p, nobj, d->link);
        objects += nobj;
    }
    if (draining != a->ndraining || (draining && !a->compacting))
        FAIL("%llu pages draining, count %u, %s compaction", (unsigned long long)draining,
             a->ndraining, a->compacting ? "during" : "outside");
    if (normal + huge != a->pages_used)
        FAIL("pages_used %llu, found %llu normal + %llu huge", (unsigned long long)a->pages_used,
             (unsigned long long)normal, (unsigned long long)huge);
    if (huge != a->huge_pages)
        FAIL("huge_pages %llu, found %llu", (unsigned long long)a->huge_pages, (unsigned long long)huge);
    if (objects != a->objects || obj_bytes != a->obj_bytes)
        FAIL("objects %llu/%llu bytes, found %llu/%llu", (unsigned long long)a->objects,
             (unsigned long long)a->obj_bytes, (unsigned long long)objects, (unsigned long long)obj_bytes);

    /* Free-page stack: exactly the released pages. */
    uint64_t k = 0;
    for (uint32_t p = a->free_pages; p; p = a->pages[p].link) {
        if (p >= a->next_page || a->pages[p].kind != PG_FREE)
            FAIL("free-page stack holds page %u that is not free", p);
        if (++k > nfree)
            FAIL("free-page stack longer than the %llu free pages", (unsigned long long)nfree);
    }
    if (k != nfree || k != a->nfree_pages)
        FAIL("free-page stack has %llu pages, %llu free, count %u", (unsigned long long)k,
             (unsigned long long)nfree, a->nfree_pages);

    /* Lists: every entry a free block of the list's size on a non-draining
     * page, back links consistent (so no entry twice), and as many entries
     * as free blocks: each free block is on exactly its list. */
    uint64_t listed = 0;
    for (unsigned i = 0; i < XV_NLISTS; i++) {
        uint32_t pp = 0;
        unsigned po = 0;
        uint32_t p = a->heads[i].page;
        unsigned off = a->heads[i].off;
        bool bit = a->l2[i / 64] >> (i % 64) & 1;
        if (bit != (p != 0))
            FAIL("list %u: bitmap bit %d, list %s", i, bit, p ? "non-empty" : "empty");
        while (p) {
            if (p >= a->next_page)
                FAIL("list %u: entry on page %u past the used pages", i, p);
            if (a->pages[p].kind != PG_NORMAL || a->pages[p].draining)
                FAIL("list %u: entry on page %u of kind %u%s", i, p, a->pages[p].kind,
                     a->pages[p].draining ? " (draining)" : "");
            if (off % XV_ALIGN || off >= XV_PAGE)
                FAIL("list %u: entry at page %u offset %u", i, p, off);
            if (!(blk_flags(a, p, off) & BLOCK_FREE) || list_index(blk_size(a, p, off)) != i)
                FAIL("list %u: page %u off %u is not a free block of %u bytes", i, p, off,
                     (i + XV_MIN_BLOCK / XV_ALIGN) * XV_ALIGN);
            struct xv_links *l = links(a, p, off);
            if (l->prev_page != pp || (pp && l->prev_off != po))
                FAIL("list %u: page %u off %u has a wrong back link", i, p, off);
            if (++listed > listed_free)
                FAIL("lists hold more entries than the %llu free blocks", (unsigned long long)listed_free);
            pp = p;
            po = off;
            p = l->next_page;
            off = l->next_off;
        }
    }
    if (listed != listed_free)
        FAIL("lists hold %llu entries, pages %llu free blocks", (unsigned long long)listed,
             (unsigned long long)listed_free);
    for (unsigned w = 0; w < XV_NWORDS; w++)
        if (!!(a->l1 >> w & 1) != (a->l2[w] != 0))
            FAIL("top bitmap bit %u disagrees with word %#llx", w, (unsigned long long)a->l2[w]);
    if (a->l1 >> XV_NWORDS)
        FAIL("top bitmap has stray bits %#llx", (unsigned long long)a->l1);
out:
    pthread_mutex_unlock(&a->lock);
    return err;
}

const struct uz_alloc_ops uz_xvmalloc_ops = {
    .name = "xvmalloc",
    .create = xv_create,
    .destroy = xv_destroy,
    .alloc = xv_alloc,
    .free = xv_free,
    .map = xv_map,
    .obj_size = xv_obj_size,
    .class_size = xv_class_size,
    .set_backref = xv_set_backref,
    .backref = xv_backref,
    .huge_class_size = xv_huge_class_size,
    .compact = xv_compact,
    .stats = xv_stats,
    .check = xv_check,
};
