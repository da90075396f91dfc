/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store_life.c - layer 4 of the store (src/README.md): a store's lifecycle.
 * A store (store.h) is where pages live; devices are ranges of it.
 *
 * States.  uz_store_create makes a store with its settings and no live
 * part (no table, no allocator).  uz_store_init makes the live part for
 * a number of slots: the table (address space for all of them), the
 * allocator, the streams, the secondaries, the shared records, the
 * content index, and starts the policy thread if a policy is on.
 * uz_store_teardown drops the live part and everything stored (the
 * settings stay); uz_store_destroy frees the store.  A device made by
 * uzram_create has a store of its own whose live part follows the
 * device's (made at disksize, dropped at reset); a pool's store is made
 * live for the pool's capacity when the pool is made.
 *
 * Automatic compaction is the store's (one allocator): after a write or
 * discard the data path calls uz_store_auto_compact.
 *
 * Locking: the store's init_lock (src/README.md, "Lock order") is held
 * for writing while the live part is made or dropped, or the store is
 * not reachable by anyone else yet.
 */
#define _GNU_SOURCE
#include "store_life.h"
#include "page.h"
#include "dedup.h"
#include "shared.h"
#include "recompress.h"
#include "writeback.h"
#include "policy.h"
#include "clone.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE UZRAM_PAGE_SIZE

/* ------------------------------------------------ automatic compaction */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Called after every write or discard, with no slot locked.  Frees and
 * overwrites leave holes in zspages and dead records in the pack; when the
 * footprint passes the bound (compact_bound thousandths of
 * compr_data_size), run bounded steps of compaction (COMPACT_STEP_PAGES
 * pages of sources each) on this thread until the footprint is back under
 * the aim or COMPACT_MAX_STEPS steps ran: one discard can free thousands
 * of objects at once, more than one step can take back (with one step per
 * call the footprint overshot the bound by up to 0.1% before the next
 * writes caught up).  Up to bound - 0.002 only one writer at a time does
 * (dev->compacting) and the others go on; past it every writer does, so
 * the writes wait for compaction as they did when a step held the pack's
 * lock throughout.  A step that frees nothing backs off for
 * COMPACT_BACKOFF frees (past bound - 0.002, for 8).  The pause a step
 * causes is only to writers of its size class (or, a record at a time, of
 * the pack) and to the few slots it moves; it is measured and reported
 * (debug_stat). */
#define COMPACT_STEP_PAGES 32
#define COMPACT_MAX_STEPS 16
#define COMPACT_BACKOFF 64

void uz_store_auto_compact(struct uz_store *dev)
{
    uint32_t bound = atomic_load_explicit(&dev->compact_bound, memory_order_relaxed);
    if (bound == 0)
        return;
    uint64_t frees = uz_tally_frees(dev);
    uint64_t retry_at = atomic_load_explicit(&dev->compact_retry_at, memory_order_relaxed);
    bool backed_off = frees < retry_at;
    /* frees since the step that freed nothing (it set retry_at) */
    uint64_t since = backed_off ? frees + COMPACT_BACKOFF - retry_at : 0;
    /* Aim a little under the bound (5 thousandths) so that the writes
     * between two checks cannot carry the footprint over it. */
    uint64_t aim = bound > 1005 ? bound - 5 : 1000;
    for (int step = 0; step < COMPACT_MAX_STEPS; step++) {
        struct uz_alloc_stats as;
        dev->aops->stats(dev->alloc, &as);
        uint64_t compr = uz_tally_compr_bytes(dev);
        uint64_t fp = uz_footprint(dev, &as);
        if (fp * 1000 <= compr * aim)
            return;
        /* Between the aim and 2 thousandths under the bound one writer
         * at a time compacts and the others go on; above that every
         * writer does, beside the one at it (compact() takes concurrent
         * callers), so writes slow down until the footprint is back
         * under the aim. */
        bool hard = fp * 1000 > compr * (bound > 1002 ? bound - 2 : 1000);
        /* backed off: over the bound still a try after 8 more frees (a
         * fill frees nothing: then none) */
        if (backed_off && (!hard || since < 8))
            return;
        bool mine = !atomic_exchange(&dev->compacting, true);
        if (!mine && !hard)
            return;
        uint64_t t0 = mono_ns();
        uint64_t freed = dev->aops->compact(dev->alloc, COMPACT_STEP_PAGES);
        uint64_t ns = mono_ns() - t0;
        atomic_fetch_add_explicit(&dev->ev.compact_steps, 1, memory_order_relaxed);
        uint64_t max = atomic_load_explicit(&dev->ev.compact_pause_max_ns, memory_order_relaxed);
        while (ns > max && !atomic_compare_exchange_weak(&dev->ev.compact_pause_max_ns, &max, ns))
            ;
        if (freed == 0)
            atomic_store(&dev->compact_retry_at, frees + COMPACT_BACKOFF);
        if (mine)
            atomic_store(&dev->compacting, false);
        if (freed == 0)
            return;
    }
}

