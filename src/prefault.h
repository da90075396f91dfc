/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * prefault.h - a helper thread that keeps the next pages of an arena
 * resident, so that the writer does not pay their page faults (see
 * prefault.c for why and for the accounting).
 */
#ifndef UZRAM_PREFAULT_H
#define UZRAM_PREFAULT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct uz_prefault {
    uint8_t *base;              /* the arena */
    uint32_t npages;            /* its pages */
    _Atomic uint32_t top;       /* the allocator's top: pages below are its own */
    _Atomic uint32_t ahead;     /* pages to keep resident from top */
    _Atomic uint32_t done;      /* [top, done) is resident (done >= top when valid) */
    _Atomic bool sleeping;      /* the helper waits for a kick */
    _Atomic bool resting;       /* (set under lock) the window is given back until top moves */
    uint32_t hi;                /* (lock) no page at or above it was populated and kept */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
    unsigned gen;               /* fork generation the thread belongs to */
};

/* Start the helper for an arena of npages pages at base.  Best effort: if
 * the thread cannot be made (or UZ_PREFAULT=0 is in the environment), pf
 * stays idle and every call below is a no-op. */
void uz_prefault_start(struct uz_prefault *pf, void *base, uint32_t npages);
void uz_prefault_stop(struct uz_prefault *pf);
/* The allocator's top is now top and it holds `used` committed pages, or
 * a weighted count of them (the window grows with it: pages / 512).  Called with the allocator's arena lock held,
 * after every change of top; never blocks (a wake-up at most). */
void uz_prefault_top(struct uz_prefault *pf, uint32_t top, uint64_t used);
/* At rest (a whole compaction: the device is idle or was asked to give
 * memory back): the window's pages are released, and the helper keeps
 * none until the allocator's next move of top.  Called with the
 * allocator's arena lock held (top cannot move meanwhile); never fails. */
void uz_prefault_rest(struct uz_prefault *pf);
/* Bytes the helper holds resident beyond top right now (for the footprint). */
uint64_t uz_prefault_bytes(struct uz_prefault *pf);

#endif
