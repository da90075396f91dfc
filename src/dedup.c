/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dedup.c - layer 2 of the store (src/README.md): the content index.
 *
 * A page about to be stored is looked up by a 64-bit hash of its bytes
 * (xxHash's XXH3, hash.c), before it is compressed.  The index maps the hash to
 * where a page with that hash was stored: a slot (a unique page) or a
 * shared record (shared.c).  A candidate is taken only after it is
 * compared with the new page, byte for byte: a huge one as it is stored,
 * any other decoded first (same_page).  The hash is never trusted; a
 * candidate that differs is told apart by the hash of what it holds: a
 * slot rewritten since (or a record id reused) holds a page of other hash
 * bits, and its entry is dropped, so it costs one compare at most; a page
 * with the same hash bits is refused and counted, and its entry, right
 * for the page it names, stays.  So a page found stored costs a
 * hash, a decode and a compare, not its compression (lz4 decodes a page
 * 4-6x faster than it encodes it, zstd more), and one not found costs the
 * hash alone.  A unique page found again becomes a record with two
 * references (uz_shared_make); a record gets one more.  Candidates
 * recompressed with a secondary algorithm, grouped or written back are
 * not compared (they are misses).
 *
 * When the page is looked up (uz_dedup_early): before it is compressed
 * while the last window of 1024 lookups found at least 4% of its pages
 * stored (a hit then saves a compression), after it otherwise.  Hashing a
 * page read from memory costs about twice hashing it from the cache the
 * compressor just left it in (380-500 against 175-290 ns on this project's
 * machine), and a miss costs the compression either way: on data with few
 * repeats the late lookup halves what dedup adds to a write, and a hit
 * found late costs one wasted compression.
 *
 * The index is a cache: entries are not removed when a page is freed or
 * rewritten (that would need its hash again); a stale entry fails the
 * compare and is dropped then, as is one found pointing at a slot that is
 * empty or same-filled, or at a freed record.
 *
 * Its memory is what the footprint pays for every stored page, so it is
 * dense (issue 11: at 8-byte entries in a table doubling at half load it
 * took 11-21 bytes a page, most of a 3% saving):
 *
 *  - Entries are 4, 5, 6 or 8 bytes, chosen at init for the disk size:
 *    the reference (r bits: slot + 1, or nslots + 1 + record id, below
 *    2 * nslots; 0 is empty), one bit for which of the page's two buckets it is in, and the
 *    low bits of P hash bits.  A bucket is 64 bytes (one cache line), 16,
 *    12, 10 or 8 entries, kept packed from the front.
 *  - Quotiented: a page's P bits y select its bucket by range, (y * n) >>
 *    P for n buckets (any n, not only powers of two); the bucket fixes the
 *    high bits of y, so its low bits are all an entry needs to tell y
 *    exactly and to move to a table of another size.  The bits that are
 *    not implied by the bucket are the fingerprint: P - log2(n), at least
 *    MIN_FP_BITS when the table is as large as the disk can make it (the
 *    entry size is the smallest that allows it, with a first table of 4 to
 *    32 KiB: 4-byte entries up to a 1 GiB disk, 5 to 16 GiB, 6 to 256 GiB).
 *  - Two choices: the second bucket comes from y2 = y * K mod 2^P (an
 *    odd K, so y follows from y2 again), an insert takes the emptier of
 *    the two, and when both are full moves one of their entries (any) to
 *    its other bucket (one step of cuckoo hashing) before it evicts one.
 *    So the table fills to 97% (86-92% with fewer entries a bucket) with
 *    almost no evictions.
 *  - It grows by a quarter (GROW_DIV: each entry is moved about four
 *    times over a fill, against eight at an eighth), not by doubling, into the other half
 *    of its reservation: new entries go there at once, and the old table's
 *    move over MIGRATE buckets at a time, one step per insert (lookups and
 *    entry changes look in both until the last step gives the old half
 *    back), so no write waits for more than a step.  An entry moves to its
 *    own choice's bucket of the new table, which follows its old one by
 *    range (the moves stream), or, that one full, is placed again by its
 *    two choices.  So the table is 69-97% full whatever the number of
 *    pages, as long as it holds fewer entries than 1.25 x the stored
 *    pages: its memory follows what is stored, not the disk size.  It is
 *    counted in the footprint, whole pages of it (both tables while a
 *    growth is under way).
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
 * index is guarded by an rwlock (read: lookups and inserts; write: a
 * growth's start and steps, which take nothing under it) and 256 stripe spinlocks over
 * the buckets, held only to copy or change entries (an insert holds its two
 * buckets' in stripe order and only tries a third), never while a slot or
 * record lock is taken.  A candidate slot is only tried (it may be locked
 * by a thread that waits for ours); a record is locked (record holders
 * never wait for slots).
 */
#define _GNU_SOURCE
#include "dedup.h"
#include "hash.h"
#include "shared.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define PAGE UZRAM_PAGE_SIZE
#define RELAXED memory_order_relaxed
#define BUCKET 64                  /* bytes */
#define STRIPES 256
#define L0 6                       /* 2^L0 buckets (4 KiB) at first, */
#define L0_MAX 9                   /* or up to 2^L0_MAX (choose_format) */
#define MIN_FP_BITS 6
/* grow when fuller than this, in % (buckets of fewer entries fill less
 * evenly: 16, 12, 10, 8 a bucket) */
#define LOAD_PCT(cap) ((cap) == 16 ? 97 : (cap) == 12 ? 92 : (cap) == 10 ? 90 : 86)
#define GROW_DIV 4                 /* by n / GROW_DIV buckets */
#define MIGRATE 128                /* old buckets moved at a time */
#define MULT 0x9e3779b97f4a7c15ull /* odd: y2 = y * MULT mod 2^P */
#define SAMPLE_SHIFT 60            /* sampled: prefix hash >> 60 == 0, 1 in 16 */
#define SAMPLE_BYTES 256
#define WINDOW_SAMPLED 256
#define WINDOW_FULL 16384
/* uz_dedup_early: every EARLY_WINDOW lookups, look pages up before they
 * are compressed for the next window if at least EARLY_PCT% of this one
 * were found stored */
#define EARLY_WINDOW 1024
#define EARLY_PCT 4

struct uz_dedup {
    uint8_t *region;               /* two halves of 2 * half bytes */
    size_t half;
    uint8_t *base;                 /* the half in use (under resize) */
    /* a growth under way: the old table's buckets [mig, old_n) are still
     * in old_base (under resize; old_n 0: none) */
    uint8_t *old_base;
    _Atomic uint64_t old_n;
    uint64_t mig;
    uint64_t max_buckets;
    _Atomic uint64_t nbuckets;
    /* the entry format, fixed at init */
    unsigned esize, cap, rbits, tbits, pbits, l0, load_pct;
    uint64_t nslots, rmask, tmask, pmask, minv;
    pthread_rwlock_t resize;
    _Atomic uint32_t stripe[STRIPES];
    _Atomic uint64_t entries;
    _Atomic uint64_t hits, refused, lookups, evictions, moves, dropped, grows;
    /* uz_dedup_early: lookups and hits of the window under way */
    _Atomic uint64_t early_looks, early_hits;
    _Atomic bool early;
    /* auto mode */
    _Atomic bool every;            /* looking at every page */
    _Atomic uint64_t win_looks, win_hits;
    pthread_mutex_t decide;
    char reason[128];              /* under decide */
};

uint64_t (*uz_dedup_hash_hook)(const void *page);

/* ---- entries and buckets ---- */

static inline uint8_t *bucket_at(struct uz_dedup *d, uint8_t *base, uint64_t b)
{
    (void)d;
    return base + b * BUCKET;
}

/* Entry i of a bucket: 0 is empty.  5- and 6-byte entries are read and
 * written 8 bytes at a time, which stays inside the bucket (12 x 5 and
 * 10 x 6: the last one ends 3 and 2 bytes before the next bucket's
 * first). */
static inline uint64_t eget(const struct uz_dedup *d, const uint8_t *bk, unsigned i)
{
    uint64_t v;
    if (__builtin_expect(d->esize == 4, 1)) {
        uint32_t w;
        memcpy(&w, bk + 4 * i, 4);
        return w;
    }
    memcpy(&v, bk + d->esize * i, 8);
    return d->esize == 8 ? v : v & ((1ull << (8 * d->esize)) - 1);
}

static inline void eset(const struct uz_dedup *d, uint8_t *bk, unsigned i, uint64_t v)
{
    if (__builtin_expect(d->esize == 4, 1)) {
        uint32_t w = (uint32_t)v;
        memcpy(bk + 4 * i, &w, 4);
    } else if (d->esize == 8) {
        memcpy(bk + 8 * i, &v, 8);
    } else {
        uint64_t m = (1ull << (8 * d->esize)) - 1, o;
        memcpy(&o, bk + d->esize * i, 8);
        o = (o & ~m) | (v & m);
        memcpy(bk + d->esize * i, &o, 8);
    }
}

static inline uint64_t e_ref(const struct uz_dedup *d, uint64_t v) { return v & d->rmask; }
static inline unsigned e_choice(const struct uz_dedup *d, uint64_t v) { return (v >> d->rbits) & 1; }
static inline uint64_t e_low(const struct uz_dedup *d, uint64_t v) { return v >> (d->rbits + 1); }
static inline uint64_t e_make(const struct uz_dedup *d, uint64_t ref, unsigned c, uint64_t y)
{
    return ref | (uint64_t)c << d->rbits | (y & d->tmask) << (d->rbits + 1);
}

#ifdef __SSE2__
/* For 4-byte entries: one bit per entry of the bucket, set where
 * (entry & mask) == key (SSE2, 16 entries in four compares). */
static inline unsigned match16(const uint8_t *bk, uint32_t mask, uint32_t key)
{
    __m128i m = _mm_set1_epi32((int)mask), k = _mm_set1_epi32((int)key);
    unsigned bits = 0;
    for (int q = 0; q < 4; q++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(bk + 16 * q));
        __m128i eq = _mm_cmpeq_epi32(_mm_and_si128(v, m), k);
        bits |= (unsigned)_mm_movemask_ps(_mm_castsi128_ps(eq)) << (4 * q);
    }
    return bits;
}
#endif

/* Entries in a bucket (packed from the front). */
static inline unsigned bcount(const struct uz_dedup *d, const uint8_t *bk)
{
#ifdef __SSE2__
    if (d->esize == 4)
    {
        unsigned empty = match16(bk, ~0u, 0);
        return empty ? (unsigned)__builtin_ctz(empty) : 16;
    }
#endif
    unsigned lo = 0, hi = d->cap;      /* binary search: [0, lo) used, [hi, cap) empty */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (eget(d, bk, mid))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Remove entry i of a bucket of k entries (the last one takes its place). */
static inline void bdel(const struct uz_dedup *d, uint8_t *bk, unsigned i, unsigned k)
{
    eset(d, bk, i, eget(d, bk, k - 1));
    eset(d, bk, k - 1, 0);
}

/* ---- the page's two places ---- */

struct place {
    uint64_t y[2];                 /* P bits: choice 0 and choice 1 */
};

static inline void place_of(const struct uz_dedup *d, uint64_t h, struct place *p)
{
    p->y[0] = d->pbits == 64 ? h : h >> (64 - d->pbits);
    p->y[1] = (p->y[0] * MULT) & d->pmask;
}

static inline uint64_t addr(const struct uz_dedup *d, uint64_t y, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)y * n) >> d->pbits);
}

