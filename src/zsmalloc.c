/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zsmalloc.c - the size-class allocator for compressed objects.
 *
 * The store hands us objects of 1..4096 bytes.  Objects of similar size are
 * packed edge to edge, across page boundaries, into "zspages": runs of 1..32
 * pages that are virtually contiguous in one big arena, so an object is
 * always one contiguous range of bytes and map() is pointer arithmetic.
 *
 * Data structure map
 * ------------------
 *
 *   struct uz_allocator
 *     arena ........ one address-space reservation (2 x max_bytes + 64 MiB,
 *                    at most ZS_ARENA_MAX_PAGES: page numbers are 32 bits),
 *                    carved into zspage runs; memory appears on first touch
 *     desc[] ....... dense array of 20-byte zspage descriptors, indexed by
 *                    zspage id, in its own reservation (it never moves, so
 *                    map() reads it without a lock); resident up to the
 *                    high-water mark of ids ever used
 *     classes[] .... one struct per size class, each with its own mutex
 *     huge ......... the class of objects that get a page each
 *     bucket_class[] payload size -> class, in 16-byte steps
 *
 *   size class  (cell = bytes per object, 4-byte header included)
 *     head[g] ...... fullness band lists of live zspages (the kernel's
 *                    fullness groups; "group" here means group.c's
 *                    compressed groups, "slot" the store's table
 *                    entries, so zsmalloc says band and cell): g = 0..7 holds
 *                    zspages with inuse * 8 / objs == g, g = 8 the full ones
 *
 *   zspage (pages * 4096 bytes of arena, from desc->first_page)
 *     +-------------+--------+--------+--------+-- ... --+--------+------+
 *     | slack table | cell 0 | cell 1 | cell 2 |         | cell k | tail |
 *     +-------------+--------+--------+--------+-- ... --+--------+------+
 *     slack table: one byte per cell, (class payload capacity - size asked
 *                  at alloc), so obj_size() and obj_bytes are exact; 4-byte
 *                  aligned so payloads are 4-byte aligned
 *     cell:        [u32 header][payload ...]; the header is the backref of
 *                  an allocated object, or the index of the next free cell
 *                  of a freed one.  There is no tag bit: whether a cell is
 *                  allocated is known from the zspage's free list and bump
 *                  counter (below), which only the class lock holder reads.
 *
 *   Per-object overhead is the 4-byte header plus the 1-byte slack entry.
 *
 *   Handle = ((zspage id + 1) << 18) | cell index; never 0.
 *   map(handle) = arena + desc[id].first_page * 4096 + table + idx * cell + 4.
 *
 * Lazy carving.  A zspage hands out cells in order with a bump counter
 * ("bump" = cells ever carved); freed cells go on a per-zspage free list
 * threaded through their headers and are reused first.  Only the pages
 * under carved cells are ever touched: they are "committed" and counted in
 * pages_used; the rest of the run stays reserved address space.  So a
 * class's last, partly filled zspage costs at most the page being carved,
 * not the whole run.  The memory limit and fault injection
 * (uz_vm_commit_ok) are applied whenever a page is committed: when a
 * zspage is created and when carving crosses into a new page.
 *
 * Huge objects.  A class whose best layout is one object in a one-page
 * zspage is huge: all of those (payload > huge_class_size(), up to 4096)
 * share one class whose zspages are one raw page, with the backref and the
 * size kept in the descriptor, so a raw page costs exactly one page.
 * A freed huge page is not given back to the system at once: up to
 * pages_used / 512 of them (16..256) stay resident on the warm list
 * (cls = ZS_CLS_WARM, huge lock), counted in the metadata, and the next
 * huge objects take them first.  An overwrite of a raw page allocates the
 * new object before the old one is freed, so without the list every such
 * write would pay a page release and a page fault (docs/benchmarks.md,
 * "Incompressible pages").  The pages above the arena top are kept
 * resident by prefault.c.
 *
 * Class layout.  For cell sizes 32..4096 in 16-byte steps, the run length
 * 1..32 (ZS_MAX_CHAIN) that wastes the smallest fraction of the run is
 * chosen (ties: the shorter run).  Runs of up to 32 pages rather than 8
 * because some sizes cannot pack into 8: cells of 1936..2032 bytes still
 * waste up to 5.5% of 8 pages, and longer runs halve the average loss
 * over real lz4 output each time the limit doubles.
 * Lazy carving makes long runs cost nothing while they fill.  Long runs
 * also move the huge threshold up: the largest payload that is not huge
 * is 3964 bytes (3628 with runs of 8).  Neighbouring sizes with the same (pages, objects) layout
 * are merged into the largest of them (as long as the slack still fits a
 * byte): a zspage holds as many objects either way, and fewer
 * classes means fewer partly filled pages.
 *
 * Fullness bands and compaction.  alloc takes a cell from the fullest
 * zspage that has one on committed pages, else carves the fullest one
 * that is not full, else creates a zspage.  compact() repeatedly takes the
 * emptiest zspage of a class as the source and moves its objects, top
 * cell first, into free cells on committed pages of the fullest other
 * zspages (so compaction never commits a page), and when those run out
 * into the source's own lowest free cells; for each: pin the owner (a
 * trylock; a busy one ends that source), copy, tell the owner the new
 * handle, unpin.  Then the source is trimmed: its bump counter drops to
 * its highest live cell and the pages above are released -- all of them
 * if it emptied.  So after compaction every class has full zspages and at
 * most one partly filled one whose free space is at its end.  A source
 * that yields nothing is not tried again in that call.

 * Arena runs.  A freed zspage's committed pages are released to the OS and
 * its descriptor becomes a "vacant run" (cls = ZS_CLS_VACANT, run_len
 * pages) on a free list per run length (run_head[1..ZS_MAX_CHAIN]; run_head[0] holds
 * longer, coalesced runs).  A new zspage takes a run of its length, or
 * splits a longer one, or takes fresh pages from the arena top.  When the
 * arena is exhausted the vacant runs are sorted and adjacent ones merged
 * (coalesce), and the allocation is tried again.  Descriptors with no run
 * (cls = ZS_CLS_EMPTY) sit on the empty-id list for reuse before the
 * high-water mark grows.
 *
 * The pack.  A class that holds less than dense_bytes (default 2 MiB)
 * has no zspages: its objects live byte-exact in the pack, zspack.c.
 * Once the allocator has freed more objects than an eighth of those it
 * holds (frees, counted in free()), the bound is a quarter of that
 * (512 KiB): a fill packs more (a record costs its 5- or 6-byte header,
 * a cell its rounding and 5 bytes), a churn gets zspages, whose holes
 * the next objects reuse where the pack's dead records wait for cleaning
 * (docs/settling.md, "Footprint bounds", has the figures).
 *
 * UZ_ZS_DUMP=1 in the environment prints the class table at destroy
 * (zs_dump): what each class and the pack hold and what they lose.
 *
 * Invariants (check() verifies each one)
 * --------------------------------------
 *  - A live zspage has 1 <= inuse <= bump <= objs; it sits on exactly the
 *    list head[band] of its class with band == band_of(inuse); an
 *    empty zspage is freed at once.
 *  - Its free list holds exactly bump - inuse distinct cells, all < bump.
 *  - Its committed pages are pages_for(bump) (at least the pages under
 *    cell 0); pages_used == sum of committed pages of all live zspages.
 *  - huge_pages (the prefault window's count, an atomic) == the huge
 *    class's pages.
 *  - Class counters (zspages, inuse, obj_bytes, pages, free_ng) equal the
 *    sums over its zspages; free_ng counts free cells that lie wholly on
 *    committed pages (what compaction may fill without growing).
 *  - Every arena page below top belongs to exactly one live zspage run,
 *    pack run, vacant run or warm page; none at or above top does.
 *  - The warm list holds exactly the warm_n descriptors of class WARM.
 *  - The pack's own invariants: zspack.c.
 *
 * Locking
 * -------
 * (Where these sit among the store's locks: src/README.md, "Lock order".)
 *  - class->lock guards the class's lists, counters, its zspages'
 *    descriptors (except the constant first_page and cls) and the headers,
 *    free lists and slack entries inside them.  alloc, free, set_backref
 *    and compaction of different classes run in parallel.  The class locks
 *    are 32 stripes (class c takes locks[c % 32]; the huge class has its
 *    own): two busy classes rarely share one, and check() can hold every
 *    lock at once without passing ThreadSanitizer's limit of 64 held locks.
 *  - pack.lock guards the pack (zspack.c).  alloc takes it only after
 *    dropping the class lock; cleaning holds it while it picks a run and
 *    pins its records' owners, then takes it and a class lock in turn,
 *    never one inside the other, for each record it moves.
 *  - arena_lock guards the run lists, the empty-id list, top and hwm.
 *    Order: pack lock, then class lock, then arena lock; check() takes the
 *    pack lock, the stripes in ascending order, then huge_lock, then
 *    arena_lock; nothing else holds two class locks.
 *  - map() and obj_size() take no lock: a live object's descriptor fields
 *    first_page and cls are constant, the class geometry is constant, and
 *    the caller holds the object's owner locked, so it is neither freed nor
 *    moved meanwhile.
 *  - Compaction holds the class lock (cleaning: the pack lock) while it
 *    calls the owner's pin (a trylock); a class's compaction holds it for
 *    moved and unpin too, cleaning holds no allocator lock for them.  So
 *    those callbacks must not call alloc, free or set_backref themselves.
 *  - pages_used, objects, obj_bytes and pages_compacted are atomics.
 */
#define _GNU_SOURCE
#include "zsmalloc.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- class geometry ---------------------------------------------------- */

/* Cells of `cell` bytes that fit in `pages` pages with their slack table. */
static uint32_t objs_fitting(uint32_t cell, uint32_t pages)
{
    uint32_t room = pages * ZS_PAGE;
    uint32_t k = room / cell;
    while (k > 0 && round_up(k, 4) + k * cell > room)
        k--;
    return k < ZS_MAX_OBJS ? k : ZS_MAX_OBJS - 1;
}

/* Best layout for a cell size: fills *pages and returns the cells per
 * zspage; 1 means the size is huge. */
static uint32_t best_layout(uint32_t cell, uint32_t *pages)
{
    uint32_t best_n = 1, best_k = objs_fitting(cell, 1);
    uint64_t best_waste = ZS_PAGE - (uint64_t)best_k * cell;
    for (uint32_t n = 2; n <= ZS_MAX_CHAIN; n++) {
        uint32_t k = objs_fitting(cell, n);
        uint64_t waste = (uint64_t)n * ZS_PAGE - (uint64_t)k * cell;
        /* waste / n < best_waste / best_n, without division */
        if (waste * best_n < best_waste * n) {
            best_n = n;
            best_k = k;
            best_waste = waste;
        }
    }
    *pages = best_n;
    return best_k;
}

/* Fill the size-class table: returns the number of classes, sets
 * bucket_class[] and, when cls != NULL, the classes' geometry. */
static uint32_t build_classes(uint8_t *bucket_class, struct zs_class *cls, size_t *huge_max)
{
    uint32_t n = 0, b = 0;
    *huge_max = 0;
    while (b < ZS_NBUCKETS && n < ZS_CLS_WARM) {
        uint32_t pages, objs = best_layout(ZS_MIN_SLOT + b * ZS_STEP, &pages);
        if (objs <= 1)
            break;          /* this size and all larger ones are huge */
        /* extend over larger sizes with the same layout, as long as the
         * slack of the smallest payload in the class fits a byte */
        uint32_t min_payload = b == 0 ? 1 : ZS_MIN_SLOT + b * ZS_STEP - ZS_HDR - ZS_STEP + 1;
        uint32_t e = b;
        while (e + 1 < ZS_NBUCKETS && ZS_MIN_SLOT + (e + 1) * ZS_STEP - ZS_HDR - min_payload <= 255) {
            uint32_t p2, o2 = best_layout(ZS_MIN_SLOT + (e + 1) * ZS_STEP, &p2);
            if (o2 != objs || p2 != pages)
                break;
            e++;
        }
        uint32_t cell = ZS_MIN_SLOT + e * ZS_STEP;
        for (uint32_t i = b; i <= e; i++)
            bucket_class[i] = (uint8_t)n;
        if (cls) {
            cls[n].cell = cell;
            cls[n].payload = cell - ZS_HDR;
            cls[n].objs = (uint16_t)objs;
            cls[n].run_pages = (uint8_t)pages;
            cls[n].table = round_up(objs, 4);
            cls[n].index = (uint8_t)n;
        }
        *huge_max = cell - ZS_HDR;
        n++;
        b = e + 1;
    }
    for (; b < ZS_NBUCKETS; b++)
        bucket_class[b] = ZS_CLS_HUGE;
    return n;
}

/* ---- memory limit ------------------------------------------------------- */

/* Account n more committed pages, unless fault injection or the limit
 * says no. */
bool zs_pages_reserve(struct uz_allocator *a, uint32_t n)
{
    if (!uz_vm_commit_ok())
        return false;
    uint64_t lim = a->limit_pages ? atomic_load(a->limit_pages) : 0;
    uint64_t cur = atomic_load(&a->pages_used);
    do {
        if (lim && cur + n > lim)
            return false;
    } while (!atomic_compare_exchange_weak(&a->pages_used, &cur, cur + n));
    return true;
}

void zs_pages_unreserve(struct uz_allocator *a, uint32_t n)
{
    atomic_fetch_sub(&a->pages_used, n);
}

/* ---- arena runs (arena_lock held) --------------------------------------- */

static bool id_get(struct uz_allocator *a, uint32_t *id)
{
    if (a->empty_head != ZS_NONE) {
        *id = a->empty_head;
        a->empty_head = zs_desc(a, *id)->u.link.next;
        return true;
    }
    if (a->hwm >= a->desc_max)
        return false;
    *id = a->hwm++;
    atomic_store(&a->hwm_pub, a->hwm);
    return true;
}

static void id_put(struct uz_allocator *a, uint32_t id)
{
    struct zspage *z = zs_desc(a, id);
    memset(z, 0, sizeof *z);
    z->cls = ZS_CLS_EMPTY;
    z->u.link.next = a->empty_head;
    a->empty_head = id;
}

/* File a vacant run on its list. */
static void run_file(struct uz_allocator *a, uint32_t id)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t l = z->v.run_len <= ZS_MAX_CHAIN ? z->v.run_len : 0;
    z->cls = ZS_CLS_VACANT;
    z->u.link.next = a->run_head[l];
    a->run_head[l] = id;
}

/* What the prefault window is sized by: the pages that huge objects hold,
 * and a quarter of the others.  The window is there for the writer, so it
 * follows how fast the writer consumes new pages, and a raw page takes a
 * page per page written where one of compressed objects takes a page per
 * 2-5 written (and all but the largest objects go to the pack and the
 * classes' holes first).  So compressible data pays for no more than the
 * smallest window until the device is large, and incompressible data gets
 * the window it had (prefault.c: pages / 512, 16..256). */
static uint64_t window_basis(struct uz_allocator *a)
{
    uint64_t used = atomic_load_explicit(&a->pages_used, memory_order_relaxed);
    uint64_t huge = atomic_load_explicit(&a->huge_pages, memory_order_relaxed);
    return huge >= used ? used : huge + (used - huge) / 4;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Merge adjacent vacant runs and give the last one back to top if it ends
 * there.  Returns false when there was nothing to gain (or no memory for
 * the sort). */
static bool runs_coalesce(struct uz_allocator *a)
{
    size_t n = 0;
    for (uint32_t l = 0; l < ZS_RUN_LISTS; l++)
        for (uint32_t id = a->run_head[l]; id != ZS_NONE; id = zs_desc(a, id)->u.link.next)
            n++;
    if (n == 0)
        return false;
    uint64_t *keys = uz_malloc(n * sizeof *keys);
    if (!keys)
        return false;
    size_t i = 0;
    for (uint32_t l = 0; l < ZS_RUN_LISTS; l++) {
        for (uint32_t id = a->run_head[l]; id != ZS_NONE; id = zs_desc(a, id)->u.link.next)
            keys[i++] = (uint64_t)zs_desc(a, id)->first_page << 32 | id;
        a->run_head[l] = ZS_NONE;
    }
    qsort(keys, n, sizeof *keys, cmp_u64);
    uint32_t cur = (uint32_t)keys[0];
    for (i = 1; i <= n; i++) {
        struct zspage *c = zs_desc(a, cur);
        if (i < n) {
            uint32_t next = (uint32_t)keys[i];
            struct zspage *x = zs_desc(a, next);
            if (c->first_page + c->v.run_len == x->first_page) {
                c->v.run_len += x->v.run_len;
                id_put(a, next);
                continue;
            }
        }
        if (c->first_page + c->v.run_len == a->top) {
            a->top = c->first_page;
            uz_prefault_top(&a->pf, a->top, window_basis(a));
            id_put(a, cur);
        } else {
            run_file(a, cur);
        }
        if (i < n)
            cur = (uint32_t)keys[i];
    }
    uz_free(keys);
    return true;
}

/* Find a run of n pages and a descriptor id for it.  On success the
 * descriptor's first_page is set; its other fields are the caller's. */
bool zs_run_get(struct uz_allocator *a, uint32_t n, uint32_t *out)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (a->run_head[n] != ZS_NONE) {
            uint32_t id = a->run_head[n];
            a->run_head[n] = zs_desc(a, id)->u.link.next;
            *out = id;
            return true;
        }
        for (uint32_t l = n + 1; l <= ZS_RUN_LISTS; l++) {
            uint32_t li = l % ZS_RUN_LISTS; /* n+1..ZS_MAX_CHAIN, then the long runs */
            uint32_t r = a->run_head[li];
            if (r == ZS_NONE)
                continue;
            uint32_t id;
            if (!id_get(a, &id))
                return false;
            struct zspage *rz = zs_desc(a, r);
            a->run_head[li] = rz->u.link.next;
            zs_desc(a, id)->first_page = rz->first_page;
            rz->first_page += n;
            rz->v.run_len -= n;
            run_file(a, r);
            *out = id;
            return true;
        }
        if (a->arena_pages - a->top >= n) {
            uint32_t id;
            if (!id_get(a, &id))
                return false;
            zs_desc(a, id)->first_page = a->top;
            a->top += n;
            uz_prefault_top(&a->pf, a->top, window_basis(a));
            *out = id;
            return true;
        }
        if (attempt == 0 && !runs_coalesce(a))
            break;
    }
    return false;
}

