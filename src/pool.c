/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pool.c - layer 4 of the store (src/README.md): pools, many devices in
 * one store, and clones.
 *
 * A pool is one store, a struct uzram made as uzram_create makes a
 * device, with room for the pool's capacity (address space only) and no
 * user of its own.  Each device of the pool is another struct uzram whose
 * pages are a range [base, base + nslots) of the store's slots: the data
 * path (io.c) adds base to every page number and hands the store to
 * layers 1-3, which know nothing of devices.  So everything the store has
 * is shared by the pool's devices without a line of it knowing: one
 * allocator (and its compaction), one content index (a page one device
 * stored is found by all), one memory limit, one backing device, one pair
 * of policies.  Back-references are store slot numbers; the store's
 * nslots is the end of the highest range, so its scans (policies, check)
 * cover what is in use and nothing past it.
 *
 * Ranges.  A device's range is given when it is sized (disksize) and
 * taken back when it is reset or removed: first fit in the capacity,
 * between the ranges of the other sized devices.  Ranges start at a
 * multiple of ALIGN slots, a whole number of table pages (each page's
 * slots belong to one device, and a reset gives its pages back) and of
 * the largest group (groups are aligned in the store as on the device).
 *
 * Clones.  uzram_clone makes a device of the source's size whose units
 * (UZ_UNIT slots, two table pages: store.h) read through to the source's
 * wherever they have no page of their own: link[clone unit] names the
 * source unit, deps[source unit] counts the units linked to it.  That is
 * one look per unit, not per page: a clone of a gigabyte takes
 * microseconds and costs nothing until written.  A clone of a clone
 * links to the first one's target while the first one has no page of
 * its own there (else that unit is made whole first), so a read goes
 * through one link at most.
 *
 * A linked unit's target must not change what it holds.  So:
 *   - a whole-page write of one page to a linked unit goes to the unit's
 *     own slot (if the target's page there is not in a compressed group),
 *     the rest of the unit still reading through: a clone written at
 *     random costs what is written and its table pages;
 *   - any other write to a linked unit (part of a page, a discard, a
 *     group), and any write to a unit that units are linked to, first
 *     gives the linked units slots of their own where they have none
 *     (uz_pool_prepare_write): with both units' slots locked, every
 *     object or backing block of the target becomes a shared record
 *     (shared.c) if it is not one, and the clone's slot one more
 *     reference to it; same-filled pages are copied; a compressed group's
 *     chunks are copied (a record holds one page, a group is one stream).
 *     That costs the unit's table pages and a 16-byte record per page the
 *     two then share, never a byte of data.
 * What does not change what a page holds (compaction, writeback,
 * recompression of a page, idle marks, the content index making a
 * record) works on a target as on any unit, and the linked units read it
 * as it is; recompress does not regroup a target's pages (its groups are
 * what the linked units' own pages are kept clear of).  Resetting or
 * removing a device first gives the units linked to its own slots of
 * their own, and drops its own links: there are no parent chains, the
 * source, a clone or a clone of a clone can go in any order.
 *
 * Only clones link, and a clone has its source's size: the units linked
 * to a device's k-th unit are other devices' k-th units, so finding them
 * is one look per device of the pool (the anon layer's "find every user":
 * bounded by the devices, not by the pages).
 *
 * Invariants (uz_pool_check verifies each one, with the store's own):
 *   P1  every device's range lies inside the capacity, starts at a
 *       multiple of ALIGN, and no two ranges overlap;
 *   P2  the store's nslots is at least the end of every range;
 *   P3  no live slot of the store lies outside every device's range (a
 *       reset or removed device left nothing behind);
 *   P4  a linked unit links to a unit that is not linked itself (no
 *       chains) inside the store, and its own pages (where it has them)
 *       lie outside its target's compressed groups;
 *   P5  a unit's deps count equals the units linked to it;
 *   P6  every device's zone (store.h, "Zones": the counters its stats
 *       read) equals a recount of its slots and links.
 *
 * Locking (src/README.md, "Lock order"): a device's init_lock, then the
 * store's (for reading, by every data-path call of a pool device; for
 * writing by uzram_check and while a clone's links are made), then the
 * pool's lock, which guards the device table, the holds and the ranges
 * and is held only to change or read them, never across I/O or another
 * lock.  A target unit's stripe lock (pool.h) comes after the store's
 * init_lock and before any slot lock: a read through a link holds it for
 * reading; giving a linked unit its own slots holds it for writing and
 * then locks both units' slots in ascending order.  Nothing that holds a
 * slot lock waits for a stripe.
 */
#define _GNU_SOURCE
#include "pool.h"
#include "device.h"
#include "shared.h"
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
    struct uzram *store;
    pthread_mutex_t lock;              /* dev[], holds, ranges */
    uint64_t capacity;                 /* slots */
    struct uzram *dev[UZRAM_POOL_MAX_DEVICES];
    struct range { uint64_t lo, hi; } ranges[UZRAM_POOL_MAX_DEVICES]; /* scratch, pool lock */
    struct uz_links links;             /* the clones' links (pool.h) */
    struct uz_zones zones;             /* the devices' counters (store.h) */
};

