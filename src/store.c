/*
 * store.c - the device: slot table, read / write / discard, same-filled and
 * huge pages, partial I/O.  The compcache/ramzswap design in user space.
 *
 * Data structures:
 *
 *   slot table   a varray of 16-byte struct uz_slot, one per 4 KiB page of
 *                the disk.  Only pages of the table that hold live slots are
 *                resident (a 1 TiB device with a few pages written costs a
 *                few pages of table).
 *   objects      compressed pages, in the allocator (zsmalloc by default).
 *                Each object's back-reference is its slot index, so the
 *                allocator can find and lock the owner when it moves the
 *                object (compaction); see owner_ops below.
 *   streams      per-CPU codec contexts and scratch buffers (streams.c).
 *
 * Locking:
 *   - init_lock (rwlock): read by data-path calls, written by init/reset.
 *   - slot lock: one bit in the slot's flags word, a futex when contended.
 *     Everything about a slot (its handle, its object's bytes) is read and
 *     changed only under its lock.  Order: slot lock -> stream lock ->
 *     allocator class lock.  Compaction holds a class lock and only
 *     *tries* slot locks, so the order is never inverted.
 *   - varray pin: taken before a slot lock, so the table page under a
 *     locked slot can never be released.
 *
 * Write of one page (slot locked):
 *   same-filled?  -> drop old content, keep the fill word in the slot.
 *   else compress; if the result is >= huge_threshold, keep the raw page.
 *   allocate the new object *before* freeing the old one, so a failed
 *   allocation (memory limit, ENOMEM) leaves the old content intact.
 *   With a backing device (the compcache forward): a page whose compressed
 *   size reaches forward_threshold, or whose allocation fails (memory
 *   limit), goes to a backing block instead (writeback.c).  Without one,
 *   the data path pays a single predictable branch for all this.
 *
 * Read of one page: same fill, object (decompressed with the algorithm of
 * the slot's priority bits: 0 the primary, 1..3 a secondary), or a backing
 * block (SLOT_WB, read through the streams' aligned buffers).
 *
 * Groups (group.c): with group_pages K > 1, a write of a whole aligned
 * group goes to uz_group_write.  Every single-page path tests SLOT_GROUP
 * once its slot is locked; a member is unlocked and handed to group.c,
 * which locks the whole group in ascending order.  With K = 1 (the
 * default) the data path pays one predictable branch per page for this.
 */
#define _GNU_SOURCE
#include "store.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE UZRAM_PAGE_SIZE
/* Back-references are 31 bits (the top bit marks shared objects). */
#define MAX_SLOTS (1ull << 31)

/* ---------------------------------------------------------------- slots */

