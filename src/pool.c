/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pool.c - layer 4 of the store (src/README.md): pools, one store with
 * many devices, and the public side of clones.
 *
 * A pool is one store (store.h) made live for the pool's capacity
 * (address space only) when the pool is made, with room for
 * UZRAM_POOL_MAX_DEVICES devices.  Each device is a struct uzram whose
 * pages are a range [base, base + nslots) of the store's slots
 * (store_life.c gives and takes ranges: first fit in the capacity, whole
 * units of UZ_UNIT slots, so each table page's slots belong to one
 * device and groups align in the store as on the device): the data path
 * (io.c) adds base to every page number and hands the store to layers
 * 1-3, which know nothing of devices.  So everything the store has is
 * shared by the pool's devices without a line of it knowing: one
 * allocator (and its compaction), one content index (a page one device
 * stored is found by all), one memory limit, one backing device, one pair
 * of policies.  Back-references are store slot numbers; the store's
 * nslots is the end of the highest range, so its scans (policies, check)
 * cover what is in use and nothing past it.
 *
 * A device of a pool has the one lifecycle every device has (device.c);
 * this file adds the pool's table operations (add, remove, get, next),
 * its whole-store view for the pool's attributes and stats, and
 * uzram_clone, whose links are clone.c's.  The invariants of the ranges
 * (P1-P3) are store_life.c's, those of the links and zones (P4-P6)
 * clone.c's; uzram_check runs them all.
 *
 * Locking (src/README.md, "Lock order"): a device's init_lock, then the
 * store's (for reading, by every data-path call; for writing by
 * uzram_check and while a clone's links are made), then the store's
 * dev_lock, which guards the device table, the holds and the ranges and
 * is held only to change or read them, never across I/O or another lock.
 */
#define _GNU_SOURCE
#include "pool.h"
#include "device.h"
#include "store_life.h"
#include "clone.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE
#define RELAXED memory_order_relaxed
#define ALIGN UZ_UNIT
#define DEFAULT_CAPACITY (4ull << 40)     /* bytes: 4 TiB, as uzram.h says */
#define MAX_CAPACITY (1ull << 43)         /* back-references are 31 bits */

struct uzram_pool {
    struct uz_store *store;            /* its devices are the store's (store_life.c) */
    /* The whole store as a device of no pool, for the pool's attributes
     * and stats (uz_pool_view): never sized, reset or destroyed. */
    struct uzram view;
    struct uz_links links;             /* the clones' links (clone.h) */
    struct uz_zones zones;             /* the devices' counters (store.h) */
};

/* ------------------------------------------------------------ the pool */

int uz_pool_new(uint64_t capacity, struct uzram_pool **out)
{
    uint64_t cap = capacity ? capacity : DEFAULT_CAPACITY;
    if (cap > MAX_CAPACITY)
        return uz_error(-EINVAL, "pool capacity: at most %llu bytes (8 TiB)", MAX_CAPACITY);
    cap = (cap + (uint64_t)ALIGN * PAGE - 1) / ((uint64_t)ALIGN * PAGE) * ALIGN;
    if (cap > MAX_CAPACITY / PAGE - ALIGN)
        cap = MAX_CAPACITY / PAGE - ALIGN;
    struct uzram_pool *p = uz_calloc(1, sizeof *p);
    if (!p)
        return uz_error(-ENOMEM, "uzram_pool_create: out of memory");
    int err = uz_store_create(UZRAM_POOL_MAX_DEVICES, &p->store);
    if (err < 0) {
        uz_free(p);
        return err;
    }
    p->store->pool = p;
    p->view.store = p->store;
    p->view.id = -1;
    pthread_rwlock_init(&p->view.init_lock, NULL);
    struct uz_links *l = &p->links;
    l->nunits = cap / UZ_UNIT;
    for (unsigned i = 0; i < UZ_LINK_STRIPES; i++)
        pthread_rwlock_init(&l->stripe[i], NULL);
    l->link = uz_vm_reserve(l->nunits * sizeof *l->link);
    l->deps = l->link ? uz_vm_reserve(l->nunits * sizeof *l->deps) : NULL;
    struct uz_zones *z = &p->zones;
    z->of_unit = l->deps ? uz_vm_reserve(l->nunits * sizeof *z->of_unit) : NULL;
    z->zone = z->of_unit ? uz_calloc(UZRAM_POOL_MAX_DEVICES, sizeof *z->zone) : NULL;
    p->store->capacity = cap;
    if (!z->zone) {
        (void)uzram_pool_destroy(p);
        return uz_error(-ENOMEM, "uzram_pool_create: cannot reserve the clone links and the "
                        "devices' counters");
    }
    p->store->links = l;
    p->store->zones = z;
    *out = p;
    return 0;
}