/* ------------------------------------------------------------ lifecycle */

uint64_t uz_footprint(struct uz_store *st, const struct uz_alloc_stats *as)
{
    return as->pages_used * PAGE + atomic_load(&st->slots.resident_pages) * PAGE +
           as->meta_bytes + st->streams.bytes + uz_secondaries_bytes(st) + sizeof *st +
           (st->bd ? st->bd->used.chunk_bytes : 0) + uz_shared_bytes(st) + uz_dedup_bytes(st);
}

int uz_store_create(unsigned max_devices, struct uz_store **out)
{
    struct uz_store *st = uz_calloc(1, sizeof *st);
    if (!st)
        return uz_error(-ENOMEM, "out of memory (a store)");
    st->dev = uz_calloc(max_devices, sizeof *st->dev);
    st->ranges = st->dev ? uz_calloc(max_devices, sizeof *st->ranges) : NULL;
    if (!st->ranges) {
        uz_free(st->dev);
        uz_free(st);
        return uz_error(-ENOMEM, "out of memory (a store's device table)");
    }
    st->max_devices = max_devices;
    pthread_mutex_init(&st->dev_lock, NULL);
    pthread_rwlock_init(&st->init_lock, NULL);
    pthread_mutex_init(&st->policy_lock, NULL);
    pthread_mutex_init(&st->recomp_lock, NULL);
    snprintf(st->algorithm, sizeof st->algorithm, "lz4");
    snprintf(st->allocator_name, sizeof st->allocator_name, "zsmalloc");
    st->group_pages = 1;
    atomic_store(&st->compact_bound, UZRAM_COMPACT_DEFAULT);
    atomic_store(&st->dedup_mode, UZ_DEDUP_ON);
    atomic_store(&st->wb_batch, UZ_WB_BATCH_DEFAULT);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    st->epoch = (uint64_t)ts.tv_sec;
    *out = st;
    return 0;
}