/* Give back the run of n pages held by descriptor id. */
void zs_run_put(struct uz_allocator *a, uint32_t id, uint32_t n)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t first = z->first_page;
    if (first + n == a->top) {
        a->top = first;
        uz_prefault_top(&a->pf, a->top, window_basis(a));
        id_put(a, id);
        return;
    }
    memset(z, 0, sizeof *z);
    z->first_page = first;
    z->v.run_len = n;
    run_file(a, id);
}

/* ---- fullness bands (class lock held) ---------------------------------- */

void zs_band_add(struct uz_allocator *a, struct zs_class *cl, uint32_t id, uint8_t g)
{
    struct zspage *z = zs_desc(a, id);
    z->band = g;
    z->u.link.prev = ZS_NONE;
    z->u.link.next = cl->head[g];
    if (cl->head[g] != ZS_NONE)
        zs_desc(a, cl->head[g])->u.link.prev = id;
    cl->head[g] = id;
}

void zs_band_del(struct uz_allocator *a, struct zs_class *cl, uint32_t id)
{
    struct zspage *z = zs_desc(a, id);
    if (z->u.link.prev != ZS_NONE)
        zs_desc(a, z->u.link.prev)->u.link.next = z->u.link.next;
    else
        cl->head[z->band] = z->u.link.next;
    if (z->u.link.next != ZS_NONE)
        zs_desc(a, z->u.link.next)->u.link.prev = z->u.link.prev;
}

