/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pagefile.h - the one reader of page files (pagefile.c), for `uzram
 * bench`, `uzram bench-alloc` and the tests.  A page file is raw 4 KiB
 * pages (what `uzram capture` writes), or the same compressed with zstd
 * (a name ending in .zst), as ../shared/corpus holds them.
 */
#ifndef UZRAM_PAGEFILE_H
#define UZRAM_PAGEFILE_H

#include <stddef.h>
#include <stdint.h>

/* Read at most max_pages pages (0: all) of path into *data (malloc'd;
 * the caller frees) and their number into *pages.  0, or -errno (cannot
 * open or read: ENOENT, EACCES...), -EINVAL (not valid zstd data, or not
 * a whole number of pages, or empty), -ENOMEM; then *data is NULL and msg
 * (msglen bytes) says why. */
int pagefile_load(const char *path, uint64_t max_pages, uint8_t **data, uint64_t *pages,
                  char *msg, size_t msglen);

#endif
