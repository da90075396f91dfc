/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * io.c - layer 4 of the store (src/README.md): the public data path,
 * uzram_read / write / discard / write_zeroes / flush / page_state.
 *
 * Each call holds init_lock for reading (a device cannot be reset under
 * I/O), checks the range, and walks it page by page: a whole page goes to
 * page.c under its slot lock, part of a page is a read-modify-write
 * (uz_patch_page), and a page found in a compressed group is handed to
 * group.c, which locks the whole group.  With group_pages K > 1, a write
 * that covers an aligned group goes to uz_group_write whole.  With
 * group_pages auto the group is chosen per request and position
 * (group_fit): the largest aligned group of 8, 4 or 2 pages the request
 * covers, else single pages, so a large sequential write is compressed in
 * groups and a small random one is stored page by page, with no
 * read-modify-write of a group unless it lands in one already stored.
 * With K = 1 (the library's default) the data path pays one predictable
 * branch per page for groups.  After a write or discard, auto-compaction may run a bounded
 * step (device.c).
 *
 * A device of a pool (pool.c) is a range of its pool's store: page
 * numbers here are the store's (dev->base + the device's page), and the
 * layers below are handed the store; the device's own counters (reads,
 * writes, invalid I/O, stat) stay the device's.
 *
 * Locking: init_lock (read; a pool device's, then its store's) -> slot
 * lock(s); src/README.md has the order.
 */
#define _GNU_SOURCE
#include "device.h"
#include "clone.h"
#include "iostat.h"
#include "group.h"
#include "dedup.h"
#include "page.h"
#include "error.h"

#include <errno.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE

/* --------------------------------------------------------- range checks */

static int check_range(struct uzram *dev, size_t len, uint64_t off, const char *what)
{
    if (!dev->initialised)
        return uz_error(-ENXIO, "%s: device is not initialised (set disksize)", what);
    if (off > dev->disksize || len > dev->disksize - off) {
        atomic_fetch_add_explicit(&dev->ev.invalid_io, 1, memory_order_relaxed);
        return uz_error(-EINVAL, "%s: range [%llu, +%zu) is outside the %llu-byte disk", what,
                        (unsigned long long)off, len, (unsigned long long)dev->disksize);
    }
    return 0;
}

/* True if the slot is empty; read without the lock (a racing writer is
 * ordered after this read).  Touching an empty table page this way maps
 * nothing. */
static bool slot_empty_racy(struct uz_store *dev, uint64_t idx)
{
    return (atomic_load_explicit(&uz_slot_at(dev, idx)->flags, memory_order_acquire) &
            (SLOT_STATE | SLOT_LOCKBITS)) == 0;
}

/* ---------------------------------------------------------- public I/O */

/* Read from store slot idx: *n bytes from byte in of its page into out
 * (a member of a compressed group may serve more, up to len: *n says
 * how much). */
static int read_slot(struct uz_store *st, uint64_t idx, size_t in, size_t len, uint8_t *out, size_t *n)
{
    uint32_t f = atomic_load_explicit(&uz_slot_at(st, idx)->flags, memory_order_acquire);
    if ((f & (SLOT_STATE | SLOT_LOCKBITS)) == 0) {
        memset(out, 0, *n);
        return 0;
    }
    int err = 0;
    bool group = f & SLOT_GROUP;
    if (!group) {
        struct uz_slot *s = uz_slot_get(st, idx);
        group = uz_slot_state(s) & SLOT_GROUP;
        if (!group)   /* (a group member: the whole group is locked in group.c) */
            err = uz_read_part(st, idx, s, in, *n, out);
        uz_slot_put(st, idx, s);
    }
    if (__builtin_expect(group, 0))
        err = uz_group_read(st, idx * PAGE + in, len, out, n);
    return err;
}

/* The same, for a device of a pool whose unit may read through a link to
 * a clone's source unit (clone.h): under the target's stripe lock, which
 * holds off its unlinking. */
static int read_linked(struct uz_store *st, uint64_t idx, uint32_t l, size_t in, size_t len,
                       uint8_t *out, size_t *n)
{
    pthread_rwlock_t *lk = uz_link_lock(st, l - 1);
    pthread_rwlock_rdlock(lk);
    int err;
    uint32_t own = atomic_load_explicit(&uz_slot_at(st, idx)->flags, memory_order_acquire) &
                   (SLOT_STATE | SLOT_LOCKBITS);
    if (uz_link_of(st, idx) == l && !own)
        err = read_slot(st, (uint64_t)(l - 1) * UZ_UNIT + idx % UZ_UNIT, in, len, out, n);
    else
        err = read_slot(st, idx, in, len, out, n);   /* its own page (a write may be racing) */
    pthread_rwlock_unlock(lk);
    return err;
}

