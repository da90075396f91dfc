/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nbd_rtt.c - the floor of a remote page read: single 4 KiB NBD reads,
 * one at a time, each timed (bench/writeback_nbd.sh).
 *
 *     nbd_rtt URI PAGES [N]
 *
 * Reads N (default 2000) random 4 KiB blocks among the first PAGES of the
 * export with nbd_pread (synchronous: one round trip each) and prints
 *     rtt_us median=<m> p99=<p> n=<N>
 *
 * Build (the bench script does it): cc -std=c11 -O2 -Wall -Wextra -Werror
 * nbd_rtt.c -o nbd_rtt $(pkg-config --cflags --libs libnbd)
 */
#define _GNU_SOURCE
#include <libnbd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: nbd_rtt URI PAGES [N]\n");
        return 2;
    }
    uint64_t pages = strtoull(argv[2], NULL, 10);
    int n = argc > 3 ? atoi(argv[3]) : 2000;
    if (pages == 0 || n <= 0)
        return 2;
    struct nbd_handle *h = nbd_create();
    if (!h || nbd_connect_uri(h, argv[1]) == -1) {
        fprintf(stderr, "nbd_rtt: %s\n", nbd_get_error());
        return 1;
    }
    static char buf[4096];
    uint64_t *t = malloc(sizeof *t * (size_t)n), x = 88172645463325252ull;
    if (!t)
        return 1;
    for (int i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (nbd_pread(h, buf, sizeof buf, (x % pages) * 4096, 0) == -1) {
            fprintf(stderr, "nbd_rtt: %s\n", nbd_get_error());
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[i] = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)(b.tv_nsec - a.tv_nsec);
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("rtt_us median=%.1f p99=%.1f n=%d\n", t[n / 2] / 1000.0, t[n * 99 / 100] / 1000.0, n);
    nbd_close(h);
    free(t);
    return 0;
}
