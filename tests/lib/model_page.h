/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * model_page.h - the model's side of a write: what page p must hold after
 * a write of len bytes at off (newdata NULL: zeros) lands on a page that
 * held old.  Shared by the fuzz target and the allocation-failure sweeps,
 * which both accept a failed write's pages as either old or new.
 */
#ifndef UZRAM_TEST_MODEL_PAGE_H
#define UZRAM_TEST_MODEL_PAGE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void model_page_after(uint8_t *want, const uint8_t *old, uint64_t p, uint64_t off,
                                    size_t len, const uint8_t *newdata, size_t page)
{
    memcpy(want, old, page);
    uint64_t lo = p * page > off ? p * page : off;
    uint64_t hi = (p + 1) * page < off + len ? (p + 1) * page : off + len;
    if (newdata)
        memcpy(want + (lo - p * page), newdata + (lo - off), hi - lo);
    else
        memset(want + (lo - p * page), 0, hi - lo);
}

#endif
