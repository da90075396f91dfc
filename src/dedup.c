/*
 * dedup.c - layer 2 of the store (src/README.md): the content index.
 *
 * A page about to be stored is looked up by a 64-bit hash of its bytes
 * (xxHash's XXH3).  The index maps 32 bits of it to where a page with that
 * hash was stored: a slot (a unique page) or a shared record (shared.c).
 * A candidate is taken only after its stored bytes are compared with the
 * new page's stored form: the compressed bytes with the primary algorithm
 * (equal compressed bytes decompress to equal pages), or the raw page for a
 * huge one.  The hash is never trusted; a candidate whose bytes differ
 * (another page with the same 32 bits, or a slot rewritten since) is
 * refused and counted.  A unique page found again becomes a record with
 * two references (uz_shared_make); a record gets one more.  Candidates
 * recompressed or written back are not compared (they are misses).
 *
 * The index is a cache: entries are not removed when a page is freed or
 * rewritten (that would need its hash again); a stale entry fails the
 * compare, and an insert replaces an entry with the same 32 bits first,
 * then an empty one, then evicts one of its bucket's eight.  Buckets are
 * 64 bytes (eight 8-byte entries, one cache line), in address space
 * reserved at init for at most one entry per slot; the table starts at
 * one page and doubles in place when it is half full (so that a bucket
 * rarely overflows: at half load, 2% of them would), as long as it holds
 * fewer entries than twice the stored pages: its memory follows what is
 * stored, not the disk size.  It is counted in the footprint.
 *
 * Modes (the dedup attribute): off; on (every page is hashed and looked
 * up); auto, the default: the index looks at a sample of the pages, those
 * whose first 256 bytes hash to 0 mod 16 (identical pages are sampled
 * alike, so the share of duplicates in the sample is the share in all),
 * and switches to every page when at least 2% of 256 sampled pages were
 * found stored, back to the sample when fewer than 0.5% of 16384 pages
 * were.  On pages without duplicates auto costs one hash of 256 bytes per
 * page, a full hash and an index entry for one page in sixteen; the
 * decision and its reason are in dedup_stat.
 *
 * Locking (src/README.md, "Lock order"): the caller holds slot idx.  The
 * index is guarded by an rwlock (read: lookups and inserts; write: the
 * doubling) and 256 stripe spinlocks over the buckets, held only to copy
 * or change entries, never while a slot or record lock is taken.  A
 * candidate slot is only tried (it may be locked by a thread that waits
 * for ours); a record is locked (record holders never wait for slots).
 */
#define _GNU_SOURCE
#include "dedup.h"
#include "shared.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
/* XXH3 compiled in from the header (static, inlined): the library is not
 * linked, so no process maps libxxhash for the one function used here. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define PAGE UZRAM_PAGE_SIZE
#define RELAXED memory_order_relaxed
#define WAYS 8
#define STRIPES 256
#define REF_RECORD 0x80000000u
#define SAMPLE_SHIFT 60            /* sampled: prefix hash >> 60 == 0, 1 in 16 */
#define SAMPLE_BYTES 256
#define WINDOW_SAMPLED 256
#define WINDOW_FULL 16384

struct entry {
    uint32_t tag;                  /* the hash's high 32 bits */
    uint32_t ref;                  /* 0 empty; slot idx + 1, or (REF_RECORD | id) + 1 */
};

struct bucket {
    struct entry e[WAYS];
};

struct uz_dedup {
    struct bucket *base;           /* max_buckets reserved */
    uint64_t max_buckets;
    _Atomic uint64_t nbuckets;     /* a power of two */
    pthread_rwlock_t resize;
    _Atomic uint32_t stripe[STRIPES];
    _Atomic uint64_t entries;
    _Atomic uint64_t hits, refused, lookups, evictions;
    /* auto mode */
    _Atomic bool every;            /* looking at every page */
    _Atomic uint64_t win_looks, win_hits;
    pthread_mutex_t decide;
    char reason[128];              /* under decide */
};

uint64_t (*uz_dedup_hash_hook)(const void *page);

static void stripe_lock(struct uz_dedup *d, uint64_t b)
{
    _Atomic uint32_t *l = &d->stripe[b % STRIPES];
    uint32_t z = 0;
    while (!atomic_compare_exchange_weak_explicit(l, &z, 1, memory_order_acquire, RELAXED)) {
        z = 0;
        __builtin_ia32_pause();
    }
}

static void stripe_unlock(struct uz_dedup *d, uint64_t b)
{
    atomic_store_explicit(&d->stripe[b % STRIPES], 0, memory_order_release);
}