/* After inuse or bump of a live zspage changed: move it to its band and
 * fix the class's free_ng (old_free = its free_ng before the change). */
static void zspage_settle(struct uz_allocator *a, struct zs_class *cl, uint32_t id, uint32_t old_free)
{
    struct zspage *z = zs_desc(a, id);
    uint8_t g = band_of(cl, z->v.obj.inuse);
    if (g != z->band) {
        zs_band_del(a, cl, id);
        zs_band_add(a, cl, id, g);
    }
    cl->free_ng = cl->free_ng - old_free + free_ng(cl, z);
}

/* ---- zspages (class lock held) ------------------------------------------ */

static int zspage_create(struct uz_allocator *a, struct zs_class *cl, uint32_t *out)
{
    uint32_t cp = pages_for(cl, 0);
    if (!zs_pages_reserve(a, cp))
        return -ENOMEM;
    uint32_t id;
    pthread_mutex_lock(&a->arena_lock);
    bool ok = zs_run_get(a, cl->run_pages, &id);
    pthread_mutex_unlock(&a->arena_lock);
    if (!ok) {
        zs_pages_unreserve(a, cp);
        return -ENOMEM;
    }
    struct zspage *z = zs_desc(a, id);
    z->cls = cl->index;
    z->v.obj.inuse = 0;
    z->v.obj.bump = 0;
    z->free_head = ZS_FREE_END;
    zs_band_add(a, cl, id, 0);
    cl->free_ng += free_ng(cl, z);
    cl->zspages++;
    cl->pages += cp;
    *out = id;
    return 0;
}

/* Release a live zspage's pages and return its run (it is off its list
 * and accounted out of free_ng already). */
static uint32_t zspage_destroy(struct uz_allocator *a, struct zs_class *cl, uint32_t id)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t cp = pages_for(cl, z->v.obj.bump);
    uz_vm_release(zs_base(a, z), (size_t)cp * ZS_PAGE);
    zs_pages_unreserve(a, cp);
    cl->pages -= cp;
    cl->zspages--;
    pthread_mutex_lock(&a->arena_lock);
    zs_run_put(a, id, cl->run_pages);
    pthread_mutex_unlock(&a->arena_lock);
    return cp;
}

/* Take a cell from zspage id: a freed one first, else carve the next one,
 * committing its pages if `grow`.  Returns the cell index, or -1. */
static int cell_take(struct uz_allocator *a, struct zs_class *cl, uint32_t id, bool grow)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t old_free = free_ng(cl, z);
    uint32_t idx;
    if (z->free_head != ZS_FREE_END) {
        idx = z->free_head;
        z->free_head = (uint16_t)hdr_get(cell_at(cl, zs_base(a, z), idx));
    } else if (z->v.obj.bump < cl->objs) {
        uint32_t have = pages_for(cl, z->v.obj.bump);
        uint32_t need = pages_for(cl, z->v.obj.bump + 1u);
        if (need > have) {
            if (!grow || !zs_pages_reserve(a, need - have))
                return -1;
            cl->pages += need - have;
        }
        idx = z->v.obj.bump++;
    } else {
        return -1;
    }
    z->v.obj.inuse++;
    zspage_settle(a, cl, id, old_free);
    return (int)idx;
}

/* Put cell idx of zspage id on its free list; frees the zspage when it
 * empties.  Returns the pages released. */
static uint32_t cell_put(struct uz_allocator *a, struct zs_class *cl, uint32_t id, uint32_t idx)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t old_free = free_ng(cl, z);
    if (--z->v.obj.inuse == 0) {
        zs_band_del(a, cl, id);
        cl->free_ng -= old_free;
        return zspage_destroy(a, cl, id);
    }
    hdr_set(cell_at(cl, zs_base(a, z), idx), z->free_head);
    z->free_head = (uint16_t)idx;
    zspage_settle(a, cl, id, old_free);
    return 0;
}

/* ---- alloc / free / map -------------------------------------------------- */

/* Freed huge pages: up to warm_cap() of them stay resident on the warm
 * list (huge lock held), so that the next huge object takes one without a
 * page fault (an overwrite of a raw page frees one and allocates one). */