int uz_store_init(struct uz_store *st, uint64_t nslots)
{
    const struct uz_codec *codec = uz_codec_find(st->algorithm);
    const struct uz_alloc_ops *aops = uz_alloc_find(st->allocator_name);
    if (!codec || !aops)
        return uz_error(-EINVAL, "unknown %s", codec ? "allocator" : "algorithm");

    uz_tally_clear(st);
    memset(&st->ev, 0, sizeof st->ev);
    int err = uz_varray_init(&st->slots, nslots, sizeof(struct uz_slot));
    if (err < 0)
        return uz_error(err, "disksize: cannot reserve the slot table");
    struct uz_alloc_params ap = {
        .max_bytes = nslots * PAGE,
        .owner_ops = &uz_slot_owner_ops,
        .owner = st,
        .limit_pages = &st->limit_pages,
        /* slot indices and record ids (shared.c) are below nslots */
        .backref_limit = nslots < UINT32_MAX ? (uint32_t)nslots : 0,
    };
    st->aops = aops;
    st->alloc = aops->create(&ap);
    if (!st->alloc) {
        uz_varray_fini(&st->slots);
        return uz_error(-ENOMEM, "disksize: cannot create the %s allocator", aops->name);
    }
    /* group_pages auto with dedup on stores single pages (io.c: settling
     * makes the groups): its streams need no group scratch */
    uint32_t gpages = st->group_auto && atomic_load(&st->dedup_mode) != UZ_DEDUP_OFF
                          ? 1 : st->group_pages;
    err = uz_streams_init(&st->streams, codec, st->level ? st->level : codec->level_default,
                          st->nstreams, gpages, true, &st->dict);
    if (err < 0) {
        aops->destroy(st->alloc);
        uz_varray_fini(&st->slots);
        return uz_error(err, "disksize: cannot create compression streams");
    }
    err = uz_secondaries_init(st);
    if (err < 0)
        goto no_secondaries;
    st->nslots = nslots;
    err = uz_shared_init(st);
    if (err < 0)
        goto no_records;
    err = uz_dedup_init(st);
    if (err < 0)
        goto no_index;
    size_t hc = aops->huge_class_size(st->alloc);
    st->huge_threshold = st->huge_threshold_cfg ? st->huge_threshold_cfg : (uint32_t)hc + 1;
    if (st->huge_threshold > hc + 1)
        st->huge_threshold = (uint32_t)hc + 1;
    st->initialised = true;
    /* A policy thread that cannot start leaves the store usable; the
     * policy attributes report it. */
    (void)uz_policy_start(st);
    return 0;

no_index:
    uz_shared_fini(st);
no_records:
    st->nslots = 0;
    uz_secondaries_fini(st);
no_secondaries:
    uz_streams_fini(&st->streams);
    aops->destroy(st->alloc);
    uz_varray_fini(&st->slots);
    return err;
}

void uz_store_teardown(struct uz_store *st)
{
    if (!st->initialised)
        return;
    uz_policy_stop(st);
    /* Written-back pages are dropped with the store: free their blocks */
    uint64_t end = atomic_load(&st->nslots);
    if (st->bd) {
        for (uint64_t i = uz_next_used(st, 0, end); i < end; i = uz_next_used(st, i + 1, end)) {
            struct uz_slot *s = uz_slot_at(st, i);
            if (uz_slot_state(s) & SLOT_WB)
                uz_backing_free(st->bd, slot_handle(s) & WB_BLK_MASK);
        }
    }
    uz_dedup_fini(st);
    uz_shared_fini(st);   /* frees the blocks of written-back shared pages */
    uz_secondaries_fini(st);
    uz_streams_fini(&st->streams);
    st->aops->destroy(st->alloc);
    uz_varray_fini(&st->slots);
    st->alloc = NULL;
    st->nslots = 0;
    st->initialised = false;
    uz_tally_clear(st);
    memset(&st->ev, 0, sizeof st->ev);
}

void uz_store_reset_settings(struct uz_store *st)
{
    atomic_store(&st->limit_pages, 0);
    uz_backing_close(st->bd);
    st->bd = NULL;
    atomic_store(&st->wb_limit_enable, false);
    atomic_store(&st->wb_limit, 0);
}

int uz_dedup_parse(const char *s, int *mode)
{
    if (!strcmp(s, "0") || !strcmp(s, "off"))
        *mode = UZ_DEDUP_OFF;
    else if (!strcmp(s, "1") || !strcmp(s, "on"))
        *mode = UZ_DEDUP_ON;
    else if (!strcmp(s, "auto"))
        *mode = UZ_DEDUP_AUTO;
    else
        return uz_error(-EINVAL, "dedup: '%s': give 0 (off), 1 (on) or auto", s);
    return 0;
}

