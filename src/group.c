/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * group.c - group compression: K aligned pages (K = 2, 4 or 8) compressed
 * together as one unit.
 *
 * Why.  Codecs find more to match in 32 KiB than in 4 KiB and pay their
 * per-call setup once instead of eight times: on real process memory, zstd
 * level 3 compresses 8-page groups about 1.5x as fast as single pages and
 * to a 15-20% smaller size.  Groups are opt-in (group_pages, set before
 * init), because a small read or write of a group costs the whole group's
 * decompression, and they are made in two ways:
 *
 *   whole-group writes   with group_pages K > 1, a write that covers an
 *                        aligned group [K*g, K*g+K) is compressed in one
 *                        call, straight from the caller's buffer; with
 *                        group_pages auto, each write chooses (io.c): the
 *                        largest aligned group of 8, 4 or 2 pages it
 *                        covers, or single pages;
 *   recompress group=K   idle pages stored one by one are regrouped with a
 *                        secondary algorithm (recompress.c), on any device.
 *
 * Layout (store.h has the slot bits).  The compressed stream of a group is
 * cut into chunks of 4096 bytes, the last one shorter; chunk j is an
 * ordinary allocator object held by slot K*g+j, whose index is its
 * backref.  So compaction moves a chunk like any object: it trylocks the
 * one slot that holds it, which a group operation holds locked along with
 * the rest of the group.  Full chunks are raw-page objects: a group costs
 * its compressed size plus the tail of its last chunk's size class.
 *
 * Locking (the global order: src/README.md, "Lock order").  Every group operation pins the table pages under the group (at
 * most two) and locks all its slots in ascending order (uz_lock_range).
 * A single-page operation that finds SLOT_GROUP on its slot unlocks it and
 * calls in here; lock_unit() then locks the unit that holds the page (its
 * group, or the page alone) and re-reads the state, since the group may
 * have been broken or replaced meanwhile.  Groups are aligned powers of
 * two, so a span aligned to its size k holds whole groups of size <= k or
 * lies inside one larger group: checking one slot tells which.  Nobody
 * waits for a slot lock while holding a higher one; compaction only
 * trylocks.  Stream order is the store's: a primary stream, then at most
 * one secondary stream.
 *
 * Scratch.  Streams made for groups carry gbuf (K pages) and gout (a
 * compressed group): the primary's when group_pages > 1, a secondary's
 * always.  A read of a whole group decompresses into the caller's buffer
 * (from the object itself when the group is one chunk, else from the
 * chunks assembled in gout); a read of part of a group decompresses into
 * gbuf.  Nothing is allocated on the I/O path.
 *
 * Breaking.  A write, discard or write_zeroes of part of a group breaks
 * it: the group is decompressed into gbuf, the new bytes applied, and each
 * of its pages is stored alone (same fill, or compressed with the primary
 * into a new object).  Every new object is allocated before any chunk is
 * freed; if one allocation fails the new ones are freed and the group is
 * left as it was (the error is -ENOMEM: a discard of part of a group can
 * fail under a memory limit, as a partial-page discard can).
 *
 * What skips groups.  Writeback and per-page recompression look for
 * SLOT_OBJ, which members never carry: groups stay in RAM and keep their
 * algorithm.  Idle marking is per slot.  Group writes are not forwarded to
 * a backing device by forward_threshold; when their allocation fails on a
 * device with one, the pages take the per-page path, which forwards.
 */
#define _GNU_SOURCE
#include "group.h"
#include "page.h"
#include "error.h"

#include <errno.h>
#include <string.h>

#define PAGE UZRAM_PAGE_SIZE

/* Lock the unit holding page idx: its group, or the page alone.  On
 * return [*lo, *hi) is locked, holds idx, and no group crosses its ends. */
static void lock_unit(struct uz_store *dev, uint64_t idx, uint64_t *lo, uint64_t *hi)
{
    uint32_t f = uz_slot_peek(dev, idx);
    uint32_t k = (f & SLOT_GROUP) ? slot_group_pages(f) : 1;
    for (;;) {
        uint64_t l = idx & ~(uint64_t)(k - 1);
        uz_lock_range(dev, l, l + k);
        f = uz_slot_state(uz_slot_at(dev, idx));
        uint32_t k2 = (f & SLOT_GROUP) ? slot_group_pages(f) : 1;
        if (k2 <= k) {
            *lo = l;
            *hi = l + k;
            return;
        }
        uz_unlock_range(dev, l, l + k);
        k = k2;
    }
}

