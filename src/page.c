/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * page.c - layer 2 of the store (src/README.md): one page of one slot.
 *
 * Write of one page (slot locked):
 *   same-filled?  -> drop old content, keep the fill word in the slot.
 *   else compress; if the result is >= huge_threshold, keep the raw page.
 *   allocate the new object *before* releasing the old one (uz_slot_commit
 *   does that), so a failed allocation (memory limit, ENOMEM) leaves the
 *   old content intact.  With a backing device (the compcache forward): a
 *   page whose compressed size reaches forward_threshold, or whose
 *   allocation fails (memory limit), goes to a backing block instead.
 *   Without one, the data path pays a single predictable branch for this.
 *
 * Read of one page: same fill, object (decompressed with the algorithm of
 * the slot's priority bits: 0 the primary, 1..3 a secondary), or a backing
 * block (SLOT_WB, read through the streams' aligned buffers).
 *
 * Backing blocks.  A page on the backing device is a slot with SLOT_WB
 * whose handle is the block number (bits 0..47) and the compressed size
 * of what the block holds (bits 48..60, 0 = the raw page).  All I/O goes
 * through a stream's page/out buffers, which are page-aligned (O_DIRECT):
 * the data path allocates nothing.
 *
 * Locking: the caller holds the slot lock; a stream lock is taken inside
 * it (src/README.md, "Lock order").
 */
#define _GNU_SOURCE
#include "page.h"
#include "dedup.h"
#include "shared.h"
#include "error.h"

#include <errno.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE

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
static int forward_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, const void *src,
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
    uz_slot_commit(dev, idx, s, SLOT_WB, h, 0);
    uz_slot_touch(dev, s);
    atomic_fetch_add_explicit(&dev->ev.forwarded, 1, memory_order_relaxed);
    return 0;
}

/* The page found stored in record rec (a reference taken for slot idx):
 * the slot becomes one more reference to it. */
static int share_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, struct uz_stream *st,
                      bool own_stream, int64_t rec)
{
    if (own_stream)
        uz_stream_put(st);
    uz_slot_commit(dev, idx, s, SLOT_SHARED, (uint64_t)rec, 0);
    uz_slot_touch(dev, s);
    return 0;
}

/* Store one whole page into a locked slot.  st is a stream the caller holds
 * (or NULL: one is taken here).  On error the slot is unchanged. */
static int write_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, const void *src,
                      struct uz_stream *st)
{
    uint64_t word;
    if (page_same_filled(src, &word)) {
        uz_slot_commit(dev, idx, s, SLOT_SAME, word, 0);
        uz_slot_touch(dev, s);
        return 0;
    }

    bool own_stream = st == NULL;
    if (own_stream)
        st = uz_stream_get(&dev->streams);
    uint64_t h, hash = 0;
    int err;
    bool indexed = false;
    /* stored already?  then one more reference to it, nothing new.  Looked
     * up before the compression where repeats are frequent (a hit saves
     * it), after it otherwise (the page is hashed from the cache then:
     * dedup.c) */
    bool dedup = atomic_load_explicit(&dev->dedup_mode, memory_order_relaxed) != UZ_DEDUP_OFF;
    bool late = dedup && !uz_dedup_early(dev);
    if (dedup && !late) {
        int64_t rec = uz_dedup_find(dev, idx, src, st, &hash, &indexed);
        if (rec >= 0)
            return share_page(dev, idx, s, st, own_stream, rec);
    }
    size_t clen = dev->streams.codec->compress(st->ctx, src, PAGE, st->out, UZ_CODEC_PAGE_BOUND);
    if (late) {
        int64_t rec = uz_dedup_find(dev, idx, src, st, &hash, &indexed);
        if (rec >= 0)
            return share_page(dev, idx, s, st, own_stream, rec);
    }
    bool huge = clen == 0 || clen >= dev->huge_threshold;
    size_t size = huge ? PAGE : clen;
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
                atomic_fetch_add_explicit(&dev->ev.failed_writes, 1, memory_order_relaxed);
            return err;
        }
        if (own_stream)
            uz_stream_put(st);
        atomic_fetch_add_explicit(&dev->ev.failed_writes, 1, memory_order_relaxed);
        return uz_error(err, "write: no memory for page %llu (%s)", (unsigned long long)idx,
                        atomic_load(&dev->limit_pages) ? "memory limit reached" : "allocation failed");
    }
    memcpy(dev->aops->map(dev->alloc, h), huge ? src : st->out, size);
    if (own_stream)
        uz_stream_put(st);

    uz_slot_commit(dev, idx, s, SLOT_OBJ | (huge ? SLOT_HUGE : 0), h, size);
    uz_slot_touch(dev, s);
    if (indexed)
        uz_dedup_insert(dev, hash, idx);
    uz_note_mem_used(dev);
    return 0;
}