static int do_read(struct uzram *dev, void *buf, size_t len, uint64_t off)
{
    uz_dev_read_lock(dev);
    struct uz_store *st = dev->store;
    const uint64_t base = dev->base;
    const bool pool = uz_store_links(st);
    int err = check_range(dev, len, off, "read");
    uint8_t *out = buf;
    while (err == 0 && len > 0) {
        uint64_t idx = base + off / PAGE;
        size_t in = off % PAGE;
        size_t n = PAGE - in < len ? PAGE - in : len;
        uint32_t l = pool ? uz_link_of(st, idx) : 0;
        if (__builtin_expect(l != 0, 0))
            err = read_linked(st, idx, l, in, len, out, &n);
        else
            err = read_slot(st, idx, in, len, out, &n);
        atomic_fetch_add_explicit(&dev->ev.reads, (in + n + PAGE - 1) / PAGE, memory_order_relaxed);
        out += n;
        off += n;
        len -= n;
    }
    uz_dev_read_unlock(dev);
    return err;
}

/* Write n bytes at offset in within page idx (n < PAGE or unaligned):
 * read-modify-write under the slot lock.  src == NULL writes zeros.  A
 * group member is left to group.c; *done is the bytes handled. */
static int write_partial(struct uz_store *dev, uint64_t idx, size_t in, size_t n, const uint8_t *src,
                         size_t len, size_t *done)
{
    struct uz_slot *s = uz_slot_get(dev, idx);
    if (__builtin_expect(uz_slot_state(s) & SLOT_GROUP, 0)) {
        uz_slot_put(dev, idx, s);
        return uz_group_update(dev, idx * PAGE + in, len, src, src == NULL, done);
    }
    *done = n;
    int err = uz_patch_page(dev, idx, s, in, n, src);
    uz_slot_put(dev, idx, s);
    return err;
}

/* The group a write of len bytes at off starts with, in pages (1 = none):
 * with group_pages K, K if the write covers the aligned group at off;
 * in auto mode (K = 8 then), the largest of 8, 4 and 2 whose aligned
 * group at off the write covers.  A write smaller than two pages, or not
 * aligned to two, is single pages either way.  Auto makes no groups on a
 * device with a backing device: groups are never written back, and a
 * user who set one wants idle pages to leave RAM. */
static inline uint32_t group_fit(const struct uz_store *dev, uint32_t k, size_t len, uint64_t off)
{
    if (!dev->group_auto)
        return len >= (size_t)k * PAGE && off % ((uint64_t)k * PAGE) == 0 ? k : 1;
    if (dev->bd)
        return 1;
    for (; k > 1; k >>= 1)
        if (len >= (size_t)k * PAGE && off % ((uint64_t)k * PAGE) == 0)
            return k;
    return 1;
}

/* A store with clone links, before a change of store slot idx: in a
 * clone's unit a whole page (whole_page) goes to the unit's own slot,
 * with the target's stripe lock held for reading until the page is
 * committed (*lk, which the caller unlocks: settling regroups a target
 * only under it for writing, clone.h); anything else first gives the
 * unit, or the units linked to this one, slots of their own.  0 or
 * uz_clone_prepare_write's error. */
static int pool_prepare(struct uz_store *st, uint64_t idx, bool whole_page, pthread_rwlock_t **lk)
{
    *lk = NULL;
    if (uz_clone_write_prepared(st, idx))
        return 0;
    uint32_t l = whole_page ? uz_link_of(st, idx) : 0;
    if (l) {
        pthread_rwlock_t *k = uz_link_lock(st, l - 1);
        pthread_rwlock_rdlock(k);
        if (uz_clone_write_direct(st, idx)) {
            *lk = k;
            return 0;
        }
        pthread_rwlock_unlock(k);
    }
    return uz_clone_prepare_write(st, idx);
}

/* A whole-group write of k pages at store slot idx.  With dedup on or
 * auto, each page is first looked up (uz_dedup_probe): a group without a
 * page the index may hold is stored whole; one with such pages is cut in
 * aligned halves until each part is free of them (stored as a group) or a
 * single page (stored on its own, where the lookup makes it a reference).
 * So the pages already stored are shared and the rest still grouped. */
