/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dupscan.c - the ideal of deduplication for a page file: the lz4 bytes of
 * the pages that repeat an earlier page, over the lz4 bytes of all pages
 * (same-filled pages aside: they cost nothing either way).  A store that
 * keeps identical pages once saves at most that; `uzram bench` prints it
 * beside what the device saved.
 *
 * Every page's XXH3 goes into an open-addressing table of page numbers;
 * a page counts as a repeat only if its bytes equal the earlier page's.
 */
#include "dupscan.h"

#include <errno.h>
#include <lz4.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL   /* XXH3 compiled in from its header, as dedup.c has it */
#include <xxhash.h>

#define PAGE 4096u

static bool same_filled(const uint8_t *p)
{
    uint64_t w, v;
    memcpy(&w, p, 8);
    for (size_t i = 8; i < PAGE; i += 8) {
        memcpy(&v, p + i, 8);
        if (v != w)
            return false;
    }
    return true;
}

int dupscan_file(const uint8_t *data, uint64_t pages, struct dupscan_file *s)
{
    memset(s, 0, sizeof *s);
    uint64_t cap = 16;
    while (cap < 2 * pages)
        cap *= 2;
    uint64_t *slot = malloc(cap * sizeof *slot);   /* page + 1, 0 = empty */
    char *out = malloc(LZ4_COMPRESSBOUND(PAGE));
    if (!slot || !out) {
        free(slot);
        free(out);
        return -ENOMEM;
    }
    memset(slot, 0, cap * sizeof *slot);
    for (uint64_t p = 0; p < pages; p++) {
        const uint8_t *pg = data + p * PAGE;
        s->pages++;
        if (same_filled(pg)) {
            s->same_pages++;
            continue;
        }
        int n = LZ4_compress_default((const char *)pg, out, PAGE, LZ4_COMPRESSBOUND(PAGE));
        uint64_t bytes = n > 0 && (unsigned)n < PAGE ? (uint64_t)n : PAGE;
        s->lz4_bytes += bytes;
        uint64_t i = XXH3_64bits(pg, PAGE) & (cap - 1);
        bool repeat = false;
        while (slot[i]) {
            if (memcmp(data + (slot[i] - 1) * PAGE, pg, PAGE) == 0) {
                repeat = true;
                break;
            }
            i = (i + 1) & (cap - 1);
        }
        if (repeat) {
            s->dup_pages++;
            s->ideal_bytes += bytes;
        } else {
            slot[i] = p + 1;
        }
    }
    free(slot);
    free(out);
    return 0;
}
