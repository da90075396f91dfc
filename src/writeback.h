/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * writeback.h - layer 3 of the store (src/README.md): moving pages out
 * of RAM to the backing device, and idle marking (writeback.c).
 */
#ifndef UZRAM_WRITEBACK_H
#define UZRAM_WRITEBACK_H

#include "slot.h"

/* Mark idle every live slot of [lo, hi) idle for at least min_age
 * seconds (0: all).  Cannot fail. */
void uz_idle_mark(struct uz_store *dev, uint64_t lo, uint64_t hi, uint32_t min_age);

/* writeback_batch_size: its default and its bound.  zram's default is
 * 32; here 128, since only an NBD remote batches (a file goes page by
 * page) and there a batch is one request of 128 joined blocks: a
 * quarter of the wake-ups of 32 on each side (docs/far-memory.md) */
#define UZ_WB_BATCH_DEFAULT 128
#define UZ_WB_BATCH_MAX 128

enum { WB_IDLE = 1, WB_HUGE = 2, WB_INCOMP = 4, WB_ANY = 8, WB_AGE = 16 };
struct uz_wb_req {
    unsigned mode;                     /* WB_*: which pages qualify (all bits must hold) */
    uint64_t lo, hi;                   /* slot range [lo, hi) */
    uint64_t max_pages;                /* 0 = no bound */
    uint32_t min_age;                  /* WB_AGE: idle at least this long */
    uint64_t done;                     /* out: pages written back */
    uint64_t next;                     /* out: where the scan stopped */
};
/* Write back the qualifying pages.  0, or the first error: -ENODEV no
 * backing device, -EIO (I/O error or writeback_limit exhausted), -ENOSPC
 * backing device full.  Not all-or-nothing: on error, the pages before
 * req->next that qualified are on the backing device (req->done of them),
 * the page the error happened on and every later one are in RAM as they
 * were. */
int uz_writeback(struct uz_store *dev, struct uz_wb_req *req);

#endif
