/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store.h - the store's state: the slot format, the counters, struct
 * uz_store (where pages live) and struct uzram (a device, a range of a
 * store).  Types only: every layer of the store includes it, and each
 * layer declares its functions in its own header (src/README.md lists the
 * layers and the lock order).  Not public.
 */
#ifndef UZRAM_STORE_H
#define UZRAM_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "uzram.h"
#include "alloc.h"
#include "codec.h"
#include "streams.h"
#include "varray.h"
#include "backing.h"

/*
 * A slot: 12 bytes per 4 KiB page of the disk.
 *
 *   flags   bit 0        LOCK     the slot's lock (futex word)
 *           bit 1        WAITERS  someone sleeps on the lock
 *           bits 2..11   SLOT_* state flags (bit 11: SLOT_GROUP)
 *           bits 12..31  atime: last access, seconds on the device clock
 *                        modulo 2^20 (12 days), for idle tracking
 *   handle  (two 32-bit halves, so the entry needs only 4-byte alignment)
 *           allocator handle, or the fill word of a same-filled page
 *
 * The object's compressed size is not kept here: the allocator knows it
 * exactly (obj_size), and a raw (huge) page is 4096 bytes.  That keeps the
 * entry at 12 bytes where zram has 16, which is a quarter of a percent of
 * the compressed data saved on every device.
 *
 * A slot is empty when no state flag is set: it reads as zeros.  A slot
 * with an object, a same fill, a backing block or a group membership is
 * "live" in the varray.
 *
 * A written-back slot (SLOT_WB) holds no object: its handle is
 *   bits 0..47   the backing block number
 *   bits 48..60  the compressed size of what the block holds, 0 = the raw
 *                page; a compressed block decompresses with the algorithm
 *                of the slot's priority bits.
 *
 * A group member (SLOT_GROUP, group.c): K = 2, 4 or 8 aligned slots
 * [K*g, K*g+K) whose pages were compressed together as one stream of K*4096
 * bytes.  The stream is cut into chunks of 4096 bytes (the last one
 * shorter); chunk j is an ordinary allocator object whose handle is in slot
 * K*g+j and whose backref is that slot (0 in the slots past the last chunk:
 * no allocator hands out handle 0).  Every member carries SLOT_GROUP, log2 K
 * in bits 2..3 (SLOT_GK_MASK, which are SAME and HUGE in other slots: test
 * SLOT_GROUP first), the priority bits of the group's algorithm, and its
 * own IDLE bit and atime.  It never carries OBJ, SAME, HUGE or WB, so code
 * that looks for those (writeback, per-page recompression) passes groups
 * by.  Each member counts as one stored page and its chunk's bytes in
 * compr_data_size.  Group state is read and changed only with all K slot
 * locks held, taken in ascending order.
 *
 * A shared slot (SLOT_SHARED, shared.c): its page is stored once for
 * several slots, in a shared record; the handle is the record's id.  It
 * carries SLOT_SHARED, its own IDLE bit and atime, nothing else: what the
 * page is (object, huge, priority, incompressible, written back) is the
 * record's state, which has the layout of a slot's.  A secondary
 * algorithm's work is the priority bits alone (1..3): no separate flag.
 *
 * atime wraps every 2^20 s (12.1 days): the age of a slot is
 * (now - atime) mod 2^20, so a page left untouched for longer than that
 * looks younger than it is (at worst, it is written back or recompressed
 * later than asked; "idle all" is unaffected).  Idle ages are limited to
 * less than 2^20 s.
 */
struct uz_slot {
    _Atomic uint32_t flags;
    uint32_t handle_lo, handle_hi;
};

