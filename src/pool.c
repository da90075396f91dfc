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
 * Clones.  uzram_clone makes a device of the source's size and, in one
 * pass over the source's slots, gives it the source's content: a
 * same-filled page is copied (it is its fill word); a page that is an
 * object or a backing block becomes a shared record (shared.c) if it is
 * not one already, and the clone's slot one more reference to it.  The
 * objects themselves are not touched: a clone costs its slot table and
 * a 16-byte record per page the two share, nothing per byte of data.
 * Writing a page of either device replaces that device's reference with a
 * page of its own (uz_slot_commit drops the reference); the record goes
 * with its last reference.  Nothing points from a clone to its source, so
 * either can go first.  Pages in compressed groups are the exception: a
 * group's chunks are one compressed stream, which records (one page each)
 * cannot hold, so the clone gets a copy of the chunks' bytes.
 *
 * Invariants (uz_pool_check verifies each one, with the store's own):
 *   P1  every device's range lies inside the capacity, starts at a
 *       multiple of ALIGN, and no two ranges overlap;
 *   P2  the store's nslots is at least the end of every range;
 *   P3  no live slot of the store lies outside every device's range (a
 *       reset or removed device left nothing behind).
 *
 * Locking (src/README.md, "Lock order"): a device's init_lock, then the
 * store's (for reading, by every data-path call of a pool device; for
 * writing by uzram_check and by a clone), then the pool's lock, which
 * guards the device table, the holds and the ranges and is held only to
 * change or read them, never across I/O.  A clone holds the source's
 * init_lock for writing, the clone's (nobody sees it half made) and the
 * store's: the pool's I/O waits for the one pass over the source's table
 * (uz_shared_clone), which then needs no slot lock.
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
/* Slots per table page (4080 / 12) times the largest group over their
 * common factor: lcm(340, 8). */
#define ALIGN 680u
#define DEFAULT_CAPACITY (1ull << 40)     /* bytes: 1 TiB */
#define MAX_CAPACITY (1ull << 43)         /* back-references are 31 bits */

struct uzram_pool {
    struct uzram *store;
    pthread_mutex_t lock;              /* dev[], holds, ranges */
    uint64_t capacity;                 /* slots */
    struct uzram *dev[UZRAM_POOL_MAX_DEVICES];
    struct range { uint64_t lo, hi; } ranges[UZRAM_POOL_MAX_DEVICES]; /* scratch, pool lock */
};

/* ------------------------------------------------------------ the pool */

int uzram_pool_create(const struct uzram_config *cfg, struct uzram_pool **out)
{
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
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return 0;
}

int uzram_pool_destroy(struct uzram_pool *p)
{
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
    /* the store is torn down as a device of its own */
    atomic_store(&p->store->nslots, 0);
    p->store->pool = NULL;
    uzram_destroy(p->store);
    uz_free(p);
    return 0;
}

/* A new device, uninitialised, numbered lowest free; with its init_lock
 * held for writing if lock_init (a clone being made).  Pool lock held. */
static int add_locked(struct uzram_pool *p, bool lock_init, struct uzram **out)
{
    int id = 0;
    while (id < UZRAM_POOL_MAX_DEVICES && p->dev[id])
        id++;
    if (id == UZRAM_POOL_MAX_DEVICES)
        return uz_error(-ENOSPC, "hot_add: the pool has %d devices, the most it takes",
                        UZRAM_POOL_MAX_DEVICES);
    struct uzram *d = uz_calloc(1, sizeof *d);
    if (!d)
        return uz_error(-ENOMEM, "hot_add: out of memory");
    pthread_rwlock_init(&d->init_lock, NULL);
    pthread_mutex_init(&d->policy_lock, NULL);
    d->store = p->store;
    d->pool = p;
    d->id = id;
    d->epoch = p->store->epoch;
    if (lock_init)
        pthread_rwlock_wrlock(&d->init_lock);
    p->dev[id] = d;
    *out = d;
    return 0;
}