static uint32_t warm_cap(struct uz_allocator *a)
{
    uint64_t want = atomic_load_explicit(&a->pages_used, memory_order_relaxed) / 512;
    return want < ZS_WARM_MIN ? ZS_WARM_MIN : want > ZS_WARM_MAX ? ZS_WARM_MAX : (uint32_t)want;
}

static int huge_alloc(struct uz_allocator *a, size_t size, uint32_t backref, uint64_t *handle)
{
    struct zs_class *cl = &a->huge;
    pthread_mutex_lock(cl->lock);
    if (!zs_pages_reserve(a, 1)) {
        pthread_mutex_unlock(cl->lock);
        return -ENOMEM;
    }
    uint32_t id;
    bool ok = true;
    if (a->warm_head != ZS_NONE) {
        id = a->warm_head;
        a->warm_head = zs_desc(a, id)->u.link.next;
        atomic_fetch_sub_explicit(&a->warm_n, 1, memory_order_relaxed);
    } else {
        pthread_mutex_lock(&a->arena_lock);
        ok = zs_run_get(a, 1, &id);
        pthread_mutex_unlock(&a->arena_lock);
    }
    if (!ok) {
        zs_pages_unreserve(a, 1);
        pthread_mutex_unlock(cl->lock);
        return -ENOMEM;
    }
    struct zspage *z = zs_desc(a, id);
    z->cls = ZS_CLS_HUGE;
    z->band = ZS_FULL;
    z->u.huge.backref = backref;
    z->u.huge.size = (uint32_t)size;
    z->v.obj.inuse = 1;
    z->v.obj.bump = 1;
    z->free_head = ZS_FREE_END;
    cl->zspages++;
    cl->inuse++;
    cl->obj_bytes += size;
    cl->pages++;
    atomic_fetch_add_explicit(&a->huge_pages, 1, memory_order_relaxed);
    atomic_fetch_add(&a->objects, 1);
    atomic_fetch_add(&a->obj_bytes, size);
    pthread_mutex_unlock(cl->lock);
    *handle = make_handle(id, 0);
    return 0;
}

/* The fullest zspage of the class that has a free cell, preferring cells
 * on committed pages; skip = a zspage not to use (ZS_NONE for none);
 * committed_only = ignore cells that need a new page. */
static uint32_t pick_fullest(struct uz_allocator *a, struct zs_class *cl, uint32_t skip, bool committed_only)
{
    if (cl->free_ng > 0) {
        for (int g = ZS_NPART - 1; g >= 0; g--)
            for (uint32_t id = cl->head[g]; id != ZS_NONE; id = zs_desc(a, id)->u.link.next)
                if (id != skip && free_ng(cl, zs_desc(a, id)) > 0)
                    return id;
    }
    if (committed_only)
        return ZS_NONE;
    for (int g = ZS_NPART - 1; g >= 0; g--)
        for (uint32_t id = cl->head[g]; id != ZS_NONE; id = zs_desc(a, id)->u.link.next)
            if (id != skip)
                return id;
    return ZS_NONE;
}

/* Cell idx of zspage id, just taken for an object of size bytes: write
 * its header and slack entry, count it, and return its handle. */
static uint64_t cell_fill(struct uz_allocator *a, struct zs_class *cl, uint32_t id, uint32_t idx,
                          size_t size, uint32_t backref)
{
    uint8_t *base = zs_base(a, zs_desc(a, id));
    hdr_set(cell_at(cl, base, idx), backref);
    base[idx] = (uint8_t)(cl->payload - size);
    cl->inuse++;
    cl->obj_bytes += size;
    atomic_fetch_add(&a->objects, 1);
    atomic_fetch_add(&a->obj_bytes, size);
    return make_handle(id, idx);
}

/* Take a free cell on committed pages of class c2 (locked by the caller)
 * for an object of size bytes; false if it has none. */
bool zs_take_committed(struct uz_allocator *a, struct zs_class *c2, size_t size,
                           uint32_t backref, uint64_t *handle)
{
    uint32_t id = pick_fullest(a, c2, ZS_NONE, true);
    if (id == ZS_NONE)
        return false;
    int idx = cell_take(a, c2, id, false);
    if (idx < 0)
        return false;
    *handle = cell_fill(a, c2, id, (uint32_t)idx, size, backref);
    return true;
}

/* Allocate in class cl (locked) even if that commits a page: the fullest
 * zspage with a free cell, else (if create) a new zspage. */
int zs_class_carve(struct uz_allocator *a, struct zs_class *cl, size_t size, uint32_t backref,
                   uint64_t *handle, bool create)
{
    uint32_t id = pick_fullest(a, cl, ZS_NONE, false);
    if (id == ZS_NONE) {
        if (!create)
            return -ENOMEM;
        int err = zspage_create(a, cl, &id);
        if (err)
            return err;
    }
    int idx = cell_take(a, cl, id, true);
    if (idx < 0)
        return -ENOMEM; /* only a page commit can fail here; a fresh zspage
                         * never needs one for its first cell, so nothing was
                         * created */
    *handle = cell_fill(a, cl, id, (uint32_t)idx, size, backref);
    return 0;
}

/* True if class cl (locked), with extra more bytes, holds enough to have
 * zspages of its own. */
bool zs_class_dense(struct uz_allocator *a, struct zs_class *cl, size_t extra)
{
    uint64_t dense = a->dense_bytes;
    if (atomic_load_explicit(&a->frees, memory_order_relaxed) * 8 >
        atomic_load_explicit(&a->objects, memory_order_relaxed))
        dense /= ZS_DENSE_CHURN_DIV;
    return cl->obj_bytes + extra + atomic_load_explicit(&cl->pack_bytes, memory_order_relaxed) >= dense;
}

static int zs_alloc(struct uz_allocator *a, size_t size, uint32_t backref, uint64_t *handle)
{
    if (size == 0 || size > ZS_PAGE)
        return uz_error(-EINVAL, "zsmalloc: object size %zu out of 1..%u", size, ZS_PAGE);
    if (a->backref_limit && (backref & ~UZ_BACKREF_SHARED) >= a->backref_limit)
        return uz_error(-EINVAL, "zsmalloc: backref %#x not below the limit %u", backref, a->backref_limit);
    if (size > a->huge_max)
        return huge_alloc(a, size, backref, handle);
    uint32_t c = a->bucket_class[bucket_of(size)];
    struct zs_class *cl = &a->classes[c];
    pthread_mutex_lock(cl->lock);
    if (zs_take_committed(a, cl, size, backref, handle)) {
        pthread_mutex_unlock(cl->lock);
        return 0;
    }
    /* The class would have to commit a page.  Borrowing: a free cell
     * already committed in one of the next few classes up costs at most
     * ZS_BORROW_BYTES of rounding, where a new page is 4096 bytes of which
     * half, on average, stays empty at the frontier of every class in use.
     * On small devices that frontier is most of the allocator's waste.
     * Measured: with 16 the allocator holds 72 KiB less for a 47 MiB
     * python heap and the same for the 100 MiB corpora; with 32 or 64 the
     * corpora lose more to rounding than the frontier gives back.
     * The other class's lock is only tried (ascending order, never
     * waited for), so no lock order is needed. */
    for (uint32_t k = c + 1; k < a->nclasses; k++) {
        struct zs_class *c2 = &a->classes[k];
        if (c2->cell - cl->cell > ZS_BORROW_BYTES || c2->payload - size > 255)
            break;
        if (c2->lock == cl->lock || pthread_mutex_trylock(c2->lock) != 0)
            continue;
        bool ok = zs_take_committed(a, c2, size, backref, handle);
        pthread_mutex_unlock(c2->lock);
        if (ok) {
            pthread_mutex_unlock(cl->lock);
            return 0;
        }
    }
    /* A class that holds less than dense_bytes would waste, at its
     * frontier, up to a page that is half empty on average: its objects go
     * to the pack instead, byte-exact. */
    if (!zs_class_dense(a, cl, size)) {
        pthread_mutex_unlock(cl->lock);
        return zs_pack_alloc(a, size, backref, handle);
    }
    int err = zs_class_carve(a, cl, size, backref, handle, true);
    pthread_mutex_unlock(cl->lock);
    return err;
}