#define SLOT_LOCK     (1u << 0)
#define SLOT_WAITERS  (1u << 1)
#define SLOT_SAME     (1u << 2)   /* handle is the fill word */
#define SLOT_HUGE     (1u << 3)   /* object is the raw page */
#define SLOT_OBJ      (1u << 4)   /* handle is an allocator object */
#define SLOT_IDLE     (1u << 5)
#define SLOT_INCOMP   (1u << 6)   /* no algorithm could shrink it */
#define SLOT_WB       (1u << 7)   /* lives on the backing device */
#define SLOT_SHARED   (1u << 8)   /* handle is a shared record's id (shared.c) */
#define SLOT_PRIO_SHIFT 9         /* bits 9..10: algorithm priority */
#define SLOT_PRIO_MASK  (3u << SLOT_PRIO_SHIFT)
#define SLOT_GROUP    (1u << 11)  /* member of a compressed group (group.c) */
#define SLOT_GK_SHIFT 2           /* with SLOT_GROUP: log2 of the group's pages */
#define SLOT_GK_MASK  (3u << SLOT_GK_SHIFT)
#define SLOT_ATIME_SHIFT 12
#define SLOT_ATIME_MASK  (~0u << SLOT_ATIME_SHIFT)
#define SLOT_LOCKBITS (SLOT_LOCK | SLOT_WAITERS)
#define SLOT_STATE    (((1u << SLOT_ATIME_SHIFT) - 1) & ~SLOT_LOCKBITS)
#define SLOT_ATIME_WRAP (1u << (32 - SLOT_ATIME_SHIFT))

#define WB_BLK_MASK  ((1ull << 48) - 1)
#define WB_LEN_SHIFT 48

#define UZ_NR_SECONDARY 3               /* recompression priorities 1..3 */

static inline uint64_t slot_handle(const struct uz_slot *s)
{
    return (uint64_t)s->handle_hi << 32 | s->handle_lo;
}

static inline void slot_set_handle(struct uz_slot *s, uint64_t h)
{
    s->handle_lo = (uint32_t)h;
    s->handle_hi = (uint32_t)(h >> 32);
}

/* The atime field of a flags word, in device-clock seconds mod 2^20. */
static inline uint32_t slot_atime(uint32_t flags) { return flags >> SLOT_ATIME_SHIFT; }

/* Seconds since the slot (flags word f) was last accessed, mod 2^20. */
static inline uint32_t slot_age(uint32_t f, uint32_t now)
{
    return (now - slot_atime(f)) & (SLOT_ATIME_WRAP - 1);
}

static inline uint32_t slot_prio(uint32_t f)
{
    return (f & SLOT_PRIO_MASK) >> SLOT_PRIO_SHIFT;
}

/* Pages in the group of a SLOT_GROUP slot (flags word f). */
static inline uint32_t slot_group_pages(uint32_t f)
{
    return 1u << ((f & SLOT_GK_MASK) >> SLOT_GK_SHIFT);
}

/* The SLOT_GROUP | size bits of a member of a group of k pages. */
static inline uint32_t slot_group_bits(uint32_t k)
{
    return SLOT_GROUP | (uint32_t)__builtin_ctz(k) << SLOT_GK_SHIFT;
}

#define UZ_GROUP_MAX 8u                 /* largest group, in pages */

enum { UZ_DEDUP_OFF = 0, UZ_DEDUP_ON = 1, UZ_DEDUP_AUTO = 2 };

/* The content counters: what the slot table holds.  Written by
 * uz_slot_commit (slot.c) and the shared records' changes (shared.c)
 * alone, read through uz_tally_read.  A shared record's page counts once
 * in compr_bytes, huge_pages and wb_pages, and once per slot that refers
 * to it in pages_stored (while in RAM). */
struct uz_tally {
    _Atomic uint64_t pages_stored;     /* pages in RAM (objects, same, group members, shared) */
    _Atomic uint64_t compr_bytes;      /* bytes of their objects */
    _Atomic uint64_t same_pages;
    _Atomic uint64_t huge_pages;
    _Atomic uint64_t huge_pages_since; /* huge objects ever stored */
    _Atomic uint64_t group_members;    /* slots in compressed groups */
    _Atomic uint64_t wb_pages;         /* pages (blocks) on the backing device */
    _Atomic uint64_t frees;            /* objects freed: what fragments memory */
    _Atomic uint64_t shared_slots;     /* slots that refer to a shared record */
    _Atomic uint64_t records;          /* live shared records */
    _Atomic uint64_t saved_bytes;      /* compressed bytes sharing saves: sum of
                                        * (refs - 1) * bytes over records in RAM */
    _Atomic uint64_t record_bytes;     /* compressed bytes of records in RAM */
};

/* A shared record (shared.c): one page stored for several slots.  s has
 * a slot's layout (lock bits, state, handle); refs counts the slots whose
 * handle is this record's id.  16 bytes; only pages that are shared have
 * one. */
