/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * alloc.h - the interface between the store and an object allocator.
 *
 * The store compresses a page and asks the allocator for an object of the
 * compressed size.  It gets back an opaque 64-bit handle, which it keeps in
 * the page's slot.  The store must not know which allocator it has:
 * zsmalloc, xvmalloc and the malloc baseline all implement this table.
 *
 * Back-references.  Every object carries a 32-bit owner reference ("backref")
 * given at allocation: for the store it is the slot index (or, for an
 * object shared by several slots, the id of its shared record; see
 * UZ_BACKREF_SHARED).  Compaction moves objects; to move one it must find
 * and lock the object's owner, which it does through the owner callbacks:
 *
 *   pin(owner, backref)     try to lock the owner; false = busy, skip object
 *   moved(owner, backref, old_handle, new_handle)
 *                           the object now lives at new_handle; the owner
 *                           must update its reference (it is pinned)
 *   unpin(owner, backref)   release the lock taken by pin
 *
 * pin must never block: compaction holds the allocator's class lock while
 * calling it, and a writer may hold the owner lock while calling alloc.
 *
 * Mapping.  map() returns a pointer to the object's bytes, contiguous for
 * its whole size.  The pointer stays valid while the owner is locked (an
 * object is only moved with its owner pinned) and until free().
 *
 * Memory limit.  limit_pages (0 = none) is read on every growth: an alloc
 * that would need a new page beyond it fails with -ENOMEM.
 */
#ifndef UZRAM_ALLOC_H
#define UZRAM_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdatomic.h>

#define UZ_BACKREF_SHARED 0x80000000u /* backref names a shared record */

struct uz_owner_ops {
    bool (*pin)(void *owner, uint32_t backref);
    void (*moved)(void *owner, uint32_t backref, uint64_t old_handle, uint64_t new_handle);
    void (*unpin)(void *owner, uint32_t backref);
};

struct uz_alloc_params {
    uint64_t max_bytes;               /* most bytes that will ever be live (sizes arenas) */
    const struct uz_owner_ops *owner_ops; /* may be NULL: nothing can be moved */
    void *owner;
    _Atomic uint64_t *limit_pages;    /* may be NULL */
    /* zsmalloc only: the live bytes a size class must hold before it gets
     * zspages of its own; until then its objects go to the byte-exact
     * pack.  0 = the default; 1 = every class at once (no pack). */
    uint64_t dense_bytes;
    /* Every backref the owner gives (alloc, set_backref) is below this,
     * its UZ_BACKREF_SHARED bit aside; 0 = any 32-bit value.  zsmalloc
     * only: with a limit of at most 2^26 its pack records carry a 5-byte
     * header instead of 6, and an alloc whose backref is not below it
     * fails with -EINVAL. */
    uint32_t backref_limit;
};

struct uz_alloc_stats {
    uint64_t pages_used;      /* allocator pages holding objects (mem_used_total / 4096) */
    uint64_t meta_bytes;      /* metadata held besides those pages */
    uint64_t obj_bytes;       /* sum of sizes asked for by live objects */
    uint64_t objects;         /* live objects */
    uint64_t pages_compacted; /* pages freed by compaction, ever */
};

struct uz_allocator;

struct uz_alloc_ops {
    const char *name;
    /* NULL on failure. */
    struct uz_allocator *(*create)(const struct uz_alloc_params *p);
    void (*destroy)(struct uz_allocator *a);
    /* Allocate size bytes (1..4096).  0 and *handle, or -ENOMEM. */
    int (*alloc)(struct uz_allocator *a, size_t size, uint32_t backref, uint64_t *handle);
    void (*free)(struct uz_allocator *a, uint64_t handle);
    void *(*map)(struct uz_allocator *a, uint64_t handle);
    /* Size of the object (as asked at alloc time). */
    size_t (*obj_size)(struct uz_allocator *a, uint64_t handle);
    /* Change the backref of a live object (the owner holds it locked). */
    void (*set_backref)(struct uz_allocator *a, uint64_t handle, uint32_t backref);
    /* The backref of a live object.  Cannot fail; the owner holds the
     * object locked (or the caller has the device to itself, as the
     * store's check does). */
    uint32_t (*backref)(struct uz_allocator *a, uint64_t handle);
    /* Largest object size that is not "huge" (stored in less than a page
     * of its own): the store's default huge threshold is this + 1. */
    size_t (*huge_class_size)(struct uz_allocator *a);
    /* Bytes an object of size bytes really occupies: its size class (a
     * huge object: 4096).  Recompression keeps a smaller object only if it
     * lands in a smaller class.  May be NULL: the size itself is used. */
    size_t (*class_size)(struct uz_allocator *a, size_t size);
    /* Move objects out of the emptiest containers and free pages.  Works
     * at most on max_pages source pages (0 = no bound).  Returns the pages
     * freed. */
    uint64_t (*compact)(struct uz_allocator *a, uint64_t max_pages);
    void (*stats)(struct uz_allocator *a, struct uz_alloc_stats *st);
    /* Consistency check of every internal structure: 0 or -EFAULT with a
     * message through uz_error().  Slow; for tests. */
    int (*check)(struct uz_allocator *a);
};

/* Registry: by name, or the i-th (NULL past the end). */
const struct uz_alloc_ops *uz_alloc_find(const char *name);
const struct uz_alloc_ops *uz_alloc_at(unsigned i);

extern const struct uz_alloc_ops uz_zsmalloc_ops;
extern const struct uz_alloc_ops uz_xvmalloc_ops;
extern const struct uz_alloc_ops uz_malloc_ops;

#endif