int uz_write_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, const void *src,
                  struct uz_stream *st)
{
    return write_page(dev, idx, s, src, st);
}

/* Decompress an object of size bytes (state f) into dst. */
static int decode(struct uz_store *dev, uint64_t idx, uint32_t f, const void *obj, size_t size,
                  void *dst, struct uz_stream *st)
{
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
        atomic_fetch_add_explicit(&dev->ev.failed_reads, 1, memory_order_relaxed);
        return uz_error(-EIO, "read: page %llu does not decompress", (unsigned long long)idx);
    }
    return 0;
}

/* Read the page a slot or record holds (state f, handle h) into dst. */
static int read_content(struct uz_store *dev, uint64_t idx, uint32_t f, uint64_t h, void *dst,
                        struct uz_stream *st)
{
    if (f & SLOT_SAME) {
        fill_page(dst, h);
    } else if (f & SLOT_OBJ) {
        const void *obj = dev->aops->map(dev->alloc, h);
        size_t size = uz_obj_bytes(dev, f, h);
        if (f & SLOT_HUGE)
            memcpy(dst, obj, PAGE);
        else
            return decode(dev, idx, f, obj, size, dst, st);
    } else if (f & SLOT_WB) {
        int rc = uz_wb_read(dev, f, h, dst, st);
        if (rc != 0) {
            atomic_fetch_add_explicit(&dev->ev.failed_reads, 1, memory_order_relaxed);
            return rc;
        }
    } else {
        memset(dst, 0, PAGE);
    }
    return 0;
}

/* Read one whole page from a locked slot into dst.  st as for write_page.
 * A shared slot's page is its record's: its object is copied out under the
 * record's lock (so that compaction cannot move it meanwhile) and decoded
 * after, so that no stream is taken with a record held (src/README.md,
 * "Lock order").  A written-back record cannot change while the slot holds
 * its reference. */
static int read_page_as(struct uz_store *dev, uint64_t idx, struct uz_slot *s, void *dst,
                        struct uz_stream *st, bool touch)
{
    uint32_t f = uz_slot_state(s);
    int err;
    if (__builtin_expect(f & SLOT_SHARED, 0)) {
        uint32_t id = (uint32_t)slot_handle(s);
        struct uz_shared *r = uz_shared_get(dev, id);
        uint32_t rf = uz_slot_state(&r->s);
        uint64_t rh = slot_handle(&r->s);
        uint8_t obj[PAGE];
        size_t size = 0;
        if (rf & SLOT_OBJ) {
            size = uz_obj_bytes(dev, rf, rh);
            memcpy((rf & SLOT_HUGE) ? dst : obj, dev->aops->map(dev->alloc, rh), size);
        }
        uz_shared_put(dev, id, r);
        if (!(rf & SLOT_OBJ))
            err = read_content(dev, idx, rf, rh, dst, st);
        else if (rf & SLOT_HUGE)
            err = 0;
        else
            err = decode(dev, idx, rf, obj, size, dst, st);
    } else {
        err = read_content(dev, idx, f, slot_handle(s), dst, st);
    }
    if (err == 0 && touch)
        uz_slot_touch(dev, s);
    return err;
}