/* The first y of bucket b of n: ceil(b * 2^P / n). */
static uint64_t bucket_lo(const struct uz_dedup *d, uint64_t b, uint64_t n)
{
    unsigned __int128 x = ((unsigned __int128)b << d->pbits) + n - 1;
    if ((x >> 64) == 0)
        return (uint64_t)x / n;
    return (uint64_t)(x / n);
}

/* The place of an entry v found in bucket b of n (lo = bucket_lo(b, n)). */
static inline void place_from(const struct uz_dedup *d, uint64_t v, uint64_t lo, struct place *p)
{
    unsigned c = e_choice(d, v);
    uint64_t y = lo + ((e_low(d, v) - lo) & d->tmask);
    p->y[c] = y;
    p->y[c ^ 1] = c ? (y * d->minv) & d->pmask : (y * MULT) & d->pmask;
}

/* ---- spinlocks over the buckets ---- */

static void stripe_lock(struct uz_dedup *d, uint64_t b)
{
    _Atomic uint32_t *l = &d->stripe[b % STRIPES];
    uint32_t z = 0;
    while (!atomic_compare_exchange_weak_explicit(l, &z, 1, memory_order_acquire, RELAXED)) {
        z = 0;
        __builtin_ia32_pause();
    }
}

static bool stripe_trylock(struct uz_dedup *d, uint64_t b)
{
    uint32_t z = 0;
    return atomic_compare_exchange_strong_explicit(&d->stripe[b % STRIPES], &z, 1,
                                                   memory_order_acquire, RELAXED);
}