struct uz_shared {
    struct uz_slot s;
    uint32_t refs;
};

struct uz_dedup;

/* The block layer's counters of the data path (iostat.c), by group. */
enum { UZ_IO_READ, UZ_IO_WRITE, UZ_IO_DISCARD, UZ_IO_FLUSH, UZ_IO_GROUPS };
struct uz_iostat {
    _Atomic uint64_t ios[UZ_IO_GROUPS];       /* requests completed */
    _Atomic uint64_t sectors[UZ_IO_GROUPS];   /* 512-byte sectors */
    _Atomic uint64_t ticks_ns[UZ_IO_GROUPS];  /* time spent on them */
    _Atomic uint64_t in_flight;
    _Atomic uint64_t busy_since_ns;           /* when in_flight left 0 */
    _Atomic uint64_t io_ticks_ns;             /* time with requests in flight */
};

/* Event counters: each is counted where its event happens. */
struct uz_events {
    _Atomic uint64_t mem_used_max;     /* pages (a high-water mark) */
    _Atomic uint64_t failed_reads, failed_writes, invalid_io, notify_free;
    _Atomic uint64_t reads, writes;
    _Atomic uint64_t miss_free, writestall;
    _Atomic uint64_t compact_steps, compact_pause_max_ns;
    _Atomic uint64_t forwarded;        /* writes sent to the backing device */
    _Atomic uint64_t written_back;     /* pages moved there by writeback */
    _Atomic uint64_t wb_failed;        /* writeback attempts that failed */
    _Atomic uint64_t recompressed;     /* objects replaced by a secondary's */
    _Atomic uint64_t recomp_incomp;    /* pages flagged incompressible */
    _Atomic uint64_t recomp_groups;    /* groups recompressed as a unit */
    _Atomic uint64_t settle_groups;    /* groups made by settling */
    _Atomic uint64_t settle_pages;     /* pages settling regrouped or recompressed */
    _Atomic uint64_t pol_rc_ticks, pol_rc_pages, pol_wb_ticks, pol_wb_pages, pol_wb_errors;
    _Atomic uint64_t pol_rc_ns_max, pol_wb_ns_max;
    _Atomic uint64_t pol_rc_cpu_ns;    /* CPU time of the recompress policy's ticks */
    _Atomic uint64_t pol_rc_yields;    /* its ticks put off for foreground I/O */
    _Atomic uint64_t group_writes;     /* groups stored by whole-group writes */
    _Atomic uint64_t group_breaks;     /* groups broken into single pages */
    _Atomic uint64_t group_fallbacks;  /* whole-group writes stored per page */
};

/* A secondary (recompression) algorithm, by priority 1..3. */
struct uz_recomp_algo {
    char name[32];                     /* "" = none at this priority */
    int level;                         /* 0 = the codec's default */
    struct uz_dict_buf dict;           /* algorithm_params dict= (len 0: none) */
};

/* Automatic policies (policy.c); 0 fields = off. */
struct uz_policy_cfg {
    uint32_t idle_secs;                /* pages idle at least this long */
    uint32_t prio;                     /* recompress: secondary to use */
    uint32_t group;                    /* recompress: pages per group (1 = per page) */
    uint64_t above;                    /* writeback: only while footprint > above */
    uint64_t max_pages;                /* work per tick */
    uint32_t period_ms;                /* tick period */
    bool settle;                       /* recompress: settle (recompress.c) */
    uint32_t cpu_pct;                  /* CPU bound, % of one core; 0 = none */
    bool on;
};

struct uz_backing;
struct uz_policy;
struct uzram_pool;

/*
 * Clone units (clone.c).  A pool's store is cut into units of
 * UZ_UNIT slots (two table pages, a whole number of the largest group);
 * device ranges start on a unit.  A clone's unit reads through to the
 * unit it was cloned from wherever its own slot is empty: link[u] names
 * (plus one) that unit, and deps[t] counts the units linked to t.  Both
 * arrays are address space reserved for the whole capacity; only the
 * pages of them in use are resident.  A unit with units linked to it
 * keeps the bytes it holds and its groups as they are (recompress does
 * not regroup it).
 */
