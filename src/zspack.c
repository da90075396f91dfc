/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zspack.c - the pack: where zsmalloc keeps the objects of size classes
 * too small to have zspages of their own.
 *
 * Size classes pay, besides rounding, for their frontier: the
 * page being carved is half empty on average, in every class in use, and
 * a run's tail is lost.  On a device of tens of MiB with 150+ classes in
 * use that was 2% of the compressed bytes, more than the rounding.  So a
 * class gets zspages of its own only once it holds dense_bytes (default
 * 2 MiB, a quarter of it once the allocator churns: zsmalloc.c, "The
 * pack"; counting its objects in the pack); until then its objects go to
 * the pack: runs of ZS_PACK_PAGES pages (cls = ZS_CLS_PACK) holding
 * records edge to edge, byte-exact, in the order they came:
 *
 *     [u32 backref][u16 size, 0x8000 = dead][payload, size bytes] ...
 *
 * or, when the owner promises backrefs below 2^26 (uz_alloc_params
 * .backref_limit: the store's slots and records, on disks up to 256 GiB),
 * a 5-byte header: 40 bits, the size (12), dead (1), the backref's index
 * (26) and its UZ_BACKREF_SHARED bit (zsmalloc.h, rec_put).  A byte a
 * record is 0.1% of a heap of 900-byte objects.
 *
 * Handle = ((run id + 1) << 18) | byte offset of the record.  Up to
 * ZS_PACK_NHOT runs are open for new records; a record goes to the open
 * run with the least room that fits it, preferring one that needs no new
 * page, so the tails runs are closed with stay small.  Records that
 * cleaning moves go the same way to two runs of their own: they have
 * outlived a run and tend to live on, so runs of them seldom need
 * cleaning again, while runs of new records empty fast, so churn needs
 * fewer cleaning steps.  A run's pages are committed as
 * its bump offset crosses them.  A free marks the record dead; a run with
 * no live record is released at once.  Cleaning (in compact(), before the
 * classes) evacuates the closed runs with the fewest live bytes, as long
 * as each gives back a page: every owner is pinned first (one busy owner
 * and the run is skipped), then each record moves to a free cell already
 * committed in its class (filling holes frees left), or, if the class has
 * become dense, to a cell carved in its zspages, or else to an open run.
 * Open runs that frees have emptied by a page or more are closed first,
 * so that cleaning reaches them.  Pack run descriptor: v.run_len = bump,
 * free_head = live 4-byte units, band = fullness band or ZS_PACK_OPEN.
 * Measured with `uzram bench --churn 3` (lz4, one thread), footprint over
 * compressed bytes: fill 1.029 -> 1.021 (sqlite corpus), 1.052 -> 1.028
 * (a 47 MiB python heap); churn 1.085 -> 1.042 on the python heap.
 *
 * Invariants (zs_pack_check() verifies each one, from zsmalloc's check()):
 * a pack run's records parse edge to edge up to its bump; every live
 * record's backref is below backref_limit (if one is set); its live ones
 * add up to its live units; it is open, or on the pack band list of its
 * live units with at least one live record; the pack's counters and each
 * class's pack_bytes equal the sums over the records.  (A run under
 * evacuation, band ZS_PACK_EVAC, is on no list; check() never sees one:
 * it runs under the store's write lock, cleaning under its read lock.)
 *
 * Locking (src/README.md, "Lock order"; zsmalloc.c, "Locking"): pack.lock
 * guards the pack runs' descriptors and records, the open runs, the band
 * lists and counters.  zsmalloc's alloc takes it only after dropping its
 * class lock.  Cleaning holds it to pick a run and pin its owners; then,
 * per record, takes the class lock (a committed cell) and the pack lock
 * (an append, the old record counted dead) in turn and copies with
 * neither (pack_evacuate).  A run freed is counted out under it and its
 * pages released after it (pack_run_give_back): writers of the pack wait
 * for no madvise.  Order where two are held: pack lock, class lock,
 * arena lock.
 */
#define _GNU_SOURCE
#include "zsmalloc.h"
#include "error.h"
#include "mem.h"

#include <errno.h>

/* ---- runs and records (pack.lock held) ------------------------------------ */

static inline uint32_t pack_pages_for(uint32_t bump) { return (bump + ZS_PAGE - 1) / ZS_PAGE; }

/* A pack run's descriptor: v.run_len = bump (bytes carved), free_head =
 * live units (each live record counts rec_units() of 4 bytes, so a whole
 * run fits 16 bits; zero exactly when no record lives), band, and
 * u.link on the band lists when closed. */
static inline uint32_t rec_units(uint32_t rec) { return (rec + 3) / 4; }

static inline uint8_t pack_band_of(uint32_t units)
{
    return (uint8_t)((uint64_t)units * 4 * ZS_NPART / ZS_PACK_BYTES);
}

/* The size class an object of size bytes belongs to (size <= huge_max). */
static inline struct zs_class *size_class(struct uz_allocator *a, size_t size)
{
    return &a->classes[a->bucket_class[bucket_of(size)]];
}

/* A fresh, empty open run. */
static int pack_run_new(struct uz_allocator *a, uint32_t *out)
{
    uint32_t id;
    pthread_mutex_lock(&a->arena_lock);
    bool ok = zs_run_get(a, ZS_PACK_PAGES, &id);
    pthread_mutex_unlock(&a->arena_lock);
    if (!ok)
        return -ENOMEM;
    struct zspage *z = zs_desc(a, id);
    z->cls = ZS_CLS_PACK;
    z->band = ZS_PACK_OPEN;
    z->v.run_len = 0;
    z->free_head = 0;
    z->u.link.next = z->u.link.prev = ZS_NONE;
    a->pack.runs++;
    *out = id;
    return 0;
}

/* A run with no live record (off every list, not open) is freed in two
 * halves: counted out of the pack under pack.lock (pack_run_count_out),
 * then its pages given back and the run put back in the arena after it
 * (pack_run_give_back): a release is a madvise, tens of us with the TLB
 * shootdown, that other writers of the pack need not wait for.  Between
 * the two the run is nobody's: on no list, not open, its records dead. */
struct pack_gone {
    uint32_t id;                /* ZS_NONE: none */
    uint32_t pages;             /* committed pages to release */
};

static uint32_t pack_run_count_out(struct uz_allocator *a, uint32_t id, struct pack_gone *g)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t cp = pack_pages_for(z->v.run_len);
    if (cp) {
        zs_pages_unreserve(a, cp);
        a->pack.pages -= cp;
    }
    a->pack.runs--;
    g->id = id;
    g->pages = cp;
    return cp;
}

static void pack_run_give_back(struct uz_allocator *a, struct pack_gone *g)
{
    if (g->id == ZS_NONE)
        return;
    if (g->pages)
        uz_vm_release(zs_base(a, zs_desc(a, g->id)), (size_t)g->pages * ZS_PAGE);
    pthread_mutex_lock(&a->arena_lock);
    zs_run_put(a, g->id, ZS_PACK_PAGES);
    pthread_mutex_unlock(&a->arena_lock);
    g->id = ZS_NONE;
}

/* Both halves at once, for the paths where nobody waits on it (a run
 * closed empty). */
static uint32_t pack_run_free(struct uz_allocator *a, uint32_t id)
{
    struct pack_gone g;
    uint32_t cp = pack_run_count_out(a, id, &g);
    pack_run_give_back(a, &g);
    return cp;
}

/* Run id stops taking appends: freed if empty, else filed by fullness. */
static void pack_close(struct uz_allocator *a, uint32_t id)
{
    struct zspage *z = zs_desc(a, id);
    if (z->free_head == 0)
        pack_run_free(a, id);
    else
        zs_band_add(a, &a->pack.lists, id, pack_band_of(z->free_head));
}

/* After records of run id died: an empty open run starts over with no
 * pages, an empty closed run is counted out (into g: the caller gives it
 * back after pack.lock), a closed one moves to its band.  Returns the
 * pages released. */
static uint32_t pack_settle(struct uz_allocator *a, uint32_t id, struct pack_gone *g)
{
    struct zspage *z = zs_desc(a, id);
    if (z->band == ZS_PACK_OPEN) {
        uint32_t cp = pack_pages_for(z->v.run_len);
        if (z->free_head != 0 || cp == 0)
            return 0;
        uz_vm_release(zs_base(a, z), (size_t)cp * ZS_PAGE);
        zs_pages_unreserve(a, cp);
        a->pack.pages -= cp;
        z->v.run_len = 0;
        return cp;
    }
    if (z->free_head == 0) {
        zs_band_del(a, &a->pack.lists, id);
        return pack_run_count_out(a, id, g);
    }
    uint8_t band = pack_band_of(z->free_head);
    if (band != z->band) {
        zs_band_del(a, &a->pack.lists, id);
        zs_band_add(a, &a->pack.lists, id, band);
    }
    return 0;
}

/* Append a record for an object of size bytes to an open run: the
 * fullest one that has room without committing a page, else the fullest
 * with room; if none has room, a new run is opened in place of the open
 * run with the least room left (so the tails runs are closed with are
 * small).  -ENOMEM at the memory limit or with no arena left. */
static int pack_append(struct uz_allocator *a, size_t size, uint32_t backref, uint64_t *handle,
                       bool cold, uint32_t *committed)
{
    struct zs_pack *pk = &a->pack;
    uint32_t rec = a->pack_hdr + (uint32_t)size;
    int best = -1, lo = cold ? ZS_PACK_NHOT : 0, hi = cold ? ZS_PACK_NOPEN : ZS_PACK_NHOT;
    bool best_fits = false;
    uint32_t best_room = 0;
    for (int i = lo; i < hi; i++) {
        if (pk->open[i] == ZS_NONE)
            continue;
        uint32_t bump = zs_desc(a, pk->open[i])->v.run_len, room = ZS_PACK_BYTES - bump;
        if (room < rec)
            continue;
        bool fits = pack_pages_for(bump + rec) <= pack_pages_for(bump);
        if (best < 0 || (fits && !best_fits) || (fits == best_fits && room < best_room)) {
            best = i;
            best_fits = fits;
            best_room = room;
        }
    }
    if (best < 0) {
        uint32_t least = UINT32_MAX, id;
        for (int i = lo; i < hi && least; i++) {
            uint32_t room = pk->open[i] == ZS_NONE ? 0 : ZS_PACK_BYTES - zs_desc(a, pk->open[i])->v.run_len;
            if (room < least) {
                least = room;
                best = i;
            }
        }
        if (pack_run_new(a, &id) != 0)
            return -ENOMEM;
        if (pk->open[best] != ZS_NONE)
            pack_close(a, pk->open[best]);
        pk->open[best] = id;
    }
    uint32_t id = pk->open[best];
    struct zspage *z = zs_desc(a, id);
    uint32_t bump = z->v.run_len;
    uint32_t have = pack_pages_for(bump), need = pack_pages_for(bump + rec);
    if (need > have) {
        if (!zs_pages_reserve(a, need - have))
            return -ENOMEM;
        pk->pages += need - have;
        if (committed)
            *committed += need - have;
    }
    uint8_t *r = zs_base(a, z) + bump;
    rec_put(a, r, backref, (uint16_t)size);
    z->v.run_len = bump + rec;
    z->free_head = (uint16_t)(z->free_head + rec_units(rec));
    pk->objects++;
    pk->obj_bytes += size;
    pk->rec_bytes += rec;
    atomic_fetch_add_explicit(&size_class(a, size)->pack_bytes, size, memory_order_relaxed);
    atomic_fetch_add(&a->objects, 1);
    atomic_fetch_add(&a->obj_bytes, size);
    *handle = make_handle(id, bump);
    return 0;
}

/* Mark the live record at offset off of run id dead and count it out;
 * the caller settles the run. */
static void pack_kill(struct uz_allocator *a, uint32_t id, uint32_t off)
{
    struct zspage *z = zs_desc(a, id);
    uint8_t *r = zs_base(a, z) + off;
    uint16_t sz = rec_sz(a, r);
    uint32_t size = sz & ZS_PACK_SIZE, rec = a->pack_hdr + size;
    rec_put(a, r, rec_backref(a, r), (uint16_t)(sz | ZS_PACK_DEAD));
    z->free_head = (uint16_t)(z->free_head - rec_units(rec));
    a->pack.objects--;
    a->pack.obj_bytes -= size;
    a->pack.rec_bytes -= rec;
    atomic_fetch_sub_explicit(&size_class(a, size)->pack_bytes, size, memory_order_relaxed);
    atomic_fetch_sub(&a->objects, 1);
    atomic_fetch_sub(&a->obj_bytes, size);
}

/* Pages a closed run would give back if its live records moved away. */
static uint32_t pack_gain(const struct zspage *z)
{
    uint32_t cp = pack_pages_for(z->v.run_len), need = pack_pages_for(z->free_head * 4u);
    return cp > need ? cp - need : 0;
}

/* The closed run with the fewest live bytes that would give back at
 * least a page, not in tried[]; looks at no more than ZS_SCAN_MAX runs of
 * the emptiest band with a candidate. */
static uint32_t pack_victim(struct uz_allocator *a, const uint32_t *tried, int ntried)
{
    for (int g = 0; g < ZS_NBANDS; g++) {
        uint32_t best = ZS_NONE, best_live = UINT32_MAX;
        int scanned = 0;
        for (uint32_t id = a->pack.lists.head[g]; id != ZS_NONE && scanned < ZS_SCAN_MAX;
             id = zs_desc(a, id)->u.link.next) {
            bool skip = false;
            for (int i = 0; i < ntried && !skip; i++)
                skip = tried[i] == id;
            struct zspage *z = zs_desc(a, id);
            if (skip || pack_gain(z) == 0)
                continue;
            scanned++;
            if (z->free_head < best_live) {
                best = id;
                best_live = z->free_head;
            }
        }
        if (best != ZS_NONE)
            return best;
    }
    return ZS_NONE;
}

/* Unpin the owners of the live records of run v in [from, end) (from is
 * a record's offset). */
static void pack_unpin_range(struct uz_allocator *a, uint32_t v, uint32_t from, uint32_t end)
{
    uint8_t *base = zs_base(a, zs_desc(a, v));
    for (uint32_t off = from; off < end;) {
        uint16_t sz = rec_sz(a, base + off);
        if (!(sz & ZS_PACK_DEAD))
            a->owner_ops->unpin(a->owner, rec_backref(a, base + off));
        off += a->pack_hdr + (sz & ZS_PACK_SIZE);
    }
}

/*
 * Evacuate closed run v: first pin the owners of all its live records (if
 * one is busy, unpin them and give up: a half-evacuated run would leave
 * the pack bigger than before); then each record moves to a free cell
 * already committed in its size class if there is one (filling holes that
 * frees left there), else to an open run; then the run, now empty, is
 * counted out (g: the caller gives it back after pack.lock).  Only a
 * failed append (memory limit) stops the moves early; what moved stays
 * moved.  Called and returns with pack.lock held, but drops it for the
 * moves: with every live record pinned none can die or be read, and v,
 * taken off the band lists (band ZS_PACK_EVAC), is no other cleaner's
 * victim, so the lock is taken only to place each record and count the
 * old one dead; the class lock only to take its cell.  The copy and the
 * owner's update go with neither, and the writers' allocations and frees
 * in the pack go on in between, so two writers churn faster than with
 * the lock held across the run.  Returns the pages this
 * evacuation gave back net of the pages its moves committed (0 if that
 * is not positive), counted here, not from the pack's totals, which other
 * threads move meanwhile.
 */
static uint32_t pack_evacuate(struct uz_allocator *a, uint32_t v, struct pack_gone *g)
{
    const struct uz_owner_ops *ops = a->owner_ops;
    struct zspage *z = zs_desc(a, v);
    uint8_t *base = zs_base(a, z);
    uint32_t bump = z->v.run_len;
    for (uint32_t off = 0; off < bump;) {
        uint16_t sz = rec_sz(a, base + off);
        if (!(sz & ZS_PACK_DEAD) && !ops->pin(a->owner, rec_backref(a, base + off))) {
            pack_unpin_range(a, v, 0, off);
            return 0;
        }
        off += a->pack_hdr + (sz & ZS_PACK_SIZE);
    }
    zs_band_del(a, &a->pack.lists, v);
    z->band = ZS_PACK_EVAC;
    uint32_t committed = 0;     /* pages the moves committed */
    uint32_t off = 0;
    pthread_mutex_unlock(&a->pack.lock);
    while (off < bump) {
        uint8_t *r = base + off;
        uint16_t sz = rec_sz(a, r);
        uint32_t size = sz & ZS_PACK_SIZE, rec = a->pack_hdr + size;
        if (sz & ZS_PACK_DEAD) {
            off += rec;
            continue;
        }
        uint32_t backref = rec_backref(a, r);
        uint64_t nh = 0;
        struct zs_class *cl = size_class(a, size);
        pthread_mutex_lock(cl->lock);
        bool moved = zs_take_committed(a, cl, size, backref, &nh);
        if (!moved && zs_class_dense(a, cl, 0)) {
            /* its class has zspages now: the record leaves the pack for
             * one of them, but makes no new zspage (a burst of cleaning
             * would otherwise open a half-empty frontier in every dense
             * class at once) */
            uint64_t p0 = cl->pages;
            moved = zs_class_carve(a, cl, size, backref, &nh, false) == 0;
            committed += (uint32_t)(cl->pages - p0);
        }
        pthread_mutex_unlock(cl->lock);
        pthread_mutex_lock(&a->pack.lock);
        if (!moved)
            moved = pack_append(a, size, backref, &nh, true, &committed) == 0;
        if (moved)
            pack_kill(a, v, off);
        pthread_mutex_unlock(&a->pack.lock);
        if (!moved)
            break;
        memcpy(zs_map(a, nh), r + a->pack_hdr, size);
        ops->moved(a->owner, backref, make_handle(v, off), nh);
        ops->unpin(a->owner, backref);
        off += rec;
    }
    pthread_mutex_lock(&a->pack.lock);
    pack_unpin_range(a, v, off, bump); /* what stays, if an append failed */
    uint32_t released = 0;
    if (z->free_head == 0)
        released = pack_run_count_out(a, v, g);
    else
        zs_band_add(a, &a->pack.lists, v, pack_band_of(z->free_head));
    return released > committed ? released - committed : 0;
}

/* Close the open runs that frees have left with a page or more to give
 * back, so that cleaning can take them (records of an open run would
 * otherwise be out of its reach however many of them died). */
static void pack_close_stale(struct uz_allocator *a)
{
    struct zs_pack *pk = &a->pack;
    for (int i = 0; i < ZS_PACK_NOPEN; i++) {
        uint32_t id = pk->open[i];
        if (id == ZS_NONE || pack_gain(zs_desc(a, id)) == 0)
            continue;
        pk->open[i] = ZS_NONE;
        pack_close(a, id);
    }
}

/* Clean the pack: evacuate its emptiest closed runs while each gives back
 * a page, until *work reaches max_pages (0: no bound).  Returns the pages
 * released. */
uint64_t zs_pack_compact(struct uz_allocator *a, uint64_t max_pages, uint64_t *work)
{
    uint64_t freed = 0;
    uint32_t tried[ZS_TRIED_MAX];
    int ntried = 0;
    for (;;) {
        if (max_pages && *work >= max_pages)
            break;
        pthread_mutex_lock(&a->pack.lock);
        if (ntried == 0)
            pack_close_stale(a);
        uint32_t v = pack_victim(a, tried, ntried);
        uint32_t got = 0;
        struct pack_gone g = { ZS_NONE, 0 };
        if (v != ZS_NONE) {
            *work += pack_pages_for(zs_desc(a, v)->v.run_len);
            got = pack_evacuate(a, v, &g);
        }
        pthread_mutex_unlock(&a->pack.lock);
        pack_run_give_back(a, &g);
        if (v == ZS_NONE)
            break;
        freed += got;
        if (!got) {
            if (ntried == ZS_TRIED_MAX)
                break;
            tried[ntried++] = v;
        }
    }
    return freed;
}


/* ---- entry points (they take pack.lock) ------------------------------------ */

void zs_pack_init(struct uz_allocator *a)
{
    pthread_mutex_init(&a->pack.lock, NULL);
    for (int i = 0; i < ZS_PACK_NOPEN; i++)
        a->pack.open[i] = ZS_NONE;
    for (int g = 0; g < ZS_NBANDS; g++)
        a->pack.lists.head[g] = ZS_NONE;
    a->pack.lists.index = ZS_CLS_PACK;
}

void zs_pack_fini(struct uz_allocator *a)
{
    pthread_mutex_destroy(&a->pack.lock);
}

int zs_pack_alloc(struct uz_allocator *a, size_t size, uint32_t backref, uint64_t *handle)
{
    pthread_mutex_lock(&a->pack.lock);
    int err = pack_append(a, size, backref, handle, false, NULL);
    pthread_mutex_unlock(&a->pack.lock);
    return err;
}

void zs_pack_free(struct uz_allocator *a, uint32_t id, uint32_t off)
{
    struct pack_gone g = { ZS_NONE, 0 };
    pthread_mutex_lock(&a->pack.lock);
    pack_kill(a, id, off);
    pack_settle(a, id, &g);
    pthread_mutex_unlock(&a->pack.lock);
    pack_run_give_back(a, &g);
}

void zs_pack_set_backref(struct uz_allocator *a, uint32_t id, uint32_t off, uint32_t backref)
{
    pthread_mutex_lock(&a->pack.lock);
    uint8_t *r = zs_base(a, zs_desc(a, id)) + off;
    rec_put(a, r, backref, rec_sz(a, r));
    pthread_mutex_unlock(&a->pack.lock);
}

uint32_t zs_pack_backref(struct uz_allocator *a, uint32_t id, uint32_t off)
{
    pthread_mutex_lock(&a->pack.lock);
    uint32_t b = rec_backref(a, zs_base(a, zs_desc(a, id)) + off);
    pthread_mutex_unlock(&a->pack.lock);
    return b;
}

/* ---- check ---------------------------------------------------------------- */

/* Verify one pack run: its records parse up to bump and the live ones
 * match its counters; adds them to the totals and to per-class bytes. */
static int check_pack_run(struct uz_allocator *a, uint32_t id, uint64_t *objs, uint64_t *bytes,
                          uint64_t *recs, uint64_t *pages, uint64_t *cls_bytes)
{
    struct zspage *z = zs_desc(a, id);
    uint32_t bump = z->v.run_len, off = 0, n = 0, live = 0;
    uint64_t recb = 0;
    CHECK(bump <= ZS_PACK_BYTES, "pack run %u: bump %u past the run", id, bump);
    const uint8_t *base = zs_base(a, z);
    while (off < bump) {
        CHECK(bump - off > a->pack_hdr, "pack run %u: record at %u runs past bump %u", id, off, bump);
        uint16_t sz = rec_sz(a, base + off);
        uint32_t size = sz & ZS_PACK_SIZE;
        CHECK(size >= 1 && size <= a->huge_max && (sz & ~(ZS_PACK_SIZE | ZS_PACK_DEAD)) == 0,
              "pack run %u: record at %u has size field %#x", id, off, sz);
        CHECK(off + a->pack_hdr + size <= bump, "pack run %u: record at %u ends past bump %u", id, off, bump);
        if (!(sz & ZS_PACK_DEAD)) {
            uint32_t b = rec_backref(a, base + off) & ~UZ_BACKREF_SHARED;
            CHECK(!a->backref_limit || b < a->backref_limit,
                  "pack run %u: record at %u has backref index %u, limit %u", id, off, b, a->backref_limit);
            n++;
            live += rec_units(a->pack_hdr + size);
            recb += a->pack_hdr + size;
            *bytes += size;
            cls_bytes[a->bucket_class[bucket_of(size)]] += size;
        }
        off += a->pack_hdr + size;
    }
    CHECK(live == z->free_head, "pack run %u: %u live records of %u units found, counter %u", id, n,
          live, z->free_head);
    *objs += n;
    *recs += recb;
    *pages += pack_pages_for(bump);
    return 0;
}

/* The pack: open runs, band lists, counters. */
int zs_pack_check(struct uz_allocator *a, uint64_t *runs_found)
{
    struct zs_pack *pk = &a->pack;
    uint64_t objs = 0, bytes = 0, recs = 0, pages = 0, runs = 0;
    uint64_t cls_bytes[ZS_NBUCKETS] = { 0 }; /* classes <= buckets */
    for (int i = 0; i < ZS_PACK_NOPEN; i++) {
        uint32_t id = pk->open[i];
        if (id == ZS_NONE)
            continue;
        CHECK(id < a->hwm && zs_desc(a, id)->cls == ZS_CLS_PACK && zs_desc(a, id)->band == ZS_PACK_OPEN,
              "pack: open run %u is not an open pack run", id);
        for (int j = 0; j < i; j++)
            CHECK(pk->open[j] != id, "pack: run %u open twice", id);
        int err = check_pack_run(a, id, &objs, &bytes, &recs, &pages, cls_bytes);
        if (err)
            return err;
        runs++;
    }
    for (int g = 0; g < ZS_NBANDS; g++) {
        uint32_t prev = ZS_NONE;
        for (uint32_t id = pk->lists.head[g]; id != ZS_NONE; id = zs_desc(a, id)->u.link.next) {
            struct zspage *z = zs_desc(a, id);
            CHECK(id < a->hwm && z->cls == ZS_CLS_PACK, "pack band %d: id %u is not a pack run", g, id);
            CHECK(z->band == g && pack_band_of(z->free_head) == g,
                  "pack: run %u on list %d says band %u, live %u", id, g, z->band, z->free_head);
            CHECK(z->u.link.prev == prev, "pack band %d: run %u prev link %u, expected %u", g, id,
                  z->u.link.prev, prev);
            CHECK(z->free_head >= 1, "pack: closed run %u has no live record", id);
            CHECK(++runs <= a->hwm, "pack band lists loop");
            int err = check_pack_run(a, id, &objs, &bytes, &recs, &pages, cls_bytes);
            if (err)
                return err;
            prev = id;
        }
    }
    CHECK(runs == pk->runs, "pack: %llu runs found, counter %llu", (unsigned long long)runs,
          (unsigned long long)pk->runs);
    CHECK(objs == pk->objects && bytes == pk->obj_bytes && recs == pk->rec_bytes && pages == pk->pages,
          "pack: found %llu records, %llu bytes, %llu with headers, %llu pages; counters %llu %llu %llu %llu",
          (unsigned long long)objs, (unsigned long long)bytes, (unsigned long long)recs,
          (unsigned long long)pages, (unsigned long long)pk->objects, (unsigned long long)pk->obj_bytes,
          (unsigned long long)pk->rec_bytes, (unsigned long long)pk->pages);
    for (uint32_t c = 0; c < a->nclasses; c++)
        CHECK(cls_bytes[c] == atomic_load(&a->classes[c].pack_bytes),
              "class %u: %llu bytes in the pack, counter %llu", c, (unsigned long long)cls_bytes[c],
              (unsigned long long)atomic_load(&a->classes[c].pack_bytes));
    *runs_found = runs;
    return 0;
}