int uz_dedup_init(struct uzram *dev)
{
    struct uz_dedup *d = uz_calloc(1, sizeof *d);
    if (!d)
        return uz_error(-ENOMEM, "disksize: no memory for the content index");
    uint64_t max = 64;
    while (max * WAYS < dev->nslots)
        max *= 2;
    d->max_buckets = max;
    d->base = uz_vm_reserve(max * sizeof(struct bucket));
    if (!d->base) {
        uz_free(d);
        return uz_error(-ENOMEM, "disksize: cannot reserve the content index");
    }
    atomic_store(&d->nbuckets, PAGE / sizeof(struct bucket));
    pthread_rwlock_init(&d->resize, NULL);
    pthread_mutex_init(&d->decide, NULL);
    snprintf(d->reason, sizeof d->reason, "a sample of pages until duplicates are seen");
    dev->dedup = d;
    return 0;
}

void uz_dedup_fini(struct uzram *dev)
{
    struct uz_dedup *d = dev->dedup;
    if (!d)
        return;
    uz_vm_unreserve(d->base, d->max_buckets * sizeof(struct bucket));
    pthread_rwlock_destroy(&d->resize);
    pthread_mutex_destroy(&d->decide);
    uz_free(d);
    dev->dedup = NULL;
}

uint64_t uz_dedup_bytes(struct uzram *dev)
{
    struct uz_dedup *d = dev->dedup;
    return d ? atomic_load(&d->nbuckets) * sizeof(struct bucket) + sizeof *d : 0;
}

static uint64_t page_hash(const void *page)
{
    return uz_dedup_hash_hook ? uz_dedup_hash_hook(page) : XXH3_64bits(page, PAGE);
}

/* Is the stored form (state f, handle h) of a page bytes, n long? */
static bool same_bytes(struct uzram *dev, uint32_t f, uint64_t h, const void *bytes, size_t n,
                       bool huge)
{
    if (!(f & SLOT_OBJ) || (f & (SLOT_PRIO_MASK | SLOT_GROUP)) || !!(f & SLOT_HUGE) != huge)
        return false;
    if (uz_obj_bytes(dev, f, h) != n)
        return false;
    return memcmp(dev->aops->map(dev->alloc, h), bytes, n) == 0;
}

/* Point the entry (tag, from) at to instead, if it is still there. */
static void repoint(struct uz_dedup *d, uint32_t tag, uint32_t from, uint32_t to)
{
    pthread_rwlock_rdlock(&d->resize);
    uint64_t b = tag & (atomic_load(&d->nbuckets) - 1);
    stripe_lock(d, b);
    struct bucket *bk = &d->base[b];
    for (int i = 0; i < WAYS; i++)
        if (bk->e[i].tag == tag && bk->e[i].ref == from)
            bk->e[i].ref = to;
    stripe_unlock(d, b);
    pthread_rwlock_unlock(&d->resize);
}

/* A record that may hold the page: a reference for slot idx, or -1. */
static int64_t try_record(struct uzram *dev, uint32_t id, const void *bytes, size_t n, bool huge,
                          bool *refused)
{
    if (id >= dev->records.nelems)
        return -1;
    struct uz_shared *r = uz_shared_get(dev, id);
    int64_t got = -1;
    if (r->refs) {
        if (same_bytes(dev, uz_slot_state(&r->s), slot_handle(&r->s), bytes, n, huge)) {
            if (uz_shared_ref(dev, r) == 0)
                got = id;
        } else {
            *refused = true;
        }
    }
    uz_shared_put(dev, id, r);
    return got;
}

/* A unique page in slot j that may be the page: made shared, with a
 * reference for slot idx, or -1. */
static int64_t try_slot(struct uzram *dev, uint64_t idx, uint64_t j, uint32_t tag, const void *bytes,
                        size_t n, bool huge, bool *refused)
{
    struct uz_dedup *d = dev->dedup;
    if (j == idx || j >= dev->nslots)
        return -1;
    uz_varray_pin(&dev->slots, j);
    struct uz_slot *s = uz_slot_at(dev, j);
    int64_t got = -1;
    if (uz_slot_trylock(s)) {
        uint32_t f = uz_slot_state(s);
        if (f & SLOT_SHARED) {
            /* shared meanwhile: its record, and the entry follows it */
            uint32_t id = (uint32_t)slot_handle(s);
            got = try_record(dev, id, bytes, n, huge, refused);
            if (got >= 0)
                repoint(d, tag, (uint32_t)j + 1, (REF_RECORD | id) + 1);
        } else if (same_bytes(dev, f, slot_handle(s), bytes, n, huge)) {
            uint32_t id;
            if (uz_shared_make(dev, j, s, &id) == 0) {
                struct uz_shared *r = uz_shared_get(dev, id);
                if (uz_shared_ref(dev, r) == 0)
                    got = id;
                uz_shared_put(dev, id, r);
                repoint(d, tag, (uint32_t)j + 1, (REF_RECORD | id) + 1);
            }
        } else {
            *refused = true;
        }
        uz_slot_unlock(s);
    }
    uz_varray_unpin(&dev->slots, j);
    return got;
}