#define UZ_UNIT 680u
#define UZ_LINK_STRIPES 64u
struct uz_links {
    uint64_t nunits;
    _Atomic uint32_t *link;            /* unit -> target unit + 1; 0: its own */
    _Atomic uint32_t *deps;            /* unit -> units linked to it */
    /* Held for reading while a read goes through a link to unit t, for
     * writing while a unit linked to t gets slots of its own: stripe
     * t % UZ_LINK_STRIPES. */
    pthread_rwlock_t stripe[UZ_LINK_STRIPES];
};

/*
 * Zones: a pool device's own content counters, so that its stats, a
 * getattr of its disk and the pool's stats cost O(1) per device, not a
 * recount of its range.  of_unit[u] names (plus one) the device whose
 * range holds unit u (set when it is sized, cleared when it is reset);
 * uz_slot_commit and uz_shared_make keep zone[id] beside the store's
 * tally for every slot they change.  A slot of the zone counts
 *   pages_stored  if it holds a page in RAM of its own (object, same
 *                 fill, group member) or refers to a shared record;
 *   compr_bytes   the bytes of the objects it owns (not of records);
 *   same_pages, huge_pages, shared_slots  as the tally does;
 * and linked counts the pages the device reads through clone links: the
 * target's slots that hold a page where the device's own slot is empty,
 * linked_same the same-filled ones among them (a target never gains or
 * loses a page, nor changes a same fill, while linked: clone.c).
 * dep_bytes is the part of compr_bytes in units that clones read
 * through to: the pool's shared bytes are the records' and these.
 * uz_clone_check verifies every zone against a recount (P6).
 */
struct uz_zone {
    _Atomic uint64_t pages_stored;
    _Atomic uint64_t compr_bytes;
    _Atomic uint64_t same_pages;
    _Atomic uint64_t huge_pages;
    _Atomic uint64_t shared_slots;
    _Atomic uint64_t linked;
    _Atomic uint64_t linked_same;      /* of those, same-filled pages */
    _Atomic uint64_t dep_bytes;        /* compr_bytes in its units that units are linked to */
};
struct uz_zones {
    _Atomic uint16_t *of_unit;         /* unit -> device id + 1; 0: no device */
    struct uz_zone *zone;              /* by device id */
};

/*
 * struct uz_store is where pages live: the slot table, allocator,
 * streams, shared records, content index, memory limit, backing device
 * and policies, with the settings they are made with.  Layers 1-3 are
 * handed a store and store slot numbers, and know nothing of devices.
 *
 * struct uzram is a device: a range [base, base + nslots) of a store,
 * with its own init lock, open count, size, the events of its own data
 * path and its block-layer counters.  uzram_create makes a device on a
 * store of its own (base 0, the store's whole table); a pool (pool.c) is
 * one store with many devices.  Layer 4 (io.c, device.c, pool.c) and
 * attr.c translate device pages to store slots.
 */
struct uz_store {
    /* Held for reading by every data-path call (under the device's
     * init_lock), for writing while the store's live part is made or
     * torn down, by uzram_check, and while a clone's links are made.  A
     * policy tick only tries it. */
    pthread_rwlock_t init_lock;
    bool initialised;                  /* the live part below exists */
    struct uzram_pool *pool;           /* NULL: a device's own store */
    struct uz_links *links;            /* a pool's: clone units (clone.h) */
    struct uz_zones *zones;            /* a pool's: its devices' counters */
    /* Its devices (store_life.c), by id: max_devices of them (1 in a
     * device's own store).  A device's range is [base, base + nslots) of
     * the store.  dev_lock guards the table, the devices' holds and
     * ranges; it is held only to read or change them, never across I/O
     * or while an init_lock is waited for. */
    pthread_mutex_t dev_lock;
    unsigned max_devices;
    struct uzram **dev;
    struct uz_range { uint64_t lo, hi; } *ranges; /* scratch, dev_lock */
    /* Slots the live part is made for, 0: a device's own store, whose
     * live part is made for its device's size and dropped at its reset. */
    uint64_t capacity;