/* The streams of the algorithm at priority prio (NULL if none). */
static struct uz_streams *streams_of(struct uz_store *dev, uint32_t prio)
{
    struct uz_streams *ss = prio ? &dev->recomp_streams[prio - 1] : &dev->streams;
    return ss->n ? ss : NULL;
}

/* Decompress the locked group of k pages at gb (algorithm priority prio)
 * into dst (k pages).  dec: a stream of that algorithm the caller holds;
 * its gout takes the chunks when there are several. */
static int decode_group(struct uz_store *dev, uint64_t gb, uint32_t k, uint32_t prio,
                        struct uz_stream *dec, uint8_t *dst)
{
    struct uz_streams *ss = streams_of(dev, prio);
    uint64_t h[UZ_GROUP_MAX];
    uint32_t nch = 0;
    while (nch < k && (h[nch] = slot_handle(uz_slot_at(dev, gb + nch))) != 0)
        nch++;
    const uint8_t *src = NULL;
    size_t total = 0;
    if (nch == 1) {
        src = dev->aops->map(dev->alloc, h[0]);
        total = dev->aops->obj_size(dev->alloc, h[0]);
    } else if (nch > 1 && dec->gout) {
        for (uint32_t j = 0; j < nch && total <= dec->gcap; j++) {
            size_t sz = dev->aops->obj_size(dev->alloc, h[j]);
            if (total + sz > dec->gcap) {
                total = dec->gcap + 1;
                break;
            }
            memcpy(dec->gout + total, dev->aops->map(dev->alloc, h[j]), sz);
            total += sz;
        }
        src = total <= dec->gcap ? dec->gout : NULL;
    }
    if (!src || ss->codec->decompress(dec->ctx, src, total, dst, (size_t)k * PAGE) != 0) {
        atomic_fetch_add_explicit(&dev->ev.failed_reads, 1, memory_order_relaxed);
        return uz_error(-EIO, "read: the group at page %llu does not decompress",
                        (unsigned long long)gb);
    }
    return 0;
}

/* A stream of the group's algorithm with scratch for k pages: st itself
 * (a primary stream the caller holds) for the primary, else one taken from
 * the secondary's set.  NULL if there is none (a corrupt priority). */
static struct uz_stream *dec_stream(struct uz_store *dev, uint32_t prio, uint32_t k,
                                    struct uz_stream *st)
{
    struct uz_streams *ss = streams_of(dev, prio);
    if (!ss || ss->gpages < k)
        return NULL;
    return prio == 0 ? st : uz_stream_get(ss);
}

int uz_group_read(struct uz_store *dev, uint64_t off, size_t len, uint8_t *dst, size_t *done)
{
    uint64_t idx = off / PAGE, lo, hi;
    size_t in = off % PAGE;
    lock_unit(dev, idx, &lo, &hi);
    struct uz_slot *s = uz_slot_at(dev, idx);
    uint32_t f = uz_slot_state(s);
    int err = 0;
    if (!(f & SLOT_GROUP)) {
        /* broken meanwhile: an ordinary page */
        size_t n = PAGE - in < len ? PAGE - in : len;
        *done = n;
        err = uz_read_part(dev, idx, s, in, n, dst);
        uz_unlock_range(dev, lo, hi);
        return err;
    }
    uint32_t k = slot_group_pages(f), prio = slot_prio(f);
    uint64_t gb = idx & ~(uint64_t)(k - 1);
    uint64_t gstart = gb * PAGE, gend = gstart + (uint64_t)k * PAGE;
    size_t n = gend - off < len ? (size_t)(gend - off) : len;
    *done = n;
    /* a secondary's group needs no primary stream */
    struct uz_stream *st = prio == 0 ? uz_stream_get(&dev->streams) : NULL;
    struct uz_stream *dec = dec_stream(dev, prio, k, st);
    if (!dec) {
        atomic_fetch_add_explicit(&dev->ev.failed_reads, 1, memory_order_relaxed);
        err = uz_error(-EIO, "read: no scratch to decompress the group at page %llu",
                       (unsigned long long)gb);
    } else if (off == gstart && n == (size_t)k * PAGE) {
        err = decode_group(dev, gb, k, prio, dec, dst);
    } else {
        err = decode_group(dev, gb, k, prio, dec, dec->gbuf);
        if (err == 0)
            memcpy(dst, dec->gbuf + (off - gstart), n);
    }
    if (dec && dec != st)
        uz_stream_put(dec);
    if (st)
        uz_stream_put(st);
    if (err == 0)
        for (uint64_t i = off / PAGE; i <= (off + n - 1) / PAGE; i++)
            uz_slot_touch(dev, uz_slot_at(dev, i));
    uz_unlock_range(dev, lo, hi);
    return err;
}