/* ------------------------------------------------------------ the pool */

int uzram_pool_create(const struct uzram_config *cfg, struct uzram_pool **out)
{
    uz_error_clear();
    struct uzram_config c;
    uzram_config_init(&c);
    if (cfg) {
        if (cfg->size == 0 || cfg->size > sizeof c)
            return uz_error(-EINVAL, "uzram_pool_create: the config was not made by this "
                            "library's uzram_config_init");
        memcpy(&c, cfg, cfg->size);
        c.size = sizeof c;
    }
    uint64_t cap = c.disksize ? c.disksize : DEFAULT_CAPACITY;
    if (cap > MAX_CAPACITY)
        return uz_error(-EINVAL, "pool capacity: at most %llu bytes (8 TiB)", MAX_CAPACITY);
    cap = (cap + (uint64_t)ALIGN * PAGE - 1) / ((uint64_t)ALIGN * PAGE) * ALIGN;
    if (cap > MAX_CAPACITY / PAGE - ALIGN)
        cap = MAX_CAPACITY / PAGE - ALIGN;
    struct uzram_pool *p = uz_calloc(1, sizeof *p);
    if (!p)
        return uz_error(-ENOMEM, "uzram_pool_create: out of memory");
    c.disksize = cap * PAGE;
    int err = uzram_create(&c, &p->store);
    if (err < 0) {
        uz_free(p);
        return err;
    }
    /* the store's scans stop at the highest range: none yet */
    atomic_store(&p->store->nslots, 0);
    p->store->pool = p;
    p->store->id = -1;
    p->capacity = cap;
    struct uz_links *l = &p->links;
    l->nunits = cap / UZ_UNIT;
    l->link = uz_vm_reserve(l->nunits * sizeof *l->link);
    l->deps = l->link ? uz_vm_reserve(l->nunits * sizeof *l->deps) : NULL;
    if (!l->deps) {
        if (l->link)
            uz_vm_unreserve(l->link, l->nunits * sizeof *l->link);
        uzram_destroy(p->store);
        uz_free(p);
        return uz_error(-ENOMEM, "uzram_pool_create: cannot reserve the clone links");
    }
    struct uz_zones *z = &p->zones;
    z->of_unit = uz_vm_reserve(l->nunits * sizeof *z->of_unit);
    z->zone = z->of_unit ? uz_calloc(UZRAM_POOL_MAX_DEVICES, sizeof *z->zone) : NULL;
    if (!z->zone) {
        if (z->of_unit)
            uz_vm_unreserve((void *)z->of_unit, l->nunits * sizeof *z->of_unit);
        uz_vm_unreserve(l->link, l->nunits * sizeof *l->link);
        uz_vm_unreserve(l->deps, l->nunits * sizeof *l->deps);
        uzram_destroy(p->store);
        uz_free(p);
        return uz_error(-ENOMEM, "uzram_pool_create: cannot reserve the devices' counters");
    }
    for (unsigned i = 0; i < UZ_LINK_STRIPES; i++)
        pthread_rwlock_init(&l->stripe[i], NULL);
    p->store->links = l;
    p->store->zones = z;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return 0;
}

int uzram_pool_destroy(struct uzram_pool *p)
{
    uz_error_clear();
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < UZRAM_POOL_MAX_DEVICES; i++)
        if (p->dev[i]) {
            pthread_mutex_unlock(&p->lock);
            return uz_error(-EBUSY, "uzram_pool_destroy: the pool has devices (zram%d); remove "
                            "them first", i);
        }
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    struct uz_links *l = &p->links;
    for (unsigned i = 0; i < UZ_LINK_STRIPES; i++)
        pthread_rwlock_destroy(&l->stripe[i]);
    uz_vm_unreserve(l->link, l->nunits * sizeof *l->link);
    uz_vm_unreserve(l->deps, l->nunits * sizeof *l->deps);
    uz_vm_unreserve((void *)p->zones.of_unit, l->nunits * sizeof *p->zones.of_unit);
    uz_free(p->zones.zone);
    /* the store is torn down as a device of its own */
    atomic_store(&p->store->nslots, 0);
    p->store->pool = NULL;
    p->store->links = NULL;
    p->store->zones = NULL;
    uzram_destroy(p->store);
    uz_free(p);
    return 0;
}

static void free_device(struct uzram *d);

/* A new device, uninitialised, numbered lowest free; with its init_lock
 * held for writing if lock_init (a clone being made: taken before the
 * device is in the table, so never under the pool's lock). */