/* auto: after a lookup, decide every WINDOW lookups whether to look at
 * every page or a sample. */
static void auto_decide(struct uz_dedup *d, bool hit)
{
    if (hit)
        atomic_fetch_add_explicit(&d->win_hits, 1, RELAXED);
    bool every = atomic_load_explicit(&d->every, RELAXED);
    uint64_t window = every ? WINDOW_FULL : WINDOW_SAMPLED;
    if (atomic_fetch_add_explicit(&d->win_looks, 1, RELAXED) + 1 < window)
        return;
    if (pthread_mutex_trylock(&d->decide) != 0)
        return;
    uint64_t looks = atomic_load(&d->win_looks), hits = atomic_load(&d->win_hits);
    if (looks >= window) {
        double pct = 100.0 * (double)hits / (double)looks;
        if (!every && hits * 100 >= looks * 2) {
            atomic_store(&d->every, true);
            snprintf(d->reason, sizeof d->reason,
                     "every page: %.1f%% of %llu sampled pages were stored already (>= 2%%)", pct,
                     (unsigned long long)looks);
        } else if (every && hits * 1000 < looks * 5) {
            atomic_store(&d->every, false);
            snprintf(d->reason, sizeof d->reason,
                     "a sample of pages: %.2f%% of the last %llu pages were stored already (< 0.5%%)",
                     pct, (unsigned long long)looks);
        } else {
            snprintf(d->reason, sizeof d->reason, "%s: %.2f%% of the last %llu %spages were stored already",
                     every ? "every page" : "a sample of pages", pct, (unsigned long long)looks,
                     every ? "" : "sampled ");
        }
        atomic_store(&d->win_looks, 0);
        atomic_store(&d->win_hits, 0);
    }
    pthread_mutex_unlock(&d->decide);
}

int64_t uz_dedup_find(struct uzram *dev, uint64_t idx, const void *page, const void *bytes,
                      size_t n, bool huge, uint64_t *hash, bool *indexed)
{
    struct uz_dedup *d = dev->dedup;
    int mode = atomic_load_explicit(&dev->dedup_mode, RELAXED);
    *indexed = false;
    if (!d || mode == UZ_DEDUP_OFF)
        return -1;
    if (mode == UZ_DEDUP_AUTO && !atomic_load_explicit(&d->every, RELAXED) &&
        XXH3_64bits(page, SAMPLE_BYTES) >> SAMPLE_SHIFT != 0)
        return -1;
    uint64_t h = page_hash(page);
    *hash = h;
    *indexed = true;
    atomic_fetch_add_explicit(&d->lookups, 1, RELAXED);
    uint32_t tag = (uint32_t)(h >> 32), cand[WAYS];
    int nc = 0;
    pthread_rwlock_rdlock(&d->resize);
    uint64_t b = tag & (atomic_load(&d->nbuckets) - 1);
    stripe_lock(d, b);
    for (int i = 0; i < WAYS; i++)
        if (d->base[b].e[i].ref && d->base[b].e[i].tag == tag)
            cand[nc++] = d->base[b].e[i].ref - 1;
    stripe_unlock(d, b);
    pthread_rwlock_unlock(&d->resize);

    int64_t got = -1;
    bool refused = false;
    for (int i = 0; i < nc && got < 0; i++) {
        if (cand[i] & REF_RECORD)
            got = try_record(dev, cand[i] & ~REF_RECORD, bytes, n, huge, &refused);
        else
            got = try_slot(dev, idx, cand[i], tag, bytes, n, huge, &refused);
    }
    if (got >= 0) {
        atomic_fetch_add_explicit(&d->hits, 1, RELAXED);
        *indexed = false;
    } else if (refused) {
        atomic_fetch_add_explicit(&d->refused, 1, RELAXED);
    }
    if (mode == UZ_DEDUP_AUTO)
        auto_decide(d, got >= 0);
    return got;
}

/* Double the table in place: bucket b's entries whose next tag bit is set
 * go to bucket b + n.  Caller holds resize for writing. */