int uz_pool_start(struct uzram_pool *p)
{
    struct uz_store *st = p->store;
    int err = uz_store_init(st, st->capacity);
    if (err < 0)
        return err;
    /* the store's scans stop at the highest range: none yet */
    atomic_store(&st->nslots, 0);
    p->view.initialised = true;
    p->view.disksize = st->capacity * PAGE;
    atomic_store(&p->view.nslots, st->capacity);
    return 0;
}

static int uzram_pool_destroy_impl(struct uzram_pool *p)
{
    if (!p)
        return 0;
    struct uz_store *st = p->store;
    pthread_mutex_lock(&st->dev_lock);
    for (unsigned i = 0; i < st->max_devices; i++)
        if (st->dev[i]) {
            pthread_mutex_unlock(&st->dev_lock);
            return uz_error(-EBUSY, "uzram_pool_destroy: the pool has devices (zram%u); remove "
                            "them first", i);
        }
    pthread_mutex_unlock(&st->dev_lock);
    struct uz_links *l = &p->links;
    for (unsigned i = 0; i < UZ_LINK_STRIPES; i++)
        pthread_rwlock_destroy(&l->stripe[i]);
    if (l->link)
        uz_vm_unreserve(l->link, l->nunits * sizeof *l->link);
    if (l->deps)
        uz_vm_unreserve(l->deps, l->nunits * sizeof *l->deps);
    if (p->zones.of_unit)
        uz_vm_unreserve((void *)p->zones.of_unit, l->nunits * sizeof *p->zones.of_unit);
    uz_free(p->zones.zone);
    /* the store is torn down whole (its nslots: every range is gone) */
    atomic_store(&st->nslots, 0);
    st->pool = NULL;
    st->links = NULL;
    st->zones = NULL;
    uz_store_destroy(st);
    pthread_rwlock_destroy(&p->view.init_lock);
    uz_free(p);
    return 0;
}

int uzram_pool_destroy(struct uzram_pool *p)
{
    uz_error_clear();
    return uz_error_done(uzram_pool_destroy_impl(p), "uzram_pool_destroy");
}

/* ------------------------------------------------------------- devices */

static int uzram_pool_add_impl(struct uzram_pool *p, struct uzram **out)
{
    return uz_dev_new(p->store, false, out);
}

int uzram_pool_add(struct uzram_pool *p, struct uzram **out)
{
    uz_error_clear();
    return uz_error_done(uzram_pool_add_impl(p, out), "uzram_pool_add");
}

static int uzram_pool_remove_impl(struct uzram_pool *p, int id)
{
    struct uz_store *st = p->store;
    pthread_mutex_lock(&st->dev_lock);
    struct uzram *d = id >= 0 && (unsigned)id < st->max_devices ? st->dev[id] : NULL;
    if (d && (d->holds & UZ_DEV_REMOVING))
        d = NULL;
    pthread_mutex_unlock(&st->dev_lock);
    if (!d)
        return uz_error(-ENOENT, "hot_remove: no device zram%d", id);
    return uz_dev_remove(d, true);
}

int uzram_pool_remove(struct uzram_pool *p, int id)
{
    uz_error_clear();
    return uz_error_done(uzram_pool_remove_impl(p, id), "uzram_pool_remove");
}

struct uzram *uzram_pool_get(struct uzram_pool *p, int id)
{
    struct uz_store *st = p->store;
    if (id < 0 || (unsigned)id >= st->max_devices)
        return NULL;
    pthread_mutex_lock(&st->dev_lock);
    struct uzram *d = st->dev[id];
    if (d && (d->holds & UZ_DEV_REMOVING))
        d = NULL;
    if (d)
        d->holds++;
    pthread_mutex_unlock(&st->dev_lock);
    return d;
}

void uzram_pool_put(struct uzram *d)
{
    if (!d || !d->pool)
        return;
    pthread_mutex_lock(&d->store->dev_lock);
    if (d->holds & ~UZ_DEV_REMOVING)
        d->holds--;
    pthread_mutex_unlock(&d->store->dev_lock);
}