void uz_store_destroy(struct uz_store *st)
{
    if (!st)
        return;
    uz_store_teardown(st);
    uz_backing_close(st->bd);
    uz_dict_clear(&st->dict);
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        uz_dict_clear(&st->recomp_algo[i].dict);
    pthread_mutex_destroy(&st->policy_lock);
    pthread_mutex_destroy(&st->recomp_lock);
    pthread_rwlock_destroy(&st->init_lock);
    pthread_mutex_destroy(&st->dev_lock);
    uz_free(st->ranges);
    uz_free(st->dev);
    uz_free(st);
}

void uz_mem_used_max_reset(struct uz_store *st)
{
    struct uz_alloc_stats as;
    st->aops->stats(st->alloc, &as);
    atomic_store(&st->ev.mem_used_max, as.pages_used);
}

/* -------------------------------------------------------------- devices */

int uz_store_add(struct uz_store *st, struct uzram *d)
{
    pthread_mutex_lock(&st->dev_lock);
    unsigned id = 0;
    while (id < st->max_devices && st->dev[id])
        id++;
    if (id < st->max_devices) {
        d->id = (int)id;
        st->dev[id] = d;
    }
    pthread_mutex_unlock(&st->dev_lock);
    if (id == st->max_devices)
        return uz_error(-ENOSPC, "hot_add: the pool has %u devices, the most it takes",
                        st->max_devices);
    return 0;
}

bool uz_store_del(struct uz_store *st, struct uzram *d)
{
    pthread_mutex_lock(&st->dev_lock);
    st->dev[d->id] = NULL;
    bool any = false;
    for (unsigned i = 0; i < st->max_devices && !any; i++)
        any = st->dev[i] != NULL;
    pthread_mutex_unlock(&st->dev_lock);
    return !any && !st->pool;
}

