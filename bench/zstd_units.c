/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/zstd_units.c - zstd on a page file cut into units, as nbdkit's
 * memory plugin (32 KiB) and uzram's groups compress it: total compressed
 * bytes and single-thread compression speed for one level and, if given,
 * hash and chain table sizes.  All-zero units are skipped (both servers
 * store them as nothing).
 *
 *     cc -O2 -Wall bench/zstd_units.c -lzstd -o /tmp/zstd_units
 *     /tmp/zstd_units FILE UNIT LEVEL [HASHLOG [CHAINLOG]]
 *     /tmp/zstd_units /tmp/uzram-corpus-sqlite.pages 32768 3 15
 *
 * Output: units, compressed bytes, ratio, MB/s (10^6 bytes of input per
 * second, the best of five passes).  The frames are magicless, without a
 * content size, as uzram stores them.
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

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: zstd_units FILE UNIT LEVEL [HASHLOG [CHAINLOG]]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 2;
    }
    fclose(f);
    size_t unit = strtoul(argv[2], NULL, 0);
    int level = atoi(argv[3]);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(unit);
    unsigned char *out = malloc(cap);
    if (!c || !out || unit == 0)
        return 2;
    int bad = ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
              ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format, ZSTD_f_zstd1_magicless)) ||
              ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
              (argc > 4 && ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, atoi(argv[4])))) ||
              (argc > 5 && ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_chainLog, atoi(argv[5]))));
    if (bad) {
        fprintf(stderr, "zstd refused a parameter\n");
        return 2;
    }
    size_t total = 0, units = 0;
    double best = 1e30;
    for (int pass = 0; pass < 5; pass++) {
        total = units = 0;
        double t0 = now();
        for (size_t o = 0; o + unit <= (size_t)n; o += unit) {
            if (zero_unit(buf + o, unit))
                continue;
            size_t z = ZSTD_compress2(c, out, cap, buf + o, unit);
            if (ZSTD_isError(z)) {
                fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(z));
                return 1;
            }
            total += z < unit ? z : unit;   /* stored raw if it does not shrink */
            units++;
        }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("%zu units, %zu bytes, ratio %.4f, %.1f MB/s\n", units, total,
           (double)(units * unit) / (double)total, (double)(units * unit) / best / 1e6);
    ZSTD_freeCCtx(c);
    free(out);
    free(buf);
    return 0;
}
