/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zsmalloc.h - the internals that zsmalloc.c (size classes, zspages, arena
 * runs, compaction) and zspack.c (the pack) share: constants, the
 * descriptor and allocator structures, handle encoding and the few
 * functions each file calls in the other.  Not an interface for anyone
 * else: the store sees only alloc.h.  The design is explained at the top
 * of zsmalloc.c and zspack.c.
 */
#ifndef UZRAM_ZSMALLOC_H
#define UZRAM_ZSMALLOC_H

#include "alloc.h"
#include "prefault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ZS_PAGE 4096u
#define ZS_HDR 4u                   /* in-object header: the backref */
#define ZS_MIN_SLOT 32u
#define ZS_STEP 16u
#define ZS_MAX_CHAIN 32u
#define ZS_NBUCKETS ((ZS_PAGE - ZS_MIN_SLOT) / ZS_STEP + 1) /* cells 32..4096 */
#define ZS_IDX_BITS 18              /* handle bits for a cell index or a pack offset */
#define ZS_IDX_MASK ((1u << ZS_IDX_BITS) - 1)
#define ZS_MAX_OBJS 2048u           /* cells per zspage */
#define ZS_NPART 8                  /* partial fullness bands 0..7 */
#define ZS_FULL ZS_NPART            /* band of full zspages */
#define ZS_NBANDS (ZS_NPART + 1)
#define ZS_NONE UINT32_MAX          /* no zspage id */
#define ZS_MAX_BYTES (1ull << 43)   /* most max_bytes (8 TiB, the largest disksize) */
/* Most arena pages: page numbers and zspage ids are 32 bits, ZS_NONE
 * excluded; 16 TiB less 64 MiB, which also keeps sums like
 * arena_pages + 7 and first_page + run length inside 32 bits. */
#define ZS_ARENA_MAX_PAGES ((uint32_t)((1ull << 32) - ((64u << 20) / ZS_PAGE)))
#define ZS_FREE_END 0xffffu         /* end of a zspage's free list */
#define ZS_RUN_LISTS (ZS_MAX_CHAIN + 1)
#define ZS_TRIED_MAX 64             /* sources that failed, per class pass */
#define ZS_SCAN_MAX 64              /* zspages looked at to find the emptiest */
#define ZS_LOCKS 32                 /* class lock stripes */
#define ZS_BORROW_BYTES 16u         /* how much bigger a borrowed cell may be */
#define ZS_PACK_PAGES 32u           /* pages per pack run */
#define ZS_PACK_BYTES (ZS_PACK_PAGES * ZS_PAGE)
#define ZS_PACK_HDR 6u              /* pack record header: u32 backref, u16 size */
#define ZS_PACK_HDR_SHORT 5u        /* ... or 40 bits: size, dead, 26-bit index, shared */
#define ZS_PACK_SHORT_LIMIT (1u << 26) /* backref_limit that allows the short header */
#define ZS_PACK_DEAD 0x8000u        /* size flag of a freed pack record */
#define ZS_PACK_SIZE 0x0fffu        /* size bits of a pack record */
#define ZS_PACK_NHOT 8              /* pack runs open for new records */
#define ZS_PACK_NOPEN (ZS_PACK_NHOT + 2) /* ... and for records cleaning moves */
#define ZS_PACK_OPEN 0xff           /* band of an open pack run */
#define ZS_PACK_EVAC 0xfe           /* band of a run being evacuated (on no list) */
#define ZS_DENSE_DEFAULT (2048u << 10) /* bytes a class holds before it gets zspages ... */
#define ZS_DENSE_CHURN_DIV 4u       /* ... divided by this once frees pass objects / 8 */

enum { ZS_CLS_WARM = 0xfb, ZS_CLS_PACK = 0xfc, ZS_CLS_HUGE = 0xfd, ZS_CLS_VACANT = 0xfe, ZS_CLS_EMPTY = 0xff };
#define ZS_WARM_MIN 16u             /* freed huge pages kept resident: at least ... */
#define ZS_WARM_MAX 256u            /* ... at most; else pages_used / 512 */

