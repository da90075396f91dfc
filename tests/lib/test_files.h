/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_files.h - the files unit tests make and read, in one place: a fresh
 * backing file of N 4 KiB blocks, and a page file of the corpus unpacked
 * with zstd.  Include after <cmocka.h> (the helpers assert).
 */
#ifndef UZRAM_TEST_FILES_H
#define UZRAM_TEST_FILES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "pagefile.h"

/* A fresh backing file of nblocks 4 KiB blocks, made with mkstemp; its
 * name is written to path (cap bytes) and returned.  The caller unlinks. */
static inline const char *test_backing_file(char *path, size_t cap, uint64_t nblocks)
{
    snprintf(path, cap, "/tmp/uzram-bd-XXXXXX"); /* mkstemp's template */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(nblocks * 4096u)), 0);
    close(fd);
    return path;
}

/* The pages of corpus file name (e.g. "sqlite.pages.zst") in $UZ_CORPUS
 * (default ../shared/corpus), read with the one page file reader
 * (tools/pagefile.c), at most max_pages of them (0: all); *pages is their
 * number.  NULL if there are none (no such file).  The caller frees. */
static inline uint8_t *test_corpus_load(const char *name, uint64_t max_pages, uint64_t *pages)
{
    const char *dir = getenv("UZ_CORPUS");
    char path[1024], msg[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "../shared/corpus", name);
    uint8_t *buf;
    if (pagefile_load(path, max_pages, &buf, pages, msg, sizeof msg) < 0) {
        *pages = 0;
        return NULL;
    }
    return buf;
}

#endif