static int add_device(struct uzram_pool *p, bool lock_init, struct uzram **out)
{
    struct uzram *d = uz_calloc(1, sizeof *d);
    if (!d)
        return uz_error(-ENOMEM, "hot_add: out of memory");
    pthread_rwlock_init(&d->init_lock, NULL);
    pthread_mutex_init(&d->policy_lock, NULL);
    d->store = p->store;
    d->pool = p;
    d->epoch = p->store->epoch;
    if (lock_init)
        pthread_rwlock_wrlock(&d->init_lock);
    pthread_mutex_lock(&p->lock);
    int id = 0;
    while (id < UZRAM_POOL_MAX_DEVICES && p->dev[id])
        id++;
    if (id < UZRAM_POOL_MAX_DEVICES) {
        d->id = id;
        p->dev[id] = d;
    }
    pthread_mutex_unlock(&p->lock);
    if (id == UZRAM_POOL_MAX_DEVICES) {
        if (lock_init)
            pthread_rwlock_unlock(&d->init_lock);
        free_device(d);
        return uz_error(-ENOSPC, "hot_add: the pool has %d devices, the most it takes",
                        UZRAM_POOL_MAX_DEVICES);
    }
    *out = d;
    return 0;
}

int uzram_pool_add(struct uzram_pool *p, struct uzram **out)
{
    uz_error_clear();
    return add_device(p, false, out);
}

static void free_device(struct uzram *d)
{
    pthread_mutex_destroy(&d->policy_lock);
    pthread_rwlock_destroy(&d->init_lock);
    uz_free(d);
}

/* Free everything device d holds (its init_lock not held, nobody else
 * uses it) and then d.  0, or teardown's -ENOMEM (d is as it was). */
static int remove_device(struct uzram_pool *p, struct uzram *d)
{
    pthread_rwlock_wrlock(&d->init_lock);
    pthread_rwlock_rdlock(&p->store->init_lock);
    int err = uz_pool_dev_teardown(d);
    pthread_rwlock_unlock(&p->store->init_lock);
    pthread_rwlock_unlock(&d->init_lock);
    if (err == 0)
        free_device(d);
    return err;
}

/* d->holds while it is being removed: uzram_pool_get finds nothing */
#define REMOVING 0x80000000u

/* Remove d (pool lock not held); with check, refuse (-EBUSY) if it is
 * open or held. */
static int remove_checked(struct uzram_pool *p, struct uzram *d, bool check)
{
    pthread_mutex_lock(&p->lock);
    unsigned opens = atomic_load(&d->opens);
    if (check && (opens || d->holds)) {
        pthread_mutex_unlock(&p->lock);
        return uz_error(-EBUSY, "hot_remove: zram%d is %s", d->id,
                        opens ? "open (an open disk, an NBD client); close it first"
                              : "in use by another request");
    }
    d->holds |= REMOVING;
    pthread_mutex_unlock(&p->lock);
    int id = d->id;
    int err = remove_device(p, d);
    pthread_mutex_lock(&p->lock);
    if (err == 0)
        p->dev[id] = NULL;
    else
        d->holds &= ~REMOVING;
    pthread_mutex_unlock(&p->lock);
    return err;
}

void uz_pool_dev_destroy(struct uzram *d)
{
    /* uzram_destroy cannot fail: if the clones linked to d cannot get
     * pages of their own (memory), d stays in the pool, emptied of
     * nothing, for uzram_pool_remove to try again */
    (void)remove_checked(d->pool, d, false);
}

int uzram_pool_remove(struct uzram_pool *p, int id)
{
    uz_error_clear();
    pthread_mutex_lock(&p->lock);
    struct uzram *d = id >= 0 && id < UZRAM_POOL_MAX_DEVICES ? p->dev[id] : NULL;
    if (d && (d->holds & REMOVING))
        d = NULL;
    pthread_mutex_unlock(&p->lock);
    if (!d)
        return uz_error(-ENOENT, "hot_remove: no device zram%d", id);
    return remove_checked(p, d, true);
}

struct uzram *uzram_pool_get(struct uzram_pool *p, int id)
{
    if (id < 0 || id >= UZRAM_POOL_MAX_DEVICES)
        return NULL;
    pthread_mutex_lock(&p->lock);
    struct uzram *d = p->dev[id];
    if (d && (d->holds & REMOVING))
        d = NULL;
    if (d)
        d->holds++;
    pthread_mutex_unlock(&p->lock);
    return d;
}

void uzram_pool_put(struct uzram *d)
{
    if (!d || !d->pool)
        return;
    pthread_mutex_lock(&d->pool->lock);
    if (d->holds & ~REMOVING)
        d->holds--;
    pthread_mutex_unlock(&d->pool->lock);
}

int uzram_pool_next(struct uzram_pool *p, int id)
{
    int next = -1;
    pthread_mutex_lock(&p->lock);
    for (int i = id < 0 ? 0 : id + 1; i < UZRAM_POOL_MAX_DEVICES; i++)
        if (p->dev[i]) {
            next = i;
            break;
        }
    pthread_mutex_unlock(&p->lock);
    return next;
}

struct uzram_pool *uzram_pool_of(const struct uzram *dev)
{
    return uz_in_pool(dev) ? dev->pool : NULL;
}

struct uzram *uz_pool_store(struct uzram_pool *p)
{
    return p->store;
}

