/*
 * store.h - the device's internal layout, shared by store.c (the data
 * path) and attr.c (the attribute table).  Not public.
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

/*
 * A slot: 12 bytes per 4 KiB page of the disk.
 *
 *   flags   bit 0        LOCK     the slot's lock (futex word)
 *           bit 1        WAITERS  someone sleeps on the lock
 *           bits 2..10   SLOT_* state flags
 *           bits 11..31  atime: last access, seconds on the device clock
 *                        modulo 2^21 (24 days), for idle tracking
 *   handle  (two 32-bit halves, so the entry needs only 4-byte alignment)
 *           allocator handle, or the fill word of a same-filled page
 *
 * The object's compressed size is not kept here: the allocator knows it
 * exactly (obj_size), and a raw (huge) page is 4096 bytes.  That keeps the
 * entry at 12 bytes where zram has 16, which is a quarter of a percent of
 * the compressed data saved on every device.
 *
 * A slot is empty when no state flag is set: it reads as zeros.  A slot
 * with an object or a same fill is "live" in the varray.
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
#define SLOT_RECOMP   (1u << 8)   /* compressed by a secondary algorithm */
#define SLOT_PRIO_SHIFT 9         /* bits 9..10: algorithm priority */
#define SLOT_PRIO_MASK  (3u << SLOT_PRIO_SHIFT)
#define SLOT_ATIME_SHIFT 11
#define SLOT_ATIME_MASK  (~0u << SLOT_ATIME_SHIFT)
#define SLOT_LOCKBITS (SLOT_LOCK | SLOT_WAITERS)
#define SLOT_STATE    (((1u << SLOT_ATIME_SHIFT) - 1) & ~SLOT_LOCKBITS)

static inline uint64_t slot_handle(const struct uz_slot *s)
{
    return (uint64_t)s->handle_hi << 32 | s->handle_lo;
}

static inline void slot_set_handle(struct uz_slot *s, uint64_t h)
{
    s->handle_lo = (uint32_t)h;
    s->handle_hi = (uint32_t)(h >> 32);
}

/* The atime field of a flags word, in device-clock seconds mod 2^21. */
static inline uint32_t slot_atime(uint32_t flags) { return flags >> SLOT_ATIME_SHIFT; }

struct uz_counters {
    _Atomic uint64_t pages_stored;     /* live pages (objects + same) */
    _Atomic uint64_t compr_bytes;
    _Atomic uint64_t same_pages;
    _Atomic uint64_t huge_pages;
    _Atomic uint64_t huge_pages_since;
    _Atomic uint64_t mem_used_max;     /* pages */
    _Atomic uint64_t failed_reads, failed_writes, invalid_io, notify_free;
    _Atomic uint64_t reads, writes;
    _Atomic uint64_t miss_free, writestall;
    _Atomic uint64_t frees;            /* objects freed: what fragments memory */
    _Atomic uint64_t compact_steps, compact_pause_max_ns;
};

struct uzram {
    /* Held for reading by every data-path call, for writing by
     * initialisation and reset: a device cannot vanish under I/O. */
    pthread_rwlock_t init_lock;
    bool initialised;

    /* configuration (kept across reset) */
    char algorithm[32];
    int level;
    char allocator_name[32];
    uint32_t huge_threshold_cfg;
    unsigned nstreams;

    /* live device, valid while initialised */
    uint64_t disksize;
    uint64_t nslots;
    uint32_t huge_threshold;           /* compressed >= this: store raw */
    struct uz_varray slots;
    const struct uz_alloc_ops *aops;
    struct uz_allocator *alloc;
    struct uz_streams streams;
    _Atomic uint64_t limit_pages;      /* mem_limit in pages, 0 = none */
    _Atomic uint32_t compact_bound;    /* per mille of compr; 0 = off */
    _Atomic bool compacting;           /* an automatic step is running */
    _Atomic uint64_t compact_retry_at; /* frees count before which not to retry */
    struct uz_counters c;
    uint64_t epoch;                    /* device clock origin, CLOCK_MONOTONIC s */
};

/* The device clock, seconds since creation. */
uint32_t uz_now(const struct uzram *dev);

/* (Re)initialise a device to disksize bytes with the current config, or
 * tear it down.  Caller holds init_lock for writing. */
int uz_dev_init(struct uzram *dev, uint64_t disksize);
void uz_dev_teardown(struct uzram *dev);
/* Everything the live device holds, in bytes (as uzram_stats.footprint),
 * given the allocator's stats. */
uint64_t uz_footprint(struct uzram *dev, const struct uz_alloc_stats *as);

/* mem_used_max := current use (what writing 0 to mem_used_max does). */
void uz_mem_used_max_reset(struct uzram *dev);

#endif
