/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pagefile.c - read a page file, raw or zstd-compressed, into memory
 * (pagefile.h).  zstd files are decoded with libzstd's streaming API as
 * they are read, and reading stops at max_pages: a test that wants the
 * first thousand pages of a corpus decodes only those.
 */
#define _GNU_SOURCE
#include "pagefile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define PAGE 4096u

/* Make room for need more bytes at *len in *buf of *cap. */
static bool grow(uint8_t **buf, size_t *cap, size_t len, size_t need)
{
    if (len + need <= *cap)
        return true;
    size_t nc = *cap ? *cap : 1 << 20;
    while (nc < len + need)
        nc *= 2;
    uint8_t *nb = realloc(*buf, nc);
    if (!nb)
        return false;
    *buf = nb;
    *cap = nc;
    return true;
}

int pagefile_load(const char *path, uint64_t max_pages, uint8_t **data, uint64_t *pages,
                  char *msg, size_t msglen)
{
    *data = NULL;
    *pages = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(msg, msglen, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t nl = strlen(path);
    bool zst = nl > 4 && strcmp(path + nl - 4, ".zst") == 0;
    size_t want = max_pages ? (size_t)max_pages * PAGE : SIZE_MAX;
    uint8_t *buf = NULL, in[1 << 16];
    size_t cap = 0, len = 0;
    int rc = 0;
    ZSTD_DStream *ds = zst ? ZSTD_createDStream() : NULL;
    if (zst && !ds)
        rc = -ENOMEM;
    size_t last = 1;   /* zstd: 0 once a frame ended */
    while (rc == 0 && len < want) {
        size_t got = fread(in, 1, sizeof in, f);
        if (got == 0)
            break;
        if (!zst) {
            size_t take = got < want - len ? got : want - len;
            if (!grow(&buf, &cap, len, take)) {
                rc = -ENOMEM;
                break;
            }
            memcpy(buf + len, in, take);
            len += take;
            continue;
        }
        ZSTD_inBuffer ib = {in, got, 0};
        while (rc == 0 && ib.pos < ib.size && len < want) {
            if (!grow(&buf, &cap, len, 1 << 18)) {
                rc = -ENOMEM;
                break;
            }
            size_t room = cap - len < want - len ? cap - len : want - len;
            ZSTD_outBuffer ob = {buf + len, room, 0};
            last = ZSTD_decompressStream(ds, &ob, &ib);
            if (ZSTD_isError(last)) {
                snprintf(msg, msglen, "%s: not valid zstd data (%s)", path, ZSTD_getErrorName(last));
                rc = -EINVAL;
            }
            len += ob.pos;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(msg, msglen, "%s: read error", path);
        rc = -EIO;
    }
    if (rc == 0 && zst && last != 0 && len < want) {
        snprintf(msg, msglen, "%s: the zstd data ends early", path);
        rc = -EINVAL;
    }
    if (rc == 0 && (len == 0 || (len % PAGE && len < want))) {
        snprintf(msg, msglen, "%s: %zu bytes is not a positive whole number of 4 KiB pages", path, len);
        rc = -EINVAL;
    }
    if (rc == -ENOMEM)
        snprintf(msg, msglen, "%s: out of memory", path);
    ZSTD_freeDStream(ds);
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *pages = len / PAGE;
    return 0;
}