int uzram_device_id(const struct uzram *dev)
{
    return uz_in_pool(dev) ? dev->id : 0;
}

/* -------------------------------------------------------------- ranges */

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The sized devices' ranges, sorted; pool lock held.  Returns how many. */
static int ranges_locked(struct uzram_pool *p, struct range *r)
{
    int n = 0;
    for (int i = 0; i < UZRAM_POOL_MAX_DEVICES; i++) {
        struct uzram *d = p->dev[i];
        if (d && d->initialised) {
            r[n].lo = d->base;
            r[n].hi = d->base + atomic_load(&d->nslots);
            n++;
        }
    }
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    return n;
}

int uz_pool_dev_init(struct uzram *d, uint64_t disksize)
{
    struct uzram_pool *p = d->pool;
    uint64_t n = (disksize + PAGE - 1) / PAGE;
    if (n == 0)
        return uz_error(-EINVAL, "disksize: must be more than 0");
    if (n > p->capacity)
        return uz_error(-ENOSPC, "disksize: %llu bytes is more than the pool's capacity (%llu)",
                        (unsigned long long)disksize, (unsigned long long)(p->capacity * PAGE));
    uint64_t need = (n + ALIGN - 1) / ALIGN * ALIGN;
    pthread_mutex_lock(&p->lock);
    struct range *r = p->ranges;
    int nr = ranges_locked(p, r);
    uint64_t at = 0;
    for (int i = 0; i < nr; i++) {
        if (r[i].lo >= at + need)
            break;
        uint64_t end = (r[i].hi + ALIGN - 1) / ALIGN * ALIGN;
        if (end > at)
            at = end;
    }
    if (at + need > p->capacity) {
        pthread_mutex_unlock(&p->lock);
        return uz_error(-ENOSPC, "disksize: no free %llu bytes in the pool's capacity of %llu "
                        "(the devices' sizes add up to near it)", (unsigned long long)disksize,
                        (unsigned long long)(p->capacity * PAGE));
    }
    d->base = at;
    atomic_store(&d->nslots, n);
    d->disksize = n * PAGE;
    memset(&d->ev, 0, sizeof d->ev);
    struct uzram *st = d->store;
    /* its units are its zone's (store.h), which is empty: teardown left it so */
    for (uint64_t u = at / UZ_UNIT; u < (at + need) / UZ_UNIT; u++)
        atomic_store_explicit(&p->zones.of_unit[u], (uint16_t)(d->id + 1), RELAXED);
    if (atomic_load(&st->nslots) < at + n)
        atomic_store(&st->nslots, at + n);
    d->initialised = true;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* ----------------------------------------------------------- clone units */

/* Lock / unlock every slot of units a and b (a != b), lower unit first:
 * slot locks go in ascending order. */
static void lock_units(struct uzram *st, uint64_t a, uint64_t b)
{
    uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    for (uint64_t i = lo * UZ_UNIT; i < lo * UZ_UNIT + UZ_UNIT; i++)
        (void)uz_slot_get(st, i);
    for (uint64_t i = hi * UZ_UNIT; i < hi * UZ_UNIT + UZ_UNIT; i++)
        (void)uz_slot_get(st, i);
}

static void unlock_units(struct uzram *st, uint64_t a, uint64_t b)
{
    for (uint64_t i = a * UZ_UNIT; i < a * UZ_UNIT + UZ_UNIT; i++)
        uz_slot_put(st, i, uz_slot_at(st, i));
    for (uint64_t i = b * UZ_UNIT; i < b * UZ_UNIT + UZ_UNIT; i++)
        uz_slot_put(st, i, uz_slot_at(st, i));
}

/* The bytes of the objects unit t's slots own (not records'): what
 * its zone's dep_bytes holds of it while units are linked to it.  The
 * caller keeps t's slots still (their locks, or the store). */
static uint64_t unit_bytes(struct uzram *st, uint64_t t)
{
    uint64_t n = 0, end = t * UZ_UNIT + UZ_UNIT;
    for (uint64_t i = uz_next_used(st, t * UZ_UNIT, end); i < end; i = uz_next_used(st, i + 1, end)) {
        struct uz_slot *s = uz_slot_at(st, i);
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s);
        if ((f & SLOT_GROUP) && h)
            n += st->aops->obj_size(st->alloc, h);
        else if (!(f & SLOT_GROUP) && (f & SLOT_OBJ))
            n += uz_obj_bytes(st, f, h);
    }
    return n;
}

/* deps[t] += d (+1 or -1); when units become (stop being) linked to t,
 * its bytes enter (leave) its zone's dep_bytes.  The caller keeps t's
 * slots still, as for unit_bytes. */
