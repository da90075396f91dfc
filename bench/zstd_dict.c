/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/zstd_dict.c - what a zstd dictionary saves on a page file cut
 * into units (4 KiB pages, or 32 KiB as settling groups them): total
 * compressed bytes with no dictionary and with the one given, at one
 * level, and single-thread decompression time per unit.  The frames are
 * magicless, without a content size, with the dictionary ID, as uzram
 * stores them.  All-zero units are skipped (uzram stores them as
 * nothing).  The dictionary may be trained on another file: that is the
 * honest case.
 *
 *     cc -O2 -Wall bench/zstd_dict.c -lzstd -o /tmp/zstd_dict
 *     /tmp/zstd_dict PAGEFILE UNIT LEVEL [DICT]
 *     uzram train /tmp/a.pages -o /tmp/a.dict
 *     /tmp/zstd_dict /tmp/b.pages 4096 6 /tmp/a.dict
 *
 * Output: units, bytes without, bytes with (and the ratio), and the
 * median decompression time of a unit without and with, in us.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int zero_unit(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static unsigned char *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len ? *len : 1);
    if (!b || fread(b, 1, *len, f) != *len) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(1);
    }
    fclose(f);
    return b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Compress every unit with (cd) or without a dictionary; decompress each
 * back, check it, and time it.  Returns the total bytes; *med the median
 * decompression time in us. */
static size_t run(const unsigned char *data, size_t len, size_t unit, int level,
                  ZSTD_CDict *cd, ZSTD_DDict *dd, double *med)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_format, ZSTD_f_zstd1_magicless);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    ZSTD_DCtx_setParameter(dc, ZSTD_d_format, ZSTD_f_zstd1_magicless);
    if (cd) {
        ZSTD_CCtx_refCDict(cc, cd);
        ZSTD_DCtx_refDDict(dc, dd);
    }
    size_t cap = ZSTD_compressBound(unit), total = 0, n = len / unit, k = 0;
    unsigned char *out = malloc(cap), *back = malloc(unit);
    double *t = malloc(n * sizeof *t);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *u = data + i * unit;
        if (zero_unit(u, unit))
            continue;
        size_t r = ZSTD_compress2(cc, out, cap, u, unit);
        if (ZSTD_isError(r)) {
            fprintf(stderr, "compress: %s\n", ZSTD_getErrorName(r));
            exit(1);
        }
        total += r;
        double a = now();
        size_t d = ZSTD_decompressDCtx(dc, back, unit, out, r);
        t[k++] = (now() - a) * 1e6;
        if (ZSTD_isError(d) || d != unit || memcmp(back, u, unit) != 0) {
            fprintf(stderr, "unit %zu does not round-trip\n", i);
            exit(1);
        }
    }
    qsort(t, k, sizeof *t, cmp_double);
    *med = k ? t[k / 2] : 0;
    free(t);
    free(out);
    free(back);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PAGEFILE UNIT LEVEL [DICT]\n", argv[0]);
        return 2;
    }
    size_t len, dlen = 0;
    unsigned char *data = load(argv[1], &len);
    size_t unit = strtoul(argv[2], NULL, 0);
    int level = atoi(argv[3]);
    unsigned char *dict = argc > 4 ? load(argv[4], &dlen) : NULL;
    size_t units = 0;
    for (size_t i = 0; i < len / unit; i++)
        units += !zero_unit(data + i * unit, unit);
    double m0, m1 = 0;
    size_t a = run(data, len, unit, level, NULL, NULL, &m0), b = a;
    if (dict) {
        ZSTD_CDict *cd = ZSTD_createCDict(dict, dlen, level);
        ZSTD_DDict *dd = ZSTD_createDDict(dict, dlen);
        if (!cd || !dd) {
            fprintf(stderr, "%s: not a dictionary\n", argv[4]);
            return 1;
        }
        b = run(data, len, unit, level, cd, dd, &m1);
        ZSTD_freeCDict(cd);
        ZSTD_freeDDict(dd);
    }
    printf("%zu units  %zu bytes  %zu with dict (%.3f)  decompress median %.2f us, %.2f with\n",
           units, a, b, (double)b / (double)a, m0, m1);
    return 0;
}