int uzram_pool_add(struct uzram_pool *p, struct uzram **out)
{
    pthread_mutex_lock(&p->lock);
    int err = add_locked(p, false, out);
    pthread_mutex_unlock(&p->lock);
    return err;
}

static void free_device(struct uzram *d)
{
    pthread_mutex_destroy(&d->policy_lock);
    pthread_rwlock_destroy(&d->init_lock);
    uz_free(d);
}

/* Take device d out of the table (pool lock not held) and free it; its
 * init_lock is not held.  Everything it holds is freed first. */
static void remove_device(struct uzram_pool *p, struct uzram *d)
{
    pthread_rwlock_wrlock(&d->init_lock);
    pthread_rwlock_rdlock(&p->store->init_lock);
    uz_pool_dev_teardown(d);
    pthread_rwlock_unlock(&p->store->init_lock);
    pthread_rwlock_unlock(&d->init_lock);
    free_device(d);
}

void uz_pool_dev_destroy(struct uzram *d)
{
    struct uzram_pool *p = d->pool;
    pthread_mutex_lock(&p->lock);
    p->dev[d->id] = NULL;
    pthread_mutex_unlock(&p->lock);
    remove_device(p, d);
}

int uzram_pool_remove(struct uzram_pool *p, int id)
{
    pthread_mutex_lock(&p->lock);
    struct uzram *d = id >= 0 && id < UZRAM_POOL_MAX_DEVICES ? p->dev[id] : NULL;
    if (!d) {
        pthread_mutex_unlock(&p->lock);
        return uz_error(-ENOENT, "hot_remove: no device zram%d", id);
    }
    unsigned opens = atomic_load(&d->opens);
    if (opens || d->holds) {
        pthread_mutex_unlock(&p->lock);
        return uz_error(-EBUSY, "hot_remove: zram%d is %s", id,
                        opens ? "open (an open disk, an NBD client); close it first"
                              : "in use by another request");
    }
    p->dev[id] = NULL;   /* nobody finds it now; its memory goes below */
    pthread_mutex_unlock(&p->lock);
    remove_device(p, d);
    return 0;
}