static int write_groups(struct uz_store *st, uint64_t idx, uint32_t k, const uint8_t *src)
{
    uint32_t hits = 0;
    if (atomic_load_explicit(&st->dedup_mode, memory_order_relaxed) != UZ_DEDUP_OFF)
        for (uint32_t j = 0; j < k; j++)
            if (uz_dedup_probe(st, src + (size_t)j * PAGE))
                hits |= 1u << j;
    if (hits == 0)
        return uz_group_write(st, idx, k, src);
    if (k == 1) {
        struct uz_slot *s = uz_slot_get(st, idx);
        int err;
        if (uz_slot_state(s) & SLOT_GROUP) {
            size_t n;
            uz_slot_put(st, idx, s);
            err = uz_group_update(st, idx * PAGE, PAGE, src, false, &n);
        } else {
            err = uz_write_page(st, idx, s, src, NULL);
            uz_slot_put(st, idx, s);
        }
        return err;
    }
    int err = write_groups(st, idx, k / 2, src);
    return err < 0 ? err : write_groups(st, idx + k / 2, k / 2, src + (size_t)(k / 2) * PAGE);
}

static int do_write(struct uzram *dev, const void *buf, size_t len, uint64_t off)
{
    uz_dev_read_lock(dev);
    struct uz_store *st = dev->store;
    const uint64_t base = dev->base;
    const bool pool = uz_store_links(st);
    int err = check_range(dev, len, off, "write");
    const uint8_t *src = buf;
    /* group mode: whole aligned groups go to group.c (write_groups).
     * With dedup on or auto, group_pages auto stores single pages, each
     * looked up and indexed, and settling makes the groups later
     * (recompress.c); so does a store whose dedup was on at disksize
     * (its streams have no group scratch: store_life.c).  group_pages K
     * looks each page of a group up first (write_groups).  A pool's
     * ranges start at a multiple of 8 pages: groups align alike on the
     * device and in the store. */
    uint32_t gk = st->group_auto && (atomic_load_explicit(&st->dedup_mode, memory_order_relaxed) !=
                                         UZ_DEDUP_OFF || st->streams.gpages == 0)
                      ? 1 : st->group_pages;
    while (err == 0 && len > 0) {
        uint64_t idx = base + off / PAGE;
        size_t in = off % PAGE;
        size_t n = PAGE - in < len ? PAGE - in : len;
        uint32_t k = __builtin_expect(gk > 1, 0) ? group_fit(st, gk, len, off) : 1;
        pthread_rwlock_t *lk = NULL;
        if (pool && (err = pool_prepare(st, idx, k == 1 && n == PAGE, &lk)) < 0)
            break;
        if (k > 1) {
            err = write_groups(st, idx, k, src);
            n = (size_t)k * PAGE;
            atomic_fetch_add_explicit(&dev->ev.writes, k - 1, memory_order_relaxed);
        } else if (n == PAGE) {
            struct uz_slot *s = uz_slot_get(st, idx);
            if (__builtin_expect(uz_slot_state(s) & SLOT_GROUP, 0)) {
                uz_slot_put(st, idx, s);
                err = uz_group_update(st, base * PAGE + off, len, src, false, &n);
                atomic_fetch_add_explicit(&dev->ev.writes, (n + PAGE - 1) / PAGE - 1,
                                          memory_order_relaxed);
            } else {
                err = uz_write_page(st, idx, s, src, NULL);
                uz_slot_put(st, idx, s);
            }
        } else {
            err = write_partial(st, idx, in, n, src, len, &n);
            atomic_fetch_add_explicit(&dev->ev.writes, (in + n + PAGE - 1) / PAGE - 1,
                                      memory_order_relaxed);
        }
        if (lk)
            pthread_rwlock_unlock(lk);
        atomic_fetch_add_explicit(&dev->ev.writes, 1, memory_order_relaxed);
        src += n;
        off += n;
        len -= n;
    }
    if (dev->initialised)
        uz_store_auto_compact(st);
    uz_dev_read_unlock(dev);
    return err;
}

/* Discard and write-zeroes are one operation (zero pages cost nothing);
 * what names it in error messages. */