static void deps_add(struct uzram *st, uint64_t t, int d)
{
    uint32_t was = atomic_fetch_add(&st->links->deps[t], (uint32_t)d);
    if (!(d > 0 ? was == 0 : was == 1))
        return;
    uint16_t k = atomic_load_explicit(&st->zones->of_unit[t], RELAXED);
    if (!k)
        return;
    uint64_t b = unit_bytes(st, t);
    struct uz_zone *z = &st->zones->zone[k - 1];
    if (d > 0)
        atomic_fetch_add_explicit(&z->dep_bytes, b, RELAXED);
    else
        atomic_fetch_sub_explicit(&z->dep_bytes, b, RELAXED);
}

/* Unit u, linked to t, gets slots of its own where it has none: what t
 * holds, shared (uz_shared_clone).  0 (also if someone did it first), or
 * -ENOMEM / -EMLINK with u still linked and holding only the pages of its
 * own it held. */
static int unlink_copy(struct uzram *st, uint64_t u, uint64_t t)
{
    struct uz_links *l = st->links;
    pthread_rwlock_wrlock(uz_link_lock(st, t));
    int err = 0;
    if (atomic_load(&l->link[u]) == t + 1) {
        lock_units(st, u, t);
        /* the unit's own pages, which a failure must leave */
        uint64_t own[(UZ_UNIT + 63) / 64] = {0};
        for (uint64_t j = 0; j < UZ_UNIT; j++)
            if (uz_slot_state(uz_slot_at(st, u * UZ_UNIT + j)))
                own[j / 64] |= 1ull << (j % 64);
        err = uz_shared_clone(st, t * UZ_UNIT, u * UZ_UNIT, UZ_UNIT);
        if (err == 0) {
            atomic_store(&l->link[u], 0);
            deps_add(st, t, -1);
        } else {
            for (uint64_t j = 0; j < UZ_UNIT; j++) {
                uint64_t i = u * UZ_UNIT + j;
                if (!(own[j / 64] >> (j % 64) & 1) && uz_slot_state(uz_slot_at(st, i)))
                    uz_slot_free(st, i, uz_slot_at(st, i));
            }
        }
        unlock_units(st, u, t);
    }
    pthread_rwlock_unlock(uz_link_lock(st, t));
    return err;
}

/* Unit u, linked to t, is dropped (its device is reset or removed). */
static void unlink_drop(struct uzram *st, uint64_t u, uint64_t t)
{
    struct uz_links *l = st->links;
    pthread_rwlock_wrlock(uz_link_lock(st, t));
    if (atomic_load(&l->link[u]) == t + 1) {
        /* t's slots still while its bytes may leave dep_bytes */
        for (uint64_t i = t * UZ_UNIT; i < t * UZ_UNIT + UZ_UNIT; i++)
            (void)uz_slot_get(st, i);
        atomic_store(&l->link[u], 0);
        deps_add(st, t, -1);
        for (uint64_t i = t * UZ_UNIT; i < t * UZ_UNIT + UZ_UNIT; i++)
            uz_slot_put(st, i, uz_slot_at(st, i));
    }
    pthread_rwlock_unlock(uz_link_lock(st, t));
}

/* Every unit linked to unit t (the k-th of device d) gets slots of its
 * own.  Only clones link, and a clone has its source's size, so such
 * units are the k-th of other devices: one look per device. */
static int unlink_dependents(struct uzram_pool *p, struct uzram *d, uint64_t t)
{
    struct uzram *st = p->store;
    uint64_t k = t - d->base / UZ_UNIT;
    uint32_t cand[UZRAM_POOL_MAX_DEVICES];
    int n = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < UZRAM_POOL_MAX_DEVICES; i++) {
        struct uzram *e = p->dev[i];
        if (!e || e == d || !e->initialised || k * UZ_UNIT >= atomic_load(&e->nslots))
            continue;
        uint64_t u = e->base / UZ_UNIT + k;
        if (atomic_load(&st->links->link[u]) == t + 1)
            cand[n++] = (uint32_t)u;
    }
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n; i++) {
        int err = unlink_copy(st, cand[i], t);
        if (err < 0)
            return err;
    }
    return 0;
}

int uz_pool_prepare_write(struct uzram *dev, uint64_t idx)
{
    struct uzram *st = dev->store;
    struct uz_links *l = st->links;
    uint64_t u = idx / UZ_UNIT;
    uint32_t t = atomic_load(&l->link[u]);
    int err = t ? unlink_copy(st, u, t - 1) : 0;
    if (err == 0 && atomic_load(&l->deps[u]))
        err = unlink_dependents(dev->pool, dev, u);
    return err;
}