static void stripe_unlock(struct uz_dedup *d, uint64_t b)
{
    atomic_store_explicit(&d->stripe[b % STRIPES], 0, memory_order_release);
}

/* Lock the stripes of buckets a and b (once if they share one), in order. */
static void stripes_lock2(struct uz_dedup *d, uint64_t a, uint64_t b)
{
    uint64_t sa = a % STRIPES, sb = b % STRIPES;
    if (sa == sb) {
        stripe_lock(d, a);
    } else if (sa < sb) {
        stripe_lock(d, a);
        stripe_lock(d, b);
    } else {
        stripe_lock(d, b);
        stripe_lock(d, a);
    }
}

static void stripes_unlock2(struct uz_dedup *d, uint64_t a, uint64_t b)
{
    stripe_unlock(d, a);
    if (a % STRIPES != b % STRIPES)
        stripe_unlock(d, b);
}

/* ---- init ---- */

static unsigned bitlen(uint64_t x)
{
    return x ? 64 - (unsigned)__builtin_clzll(x) : 0;
}

/* The entry format for a disk of nslots pages: the smallest entry whose
 * fingerprint keeps MIN_FP_BITS bits in the largest table, starting the
 * table at 2^L0 buckets or, to keep 4-byte entries on a larger disk, up to
 * 2^L0_MAX (32 KiB: then 4-byte entries up to a 1 GiB disk). */