    /* configuration (kept across reset) */
    char algorithm[32];
    int level;
    struct uz_dict_buf dict;           /* the primary's algorithm_params dict= (len 0: none) */
    char allocator_name[32];
    uint32_t huge_threshold_cfg;
    unsigned nstreams;
    uint32_t group_pages;              /* 1 = off; 2, 4, 8: whole-group writes
                                        * (auto: 8, the largest a write forms) */
    bool group_auto;                   /* group_pages auto: each write chooses */
    struct uz_recomp_algo recomp_algo[UZ_NR_SECONDARY]; /* the secondaries chosen */
    _Atomic bool wb_compressed;        /* write back / forward compressed */
    _Atomic uint32_t wb_batch;         /* writeback_batch_size: pages a batch of a
                                        * writeback run holds (1..UZ_WB_BATCH_MAX) */
    _Atomic uint32_t forward_threshold; /* compressed >= this: forward; 0 = off */
    _Atomic bool wb_limit_enable;
    _Atomic uint64_t wb_limit;         /* 4 KiB pages writeback may still write */
    struct uz_policy_cfg rc_policy, wb_policy; /* guarded by policy_lock */
    pthread_mutex_t policy_lock;
    struct uz_policy *policy;          /* the thread, while one runs */
    /* The backing device: set while uninitialised, closed on reset.  NULL
     * = none.  Changed only under init_lock held for writing. */
    struct uz_backing *bd;
    _Atomic int dedup_mode;            /* UZ_DEDUP_* (kept across reset) */
    _Atomic uint64_t limit_pages;      /* mem_limit in pages, 0 = none */
    _Atomic uint32_t compact_bound;    /* per mille of compr; 0 = off */

    /* live part, valid while initialised */
    /* Slots in use: a device's own store's, its device's; a pool's, the
     * end of the highest device range (scans stop there; the table has
     * room for the pool's capacity).  Atomic: a pool grows it beside
     * scans. */
    _Atomic uint64_t nslots;
    uint32_t huge_threshold;           /* compressed >= this: store raw */
    struct uz_varray slots;
    const struct uz_alloc_ops *aops;
    struct uz_allocator *alloc;
    struct uz_streams streams;
    struct uz_streams recomp_streams[UZ_NR_SECONDARY]; /* their streams; n == 0: none made yet
                                        * (made by the first recompression: recompress.c) */
    _Atomic bool recomp_ready[UZ_NR_SECONDARY]; /* streams made and sized for groups */
    pthread_mutex_t recomp_lock;       /* making / resting them; recomp_users */
    unsigned recomp_users;             /* recompressions running (recomp_lock) */
    _Atomic uint64_t recomp_bytes[UZ_NR_SECONDARY]; /* what their streams hold, for the
                                        * footprint (set under recomp_lock) */
    _Atomic bool compacting;           /* an automatic step is running */
    _Atomic uint64_t compact_retry_at; /* frees count before which not to retry */
    struct uz_tally tally;             /* slot.c's and shared.c's alone */
    struct uz_varray records;          /* shared records, by id */
    struct uz_sparsebits record_ids;   /* ids in use */
    _Atomic uint64_t record_hw;        /* no record id at or above this was used */
    struct uz_dedup *dedup;            /* the content index (dedup.c), NULL = none */
    struct uz_events ev;               /* what layers 1-3 count */
    uint64_t epoch;                    /* the store's clock origin, CLOCK_MONOTONIC s */
};

struct uzram {
    struct uz_store *store;            /* where its pages are */
    struct uzram_pool *pool;           /* NULL: its store is its own */
    uint64_t base;                     /* its first slot in store */
    int id;                            /* its number in the pool */
    unsigned holds;                    /* uzram_pool_get holds (the store's dev_lock) */

    /* Held for reading by every data-path call, for writing by
     * initialisation and reset: a device cannot vanish under I/O. */
    pthread_rwlock_t init_lock;
    bool initialised;
    /* Users that have the disk open (uzram_open): while any does, the
     * attribute stores that reshape the device fail with EBUSY, as zram's
     * do while the block device is open.  Changed with init_lock held for
     * reading, tested with it held for writing. */
    _Atomic unsigned opens;

    uint64_t disksize;
    _Atomic uint64_t nslots;           /* its range's length */
    struct uz_events ev;               /* what its own data path counts (io.c) */
    struct uz_iostat iostat;           /* the "stat" attribute (kept across reset, as a disk's) */
};

#endif