int uzram_pool_next(struct uzram_pool *p, int id)
{
    struct uz_store *st = p->store;
    int next = -1;
    pthread_mutex_lock(&st->dev_lock);
    for (unsigned i = id < 0 ? 0 : (unsigned)id + 1; i < st->max_devices; i++)
        if (st->dev[i]) {
            next = (int)i;
            break;
        }
    pthread_mutex_unlock(&st->dev_lock);
    return next;
}

struct uzram_pool *uzram_pool_of(const struct uzram *dev)
{
    return dev->pool;
}

struct uzram *uz_pool_view(struct uzram_pool *p)
{
    return &p->view;
}

int uzram_device_id(const struct uzram *dev)
{
    return uz_in_pool(dev) ? dev->id : 0;
}

/* ---------------------------------------------------------------- clone */

static int uzram_clone_impl(struct uzram *src, struct uzram **out)
{
    uz_error_clear();
    if (!uz_in_pool(src))
        return uz_error(-EINVAL, "clone: the device is not in a pool (make it with "
                        "uzram_pool_add; a device of its own has room for itself only)");
    struct uz_store *st = src->store;
    pthread_rwlock_wrlock(&src->init_lock);
    if (!src->initialised) {
        pthread_rwlock_unlock(&src->init_lock);
        return uz_error(-EINVAL, "clone: zram%d is not initialised (set its disksize)", src->id);
    }
    struct uzram *c;
    int err = uz_dev_new(st, true, &c);
    if (err < 0) {
        pthread_rwlock_unlock(&src->init_lock);
        return err;
    }
    /* The store to itself while the links are made: no write can be
     * between a unit's look and its link (clone.c). */
    pthread_rwlock_wrlock(&st->init_lock);
    err = uz_dev_init(c, src->disksize);
    if (err == 0) {
        err = uz_clone_link(st, src, c);
        if (err < 0)
            (void)uz_dev_teardown(c);   /* drops the links made: cannot fail */
    }
    pthread_rwlock_unlock(&st->init_lock);
    pthread_rwlock_unlock(&c->init_lock);
    pthread_rwlock_unlock(&src->init_lock);
    if (err < 0) {
        (void)uz_dev_remove(c, false);
        return err;
    }
    *out = c;
    return 0;
}

int uzram_clone(struct uzram *src, struct uzram **out)
{
    uz_error_clear();
    return uz_error_done(uzram_clone_impl(src, out), "uzram_clone");
}

/* ---------------------------------------------------------------- stats */

void uzram_pool_get_stats_size(struct uzram_pool *p, struct uzram_pool_stats *out, size_t size)
{
    struct uzram_pool_stats s;
    memset(&s, 0, sizeof s);
    struct uz_store *st = p->store;
    uint64_t views = 0;
    /* every device's kept counters (store.h, "Zones"): one look per device */
    pthread_mutex_lock(&st->dev_lock);
    for (unsigned i = 0; i < st->max_devices; i++) {
        struct uzram *d = st->dev[i];
        if (d && !(d->holds & UZ_DEV_REMOVING)) {
            s.devices++;
            s.disksize += d->disksize;
            views += sizeof *d;
            struct uz_zone_snap z;
            uz_zone_read(st, d->id, &z);
            s.orig_data_size += (z.pages_stored + z.linked) * PAGE;
            s.same_pages += z.same_pages + z.linked_same;
            s.shared_pages += z.shared_slots + z.linked;
            s.shared_bytes += z.dep_bytes;
        }
    }
    pthread_mutex_unlock(&st->dev_lock);
    s.capacity = st->capacity * PAGE;
    struct uzram_stats ss;
    uzram_get_stats(&p->view, &ss);
    struct uz_tally_snap t;
    uz_tally_read(st, &t);
    /* shared: the records' bytes, and the objects of units that clones
     * read through to (the zones' dep_bytes, summed above) */
    s.shared_bytes += t.record_bytes;
    s.compr_data_size = ss.compr_data_size;
    s.saved_bytes = t.saved_bytes;
    s.huge_pages = ss.huge_pages;
    s.mem_used_total = ss.mem_used_total;
    s.mem_limit = ss.mem_limit;
    s.mem_used_max = ss.mem_used_max;
    s.footprint = ss.footprint + views + sizeof *p;
    s.bd_count = ss.bd_count;
    memcpy(out, &s, size < sizeof s ? size : sizeof s);
}