/* The descriptor of a live handle, or NULL if the handle is not one. */
static struct zspage *handle_desc(struct uz_allocator *a, uint64_t h)
{
    if (h <= ZS_IDX_MASK)
        return NULL;
    uint32_t id = handle_id(h);
    if (id >= atomic_load_explicit(&a->hwm_pub, memory_order_relaxed))
        return NULL;
    return zs_desc(a, id);
}

static void zs_free(struct uz_allocator *a, uint64_t h)
{
    struct zspage *z = handle_desc(a, h);
    if (!z)
        return;
    uint32_t id = handle_id(h), idx = handle_idx(h);
    atomic_fetch_add_explicit(&a->frees, 1, memory_order_relaxed);
    if (z->cls == ZS_CLS_PACK) {
        zs_pack_free(a, id, idx);
        return;
    }
    if (z->cls == ZS_CLS_HUGE) {
        struct zs_class *cl = &a->huge;
        pthread_mutex_lock(cl->lock);
        uint32_t size = z->u.huge.size;
        cl->zspages--;
        cl->inuse--;
        cl->obj_bytes -= size;
        cl->pages--;
        atomic_fetch_sub_explicit(&a->huge_pages, 1, memory_order_relaxed);
        atomic_fetch_sub(&a->objects, 1);
        atomic_fetch_sub(&a->obj_bytes, size);
        zs_pages_unreserve(a, 1);
        if (atomic_load_explicit(&a->warm_n, memory_order_relaxed) < warm_cap(a)) {
            z->cls = ZS_CLS_WARM;
            z->u.link.next = a->warm_head;
            a->warm_head = id;
            atomic_fetch_add_explicit(&a->warm_n, 1, memory_order_relaxed);
            pthread_mutex_unlock(cl->lock);
            return;
        }
        uz_vm_release(zs_base(a, z), ZS_PAGE);
        pthread_mutex_lock(&a->arena_lock);
        zs_run_put(a, id, 1);
        pthread_mutex_unlock(&a->arena_lock);
        pthread_mutex_unlock(cl->lock);
        return;
    }
    if (z->cls >= a->nclasses)
        return;
    struct zs_class *cl = &a->classes[z->cls];
    pthread_mutex_lock(cl->lock);
    uint32_t size = cl->payload - zs_base(a, z)[idx];
    cl->inuse--;
    cl->obj_bytes -= size;
    atomic_fetch_sub(&a->objects, 1);
    atomic_fetch_sub(&a->obj_bytes, size);
    cell_put(a, cl, id, idx);
    pthread_mutex_unlock(cl->lock);
}

void *zs_map(struct uz_allocator *a, uint64_t h)
{
    struct zspage *z = handle_desc(a, h);
    if (!z)
        return NULL;
    if (z->cls == ZS_CLS_PACK)
        return zs_pack_map(a, z, handle_idx(h));
    if (z->cls == ZS_CLS_HUGE)
        return zs_base(a, z);
    const struct zs_class *cl = &a->classes[z->cls];
    return cell_at(cl, zs_base(a, z), handle_idx(h)) + ZS_HDR;
}

static size_t zs_obj_size(struct uz_allocator *a, uint64_t h)
{
    struct zspage *z = handle_desc(a, h);
    if (!z)
        return 0;
    if (z->cls == ZS_CLS_PACK)
        return zs_pack_size(a, z, handle_idx(h));
    if (z->cls == ZS_CLS_HUGE)
        return z->u.huge.size;
    const struct zs_class *cl = &a->classes[z->cls];
    return cl->payload - zs_base(a, z)[handle_idx(h)];
}

static uint32_t zs_backref(struct uz_allocator *a, uint64_t h)
{
    struct zspage *z = handle_desc(a, h);
    if (!z)
        return 0;
    if (z->cls == ZS_CLS_PACK)
        return zs_pack_backref(a, handle_id(h), handle_idx(h));
    struct zs_class *cl = z->cls == ZS_CLS_HUGE ? &a->huge : &a->classes[z->cls];
    pthread_mutex_lock(cl->lock);
    uint32_t b = z->cls == ZS_CLS_HUGE ? z->u.huge.backref
                                       : hdr_get(cell_at(cl, zs_base(a, z), handle_idx(h)));
    pthread_mutex_unlock(cl->lock);
    return b;
}

static void zs_set_backref(struct uz_allocator *a, uint64_t h, uint32_t backref)
{
    struct zspage *z = handle_desc(a, h);
    if (!z)
        return;
    if (z->cls == ZS_CLS_PACK) {
        zs_pack_set_backref(a, handle_id(h), handle_idx(h), backref);
        return;
    }
    struct zs_class *cl = z->cls == ZS_CLS_HUGE ? &a->huge : &a->classes[z->cls];
    pthread_mutex_lock(cl->lock);
    if (z->cls == ZS_CLS_HUGE)
        z->u.huge.backref = backref;
    else
        hdr_set(cell_at(cl, zs_base(a, z), handle_idx(h)), backref);
    pthread_mutex_unlock(cl->lock);
}

static size_t zs_huge_class_size(struct uz_allocator *a)
{
    return a->huge_max;
}

static size_t zs_class_size(struct uz_allocator *a, size_t size)
{
    if (size == 0 || size > a->huge_max)
        return ZS_PAGE;
    uint8_t c = a->bucket_class[bucket_of(size)];
    return c == ZS_CLS_HUGE ? ZS_PAGE : a->classes[c].cell;
}

/* ---- compaction ----------------------------------------------------------- */

/* The emptiest non-full zspage not in tried[], looking at no more than
 * ZS_SCAN_MAX zspages of the emptiest band that has a candidate. */
static uint32_t pick_emptiest(struct uz_allocator *a, struct zs_class *cl, const uint32_t *tried, int ntried)
{
    for (int g = 0; g < ZS_NPART; g++) {
        uint32_t best = ZS_NONE, best_inuse = UINT32_MAX;
        int scanned = 0;
        for (uint32_t id = cl->head[g]; id != ZS_NONE && scanned < ZS_SCAN_MAX;
             id = zs_desc(a, id)->u.link.next) {
            bool skip = false;
            for (int i = 0; i < ntried && !skip; i++)
                skip = tried[i] == id;
            if (skip)
                continue;
            scanned++;
            if (zs_desc(a, id)->v.obj.inuse < best_inuse) {
                best = id;
                best_inuse = zs_desc(a, id)->v.obj.inuse;
            }
        }
        if (best != ZS_NONE)
            return best;
    }
    return ZS_NONE;
}

static inline bool bit_get(const uint64_t *map, uint32_t i) { return map[i / 64] >> (i % 64) & 1; }
static inline void bit_set(uint64_t *map, uint32_t i) { map[i / 64] |= 1ull << (i % 64); }
static inline void bit_clear(uint64_t *map, uint32_t i) { map[i / 64] &= ~(1ull << (i % 64)); }

/*
 * Compact zspage src: move its objects, top cell first, into the fullest
 * other zspages while they have free cells on committed pages, then into
 * src's own lowest free cells; then trim src to its highest live cell and
 * release the pages above it (all of src if it emptied).  Objects are
 * moved only while that can still lower src's page count, and the first
 * busy owner stops the walk (objects below it could not lower it either).
 * Returns the pages released; adds src's pages to *work if it tried.
 */
