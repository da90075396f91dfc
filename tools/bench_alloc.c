/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench_alloc.c - `uzram bench-alloc`: is alloc/free O(1)?
 *
 *   uzram bench-alloc [--allocator A[,B..]] [--min-objects N] [--max-objects N]
 *                     [--ops N] PAGEFILE
 *
 * Object sizes are drawn from real compressed-page sizes: every page of
 * PAGEFILE (raw 4 KiB pages, .zst unpacked) is compressed with lz4 and its
 * size kept (pages at or over the allocator's huge threshold count as 4096,
 * same-filled pages are skipped, as the store does).  Without a file, pages
 * of the process's own memory are not used: a file is required.
 *
 * For each allocator and each population 10^4, 10^5, ... up to
 * --max-objects (default 10^7): fill the allocator with that many live
 * objects, then time --ops (default 200000) steady-state operations, each
 * one free of a random live object followed by one alloc of a new random
 * size.  Every object carries a tag written at alloc and checked at free,
 * so a corrupted object fails the run.  A population whose memory would
 * not fit in MemAvailable is skipped, and the output says so.
 *
 * Each population also times a control loop that makes the same object
 * touches (check a random object's tag, write a new one) with no free and
 * alloc: memory latency grows with the working set whatever the allocator
 * does, so "allocator_ns" = ns per pair minus ns per touch is the
 * allocator's own cost.  If alloc and free are O(1), allocator_ns stays
 * flat as the population grows a thousandfold -- as far as memory latency
 * lets it: at a million objects the allocator's own metadata no longer
 * fits in cache either.  For a count that no cache can blur, run one
 * population under callgrind and count the instructions of alloc and free:
 *
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=zs_alloc \
 *            --toggle-collect=zs_free uzram bench-alloc --allocator zsmalloc \
 *            --min-objects N --max-objects N PAGEFILE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <lz4.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "cli.h"
#include "pagefile.h"

#define PAGE 4096u

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* Compressed sizes (lz4) of the file's pages that are not same-filled. */
static int load_sizes(const char *name, uint32_t **out, size_t *n)
{
    uint8_t *data;
    uint64_t pages;
    char msg[512];
    if (pagefile_load(name, 0, &data, &pages, msg, sizeof msg) < 0) {
        fprintf(stderr, "uzram bench-alloc: %s\n", msg);
        return -1;
    }
    uint32_t *sizes = malloc((pages ? pages : 1) * sizeof *sizes);
    char cbuf[LZ4_COMPRESSBOUND(PAGE)];
    size_t count = 0;
    for (uint64_t p = 0; sizes && p < pages; p++) {
        const uint8_t *page = data + p * PAGE;
        uint64_t w0, w;
        memcpy(&w0, page, 8);
        bool same = true;
        for (size_t i = 8; i < PAGE && same; i += 8) {
            memcpy(&w, page + i, 8);
            same = w == w0;
        }
        if (same)
            continue;
        int c = LZ4_compress_default((const char *)page, cbuf, PAGE, (int)sizeof cbuf);
        sizes[count++] = c > 0 && c < (int)PAGE ? (uint32_t)c : PAGE;
    }
    free(data);
    if (!sizes || count == 0) {
        fprintf(stderr, "uzram bench-alloc: %s: %s\n", name, sizes ? "no pages" : "out of memory");
        free(sizes);
        return -1;
    }
    *out = sizes;
    *n = count;
    return 0;
}

struct live {
    uint64_t h;
    uint32_t size;
    uint32_t tag;
};

static void put_tag(const struct uz_alloc_ops *ops, struct uz_allocator *a, struct live *o)
{
    uint8_t *p = ops->map(a, o->h);
    memcpy(p, &o->tag, o->size < 4 ? o->size : 4);
    p[o->size - 1] = (uint8_t)o->tag;
}

static bool tag_ok(const struct uz_alloc_ops *ops, struct uz_allocator *a, const struct live *o)
{
    const uint8_t *p = ops->map(a, o->h);
    uint32_t t = 0;
    memcpy(&t, p, o->size < 4 ? o->size : 4);
    uint32_t want = o->size < 4 ? o->tag & ((1u << (8 * o->size)) - 1) : o->tag;
    return t == want && p[o->size - 1] == (uint8_t)o->tag;
}

static int run(const struct uz_alloc_ops *ops, const uint32_t *sizes, size_t nsizes,
               uint64_t nobj, uint64_t nops, double avg)
{
    uint64_t need = (uint64_t)((double)nobj * avg * 1.3) + nobj * sizeof(struct live);
    uint64_t avail = mem_available();
    if (need > avail * 8 / 10) {
        printf("%-9s %10llu  skipped: needs about %.1f GiB, %.1f GiB available\n", ops->name,
               (unsigned long long)nobj, (double)need / (1 << 30), (double)avail / (1 << 30));
        return 0;
    }
    struct uz_alloc_params p = {.max_bytes = (uint64_t)((double)nobj * avg * 1.5) + (64u << 20)};
    struct uz_allocator *a = ops->create(&p);
    if (!a) {
        fprintf(stderr, "uzram bench-alloc: cannot create %s\n", ops->name);
        return -1;
    }
    struct live *objs = malloc(nobj * sizeof *objs);
    uint32_t tag = 1;
    double t0 = now_s();
    for (uint64_t i = 0; i < nobj; i++) {
        objs[i].size = sizes[rnd() % nsizes];
        objs[i].tag = tag++;
        if (ops->alloc(a, objs[i].size, (uint32_t)i, &objs[i].h) < 0) {
            fprintf(stderr, "uzram bench-alloc: %s: alloc failed at %llu objects\n", ops->name,
                    (unsigned long long)i);
            return -1;
        }
        put_tag(ops, a, &objs[i]);
    }
    double t1 = now_s();
    uint64_t bad = 0;
    double t2 = now_s();
    for (uint64_t k = 0; k < nops; k++) {
        uint64_t i = rnd() % nobj;
        if (!tag_ok(ops, a, &objs[i]))
            bad++;
        ops->free(a, objs[i].h);
        objs[i].size = sizes[rnd() % nsizes];
        objs[i].tag = tag++;
        if (ops->alloc(a, objs[i].size, (uint32_t)i, &objs[i].h) < 0) {
            fprintf(stderr, "uzram bench-alloc: %s: alloc failed in steady state\n", ops->name);
            return -1;
        }
        put_tag(ops, a, &objs[i]);
    }
    double t3 = now_s();
    /* The control: the same random object touches (check the tag, write a
     * new one) without the free and alloc, so memory latency -- which
     * grows with the working set whatever the allocator -- can be told
     * apart from the allocator's own work. */
    uint64_t rng_saved = rng;
    double t4 = now_s();
    for (uint64_t k = 0; k < nops; k++) {
        uint64_t i = rnd() % nobj;
        if (!tag_ok(ops, a, &objs[i]))
            bad++;
        rnd();
        objs[i].tag = tag++;
        put_tag(ops, a, &objs[i]);
    }
    double t5 = now_s();
    rng = rng_saved;
    for (uint64_t i = 0; i < nobj; i++) {
        if (!tag_ok(ops, a, &objs[i]))
            bad++;
        ops->free(a, objs[i].h);
    }
    struct uz_alloc_stats st;
    ops->stats(a, &st);
    double per = (t3 - t2) / (double)nops * 1e9, touch = (t5 - t4) / (double)nops * 1e9;
    printf("%-9s %10llu %12.0f %14.0f %12.0f %14.0f %9s\n", ops->name, (unsigned long long)nobj,
           (t1 - t0) / (double)nobj * 1e9, per, touch, per - touch,
           bad == 0 && st.objects == 0 ? "yes" : "NO");
    fflush(stdout);
    ops->destroy(a);
    free(objs);
    return bad ? -1 : 0;
}

int cmd_bench_alloc(int argc, char **argv)
{
    char list[256] = "";
    uint64_t max_obj = 10000000, min_obj = 10000, nops = 200000;
    static const struct option lo[] = {{"allocator", required_argument, 0, 'A'},
                                       {"max-objects", required_argument, 0, 'm'},
                                       {"min-objects", required_argument, 0, 'n'},
                                       {"ops", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'A': snprintf(list, sizeof list, "%s", optarg); break;
        case 'm': max_obj = strtoull(optarg, NULL, 0); break;
        case 'n': min_obj = strtoull(optarg, NULL, 0); break;
        case 'o': nops = strtoull(optarg, NULL, 0); break;
        case 'h':
            printf("usage: uzram bench-alloc [--allocator A[,B]] [--max-objects N] [--min-objects N]\n"
                   "                         [--ops N] PAGEFILE\n");
            return 0;
        default:
            fprintf(stderr, "usage: uzram bench-alloc [--allocator A[,B]] [--max-objects N] [--min-objects N] [--ops N] PAGEFILE\n");
            return 2;
        }
    }
    if (optind != argc - 1 || max_obj < 10000 || nops == 0) {
        fprintf(stderr, "usage: uzram bench-alloc [--allocator A[,B]] [--max-objects N] [--min-objects N] [--ops N] PAGEFILE\n");
        return 2;
    }
    uint32_t *sizes;
    size_t nsizes;
    if (load_sizes(argv[optind], &sizes, &nsizes) < 0)
        return 1;
    double avg = 0;
    for (size_t i = 0; i < nsizes; i++)
        avg += sizes[i];
    avg /= (double)nsizes;
    printf("object sizes: %zu lz4-compressed pages of %s, mean %.0f bytes\n", nsizes, argv[optind], avg);
    printf("%-9s %10s %12s %14s %12s %14s %9s\n", "allocator", "live_objs", "fill_ns/obj",
           "ns/(free+alloc)", "ns/touch", "allocator_ns", "verified");
    int status = 0;
    const struct uz_alloc_ops *ops;
    for (unsigned i = 0; (ops = uz_alloc_at(i)) != NULL; i++) {
        if (list[0]) {
            char tmp[256], *save = NULL;
            bool want = false;
            snprintf(tmp, sizeof tmp, "%s", list);
            for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
                want |= !strcmp(t, ops->name);
            if (!want)
                continue;
        }
        for (uint64_t n = 10000; n <= max_obj; n *= 10)
            if (n >= min_obj)
                if (run(ops, sizes, nsizes, n, nops, avg) < 0)
                    status = 1;
    }
    free(sizes);
    return status;
}
