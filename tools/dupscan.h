/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dupscan.h - the duplicates of a page file and what storing them once
 * could save at best (dupscan.c), for `uzram bench`.
 */
#ifndef UZRAM_DUPSCAN_H
#define UZRAM_DUPSCAN_H

#include <stddef.h>
#include <stdint.h>

struct dupscan_file {
    uint64_t pages;            /* pages looked at */
    uint64_t same_pages;       /* same-filled (stored as a word, not deduplicated) */
    uint64_t dup_pages;        /* pages equal to an earlier page (not same-filled) */
    uint64_t lz4_bytes;        /* lz4-compressed bytes of every page not same-filled */
    uint64_t ideal_bytes;      /* of those, the bytes of the repeats: the ideal saving */
};

/* Scan pages (pages * 4096 bytes) into *s: pages are compared byte for
 * byte (an XXH3 hash only finds candidates).  0, or -ENOMEM. */
int dupscan_file(const uint8_t *data, uint64_t pages, struct dupscan_file *s);

#endif
