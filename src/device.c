/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * device.c - layer 4 of the store (src/README.md): struct uzram's one
 * lifecycle, the same for a device on a store of its own and a device of
 * a pool.  New (in its store's table), initialise (disksize: a range of
 * its store), teardown and reset (the range given back), remove; the
 * open count that makes reshaping stores EBUSY while the disk is in use;
 * stats; explicit compaction; the invariant check.  It calls
 * store_life.c and clone.c, never pool.c (pool.c calls it).
 *
 * States.  A device is made uninitialised (uz_dev_new; uzram_create in
 * attr.c applies its config, then sizes it if the config says so).
 * uz_dev_init gives it a range of its store (store_life.c,
 * uz_store_range_get: in a device's own store, the store's live part is
 * made for it); teardown releases the clones linked to the range
 * (clone.c) and gives the range back (uz_store_range_put: every page
 * freed; a device's own store drops its live part and the settings
 * zram's reset clears).  What survives a reset, for a device's own store:
 *
 *   kept      algorithm and level, allocator, huge threshold, streams,
 *             group_pages, secondaries and their levels, auto_compact,
 *             writeback_compressed, writeback_batch_size, forward_threshold, dedup, the
 *             policies' settings (their thread is stopped and restarts at
 *             the next init)
 *   cleared   disksize and everything stored, mem_limit (0: none),
 *             backing_dev (closed, as zram's reset drops it),
 *             writeback_limit and writeback_limit_enable, the counters
 *
 * A pool's settings are the pool's: a reset of one of its devices frees
 * its range and changes none of them.
 *
 * Open count.  uzram_open / uzram_close count the users that have the
 * disk open (a FUSE open of DIR/disk, an NBD connection, a library user
 * that says so).  While it is not 0, reset, disksize, comp_algorithm,
 * algorithm_params, recomp_algorithm (and the other stores that need an
 * uninitialised device) fail with EBUSY, as zram's do while its block
 * device is open (bd_openers).  The count changes under init_lock held
 * for reading and is tested under it held for writing, so a reset cannot
 * race an open.
 *
 * Locking: a device's init_lock, then its store's (src/README.md, "Lock
 * order"; device.h, uz_dev_read_lock and uz_dev_write_lock).
 */
#define _GNU_SOURCE
#include "device.h"
#include "store_life.h"
#include "clone.h"
#include "dedup.h"
#include "shared.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE UZRAM_PAGE_SIZE
/* Back-references are 31 bits (the top bit marks shared objects). */
#define MAX_SLOTS (1ull << 31)


/* ------------------------------------------------------------ lifecycle */

void uzram_config_init_size(struct uzram_config *cfg, size_t size)
{
    struct uzram_config d;
    memset(&d, 0, sizeof d);
    d.size = (uint32_t)(size < sizeof d ? size : sizeof d);
    d.algorithm = "lz4";
    d.allocator = "zsmalloc";
    /* settling: cold pages regrouped and recompressed by themselves */
    d.recomp_algorithm[0] = UZRAM_SETTLE_ALGORITHM;
    d.recompress_policy = UZRAM_SETTLE;
    memcpy(cfg, &d, d.size);
}

int uz_dev_init(struct uzram *dev, uint64_t disksize)
{
    if (disksize > MAX_SLOTS * PAGE)
        return uz_error(-EINVAL, "disksize: at most %llu bytes", MAX_SLOTS * PAGE);
    uint64_t n = (disksize + PAGE - 1) / PAGE;
    if (n == 0)
        return uz_error(-EINVAL, "disksize: must be more than 0");
    int err = uz_store_range_get(dev->store, dev, n);
    if (err == 0)
        memset(&dev->ev, 0, sizeof dev->ev);
    return err;
}

int uz_dev_teardown(struct uzram *dev)
{
    if (!dev->initialised)
        return 0;
    struct uz_store *st = dev->store;
    int err = uz_clone_release(st, dev->base, dev->base + atomic_load(&dev->nslots));
    if (err < 0)
        return err;
    uz_store_range_put(st, dev);
    memset(&dev->ev, 0, sizeof dev->ev);
    return 0;
}

int uz_dev_check_closed(struct uzram *dev, const char *what)
{
    unsigned n = atomic_load(&dev->opens);
    if (n)
        return uz_error(-EBUSY, "%s: the device is open (%u user%s: an open disk, an NBD "
                        "client); close it first", what, n, n == 1 ? "" : "s");
    return 0;
}

int uz_dev_reset(struct uzram *dev)
{
    int err = uz_dev_check_closed(dev, "reset");
    if (err < 0)
        return err;
    return uz_dev_teardown(dev);
}

int uz_dev_new(struct uz_store *st, bool lock_init, struct uzram **out)
{
    struct uzram *d = uz_calloc(1, sizeof *d);
    if (!d)
        return uz_error(-ENOMEM, "out of memory (a device)");
    pthread_rwlock_init(&d->init_lock, NULL);
    d->store = st;
    d->pool = st->pool;
    if (lock_init)
        pthread_rwlock_wrlock(&d->init_lock);
    int err = uz_store_add(st, d);
    if (err < 0) {
        if (lock_init)
            pthread_rwlock_unlock(&d->init_lock);
        pthread_rwlock_destroy(&d->init_lock);
        uz_free(d);
        return err;
    }
    *out = d;
    return 0;
}

int uz_dev_remove(struct uzram *d, bool check)
{
    struct uz_store *st = d->store;
    pthread_mutex_lock(&st->dev_lock);
    unsigned opens = atomic_load(&d->opens);
    if (check && (opens || d->holds)) {
        pthread_mutex_unlock(&st->dev_lock);
        return uz_error(-EBUSY, "hot_remove: zram%d is %s", d->id,
                        opens ? "open (an open disk, an NBD client); close it first"
                              : "in use by another request");
    }
    d->holds |= UZ_DEV_REMOVING;
    pthread_mutex_unlock(&st->dev_lock);
    uz_dev_write_lock(d);
    int err = uz_dev_teardown(d);
    uz_dev_unlock(d);
    if (err < 0) {
        pthread_mutex_lock(&st->dev_lock);
        d->holds &= ~UZ_DEV_REMOVING;
        pthread_mutex_unlock(&st->dev_lock);
        return err;
    }
    bool last = uz_store_del(st, d);
    pthread_rwlock_destroy(&d->init_lock);
    uz_free(d);
    if (last)
        uz_store_destroy(st);
    return 0;
}

void uzram_open(struct uzram *dev)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    atomic_fetch_add(&dev->opens, 1);
    pthread_rwlock_unlock(&dev->init_lock);
}

void uzram_close(struct uzram *dev)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    unsigned n = atomic_load(&dev->opens);
    while (n > 0 && !atomic_compare_exchange_weak(&dev->opens, &n, n - 1))
        ;
    pthread_rwlock_unlock(&dev->init_lock);
}