static void grow(struct uz_dedup *d)
{
    uint64_t n = atomic_load(&d->nbuckets);
    for (uint64_t b = 0; b < n; b++) {
        struct bucket *from = &d->base[b], *to = &d->base[b + n];
        int k = 0;
        for (int i = 0; i < WAYS; i++) {
            if (from->e[i].ref && (from->e[i].tag & n)) {
                to->e[k++] = from->e[i];
                from->e[i].ref = 0;
                from->e[i].tag = 0;
            }
        }
    }
    atomic_store(&d->nbuckets, 2 * n);
}

void uz_dedup_insert(struct uzram *dev, uint64_t h, uint64_t idx)
{
    struct uz_dedup *d = dev->dedup;
    if (!d)
        return;
    uint32_t tag = (uint32_t)(h >> 32);
    pthread_rwlock_rdlock(&d->resize);
    uint64_t n = atomic_load(&d->nbuckets), b = tag & (n - 1);
    stripe_lock(d, b);
    struct bucket *bk = &d->base[b];
    int at = -1;
    for (int i = 0; i < WAYS && at < 0; i++)
        if (bk->e[i].ref && bk->e[i].tag == tag)
            at = i;                         /* the same hash: the newest page wins */
    for (int i = 0; i < WAYS && at < 0; i++)
        if (!bk->e[i].ref) {
            at = i;
            atomic_fetch_add_explicit(&d->entries, 1, RELAXED);
        }
    if (at < 0) {
        at = (int)((h >> 8) % WAYS);
        atomic_fetch_add_explicit(&d->evictions, 1, RELAXED);
    }
    bk->e[at].tag = tag;
    bk->e[at].ref = (uint32_t)idx + 1;
    stripe_unlock(d, b);
    pthread_rwlock_unlock(&d->resize);

    /* more than half full (an 8-way bucket then overflows rarely: 2%), and
     * fewer entries than twice the stored pages */
    uint64_t entries = atomic_load_explicit(&d->entries, RELAXED);
    if (entries * 2 > n * WAYS && 2 * n <= d->max_buckets) {
        struct uz_tally_snap t;
        uz_tally_read(dev, &t);
        if (n * WAYS < 2 * t.pages_stored) {
            pthread_rwlock_wrlock(&d->resize);
            if (atomic_load(&d->nbuckets) == n)
                grow(d);
            pthread_rwlock_unlock(&d->resize);
        }
    }
}

void uz_dedup_figures(struct uzram *dev, struct uz_dedup_figures *f)
{
    memset(f, 0, sizeof *f);
    struct uz_dedup *d = dev->dedup;
    if (!d)
        return;
    f->hits = atomic_load(&d->hits);
    f->refused = atomic_load(&d->refused);
    f->lookups = atomic_load(&d->lookups);
    f->entries = atomic_load(&d->entries);
    f->sampling = atomic_load(&dev->dedup_mode) == UZ_DEDUP_AUTO && !atomic_load(&d->every);
}

int uz_dedup_show(struct uzram *dev, char *buf, size_t size)
{
    struct uz_dedup_figures f;
    uz_dedup_figures(dev, &f);
    struct uz_tally_snap t = {0};
    if (dev->initialised)
        uz_tally_read(dev, &t);
    int mode = atomic_load(&dev->dedup_mode);
    char why[160];
    if (mode == UZ_DEDUP_OFF)
        snprintf(why, sizeof why, "off");
    else if (mode == UZ_DEDUP_ON)
        snprintf(why, sizeof why, "on: every page");
    else if (dev->dedup) {
        pthread_mutex_lock(&dev->dedup->decide);
        snprintf(why, sizeof why, "auto: %s", dev->dedup->reason);
        pthread_mutex_unlock(&dev->dedup->decide);
    } else {
        snprintf(why, sizeof why, "auto");
    }
    /* pages deduplicated: slots that cost no page of their own */
    int n = snprintf(buf, size,
                     "%8llu %8llu %8llu %8llu %8llu\n"
                     "mode: %s\n"
                     "lookups: %llu index_entries: %llu shared_records: %llu shared_slots: %llu\n",
                     (unsigned long long)(t.shared_slots - t.records),
                     (unsigned long long)t.saved_bytes,
                     (unsigned long long)(dev->initialised ? uz_dedup_bytes(dev) : 0),
                     (unsigned long long)f.hits, (unsigned long long)f.refused, why,
                     (unsigned long long)f.lookups, (unsigned long long)f.entries,
                     (unsigned long long)t.records, (unsigned long long)t.shared_slots);
    return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}