static void choose_format(struct uz_dedup *d, uint64_t nslots)
{
    static const unsigned sizes[] = {4, 5, 6, 8};
    d->nslots = nslots;
    /* references 1 .. 2 * nslots - 1: the one record id that would need
     * 2 * nslots (the last) is never named, its entry stays on the slot */
    d->rbits = bitlen(2 * (nslots ? nslots : 1) - 1);
    for (unsigned k = 0; k < 4; k++) {
        unsigned e = sizes[k], cap = BUCKET / e;
        if (8 * e < d->rbits + 1 + 8 && e != 8)
            continue;
        unsigned t = 8 * e - 1 - d->rbits;
        uint64_t full = nslots * 100 / (cap * 85) + 1;
        d->esize = e;
        d->cap = cap;
        d->tbits = t;
        for (unsigned l0 = L0; l0 <= L0_MAX; l0++) {
            d->l0 = l0;
            d->pbits = t + l0 < 64 ? t + l0 : 64;
            if (d->pbits >= bitlen(full) + MIN_FP_BITS)
                goto chosen;
        }
    }
    d->l0 = L0;
    d->pbits = d->tbits + L0 < 64 ? d->tbits + L0 : 64;
chosen:
    d->load_pct = LOAD_PCT(d->cap);
    d->rmask = (1ull << d->rbits) - 1;
    d->tmask = d->tbits >= 64 ? ~0ull : (1ull << d->tbits) - 1;
    d->pmask = d->pbits >= 64 ? ~0ull : (1ull << d->pbits) - 1;
    uint64_t inv = MULT;           /* MULT's inverse mod 2^64 (Newton) */
    for (int i = 0; i < 6; i++)
        inv *= 2 - MULT * inv;
    d->minv = inv;
}

int uz_dedup_init(struct uz_store *dev)
{
    struct uz_dedup *d = uz_calloc(1, sizeof *d);
    if (!d)
        return uz_error(-ENOMEM, "disksize: no memory for the content index");
    choose_format(d, dev->nslots);
    /* room for 1.5 entries per slot (the table stops growing at 1.25 x
     * the stored pages, plus one step) */
    d->max_buckets = dev->nslots * 3 / 2 / d->cap + 2 * (1u << d->l0);
    d->half = (d->max_buckets * BUCKET + PAGE - 1) / PAGE * PAGE;
    d->region = uz_vm_reserve(2 * d->half);
    if (!d->region) {
        uz_free(d);
        return uz_error(-ENOMEM, "disksize: cannot reserve the content index");
    }
    d->base = d->region;
    atomic_store(&d->nbuckets, 1u << d->l0);
    pthread_rwlock_init(&d->resize, NULL);
    pthread_mutex_init(&d->decide, NULL);
    snprintf(d->reason, sizeof d->reason, "a sample of pages until duplicates are seen");
    dev->dedup = d;
    return 0;
}

void uz_dedup_fini(struct uz_store *dev)
{
    struct uz_dedup *d = dev->dedup;
    if (!d)
        return;
    uz_vm_unreserve(d->region, 2 * d->half);
    pthread_rwlock_destroy(&d->resize);
    pthread_mutex_destroy(&d->decide);
    uz_free(d);
    dev->dedup = NULL;
}

/* Resident bytes: the pages of the table in use (the other half is given
 * back after each growth) and the descriptor. */
uint64_t uz_dedup_bytes(struct uz_store *dev)
{
    struct uz_dedup *d = dev->dedup;
    if (!d)
        return 0;
    uint64_t n = atomic_load(&d->nbuckets), o = atomic_load(&d->old_n);
    return (n * BUCKET + PAGE - 1) / PAGE * PAGE + (o * BUCKET + PAGE - 1) / PAGE * PAGE + sizeof *d;
}

static uint64_t page_hash(const void *page)
{
    return uz_dedup_hash_hook ? uz_dedup_hash_hook(page) : uz_hash(page, PAGE);
}

/* ---- changing one entry ---- */

/* The entry (ref from) of the page at p: pointed at ref to instead, or
 * dropped (to == 0), if it is still there. */
static bool change_in(struct uz_dedup *d, uint8_t *base, uint64_t b, uint64_t want, uint64_t to_v)
{
    bool done = false;
    stripe_lock(d, b);
    uint8_t *bk = bucket_at(d, base, b);
    unsigned k = bcount(d, bk);
    for (unsigned i = 0; i < k; i++) {
        if (eget(d, bk, i) != want)
            continue;
        if (to_v) {
            eset(d, bk, i, to_v);
        } else {
            bdel(d, bk, i, k);
            atomic_fetch_sub_explicit(&d->entries, 1, RELAXED);
        }
        done = true;
        break;
    }
    stripe_unlock(d, b);
    return done;
}

static void entry_change(struct uz_dedup *d, const struct place *p, uint64_t from, uint64_t to)
{
    pthread_rwlock_rdlock(&d->resize);
    uint64_t n = atomic_load_explicit(&d->nbuckets, RELAXED);
    uint64_t on = atomic_load_explicit(&d->old_n, RELAXED);
    for (unsigned c = 0; c < 2; c++) {
        uint64_t want = e_make(d, from, c, p->y[c]), to_v = to ? e_make(d, to, c, p->y[c]) : 0;
        if (change_in(d, d->base, addr(d, p->y[c], n), want, to_v))
            break;
        uint64_t ob = on ? addr(d, p->y[c], on) : 0;
        if (on && ob >= d->mig && change_in(d, d->old_base, ob, want, to_v))
            break;
    }
    pthread_rwlock_unlock(&d->resize);
}