static uint32_t zspage_compact(struct uz_allocator *a, struct zs_class *cl, uint32_t src, uint64_t *work)
{
    const struct uz_owner_ops *ops = a->owner_ops;
    struct zspage *s = zs_desc(a, src);
    uint8_t *sbase = zs_base(a, s);
    uint64_t live[ZS_MAX_OBJS / 64] = { 0 };
    uint32_t bump = s->v.obj.bump, inuse = s->v.obj.inuse;
    uint32_t old_free = free_ng(cl, s), old_pages = pages_for(cl, bump);

    /* What full success would leave: the objects the others cannot take,
     * packed at the bottom. */
    uint64_t others = cl->free_ng - old_free;
    uint32_t stay = inuse > others ? inuse - (uint32_t)others : 0;
    uint32_t target = stay ? pages_for(cl, stay) : 0;
    if (target >= old_pages)
        return 0;
    *work += old_pages;

    for (uint32_t i = 0; i < bump; i++)
        bit_set(live, i);
    for (uint32_t f = s->free_head; f != ZS_FREE_END; f = hdr_get(cell_at(cl, sbase, f)) & 0xffffu)
        bit_clear(live, f);

    uint32_t low = 0;   /* src has no free cell below this */
    for (uint32_t idx = bump; idx-- > 0;) {
        if (!bit_get(live, idx))
            continue;
        if (target && pages_for(cl, idx + 1) <= target)
            break;      /* the rest already lies on the pages that stay */
        uint32_t dst = ZS_NONE;
        if (cl->free_ng > old_free)
            dst = pick_fullest(a, cl, src, true);
        if (dst == ZS_NONE) {
            while (low < idx && bit_get(live, low))
                low++;
            if (low >= idx)
                break;  /* packed */
        }
        uint8_t *from = cell_at(cl, sbase, idx);
        uint32_t backref = hdr_get(from);
        if (!ops->pin(a->owner, backref))
            break;
        uint32_t didx;
        uint8_t *dbase;
        if (dst != ZS_NONE) {
            int t = cell_take(a, cl, dst, false);   /* it has a committed free cell */
            didx = (uint32_t)t;
            dbase = zs_base(a, zs_desc(a, dst));
            inuse--;
        } else {
            dst = src;
            didx = low;
            dbase = sbase;
            bit_set(live, low);
        }
        uint32_t size = cl->payload - sbase[idx];
        memcpy(cell_at(cl, dbase, didx), from, ZS_HDR + size);
        dbase[didx] = sbase[idx];
        ops->moved(a->owner, backref, make_handle(src, idx), make_handle(dst, didx));
        ops->unpin(a->owner, backref);
        bit_clear(live, idx);
    }

    if (inuse == 0) {
        zs_band_del(a, cl, src);
        cl->free_ng -= old_free;
        return zspage_destroy(a, cl, src);  /* releases old_pages */
    }
    /* trim to the highest live cell and rebuild the free list below it */
    uint32_t nb = bump;
    while (!bit_get(live, nb - 1))
        nb--;
    uint16_t head = ZS_FREE_END;
    for (uint32_t j = nb; j-- > 0;) {
        if (!bit_get(live, j)) {
            hdr_set(cell_at(cl, sbase, j), head);
            head = (uint16_t)j;
        }
    }
    s->free_head = head;
    s->v.obj.inuse = (uint16_t)inuse;
    s->v.obj.bump = (uint16_t)nb;
    uint32_t new_pages = pages_for(cl, nb);
    if (new_pages < old_pages) {
        uz_vm_release(sbase + (size_t)new_pages * ZS_PAGE, (size_t)(old_pages - new_pages) * ZS_PAGE);
        zs_pages_unreserve(a, old_pages - new_pages);
        cl->pages -= old_pages - new_pages;
    }
    zspage_settle(a, cl, src, old_free);
    return old_pages - new_pages;
}

static void zs_rest(struct uz_allocator *a)
{
    /* a whole compaction: the device gives memory back, and pages held
     * ahead of writes are memory too (prefault.c, "At rest") */
    pthread_mutex_lock(&a->arena_lock);
    uz_prefault_rest(&a->pf);
    pthread_mutex_unlock(&a->arena_lock);
}

static uint64_t zs_compact(struct uz_allocator *a, uint64_t max_pages)
{
    if (!a->owner_ops) {
        if (!max_pages)
            zs_rest(a);   /* nothing can move without an owner to tell */
        return 0;
    }
    uint64_t freed = 0, work = 0;
    /* A bounded call (max_pages != 0) is one step of incremental
     * compaction: it starts at a rotating class, so successive steps share
     * the work among all classes, and skips classes whose free cells do not
     * add up to a page (nothing to free there). */
    freed += zs_pack_compact(a, max_pages, &work);
    uint32_t start = max_pages ? atomic_fetch_add(&a->cursor, 1) % a->nclasses : 0;
    for (uint32_t k = 0; k < a->nclasses; k++) {
        struct zs_class *cl = &a->classes[(start + k) % a->nclasses];
        uint32_t tried[ZS_TRIED_MAX];
        int ntried = 0;
        for (;;) {
            if (max_pages && work >= max_pages)
                goto out;
            pthread_mutex_lock(cl->lock);
            if (max_pages && cl->free_ng * cl->cell < ZS_PAGE) {
                pthread_mutex_unlock(cl->lock);
                break;
            }
            uint32_t src = pick_emptiest(a, cl, tried, ntried);
            if (src == ZS_NONE) {
                pthread_mutex_unlock(cl->lock);
                break;
            }
            uint32_t got = zspage_compact(a, cl, src, &work);
            pthread_mutex_unlock(cl->lock);
            freed += got;
            if (!got) {
                if (ntried == ZS_TRIED_MAX)
                    break;
                tried[ntried++] = src;
            }
        }
    }
out:
    atomic_fetch_add(&a->pages_compacted, freed);
    if (!max_pages)
        zs_rest(a);
    return freed;
}

/* ---- stats / check --------------------------------------------------------- */

static void zs_stats(struct uz_allocator *a, struct uz_alloc_stats *st)
{
    uint64_t desc_resident = (uint64_t)atomic_load(&a->hwm_pub) * sizeof(struct zspage);
    st->pages_used = atomic_load(&a->pages_used);
    st->meta_bytes = sizeof *a + a->nclasses * sizeof(struct zs_class)
                     + (desc_resident + ZS_PAGE - 1) / ZS_PAGE * ZS_PAGE
                     + uz_prefault_bytes(&a->pf)
                     + (uint64_t)atomic_load_explicit(&a->warm_n, memory_order_relaxed) * ZS_PAGE;
    st->obj_bytes = atomic_load(&a->obj_bytes);
    st->objects = atomic_load(&a->objects);
    st->pages_compacted = atomic_load(&a->pages_compacted);
}

/* Verify one live zspage of class cl: free list, sizes; adds its objects'
 * sizes to *bytes. */
static int check_zspage(struct uz_allocator *a, struct zs_class *cl, uint32_t id, uint64_t *bytes)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t inuse = z->v.obj.inuse, bump = z->v.obj.bump;
    CHECK(inuse >= 1 && inuse <= bump && bump <= cl->objs,
          "zspage %u of class %u: inuse %u bump %u objs %u", id, cl->index, inuse, bump, cl->objs);
    uint8_t *base = zs_base(a, z);
    uint64_t free_map[ZS_MAX_OBJS / 64] = { 0 };
    uint32_t nfree = 0;
    for (uint32_t f = z->free_head; f != ZS_FREE_END; f = hdr_get(cell_at(cl, base, f))) {
        CHECK(f < bump, "zspage %u: free cell %u not below bump %u", id, f, bump);
        CHECK(!(free_map[f / 64] >> (f % 64) & 1), "zspage %u: free cell %u listed twice", id, f);
        free_map[f / 64] |= 1ull << (f % 64);
        nfree++;
    }
    CHECK(nfree == bump - inuse, "zspage %u: %u free cells listed, bump %u - inuse %u", id, nfree, bump, inuse);
    for (uint32_t i = 0; i < bump; i++) {
        if (free_map[i / 64] >> (i % 64) & 1)
            continue;
        CHECK(base[i] < cl->payload, "zspage %u cell %u: slack %u leaves no payload", id, i, base[i]);
        *bytes += cl->payload - base[i];
    }
    return 0;
}