static int read_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, void *dst,
                     struct uz_stream *st)
{
    return read_page_as(dev, idx, s, dst, st, true);
}

int uz_peek_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, void *dst)
{
    return read_page_as(dev, idx, s, dst, NULL, false);
}

int uz_read_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, void *dst,
                 struct uz_stream *st)
{
    return read_page(dev, idx, s, dst, st);
}

/* Bytes [in, in+n) of a locked slot's page (not a group member) into dst:
 * the whole page straight into dst, a part through a stream's scratch. */
int uz_read_part(struct uz_store *dev, uint64_t idx, struct uz_slot *s, size_t in, size_t n,
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
int uz_patch_page(struct uz_store *dev, uint64_t idx, struct uz_slot *s, size_t in, size_t n,
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

/* ------------------------------------------------------ algorithms */

int uz_decompress(struct uz_store *dev, uint32_t prio, const void *src, size_t clen, void *dst,
                  struct uz_stream *st)
{
    struct uz_streams *ss = prio ? &dev->recomp_streams[prio - 1] : &dev->streams;
    if (ss->n == 0)
        return uz_error(-EIO, "read: a page of algorithm priority %u, which has no streams",
                        prio);
    struct uz_stream *use = (prio == 0 && st) ? st : uz_stream_get(ss);
    int rc = ss->codec->decompress(use->ctx, src, clen, dst, PAGE);
    if (use != st)
        uz_stream_put(use);
    if (rc != 0)
        return uz_error(-EIO, "read: a %zu-byte %s object does not decompress to a page", clen,
                        ss->codec->name);
    return 0;
}

/* ------------------------------------------------------ backing blocks */

int uz_wb_put(struct uz_store *dev, struct uz_stream *st, const void *src, size_t clen,
              uint64_t *handle)
{
    struct uz_backing *b = dev->bd;
    uint64_t blk;
    int err = uz_backing_alloc(b, &blk);
    if (err < 0)
        return err;
    const uint8_t *buf;
    size_t len;
    if (clen) {
        size_t n = uz_backing_iolen(b, clen);
        memset(st->out + clen, 0, n - clen);   /* no stale bytes on disk */
        buf = st->out;
        len = clen;
    } else {
        if (src != st->page)
            memcpy(st->page, src, PAGE);
        buf = st->page;
        len = PAGE;
    }
    err = uz_backing_write(b, blk, buf, len);
    if (err < 0) {
        uz_backing_free(b, blk);
        return err;
    }
    *handle = blk | (uint64_t)clen << WB_LEN_SHIFT;
    return 0;
}

int uz_wb_read(struct uz_store *dev, uint32_t f, uint64_t h, void *dst, struct uz_stream *st)
{
    uint64_t blk = h & WB_BLK_MASK;
    size_t clen = (size_t)(h >> WB_LEN_SHIFT);
    uint32_t prio = clen ? slot_prio(f) : 0;
    /* the bounce buffer: out of the stream whose codec decodes the block */
    struct uz_streams *ss = prio ? &dev->recomp_streams[prio - 1] : &dev->streams;
    struct uz_stream *io = (prio == 0 && st) ? st : uz_stream_get(ss);
    int err = uz_backing_read(dev->bd, blk, io->out, clen ? clen : PAGE);
    if (err == 0) {
        if (!clen)
            memcpy(dst, io->out, PAGE);
        else if (ss->codec->decompress(io->ctx, io->out, clen, dst, PAGE) != 0)
            err = uz_error(-EIO, "read: block %llu of the backing device does not decompress",
                           (unsigned long long)blk);
    } else {
        err = -EIO;   /* whatever the backing device said, the read failed */
    }
    if (io != st)
        uz_stream_put(io);
    return err;
}

