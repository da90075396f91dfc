/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nbd_randio.c - random 4 KiB I/O of real pages over NBD, every byte
 * checked: the random half of bench/nbd_vs_memory.sh.
 *
 *     nbd_randio URI FILE write|read [--shift S] [--depth D] [--seed N]
 *
 * FILE is a page file (its length a multiple of 4096, or the tail page is
 * left out).  Page i of the export holds page (i + S) % n of FILE, n its
 * page count: `write` stores that image, one 4 KiB request per page, in a
 * seeded random order; `read` reads every page once, in another seeded
 * random order, and compares it with what it must hold (any difference:
 * exit 1, naming the page).  So `write --shift 0` then `read --shift 0`
 * checks a random fill, and after a sequential copy of FILE (nbdcopy),
 * `read --shift 0` is random reads of it and `write --shift n/2` random
 * overwrites of every page with other real pages.
 *
 * D requests are kept in flight (libnbd's asynchronous calls; 1 is
 * synchronous I/O, as fio's iodepth=1).  Prints one line:
 *     <write|read> pages=<n> secs=<t> iops=<ops/s> MBps=<10^6 B/s>
 * Random orders come from a xorshift generator seeded with N (default 1),
 * the same on every run.
 *
 * Why not fio: fio writes data of its own (random or zero-padded), which
 * is not what the store holds in real use, and cannot check a random fill
 * of real pages; this tool writes the page files the sequential half of
 * the benchmark copies.
 *
 * Build (the bench script does it): cc -std=c11 -O2 -Wall -Wextra -Werror
 * nbd_randio.c -o nbd_randio $(pkg-config --cflags --libs libnbd)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define MAX_DEPTH 64

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_nbd(const char *what)
{
    fprintf(stderr, "nbd_randio: %s: %s\n", what, nbd_get_error());
    exit(2);
}

static int usage(void)
{
    fprintf(stderr, "usage: nbd_randio URI FILE write|read [--shift S] [--depth D] [--seed N]\n");
    return 2;
}

struct req {
    int64_t cookie;         /* 0 = free */
    uint64_t page;          /* export page */
    uint8_t buf[PAGE];      /* read: the page read */
};

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    const char *uri = argv[1], *file = argv[2], *mode = argv[3];
    bool writing = strcmp(mode, "write") == 0;
    if (!writing && strcmp(mode, "read") != 0)
        return usage();
    uint64_t shift = 0, seed = 1;
    unsigned depth = 1;
    for (int i = 4; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        char *end;
        unsigned long long v = strtoull(argv[i + 1], &end, 10);
        if (*end)
            return usage();
        if (strcmp(argv[i], "--shift") == 0)
            shift = v;
        else if (strcmp(argv[i], "--depth") == 0 && v >= 1 && v <= MAX_DEPTH)
            depth = (unsigned)v;
        else if (strcmp(argv[i], "--seed") == 0)
            seed = v;
        else
            return usage();
        i++;
    }

    int fd = open(file, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        fprintf(stderr, "nbd_randio: %s: %s\n", file, strerror(errno));
        return 2;
    }
    uint64_t n = (uint64_t)sb.st_size / PAGE;
    if (n == 0) {
        fprintf(stderr, "nbd_randio: %s: not one whole page\n", file);
        return 2;
    }
    const uint8_t *pages = mmap(NULL, n * PAGE, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (pages == MAP_FAILED) {
        fprintf(stderr, "nbd_randio: mmap %s: %s\n", file, strerror(errno));
        return 2;
    }
    shift %= n;

    /* the order: a seeded permutation of the pages (Fisher-Yates); reads
     * and writes use different streams of the same seed */
    uint64_t *order = malloc(n * sizeof *order);
    struct req *reqs = calloc(MAX_DEPTH, sizeof *reqs);
    if (!order || !reqs) {
        fprintf(stderr, "nbd_randio: out of memory\n");
        return 2;
    }
    rng = seed * 0x9e3779b97f4a7c15ull + (writing ? 1 : 2);
    if (rng == 0)
        rng = 1;
    for (uint64_t i = 0; i < n; i++)
        order[i] = i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = rnd() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    struct nbd_handle *h = nbd_create();
    if (!h)
        die_nbd("nbd_create");
    if (nbd_connect_uri(h, uri) == -1)
        die_nbd(uri);
    int64_t size = nbd_get_size(h);
    if (size < 0)
        die_nbd("size");
    if ((uint64_t)size < n * PAGE) {
        fprintf(stderr, "nbd_randio: the export (%" PRId64 " bytes) is smaller than %s\n", size,
                file);
        return 2;
    }

    uint64_t next = 0, done = 0, bad = 0;
    double t0 = now();
    while (done < n) {
        /* fill the free slots */
        for (unsigned s = 0; s < depth && next < n; s++) {
            struct req *r = &reqs[s];
            if (r->cookie)
                continue;
            r->page = order[next++];
            const uint8_t *src = pages + ((r->page + shift) % n) * PAGE;
            r->cookie = writing
                ? nbd_aio_pwrite(h, src, PAGE, r->page * PAGE, NBD_NULL_COMPLETION, 0)
                : nbd_aio_pread(h, r->buf, PAGE, r->page * PAGE, NBD_NULL_COMPLETION, 0);
            if (r->cookie == -1)
                die_nbd(writing ? "write" : "read");
        }
        /* wait only for what is still on the wire (a reply may have been
         * taken in already while the requests were sent) */
        if (nbd_aio_in_flight(h) > 0 && nbd_poll(h, -1) == -1)
            die_nbd("poll");
        for (unsigned s = 0; s < depth; s++) {
            struct req *r = &reqs[s];
            if (!r->cookie)
                continue;
            int c = nbd_aio_command_completed(h, r->cookie);
            if (c == 0)
                continue;
            if (c == -1)
                die_nbd(writing ? "write" : "read");
            if (!writing && memcmp(r->buf, pages + ((r->page + shift) % n) * PAGE, PAGE) != 0) {
                if (bad++ < 5)
                    fprintf(stderr, "nbd_randio: page %" PRIu64 " of the export differs from "
                            "page %" PRIu64 " of %s\n", r->page, (r->page + shift) % n, file);
            }
            r->cookie = 0;
            done++;
        }
    }
    double t1 = now();
    if (writing && nbd_flush(h, 0) == -1)
        die_nbd("flush");
    nbd_shutdown(h, 0);
    nbd_close(h);
    if (bad) {
        fprintf(stderr, "nbd_randio: FAIL: %" PRIu64 " of %" PRIu64 " pages differ\n", bad, n);
        return 1;
    }
    printf("%s pages=%" PRIu64 " secs=%.3f iops=%.0f MBps=%.0f\n", mode, n, t1 - t0,
           (double)n / (t1 - t0), (double)n * PAGE / (t1 - t0) / 1e6);
    return 0;
}