struct uzram *uzram_pool_get(struct uzram_pool *p, int id)
{
    if (id < 0 || id >= UZRAM_POOL_MAX_DEVICES)
        return NULL;
    pthread_mutex_lock(&p->lock);
    struct uzram *d = p->dev[id];
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
    if (d->holds)
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
    if (atomic_load(&st->nslots) < at + n)
        atomic_store(&st->nslots, at + n);
    d->initialised = true;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void uz_pool_dev_teardown(struct uzram *d)
{
    if (!d->initialised)
        return;
    struct uzram *st = d->store;
    uint64_t lo = d->base, hi = d->base + atomic_load(&d->nslots);
    for (uint64_t i = uz_next_used(st, lo); i < hi; i = uz_next_used(st, i + 1)) {
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
    pthread_mutex_lock(&d->pool->lock);
    d->initialised = false;
    d->disksize = 0;
    atomic_store(&d->nslots, 0);
    d->base = 0;
    pthread_mutex_unlock(&d->pool->lock);
}

/* ---------------------------------------------------------------- clone */

int uzram_clone(struct uzram *src, struct uzram **out)
{
    if (!uz_in_pool(src))
        return uz_error(-EINVAL, "clone: the device is not in a pool (make it with "
                        "uzram_pool_add; a device of its own has room for itself only)");
    struct uzram_pool *p = src->pool;
    struct uzram *st = src->store;
    pthread_rwlock_wrlock(&src->init_lock);
    if (!src->initialised) {
        pthread_rwlock_unlock(&src->init_lock);
        return uz_error(-EINVAL, "clone: zram%d is not initialised (set its disksize)", src->id);
    }
    struct uzram *c;
    pthread_mutex_lock(&p->lock);
    int err = add_locked(p, true, &c);
    pthread_mutex_unlock(&p->lock);
    if (err < 0) {
        pthread_rwlock_unlock(&src->init_lock);
        return err;
    }
    /* the store to itself: no slot is locked, no compaction or policy
     * runs, so the pass takes no lock per slot */
    pthread_rwlock_wrlock(&st->init_lock);
    err = uz_pool_dev_init(c, src->disksize);
    if (err == 0)
        err = uz_shared_clone(st, src->base, c->base, atomic_load(&src->nslots));
    if (err < 0) {
        uz_pool_dev_teardown(c);   /* drops every reference it took */
        pthread_rwlock_unlock(&st->init_lock);
        pthread_mutex_lock(&p->lock);
        p->dev[c->id] = NULL;
        pthread_mutex_unlock(&p->lock);
        pthread_rwlock_unlock(&c->init_lock);
        free_device(c);
        pthread_rwlock_unlock(&src->init_lock);
        return err;
    }
    pthread_rwlock_unlock(&st->init_lock);
    pthread_rwlock_unlock(&c->init_lock);
    pthread_rwlock_unlock(&src->init_lock);
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------- stats */

void uz_pool_recount(struct uzram *st, uint64_t lo, uint64_t hi, struct uz_tally_snap *t)
{
    memset(t, 0, sizeof *t);
    for (uint64_t i = uz_next_used(st, lo); i < hi; i = uz_next_used(st, i + 1)) {
        if (!(uz_slot_peek(st, i) & SLOT_STATE))
            continue;
        struct uz_slot *s = uz_slot_get(st, i);
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s);
        if (f & SLOT_SHARED) {
            t->shared_slots++;
            struct uz_shared *r = uz_shared_get(st, (uint32_t)h);
            uint32_t rf = uz_slot_state(&r->s);
            t->pages_stored += !!(rf & SLOT_OBJ);
            t->huge_pages += !!(rf & SLOT_HUGE);
            t->wb_pages += !!(rf & SLOT_WB);
            uz_shared_put(st, (uint32_t)h, r);
        } else if (f & SLOT_GROUP) {
            t->pages_stored++;
            t->group_members++;
            if (h)
                t->compr_bytes += st->aops->obj_size(st->alloc, h);
        } else if (f) {
            t->pages_stored += !!(f & (SLOT_OBJ | SLOT_SAME));
            t->same_pages += !!(f & SLOT_SAME);
            t->huge_pages += !!(f & SLOT_HUGE);
            t->wb_pages += !!(f & SLOT_WB);
            if (f & SLOT_OBJ)
                t->compr_bytes += uz_obj_bytes(st, f, h);
        }
        uz_slot_put(st, i, s);
    }
}

void uzram_pool_get_stats_size(struct uzram_pool *p, struct uzram_pool_stats *out, size_t size)
{
    struct uzram_pool_stats s;
    memset(&s, 0, sizeof s);
    struct uzram *st = p->store;
    uint64_t views = 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < UZRAM_POOL_MAX_DEVICES; i++) {
        struct uzram *d = p->dev[i];
        if (d) {
            s.devices++;
            s.disksize += d->disksize;
            views += sizeof *d;
        }
    }
    pthread_mutex_unlock(&p->lock);
    s.capacity = p->capacity * PAGE;
    struct uzram_stats ss;
    uzram_get_stats(st, &ss);
    struct uz_tally_snap t;
    uz_tally_read(st, &t);
    s.orig_data_size = ss.orig_data_size;
    s.compr_data_size = ss.compr_data_size;
    s.shared_bytes = t.record_bytes;
    s.shared_pages = t.shared_slots;
    s.saved_bytes = t.saved_bytes;
    s.same_pages = ss.same_pages;
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
    /* P3: live slots only inside ranges (the ranges are sorted) */
    int k = 0;
    for (uint64_t i = uz_next_used(st, 0); err == 0 && i < end; i = uz_next_used(st, i + 1)) {
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