/* One zspage descriptor: 20 bytes, dense, indexed by zspage id. */
struct zspage {
    uint32_t first_page;        /* arena page number of the run */
    union {
        struct { uint32_t next, prev; } link; /* band list; run/empty list (next) */
        struct { uint32_t backref, size; } huge; /* huge object */
    } u;
    union {
        struct { uint16_t inuse, bump; } obj; /* live zspage */
        uint32_t run_len;                     /* vacant run */
    } v;
    uint16_t free_head;         /* first free cell, ZS_FREE_END if none */
    uint8_t cls;                /* class index, or ZS_CLS_* */
    uint8_t band;              /* fullness band */
};
_Static_assert(sizeof(struct zspage) == 20, "zspage descriptor must stay 20 bytes");

struct zs_class {
    pthread_mutex_t *lock;       /* one of the allocator's lock stripes */
    uint32_t cell;              /* bytes per cell, header included */
    uint32_t table;             /* bytes of slack table at the run start */
    uint32_t payload;           /* cell - header: largest payload */
    uint16_t objs;              /* cells per zspage */
    uint8_t run_pages;          /* pages per zspage run */
    uint8_t index;
    uint32_t head[ZS_NBANDS];  /* fullness band lists */
    uint64_t zspages;           /* live zspages */
    uint64_t inuse;             /* live objects */
    uint64_t obj_bytes;         /* sum of their sizes */
    uint64_t pages;             /* committed pages */
    uint64_t free_ng;           /* free cells on committed pages */
    _Atomic uint64_t pack_bytes; /* payload bytes of this class's objects in the pack */
};

/* The pack: byte-exact records in runs of ZS_PACK_PAGES pages. */
struct zs_pack {
    pthread_mutex_t lock;
    uint32_t open[ZS_PACK_NOPEN]; /* runs taking appends, ZS_NONE if none */
    struct zs_class lists;      /* head[]: closed runs by live fraction */
    uint64_t runs;              /* live runs, open ones included */
    uint64_t pages;             /* committed pages */
    uint64_t objects;           /* live records */
    uint64_t obj_bytes;         /* their payload bytes */
    uint64_t rec_bytes;         /* their bytes, headers included */
};

struct uz_allocator {
    const struct uz_owner_ops *owner_ops;
    void *owner;
    _Atomic uint64_t *limit_pages;

    uint8_t *arena;
    size_t arena_bytes;
    uint32_t arena_pages;
    struct zspage *desc;
    size_t desc_bytes;
    uint32_t desc_max;

    pthread_mutex_t locks[ZS_LOCKS]; /* class c uses locks[c % ZS_LOCKS] */
    pthread_mutex_t huge_lock;
    pthread_mutex_t arena_lock;
    uint32_t top;               /* arena pages below are in runs */
    uint32_t hwm;               /* descriptor ids below were ever used */
    uint32_t empty_head;        /* ids with no run */
    uint32_t run_head[ZS_RUN_LISTS];
    _Atomic uint32_t hwm_pub;   /* hwm, for stats() */
    struct uz_prefault pf;      /* keeps the pages above top resident */

    _Atomic uint64_t pages_used;
    _Atomic uint64_t objects;
    _Atomic uint64_t obj_bytes;
    _Atomic uint64_t pages_compacted;
    _Atomic uint64_t frees;     /* objects ever freed (zs_class_dense) */
    _Atomic uint64_t huge_pages; /* huge.pages, for the prefault window (no lock) */
    _Atomic uint32_t cursor;    /* next class for a bounded compaction step */

    size_t huge_max;            /* largest payload that is not huge */
    uint64_t dense_bytes;       /* a class gets zspages from this many bytes */
    uint32_t backref_limit;     /* backrefs are below this (0: any) */
    uint32_t pack_hdr;          /* bytes of a pack record's header: 5 or 6 */
    struct zs_pack pack;
    uint32_t nclasses;
    uint8_t bucket_class[ZS_NBUCKETS]; /* size bucket -> class or ZS_CLS_HUGE */
    struct zs_class huge;
    uint32_t warm_head;         /* (huge lock) freed huge pages kept resident, */
    _Atomic uint32_t warm_n;    /* linked by u.link.next, and their number */
    struct zs_class classes[];
};

/* ---- geometry, descriptors, handles -------------------------------------- */