unsigned uzram_open_count(struct uzram *dev)
{
    return atomic_load(&dev->opens);
}

static int uzram_check_impl(struct uzram *dev)
{
    /* the whole store, a pool's with all its devices (every device's
     * I/O takes the store's init_lock for reading) */
    struct uz_store *st = dev->store;
    pthread_rwlock_wrlock(&st->init_lock);
    int err = uz_dev_check(st);
    if (err == 0)
        err = uz_store_check(st);
    pthread_rwlock_unlock(&st->init_lock);
    return err;
}

int uzram_check(struct uzram *dev)
{
    uz_error_clear();
    return uz_error_done(uzram_check_impl(dev), "uzram_check");
}

void uzram_destroy(struct uzram *dev)
{
    /* Cannot fail: if the clones linked to dev cannot get pages of their
     * own (memory), dev stays in its pool, for uzram_pool_remove to try
     * again. */
    if (dev)
        (void)uz_dev_remove(dev, false);
}

uint64_t uzram_disksize(const struct uzram *dev)
{
    return dev->disksize;
}

/* ---------------------------------------------------------------- stats */

void uzram_get_stats_size(struct uzram *dev, struct uzram_stats *out, size_t size)
{
    struct uzram_stats full, *st = &full;
    memset(st, 0, sizeof *st);
    uz_dev_read_lock(dev);
    struct uz_store *s = dev->store;
    st->mem_limit = atomic_load(&s->limit_pages) * PAGE;
    if (s->initialised) {
        struct uz_alloc_stats as;
        s->aops->stats(s->alloc, &as);
        struct uz_events *c = &s->ev, *d = &dev->ev;
        struct uz_tally_snap t;
        uz_tally_read(s, &t);
        st->orig_data_size = t.pages_stored * PAGE;
        st->compr_data_size = t.compr_bytes;
        st->mem_used_total = as.pages_used * PAGE;
        uint64_t max = atomic_load(&c->mem_used_max);
        st->mem_used_max = (max > as.pages_used ? max : as.pages_used) * PAGE;
        st->same_pages = t.same_pages;
        st->pages_compacted = as.pages_compacted;
        st->huge_pages = t.huge_pages;
        st->huge_pages_since = t.huge_pages_since;
        /* the device's data path counts these on the device, the layers
         * below it on the store */
        st->failed_reads = atomic_load(&c->failed_reads) + atomic_load(&d->failed_reads);
        st->failed_writes = atomic_load(&c->failed_writes) + atomic_load(&d->failed_writes);
        st->invalid_io = atomic_load(&c->invalid_io) + atomic_load(&d->invalid_io);
        st->notify_free = atomic_load(&c->notify_free) + atomic_load(&d->notify_free);
        st->reads = atomic_load(&c->reads) + atomic_load(&d->reads);
        st->writes = atomic_load(&c->writes) + atomic_load(&d->writes);
        st->slot_table_bytes = atomic_load(&s->slots.resident_pages) * PAGE;
        st->meta_bytes = as.meta_bytes;
        st->footprint = uz_footprint(s, &as) + sizeof *dev;
        st->compact_steps = atomic_load(&c->compact_steps);
        st->compact_pause_max_ns = atomic_load(&c->compact_pause_max_ns);
        st->forwarded = atomic_load(&c->forwarded);
        st->written_back = atomic_load(&c->written_back);
        st->recompressed = atomic_load(&c->recompressed);
        st->recomp_incomp = atomic_load(&c->recomp_incomp);
        struct uz_dedup_figures df;
        uz_dedup_figures(s, &df);
        st->dedup_pages = t.shared_slots - t.records;
        st->dedup_saved_bytes = t.saved_bytes;
        st->dedup_index_bytes = uz_dedup_bytes(s) + uz_shared_bytes(s);
        st->dedup_hits = df.hits;
        st->dedup_refused = df.refused;
        if (s->bd) {
            st->bd_count = uz_backing_count(s->bd);
            st->bd_reads = atomic_load(&s->bd->reads);
            st->bd_writes = atomic_load(&s->bd->writes);
            st->bd_failed = atomic_load(&s->bd->failed);
        }
    } else {
        st->footprint = sizeof *s + sizeof *dev;
    }
    if (uz_in_pool(dev)) {
        /* A device of a pool: the pool's figures where they are the
         * pool's (the allocator's, the limit, the backing device, the
         * index), its own where it has them (what its range holds, its
         * zone's kept counters; its own events).  O(1). */
        struct uz_zone_snap z = {0};
        if (dev->initialised)
            uz_zone_read(s, dev->id, &z);
        st->orig_data_size = (z.pages_stored + z.linked) * PAGE;
        st->compr_data_size = z.compr_bytes;
        st->same_pages = z.same_pages + z.linked_same;
        st->huge_pages = z.huge_pages;
        st->dedup_pages = z.shared_slots + z.linked;
        struct uz_events *d = &dev->ev;
        st->invalid_io = atomic_load(&d->invalid_io);
        st->notify_free = atomic_load(&d->notify_free);
        st->reads = atomic_load(&d->reads);
        st->writes = atomic_load(&d->writes);
    }
    uz_dev_read_unlock(dev);
    memcpy(out, st, size < sizeof *st ? size : sizeof *st);
}

uint64_t uzram_compact(struct uzram *dev)
{
    struct uz_store *st = dev->store;   /* a pool's devices share one allocator */
    pthread_rwlock_rdlock(&st->init_lock);
    uint64_t freed = st->initialised ? st->aops->compact(st->alloc, 0) : 0;
    pthread_rwlock_unlock(&st->init_lock);
    uz_mem_trim();      /* the heap the store's buffers and streams left */
    return freed;
}

const char *uzram_version(void)
{
    return UZRAM_VERSION_STRING;
}

unsigned uzram_version_number(void)
{
    return UZRAM_VERSION_NUMBER;
}