int uz_group_peek(struct uz_store *dev, uint64_t idx, bool idle_only, uint32_t idle_age,
                  uint8_t *dst)
{
    uint64_t lo, hi;
    lock_unit(dev, idx, &lo, &hi);
    struct uz_slot *s = uz_slot_at(dev, idx);
    uint32_t f = uz_slot_state(s);
    int ret = 0;
    bool idle = (f & SLOT_IDLE) || (idle_age && slot_age(f, uz_now(dev)) >= idle_age);
    bool in_ram = (f & SLOT_GROUP) || ((f & (SLOT_OBJ | SLOT_SHARED)) && !(f & SLOT_HUGE));
    if (!in_ram || idle != idle_only) {
        ret = 0;    /* nothing to learn from: empty, same-filled, written back, raw */
    } else if (f & SLOT_GROUP) {
        uint32_t k = slot_group_pages(f), prio = slot_prio(f);
        uint64_t gb = idx & ~(uint64_t)(k - 1);
        struct uz_stream *st = prio == 0 ? uz_stream_get(&dev->streams) : NULL;
        struct uz_stream *dec = dec_stream(dev, prio, k, st);
        ret = !dec ? uz_error(-EIO, "read: no scratch to decompress the group at page %llu",
                              (unsigned long long)gb)
                   : decode_group(dev, gb, k, prio, dec, dec->gbuf);
        if (ret == 0) {
            memcpy(dst, dec->gbuf + (idx - gb) * PAGE, PAGE);
            ret = 1;
        }
        if (dec && dec != st)
            uz_stream_put(dec);
        if (st)
            uz_stream_put(st);
    } else {
        ret = uz_peek_page(dev, idx, s, dst);
        ret = ret == 0 ? 1 : ret;
    }
    uz_unlock_range(dev, lo, hi);
    return ret;
}

/* Store the n pages of the locked slots [lo, lo+n) one by one: page j's new
 * content is src + j*4096, or nothing if bit j of empty is set.  Every
 * group among them lies wholly inside.  Each new object is allocated (with
 * the primary, st) before anything is freed: on error nothing changed.
 * Pages whose bit in touch is clear keep their atime and IDLE bit. */
