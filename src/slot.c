/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * slot.c - layer 1 of the store (src/README.md): the slot table's locks
 * and pins, the one commit of a slot's content, and the invariant check.
 *
 * The table is a varray of 12-byte struct uz_slot (store.h), one per
 * 4 KiB page of the disk; only table pages holding live slots are
 * resident.  Each object's back-reference is its slot index, so the
 * allocator can find and lock the owner when it moves the object
 * (compaction): uz_slot_owner_ops below.
 *
 * Locking (the global order is in src/README.md, "Lock order"):
 *   - slot lock: one bit in the slot's flags word, a futex when contended.
 *     Everything about a slot (its handle, its object's bytes) is read and
 *     changed only under its lock.  Several slots are locked only in
 *     ascending index order (uz_lock_range).  Compaction holds an
 *     allocator class lock and only *tries* slot locks (owner_pin), so the
 *     order is never inverted.
 *   - varray pin: taken before a slot lock, so the table page under a
 *     locked slot can never be released.
 *
 * Counters.  The content counters (struct uz_tally: stored pages,
 * compressed bytes, same, huge, group members, written-back pages, frees)
 * are written here alone, by uz_slot_commit, which sees the old and the
 * new content of every change.  `make check` keeps it so (tests/layers.sh
 * greps for any other writer).  Event counters (reads, failures, ...)
 * are the callers' own (struct uz_events).
 */
#define _GNU_SOURCE
#include "slot.h"
#include "shared.h"
#include "clone.h"
#include "error.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE UZRAM_PAGE_SIZE

/* ------------------------------------------------------------- locking */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

bool uz_slot_trylock(struct uz_slot *s)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    while (!(f & SLOT_LOCK)) {
        if (atomic_compare_exchange_weak_explicit(&s->flags, &f, f | SLOT_LOCK,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
    return false;
}

void uz_slot_lock(struct uz_slot *s)
{
    int spins = 0;
    for (;;) {
        uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
        if (!(f & SLOT_LOCK)) {
            if (atomic_compare_exchange_weak_explicit(&s->flags, &f, f | SLOT_LOCK,
                                                      memory_order_acquire, memory_order_relaxed))
                return;
            continue;
        }
        if (++spins < 100) {
            __builtin_ia32_pause();
            continue;
        }
        if (!(f & SLOT_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&s->flags, &f, f | SLOT_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        futex_wait(&s->flags, f | SLOT_WAITERS);
    }
}

void uz_slot_unlock(struct uz_slot *s)
{
    uint32_t f = atomic_fetch_and_explicit(&s->flags, ~SLOT_LOCKBITS, memory_order_release);
    if (f & SLOT_WAITERS)
        futex_wake_all(&s->flags);
}

struct uz_slot *uz_slot_get(struct uz_store *dev, uint64_t idx)
{
    uz_varray_pin(&dev->slots, idx);
    struct uz_slot *s = uz_slot_at(dev, idx);
    uz_slot_lock(s);
    return s;
}

void uz_slot_put(struct uz_store *dev, uint64_t idx, struct uz_slot *s)
{
    uz_slot_unlock(s);
    uz_varray_unpin(&dev->slots, idx);
}

void uz_lock_range(struct uz_store *dev, uint64_t lo, uint64_t hi)
{
    uint64_t per = dev->slots.per_page;
    uz_varray_pin(&dev->slots, lo);
    if ((hi - 1) / per != lo / per)
        uz_varray_pin(&dev->slots, hi - 1);
    for (uint64_t i = lo; i < hi; i++)
        uz_slot_lock(uz_slot_at(dev, i));
}

void uz_unlock_range(struct uz_store *dev, uint64_t lo, uint64_t hi)
{
    uint64_t per = dev->slots.per_page;
    for (uint64_t i = lo; i < hi; i++)
        uz_slot_unlock(uz_slot_at(dev, i));
    if ((hi - 1) / per != lo / per)
        uz_varray_unpin(&dev->slots, hi - 1);
    uz_varray_unpin(&dev->slots, lo);
}

/* ------------------------------------------------------ state and time */

/* Replace the state bits of a locked slot, keeping the lock bits (a waiter
 * may set WAITERS at any time) and the atime. */
void uz_slot_set_state(struct uz_slot *s, uint32_t state)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->flags, &f,
                                                  (f & ~SLOT_STATE) | (state & SLOT_STATE),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void uz_slot_mark(struct uz_slot *s, uint32_t set, uint32_t clear)
{
    set &= SLOT_IDLE | SLOT_INCOMP;
    clear &= SLOT_IDLE | SLOT_INCOMP;
    uz_slot_set_state(s, (uz_slot_state(s) & ~clear) | set);
}

uint32_t uz_now(const struct uz_store *dev)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec - dev->epoch);
}

/* A locked slot was accessed now: set its atime and clear IDLE, as zram
 * does on every access. */
void uz_slot_touch(struct uz_store *dev, struct uz_slot *s)
{
    uint32_t now = uz_now(dev) << SLOT_ATIME_SHIFT;
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->flags, &f,
                                                  ((f & ~SLOT_ATIME_MASK) | now) & ~SLOT_IDLE,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

uint32_t uz_slot_peek(struct uz_store *dev, uint64_t idx)
{
    return atomic_load_explicit(&uz_slot_at(dev, idx)->flags, memory_order_acquire);
}

uint64_t uz_next_used(struct uz_store *dev, uint64_t idx, uint64_t end)
{
    uint64_t lim = end < dev->nslots ? end : dev->nslots;
    uint64_t i = uz_varray_next_used(&dev->slots, idx, lim);
    return i < lim ? i : end;
}

size_t uz_obj_bytes(struct uz_store *dev, uint32_t f, uint64_t h)
{
    return (f & SLOT_HUGE) ? PAGE : dev->aops->obj_size(dev->alloc, h);
}

/* ------------------------------------------------- owner ops (compaction) */

static bool owner_pin(void *owner, uint32_t backref)
{
    struct uz_store *dev = owner;
    if (backref & UZ_BACKREF_SHARED)   /* a shared record's page: its record */
        return uz_slot_trylock(&uz_shared_at(dev, backref & ~UZ_BACKREF_SHARED)->s);
    /* A slot that owns an object is live, so its table page is resident
     * and stays so: no varray pin is needed, only the slot lock. */
    return uz_slot_trylock(uz_slot_at(dev, backref));
}

static struct uz_slot *owner_slot(struct uz_store *dev, uint32_t backref)
{
    if (backref & UZ_BACKREF_SHARED)
        return &uz_shared_at(dev, backref & ~UZ_BACKREF_SHARED)->s;
    return uz_slot_at(dev, backref);
}

static void owner_moved(void *owner, uint32_t backref, uint64_t old_handle, uint64_t new_handle)
{
    struct uz_slot *s = owner_slot(owner, backref);
    if (slot_handle(s) == old_handle)
        slot_set_handle(s, new_handle);
}

static void owner_unpin(void *owner, uint32_t backref)
{
    uz_slot_unlock(owner_slot(owner, backref));
}

const struct uz_owner_ops uz_slot_owner_ops = {
    .pin = owner_pin,
    .moved = owner_moved,
    .unpin = owner_unpin,
};

/* -------------------------------------------------------------- commit */

#define RELAXED memory_order_relaxed

/* Does a slot in state f hold an allocator object under its handle? */
static bool holds_object(uint32_t f, uint64_t h)
{
    return (f & SLOT_OBJ) || ((f & SLOT_GROUP) && h != 0);
}

/* Is a slot in state f counted as a stored page (in RAM)? */
static bool counts_stored(uint32_t f)
{
    return (f & (SLOT_OBJ | SLOT_SAME | SLOT_GROUP)) != 0;
}

/* The zone (store.h) of slot idx of a pool's store, or NULL. */
static struct uz_zone *zone_of(struct uz_store *dev, uint64_t idx)
{
    struct uz_zones *zs = dev->zones;
    if (!zs)
        return NULL;
    uint16_t k = atomic_load_explicit(&zs->of_unit[idx / UZ_UNIT], RELAXED);
    return k ? &zs->zone[k - 1] : NULL;
}

/* Is a slot in state f counted in its zone's pages_stored? */
static bool zone_stored(uint32_t f)
{
    return counts_stored(f) || (f & SLOT_SHARED);
}

/* A slot of zone z in state f, with an object of bytes, enters the
 * zone's counters (d = +1) or leaves them (d = -1). */
static void zone_count(struct uz_zone *z, uint32_t f, size_t bytes, int64_t d)
{
    if (!f)
        return;
    atomic_fetch_add_explicit(&z->compr_bytes, (uint64_t)d * bytes, RELAXED);
    if (!(f & SLOT_GROUP) && (f & SLOT_HUGE))
        atomic_fetch_add_explicit(&z->huge_pages, (uint64_t)d, RELAXED);
    else if (!(f & SLOT_GROUP) && (f & SLOT_SAME))
        atomic_fetch_add_explicit(&z->same_pages, (uint64_t)d, RELAXED);
    if (f & SLOT_SHARED)
        atomic_fetch_add_explicit(&z->shared_slots, (uint64_t)d, RELAXED);
    if (zone_stored(f))
        atomic_fetch_add_explicit(&z->pages_stored, (uint64_t)d, RELAXED);
}

/* A slot of zone z goes from state f (object bytes old) to state (new):
 * the zone's counters follow.  Group members count as tally does. */
static void zone_commit(struct uz_store *dev, struct uz_zone *z, uint64_t idx, uint32_t f, size_t old,
                        uint32_t state, size_t new)
{
    zone_count(z, f, old, -1);
    zone_count(z, state, new, +1);
    if (old != new && uz_unit_has_dependents(dev, idx))
        atomic_fetch_add_explicit(&z->dep_bytes, (uint64_t)new - (uint64_t)old, RELAXED);
    /* a slot of a linked unit that gains (loses) a page of its own no
     * longer (again) reads its target's page there */
    if (!f != !state) {
        uint32_t l = uz_link_of(dev, idx);
        uint32_t tf = l ? uz_slot_state(uz_slot_at(dev, (uint64_t)(l - 1) * UZ_UNIT + idx % UZ_UNIT))
                        : 0;
        if (tf) {
            int64_t d = state ? -1 : 1;
            atomic_fetch_add_explicit(&z->linked, (uint64_t)d, RELAXED);
            if ((tf & (SLOT_SAME | SLOT_GROUP)) == SLOT_SAME)
                atomic_fetch_add_explicit(&z->linked_same, (uint64_t)d, RELAXED);
        }
    }
}

void uz_zone_share(struct uz_store *dev, uint64_t idx, uint32_t f, size_t bytes)
{
    struct uz_zone *z = zone_of(dev, idx);
    if (z)
        zone_commit(dev, z, idx, f, bytes, SLOT_SHARED, 0);
}

void uz_slot_commit(struct uz_store *dev, uint64_t idx, struct uz_slot *s, uint32_t state,
                    uint64_t handle, size_t bytes)
{
    struct uz_tally *t = &dev->tally;
    uint32_t f = uz_slot_state(s);
    uint64_t h = slot_handle(s);
    state &= SLOT_STATE;
    /* a group member's size bits are SAME/HUGE elsewhere: test GROUP first */
    bool old_group = f & SLOT_GROUP, new_group = state & SLOT_GROUP;
    struct uz_zone *z = zone_of(dev, idx);
    size_t zold = 0;

    /* the old content out */
    if (f) {
        if (holds_object(f, h)) {
            size_t old = old_group ? dev->aops->obj_size(dev->alloc, h) : uz_obj_bytes(dev, f, h);
            zold = old;
            atomic_fetch_sub_explicit(&t->compr_bytes, old, RELAXED);
            dev->aops->free(dev->alloc, h);
            atomic_fetch_add_explicit(&t->frees, 1, RELAXED);
        }
        if (old_group)
            atomic_fetch_sub_explicit(&t->group_members, 1, RELAXED);
        else if (f & SLOT_HUGE)
            atomic_fetch_sub_explicit(&t->huge_pages, 1, RELAXED);
        else if (f & SLOT_SAME)
            atomic_fetch_sub_explicit(&t->same_pages, 1, RELAXED);
        if (f & SLOT_WB) {
            uz_backing_free(dev->bd, h & WB_BLK_MASK);
            atomic_fetch_sub_explicit(&t->wb_pages, 1, RELAXED);
        }
        if (f & SLOT_SHARED) {
            atomic_fetch_sub_explicit(&t->shared_slots, 1, RELAXED);
            uz_shared_unref(dev, (uint32_t)h);   /* record lock inside the slot lock */
        }
        if (counts_stored(f))
            atomic_fetch_sub_explicit(&t->pages_stored, 1, RELAXED);
    }

    /* the new content in */
    if (state) {
        if (holds_object(state, handle))
            atomic_fetch_add_explicit(&t->compr_bytes, bytes, RELAXED);
        if (new_group) {
            atomic_fetch_add_explicit(&t->group_members, 1, RELAXED);
        } else if (state & SLOT_HUGE) {
            atomic_fetch_add_explicit(&t->huge_pages, 1, RELAXED);
            atomic_fetch_add_explicit(&t->huge_pages_since, 1, RELAXED);
        } else if (state & SLOT_SAME) {
            atomic_fetch_add_explicit(&t->same_pages, 1, RELAXED);
        }
        if (state & SLOT_WB)
            atomic_fetch_add_explicit(&t->wb_pages, 1, RELAXED);
        if (state & SLOT_SHARED)   /* its reference was taken: uz_shared_ref */
            atomic_fetch_add_explicit(&t->shared_slots, 1, RELAXED);
        if (counts_stored(state))
            atomic_fetch_add_explicit(&t->pages_stored, 1, RELAXED);
    }

    if (z)
        zone_commit(dev, z, idx, f, zold, state, holds_object(state, handle) ? bytes : 0);
    slot_set_handle(s, state ? handle : 0);
    uz_slot_set_state(s, state);
    if (!f && state)
        uz_varray_live(&dev->slots, idx, +1);
    else if (f && !state)
        uz_varray_live(&dev->slots, idx, -1);
}

void uz_slot_free(struct uz_store *dev, uint64_t idx, struct uz_slot *s)
{
    uz_slot_commit(dev, idx, s, 0, 0, 0);
}

void uz_tally_read(struct uz_store *dev, struct uz_tally_snap *o)
{
    const struct uz_tally *t = &dev->tally;
    o->pages_stored = atomic_load_explicit(&t->pages_stored, RELAXED);
    o->compr_bytes = atomic_load_explicit(&t->compr_bytes, RELAXED);
    o->same_pages = atomic_load_explicit(&t->same_pages, RELAXED);
    o->huge_pages = atomic_load_explicit(&t->huge_pages, RELAXED);
    o->huge_pages_since = atomic_load_explicit(&t->huge_pages_since, RELAXED);
    o->group_members = atomic_load_explicit(&t->group_members, RELAXED);
    o->wb_pages = atomic_load_explicit(&t->wb_pages, RELAXED);
    o->frees = atomic_load_explicit(&t->frees, RELAXED);
    o->shared_slots = atomic_load_explicit(&t->shared_slots, RELAXED);
    o->records = atomic_load_explicit(&t->records, RELAXED);
    o->saved_bytes = atomic_load_explicit(&t->saved_bytes, RELAXED);
    o->record_bytes = atomic_load_explicit(&t->record_bytes, RELAXED);
}

uint64_t uz_tally_compr_bytes(struct uz_store *dev)
{
    return atomic_load_explicit(&dev->tally.compr_bytes, RELAXED);
}

uint64_t uz_tally_frees(struct uz_store *dev)
{
    return atomic_load_explicit(&dev->tally.frees, RELAXED);
}

void uz_tally_clear(struct uz_store *dev)
{
    memset(&dev->tally, 0, sizeof dev->tally);
}

void uz_note_mem_used(struct uz_store *dev)
{
    struct uz_alloc_stats st;
    dev->aops->stats(dev->alloc, &st);
    uint64_t cur = st.pages_used;
    uint64_t max = atomic_load_explicit(&dev->ev.mem_used_max, RELAXED);
    while (cur > max &&
           !atomic_compare_exchange_weak_explicit(&dev->ev.mem_used_max, &max, cur, RELAXED, RELAXED))
        ;
}

/* --------------------------------------------------------------- check */

#define FAIL(...) uz_error(-EFAULT, "check: " __VA_ARGS__)

/* I4 for the group whose leader is gb (state f0): every member agrees. */
static int check_group(struct uz_store *dev, uint64_t gb, uint32_t f0)
{
    uint32_t k = slot_group_pages(f0);
    uint32_t same = SLOT_GROUP | SLOT_GK_MASK | SLOT_PRIO_MASK;
    if (gb % k != 0 || gb + k > dev->nslots)
        return FAIL("slot %llu: group of %u is not aligned inside the disk",
                    (unsigned long long)gb, k);
    bool ended = false;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t f = uz_slot_state(uz_slot_at(dev, gb + j));
        uint64_t h = slot_handle(uz_slot_at(dev, gb + j));
        if ((f & same) != (f0 & same))
            return FAIL("slot %llu: group member disagrees with its leader %llu (state %#x, "
                        "leader %#x)", (unsigned long long)(gb + j), (unsigned long long)gb, f, f0);
        if (f & (SLOT_OBJ | SLOT_WB))
            return FAIL("slot %llu: group member with OBJ or WB (state %#x)",
                        (unsigned long long)(gb + j), f);
        if (h == 0 && j == 0)
            return FAIL("slot %llu: group leader without a chunk", (unsigned long long)gb);
        if (h == 0)
            ended = true;
        else if (ended)
            return FAIL("slot %llu: group chunk after the last one", (unsigned long long)(gb + j));
    }
    return 0;
}

/* Walk the table: I3, I4, I6 and the recount (into *n, *objects,
 * *obj_bytes, refs_seen[record id]). */
static int check_slots(struct uz_store *dev, struct uz_tally_snap *n, uint64_t *objects,
                       uint64_t *obj_bytes, uint32_t *refs_seen)
{
    uint64_t per = dev->slots.per_page, checked = UINT64_MAX;
    for (uint64_t i = uz_next_used(dev, 0, dev->nslots); i < dev->nslots; i = uz_next_used(dev, i + 1, dev->nslots)) {
        if (i / per != checked) {
            checked = i / per;
            /* I6 for the table page starting here */
            uint64_t lo = i - i % per, hi = lo + per < dev->nslots ? lo + per : dev->nslots, live = 0;
            for (uint64_t j = lo; j < hi; j++)
                live += uz_slot_state(uz_slot_at(dev, j)) != 0;
            if (uz_varray_count(&dev->slots, lo) != live)
                return FAIL("table page of slot %llu counts %u users, %llu slots are live",
                            (unsigned long long)lo, uz_varray_count(&dev->slots, lo),
                            (unsigned long long)live);
        }
        struct uz_slot *s = uz_slot_at(dev, i);
        uint32_t f = uz_slot_state(s);
        uint64_t h = slot_handle(s);
        if (!f)
            continue;
        if (atomic_load_explicit(&s->flags, RELAXED) & SLOT_LOCKBITS)
            return FAIL("slot %llu is locked", (unsigned long long)i);
        n->pages_stored += counts_stored(f);
        if (f & SLOT_GROUP) {
            n->group_members++;
            uint32_t k = slot_group_pages(f);
            if (i % k == 0) {
                int err = check_group(dev, i, f);
                if (err < 0)
                    return err;
            }
        } else if (f & SLOT_SHARED) {
            if (f & ~(SLOT_SHARED | SLOT_IDLE))
                return FAIL("slot %llu: shared with other state bits (%#x)", (unsigned long long)i, f);
            if (h >= atomic_load(&dev->record_hw))
                return FAIL("slot %llu: record id %llu is out of range", (unsigned long long)i,
                            (unsigned long long)h);
            n->shared_slots++;
            refs_seen[h]++;
            continue;
        } else {
            int kinds = !!(f & SLOT_OBJ) + !!(f & SLOT_WB) + !!(f & SLOT_SAME);
            if (kinds != 1)
                return FAIL("slot %llu: state %#x is not one kind of content", (unsigned long long)i, f);
            if ((f & SLOT_HUGE) && !(f & SLOT_OBJ))
                return FAIL("slot %llu: HUGE without an object", (unsigned long long)i);
            n->same_pages += !!(f & SLOT_SAME);
            n->huge_pages += !!(f & SLOT_HUGE);
        }
        if (holds_object(f, h)) {
            (*objects)++;
            size_t sz = dev->aops->obj_size(dev->alloc, h);
            if ((f & SLOT_HUGE) && !(f & SLOT_GROUP) && sz != PAGE)
                return FAIL("slot %llu: huge object of %zu bytes", (unsigned long long)i, sz);
            n->compr_bytes += sz;
            *obj_bytes += sz;
            uint32_t b = dev->aops->backref(dev->alloc, h);
            if (b != (uint32_t)i)
                return FAIL("slot %llu: its object's back-reference is %u", (unsigned long long)i, b);
        }
        if (f & SLOT_WB) {
            n->wb_pages++;
            if (!dev->bd || !uz_sb_test(&dev->bd->used, h & WB_BLK_MASK))
                return FAIL("slot %llu: backing block %llu is not allocated", (unsigned long long)i,
                            (unsigned long long)(h & WB_BLK_MASK));
        }
    }
    return 0;
}

int uz_dev_check(struct uz_store *dev)
{
    if (!dev->initialised)
        return 0;
    struct uz_tally_snap n = {0};
    uint64_t objects = 0, obj_bytes = 0;
    uint64_t hw = atomic_load(&dev->record_hw);
    uint32_t *refs_seen = calloc(hw ? hw : 1, sizeof *refs_seen);
    if (!refs_seen)
        return uz_error(-ENOMEM, "check: no memory to count references");
    int err = check_slots(dev, &n, &objects, &obj_bytes, refs_seen);
    if (err == 0)   /* I8: the records */
        err = uz_shared_check(dev, refs_seen, &n, &objects, &obj_bytes);
    free(refs_seen);
    if (err < 0)
        return err;
    struct uz_tally_snap t;
    uz_tally_read(dev, &t);
#define SAME_COUNT(field, what)                                                          \
    if (t.field != n.field)                                                              \
        return FAIL("%s: the counter says %llu, the table holds %llu", what,             \
                    (unsigned long long)t.field, (unsigned long long)n.field);
    SAME_COUNT(pages_stored, "stored pages")
    SAME_COUNT(compr_bytes, "compressed bytes")
    SAME_COUNT(same_pages, "same-filled pages")
    SAME_COUNT(huge_pages, "huge pages")
    SAME_COUNT(group_members, "group members")
    SAME_COUNT(wb_pages, "written-back pages")
    SAME_COUNT(shared_slots, "shared slots")
    SAME_COUNT(records, "shared records")
    SAME_COUNT(saved_bytes, "bytes saved by sharing")
    SAME_COUNT(record_bytes, "bytes of shared records")
#undef SAME_COUNT
    struct uz_alloc_stats as;
    dev->aops->stats(dev->alloc, &as);
    if (as.objects != objects || as.obj_bytes != obj_bytes)
        return FAIL("the allocator holds %llu objects of %llu bytes, the table %llu of %llu",
                    (unsigned long long)as.objects, (unsigned long long)as.obj_bytes,
                    (unsigned long long)objects, (unsigned long long)obj_bytes);
    if (dev->bd && uz_backing_count(dev->bd) != n.wb_pages)
        return FAIL("the backing device holds %llu blocks, the table %llu",
                    (unsigned long long)uz_backing_count(dev->bd), (unsigned long long)n.wb_pages);
    return dev->aops->check ? dev->aops->check(dev->alloc) : 0;
}

void uz_slot_free_range(struct uz_store *st, uint64_t lo, uint64_t hi)
{
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
}

/* ------------------------------------------- shared records' content */

/* A record (shared.c holds the table) changes here alone, as a slot
 * does: its references, its page and every counter they move. */

#define MAX_REFS 0xfffffff0u

/* Bytes of the page of a record in state f with handle h (0 on the
 * backing device). */
static size_t rec_bytes(struct uz_store *dev, uint32_t f, uint64_t h)
{
    if (!(f & SLOT_OBJ))
        return 0;
    return uz_obj_bytes(dev, f, h);
}

int uz_shared_make(struct uz_store *dev, uint64_t idx, struct uz_slot *s, uint32_t *idp)
{
    uint32_t f = uz_slot_state(s);
    uint64_t h = slot_handle(s), id;
    if (uz_sb_alloc(&dev->record_ids, &id) < 0)
        return -ENOMEM;   /* no message: the caller stores the page alone */
    uz_varray_pin(&dev->records, id);
    struct uz_shared *r = uz_shared_at(dev, (uint32_t)id);
    uz_slot_lock(&r->s);
    r->refs = 1;
    slot_set_handle(&r->s, h);
    uz_slot_set_state(&r->s, f & (SLOT_OBJ | SLOT_WB | SLOT_HUGE | SLOT_PRIO_MASK | SLOT_INCOMP));
    uz_varray_live(&dev->records, id, +1);
    if (f & SLOT_OBJ) {
        dev->aops->set_backref(dev->alloc, h, UZ_BACKREF_SHARED | (uint32_t)id);
        atomic_fetch_add_explicit(&dev->tally.record_bytes, uz_obj_bytes(dev, f, h), RELAXED);
    }
    uz_slot_unlock(&r->s);
    uz_varray_unpin(&dev->records, id);
    uint64_t hw = atomic_load_explicit(&dev->record_hw, RELAXED);
    while (hw < id + 1 &&
           !atomic_compare_exchange_weak_explicit(&dev->record_hw, &hw, id + 1, RELAXED, RELAXED))
        ;
    /* the slot now refers to the record; the page's counts move with it */
    uz_zone_share(dev, idx, f, (f & SLOT_OBJ) ? uz_obj_bytes(dev, f, h) : 0);
    slot_set_handle(s, id);
    uz_slot_set_state(s, SLOT_SHARED | (f & SLOT_IDLE));
    atomic_fetch_add_explicit(&dev->tally.shared_slots, 1, RELAXED);
    atomic_fetch_add_explicit(&dev->tally.records, 1, RELAXED);
    *idp = (uint32_t)id;
    return 0;
}

int uz_shared_ref(struct uz_store *dev, struct uz_shared *r)
{
    if (r->refs >= MAX_REFS)
        return -EMLINK;
    r->refs++;
    uint32_t f = uz_slot_state(&r->s);
    if (f & SLOT_OBJ) {
        atomic_fetch_add_explicit(&dev->tally.pages_stored, 1, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.saved_bytes, rec_bytes(dev, f, slot_handle(&r->s)),
                                  RELAXED);
    }
    return 0;
}

/* Release a record's page (its last reference is gone). */
static void release_page(struct uz_store *dev, uint32_t f, uint64_t h)
{
    if (f & SLOT_OBJ) {
        size_t bytes = uz_obj_bytes(dev, f, h);
        atomic_fetch_sub_explicit(&dev->tally.compr_bytes, bytes, RELAXED);
        atomic_fetch_sub_explicit(&dev->tally.record_bytes, bytes, RELAXED);
        if (f & SLOT_HUGE)
            atomic_fetch_sub_explicit(&dev->tally.huge_pages, 1, RELAXED);
        dev->aops->free(dev->alloc, h);
        atomic_fetch_add_explicit(&dev->tally.frees, 1, RELAXED);
    } else if (f & SLOT_WB) {
        uz_backing_free(dev->bd, h & WB_BLK_MASK);
        atomic_fetch_sub_explicit(&dev->tally.wb_pages, 1, RELAXED);
    }
}

void uz_shared_unref(struct uz_store *dev, uint32_t id)
{
    struct uz_shared *r = uz_shared_get(dev, id);
    uint32_t f = uz_slot_state(&r->s);
    uint64_t h = slot_handle(&r->s);
    if (f & SLOT_OBJ)
        atomic_fetch_sub_explicit(&dev->tally.pages_stored, 1, RELAXED);
    if (--r->refs > 0) {
        if (f & SLOT_OBJ)
            atomic_fetch_sub_explicit(&dev->tally.saved_bytes, rec_bytes(dev, f, h), RELAXED);
        uz_shared_put(dev, id, r);
        return;
    }
    release_page(dev, f, h);
    slot_set_handle(&r->s, 0);
    uz_slot_set_state(&r->s, 0);
    atomic_fetch_sub_explicit(&dev->tally.records, 1, RELAXED);
    uz_sb_clear(&dev->record_ids, id);
    uz_varray_live(&dev->records, id, -1);
    uz_shared_put(dev, id, r);
}

void uz_shared_commit(struct uz_store *dev, uint32_t id, struct uz_shared *r, uint32_t state,
                      uint64_t handle, size_t bytes)
{
    (void)id;
    uint32_t f = uz_slot_state(&r->s);
    uint64_t h = slot_handle(&r->s);
    uint64_t refs = r->refs;
    size_t old = rec_bytes(dev, f, h);
    if (f & SLOT_OBJ) {
        atomic_fetch_sub_explicit(&dev->tally.pages_stored, refs, RELAXED);
        atomic_fetch_sub_explicit(&dev->tally.saved_bytes, (refs - 1) * old, RELAXED);
    }
    release_page(dev, f, h);
    state &= SLOT_STATE & ~(SLOT_LOCKBITS | SLOT_IDLE);
    if (state & SLOT_OBJ) {
        atomic_fetch_add_explicit(&dev->tally.compr_bytes, bytes, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.record_bytes, bytes, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.pages_stored, refs, RELAXED);
        atomic_fetch_add_explicit(&dev->tally.saved_bytes, (refs - 1) * bytes, RELAXED);
        if (state & SLOT_HUGE) {
            atomic_fetch_add_explicit(&dev->tally.huge_pages, 1, RELAXED);
            atomic_fetch_add_explicit(&dev->tally.huge_pages_since, 1, RELAXED);
        }
    } else if (state & SLOT_WB) {
        atomic_fetch_add_explicit(&dev->tally.wb_pages, 1, RELAXED);
    }
    slot_set_handle(&r->s, handle);
    uz_slot_set_state(&r->s, state);
}

int uz_shared_check(struct uz_store *dev, const uint32_t *refs_seen, struct uz_tally_snap *n,
                    uint64_t *objects, uint64_t *obj_bytes)
{
    uint64_t live = 0, hw = atomic_load(&dev->record_hw);
    for (uint64_t i = 0; i < hw; i++) {
        if (i % dev->records.per_page == 0 && !uz_varray_page_used(&dev->records, i)) {
            i += dev->records.per_page - 1;
            continue;
        }
        struct uz_shared *r = uz_shared_at(dev, (uint32_t)i);
        uint32_t f = uz_slot_state(&r->s);
        uint64_t h = slot_handle(&r->s);
        bool used = uz_sb_test(&dev->record_ids, i);
        if (!r->refs) {
            if (f || used)
                return FAIL("record %llu: no references but state %#x, id %s",
                            (unsigned long long)i, f, used ? "in use" : "free");
            continue;
        }
        live++;
        if (!used)
            return FAIL("record %llu: live but its id is free", (unsigned long long)i);

        if (r->refs != refs_seen[i])
            return FAIL("record %llu: counts %u references, %u slots refer to it",
                        (unsigned long long)i, r->refs, refs_seen[i]);
        if ((f & (SLOT_OBJ | SLOT_WB)) == 0 || (f & (SLOT_OBJ | SLOT_WB)) == (SLOT_OBJ | SLOT_WB) ||
            (f & (SLOT_SAME | SLOT_GROUP | SLOT_SHARED)))
            return FAIL("record %llu: state %#x is not one object or one block",
                        (unsigned long long)i, f);
        if (f & SLOT_OBJ) {
            size_t sz = dev->aops->obj_size(dev->alloc, h);
            if ((f & SLOT_HUGE) && sz != PAGE)
                return FAIL("record %llu: huge object of %zu bytes", (unsigned long long)i, sz);
            uint32_t b = dev->aops->backref(dev->alloc, h);
            if (b != (UZ_BACKREF_SHARED | (uint32_t)i))
                return FAIL("record %llu: its object's back-reference is %#x",
                            (unsigned long long)i, b);
            n->compr_bytes += sz;
            n->pages_stored += r->refs;
            n->huge_pages += !!(f & SLOT_HUGE);
            n->saved_bytes += (uint64_t)(r->refs - 1) * sz;
            n->record_bytes += sz;
            (*objects)++;
            *obj_bytes += sz;
        } else {
            n->wb_pages++;
            if (!dev->bd || !uz_sb_test(&dev->bd->used, h & WB_BLK_MASK))
                return FAIL("record %llu: backing block %llu is not allocated",
                            (unsigned long long)i, (unsigned long long)(h & WB_BLK_MASK));
        }
    }
    n->records = live;
    if (uz_sb_count(&dev->record_ids) != live)
        return FAIL("%llu record ids in use, %llu records live",
                    (unsigned long long)uz_sb_count(&dev->record_ids), (unsigned long long)live);
    return 0;
}
