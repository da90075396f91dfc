/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/lz4_floor.c - the write path's floor: liblz4 alone on a page
 * file, page by page, as uzram's primary compresses (acceleration 1,
 * LZ4_compress_fast_extState), with nothing else: no hash, no allocator,
 * no copy, no table.  A store whose write path did only this would write
 * at this speed; `uzram bench --json FILE`'s write_cpu_mb_s is measured
 * the same way (MB/s over the thread's own CPU time), so the two divide.
 *
 *     cc -O2 -Wall bench/lz4_floor.c -llz4 -o /tmp/lz4_floor
 *     /tmp/lz4_floor FILE [ROUNDS [ACCEL]]
 *
 * Output: min / median / max MB/s (10^6 bytes of input per CPU second of
 * this thread) over ROUNDS passes (default 7), at lz4's acceleration
 * ACCEL (default 1, uzram's and zram's default), and the bytes a store
 * would keep (pages over 3/4 of a page kept whole, as uzram's huge
 * pages).  Every page of the first pass is decompressed and compared.
 */
#include <lz4.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PAGEFILE [ROUNDS [ACCEL]]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    int accel = argc > 3 ? atoi(argv[3]) : 1;
    if (rounds < 1 || rounds > 100 || accel < 1 || accel > 65537) {
        fprintf(stderr, "%s: ROUNDS: give 1 to 100; ACCEL: 1 to 65537\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) {
        perror(argv[1]);
        return 1;
    }
    long n = ftell(f);
    rewind(f);
    long pages = n / PAGE;
    char *buf = malloc((size_t)n + 1);
    void *state = malloc((size_t)LZ4_sizeofState());
    if (pages == 0 || !buf || !state || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read whole pages from %s\n", argv[0], argv[1]);
        return 1;
    }
    fclose(f);
    char out[LZ4_COMPRESSBOUND(PAGE)], back[PAGE];
    double *mbs = calloc((size_t)rounds, sizeof *mbs);
    long kept = 0;
    for (int r = 0; r < rounds; r++) {
        kept = 0;
        double t0 = cpu_now();
        for (long i = 0; i < pages; i++) {
            const char *p = buf + i * PAGE;
            int k = LZ4_compress_fast_extState(state, p, out, PAGE, (int)sizeof out, accel);
            if (k <= 0) {
                fprintf(stderr, "%s: page %ld does not compress\n", argv[0], i);
                return 1;
            }
            kept += k > PAGE * 3 / 4 ? PAGE : k;
            if (r == 0 && (LZ4_decompress_safe(out, back, k, PAGE) != PAGE || memcmp(back, p, PAGE))) {
                fprintf(stderr, "%s: page %ld does not read back\n", argv[0], i);
                return 1;
            }
        }
        double t = cpu_now() - t0;
        mbs[r] = (double)pages * PAGE / 1e6 / (t > 0 ? t : 1e-9);
    }
    /* the first pass also decompressed: leave it out when there are others */
    int first = rounds > 1 ? 1 : 0;
    qsort(mbs + first, (size_t)(rounds - first), sizeof *mbs, cmp_double);
    int m = rounds - first;
    printf("%s: %ld pages, acceleration %d, lz4 alone %.0f / %.0f / %.0f MB/s (min / median / max of %d), keeps %ld bytes (%.3f)\n",
           argv[1], pages, accel, mbs[first], mbs[first + m / 2], mbs[rounds - 1], m, kept, (double)kept / (double)n);
    free(mbs);
    free(state);
    free(buf);
    return 0;
}