static int replace_pages(struct uz_store *dev, uint64_t lo, uint32_t n, const uint8_t *src,
                         uint32_t empty, uint32_t touch, struct uz_stream *st)
{
    struct { uint32_t state; uint64_t h; size_t size; } np[UZ_GROUP_MAX];
    int err = 0;
    uint32_t j;
    for (j = 0; j < n; j++) {
        const uint8_t *p = src + (size_t)j * PAGE;
        uint64_t word;
        np[j].state = 0;
        np[j].h = 0;
        np[j].size = 0;
        if (empty >> j & 1)
            continue;
        if (uz_page_same_filled(p, &word)) {
            np[j].state = SLOT_SAME;
            np[j].h = word;
            continue;
        }
        size_t clen = dev->streams.codec->compress(st->ctx, p, PAGE, st->out, UZ_CODEC_PAGE_BOUND);
        bool huge = clen == 0 || clen >= dev->huge_threshold;
        size_t size = huge ? PAGE : clen;
        err = dev->aops->alloc(dev->alloc, size, (uint32_t)(lo + j), &np[j].h);
        if (err < 0)
            break;
        memcpy(dev->aops->map(dev->alloc, np[j].h), huge ? p : st->out, size);
        np[j].state = SLOT_OBJ | (huge ? SLOT_HUGE : 0);
        np[j].size = size;
    }
    if (err < 0) {
        for (uint32_t i = 0; i < j; i++)
            if (np[i].state & SLOT_OBJ)
                dev->aops->free(dev->alloc, np[i].h);
        atomic_fetch_add_explicit(&dev->ev.failed_writes, 1, memory_order_relaxed);
        return uz_error(err, "write: no memory to store the pages at %llu one by one (%s)",
                        (unsigned long long)lo,
                        atomic_load(&dev->limit_pages) ? "memory limit reached" : "allocation failed");
    }
    for (j = 0; j < n; j++) {
        struct uz_slot *s = uz_slot_at(dev, lo + j);
        uint32_t idle = uz_slot_state(s) & SLOT_IDLE;
        uint32_t keep = (np[j].state && !(touch >> j & 1)) ? idle : 0;
        uz_slot_commit(dev, lo + j, s, np[j].state | keep, np[j].h, np[j].size);
        if (np[j].state && (touch >> j & 1))
            uz_slot_touch(dev, s);
    }
    uz_note_mem_used(dev);
    return 0;
}

/* Break the locked group of k pages at gb (state f): bytes [rel, rel+n)
 * of it become src's (NULL: zeros; discard: pages wholly inside become
 * empty), and every page is stored alone. */
static int group_break(struct uz_store *dev, uint64_t gb, uint32_t k, uint32_t f, size_t rel,
                       size_t n, const uint8_t *src, bool discard)
{
    uint32_t prio = slot_prio(f);
    struct uz_stream *st = uz_stream_get(&dev->streams);
    struct uz_stream *dec = dec_stream(dev, prio, k, st);
    int err;
    if (!dec)
        err = uz_error(-EIO, "write: no scratch to decompress the group at page %llu",
                       (unsigned long long)gb);
    else
        err = decode_group(dev, gb, k, prio, dec, dec->gbuf);
    if (err == 0) {
        if (src)
            memcpy(dec->gbuf + rel, src, n);
        else
            memset(dec->gbuf + rel, 0, n);
        uint32_t empty = 0, touch = 0;
        for (uint32_t j = 0; j < k; j++) {
            size_t p0 = (size_t)j * PAGE, p1 = p0 + PAGE;
            if (p1 > rel && p0 < rel + n)
                touch |= 1u << j;
            if (discard && p0 >= rel && p1 <= rel + n)
                empty |= 1u << j;
        }
        err = replace_pages(dev, gb, k, dec->gbuf, empty, touch, st);
        if (err == 0)
            atomic_fetch_add_explicit(&dev->ev.group_breaks, 1, memory_order_relaxed);
    } else if (err == -EIO) {
        atomic_fetch_add_explicit(&dev->ev.failed_writes, 1, memory_order_relaxed);
    }
    if (dec && dec != st)
        uz_stream_put(dec);
    uz_stream_put(st);
    return err;
}

