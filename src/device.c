/*
 * device.c - layer 4 of the store (src/README.md): struct uzram's one
 * lifecycle.  Create, initialise (disksize), reset, destroy; the open
 * count that makes reshaping stores EBUSY while the disk is in use; stats;
 * automatic and explicit compaction; the invariant check.
 *
 * States.  A device is created uninitialised (no table, no allocator)
 * unless the config gives a disksize.  uz_dev_init makes it live; reset
 * (uz_dev_reset) tears the live part down and puts back the settings
 * zram's reset puts back; destroy frees everything.  What survives a
 * reset is decided in uz_dev_reset alone:
 *
 *   kept      algorithm and level, allocator, huge threshold, streams,
 *             group_pages, secondaries and their levels, auto_compact,
 *             writeback_compressed, writeback_batch_size,
 *             forward_threshold, the policies'
 *             settings (their thread is stopped and restarts at the next
 *             init)
 *   cleared   disksize and everything stored, mem_limit (0: none),
 *             backing_dev (closed, as zram's reset drops it),
 *             writeback_limit and writeback_limit_enable, the counters
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
 * Locking: init_lock is outermost (src/README.md, "Lock order").
 * The one edge up the layers: the lifecycle starts and stops the policy
 * thread (policy.h), which is above it.
 */
#define _GNU_SOURCE
#include "device.h"
#include "pool.h"
#include "page.h"
#include "dedup.h"
#include "shared.h"
#include "recompress.h"
#include "writeback.h"
#include "policy.h"
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

/* ------------------------------------------------ automatic compaction */

uint64_t uz_footprint(struct uzram *dev, const struct uz_alloc_stats *as)
{
    return as->pages_used * PAGE + atomic_load(&dev->slots.resident_pages) * PAGE +
           as->meta_bytes + dev->streams.bytes + uz_secondaries_bytes(dev) + sizeof *dev +
           (dev->bd ? dev->bd->used.chunk_bytes : 0) + uz_shared_bytes(dev) + uz_dedup_bytes(dev);
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

void uz_dev_auto_compact(struct uzram *dev)
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
    if (uz_in_pool(dev))
        return uz_pool_dev_init(dev, disksize);
    if (disksize > MAX_SLOTS * PAGE)
        return uz_error(-EINVAL, "disksize: at most %llu bytes", MAX_SLOTS * PAGE);
    disksize = (disksize + PAGE - 1) / PAGE * PAGE;
    if (disksize == 0)
        return uz_error(-EINVAL, "disksize: must be more than 0");
    const struct uz_codec *codec = uz_codec_find(dev->algorithm);
    const struct uz_alloc_ops *aops = uz_alloc_find(dev->allocator_name);
    if (!codec || !aops)
        return uz_error(-EINVAL, "unknown %s", codec ? "allocator" : "algorithm");

    uz_tally_clear(dev);
    memset(&dev->ev, 0, sizeof dev->ev);
    int err = uz_varray_init(&dev->slots, disksize / PAGE, sizeof(struct uz_slot));
    if (err < 0)
        return uz_error(err, "disksize: cannot reserve the slot table");
    struct uz_alloc_params ap = {
        .max_bytes = disksize,
        .owner_ops = &uz_slot_owner_ops,
        .owner = dev,
        .limit_pages = &dev->limit_pages,
    };
    dev->aops = aops;
    dev->alloc = aops->create(&ap);
    if (!dev->alloc) {
        uz_varray_fini(&dev->slots);
        return uz_error(-ENOMEM, "disksize: cannot create the %s allocator", aops->name);
    }
    err = uz_streams_init(&dev->streams, codec, dev->level ? dev->level : codec->level_default,
                          dev->nstreams, dev->group_pages, true);
    if (err < 0) {
        aops->destroy(dev->alloc);
        uz_varray_fini(&dev->slots);
        return uz_error(err, "disksize: cannot create compression streams");
    }
    err = uz_secondaries_init(dev);
    if (err < 0)
        goto no_secondaries;
    dev->nslots = disksize / PAGE;
    err = uz_shared_init(dev);
    if (err < 0)
        goto no_records;
    err = uz_dedup_init(dev);
    if (err < 0)
        goto no_index;
    size_t hc = aops->huge_class_size(dev->alloc);
    dev->huge_threshold = dev->huge_threshold_cfg ? dev->huge_threshold_cfg : (uint32_t)hc + 1;
    if (dev->huge_threshold > hc + 1)
        dev->huge_threshold = (uint32_t)hc + 1;
    dev->disksize = disksize;
    dev->nslots = disksize / PAGE;
    dev->initialised = true;
    /* A policy thread that cannot start leaves the device usable; the
     * policy attributes report it. */
    (void)uz_policy_start(dev);
    return 0;

no_index:
    uz_shared_fini(dev);
no_records:
    dev->nslots = 0;
    uz_secondaries_fini(dev);
no_secondaries:
    uz_streams_fini(&dev->streams);
    aops->destroy(dev->alloc);
    uz_varray_fini(&dev->slots);
    return err;
}