static int cmp_range(const void *a, const void *b)
{
    const struct uz_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The sized devices' ranges, sorted; dev_lock held.  Returns how many. */
static int ranges_locked(struct uz_store *st, struct uz_range *r)
{
    int n = 0;
    for (unsigned i = 0; i < st->max_devices; i++) {
        struct uzram *d = st->dev[i];
        if (d && d->initialised) {
            r[n].lo = d->base;
            r[n].hi = d->base + atomic_load(&d->nslots);
            n++;
        }
    }
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    return n;
}

/* First fit for need slots (a multiple of UZ_UNIT) in the capacity,
 * between the sized devices' ranges; dev_lock held.  UINT64_MAX: none. */
static uint64_t first_fit(struct uz_store *st, uint64_t need)
{
    struct uz_range *r = st->ranges;
    int nr = ranges_locked(st, r);
    uint64_t at = 0;
    for (int i = 0; i < nr; i++) {
        if (r[i].lo >= at + need)
            break;
        uint64_t end = (r[i].hi + UZ_UNIT - 1) / UZ_UNIT * UZ_UNIT;
        if (end > at)
            at = end;
    }
    return at + need > st->capacity ? UINT64_MAX : at;
}

int uz_store_range_get(struct uz_store *st, struct uzram *d, uint64_t n)
{
    uint64_t at = 0;
    if (st->capacity == 0) {
        /* a device's own store: its live part is the device's size */
        int err = uz_store_init(st, n);
        if (err < 0)
            return err;
        pthread_mutex_lock(&st->dev_lock);
    } else {
        if (n > st->capacity)
            return uz_error(-ENOSPC, "disksize: %llu bytes is more than the pool's capacity (%llu)",
                            (unsigned long long)(n * PAGE), (unsigned long long)(st->capacity * PAGE));
        uint64_t need = (n + UZ_UNIT - 1) / UZ_UNIT * UZ_UNIT;
        pthread_mutex_lock(&st->dev_lock);
        at = first_fit(st, need);
        if (at == UINT64_MAX) {
            pthread_mutex_unlock(&st->dev_lock);
            return uz_error(-ENOSPC, "disksize: no free %llu bytes in the pool's capacity of %llu "
                            "(the devices' sizes add up to near it)", (unsigned long long)(n * PAGE),
                            (unsigned long long)(st->capacity * PAGE));
        }
        /* its units are its zone's (store.h), which is empty: a release
         * left it so */
        for (uint64_t u = at / UZ_UNIT; u < (at + need) / UZ_UNIT; u++)
            atomic_store_explicit(&st->zones->of_unit[u], (uint16_t)(d->id + 1),
                                  memory_order_relaxed);
        if (atomic_load(&st->nslots) < at + n)
            atomic_store(&st->nslots, at + n);
    }
    d->base = at;
    atomic_store(&d->nslots, n);
    d->disksize = n * PAGE;
    d->initialised = true;
    pthread_mutex_unlock(&st->dev_lock);
    return 0;
}

void uz_store_range_put(struct uz_store *st, struct uzram *d)
{
    uint64_t lo = d->base, hi = d->base + atomic_load(&d->nslots);
    if (st->capacity == 0) {
        /* a device's own store: the whole table at once, and the
         * settings zram's reset clears (store_life.h) */
        uz_store_teardown(st);
        uz_store_reset_settings(st);
    } else {
        uz_slot_free_range(st, lo, hi);
        /* every page freed, every link dropped (uz_clone_release): its
         * zone is empty (its linked pages went with the links) */
        for (uint64_t u = lo / UZ_UNIT; u * UZ_UNIT < hi; u++)
            atomic_store_explicit(&st->zones->of_unit[u], 0, memory_order_relaxed);
        memset(&st->zones->zone[d->id], 0, sizeof st->zones->zone[d->id]);
    }
    pthread_mutex_lock(&st->dev_lock);
    d->initialised = false;
    d->disksize = 0;
    atomic_store(&d->nslots, 0);
    d->base = 0;
    pthread_mutex_unlock(&st->dev_lock);
}

/* ---------------------------------------------------------------- check */

#define FAIL(...) uz_error(-EFAULT, "check: " __VA_ARGS__)

int uz_store_check(struct uz_store *st)
{
    pthread_mutex_lock(&st->dev_lock);
    struct uz_range *r = st->ranges;
    int nr = ranges_locked(st, r);
    int err = 0;
    uint64_t end = atomic_load(&st->nslots);
    uint64_t cap = st->capacity ? st->capacity : end;
    for (int i = 0; i < nr && err == 0; i++) {
        if (r[i].lo % UZ_UNIT || r[i].hi > cap)   /* P1 */
            err = FAIL("store: range %llu-%llu is not aligned inside the capacity",
                       (unsigned long long)r[i].lo, (unsigned long long)r[i].hi);
        else if (i > 0 && r[i].lo < r[i - 1].hi)
            err = FAIL("store: ranges %llu-%llu and %llu-%llu overlap",
                       (unsigned long long)r[i - 1].lo, (unsigned long long)r[i - 1].hi,
                       (unsigned long long)r[i].lo, (unsigned long long)r[i].hi);
        else if (r[i].hi > end)   /* P2 */
            err = FAIL("store: range %llu-%llu passes the store's end %llu",
                       (unsigned long long)r[i].lo, (unsigned long long)r[i].hi,
                       (unsigned long long)end);
    }
    if (err == 0 && st->initialised)
        err = uz_clone_check(st);   /* P4-P6 */
    /* P3: live slots only inside ranges (the ranges are sorted) */
    int k = 0;
    for (uint64_t i = st->initialised ? uz_next_used(st, 0, end) : end; err == 0 && i < end;
         i = uz_next_used(st, i + 1, end)) {
        if (!uz_slot_state(uz_slot_at(st, i)))
            continue;
        while (k < nr && r[k].hi <= i)
            k++;
        if (k == nr || i < r[k].lo)
            err = FAIL("store: slot %llu is live but no device's range holds it",
                       (unsigned long long)i);
    }
    pthread_mutex_unlock(&st->dev_lock);
    return err;
}