int uz_group_update(struct uz_store *dev, uint64_t off, size_t len, const uint8_t *src,
                    bool discard, size_t *done)
{
    uint64_t idx = off / PAGE, lo, hi;
    size_t in = off % PAGE;
    lock_unit(dev, idx, &lo, &hi);
    struct uz_slot *s = uz_slot_at(dev, idx);
    uint32_t f = uz_slot_state(s);
    int err = 0;
    if (!(f & SLOT_GROUP)) {
        /* broken meanwhile: an ordinary page */
        size_t n = PAGE - in < len ? PAGE - in : len;
        *done = n;
        if (n == PAGE && discard) {
            if (f)
                atomic_fetch_add_explicit(&dev->ev.notify_free, 1, memory_order_relaxed);
            uz_slot_free(dev, idx, s);
        } else if (n == PAGE && src) {
            err = uz_write_page(dev, idx, s, src, NULL);
        } else {
            err = uz_patch_page(dev, idx, s, in, n, src);
        }
        uz_unlock_range(dev, lo, hi);
        return err;
    }
    uint32_t k = slot_group_pages(f);
    uint64_t gb = idx & ~(uint64_t)(k - 1);
    uint64_t gstart = gb * PAGE, gend = gstart + (uint64_t)k * PAGE;
    size_t n = gend - off < len ? (size_t)(gend - off) : len;
    *done = n;
    if (discard && off == gstart && n == (size_t)k * PAGE) {
        for (uint32_t j = 0; j < k; j++)
            uz_slot_free(dev, gb + j, uz_slot_at(dev, gb + j));
        atomic_fetch_add_explicit(&dev->ev.notify_free, k, memory_order_relaxed);
    } else {
        err = group_break(dev, gb, k, f, (size_t)(off - gstart), n, src, discard);
    }
    uz_unlock_range(dev, lo, hi);
    return err;
}

int uz_group_write(struct uz_store *dev, uint64_t base, uint32_t k, const uint8_t *src)
{
    uint64_t hi = base + k;
    uz_lock_range(dev, base, hi);
    uint32_t f0 = uz_slot_state(uz_slot_at(dev, base));
    if ((f0 & SLOT_GROUP) && slot_group_pages(f0) > k) {
        /* inside a larger group (recompress group=K): break it */
        uz_unlock_range(dev, base, hi);
        uint64_t off = base * PAGE;
        size_t left = (size_t)k * PAGE, done = 0;
        int err = 0;
        while (err == 0 && left > 0) {
            err = uz_group_update(dev, off, left, src, false, &done);
            off += done;
            src += done;
            left -= done;
        }
        return err;
    }

    bool inner = false, all_same = true;
    for (uint32_t j = 0; j < k; j++) {
        uint64_t word;
        inner |= (uz_slot_state(uz_slot_at(dev, base + j)) & SLOT_GROUP) != 0;
        if (all_same && !uz_page_same_filled(src + (size_t)j * PAGE, &word))
            all_same = false;
    }
    struct uz_stream *st = uz_stream_get(&dev->streams);
    int err = 0;
    size_t clen = 0;
    if (!all_same)
        clen = dev->streams.codec->compress(st->ctx, src, (size_t)k * PAGE, st->gout, st->gcap);
    /* no gain over k raw pages: store them one by one */
    if (clen == 0 || clen >= (size_t)(k - 1) * PAGE + dev->huge_threshold)
        goto per_page;

    uint64_t h[UZ_GROUP_MAX] = {0};
    uint32_t nch = (uint32_t)((clen + PAGE - 1) / PAGE), j;
    for (j = 0; j < nch; j++) {
        size_t sz = clen - (size_t)j * PAGE < PAGE ? clen - (size_t)j * PAGE : PAGE;
        err = dev->aops->alloc(dev->alloc, sz, (uint32_t)(base + j), &h[j]);
        if (err < 0)
            break;
    }
    if (err < 0) {
        for (uint32_t i = 0; i < j; i++)
            dev->aops->free(dev->alloc, h[i]);
        if (dev->bd && err == -ENOMEM) {
            err = 0;   /* over the limit: the per-page path forwards */
            goto per_page;
        }
        atomic_fetch_add_explicit(&dev->ev.failed_writes, 1, memory_order_relaxed);
        err = uz_error(err, "write: no memory for the group at page %llu (%s)",
                       (unsigned long long)base,
                       atomic_load(&dev->limit_pages) ? "memory limit reached" : "allocation failed");
        goto out;
    }
    for (j = 0; j < nch; j++) {
        size_t sz = clen - (size_t)j * PAGE < PAGE ? clen - (size_t)j * PAGE : PAGE;
        memcpy(dev->aops->map(dev->alloc, h[j]), st->gout + (size_t)j * PAGE, sz);
    }
    for (j = 0; j < k; j++) {
        struct uz_slot *s = uz_slot_at(dev, base + j);
        uz_slot_commit(dev, base + j, s, slot_group_bits(k), h[j], chunk_bytes(clen, j));
        uz_slot_touch(dev, s);
    }
    atomic_fetch_add_explicit(&dev->ev.group_writes, 1, memory_order_relaxed);
    uz_note_mem_used(dev);
    goto out;

per_page:
    atomic_fetch_add_explicit(&dev->ev.group_fallbacks, 1, memory_order_relaxed);
    if (inner) {
        /* smaller groups inside: all or nothing */
        err = replace_pages(dev, base, k, src, 0, (1u << k) - 1, st);
    } else {
        for (uint32_t i = 0; i < k && err == 0; i++)
            err = uz_write_page(dev, base + i, uz_slot_at(dev, base + i), src + (size_t)i * PAGE, st);
    }
out:
    uz_stream_put(st);
    uz_unlock_range(dev, base, hi);
    return err;
}