static struct uz_slot *slot_at(struct uzram *dev, uint64_t idx)
{
    return uz_varray_at(&dev->slots, idx);
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static bool slot_trylock(struct uz_slot *s)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    while (!(f & SLOT_LOCK)) {
        if (atomic_compare_exchange_weak_explicit(&s->flags, &f, f | SLOT_LOCK,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
    return false;
}

static void slot_lock(struct uz_slot *s)
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

static void slot_unlock(struct uz_slot *s)
{
    uint32_t f = atomic_fetch_and_explicit(&s->flags, ~SLOT_LOCKBITS, memory_order_release);
    if (f & SLOT_WAITERS)
        futex_wake_all(&s->flags);
}

void uz_slot_lock(struct uz_slot *s)
{
    slot_lock(s);
}

void uz_slot_unlock(struct uz_slot *s)
{
    slot_unlock(s);
}

/* Replace the state bits of a locked slot, keeping the lock bits (a waiter
 * may set WAITERS at any time) and the atime. */
static void slot_set(struct uz_slot *s, uint32_t state)
{
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->flags, &f,
                                                  (f & ~SLOT_STATE) | (state & SLOT_STATE),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* A locked slot was accessed now: set its atime and clear IDLE, as zram
 * does on every access. */
static void slot_touch(struct uzram *dev, struct uz_slot *s)
{
    uint32_t now = uz_now(dev) << SLOT_ATIME_SHIFT;
    uint32_t f = atomic_load_explicit(&s->flags, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->flags, &f,
                                                  ((f & ~SLOT_ATIME_MASK) | now) & ~SLOT_IDLE,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static uint32_t slot_state(struct uz_slot *s)
{
    return atomic_load_explicit(&s->flags, memory_order_relaxed) & SLOT_STATE;
}

void uz_slot_touch(struct uzram *dev, struct uz_slot *s)
{
    slot_touch(dev, s);
}

/* Compressed size of a slot's object (state f, handle h). */
static size_t obj_bytes(struct uzram *dev, uint32_t f, uint64_t h)
{
    return (f & SLOT_HUGE) ? PAGE : dev->aops->obj_size(dev->alloc, h);
}

size_t uz_obj_bytes(struct uzram *dev, uint32_t f, uint64_t h)
{
    return obj_bytes(dev, f, h);
}

/* Pin the table page and lock the slot. */
static struct uz_slot *slot_get(struct uzram *dev, uint64_t idx)
{
    uz_varray_pin(&dev->slots, idx);
    struct uz_slot *s = slot_at(dev, idx);
    slot_lock(s);
    return s;
}

static void slot_put(struct uzram *dev, uint64_t idx, struct uz_slot *s)
{
    slot_unlock(s);
    uz_varray_unpin(&dev->slots, idx);
}

struct uz_slot *uz_slot_get(struct uzram *dev, uint64_t idx)
{
    return slot_get(dev, idx);
}

void uz_slot_put(struct uzram *dev, uint64_t idx, struct uz_slot *s)
{
    slot_put(dev, idx, s);
}

void uz_slot_set(struct uz_slot *s, uint32_t state)
{
    slot_set(s, state);
}

uint32_t uz_slot_peek(struct uzram *dev, uint64_t idx)
{
    return atomic_load_explicit(&slot_at(dev, idx)->flags, memory_order_acquire);
}

uint64_t uz_next_used(struct uzram *dev, uint64_t idx)
{
    uint64_t per = dev->slots.per_page;
    while (idx < dev->nslots && !uz_varray_page_used(&dev->slots, idx))
        idx = (idx / per + 1) * per;
    return idx < dev->nslots ? idx : dev->nslots;
}

uint32_t uz_now(const struct uzram *dev)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec - dev->epoch);
}

/* ------------------------------------------------- owner ops (compaction) */

static bool owner_pin(void *owner, uint32_t backref)
{
    struct uzram *dev = owner;
    /* A slot that owns an object is live, so its table page is resident
     * and stays so: no varray pin is needed, only the slot lock. */
    return slot_trylock(slot_at(dev, backref));
}

static void owner_moved(void *owner, uint32_t backref, uint64_t old_handle, uint64_t new_handle)
{
    struct uz_slot *s = slot_at(owner, backref);
    if (slot_handle(s) == old_handle)
        slot_set_handle(s, new_handle);
}

static void owner_unpin(void *owner, uint32_t backref)
{
    slot_unlock(slot_at(owner, backref));
}

static const struct uz_owner_ops store_owner_ops = {
    .pin = owner_pin,
    .moved = owner_moved,
    .unpin = owner_unpin,
};

/* ------------------------------------------------------------ page ops */

/* Pages handed in by callers need not be 8-byte aligned: load words with
 * memcpy (one instruction on x86). */
static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* If the page is one 64-bit word repeated, store it in *word. */
static bool page_same_filled(const void *page, uint64_t *word)
{
    const uint8_t *p = page;
    uint64_t v = load64(p);
    /* Most pages that are not same-filled differ at the end or early, so
     * checking the last word first rarely runs the loop for nothing. */
    if (load64(p + PAGE - 8) != v)
        return false;
    for (size_t i = 8; i < PAGE - 8; i += 8)
        if (load64(p + i) != v)
            return false;
    *word = v;
    return true;
}

static void fill_page(void *dst, uint64_t word)
{
    uint8_t *p = dst;
    if (word == 0) {
        memset(p, 0, PAGE);
        return;
    }
    for (size_t i = 0; i < PAGE; i += 8)
        memcpy(p + i, &word, 8);
}

static void note_mem_used(struct uzram *dev);
void uz_note_mem_used(struct uzram *dev)
{
    note_mem_used(dev);
}

static void note_mem_used(struct uzram *dev)
{
    struct uz_alloc_stats st;
    dev->aops->stats(dev->alloc, &st);
    uint64_t cur = st.pages_used;
    uint64_t max = atomic_load_explicit(&dev->c.mem_used_max, memory_order_relaxed);
    while (cur > max &&
           !atomic_compare_exchange_weak_explicit(&dev->c.mem_used_max, &max, cur,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* Drop whatever a locked slot holds; it becomes empty. */
static void slot_free(struct uzram *dev, uint64_t idx, struct uz_slot *s)
{
    uint32_t f = slot_state(s);
    if (f == 0)
        return;
    if (f & SLOT_OBJ) {
        uint64_t h = slot_handle(s);
        atomic_fetch_sub_explicit(&dev->c.compr_bytes, obj_bytes(dev, f, h), memory_order_relaxed);
        dev->aops->free(dev->alloc, h);
        if (f & SLOT_HUGE)
            atomic_fetch_sub_explicit(&dev->c.huge_pages, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&dev->c.frees, 1, memory_order_relaxed);
    } else if (__builtin_expect(f & SLOT_GROUP, 0)) {
        /* one member of a group being freed whole: its chunk, if any */
        uint64_t h = slot_handle(s);
        if (h) {
            atomic_fetch_sub_explicit(&dev->c.compr_bytes, dev->aops->obj_size(dev->alloc, h),
                                      memory_order_relaxed);
            dev->aops->free(dev->alloc, h);
            atomic_fetch_add_explicit(&dev->c.frees, 1, memory_order_relaxed);
        }
    } else if (f & SLOT_SAME) {
        atomic_fetch_sub_explicit(&dev->c.same_pages, 1, memory_order_relaxed);
    } else if (f & SLOT_WB) {
        /* on the backing device: not counted in pages_stored */
        uz_backing_free(dev->bd, slot_handle(s) & WB_BLK_MASK);
        goto out;
    }
    atomic_fetch_sub_explicit(&dev->c.pages_stored, 1, memory_order_relaxed);
out:
    slot_set_handle(s, 0);
    slot_set(s, 0);
    uz_varray_live(&dev->slots, idx, -1);
}

void uz_slot_free(struct uzram *dev, uint64_t idx, struct uz_slot *s)
{
    slot_free(dev, idx, s);
}

bool uz_page_same_filled(const void *page, uint64_t *word)
{
    return page_same_filled(page, word);
}

void uz_fill_page(void *dst, uint64_t word)
{
    fill_page(dst, word);
}

/* Put a page on the backing device instead of in memory (the forward):
 * clen != 0 means its compressed form (clen bytes in st->out, primary
 * algorithm) may be stored, if writeback_compressed is on.  The slot is
 * changed only on success.  On failure: -ENOMEM (the backing device is
 * full: the write is over the memory limit) or the I/O error. */
static int forward_page(struct uzram *dev, uint64_t idx, struct uz_slot *s, const void *src,
                        struct uz_stream *st, size_t clen)
{
    if (!atomic_load_explicit(&dev->wb_compressed, memory_order_relaxed))
        clen = 0;
    uint64_t h;
    int err = uz_wb_put(dev, st, src, clen, &h);
    if (err < 0) {
        if (err == -ENOSPC)
            return uz_error(-ENOMEM, "write: page %llu is over the memory limit and the backing "
                            "device is full", (unsigned long long)idx);
        return err;
    }
    slot_free(dev, idx, s);
    slot_set_handle(s, h);
    slot_set(s, SLOT_WB);
    slot_touch(dev, s);
    uz_varray_live(&dev->slots, idx, +1);
    atomic_fetch_add_explicit(&dev->c.forwarded, 1, memory_order_relaxed);
    return 0;
}

/* Store one whole page into a locked slot.  st is a stream the caller holds
 * (or NULL: one is taken here).  On error the slot is unchanged. */
static int write_page(struct uzram *dev, uint64_t idx, struct uz_slot *s, const void *src,
                      struct uz_stream *st)
{
    uint64_t word;
    if (page_same_filled(src, &word)) {
        slot_free(dev, idx, s);
        slot_set_handle(s, word);
        slot_set(s, SLOT_SAME);
        slot_touch(dev, s);
        uz_varray_live(&dev->slots, idx, +1);
        atomic_fetch_add_explicit(&dev->c.same_pages, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&dev->c.pages_stored, 1, memory_order_relaxed);
        return 0;
    }

    bool own_stream = st == NULL;
    if (own_stream)
        st = uz_stream_get(&dev->streams);
    size_t clen = dev->streams.codec->compress(st->ctx, src, PAGE, st->out, UZ_CODEC_PAGE_BOUND);
    bool huge = clen == 0 || clen >= dev->huge_threshold;
    size_t size = huge ? PAGE : clen;
    uint64_t h;
    int err;
    if (__builtin_expect(dev->bd != NULL, 0)) {
        uint32_t ft = atomic_load_explicit(&dev->forward_threshold, memory_order_relaxed);
        /* by choice: if the backing device cannot take it, keep it in RAM */
        if (ft && size >= ft && forward_page(dev, idx, s, src, st, huge ? 0 : clen) == 0) {
            if (own_stream)
                uz_stream_put(st);
            return 0;
        }
    }
    err = dev->aops->alloc(dev->alloc, size, (uint32_t)idx, &h);
    if (err < 0) {
        if (dev->bd && err == -ENOMEM) {
            /* the compcache forward: over the limit, to the backing device */
            err = forward_page(dev, idx, s, src, st, huge ? 0 : clen);
            if (own_stream)
                uz_stream_put(st);
            if (err < 0)
                atomic_fetch_add_explicit(&dev->c.failed_writes, 1, memory_order_relaxed);
            return err;
        }
        if (own_stream)
            uz_stream_put(st);
        atomic_fetch_add_explicit(&dev->c.failed_writes, 1, memory_order_relaxed);
        return uz_error(err, "write: no memory for page %llu (%s)", (unsigned long long)idx,
                        atomic_load(&dev->limit_pages) ? "memory limit reached" : "allocation failed");
    }
    memcpy(dev->aops->map(dev->alloc, h), huge ? src : st->out, size);
    if (own_stream)
        uz_stream_put(st);

    slot_free(dev, idx, s);
    slot_set_handle(s, h);
    slot_set(s, SLOT_OBJ | (huge ? SLOT_HUGE : 0));
    slot_touch(dev, s);
    uz_varray_live(&dev->slots, idx, +1);
    atomic_fetch_add_explicit(&dev->c.compr_bytes, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&dev->c.pages_stored, 1, memory_order_relaxed);
    if (huge) {
        atomic_fetch_add_explicit(&dev->c.huge_pages, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&dev->c.huge_pages_since, 1, memory_order_relaxed);
    }
    note_mem_used(dev);
    return 0;
}

int uz_write_page(struct uzram *dev, uint64_t idx, struct uz_slot *s, const void *src,
                  struct uz_stream *st)
{
    return write_page(dev, idx, s, src, st);
}

/* Read one whole page from a locked slot into dst.  st as for write_page. */
static int read_page(struct uzram *dev, uint64_t idx, struct uz_slot *s, void *dst,
                     struct uz_stream *st)
{
    uint32_t f = slot_state(s);
    if (f & SLOT_SAME) {
        fill_page(dst, slot_handle(s));
    } else if (f & SLOT_OBJ) {
        uint64_t h = slot_handle(s);
        const void *obj = dev->aops->map(dev->alloc, h);
        size_t size = obj_bytes(dev, f, h);
        if (f & SLOT_HUGE) {
            memcpy(dst, obj, PAGE);
        } else {
            int rc;
            if (__builtin_expect(f & SLOT_PRIO_MASK, 0)) {
                rc = uz_decompress(dev, slot_prio(f), obj, size, dst, st);
            } else {
                bool own_stream = st == NULL;
                if (own_stream)
                    st = uz_stream_get(&dev->streams);
                rc = dev->streams.codec->decompress(st->ctx, obj, size, dst, PAGE);
                if (own_stream)
                    uz_stream_put(st);
            }
            if (rc != 0) {
                atomic_fetch_add_explicit(&dev->c.failed_reads, 1, memory_order_relaxed);
                return uz_error(-EIO, "read: page %llu does not decompress",
                                (unsigned long long)idx);
            }
        }
    } else if (f & SLOT_WB) {
        int rc = uz_wb_read(dev, f, slot_handle(s), dst, st);
        if (rc != 0) {
            atomic_fetch_add_explicit(&dev->c.failed_reads, 1, memory_order_relaxed);
            return rc;
        }
    } else {
        memset(dst, 0, PAGE);
    }
    slot_touch(dev, s);
    return 0;
}

int uz_read_page(struct uzram *dev, uint64_t idx, struct uz_slot *s, void *dst,
                 struct uz_stream *st)
{
    return read_page(dev, idx, s, dst, st);
}

/* Bytes [in, in+n) of a locked slot's page (not a group member) into dst:
 * the whole page straight into dst, a part through a stream's scratch. */
int uz_read_part(struct uzram *dev, uint64_t idx, struct uz_slot *s, size_t in, size_t n,
                 uint8_t *dst)
{
    if (n == PAGE)
        return read_page(dev, idx, s, dst, NULL);
    struct uz_stream *st = uz_stream_get(&dev->streams);
    int err = read_page(dev, idx, s, st->page, st);
    if (err == 0)
        memcpy(dst, st->page + in, n);
    uz_stream_put(st);
    return err;
}

/* Replace bytes [in, in+n) of a locked slot's page (not a group member)
 * with src, or zeros when src is NULL: read, modify, store. */
int uz_patch_page(struct uzram *dev, uint64_t idx, struct uz_slot *s, size_t in, size_t n,
                  const uint8_t *src)
{
    struct uz_stream *st = uz_stream_get(&dev->streams);
    int err = read_page(dev, idx, s, st->page, st);
    if (err == 0) {
        if (src)
            memcpy(st->page + in, src, n);
        else
            memset(st->page + in, 0, n);
        err = write_page(dev, idx, s, st->page, st);
    }
    uz_stream_put(st);
    return err;
}

/* --------------------------------------------------------- range checks */

static int check_range(struct uzram *dev, size_t len, uint64_t off, const char *what)
{
    if (!dev->initialised)
        return uz_error(-ENXIO, "%s: device is not initialised (set disksize)", what);
    if (off > dev->disksize || len > dev->disksize - off) {
        atomic_fetch_add_explicit(&dev->c.invalid_io, 1, memory_order_relaxed);
        return uz_error(-EINVAL, "%s: range [%llu, +%zu) is outside the %llu-byte disk", what,
                        (unsigned long long)off, len, (unsigned long long)dev->disksize);
    }
    return 0;
}

/* True if the slot is empty; read without the lock (a racing writer is
 * ordered after this read).  Touching an empty table page this way maps
 * nothing. */
static bool slot_empty_racy(struct uzram *dev, uint64_t idx)
{
    return (atomic_load_explicit(&slot_at(dev, idx)->flags, memory_order_acquire) &
            (SLOT_STATE | SLOT_LOCKBITS)) == 0;
}

/* ------------------------------------------------ automatic compaction */

uint64_t uz_footprint(struct uzram *dev, const struct uz_alloc_stats *as)
{
    return as->pages_used * PAGE + atomic_load(&dev->slots.resident_pages) * PAGE +
           as->meta_bytes + dev->streams.bytes + uz_secondaries_bytes(dev) + sizeof *dev +
           (dev->bd ? dev->bd->used.chunk_bytes : 0);
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
 * pages of sources each) on this thread, if no other thread is already at
 * it, until the footprint is back under the aim or COMPACT_MAX_STEPS steps
 * ran: one discard can free thousands of objects at once, more than one
 * step can take back (with one step per call the footprint overshot the
 * bound by up to 0.1% before the next writes caught up).  A step that
 * frees nothing backs off for COMPACT_BACKOFF frees.  The pause a step
 * causes is only to writers of its size class (or of the pack) and to the
 * few slots it moves; it is measured and reported (debug_stat). */
#define COMPACT_STEP_PAGES 32
#define COMPACT_MAX_STEPS 16
#define COMPACT_BACKOFF 64

static void auto_compact(struct uzram *dev)
{
    uint32_t bound = atomic_load_explicit(&dev->compact_bound, memory_order_relaxed);
    if (bound == 0)
        return;
    uint64_t frees = atomic_load_explicit(&dev->c.frees, memory_order_relaxed);
    if (frees < atomic_load_explicit(&dev->compact_retry_at, memory_order_relaxed))
        return;
    /* Aim a little under the bound (5 thousandths) so that the writes
     * between two checks cannot carry the footprint over it. */
    uint64_t aim = bound > 1005 ? bound - 5 : 1000;
    for (int step = 0; step < COMPACT_MAX_STEPS; step++) {
        struct uz_alloc_stats as;
        dev->aops->stats(dev->alloc, &as);
        uint64_t compr = atomic_load_explicit(&dev->c.compr_bytes, memory_order_relaxed);
        if (uz_footprint(dev, &as) * 1000 <= compr * aim)
            return;
        if (atomic_exchange(&dev->compacting, true))
            return;
        uint64_t t0 = mono_ns();
        uint64_t freed = dev->aops->compact(dev->alloc, COMPACT_STEP_PAGES);
        uint64_t ns = mono_ns() - t0;
        atomic_fetch_add_explicit(&dev->c.compact_steps, 1, memory_order_relaxed);
        uint64_t max = atomic_load_explicit(&dev->c.compact_pause_max_ns, memory_order_relaxed);
        while (ns > max && !atomic_compare_exchange_weak(&dev->c.compact_pause_max_ns, &max, ns))
            ;
        if (freed == 0)
            atomic_store(&dev->compact_retry_at, frees + COMPACT_BACKOFF);
        atomic_store(&dev->compacting, false);
        if (freed == 0)
            return;
    }
}

/* ---------------------------------------------------------- public I/O */

int uzram_read(struct uzram *dev, void *buf, size_t len, uint64_t off)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    int err = check_range(dev, len, off, "read");
    uint8_t *out = buf;
    while (err == 0 && len > 0) {
        uint64_t idx = off / PAGE;
        size_t in = off % PAGE;
        size_t n = PAGE - in < len ? PAGE - in : len;
        uint32_t f = atomic_load_explicit(&slot_at(dev, idx)->flags, memory_order_acquire);
        if ((f & (SLOT_STATE | SLOT_LOCKBITS)) == 0) {
            memset(out, 0, n);
        } else {
            bool group = f & SLOT_GROUP;
            if (!group) {
                struct uz_slot *s = slot_get(dev, idx);
                group = slot_state(s) & SLOT_GROUP;
                if (group) {
                    /* a group member: the whole group is locked in group.c */
                } else {
                    err = uz_read_part(dev, idx, s, in, n, out);
                }
                slot_put(dev, idx, s);
            }
            if (__builtin_expect(group, 0)) {
                err = uz_group_read(dev, off, len, out, &n);
                atomic_fetch_add_explicit(&dev->c.reads, (in + n + PAGE - 1) / PAGE - 1,
                                          memory_order_relaxed);
            }
        }
        atomic_fetch_add_explicit(&dev->c.reads, 1, memory_order_relaxed);
        out += n;
        off += n;
        len -= n;
    }
    pthread_rwlock_unlock(&dev->init_lock);
    return err;
}

/* Write n bytes at offset in within page idx (n < PAGE or unaligned):
 * read-modify-write under the slot lock.  src == NULL writes zeros.  A
 * group member is left to group.c; *done is the bytes handled. */
static int write_partial(struct uzram *dev, uint64_t idx, size_t in, size_t n, const uint8_t *src,
                         size_t len, size_t *done)
{
    struct uz_slot *s = slot_get(dev, idx);
    if (__builtin_expect(slot_state(s) & SLOT_GROUP, 0)) {
        slot_put(dev, idx, s);
        return uz_group_update(dev, idx * PAGE + in, len, src, src == NULL, done);
    }
    *done = n;
    int err = uz_patch_page(dev, idx, s, in, n, src);
    slot_put(dev, idx, s);
    return err;
}

int uzram_write(struct uzram *dev, const void *buf, size_t len, uint64_t off)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    int err = check_range(dev, len, off, "write");
    const uint8_t *src = buf;
    /* group mode: whole aligned groups go to group.c */
    uint64_t gbytes = (uint64_t)dev->group_pages * PAGE;
    while (err == 0 && len > 0) {
        uint64_t idx = off / PAGE;
        size_t in = off % PAGE;
        size_t n = PAGE - in < len ? PAGE - in : len;
        if (__builtin_expect(gbytes > PAGE, 0) && len >= gbytes && off % gbytes == 0) {
            err = uz_group_write(dev, idx, src);
            n = gbytes;
            atomic_fetch_add_explicit(&dev->c.writes, dev->group_pages - 1, memory_order_relaxed);
        } else if (n == PAGE) {
            struct uz_slot *s = slot_get(dev, idx);
            if (__builtin_expect(slot_state(s) & SLOT_GROUP, 0)) {
                slot_put(dev, idx, s);
                err = uz_group_update(dev, off, len, src, false, &n);
                atomic_fetch_add_explicit(&dev->c.writes, (n + PAGE - 1) / PAGE - 1,
                                          memory_order_relaxed);
            } else {
                err = write_page(dev, idx, s, src, NULL);
                slot_put(dev, idx, s);
            }
        } else {
            err = write_partial(dev, idx, in, n, src, len, &n);
            atomic_fetch_add_explicit(&dev->c.writes, (in + n + PAGE - 1) / PAGE - 1,
                                      memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&dev->c.writes, 1, memory_order_relaxed);
        src += n;
        off += n;
        len -= n;
    }
    if (dev->initialised)
        auto_compact(dev);
    pthread_rwlock_unlock(&dev->init_lock);
    return err;
}

/* Discard and write-zeroes are one operation (zero pages cost nothing);
 * what names it in error messages. */
static int zero_range(struct uzram *dev, size_t len, uint64_t off, const char *what)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    int err = check_range(dev, len, off, what);
    while (err == 0 && len > 0) {
        uint64_t idx = off / PAGE;
        size_t in = off % PAGE;
        size_t n = PAGE - in < len ? PAGE - in : len;
        if (!slot_empty_racy(dev, idx)) {
            if (n == PAGE) {
                struct uz_slot *s = slot_get(dev, idx);
                if (__builtin_expect(slot_state(s) & SLOT_GROUP, 0)) {
                    slot_put(dev, idx, s);
                    err = uz_group_update(dev, off, len, NULL, true, &n);
                } else {
                    if (slot_state(s))
                        atomic_fetch_add_explicit(&dev->c.notify_free, 1, memory_order_relaxed);
                    slot_free(dev, idx, s);
                    slot_put(dev, idx, s);
                }
            } else {
                err = write_partial(dev, idx, in, n, NULL, len, &n);
            }
        }
        off += n;
        len -= n;
    }
    if (dev->initialised)
        auto_compact(dev);
    pthread_rwlock_unlock(&dev->init_lock);
    return err;
}

int uzram_discard(struct uzram *dev, size_t len, uint64_t off)
{
    return zero_range(dev, len, off, "discard");
}

int uzram_write_zeroes(struct uzram *dev, size_t len, uint64_t off)
{
    return zero_range(dev, len, off, "write_zeroes");
}

int uzram_flush(struct uzram *dev)
{
    (void)dev;
    return 0;
}

int uzram_page_state(struct uzram *dev, uint64_t off)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    int rc = check_range(dev, 1, off, "page_state");
    if (rc == 0) {
        uint64_t idx = off / PAGE;
        if (slot_empty_racy(dev, idx)) {
            rc = UZRAM_PAGE_ZERO;
        } else {
            struct uz_slot *s = slot_get(dev, idx);
            uint32_t f = slot_state(s);
            /* a group member is data, whatever it holds */
            rc = (f == 0 || ((f & (SLOT_SAME | SLOT_GROUP)) == SLOT_SAME && slot_handle(s) == 0))
                     ? UZRAM_PAGE_ZERO : UZRAM_PAGE_DATA;
            slot_put(dev, idx, s);
        }
    }
    pthread_rwlock_unlock(&dev->init_lock);
    return rc;
}

/* ------------------------------------------------------------ lifecycle */

void uzram_config_init(struct uzram_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->algorithm = "lz4";
    cfg->allocator = "zsmalloc";
}

int uz_dev_init(struct uzram *dev, uint64_t disksize)
{
    if (disksize > MAX_SLOTS * PAGE)
        return uz_error(-EINVAL, "disksize: at most %llu bytes", MAX_SLOTS * PAGE);
    disksize = (disksize + PAGE - 1) / PAGE * PAGE;
    if (disksize == 0)
        return uz_error(-EINVAL, "disksize: must be more than 0");
    const struct uz_codec *codec = uz_codec_find(dev->algorithm);
    const struct uz_alloc_ops *aops = uz_alloc_find(dev->allocator_name);
    if (!codec || !aops)
        return uz_error(-EINVAL, "unknown %s", codec ? "allocator" : "algorithm");

    memset(&dev->c, 0, sizeof dev->c);
    int err = uz_varray_init(&dev->slots, disksize / PAGE, sizeof(struct uz_slot));
    if (err < 0)
        return uz_error(err, "disksize: cannot reserve the slot table");
    struct uz_alloc_params ap = {
        .max_bytes = disksize,
        .owner_ops = &store_owner_ops,
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
    if (err < 0) {
        uz_streams_fini(&dev->streams);
        aops->destroy(dev->alloc);
        uz_varray_fini(&dev->slots);
        return err;
    }
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
}

void uz_dev_teardown(struct uzram *dev)
{
    if (!dev->initialised)
        return;
    uz_policy_stop(dev);
    /* Written-back pages are dropped with the device: free their blocks */
    if (dev->bd) {
        for (uint64_t i = uz_next_used(dev, 0); i < dev->nslots; i = uz_next_used(dev, i + 1)) {
            struct uz_slot *s = slot_at(dev, i);
            if (slot_state(s) & SLOT_WB)
                uz_backing_free(dev->bd, slot_handle(s) & WB_BLK_MASK);
        }
    }
    uz_secondaries_fini(dev);
    uz_streams_fini(&dev->streams);
    dev->aops->destroy(dev->alloc);
    uz_varray_fini(&dev->slots);
    dev->alloc = NULL;
    dev->disksize = 0;
    dev->nslots = 0;
    dev->initialised = false;
    memset(&dev->c, 0, sizeof dev->c);
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
    if (!cfg) {
        uzram_config_init(&def);
        cfg = &def;
    }
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
    if (cfg->group_pages > 1 && cfg->group_pages != 2 && cfg->group_pages != 4 && cfg->group_pages != 8)
        return uz_error(-EINVAL, "group_pages %u: give 1 (off), 2, 4 or 8", cfg->group_pages);
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
    pthread_rwlock_init(&dev->init_lock, NULL);
    pthread_mutex_init(&dev->policy_lock, NULL);
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        if (cfg->recomp_algorithm[i])
            snprintf(dev->secondary[i].name, sizeof dev->secondary[i].name, "%s",
                     uz_codec_find(cfg->recomp_algorithm[i])->name);
    atomic_store(&dev->wb_compressed, cfg->writeback_compressed);
    atomic_store(&dev->forward_threshold, cfg->forward_threshold);
    copy_name(dev->algorithm, sizeof dev->algorithm, codec->name, "algorithm");
    dev->level = cfg->level;
    int err = copy_name(dev->allocator_name, sizeof dev->allocator_name, allocator, "allocator");
    dev->huge_threshold_cfg = cfg->huge_threshold;
    dev->nstreams = cfg->streams;
    dev->group_pages = cfg->group_pages > 1 ? cfg->group_pages : 1;
    atomic_store(&dev->limit_pages, (cfg->mem_limit + PAGE - 1) / PAGE);
    atomic_store(&dev->compact_bound, cfg->compact_bound == 0 ? UZRAM_COMPACT_DEFAULT
                                      : cfg->compact_bound == UZRAM_COMPACT_OFF ? 0
                                      : cfg->compact_bound);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    dev->epoch = (uint64_t)ts.tv_sec;
    if (err == 0 && cfg->recompress_policy)
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

void uzram_get_stats(struct uzram *dev, struct uzram_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_rwlock_rdlock(&dev->init_lock);
    st->mem_limit = atomic_load(&dev->limit_pages) * PAGE;
    if (dev->initialised) {
        struct uz_alloc_stats as;
        dev->aops->stats(dev->alloc, &as);
        struct uz_counters *c = &dev->c;
        st->orig_data_size = atomic_load(&c->pages_stored) * PAGE;
        st->compr_data_size = atomic_load(&c->compr_bytes);
        st->mem_used_total = as.pages_used * PAGE;
        uint64_t max = atomic_load(&c->mem_used_max);
        st->mem_used_max = (max > as.pages_used ? max : as.pages_used) * PAGE;
        st->same_pages = atomic_load(&c->same_pages);
        st->pages_compacted = as.pages_compacted;
        st->huge_pages = atomic_load(&c->huge_pages);
        st->huge_pages_since = atomic_load(&c->huge_pages_since);
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
}

void uz_mem_used_max_reset(struct uzram *dev)
{
    struct uz_alloc_stats as;
    dev->aops->stats(dev->alloc, &as);
    atomic_store(&dev->c.mem_used_max, as.pages_used);
}

uint64_t uzram_compact(struct uzram *dev)
{
    pthread_rwlock_rdlock(&dev->init_lock);
    uint64_t freed = dev->initialised ? dev->aops->compact(dev->alloc, 0) : 0;
    pthread_rwlock_unlock(&dev->init_lock);
    return freed;
}

const char *uzram_version(void)
{
    return UZRAM_VERSION;
}