static int zero_range(struct uzram *dev, size_t len, uint64_t off, const char *what)
{
    uz_dev_read_lock(dev);
    struct uz_store *st = dev->store;
    const uint64_t base = dev->base;
    const bool pool = uz_store_links(st);
    int err = check_range(dev, len, off, what);
    while (err == 0 && len > 0) {
        uint64_t idx = base + off / PAGE;
        size_t in = off % PAGE;
        size_t n = PAGE - in < len ? PAGE - in : len;
        pthread_rwlock_t *lk;
        if (pool && (err = pool_prepare(st, idx, false, &lk)) < 0)
            break;
        if (!slot_empty_racy(st, idx)) {
            if (n == PAGE) {
                struct uz_slot *s = uz_slot_get(st, idx);
                if (__builtin_expect(uz_slot_state(s) & SLOT_GROUP, 0)) {
                    uz_slot_put(st, idx, s);
                    err = uz_group_update(st, base * PAGE + off, len, NULL, true, &n);
                } else {
                    if (uz_slot_state(s))
                        atomic_fetch_add_explicit(&dev->ev.notify_free, 1, memory_order_relaxed);
                    uz_slot_free(st, idx, s);
                    uz_slot_put(st, idx, s);
                }
            } else {
                err = write_partial(st, idx, in, n, NULL, len, &n);
            }
        }
        off += n;
        len -= n;
    }
    if (dev->initialised)
        uz_store_auto_compact(st);
    uz_dev_read_unlock(dev);
    return err;
}

/* The public calls: each one counted for the "stat" attribute (iostat.c;
 * the block layer counts write-zeroes among the writes). */
int uzram_read(struct uzram *dev, void *buf, size_t len, uint64_t off)
{
    uz_error_clear();
    uint64_t t0 = uz_iostat_start(dev);
    return uz_error_done(uz_iostat_done(dev, UZ_IO_READ, len, t0, do_read(dev, buf, len, off)), "uzram_read");
}

int uzram_write(struct uzram *dev, const void *buf, size_t len, uint64_t off)
{
    uz_error_clear();
    uint64_t t0 = uz_iostat_start(dev);
    return uz_error_done(uz_iostat_done(dev, UZ_IO_WRITE, len, t0, do_write(dev, buf, len, off)), "uzram_write");
}

int uzram_discard(struct uzram *dev, size_t len, uint64_t off)
{
    uz_error_clear();
    uint64_t t0 = uz_iostat_start(dev);
    return uz_error_done(uz_iostat_done(dev, UZ_IO_DISCARD, len, t0, zero_range(dev, len, off, "discard")), "uzram_discard");
}

int uzram_write_zeroes(struct uzram *dev, size_t len, uint64_t off)
{
    uz_error_clear();
    uint64_t t0 = uz_iostat_start(dev);
    return uz_error_done(uz_iostat_done(dev, UZ_IO_WRITE, len, t0, zero_range(dev, len, off, "write_zeroes")), "uzram_write_zeroes");
}

/* Nothing inside uzram is volatile: a flush has nothing to do. */
int uzram_flush(struct uzram *dev)
{
    uz_error_clear();
    uint64_t t0 = uz_iostat_start(dev);
    return uz_iostat_done(dev, UZ_IO_FLUSH, 0, t0, 0);
}

int uzram_page_state(struct uzram *dev, uint64_t off)
{
    uz_error_clear();
    uz_dev_read_lock(dev);
    struct uz_store *st = dev->store;
    int rc = check_range(dev, 1, off, "page_state");
    pthread_rwlock_t *lk = NULL;
    if (rc == 0) {
        uint64_t idx = dev->base + off / PAGE;
        uint32_t l = uz_link_of(st, idx);
        if (l) {   /* a clone's unit: its source's page unless it has its own (clone.h) */
            lk = uz_link_lock(st, l - 1);
            pthread_rwlock_rdlock(lk);
            if (uz_link_of(st, idx) == l && slot_empty_racy(st, idx))
                idx = (uint64_t)(l - 1) * UZ_UNIT + idx % UZ_UNIT;
        }
        if (slot_empty_racy(st, idx)) {
            rc = UZRAM_PAGE_ZERO;
        } else {
            struct uz_slot *s = uz_slot_get(st, idx);
            uint32_t f = uz_slot_state(s);
            /* a group member is data, whatever it holds */
            rc = (f == 0 || ((f & (SLOT_SAME | SLOT_GROUP)) == SLOT_SAME && slot_handle(s) == 0))
                     ? UZRAM_PAGE_ZERO : UZRAM_PAGE_DATA;
            uz_slot_put(st, idx, s);
        }
    }
    if (lk)
        pthread_rwlock_unlock(lk);
    uz_dev_read_unlock(dev);
    return uz_error_done(rc, "uzram_page_state");
}
