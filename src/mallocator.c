/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallocator.c - the baseline allocator: every object from the C library's
 * malloc.
 *
 * It implements alloc.h so that zsmalloc and xvmalloc can be measured
 * against "just call malloc".  Each object is one malloc chunk:
 *
 *     [prev, next][backref u32][size u32][payload, size bytes]
 *
 * and its handle is the chunk's address (never 0).  map() is handle + 24.
 * prev/next chain every live object so destroy() can free what the owner
 * did not (a device torn down with data in it).
 *
 * Footprint.  malloc does not say how much memory it holds for one caller.
 * pages_used is the larger of two figures:
 *
 *   - the chunks:  ceil(sum over live chunks of
 *                       (malloc_usable_size(chunk) + MA_CHUNK_OVERHEAD) / 4096)
 *   - the heap:    how much more memory malloc holds from the system than
 *                  when this allocator was created (mallinfo2: arena +
 *                  hblkhd), which includes the free chunks malloc keeps
 *                  after frees -- the fragmentation the chunk figure
 *                  cannot see.  It is process-wide, so it is right when the
 *                  device is the process's main malloc user (as in
 *                  `uzram bench`) and an over-estimate otherwise.  mallinfo2
 *                  walks malloc's bins, so it is read at most every 10 ms.
 *                  With no live object, pages_used is 0.
 *
 * With glibc a chunk in use is malloc_usable_size + 8 bytes (its size
 * word); MA_CHUNK_OVERHEAD is 16 to charge, roughly, some of the holes
 * between chunks as well.  The estimate cannot see free chunks that malloc
 * keeps (fragmentation after frees), so it understates under churn.
 * Measured on the lz4-compressed sqlite corpus in a quiet process: after
 * writing every page the estimate is 1.020x the object bytes and the heap
 * holds 1.015x; after swap-like churn (random rewrites and discards) the
 * estimate stays at 1.02x while the heap holds 1.30x (1.14x resident after
 * malloc_trim).  mallinfo2() (arena + hblkhd) sees that, but it is
 * process-wide: it counts every other malloc user in the process and every
 * other allocator instance, so it cannot be the figure of one device.  A
 * benchmark that runs one device in a quiet process can read mallinfo2()
 * itself to compare.
 *
 * Memory limit: checked against the estimate after malloc returns; an
 * allocation that would raise pages_used past *limit_pages is freed again
 * and fails with -ENOMEM.  uz_vm_commit_ok() is called first so fault
 * injection reaches this allocator too.
 *
 * Compaction: malloc cannot move objects; compact() only asks malloc to
 * give its free pages back to the OS (malloc_trim) and reports 0 pages.
 * check() can only check that the counters agree with each other.
 *
 * Thread-safety: malloc is thread-safe; the counters are under one mutex.
 * map(), obj_size() and set_backref() take no lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "mem.h"

extern const struct uz_alloc_ops uz_malloc_ops;

#define MA_PAGE 4096u
#define MA_HDR 24u              /* list links + backref + size */
#define MA_CHUNK_OVERHEAD 16u   /* charged per chunk besides its usable size */
#define MA_GLIBC_HDR 8u         /* glibc's real per-chunk header */

struct ma_obj;
struct ma {
    pthread_mutex_t lock;
    struct ma_obj *live;   /* every live object, so destroy can free them */
    uint64_t objects;
    uint64_t obj_bytes;    /* sum of sizes asked for */
    uint64_t foot_bytes;   /* sum of usable sizes + MA_CHUNK_OVERHEAD per chunk */
    _Atomic uint64_t *limit_pages;
    uint64_t heap_base;    /* mallinfo2 arena + hblkhd at create */
    uint64_t heap_delta;   /* last reading of (arena + hblkhd) - heap_base */
    uint64_t heap_at_ns;   /* when it was read */
};