static int check_locked(struct uz_allocator *a, uint8_t *pagemap)
{
    uint64_t tot_pages = 0, tot_objs = 0, tot_bytes = 0;
    /* classes and their band lists */
    for (uint32_t c = 0; c < a->nclasses; c++) {
        struct zs_class *cl = &a->classes[c];
        uint64_t zspages = 0, inuse = 0, bytes = 0, pages = 0, fng = 0;
        for (int g = 0; g < ZS_NBANDS; g++) {
            uint32_t prev = ZS_NONE;
            for (uint32_t id = cl->head[g]; id != ZS_NONE; id = zs_desc(a, id)->u.link.next) {
                CHECK(id < a->hwm, "class %u band %d: id %u past hwm %u", c, g, id, a->hwm);
                struct zspage *z = zs_desc(a, id);
                CHECK(z->cls == c, "class %u band %d: zspage %u has class %u", c, g, id, z->cls);
                CHECK(z->band == g, "class %u: zspage %u on list %d says band %u", c, id, g, z->band);
                CHECK(z->u.link.prev == prev, "class %u band %d: zspage %u prev link %u, expected %u",
                      c, g, id, z->u.link.prev, prev);
                CHECK(zspages <= a->hwm, "class %u: band lists loop", c);
                int err = check_zspage(a, cl, id, &bytes);
                if (err)
                    return err;
                CHECK(band_of(cl, z->v.obj.inuse) == g, "class %u: zspage %u inuse %u/%u in band %d",
                      c, id, z->v.obj.inuse, cl->objs, g);
                zspages++;
                inuse += z->v.obj.inuse;
                pages += pages_for(cl, z->v.obj.bump);
                fng += free_ng(cl, z);
                prev = id;
            }
        }
        CHECK(zspages == cl->zspages, "class %u: %llu zspages listed, counter %llu", c,
              (unsigned long long)zspages, (unsigned long long)cl->zspages);
        CHECK(inuse == cl->inuse, "class %u: %llu objects found, counter %llu", c,
              (unsigned long long)inuse, (unsigned long long)cl->inuse);
        CHECK(bytes == cl->obj_bytes, "class %u: %llu object bytes found, counter %llu", c,
              (unsigned long long)bytes, (unsigned long long)cl->obj_bytes);
        CHECK(pages == cl->pages, "class %u: %llu committed pages found, counter %llu", c,
              (unsigned long long)pages, (unsigned long long)cl->pages);
        CHECK(fng == cl->free_ng, "class %u: %llu committed free cells found, counter %llu", c,
              (unsigned long long)fng, (unsigned long long)cl->free_ng);
        tot_pages += pages;
        tot_objs += inuse;
        tot_bytes += bytes;
    }

    uint64_t pack_runs = 0;
    int perr = zs_pack_check(a, &pack_runs);
    if (perr)
        return perr;

    /* every descriptor below hwm */
    uint64_t live[ZS_NBUCKETS] = { 0 }, huge = 0, huge_bytes = 0, vacant = 0, empty = 0, packs = 0, warm = 0;
    for (uint32_t id = 0; id < a->hwm; id++) {
        struct zspage *z = zs_desc(a, id);
        uint32_t len;
        if (z->cls == ZS_CLS_EMPTY) {
            empty++;
            continue;
        } else if (z->cls == ZS_CLS_VACANT) {
            vacant++;
            len = z->v.run_len;
            CHECK(len >= 1, "vacant run %u has no pages", id);
        } else if (z->cls == ZS_CLS_HUGE) {
            huge++;
            huge_bytes += z->u.huge.size;
            CHECK(z->u.huge.size > a->huge_max && z->u.huge.size <= ZS_PAGE,
                  "huge zspage %u: size %u", id, z->u.huge.size);
            len = 1;
        } else if (z->cls == ZS_CLS_WARM) {
            warm++;
            len = 1;
        } else if (z->cls == ZS_CLS_PACK) {
            packs++;
            len = ZS_PACK_PAGES;
        } else {
            CHECK(z->cls < a->nclasses, "zspage %u: bad class %u", id, z->cls);
            live[z->cls]++;
            len = a->classes[z->cls].run_pages;
        }
        CHECK((uint64_t)z->first_page + len <= a->top, "zspage/run %u: pages %u+%u past top %u",
              id, z->first_page, len, a->top);
        if (pagemap) {
            for (uint32_t p = z->first_page; p < z->first_page + len; p++) {
                CHECK(!(pagemap[p / 8] >> (p % 8) & 1), "arena page %u in two runs (second: id %u)", p, id);
                pagemap[p / 8] |= (uint8_t)(1u << (p % 8));
            }
        }
    }
    if (pagemap)
        for (uint32_t p = 0; p < a->top; p++)
            CHECK(pagemap[p / 8] >> (p % 8) & 1, "arena page %u below top %u in no run", p, a->top);
    for (uint32_t c = 0; c < a->nclasses; c++)
        CHECK(live[c] == a->classes[c].zspages, "class %u: %llu live descriptors, %llu listed", c,
              (unsigned long long)live[c], (unsigned long long)a->classes[c].zspages);
    CHECK(huge == a->huge.zspages && huge == a->huge.inuse && huge == a->huge.pages,
          "huge: %llu descriptors, counters %llu/%llu/%llu", (unsigned long long)huge,
          (unsigned long long)a->huge.zspages, (unsigned long long)a->huge.inuse,
          (unsigned long long)a->huge.pages);
    CHECK(atomic_load(&a->huge_pages) == a->huge.pages, "huge pages: %llu counted for the prefault window, %llu held",
          (unsigned long long)atomic_load(&a->huge_pages), (unsigned long long)a->huge.pages);
    CHECK(packs == pack_runs, "pack: %llu run descriptors, %llu open or listed", (unsigned long long)packs,
          (unsigned long long)pack_runs);
    CHECK(huge_bytes == a->huge.obj_bytes, "huge: %llu bytes found, counter %llu",
          (unsigned long long)huge_bytes, (unsigned long long)a->huge.obj_bytes);

    /* the warm list */
    uint64_t wl = 0;
    for (uint32_t id = a->warm_head; id != ZS_NONE; id = zs_desc(a, id)->u.link.next) {
        CHECK(id < a->hwm && zs_desc(a, id)->cls == ZS_CLS_WARM, "warm list: id %u not warm", id);
        CHECK(++wl <= warm, "warm list holds more than the %llu warm pages", (unsigned long long)warm);
    }
    CHECK(wl == warm && wl == atomic_load(&a->warm_n), "%llu warm pages, %llu listed, counter %u",
          (unsigned long long)warm, (unsigned long long)wl, atomic_load(&a->warm_n));

    /* run and empty lists */
    uint64_t listed = 0;
    for (uint32_t l = 0; l < ZS_RUN_LISTS; l++) {
        for (uint32_t id = a->run_head[l]; id != ZS_NONE; id = zs_desc(a, id)->u.link.next) {
            CHECK(id < a->hwm && zs_desc(a, id)->cls == ZS_CLS_VACANT, "run list %u: id %u not vacant", l, id);
            uint32_t len = zs_desc(a, id)->v.run_len;
            CHECK(l == 0 ? len > ZS_MAX_CHAIN : len == (uint32_t)l, "run list %u: run %u of %u pages", l, id, len);
            CHECK(++listed <= vacant, "run lists hold more than the %llu vacant runs", (unsigned long long)vacant);
        }
    }
    CHECK(listed == vacant, "%llu vacant runs, %llu on lists", (unsigned long long)vacant, (unsigned long long)listed);
    listed = 0;
    for (uint32_t id = a->empty_head; id != ZS_NONE; id = zs_desc(a, id)->u.link.next) {
        CHECK(id < a->hwm && zs_desc(a, id)->cls == ZS_CLS_EMPTY, "empty list: id %u not empty", id);
        CHECK(++listed <= empty, "empty list holds more than the %llu empty ids", (unsigned long long)empty);
    }
    CHECK(listed == empty, "%llu empty ids, %llu listed", (unsigned long long)empty, (unsigned long long)listed);

    /* global counters */
    tot_pages += a->huge.pages + a->pack.pages;
    tot_objs += a->huge.inuse + a->pack.objects;
    tot_bytes += a->huge.obj_bytes + a->pack.obj_bytes;
    CHECK(tot_pages == atomic_load(&a->pages_used), "pages_used %llu, zspages hold %llu",
          (unsigned long long)atomic_load(&a->pages_used), (unsigned long long)tot_pages);
    CHECK(tot_objs == atomic_load(&a->objects), "objects %llu, zspages hold %llu",
          (unsigned long long)atomic_load(&a->objects), (unsigned long long)tot_objs);
    CHECK(tot_bytes == atomic_load(&a->obj_bytes), "obj_bytes %llu, zspages hold %llu",
          (unsigned long long)atomic_load(&a->obj_bytes), (unsigned long long)tot_bytes);
    return 0;
}