int uz_pool_dev_teardown(struct uzram *d)
{
    if (!d->initialised)
        return 0;
    struct uzram *st = d->store;
    struct uz_links *l = st->links;
    uint64_t lo = d->base, hi = d->base + atomic_load(&d->nslots);
    /* clones that read through to this device's units get their own
     * slots first; its own links go */
    for (uint64_t u = lo / UZ_UNIT; u * UZ_UNIT < hi; u++) {
        uint32_t t = atomic_load(&l->link[u]);
        if (t)
            unlink_drop(st, u, t - 1);
        if (atomic_load(&l->deps[u])) {
            int err = unlink_dependents(d->pool, d, u);
            if (err < 0)
                return err;
        }
    }
    for (uint64_t i = uz_next_used(st, lo, hi); i < hi; i = uz_next_used(st, i + 1, hi)) {
        uint32_t f = uz_slot_peek(st, i);
        if (!(f & SLOT_STATE))
            continue;
        if (f & SLOT_GROUP) {
            /* a whole group: lock all of it, free every member */
            uint32_t k = slot_group_pages(f);
            uint64_t gb = i - i % k;
            uz_lock_range(st, gb, gb + k);
            uint32_t now = uz_slot_state(uz_slot_at(st, gb));
            if ((now & SLOT_GROUP) && slot_group_pages(now) == k) {
                for (uint32_t j = 0; j < k; j++)
                    uz_slot_free(st, gb + j, uz_slot_at(st, gb + j));
                uz_unlock_range(st, gb, gb + k);
                i = gb + k - 1;
                continue;
            }
            uz_unlock_range(st, gb, gb + k);   /* changed under us: look again */
        }
        struct uz_slot *s = uz_slot_get(st, i);
        if (uz_slot_state(s) & SLOT_GROUP) {
            uz_slot_put(st, i, s);
            i--;   /* became a group member: the branch above takes it */
            continue;
        }
        uz_slot_free(st, i, s);
        uz_slot_put(st, i, s);
    }
    /* every page freed, every link dropped: its zone is empty (its linked
     * pages went with the links) */
    struct uzram_pool *p = d->pool;
    for (uint64_t u = lo / UZ_UNIT; u * UZ_UNIT < hi; u++)
        atomic_store_explicit(&p->zones.of_unit[u], 0, RELAXED);
    memset(&p->zones.zone[d->id], 0, sizeof p->zones.zone[d->id]);
    pthread_mutex_lock(&p->lock);
    d->initialised = false;
    d->disksize = 0;
    atomic_store(&d->nslots, 0);
    d->base = 0;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* ---------------------------------------------------------------- clone */

/* Does unit u hold a live slot (either of its table pages in use)? */
static bool unit_used(struct uzram *st, uint64_t u)
{
    uint64_t end = u * UZ_UNIT + UZ_UNIT;
    return uz_next_used(st, u * UZ_UNIT, end) < end;
}

/* A clone's unit was linked to unit u (the store held exclusively):
 * its zone reads u's pages (store.h, "Zones"). */
static void zone_link(struct uzram *st, struct uz_zone *z, uint64_t u)
{
    uint64_t n = 0, same = 0, end = u * UZ_UNIT + UZ_UNIT;
    for (uint64_t i = uz_next_used(st, u * UZ_UNIT, end); i < end; i = uz_next_used(st, i + 1, end)) {
        uint32_t f = uz_slot_state(uz_slot_at(st, i));
        n += f != 0;
        same += (f & (SLOT_SAME | SLOT_GROUP)) == SLOT_SAME;
    }
    atomic_fetch_add_explicit(&z->linked, n, RELAXED);
    atomic_fetch_add_explicit(&z->linked_same, same, RELAXED);
}

int uzram_clone(struct uzram *src, struct uzram **out)
{
    uz_error_clear();
    if (!uz_in_pool(src))
        return uz_error(-EINVAL, "clone: the device is not in a pool (make it with "
                        "uzram_pool_add; a device of its own has room for itself only)");
    struct uzram_pool *p = src->pool;
    struct uzram *st = src->store;
    struct uz_links *l = st->links;
    pthread_rwlock_wrlock(&src->init_lock);
    if (!src->initialised) {
        pthread_rwlock_unlock(&src->init_lock);
        return uz_error(-EINVAL, "clone: zram%d is not initialised (set its disksize)", src->id);
    }
    struct uzram *c;
    int err = add_device(p, true, &c);
    if (err < 0) {
        pthread_rwlock_unlock(&src->init_lock);
        return err;
    }
    /* The store to itself while the links are made: no write can be
     * between a unit's look and its link.  One look per unit of the
     * source: a linked unit's target (links are never chained), else
     * the unit itself if it holds anything. */
    pthread_rwlock_wrlock(&st->init_lock);
    err = uz_pool_dev_init(c, src->disksize);
    if (err == 0) {
        uint64_t su = src->base / UZ_UNIT, cu = c->base / UZ_UNIT;
        uint64_t units = (atomic_load(&src->nslots) + UZ_UNIT - 1) / UZ_UNIT;
        for (uint64_t k = 0; k < units && err == 0; k++) {
            uint32_t t = atomic_load(&l->link[su + k]);
            uint64_t target = t ? t - 1 : su + k;
            if (t && unit_used(st, su + k)) {
                /* the source's unit is linked but has pages of its own:
                 * it becomes whole first, and the clone links to it */
                err = unlink_copy(st, su + k, t - 1);
                target = su + k;
            } else if (!t && !unit_used(st, target)) {
                continue;
            }
            if (err == 0) {
                atomic_store(&l->link[cu + k], (uint32_t)target + 1);
                deps_add(st, target, +1);
                zone_link(st, &p->zones.zone[c->id], target);
            }
        }
        if (err < 0) {   /* drop the links made */
            for (uint64_t k = 0; k < units; k++) {
                uint32_t t = atomic_load(&l->link[cu + k]);
                if (t) {
                    atomic_store(&l->link[cu + k], 0);
                    deps_add(st, t - 1, -1);
                }
            }
            uz_pool_dev_teardown(c);
        }
    }
    pthread_rwlock_unlock(&st->init_lock);
    if (err < 0) {
        pthread_mutex_lock(&p->lock);
        p->dev[c->id] = NULL;
        pthread_mutex_unlock(&p->lock);
        pthread_rwlock_unlock(&c->init_lock);
        free_device(c);
        pthread_rwlock_unlock(&src->init_lock);
        return err;
    }
    pthread_rwlock_unlock(&c->init_lock);
    pthread_rwlock_unlock(&src->init_lock);
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------- stats */

void uz_pool_zone_read(struct uzram *d, struct uz_zone_snap *o)
{
    const struct uz_zone *z = &d->pool->zones.zone[d->id];
    o->pages_stored = atomic_load_explicit(&z->pages_stored, RELAXED);
    o->compr_bytes = atomic_load_explicit(&z->compr_bytes, RELAXED);
    o->same_pages = atomic_load_explicit(&z->same_pages, RELAXED);
    o->huge_pages = atomic_load_explicit(&z->huge_pages, RELAXED);
    o->shared_slots = atomic_load_explicit(&z->shared_slots, RELAXED);
    o->linked = atomic_load_explicit(&z->linked, RELAXED);
    o->linked_same = atomic_load_explicit(&z->linked_same, RELAXED);
    o->dep_bytes = atomic_load_explicit(&z->dep_bytes, RELAXED);
}

/* Recount device d's zone from its slots (store.h, "Zones"), for the
 * check: no locks, the caller holds the store exclusively. */
static void zone_recount(struct uzram *st, struct uzram *d, struct uz_zone_snap *t)
{
    memset(t, 0, sizeof *t);
    uint64_t lo = d->base, hi = d->base + atomic_load(&d->nslots);
    for (uint64_t i = uz_next_used(st, lo, hi); i < hi; i = uz_next_used(st, i + 1, hi)) {
        struct uz_slot *s = uz_slot_at(st, i);
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s);
        if (!f)
            continue;
        if (f & SLOT_SHARED) {
            t->shared_slots++;
            t->pages_stored++;
            continue;
        }
        t->pages_stored += !!(f & (SLOT_OBJ | SLOT_SAME | SLOT_GROUP));
        if (f & SLOT_GROUP) {
            if (h)
                t->compr_bytes += st->aops->obj_size(st->alloc, h);
            continue;
        }
        t->same_pages += !!(f & SLOT_SAME);
        t->huge_pages += !!(f & SLOT_HUGE);
        if (f & SLOT_OBJ)
            t->compr_bytes += uz_obj_bytes(st, f, h);
    }
    /* linked units: the target's pages where d has none */
    for (uint64_t u = lo / UZ_UNIT; u * UZ_UNIT < hi; u++) {
        if (atomic_load(&st->links->deps[u]))
            t->dep_bytes += unit_bytes(st, u);
        uint32_t l = atomic_load(&st->links->link[u]);
        if (!l)
            continue;
        uint64_t q = (uint64_t)(l - 1) * UZ_UNIT, end = q + UZ_UNIT;
        for (uint64_t i = uz_next_used(st, q, end); i < end; i = uz_next_used(st, i + 1, end)) {
            uint32_t tf = uz_slot_state(uz_slot_at(st, i));
            if (!tf || uz_slot_state(uz_slot_at(st, u * UZ_UNIT + (i - q))))
                continue;
            t->linked++;
            t->linked_same += (tf & (SLOT_SAME | SLOT_GROUP)) == SLOT_SAME;
        }
    }
}

void uzram_pool_get_stats_size(struct uzram_pool *p, struct uzram_pool_stats *out, size_t size)
{
    struct uzram_pool_stats s;
    memset(&s, 0, sizeof s);
    struct uzram *st = p->store;
    uint64_t views = 0;
    /* every device's kept counters (store.h, "Zones"): one look per device */
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < UZRAM_POOL_MAX_DEVICES; i++) {
        struct uzram *d = p->dev[i];
        if (d && !(d->holds & REMOVING)) {
            s.devices++;
            s.disksize += d->disksize;
            views += sizeof *d;
            struct uz_zone_snap z;
            uz_pool_zone_read(d, &z);
            s.orig_data_size += (z.pages_stored + z.linked) * PAGE;
            s.same_pages += z.same_pages + z.linked_same;
            s.shared_pages += z.shared_slots + z.linked;
            s.shared_bytes += z.dep_bytes;
        }
    }
    pthread_mutex_unlock(&p->lock);
    s.capacity = p->capacity * PAGE;
    struct uzram_stats ss;
    uzram_get_stats(st, &ss);
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

/* ---------------------------------------------------------------- check */

#define FAIL(...) uz_error(-EFAULT, "check: " __VA_ARGS__)

int uz_pool_check(struct uzram *st)
{
    struct uzram_pool *p = st->pool;
    pthread_mutex_lock(&p->lock);
    struct range *r = p->ranges;
    int nr = ranges_locked(p, r);
    int err = 0;
    uint64_t end = atomic_load(&st->nslots);
    for (int i = 0; i < nr && err == 0; i++) {
        if (r[i].lo % ALIGN || r[i].hi > p->capacity)   /* P1 */
            err = FAIL("pool: range %llu-%llu is not aligned inside the capacity",
                       (unsigned long long)r[i].lo, (unsigned long long)r[i].hi);
        else if (i > 0 && r[i].lo < r[i - 1].hi)
            err = FAIL("pool: ranges %llu-%llu and %llu-%llu overlap",
                       (unsigned long long)r[i - 1].lo, (unsigned long long)r[i - 1].hi,
                       (unsigned long long)r[i].lo, (unsigned long long)r[i].hi);
        else if (r[i].hi > end)   /* P2 */
            err = FAIL("pool: range %llu-%llu passes the store's end %llu",
                       (unsigned long long)r[i].lo, (unsigned long long)r[i].hi,
                       (unsigned long long)end);
    }
    /* P4, P5: links */
    struct uz_links *l = st->links;
    uint64_t units = (end + UZ_UNIT - 1) / UZ_UNIT;
    for (uint64_t u = 0; err == 0 && u < units; u++) {
        uint32_t t = atomic_load(&l->link[u]);
        if (!t)
            continue;
        if (t - 1 >= units || atomic_load(&l->link[t - 1])) {
            err = FAIL("pool: unit %llu links to unit %u, which is %s", (unsigned long long)u,
                       t - 1, t - 1 >= units ? "past the store's end" : "linked itself");
            break;
        }
        /* its own pages lie outside the target's groups */
        uint64_t q = (uint64_t)(t - 1) * UZ_UNIT;
        for (uint64_t j = 0; err == 0 && j < UZ_UNIT; j++)
            if (uz_slot_state(uz_slot_at(st, u * UZ_UNIT + j)) &&
                (uz_slot_state(uz_slot_at(st, q + j)) & SLOT_GROUP))
                err = FAIL("pool: slot %llu of linked unit %llu has a page of its own inside "
                           "its target's group", (unsigned long long)(u * UZ_UNIT + j),
                           (unsigned long long)u);
    }
    for (uint64_t t = 0; err == 0 && t < units; t++) {
        uint32_t want = atomic_load(&l->deps[t]), seen = 0;
        if (!want)
            continue;
        for (uint64_t u = 0; u < units; u++)
            seen += atomic_load(&l->link[u]) == t + 1;
        if (seen != want)
            err = FAIL("pool: unit %llu counts %u units linked to it, %u are",
                       (unsigned long long)t, want, seen);
    }
    /* P6: every device's kept counters equal a recount of its slots */
    for (int i = 0; err == 0 && i < UZRAM_POOL_MAX_DEVICES; i++) {
        struct uzram *d = p->dev[i];
        if (!d || !d->initialised)
            continue;
        struct uz_zone_snap kept, seen;
        uz_pool_zone_read(d, &kept);
        zone_recount(st, d, &seen);
        if (memcmp(&kept, &seen, sizeof kept))
            err = FAIL("pool: zram%d counts stored %llu bytes %llu same %llu huge %llu shared "
                       "%llu linked %llu (%llu same) dep bytes %llu; its slots hold %llu %llu %llu "
                       "%llu %llu %llu (%llu) %llu", d->id,
                       (unsigned long long)kept.pages_stored, (unsigned long long)kept.compr_bytes,
                       (unsigned long long)kept.same_pages, (unsigned long long)kept.huge_pages,
                       (unsigned long long)kept.shared_slots, (unsigned long long)kept.linked,
                       (unsigned long long)kept.linked_same, (unsigned long long)kept.dep_bytes,
                       (unsigned long long)seen.pages_stored, (unsigned long long)seen.compr_bytes,
                       (unsigned long long)seen.same_pages, (unsigned long long)seen.huge_pages,
                       (unsigned long long)seen.shared_slots, (unsigned long long)seen.linked,
                       (unsigned long long)seen.linked_same, (unsigned long long)seen.dep_bytes);
    }
    /* P3: live slots only inside ranges (the ranges are sorted) */
    int k = 0;
    for (uint64_t i = uz_next_used(st, 0, end); err == 0 && i < end; i = uz_next_used(st, i + 1, end)) {
        if (!uz_slot_state(uz_slot_at(st, i)))
            continue;
        while (k < nr && r[k].hi <= i)
            k++;
        if (k == nr || i < r[k].lo)
            err = FAIL("pool: slot %llu is live but no device's range holds it",
                       (unsigned long long)i);
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}