static inline uint64_t ref_slot(uint64_t j) { return j + 1; }
static inline uint64_t ref_record(const struct uz_dedup *d, uint32_t id) { return d->nslots + 1 + id; }

/* What a candidate is, compared with the page (same_page). */
enum cmp {
    CMP_SAME,       /* the page */
    CMP_STALE,      /* a page of other hash bits: its entry is stale (the
                       slot was rewritten, the record id reused) */
    CMP_COLLIDES,   /* other bytes with the same P hash bits: the entry is
                       right for the page it names, and stays */
    CMP_UNSEEN,     /* not compared: a group member, a written-back page or
                       one of a secondary algorithm (the entry stays) */
};

/* Compare the stored object (state f, handle h) with page, whose places
 * are p.  A huge object is the raw page, compared as it is; any other is
 * decoded with the primary algorithm (the caller's stream's context) into
 * a buffer of its own: the caller may hold the page's compressed form in
 * st->out.  A mismatch is
 * told stale or colliding by the hash of what the object holds. */
static enum cmp same_page(struct uz_store *dev, uint32_t f, uint64_t h, const void *page,
                          struct uz_stream *st, const struct place *p)
{
    if (!(f & SLOT_OBJ) || (f & (SLOT_PRIO_MASK | SLOT_GROUP)))
        return CMP_UNSEEN;
    const void *obj = dev->aops->map(dev->alloc, h);
    const void *held = obj;
    uint8_t buf[PAGE];             /* st->out may hold the page's compressed form */
    if (!(f & SLOT_HUGE)) {
        if (dev->streams.codec->decompress(st->ctx, obj, uz_obj_bytes(dev, f, h), buf, PAGE))
            return CMP_UNSEEN;
        held = buf;
    }
    if (memcmp(held, page, PAGE) == 0)
        return CMP_SAME;
    struct place q;
    place_of(dev->dedup, page_hash(held), &q);
    return q.y[0] == p->y[0] ? CMP_COLLIDES : CMP_STALE;
}

/* A candidate that is not the page: its entry goes (stale) or stays
 * (refused, counted). */
static void missed(enum cmp c, bool *refused, bool *stale)
{
    if (c == CMP_STALE)
        *stale = true;
    else
        *refused = true;
}

/* A record that may hold the page: a reference for slot idx, or -1.
 * *stale: the record is free, or holds a page of other hash bits (its
 * entry can go); *refused: it holds other bytes of the same hash bits. */
static int64_t try_record(struct uz_store *dev, uint32_t id, const void *page, struct uz_stream *st,
                          const struct place *p, bool *refused, bool *stale)
{
    if (id >= dev->records.nelems)
        return -1;
    struct uz_shared *r = uz_shared_get(dev, id);
    int64_t got = -1;
    if (r->refs) {
        enum cmp c = same_page(dev, uz_slot_state(&r->s), slot_handle(&r->s), page, st, p);
        if (c != CMP_SAME)
            missed(c, refused, stale);
        else if (uz_shared_ref(dev, r) == 0)
            got = id;
    } else {
        *stale = true;
    }
    uz_shared_put(dev, id, r);
    return got;
}

/* A unique page in slot j that may be the page: made shared, with a
 * reference for slot idx, or -1.  *stale: the slot holds no page that can
 * be compared ever again (empty or same-filled).  *moved_to: the record
 * the entry should name from now on, or 0. */