static uint64_t heap_held(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.arena + (uint64_t)mi.hblkhd;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct ma_obj {
    struct ma_obj *prev, *next;
    uint32_t backref;
    uint32_t size;
    unsigned char data[];
};

static inline uint64_t foot_pages(uint64_t bytes)
{
    return (bytes + MA_PAGE - 1) / MA_PAGE;
}

static struct uz_allocator *ma_create(const struct uz_alloc_params *p)
{
    struct ma *a = uz_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (pthread_mutex_init(&a->lock, NULL)) {
        uz_free(a);
        return NULL;
    }
    a->limit_pages = p->limit_pages;
    a->heap_base = heap_held();
    return (struct uz_allocator *)a;
}

static void ma_destroy(struct uz_allocator *ua)
{
    struct ma *a = (struct ma *)ua;
    if (!a)
        return;
    for (struct ma_obj *o = a->live, *n; o; o = n) {
        n = o->next;
        free(o);
    }
    pthread_mutex_destroy(&a->lock);
    uz_free(a);
}

static int ma_alloc(struct uz_allocator *ua, size_t size, uint32_t backref, uint64_t *handle)
{
    struct ma *a = (struct ma *)ua;
    if (size < 1 || size > MA_PAGE)
        return uz_error(-EINVAL, "malloc: object size %zu not in 1..%u", size, MA_PAGE);
    if (!uz_vm_commit_ok())
        return -ENOMEM;
    struct ma_obj *o = malloc(MA_HDR + size);
    if (!o)
        return uz_error(-ENOMEM, "malloc: out of memory");
    uint64_t foot = malloc_usable_size(o) + MA_CHUNK_OVERHEAD;

    pthread_mutex_lock(&a->lock);
    uint64_t limit = a->limit_pages ? atomic_load(a->limit_pages) : 0;
    uint64_t before = foot_pages(a->foot_bytes), after = foot_pages(a->foot_bytes + foot);
    if (limit && after > before && after > limit) {
        pthread_mutex_unlock(&a->lock);
        free(o);
        return -ENOMEM;
    }
    a->objects++;
    a->obj_bytes += size;
    a->foot_bytes += foot;
    o->prev = NULL;
    o->next = a->live;
    if (a->live)
        a->live->prev = o;
    a->live = o;
    pthread_mutex_unlock(&a->lock);

    o->backref = backref;
    o->size = (uint32_t)size;
    *handle = (uint64_t)(uintptr_t)o;
    return 0;
}

static void ma_free(struct uz_allocator *ua, uint64_t handle)
{
    struct ma *a = (struct ma *)ua;
    struct ma_obj *o = (struct ma_obj *)(uintptr_t)handle;
    uint64_t foot = malloc_usable_size(o) + MA_CHUNK_OVERHEAD;
    uint32_t size = o->size;
    pthread_mutex_lock(&a->lock);
    if (o->prev)
        o->prev->next = o->next;
    else
        a->live = o->next;
    if (o->next)
        o->next->prev = o->prev;
    free(o);
    a->objects--;
    a->obj_bytes -= size;
    a->foot_bytes -= foot;
    pthread_mutex_unlock(&a->lock);
}

static void *ma_map(struct uz_allocator *ua, uint64_t handle)
{
    (void)ua;
    return ((struct ma_obj *)(uintptr_t)handle)->data;
}

static size_t ma_obj_size(struct uz_allocator *ua, uint64_t handle)
{
    (void)ua;
    return ((struct ma_obj *)(uintptr_t)handle)->size;
}

static void ma_set_backref(struct uz_allocator *ua, uint64_t handle, uint32_t backref)
{
    (void)ua;
    __atomic_store_n(&((struct ma_obj *)(uintptr_t)handle)->backref, backref, __ATOMIC_RELAXED);
}

static uint32_t ma_backref(struct uz_allocator *ua, uint64_t handle)
{
    (void)ua;
    return __atomic_load_n(&((struct ma_obj *)(uintptr_t)handle)->backref, __ATOMIC_RELAXED);
}

/* A chunk of MA_HDR + size bytes plus glibc's header fits in less than a
 * page up to this size. */
static size_t ma_huge_class_size(struct uz_allocator *ua)
{
    (void)ua;
    return MA_PAGE - MA_HDR - MA_GLIBC_HDR;
}

static uint64_t ma_compact(struct uz_allocator *ua, uint64_t max_pages)
{
    (void)ua;
    /* A bounded step (automatic compaction) can do nothing here: trimming
     * walks the whole heap.  An explicit compact trims. */
    if (max_pages == 0)
        malloc_trim(0);
    return 0;
}

static void ma_stats(struct uz_allocator *ua, struct uz_alloc_stats *st)
{
    struct ma *a = (struct ma *)ua;
    pthread_mutex_lock(&a->lock);
    uint64_t t = now_ns();
    if (t - a->heap_at_ns > 10000000u) {
        uint64_t held = heap_held();
        a->heap_delta = held > a->heap_base ? held - a->heap_base : 0;
        a->heap_at_ns = t;
    }
    uint64_t chunks = foot_pages(a->foot_bytes), heap = (a->heap_delta + MA_PAGE - 1) / MA_PAGE;
    /* With no live object the device holds nothing: what malloc keeps
     * then is its own cache, and reading 0 keeps "all freed" exact. */
    st->pages_used = a->objects == 0 ? 0 : chunks > heap ? chunks : heap;
    st->meta_bytes = sizeof *a;
    st->obj_bytes = a->obj_bytes;
    st->objects = a->objects;
    st->pages_compacted = 0;
    pthread_mutex_unlock(&a->lock);
}

static int ma_check(struct uz_allocator *ua)
{
    struct ma *a = (struct ma *)ua;
    int err = 0;
    pthread_mutex_lock(&a->lock);
    uint64_t n = a->objects, bytes = a->obj_bytes, foot = a->foot_bytes;
    if ((n == 0) != (bytes == 0) || (n == 0) != (foot == 0))
        err = uz_error(-EFAULT, "malloc: %llu objects, %llu bytes, %llu footprint bytes disagree",
                       (unsigned long long)n, (unsigned long long)bytes, (unsigned long long)foot);
    else if (bytes < n || bytes > n * MA_PAGE)
        err = uz_error(-EFAULT, "malloc: %llu objects cannot hold %llu bytes",
                       (unsigned long long)n, (unsigned long long)bytes);
    else if (foot < bytes + n * (MA_HDR + MA_CHUNK_OVERHEAD))
        err = uz_error(-EFAULT, "malloc: footprint %llu below %llu bytes in %llu objects",
                       (unsigned long long)foot, (unsigned long long)bytes, (unsigned long long)n);
    pthread_mutex_unlock(&a->lock);
    return err;
}

const struct uz_alloc_ops uz_malloc_ops = {
    .name = "malloc",
    .create = ma_create,
    .destroy = ma_destroy,
    .alloc = ma_alloc,
    .free = ma_free,
    .map = ma_map,
    .obj_size = ma_obj_size,
    .set_backref = ma_set_backref,
    .backref = ma_backref,
    .huge_class_size = ma_huge_class_size,
    .compact = ma_compact,
    .stats = ma_stats,
    .check = ma_check,
};