size_t uz_group_cost(struct uz_store *dev, size_t clen)
{
    size_t full = clen / PAGE, rest = clen % PAGE;
    size_t tail = rest ? (dev->aops->class_size ? dev->aops->class_size(dev->alloc, rest) : rest) : 0;
    return full * PAGE + tail;
}

int uz_group_recode(struct uz_store *dev, uint64_t gb, uint32_t k, uint32_t prio)
{
    uint32_t f0 = uz_slot_state(uz_slot_at(dev, gb));
    uint32_t cur = slot_prio(f0);
    struct uz_streams *ss = streams_of(dev, prio);
    if (!ss || ss->gpages < k || cur == prio)
        return 0;
    size_t old = 0;
    for (uint32_t j = 0; j < k; j++) {
        uint64_t h = slot_handle(uz_slot_at(dev, gb + j));
        if (h)
            old += uz_group_cost(dev, dev->aops->obj_size(dev->alloc, h));
    }
    struct uz_stream *st = uz_stream_get(&dev->streams);
    struct uz_stream *s2 = uz_stream_get(ss);
    /* the group's own algorithm decodes: the primary's stream, the
     * secondary's own (s2, when it made the group) or another secondary's */
    struct uz_stream *dec = cur == 0 ? st : NULL;
    struct uz_streams *cs = streams_of(dev, cur);
    if (cur != 0 && cs && cs->gpages >= k)
        dec = uz_stream_get(cs);
    int err = 0, won = 0;
    if (!dec)
        err = uz_error(-EIO, "recompress: the group at page %llu has no algorithm to read it",
                       (unsigned long long)gb);
    else
        err = decode_group(dev, gb, k, cur, dec, s2->gbuf);
    if (dec && dec != st)
        uz_stream_put(dec);
    size_t clen = 0;
    if (err == 0)
        clen = ss->codec->compress(s2->ctx, s2->gbuf, (size_t)k * PAGE, s2->gout, s2->gcap);
    if (err == 0 && clen && clen <= (size_t)k * PAGE && uz_group_cost(dev, clen) < old) {
        uint64_t h[UZ_GROUP_MAX] = {0};
        uint32_t nch = (uint32_t)((clen + PAGE - 1) / PAGE), j;
        int aerr = 0;
        for (j = 0; j < nch && aerr == 0; j++) {
            aerr = dev->aops->alloc(dev->alloc, chunk_bytes(clen, j), (uint32_t)(gb + j), &h[j]);
            if (aerr == 0)
                memcpy(dev->aops->map(dev->alloc, h[j]), s2->gout + (size_t)j * PAGE,
                       chunk_bytes(clen, j));
        }
        if (aerr < 0) {
            /* no memory (the limit): the group stays as it was */
            for (uint32_t i = 0; i + 1 < j; i++)
                dev->aops->free(dev->alloc, h[i]);
        } else {
            for (j = 0; j < k; j++) {
                struct uz_slot *s = uz_slot_at(dev, gb + j);
                uint32_t keep = uz_slot_state(s) & SLOT_IDLE;
                uz_slot_commit(dev, gb + j, s, slot_group_bits(k) | (prio << SLOT_PRIO_SHIFT) | keep,
                               h[j], chunk_bytes(clen, j));
            }
            won = 1;
        }
    }
    uz_stream_put(s2);
    uz_stream_put(st);
    return err < 0 ? err : won;
}