void uz_dev_teardown(struct uzram *dev)
{
    if (uz_in_pool(dev)) {
        (void)uz_pool_dev_teardown(dev);   /* (reset uses the pool's own: it can fail) */
        return;
    }
    if (!dev->initialised)
        return;
    uz_policy_stop(dev);
    /* Written-back pages are dropped with the device: free their blocks */
    if (dev->bd) {
        for (uint64_t i = uz_next_used(dev, 0, dev->nslots); i < dev->nslots; i = uz_next_used(dev, i + 1, dev->nslots)) {
            struct uz_slot *s = uz_slot_at(dev, i);
            if (uz_slot_state(s) & SLOT_WB)
                uz_backing_free(dev->bd, slot_handle(s) & WB_BLK_MASK);
        }
    }
    uz_dedup_fini(dev);
    uz_shared_fini(dev);   /* frees the blocks of written-back shared pages */
    uz_secondaries_fini(dev);
    uz_streams_fini(&dev->streams);
    dev->aops->destroy(dev->alloc);
    uz_varray_fini(&dev->slots);
    dev->alloc = NULL;
    dev->disksize = 0;
    dev->nslots = 0;
    dev->initialised = false;
    uz_tally_clear(dev);
    memset(&dev->ev, 0, sizeof dev->ev);
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
    if (uz_in_pool(dev))
        return uz_pool_dev_teardown(dev);   /* the settings are the pool's */
    uz_dev_teardown(dev);
    /* what zram's reset clears; everything else is kept */
    atomic_store(&dev->limit_pages, 0);
    uz_backing_close(dev->bd);
    dev->bd = NULL;
    atomic_store(&dev->wb_limit_enable, false);
    atomic_store(&dev->wb_limit, 0);
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

int uzram_check(struct uzram *dev)
{
    /* a device of a pool: the whole pool (every device's I/O takes the
     * store's init_lock for reading) */
    struct uzram *st = dev->store;
    pthread_rwlock_wrlock(&st->init_lock);
    int err = uz_dev_check(st);
    if (err == 0 && st->pool)
        err = uz_pool_check(st);
    pthread_rwlock_unlock(&st->init_lock);
    return err;
}

static int copy_name(char *dst, size_t cap, const char *src, const char *what)
{
    if (strlen(src) >= cap)
        return uz_error(-EINVAL, "%s: name too long", what);
    strcpy(dst, src);
    return 0;
}

int uzram_create(const struct uzram_config *cfg, struct uzram **out)
{
    struct uzram_config def;
    uzram_config_init(&def);
    if (cfg) {
        if (cfg->size == 0)
            return uz_error(-EINVAL, "uzram_create: the config was not made by uzram_config_init");
        if (cfg->size > sizeof def)
            return uz_error(-EINVAL, "uzram_create: the config is from a newer uzram.h (%u bytes, "
                            "this library knows %zu)", cfg->size, sizeof def);
        /* fields past the caller's size keep their defaults */
        memcpy(&def, cfg, cfg->size);
        def.size = sizeof def;
    }
    cfg = &def;
    const char *algo = cfg->algorithm ? cfg->algorithm : "lz4";
    const char *allocator = cfg->allocator ? cfg->allocator : "zsmalloc";
    const struct uz_codec *codec = uz_codec_find(algo);
    if (!codec)
        return uz_error(-EINVAL, "unknown algorithm '%s'", algo);
    if (cfg->level != 0 && (cfg->level < codec->level_min || cfg->level > codec->level_max))
        return uz_error(-EINVAL, "level %d is outside %s's range %d..%d", cfg->level, codec->name,
                        codec->level_min, codec->level_max);
    if (!uz_alloc_find(allocator))
        return uz_error(-EINVAL, "unknown allocator '%s'", allocator);
    if (cfg->huge_threshold > PAGE)
        return uz_error(-EINVAL, "huge threshold %u is larger than a page", cfg->huge_threshold);
    if (cfg->streams > 1024)
        return uz_error(-EINVAL, "at most 1024 streams");
    if (cfg->group_pages > 1 && cfg->group_pages != 2 && cfg->group_pages != 4 &&
        cfg->group_pages != 8 && cfg->group_pages != UZRAM_GROUP_AUTO)
        return uz_error(-EINVAL, "group_pages %u: give 1 (off), 2, 4, 8 or auto",
                        cfg->group_pages);
    if (cfg->compact_bound != 0 && cfg->compact_bound != UZRAM_COMPACT_OFF && cfg->compact_bound < 1000)
        return uz_error(-EINVAL, "compact bound %u/1000 is below 1.0", cfg->compact_bound);

    for (int i = 0; i < UZ_NR_SECONDARY; i++) {
        const char *n = cfg->recomp_algorithm[i];
        if (n && !uz_codec_find(n))
            return uz_error(-EINVAL, "unknown recompression algorithm '%s'", n);
    }

    struct uzram *dev = uz_calloc(1, sizeof *dev);
    if (!dev)
        return uz_error(-ENOMEM, "out of memory");
    dev->store = dev;
    pthread_rwlock_init(&dev->init_lock, NULL);
    pthread_mutex_init(&dev->policy_lock, NULL);
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        if (cfg->recomp_algorithm[i])
            snprintf(dev->recomp_algo[i].name, sizeof dev->recomp_algo[i].name, "%s",
                     uz_codec_find(cfg->recomp_algorithm[i])->name);
    atomic_store(&dev->wb_compressed, cfg->writeback_compressed);
    atomic_store(&dev->wb_batch, UZ_WB_BATCH_DEFAULT);
    atomic_store(&dev->forward_threshold, cfg->forward_threshold);
    copy_name(dev->algorithm, sizeof dev->algorithm, codec->name, "algorithm");
    dev->level = cfg->level;
    int err = copy_name(dev->allocator_name, sizeof dev->allocator_name, allocator, "allocator");
    dev->huge_threshold_cfg = cfg->huge_threshold;
    dev->nstreams = cfg->streams;
    dev->group_auto = cfg->group_pages == UZRAM_GROUP_AUTO;
    dev->group_pages = dev->group_auto ? UZ_GROUP_MAX : cfg->group_pages > 1 ? cfg->group_pages : 1;
    atomic_store(&dev->limit_pages, (cfg->mem_limit + PAGE - 1) / PAGE);
    atomic_store(&dev->compact_bound, cfg->compact_bound == 0 ? UZRAM_COMPACT_DEFAULT
                                      : cfg->compact_bound == UZRAM_COMPACT_OFF ? 0
                                      : cfg->compact_bound);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    dev->epoch = (uint64_t)ts.tv_sec;
    atomic_store(&dev->dedup_mode, UZ_DEDUP_AUTO);
    if (err == 0 && cfg->dedup) {
        int mode;
        err = uz_dedup_parse(cfg->dedup, &mode);
        if (err == 0)
            atomic_store(&dev->dedup_mode, mode);
    }
    /* the default, settling, with no secondary to settle with: off */
    bool no_secondary = true;
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        no_secondary &= !dev->recomp_algo[i].name[0];
    if (err == 0 && cfg->recompress_policy &&
        !(no_secondary && strcmp(cfg->recompress_policy, UZRAM_SETTLE) == 0))
        err = uz_policy_parse(dev, false, cfg->recompress_policy, &dev->rc_policy);
    if (err == 0 && cfg->writeback_policy)
        err = uz_policy_parse(dev, true, cfg->writeback_policy, &dev->wb_policy);
    if (err == 0 && cfg->backing_dev && cfg->backing_dev[0])
        err = uz_backing_open(&dev->bd, cfg->backing_dev);
    if (err == 0 && cfg->disksize)
        err = uz_dev_init(dev, cfg->disksize);
    if (err < 0) {
        uz_backing_close(dev->bd);
        pthread_mutex_destroy(&dev->policy_lock);
        pthread_rwlock_destroy(&dev->init_lock);
        uz_free(dev);
        return err;
    }
    *out = dev;
    return 0;
}

void uzram_destroy(struct uzram *dev)
{
    if (!dev)
        return;
    if (uz_in_pool(dev)) {
        uz_pool_dev_destroy(dev);
        return;
    }
    uz_dev_teardown(dev);
    uz_backing_close(dev->bd);
    pthread_mutex_destroy(&dev->policy_lock);
    pthread_rwlock_destroy(&dev->init_lock);
    uz_free(dev);
}

uint64_t uzram_disksize(const struct uzram *dev)
{
    return dev->disksize;
}

/* ---------------------------------------------------------------- stats */

/* A device of a pool: the pool's figures where they are the pool's (the
 * allocator's, the limit, the backing device, the index), its own where
 * it has them (what its range holds, its zone's kept counters; its own
 * events).  O(1). */
static void pool_device_stats(struct uzram *dev, struct uzram_stats *st)
{
    uzram_get_stats(dev->store, st);
    uz_dev_read_lock(dev);
    struct uz_zone_snap z = {0};
    if (dev->initialised)
        uz_pool_zone_read(dev, &z);
    st->orig_data_size = (z.pages_stored + z.linked) * PAGE;
    st->compr_data_size = z.compr_bytes;
    st->same_pages = z.same_pages + z.linked_same;
    st->huge_pages = z.huge_pages;
    st->dedup_pages = z.shared_slots + z.linked;
    struct uz_events *c = &dev->ev;
    st->invalid_io = atomic_load(&c->invalid_io);
    st->notify_free = atomic_load(&c->notify_free);
    st->reads = atomic_load(&c->reads);
    st->writes = atomic_load(&c->writes);
    uz_dev_read_unlock(dev);
}

void uzram_get_stats_size(struct uzram *dev, struct uzram_stats *out, size_t size)
{
    struct uzram_stats full, *st = &full;
    memset(st, 0, sizeof *st);
    if (uz_in_pool(dev)) {
        pool_device_stats(dev, st);
        memcpy(out, st, size < sizeof *st ? size : sizeof *st);
        return;
    }
    pthread_rwlock_rdlock(&dev->init_lock);
    st->mem_limit = atomic_load(&dev->limit_pages) * PAGE;
    if (dev->initialised) {
        struct uz_alloc_stats as;
        dev->aops->stats(dev->alloc, &as);
        struct uz_events *c = &dev->ev;
        struct uz_tally_snap t;
        uz_tally_read(dev, &t);
        st->orig_data_size = t.pages_stored * PAGE;
        st->compr_data_size = t.compr_bytes;
        st->mem_used_total = as.pages_used * PAGE;
        uint64_t max = atomic_load(&c->mem_used_max);
        st->mem_used_max = (max > as.pages_used ? max : as.pages_used) * PAGE;
        st->same_pages = t.same_pages;
        st->pages_compacted = as.pages_compacted;
        st->huge_pages = t.huge_pages;
        st->huge_pages_since = t.huge_pages_since;
        st->failed_reads = atomic_load(&c->failed_reads);
        st->failed_writes = atomic_load(&c->failed_writes);
        st->invalid_io = atomic_load(&c->invalid_io);
        st->notify_free = atomic_load(&c->notify_free);
        st->reads = atomic_load(&c->reads);
        st->writes = atomic_load(&c->writes);
        st->slot_table_bytes = atomic_load(&dev->slots.resident_pages) * PAGE;
        st->meta_bytes = as.meta_bytes;
        st->footprint = uz_footprint(dev, &as);
        st->compact_steps = atomic_load(&c->compact_steps);
        st->compact_pause_max_ns = atomic_load(&c->compact_pause_max_ns);
        st->forwarded = atomic_load(&c->forwarded);
        st->written_back = atomic_load(&c->written_back);
        st->recompressed = atomic_load(&c->recompressed);
        st->recomp_incomp = atomic_load(&c->recomp_incomp);
        struct uz_dedup_figures df;
        uz_dedup_figures(dev, &df);
        st->dedup_pages = t.shared_slots - t.records;
        st->dedup_saved_bytes = t.saved_bytes;
        st->dedup_index_bytes = uz_dedup_bytes(dev) + uz_shared_bytes(dev);
        st->dedup_hits = df.hits;
        st->dedup_refused = df.refused;
        if (dev->bd) {
            st->bd_count = uz_backing_count(dev->bd);
            st->bd_reads = atomic_load(&dev->bd->reads);
            st->bd_writes = atomic_load(&dev->bd->writes);
            st->bd_failed = atomic_load(&dev->bd->failed);
        }
    } else {
        st->footprint = sizeof *dev;
    }
    pthread_rwlock_unlock(&dev->init_lock);
    memcpy(out, st, size < sizeof *st ? size : sizeof *st);
}

void uz_mem_used_max_reset(struct uzram *dev)
{
    struct uz_alloc_stats as;
    dev->aops->stats(dev->alloc, &as);
    atomic_store(&dev->ev.mem_used_max, as.pages_used);
}

uint64_t uzram_compact(struct uzram *dev)
{
    dev = dev->store;   /* a pool's devices share one allocator */
    pthread_rwlock_rdlock(&dev->init_lock);
    uint64_t freed = dev->initialised ? dev->aops->compact(dev->alloc, 0) : 0;
    pthread_rwlock_unlock(&dev->init_lock);
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
