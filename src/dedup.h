/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dedup.h - layer 2 of the store (src/README.md): the content index that
 * finds a page already stored, so that identical pages are stored once
 * (dedup.c; the shared records are shared.c's).
 */
#ifndef UZRAM_DEDUP_H
#define UZRAM_DEDUP_H

#include "slot.h"

/* Make / free the index of a device being initialised / torn down.
 * init: 0 or -ENOMEM (no index; nothing made). */
int uz_dedup_init(struct uz_store *dev);
void uz_dedup_fini(struct uz_store *dev);
/* Resident bytes of the index (counted in the footprint). */
uint64_t uz_dedup_bytes(struct uz_store *dev);

/*
 * The write path's calls, for a page that is not same-filled, with slot
 * idx locked and a primary stream st held.
 *
 * uz_dedup_early: look the page up before it is compressed (true: the
 *   last window of lookups found enough pages stored that a hit saving a
 *   compression pays) or after (false: the page is then hashed from the
 *   cache).  Either order finds the same pages.  Cannot fail.
 *
 * uz_dedup_find: if the index is to look at this page (mode, sampling),
 *   *hash is its hash and the return is >= 0 when an identical page is
 *   stored: the id of the record that holds it, with a reference taken
 *   for slot idx (commit it SLOT_SHARED with that id).  -1: not found
 *   (*indexed says whether to uz_dedup_insert the page once stored).
 *   Cannot fail (a candidate that is busy or cannot be made shared is a
 *   miss).  A candidate is taken only if it equals the page byte for byte
 *   (decoded with st's context into a buffer of its own: st->out is left
 *   as it is, so it may hold the page's compressed form): a hash match
 *   alone is never trusted.
 * uz_dedup_insert: the page (hash) is now stored unique in slot idx.
 *   Cannot fail (a full bucket evicts an entry).
 */
/* uz_dedup_probe: would uz_dedup_find look at this page and does the
 * index hold an entry of its hash?  A hint for a whole-group write (a
 * page that may be stored already takes the per-page path, which looks it
 * up for real); takes no slot lock, changes nothing, cannot fail. */
bool uz_dedup_early(struct uz_store *dev);
bool uz_dedup_probe(struct uz_store *dev, const void *page);
int64_t uz_dedup_find(struct uz_store *dev, uint64_t idx, const void *page, struct uz_stream *st,
                      uint64_t *hash, bool *indexed);
void uz_dedup_insert(struct uz_store *dev, uint64_t hash, uint64_t idx);

/* The dedup_stat attribute's text.  Its length or -ENOSPC. */
int uz_dedup_show(struct uz_store *dev, char *buf, size_t size);

/* Figures for uzram_stats. */
struct uz_dedup_figures {
    uint64_t hits, refused, lookups, entries;
    bool sampling;             /* auto mode, looking at a sample of pages */
};
void uz_dedup_figures(struct uz_store *dev, struct uz_dedup_figures *f);

/* Test hook: when set, replaces the page hash (to force collisions).
 * NULL in production.  Not thread-safe to change while I/O runs. */
extern uint64_t (*uz_dedup_hash_hook)(const void *page);

#endif
