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
 * (default ../shared/corpus), unpacked with `zstd -dc`, at most max_pages
 * of them (0: all); *pages is their number.  NULL if there are none (no
 * such file, no zstd).  The caller frees. */
static inline uint8_t *test_corpus_load(const char *name, uint64_t max_pages, uint64_t *pages)
{
    const char *dir = getenv("UZ_CORPUS");
    char path[1024], cmd[1200];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "../shared/corpus", name);
    *pages = 0;
    if (access(path, R_OK) != 0)
        return NULL;
    snprintf(cmd, sizeof cmd, "zstd -dc '%s' 2>/dev/null", path);
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, len = 0, n;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    pclose(f);
    *pages = len / 4096;
    if (max_pages && *pages > max_pages)
        *pages = max_pages;
    if (*pages == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

#endif
