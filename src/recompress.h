/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * recompress.h - layer 3 of the store (src/README.md): secondary
 * algorithms and recompression (recompress.c).
 */
#ifndef UZRAM_RECOMPRESS_H
#define UZRAM_RECOMPRESS_H

#include "slot.h"

/* The configured secondaries (device init / teardown).  init checks that
 * each algorithm exists and makes nothing: their streams are made by the
 * first recompression that uses them.  init: 0 or -EINVAL.  bytes: what
 * their streams hold now (in the footprint). */
int uz_secondaries_init(struct uz_store *dev);
void uz_secondaries_fini(struct uz_store *dev);
uint64_t uz_secondaries_bytes(struct uz_store *dev);
/* Recompression has gone idle (the policy's pass found nothing to do; a
 * whole pass asked for by an attribute ended): unless a recompression is
 * running, the secondaries' contexts give back what compressing groups
 * took (uz_streams_rest) and keep what reading needs.  The next
 * recompression sizes them again.  Cannot fail. */
void uz_secondaries_rest(struct uz_store *dev);

enum { RC_IDLE = 1, RC_HUGE = 2, RC_AGE = 4 };
struct uz_rc_req {
    unsigned mode;                     /* RC_*: all bits must hold; 0 = any page */
    uint32_t min_age;                  /* RC_AGE */
    uint64_t threshold;                /* only objects of at least this size */
    uint64_t max_pages;                /* pages tried, 0 = no bound */
    uint32_t prio;                     /* try only this priority; 0 = all */
    uint64_t lo, hi;                   /* slot range */
    uint64_t scan_max;                 /* slots looked at, 0 = no bound */
    uint32_t group;                    /* > 1: make groups of this many idle pages */
    bool settle;                       /* settle (recompress.c, "Settling"): regroup
                                        * and recompress with prio, windows of 8 */
    uint64_t done;                     /* out: objects replaced (pages grouped) */
    uint64_t next;                     /* out: where the scan stopped */
};
/* Recompress the qualifying pages.  0, or -EIO (a page that does not
 * decompress: the scan stops there), -ENOMEM (the secondary's streams
 * could not be made), -EINVAL (no such secondary).  Each page is replaced or left as it
 * was; a failed allocation (memory limit) leaves its page as it was and
 * goes on.  Not all-or-nothing: pages replaced before an error stay
 * replaced (they read back the same bytes). */
int uz_recompress(struct uz_store *dev, struct uz_rc_req *req);

#endif