static inline uint32_t round_up(uint32_t x, uint32_t to) { return (x + to - 1) / to * to; }

/* Bucket of a payload size (1..huge_max): the smallest cell holding it. */
static inline uint32_t bucket_of(size_t size)
{
    uint32_t cell = round_up((uint32_t)size + ZS_HDR, ZS_STEP);
    if (cell < ZS_MIN_SLOT)
        cell = ZS_MIN_SLOT;
    return (cell - ZS_MIN_SLOT) / ZS_STEP;
}

/* ---- descriptors, handles, cells ---------------------------------------- */

static inline struct zspage *zs_desc(struct uz_allocator *a, uint32_t id)
{
    return &a->desc[id];
}

static inline uint8_t *zs_base(struct uz_allocator *a, const struct zspage *z)
{
    return a->arena + (size_t)z->first_page * ZS_PAGE;
}

static inline uint8_t *cell_at(const struct zs_class *cl, uint8_t *base, uint32_t idx)
{
    return base + cl->table + (size_t)idx * cl->cell;
}

static inline uint64_t make_handle(uint32_t id, uint32_t idx)
{
    return ((uint64_t)id + 1) << ZS_IDX_BITS | idx;
}

static inline uint32_t handle_id(uint64_t h) { return (uint32_t)((h >> ZS_IDX_BITS) - 1); }
static inline uint32_t handle_idx(uint64_t h) { return (uint32_t)(h & ZS_IDX_MASK); }

/* Headers may straddle a page boundary and are only 4-byte aligned:
 * access them with memcpy. */
static inline uint32_t hdr_get(const uint8_t *cell)
{
    uint32_t v;
    memcpy(&v, cell, sizeof v);
    return v;
}

static inline void hdr_set(uint8_t *cell, uint32_t v) { memcpy(cell, &v, sizeof v); }

/* Committed pages of a zspage with `bump` cells carved: the pages under
 * the slack table and cells 0..max(bump,1)-1. */
static inline uint32_t pages_for(const struct zs_class *cl, uint32_t bump)
{
    uint32_t b = bump ? bump : 1;
    return (cl->table + b * cl->cell + ZS_PAGE - 1) / ZS_PAGE;
}

/* Free cells lying wholly on committed pages. */
static inline uint32_t free_ng(const struct zs_class *cl, const struct zspage *z)
{
    uint32_t cap = (pages_for(cl, z->v.obj.bump) * ZS_PAGE - cl->table) / cl->cell;
    if (cap > cl->objs)
        cap = cl->objs;
    return cap - z->v.obj.inuse;
}

static inline uint8_t band_of(const struct zs_class *cl, uint32_t inuse)
{
    return inuse >= cl->objs ? ZS_FULL : (uint8_t)(inuse * ZS_NPART / cl->objs);
}

/* A pack record's header, a->pack_hdr bytes, unaligned.  Six bytes: the
 * u32 backref, then the u16 size word (size bits | ZS_PACK_DEAD).  Five
 * bytes (backref_limit <= 2^26), 40 bits little-endian: bits 0..11 the
 * size, bit 12 dead, bits 13..38 the backref's index, bit 39 its
 * UZ_BACKREF_SHARED bit.  rec_sz and rec_put speak the six-byte size
 * word either way. */
static inline uint64_t rec_word(const uint8_t *rec)
{
    return (uint64_t)rec[0] | (uint64_t)rec[1] << 8 | (uint64_t)rec[2] << 16 |
           (uint64_t)rec[3] << 24 | (uint64_t)rec[4] << 32;
}

static inline uint16_t rec_sz(const struct uz_allocator *a, const uint8_t *rec)
{
    if (a->pack_hdr == ZS_PACK_HDR) {
        uint16_t v;
        memcpy(&v, rec + 4, sizeof v);
        return v;
    }
    uint64_t w = rec_word(rec);
    return (uint16_t)((w & ZS_PACK_SIZE) | (w >> 12 & 1 ? ZS_PACK_DEAD : 0));
}

static inline uint32_t rec_backref(const struct uz_allocator *a, const uint8_t *rec)
{
    uint32_t b;
    if (a->pack_hdr == ZS_PACK_HDR) {
        memcpy(&b, rec, sizeof b);
        return b;
    }
    uint64_t w = rec_word(rec);
    b = (uint32_t)(w >> 13) & (ZS_PACK_SHORT_LIMIT - 1);
    return w >> 39 & 1 ? b | UZ_BACKREF_SHARED : b;
}