static int64_t try_slot(struct uz_store *dev, uint64_t idx, uint64_t j, const void *page,
                        struct uz_stream *st, const struct place *p, bool *refused, bool *stale,
                        uint64_t *moved_to)
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
            got = try_record(dev, id, page, st, p, refused, stale);
            if (got >= 0)
                *moved_to = ref_record(d, id);
        } else if (!(f & (SLOT_OBJ | SLOT_WB | SLOT_GROUP))) {
            *stale = true;
        } else {
            enum cmp c = same_page(dev, f, slot_handle(s), page, st, p);
            uint32_t id;
            if (c != CMP_SAME) {
                missed(c, refused, stale);
            } else if (uz_shared_make(dev, j, s, &id) == 0) {
                struct uz_shared *r = uz_shared_get(dev, id);
                if (uz_shared_ref(dev, r) == 0)
                    got = id;
                uz_shared_put(dev, id, r);
                *moved_to = ref_record(d, id);
            }
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


/* The references of bucket b's entries that match key (an entry with a zero
 * reference), appended to cand. */
static void scan(struct uz_dedup *d, uint8_t *base, uint64_t b, uint64_t key, uint64_t *cand,
                 unsigned *nc)
{
    stripe_lock(d, b);
    const uint8_t *bk = bucket_at(d, base, b);
#ifdef __SSE2__
    if (d->esize == 4) {
        unsigned bits = match16(bk, (uint32_t)~d->rmask, (uint32_t)key) &
                        ~match16(bk, ~0u, 0);   /* not the empty ones */
        for (; bits; bits &= bits - 1)
            cand[(*nc)++] = e_ref(d, eget(d, bk, (unsigned)__builtin_ctz(bits)));
        stripe_unlock(d, b);
        return;
    }
#endif
    for (unsigned i = 0; i < d->cap; i++) {
        uint64_t v = eget(d, bk, i);
        if (!v)
            break;
        if ((v & ~d->rmask) == key)
            cand[(*nc)++] = e_ref(d, v);
    }
    stripe_unlock(d, b);
}

bool uz_dedup_early(struct uz_store *dev)
{
    struct uz_dedup *d = dev->dedup;
    return d && atomic_load_explicit(&d->early, RELAXED);
}

bool uz_dedup_probe(struct uz_store *dev, const void *page)
{
    struct uz_dedup *d = dev->dedup;
    int mode = atomic_load_explicit(&dev->dedup_mode, RELAXED);
    if (!d || mode == UZ_DEDUP_OFF || atomic_load_explicit(&d->entries, RELAXED) == 0)
        return false;
    if (mode == UZ_DEDUP_AUTO && !atomic_load_explicit(&d->every, RELAXED) &&
        uz_hash(page, SAMPLE_BYTES) >> SAMPLE_SHIFT != 0)
        return false;
    struct place p;
    place_of(d, page_hash(page), &p);
    uint64_t cand[4 * 16];
    unsigned nc = 0;
    pthread_rwlock_rdlock(&d->resize);
    uint64_t nb = atomic_load_explicit(&d->nbuckets, RELAXED);
    uint64_t on = atomic_load_explicit(&d->old_n, RELAXED);
    for (unsigned c = 0; c < 2 && nc == 0; c++) {
        uint64_t key = e_make(d, 0, c, p.y[c]);
        scan(d, d->base, addr(d, p.y[c], nb), key, cand, &nc);
        uint64_t ob = on ? addr(d, p.y[c], on) : 0;
        if (on && ob >= d->mig && nc == 0)
            scan(d, d->old_base, ob, key, cand, &nc);
    }
    pthread_rwlock_unlock(&d->resize);
    return nc > 0;
}

int64_t uz_dedup_find(struct uz_store *dev, uint64_t idx, const void *page, struct uz_stream *st,
                      uint64_t *hash, bool *indexed)
{
    struct uz_dedup *d = dev->dedup;
    int mode = atomic_load_explicit(&dev->dedup_mode, RELAXED);
    *indexed = false;
    if (!d || mode == UZ_DEDUP_OFF)
        return -1;
    uint64_t h = page_hash(page);
    *hash = h;
    *indexed = true;
    /* auto, sampling: every page is indexed, a sample looked up, so that
     * once the sample finds repeats every page is looked up and finds
     * the pages stored before (groups and settling need them found: a
     * page indexed late is one a group or settling may already hold) */
    if (mode == UZ_DEDUP_AUTO && !atomic_load_explicit(&d->every, RELAXED) &&
        uz_hash(page, SAMPLE_BYTES) >> SAMPLE_SHIFT != 0)
        return -1;
    atomic_fetch_add_explicit(&d->lookups, 1, RELAXED);
    struct place p;
    place_of(d, h, &p);
    uint64_t cand[4 * 16];
    unsigned nc = 0;
    pthread_rwlock_rdlock(&d->resize);
    uint64_t nb = atomic_load_explicit(&d->nbuckets, RELAXED);
    uint64_t on = atomic_load_explicit(&d->old_n, RELAXED);
    for (unsigned c = 0; c < 2; c++) {
        uint64_t key = e_make(d, 0, c, p.y[c]);
        scan(d, d->base, addr(d, p.y[c], nb), key, cand, &nc);
        uint64_t ob = on ? addr(d, p.y[c], on) : 0;
        if (on && ob >= d->mig)        /* not moved yet by the growth under way */
            scan(d, d->old_base, ob, key, cand, &nc);
    }
    pthread_rwlock_unlock(&d->resize);

    int64_t got = -1;
    bool refused = false;
    for (unsigned i = 0; i < nc && got < 0; i++) {
        bool stale = false;
        uint64_t moved = 0, ref = cand[i];
        if (ref > d->nslots)
            got = try_record(dev, (uint32_t)(ref - d->nslots - 1), page, st, &p, &refused, &stale);
        else
            got = try_slot(dev, idx, ref - 1, page, st, &p, &refused, &stale, &moved);
        if (moved > d->rmask)
            moved = 0;                 /* see choose_format */
        if (stale || moved) {
            entry_change(d, &p, ref, moved);
            if (stale)
                atomic_fetch_add_explicit(&d->dropped, 1, RELAXED);
        }
    }
    if (got >= 0)
        atomic_fetch_add_explicit(&d->early_hits, 1, RELAXED);
    if ((atomic_fetch_add_explicit(&d->early_looks, 1, RELAXED) + 1) % EARLY_WINDOW == 0) {
        uint64_t w = atomic_exchange_explicit(&d->early_hits, 0, RELAXED);
        atomic_store_explicit(&d->early, w * 100 >= (uint64_t)EARLY_PCT * EARLY_WINDOW, RELAXED);
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

/* Move one entry of full bucket b (of n) to its other bucket, if that has
 * room: the index of the entry freed, or -1.  locking: the insert path,
 * which holds the stripes of held1 and held2 and only tries another. */
static int kick(struct uz_dedup *d, uint8_t *base, uint64_t n, uint64_t b, bool locking,
                uint64_t held1, uint64_t held2)
{
    uint8_t *bk = bucket_at(d, base, b);
    uint64_t lo = bucket_lo(d, b, n);
    for (unsigned i = 0; i < d->cap; i++) {
        uint64_t v = eget(d, bk, i);
        struct place q;
        place_from(d, v, lo, &q);
        unsigned c = e_choice(d, v) ^ 1;
        uint64_t alt = addr(d, q.y[c], n);
        if (alt == b)
            continue;
        bool own = !locking || alt % STRIPES == held1 % STRIPES || alt % STRIPES == held2 % STRIPES;
        if (!own && !stripe_trylock(d, alt))
            continue;
        uint8_t *ak = bucket_at(d, base, alt);
        unsigned k = bcount(d, ak);
        bool done = k < d->cap;
        if (done)
            eset(d, ak, k, e_make(d, e_ref(d, v), c, q.y[c]));
        if (!own)
            stripe_unlock(d, alt);
        if (done) {
            atomic_fetch_add_explicit(&d->moves, 1, RELAXED);
            return (int)i;
        }
    }
    return -1;
}

/* Put (p, ref) into the table at base of n buckets: 0, 1 (an entry was
 * evicted) or -1 (locking == false, both buckets and their moves full: not
 * placed).  locking: the insert path, which holds the two buckets' stripes
 * and looks for the entry first (a slot rewritten with the same page);
 * otherwise growth, whose entries are all different. */
static int put(struct uz_dedup *d, uint8_t *base, uint64_t n, const struct place *p, uint64_t ref,
               bool locking, uint64_t evict_at)
{
    uint64_t b[2] = {addr(d, p->y[0], n), addr(d, p->y[1], n)};
    unsigned k[2];
    for (unsigned c = 0; c < 2; c++) {
        uint8_t *bk = bucket_at(d, base, b[c]);
        if (!locking) {
            k[c] = bcount(d, bk);
            continue;
        }
        uint64_t want = e_make(d, ref, c, p->y[c]);
        k[c] = 0;
        while (k[c] < d->cap) {
            uint64_t v = eget(d, bk, k[c]);
            if (!v)
                break;
            if (v == want)
                return 0;              /* there already */
            k[c]++;
        }
    }
    unsigned c = k[1] < k[0];
    if (k[c] < d->cap) {
        eset(d, bucket_at(d, base, b[c]), k[c], e_make(d, ref, c, p->y[c]));
        if (locking)
            atomic_fetch_add_explicit(&d->entries, 1, RELAXED);
        return 0;
    }
    for (c = 0; c < 2; c++) {
        int i = kick(d, base, n, b[c], locking, b[0], b[1]);
        if (i >= 0) {
            eset(d, bucket_at(d, base, b[c]), (unsigned)i, e_make(d, ref, c, p->y[c]));
            if (locking)
                atomic_fetch_add_explicit(&d->entries, 1, RELAXED);
            return 0;
        }
    }
    if (!locking)
        return -1;
    c = evict_at & 1;
    eset(d, bucket_at(d, base, b[c]), (unsigned)((evict_at >> 1) % d->cap), e_make(d, ref, c, p->y[c]));
    atomic_fetch_add_explicit(&d->evictions, 1, RELAXED);
    return 1;
}

/* Move the next MIGRATE buckets of the old table of a growth under way
 * into the new one; the last of them ends it (the old half given back).
 * Caller holds resize for writing. */
static void migrate(struct uz_dedup *d)
{
    uint64_t n = atomic_load_explicit(&d->old_n, RELAXED), m = atomic_load_explicit(&d->nbuckets, RELAXED);
    if (!n)
        return;
    uint64_t end = d->mig + MIGRATE < n ? d->mig + MIGRATE : n, lost = 0;
    for (uint64_t b = d->mig; b < end; b++) {
        uint8_t *bk = bucket_at(d, d->old_base, b);
        uint64_t lo = bucket_lo(d, b, n);
        for (unsigned i = 0; i < d->cap; i++) {
            uint64_t v = eget(d, bk, i);
            if (!v)
                break;
            struct place q;
            place_from(d, v, lo, &q);
            /* first in the same choice: its bucket in the new table
             * follows the old one's (by range), so the writes stream
             * through the new table; a full one gets the two choices */
            unsigned c = e_choice(d, v);
            uint8_t *nk = bucket_at(d, d->base, addr(d, q.y[c], m));
            unsigned k = bcount(d, nk);
            if (k < d->cap)
                eset(d, nk, k, e_make(d, e_ref(d, v), c, q.y[c]));
            else if (put(d, d->base, m, &q, e_ref(d, v), false, 0) < 0)
                lost++;
        }
    }
    d->mig = end;
    atomic_fetch_sub_explicit(&d->entries, lost, RELAXED);
    atomic_fetch_add_explicit(&d->evictions, lost, RELAXED);
    if (end == n) {
        uz_vm_release(d->old_base, (n * BUCKET + PAGE - 1) / PAGE * PAGE);
        d->old_base = NULL;
        atomic_store(&d->old_n, 0);
    }
}

/* Grow the table from n to m buckets: new entries go to the other half,
 * and the old table's move into it MIGRATE buckets at a time (one step per
 * insert), while lookups look in both.  Caller holds resize for writing. */
static void grow(struct uz_dedup *d, uint64_t n, uint64_t m)
{
    d->old_base = d->base;
    d->base = d->base == d->region ? d->region + d->half : d->region;
    d->mig = 0;
    atomic_store(&d->old_n, n);
    atomic_store(&d->nbuckets, m);
    atomic_fetch_add_explicit(&d->grows, 1, RELAXED);
    migrate(d);
}

void uz_dedup_insert(struct uz_store *dev, uint64_t h, uint64_t idx)
{
    struct uz_dedup *d = dev->dedup;
    if (!d)
        return;
    struct place p;
    place_of(d, h, &p);
    pthread_rwlock_rdlock(&d->resize);
    uint64_t n = atomic_load_explicit(&d->nbuckets, RELAXED);
    uint64_t b0 = addr(d, p.y[0], n), b1 = addr(d, p.y[1], n);
    stripes_lock2(d, b0, b1);
    (void)put(d, d->base, n, &p, ref_slot(idx), true, h >> 7);
    stripes_unlock2(d, b0, b1);
    pthread_rwlock_unlock(&d->resize);

    if (atomic_load_explicit(&d->old_n, RELAXED)) {
        /* a growth under way: its next step */
        pthread_rwlock_wrlock(&d->resize);
        migrate(d);
        pthread_rwlock_unlock(&d->resize);
        return;
    }
    /* fuller than load_pct, and fewer entries than 1.25 x
     * the stored pages: grow by a quarter */
    uint64_t entries = atomic_load_explicit(&d->entries, RELAXED);
    if (entries * 100 > (uint64_t)d->load_pct * d->cap * n && n < d->max_buckets) {
        struct uz_tally_snap t;
        uz_tally_read(dev, &t);
        if (n * d->cap * 4 < 5 * t.pages_stored) {
            uint64_t m = n + (n / GROW_DIV ? n / GROW_DIV : 1);
            if (m > d->max_buckets)
                m = d->max_buckets;
            pthread_rwlock_wrlock(&d->resize);
            if (atomic_load_explicit(&d->nbuckets, RELAXED) == n &&
                !atomic_load_explicit(&d->old_n, RELAXED))
                grow(d, n, m);
            pthread_rwlock_unlock(&d->resize);
        }
    }
}


void uz_dedup_figures(struct uz_store *dev, struct uz_dedup_figures *f)
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

int uz_dedup_show(struct uz_store *dev, char *buf, size_t size)
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
    struct uz_dedup *d = dev->dedup;
    uint64_t nb = d ? atomic_load(&d->nbuckets) : 0;
    /* pages deduplicated: slots that cost no page of their own */
    int n = snprintf(buf, size,
                     "%8llu %8llu %8llu %8llu %8llu\n"
                     "mode: %s\n"
                     "lookups: %llu index_entries: %llu shared_records: %llu shared_slots: %llu\n"
                     "index: %u-byte entries, %u a bucket, %llu buckets (%.1f%% full), %llu evicted, "
                     "%llu moved, %llu stale dropped, grown %llu times\n",
                     (unsigned long long)(t.shared_slots - t.records),
                     (unsigned long long)t.saved_bytes,
                     (unsigned long long)(dev->initialised ? uz_dedup_bytes(dev) : 0),
                     (unsigned long long)f.hits, (unsigned long long)f.refused, why,
                     (unsigned long long)f.lookups, (unsigned long long)f.entries,
                     (unsigned long long)t.records, (unsigned long long)t.shared_slots,
                     d ? d->esize : 0, d ? d->cap : 0, (unsigned long long)nb,
                     nb ? 100.0 * (double)f.entries / (double)(nb * d->cap) : 0.0,
                     (unsigned long long)(d ? atomic_load(&d->evictions) : 0),
                     (unsigned long long)(d ? atomic_load(&d->moves) : 0),
                     (unsigned long long)(d ? atomic_load(&d->dropped) : 0),
                     (unsigned long long)(d ? atomic_load(&d->grows) : 0));
    return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}