static int zs_check(struct uz_allocator *a)
{
    /* a map of arena pages to prove runs are disjoint; skipped if the
     * (test-only) allocation fails */
    uint8_t *pagemap = uz_calloc(((size_t)a->arena_pages + 7) / 8, 1);
    pthread_mutex_lock(&a->pack.lock);
    for (uint32_t l = 0; l < ZS_LOCKS; l++)
        pthread_mutex_lock(&a->locks[l]);
    pthread_mutex_lock(&a->huge_lock);
    pthread_mutex_lock(&a->arena_lock);
    int err = check_locked(a, pagemap);
    pthread_mutex_unlock(&a->arena_lock);
    pthread_mutex_unlock(&a->huge_lock);
    for (uint32_t l = ZS_LOCKS; l-- > 0;)
        pthread_mutex_unlock(&a->locks[l]);
    pthread_mutex_unlock(&a->pack.lock);
    uz_free(pagemap);
    return err;
}

/* ---- create / destroy ----------------------------------------------------- */

/* UZ_ZS_DUMP=1 in the environment (for measuring, as UZ_PREFAULT=0 is):
 * at destroy, one line per size class in use (cell, layout, live
 * objects and bytes, committed pages, what they lose: rounding to the
 * cell, header and slack, free cells and tails) and one for the pack. */
static void zs_dump(struct uz_allocator *a)
{
    for (uint32_t c = 0; c < a->nclasses; c++) {
        struct zs_class *cl = &a->classes[c];
        uint64_t packb = atomic_load(&cl->pack_bytes);
        if (!cl->inuse && !packb)
            continue;
        uint64_t round = cl->inuse * cl->payload - cl->obj_bytes;
        uint64_t hdr = cl->inuse * ZS_HDR + cl->zspages * cl->table;
        uint64_t free = cl->pages * ZS_PAGE - cl->inuse * cl->cell - cl->zspages * cl->table;
        fprintf(stderr, "zsmalloc class %u: cell %u, %u objects in %u pages; %llu objects, %llu bytes, "
                "%llu pages; rounding %llu, headers %llu, free %llu; in the pack %llu bytes\n",
                c, cl->cell, cl->objs, cl->run_pages, (unsigned long long)cl->inuse,
                (unsigned long long)cl->obj_bytes, (unsigned long long)cl->pages,
                (unsigned long long)round, (unsigned long long)hdr, (unsigned long long)free,
                (unsigned long long)packb);
    }
    fprintf(stderr, "zsmalloc pack: %llu records, %llu bytes, headers of %u bytes, %llu pages, %llu bytes free or dead\n",
            (unsigned long long)a->pack.objects, (unsigned long long)a->pack.obj_bytes, a->pack_hdr,
            (unsigned long long)a->pack.pages,
            (unsigned long long)(a->pack.pages * ZS_PAGE - a->pack.rec_bytes));
}

static void zs_destroy(struct uz_allocator *a)
{
    if (!a)
        return;
    if (getenv("UZ_ZS_DUMP"))
        zs_dump(a);
    uz_prefault_stop(&a->pf);
    uz_vm_unreserve(a->arena, a->arena_bytes);
    uz_vm_unreserve(a->desc, a->desc_bytes);
    for (uint32_t l = 0; l < ZS_LOCKS; l++)
        pthread_mutex_destroy(&a->locks[l]);
    pthread_mutex_destroy(&a->huge_lock);
    pthread_mutex_destroy(&a->arena_lock);
    zs_pack_fini(a);
    uz_free(a);
}

static struct uz_allocator *zs_create(const struct uz_alloc_params *p)
{
    uint8_t buckets[ZS_NBUCKETS];
    size_t huge_max;
    uint32_t n = build_classes(buckets, NULL, &huge_max);

    /* The arena: twice the most bytes ever live (room for fragmentation
     * of the address space) plus 64 MiB, clipped to ZS_ARENA_MAX_PAGES,
     * what 32-bit page numbers can count: near the 8 TiB maximum the
     * headroom is a little under max_bytes rather than over it. */
    if (p->max_bytes > ZS_MAX_BYTES) {
        uz_error(-EINVAL, "zsmalloc: max_bytes %llu too large (at most %llu, 8 TiB)",
                 (unsigned long long)p->max_bytes, (unsigned long long)ZS_MAX_BYTES);
        return NULL;
    }
    uint64_t arena = 2 * p->max_bytes + (64u << 20);
    arena = (arena + ZS_PAGE - 1) / ZS_PAGE * ZS_PAGE;
    if (arena / ZS_PAGE > ZS_ARENA_MAX_PAGES)
        arena = (uint64_t)ZS_ARENA_MAX_PAGES * ZS_PAGE;

    struct uz_allocator *a = uz_calloc(1, sizeof *a + n * sizeof(struct zs_class));
    if (!a)
        return NULL;
    a->owner_ops = p->owner_ops;
    a->owner = p->owner;
    a->limit_pages = p->limit_pages;
    a->nclasses = n;
    a->huge_max = huge_max;
    build_classes(a->bucket_class, a->classes, &a->huge_max);
    a->huge.cell = ZS_PAGE;
    a->huge.payload = ZS_PAGE;
    a->huge.objs = 1;
    a->huge.run_pages = 1;
    a->huge.index = ZS_CLS_HUGE;

    a->arena_bytes = (size_t)arena;
    a->arena_pages = (uint32_t)(arena / ZS_PAGE);
    a->desc_max = a->arena_pages;
    a->desc_bytes = ((size_t)a->desc_max * sizeof(struct zspage) + ZS_PAGE - 1) / ZS_PAGE * ZS_PAGE;
    a->arena = uz_vm_reserve(a->arena_bytes);
    if (!a->arena) {
        uz_free(a);
        return NULL;
    }
    a->desc = uz_vm_reserve(a->desc_bytes);
    if (!a->desc) {
        uz_vm_unreserve(a->arena, a->arena_bytes);
        uz_free(a);
        return NULL;
    }

    pthread_mutex_init(&a->arena_lock, NULL);
    pthread_mutex_init(&a->huge_lock, NULL);
    a->huge.lock = &a->huge_lock;
    for (uint32_t l = 0; l < ZS_LOCKS; l++)
        pthread_mutex_init(&a->locks[l], NULL);
    for (uint32_t c = 0; c < n; c++) {
        a->classes[c].lock = &a->locks[c % ZS_LOCKS];
        for (int g = 0; g < ZS_NBANDS; g++)
            a->classes[c].head[g] = ZS_NONE;
    }
    for (int g = 0; g < ZS_NBANDS; g++)
        a->huge.head[g] = ZS_NONE;
    zs_pack_init(a);
    a->dense_bytes = p->dense_bytes ? p->dense_bytes : ZS_DENSE_DEFAULT;
    a->backref_limit = p->backref_limit;
    a->pack_hdr = p->backref_limit && p->backref_limit <= ZS_PACK_SHORT_LIMIT ? ZS_PACK_HDR_SHORT : ZS_PACK_HDR;
    a->empty_head = ZS_NONE;
    a->warm_head = ZS_NONE;
    for (uint32_t l = 0; l < ZS_RUN_LISTS; l++)
        a->run_head[l] = ZS_NONE;
    uz_prefault_start(&a->pf, a->arena, a->arena_pages);
    return a;
}

const struct uz_alloc_ops uz_zsmalloc_ops = {
    .name = "zsmalloc",
    .create = zs_create,
    .destroy = zs_destroy,
    .alloc = zs_alloc,
    .free = zs_free,
    .map = zs_map,
    .obj_size = zs_obj_size,
    .set_backref = zs_set_backref,
    .backref = zs_backref,
    .huge_class_size = zs_huge_class_size,
    .class_size = zs_class_size,
    .compact = zs_compact,
    .stats = zs_stats,
    .check = zs_check,
};