/* Write a record's header: backref and size word (size | ZS_PACK_DEAD). */
static inline void rec_put(const struct uz_allocator *a, uint8_t *rec, uint32_t backref, uint16_t sz)
{
    if (a->pack_hdr == ZS_PACK_HDR) {
        memcpy(rec, &backref, sizeof backref);
        memcpy(rec + 4, &sz, sizeof sz);
        return;
    }
    uint64_t w = (uint64_t)(sz & ZS_PACK_SIZE) | (uint64_t)(sz & ZS_PACK_DEAD ? 1 : 0) << 12 |
                 (uint64_t)(backref & (ZS_PACK_SHORT_LIMIT - 1)) << 13 |
                 (uint64_t)(backref >> 31) << 39;
    for (int i = 0; i < 5; i++)
        rec[i] = (uint8_t)(w >> (8 * i));
}

#define CHECK(cond, ...) do { if (!(cond)) return uz_error(-EFAULT, "zsmalloc check: " __VA_ARGS__); } while (0)

/* ---- zsmalloc.c, for zspack.c ------------------------------------------- */

/* Account n more committed pages, unless fault injection or the limit
 * says no; give them back. */
bool zs_pages_reserve(struct uz_allocator *a, uint32_t n);
void zs_pages_unreserve(struct uz_allocator *a, uint32_t n);
/* A run of n arena pages and a descriptor id for it; give it back
 * (arena_lock held). */
bool zs_run_get(struct uz_allocator *a, uint32_t n, uint32_t *out);
void zs_run_put(struct uz_allocator *a, uint32_t id, uint32_t n);
/* Fullness band lists of cl (its lock held; the pack's: pack.lock). */
void zs_band_add(struct uz_allocator *a, struct zs_class *cl, uint32_t id, uint8_t g);
void zs_band_del(struct uz_allocator *a, struct zs_class *cl, uint32_t id);
/* Class cl locked: a free cell on committed pages; a cell even if that
 * commits a page (and, if create, a new zspage); whether cl (with extra
 * more bytes) is dense. */
bool zs_take_committed(struct uz_allocator *a, struct zs_class *c2, size_t size, uint32_t backref,
                       uint64_t *handle);
int zs_class_carve(struct uz_allocator *a, struct zs_class *cl, size_t size, uint32_t backref,
                   uint64_t *handle, bool create);
bool zs_class_dense(struct uz_allocator *a, struct zs_class *cl, size_t extra);
void *zs_map(struct uz_allocator *a, uint64_t h);

/* ---- zspack.c, for zsmalloc.c ------------------------------------------- */

void zs_pack_init(struct uz_allocator *a);
void zs_pack_fini(struct uz_allocator *a);
/* An object of size bytes (<= huge_max) in the pack; -ENOMEM. */
int zs_pack_alloc(struct uz_allocator *a, size_t size, uint32_t backref, uint64_t *handle);
void zs_pack_free(struct uz_allocator *a, uint32_t id, uint32_t off);
void zs_pack_set_backref(struct uz_allocator *a, uint32_t id, uint32_t off, uint32_t backref);
uint32_t zs_pack_backref(struct uz_allocator *a, uint32_t id, uint32_t off);
/* Clean the pack until *work reaches max_pages (0: no bound); returns the
 * pages released. */
uint64_t zs_pack_compact(struct uz_allocator *a, uint64_t max_pages, uint64_t *work);
/* Verify the pack (every lock held); *runs = pack runs found. */
int zs_pack_check(struct uz_allocator *a, uint64_t *runs);

/* A pack record's payload and size: no lock (the owner holds the object). */
static inline void *zs_pack_map(struct uz_allocator *a, const struct zspage *z, uint32_t off)
{
    return zs_base(a, z) + off + a->pack_hdr;
}

static inline size_t zs_pack_size(struct uz_allocator *a, const struct zspage *z, uint32_t off)
{
    return rec_sz(a, zs_base(a, z) + off) & ZS_PACK_SIZE;
}

#endif
