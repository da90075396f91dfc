/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench.c - `uzram bench`: the benchmark every figure comes from.
 *
 * For each page file (raw 4 KiB pages; a name ending in .zst is unpacked
 * with libzstd first) and each allocator asked for:
 *
 *   fill   a fresh device the size of the file; page i goes to slot i, the
 *          slots dealt to the threads in 1024-page chunks, round-robin; then
 *          every page is read back and compared with the file.
 *   churn  (--churn R) R rounds of: overwrite a random half of the slots with
 *          randomly chosen pages of the file, then discard a random fifth
 *          (seeded xorshift, so the same seed gives the same run); then
 *          every slot is checked against what it should hold now.
 *
 * Any difference fails the run (exit 1).  Speeds are orig bytes over wall
 * seconds (10^6 bytes per MB); the fill's JSON rows also give them over
 * the I/O threads' own CPU seconds (write_cpu_mb_s, read_cpu_mb_s), which
 * other work on the machine moves much less; kernel zram's rows too (its
 * writer's CPU seconds, in which zram compresses).  footprint is everything the device holds
 * (uzram_get_stats); rss_delta is the process's resident set minus what it
 * was before the device was made: the honest cross-check.
 *
 * --kernel-zram runs the same file through a kernel zram device the way
 * DESIGN.md does with dd (1 MiB O_DIRECT writes then reads), verifies the
 * read-back too, and reads its mm_stat.  The device is a new one from
 * /sys/class/zram-control/hot_add (removed after), or zram0 only if it is
 * not initialised (in use by nobody); otherwise kernel zram is skipped.
 * A kernel device is reset only by the run that initialised it (its
 * disksize write succeeded, which the kernel refuses on an initialised
 * device): one that holds data is never touched.
 *
 * --plot FILE.svg (with --churn) records the memory held after the fill
 * and after every churn round, for uzram and kernel zram, and draws it
 * with the fill speeds through gnuplot (plot.c).
 * --kernel-device zramN (implies --kernel-zram) uses that device instead;
 * it must exist and not be initialised (initstate 0, disksize 0), else
 * bench refuses it before anything runs (exit 1): resetting it would
 * destroy whatever it holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dupscan.h"
#include "pagefile.h"
#include "plot.h"
#include "uzram.h"

#define PAGE 4096u

struct opts {
    const char *algorithm;
    int level;
    char allocators[256];
    int threads;
    int churn;
    uint64_t seed;
    bool kernel;
    bool json;
    uint32_t group;           /* --group-pages: 1 = off */
    const char *dedup;        /* --dedup: NULL = the library's default (auto) */
    const char *plot;         /* --plot FILE.svg */
    uint32_t compact_bound;   /* --compact-bound: 0 = the device's default */
    bool settle;              /* --settle: settle after the fill, report it */
    const char *params[4];    /* --algorithm-params: written before disksize */
    const char *settle_rc;    /* --settle-with: what --settle writes to recompress */
    int nparams;
};

struct pagefile {
    const char *name;
    uint8_t *data;
    uint64_t pages;
};

struct result {
    const char *phase;
    const char *allocator;
    uint64_t pages;
    struct uzram_stats st;
    uint64_t rss_delta;
    uint64_t footprint_max;
    double max_ratio;         /* peak of footprint / compr during the phase */
    double write_mb_s, read_mb_s;
    double write_cpu_mb_s, read_cpu_mb_s; /* fill: per second of the I/O threads' own CPU time */
    bool verified;
    bool kernel;
    uint64_t kernel_mem_after_compact;  /* kernel churn: mem_used after writing compact */
    double settle_s;                    /* settled: seconds the settling took */
    double cold_read_us;                /* settled: median 4 KiB random read */
    double cold_read_p99_us;
    double hot_read_us, hot_read_p99_us; /* the same reads before settling */
    /* --plot: footprint and compr after the fill [0] and each churn round */
    uint64_t *trace_fp, *trace_compr;
    int trace_rounds;
};

/* Record round r's memory into the churn result's trace (--plot). */
static void trace_at(struct result *r, int round, uint64_t footprint, uint64_t compr)
{
    if (!r->trace_fp)
        return;
    r->trace_fp[round] = footprint;
    r->trace_compr[round] = compr;
    r->trace_rounds = round;
}

static void trace_alloc(const struct opts *o, struct result *r)
{
    if (!o->plot || o->churn <= 0)
        return;
    r->trace_fp = calloc((size_t)o->churn + 1, sizeof *r->trace_fp);
    r->trace_compr = calloc((size_t)o->churn + 1, sizeof *r->trace_compr);
    if (!r->trace_fp || !r->trace_compr) {
        free(r->trace_fp);
        free(r->trace_compr);
        r->trace_fp = r->trace_compr = NULL;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds the calling thread has run: what an I/O thread cost,
 * whatever else the machine was doing. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------ loading */

static int load(const char *name, struct pagefile *pf)
{
    char msg[512];
    if (pagefile_load(name, 0, &pf->data, &pf->pages, msg, sizeof msg) < 0) {
        fprintf(stderr, "uzram bench: %s\n", msg);
        return -1;
    }
    pf->name = name;
    return 0;
}

/* --------------------------------------------------------- the device */

struct job {
    struct uzram *dev;
    const struct pagefile *pf;
    const int64_t *expect;    /* per slot: page of the file, or -1 = zeros */
    uint64_t lo, hi, stride;  /* slots: chunks from lo, stride apart, below hi */
    const uint32_t *plan;     /* churn: list of slots to write */
    const uint32_t *plan_src;
    uint64_t plan_lo, plan_hi;
    int err;
    uint64_t bad;
    double max_ratio;         /* churn: highest footprint / compr seen */
    uint64_t max_foot;
    uint32_t group;           /* pages per write/read call in fill/verify */
    double cpu_s;             /* fill, verify: this thread's CPU seconds */
};

/* Sample the footprint during the churn (every SAMPLE_EVERY operations of
 * each thread), so footprint_max is the peak, not a per-round reading. */
#define SAMPLE_EVERY 256

static void sample(struct job *j)
{
    struct uzram_stats st;
    uzram_get_stats(j->dev, &st);
    if (st.footprint > j->max_foot)
        j->max_foot = st.footprint;
    /* the ratio only means something once there is data to speak of */
    if (st.compr_data_size > (1u << 20)) {
        double r = (double)st.footprint / (double)st.compr_data_size;
        if (r > j->max_ratio)
            j->max_ratio = r;
    }
}

/* Threads take the slots in chunks of CHUNK pages, dealt round-robin
 * (thread t: chunks t, t+T, ...), so each gets a fair share of easy and
 * hard pages wherever they sit in the file.  CHUNK is a multiple of every
 * group size. */
#define CHUNK 1024u

static void *fill_thread(void *arg)
{
    struct job *j = arg;
    double c0 = thread_cpu_s();
    uint64_t k = j->group > 1 ? j->group : 1;
    for (uint64_t c = j->lo; c < j->hi && !j->err; c += j->stride) {
        uint64_t end = c + CHUNK < j->hi ? c + CHUNK : j->hi;
        for (uint64_t i = c; i < end && !j->err;) {
            /* whole aligned groups in one call, so that they form */
            uint64_t n = (i % k == 0 && i + k <= end) ? k : 1;
            j->err = uzram_write(j->dev, j->pf->data + i * PAGE, n * PAGE, i * PAGE);
            i += n;
        }
    }
    j->cpu_s = thread_cpu_s() - c0;
    return NULL;
}

static const uint8_t zero_page[PAGE];

static void *verify_thread(void *arg)
{
    struct job *j = arg;
    double c0 = thread_cpu_s();
    static _Thread_local uint8_t buf[8 * PAGE];
    uint64_t k = j->group > 1 ? j->group : 1;
    for (uint64_t c = j->lo; c < j->hi; c += j->stride) {
        uint64_t end = c + CHUNK < j->hi ? c + CHUNK : j->hi;
        for (uint64_t i = c; i < end;) {
            uint64_t n = (i % k == 0 && i + k <= end) ? k : 1;
            int rc = uzram_read(j->dev, buf, n * PAGE, i * PAGE);
            for (uint64_t p = 0; p < n; p++, i++) {
                const uint8_t *want =
                    j->expect[i] < 0 ? zero_page : j->pf->data + (uint64_t)j->expect[i] * PAGE;
                if (rc < 0 || memcmp(buf + p * PAGE, want, PAGE) != 0)
                    j->bad++;
            }
        }
    }
    j->cpu_s = thread_cpu_s() - c0;
    return NULL;
}

static void *plan_thread(void *arg)
{
    struct job *j = arg;
    for (uint64_t k = j->plan_lo; k < j->plan_hi && !j->err; k++) {
        uint64_t slot = j->plan[k];
        if ((k - j->plan_lo) % SAMPLE_EVERY == 0)
            sample(j);
        if (j->plan_src[k] == UINT32_MAX)
            j->err = uzram_discard(j->dev, PAGE, slot * PAGE);
        else
            j->err = uzram_write(j->dev, j->pf->data + (uint64_t)j->plan_src[k] * PAGE, PAGE,
                                 slot * PAGE);
    }
    return NULL;
}

/* Run fn over [0, n) split into contiguous ranges, one per thread.
 * Returns the first error, adds mismatches to *bad. */
/* The CPU seconds of the last run_threads' threads, summed (fill and
 * verify threads count theirs). */
static double last_cpu_s;

static int run_threads(int nthreads, struct job *proto, void *(*fn)(void *), uint64_t n,
                       bool by_plan, uint64_t *bad, struct result *peak)
{
    last_cpu_s = 0;
    pthread_t th[64];
    struct job jobs[64];
    int err = 0;
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = *proto;
        uint64_t lo = n * (uint64_t)t / (uint64_t)nthreads, hi = n * (uint64_t)(t + 1) / (uint64_t)nthreads;
        if (by_plan) {
            jobs[t].plan_lo = lo;
            jobs[t].plan_hi = hi;
        } else {
            jobs[t].lo = (uint64_t)t * CHUNK;
            jobs[t].hi = n;
            jobs[t].stride = (uint64_t)nthreads * CHUNK;
        }
        if (nthreads == 1)
            fn(&jobs[t]);
        else
            pthread_create(&th[t], NULL, fn, &jobs[t]);
    }
    for (int t = 0; t < nthreads; t++) {
        if (nthreads > 1)
            pthread_join(th[t], NULL);
        last_cpu_s += jobs[t].cpu_s;
        if (jobs[t].err && !err)
            err = jobs[t].err;
        if (bad)
            *bad += jobs[t].bad;
        if (peak) {
            if (jobs[t].max_foot > peak->footprint_max)
                peak->footprint_max = jobs[t].max_foot;
            if (jobs[t].max_ratio > peak->max_ratio)
                peak->max_ratio = jobs[t].max_ratio;
        }
    }
    return err;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* One churn round's writes: a random half of the n slots (perm[0..n/2))
 * get randomly chosen pages of the file (src[]); expect[] follows.  The
 * same seed gives the same plan for uzram and for kernel zram. */
static uint64_t plan_writes(uint64_t *seed, uint64_t n, uint32_t *perm, uint32_t *src,
                            int64_t *expect)
{
    for (uint64_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t k = xorshift(seed) % (i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[k];
        perm[k] = t;
    }
    uint64_t half = n / 2;
    for (uint64_t i = 0; i < half; i++) {
        src[i] = (uint32_t)(xorshift(seed) % n);
        expect[perm[i]] = src[i];
    }
    return half;
}

/* Then a random fifth discarded (perm[0..n/5), src[] = UINT32_MAX).  A slot
 * may repeat in the list; discarding twice, even from two threads at once,
 * leaves it empty all the same. */
static void plan_discards(uint64_t *seed, uint64_t n, uint32_t *perm, uint32_t *src,
                          int64_t *expect)
{
    for (uint64_t i = 0; i < n / 5; i++) {
        perm[i] = (uint32_t)(xorshift(seed) % n);
        src[i] = UINT32_MAX;
        expect[perm[i]] = -1;
    }
}

static void progress(const char *what, int done, int total)
{
    if (!isatty(STDOUT_FILENO))
        return;
    int w = 30, filled = total ? done * w / total : w;
    fprintf(stderr, "\r  %-24s [%.*s%*s] %d/%d", what, filled, "##############################",
            w - filled, "", done, total);
    if (done == total)
        fprintf(stderr, "\r%*s\r", 70, "");
}

static void stats_into(struct uzram *dev, struct result *r, uint64_t rss0)
{
    uzram_get_stats(dev, &r->st);
    uint64_t rss = rss_bytes();
    r->rss_delta = rss > rss0 ? rss - rss0 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --settle: settle every page now (recompress settle, what the default
 * policy does to idle pages by itself), compact, read every page back and
 * check it, and time 4 KiB reads at random offsets of the settled data
 * (each checked too).  0, or -1 with a message. */
/* Time NREAD 4 KiB reads at random pages (the same pages each call),
 * each checked against the page file: the median and p99 in us, and the
 * pages that differed. */
enum { NREAD = 4096 };
static uint64_t random_reads(struct uzram *dev, const struct pagefile *pf, const int64_t *expect,
                             double *median, double *p99)
{
    static double lat[NREAD];
    static uint8_t buf[PAGE];
    uint64_t x = 0x2545f4914f6cdd1dull, bad = 0;
    for (int i = 0; i < NREAD; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t p = x % pf->pages;
        double t = now_s();
        int rc = uzram_read(dev, buf, PAGE, p * PAGE);
        lat[i] = (now_s() - t) * 1e6;
        const uint8_t *want = expect[p] < 0 ? zero_page : pf->data + (uint64_t)expect[p] * PAGE;
        if (rc < 0 || memcmp(buf, want, PAGE) != 0)
            bad++;
    }
    qsort(lat, NREAD, sizeof lat[0], cmp_double);
    *median = lat[NREAD / 2];
    *p99 = lat[NREAD * 99 / 100];
    return bad;
}

/* --settle: settle every page now (recompress settle, what the default
 * policy does to idle pages by itself), compact, read every page back and
 * check it, and time 4 KiB reads at random pages before and after (each
 * checked too).  0, or -1 with a message. */
static int settle_device(struct uzram *dev, const struct pagefile *pf, const int64_t *expect,
                         struct job *proto, int threads, uint64_t rss0, struct result *r,
                         const char *rc)
{
    uint64_t bad = random_reads(dev, pf, expect, &r->hot_read_us, &r->hot_read_p99_us);
    double a = now_s();
    /* another recompression than settle (--settle-with): of every page,
     * marked idle first, as zram users run it */
    if (rc && uzram_attr_store(dev, "idle", "all", 3) < 0) {
        fprintf(stderr, "uzram bench: %s: idle: %s\n", pf->name, uzram_last_error());
        return -1;
    }
    if (!rc)
        rc = "settle";
    if (uzram_attr_store(dev, "recompress", rc, strlen(rc)) < 0) {
        fprintf(stderr, "uzram bench: %s: settle: %s\n", pf->name, uzram_last_error());
        return -1;
    }
    uzram_compact(dev);
    r->settle_s = now_s() - a;
    r->phase = "settled";
    r->pages = pf->pages;
    stats_into(dev, r, rss0);
    a = now_s();
    run_threads(threads, proto, verify_thread, pf->pages, false, &bad, NULL);
    double b = now_s();
    r->read_mb_s = (double)(pf->pages * PAGE) / (b - a) / 1e6;
    bad += random_reads(dev, pf, expect, &r->cold_read_us, &r->cold_read_p99_us);
    r->verified = bad == 0;
    if (bad) {
        fprintf(stderr, "uzram bench: %s: %llu pages differ after settling\n", pf->name,
                (unsigned long long)bad);
        return -1;
    }
    return 0;
}

static int bench_device(const struct opts *o, const struct pagefile *pf, const char *allocator,
                        struct result *fill, struct result *churn, struct result *settled)
{
    int ret = 0;
    int64_t *expect = malloc(pf->pages * sizeof *expect);
    for (uint64_t i = 0; i < pf->pages; i++)
        expect[i] = (int64_t)i;

    uint64_t rss0 = rss_bytes();
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = pf->pages * PAGE;
    cfg.algorithm = o->algorithm;
    cfg.level = o->level;
    cfg.allocator = allocator;
    cfg.group_pages = o->group;
    cfg.dedup = o->dedup;
    cfg.compact_bound = o->compact_bound;
    struct uzram *dev = NULL;
    if (o->nparams)
        cfg.disksize = 0;   /* sized after the params, as a zram set-up script does */
    int err = uzram_create(&cfg, &dev);
    for (int i = 0; err == 0 && i < o->nparams; i++)
        err = uzram_attr_store(dev, "algorithm_params", o->params[i], strlen(o->params[i]));
    if (err == 0 && o->nparams) {
        char sz[32];
        snprintf(sz, sizeof sz, "%llu", (unsigned long long)(pf->pages * PAGE));
        err = uzram_attr_store(dev, "disksize", sz, strlen(sz));
    }
    if (err < 0) {
        fprintf(stderr, "uzram bench: %s\n", uzram_last_error());
        if (o->nparams && dev)
            uzram_destroy(dev);
        free(expect);
        return -1;
    }
    /* auto: whole aligned groups of 8 pages per call, which auto groups */
    struct job proto = {.dev = dev, .pf = pf, .expect = expect,
                        .group = o->group == UZRAM_GROUP_AUTO ? 8 : o->group};
    progress("fill: writing", 0, 2);
    double t0 = now_s();
    err = run_threads(o->threads, &proto, fill_thread, pf->pages, false, NULL, NULL);
    double t1 = now_s(), fill_cpu = last_cpu_s;
    if (err < 0) {
        fprintf(stderr, "uzram bench: %s: write failed: %s\n", pf->name, uzram_last_error());
        ret = -1;
        goto out;
    }
    fill->phase = "fill";
    fill->allocator = allocator;
    fill->pages = pf->pages;
    stats_into(dev, fill, rss0);
    fill->footprint_max = fill->st.footprint;
    progress("fill: reading back", 1, 2);
    uint64_t bad = 0;
    double t2 = now_s();
    run_threads(o->threads, &proto, verify_thread, pf->pages, false, &bad, NULL);
    double t3 = now_s();
    progress("fill: reading back", 2, 2);
    fill->write_mb_s = (double)(pf->pages * PAGE) / (t1 - t0) / 1e6;
    fill->read_mb_s = (double)(pf->pages * PAGE) / (t3 - t2) / 1e6;
    fill->write_cpu_mb_s = fill_cpu > 0 ? (double)(pf->pages * PAGE) / fill_cpu / 1e6 : 0;
    fill->read_cpu_mb_s = last_cpu_s > 0 ? (double)(pf->pages * PAGE) / last_cpu_s / 1e6 : 0;
    fill->verified = bad == 0;
    if (bad) {
        fprintf(stderr, "uzram bench: %s: %llu pages differ after the fill\n", pf->name,
                (unsigned long long)bad);
        ret = -1;
        goto out;
    }
    if (o->settle) {
        settled->allocator = allocator;
        progress("settling", 0, 1);
        if (settle_device(dev, pf, expect, &proto, o->threads, rss0, settled, o->settle_rc) < 0) {
            ret = -1;
            goto out;
        }
        progress("settling", 1, 1);
    }

    if (o->churn > 0) {
        uint64_t seed = o->seed ? o->seed : 0x9e3779b97f4a7c15ull;
        uint64_t n = pf->pages;
        uint32_t *perm = malloc(n * sizeof *perm);
        uint32_t *src = malloc(n * sizeof *src);
        double wsec = 0;
        uint64_t wbytes = 0;
        churn->footprint_max = fill->st.footprint;
        trace_alloc(o, churn);
        trace_at(churn, 0, fill->st.footprint, fill->st.compr_data_size);
        for (int round = 0; round < o->churn && ret == 0; round++) {
            progress("churn", round, o->churn);
            uint64_t half = plan_writes(&seed, n, perm, src, expect), fifth = n / 5;
            proto.plan = perm;
            proto.plan_src = src;
            double a = now_s();
            err = run_threads(o->threads, &proto, plan_thread, half, true, NULL, churn);
            wsec += now_s() - a;
            wbytes += half * PAGE;
            plan_discards(&seed, n, perm, src, expect);
            err = err ? err : run_threads(o->threads, &proto, plan_thread, fifth, true, NULL, churn);
            if (err < 0) {
                fprintf(stderr, "uzram bench: %s: churn failed: %s\n", pf->name, uzram_last_error());
                ret = -1;
            }
            if (churn->trace_fp) {
                struct uzram_stats st;
                uzram_get_stats(dev, &st);
                trace_at(churn, round + 1, st.footprint, st.compr_data_size);
            }
        }
        progress("churn", o->churn, o->churn);
        free(perm);
        free(src);
        if (ret == 0) {
            churn->phase = "churn";
            churn->allocator = allocator;
            churn->pages = n;
            stats_into(dev, churn, rss0);
            if (churn->st.footprint > churn->footprint_max)
                churn->footprint_max = churn->st.footprint;
            bad = 0;
            double a = now_s();
            run_threads(o->threads, &proto, verify_thread, n, false, &bad, NULL);
            double b = now_s();
            churn->write_mb_s = (double)wbytes / wsec / 1e6;
            churn->read_mb_s = (double)(n * PAGE) / (b - a) / 1e6;
            churn->verified = bad == 0;
            if (bad) {
                fprintf(stderr, "uzram bench: %s: %llu pages differ after the churn\n", pf->name,
                        (unsigned long long)bad);
                ret = -1;
            }
        }
    }
out:
    uzram_destroy(dev);
    free(expect);
    return ret;
}

/* ------------------------------------------------------- kernel zram */

static char kdev[32] = "zram0";   /* the kernel zram device in use */
static bool kdev_given;           /* --kernel-device: use kdev as it is */
static bool kdev_ours;            /* this run initialised kdev: it may reset it */

static int sysfs_write(const char *attr, const char *val)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/block/%s/%s", kdev, attr);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int e = n < 0 ? -errno : 0;
    close(fd);
    return e;
}

static int sysfs_read(const char *attr, char *buf, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/block/%s/%s", kdev, attr);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    return 0;
}

static void kernel_mm_stat(struct result *r)
{
    char buf[512];
    if (sysfs_read("mm_stat", buf, sizeof buf) == 0) {
        unsigned long long v[9] = {0};
        sscanf(buf, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7], &v[8]);
        r->st.orig_data_size = v[0];
        r->st.compr_data_size = v[1];
        r->st.mem_used_total = v[2];
        r->st.footprint = v[2];   /* kernel: allocator pages only */
        r->st.same_pages = v[5];
        r->st.huge_pages = v[7];
    }
}

/* The churn of bench_device on /dev/zram0: the same seeded plan, writes
 * with pwrite (O_DIRECT), discards with BLKDISCARD; then every page is
 * verified, mm_stat read, compact written, mm_stat read again. */
static int kernel_churn(const struct opts *o, const struct pagefile *pf, int fd, uint8_t *io,
                        struct result *r)
{
    uint64_t seed = o->seed ? o->seed : 0x9e3779b97f4a7c15ull;
    uint64_t n = pf->pages;
    int64_t *expect = malloc(n * sizeof *expect);
    uint32_t *perm = malloc(n * sizeof *perm), *src = malloc(n * sizeof *src);
    for (uint64_t i = 0; i < n; i++)
        expect[i] = (int64_t)i;
    int ret = 0;
    double wsec = 0;
    uint64_t wbytes = 0;
    trace_alloc(o, r);
    if (r->trace_fp) {
        struct result now = {0};
        kernel_mm_stat(&now);
        trace_at(r, 0, now.st.footprint, now.st.compr_data_size);
    }
    for (int round = 0; round < o->churn && ret == 0; round++) {
        uint64_t half = plan_writes(&seed, n, perm, src, expect);
        double a = now_s();
        for (uint64_t i = 0; i < half && ret == 0; i++) {
            memcpy(io, pf->data + (uint64_t)src[i] * PAGE, PAGE);
            if (pwrite(fd, io, PAGE, (off_t)perm[i] * PAGE) != PAGE)
                ret = -1;
        }
        wsec += now_s() - a;
        wbytes += half * PAGE;
        plan_discards(&seed, n, perm, src, expect);
        for (uint64_t i = 0; i < n / 5 && ret == 0; i++) {
            uint64_t range[2] = {(uint64_t)perm[i] * PAGE, PAGE};
            if (ioctl(fd, BLKDISCARD, range) != 0)
                ret = -1;
        }
        if (r->trace_fp) {
            struct result now = {0};
            kernel_mm_stat(&now);
            trace_at(r, round + 1, now.st.footprint, now.st.compr_data_size);
        }
    }
    uint64_t bad = 0;
    double a = now_s();
    for (uint64_t i = 0; i < n && ret == 0; i++) {
        if (pread(fd, io, PAGE, (off_t)i * PAGE) != PAGE) {
            ret = -1;
            break;
        }
        const uint8_t *want = expect[i] < 0 ? zero_page : pf->data + (uint64_t)expect[i] * PAGE;
        if (memcmp(io, want, PAGE))
            bad++;
    }
    double b = now_s();
    free(expect);
    free(perm);
    free(src);
    if (ret < 0) {
        fprintf(stderr, "uzram bench: kernel zram churn I/O failed: %s\n", strerror(errno));
        return -1;
    }
    kernel_mm_stat(r);
    r->phase = "churn";
    r->allocator = "kernel-zram";
    r->kernel = true;
    r->pages = n;
    r->write_mb_s = (double)wbytes / wsec / 1e6;
    r->read_mb_s = (double)(n * PAGE) / (b - a) / 1e6;
    r->verified = bad == 0;
    r->footprint_max = r->st.footprint;
    r->max_ratio = r->st.compr_data_size ? (double)r->st.footprint / (double)r->st.compr_data_size : 0;
    sysfs_write("compact", "1");
    struct result after = {0};
    kernel_mm_stat(&after);
    r->kernel_mem_after_compact = after.st.mem_used_total;
    return bad ? -1 : 0;
}

/* Is kdev a kernel zram device that holds nothing (initstate 0 and
 * disksize 0)?  0 if so; else -ENOENT (no such device), -EBUSY
 * (initialised) or the errno of the failed read, said on stderr when
 * loud.  Invariant: bench initialises, and so resets, only such a device. */
static int kernel_unused(bool loud)
{
    char path[64], init[32], size[32];
    snprintf(path, sizeof path, "/sys/block/%s", kdev);
    if (access(path, F_OK) != 0) {
        int e = errno;
        if (loud)
            fprintf(stderr, "uzram bench: --kernel-device %s: no such kernel zram device (%s: "
                            "%s)\n", kdev, path, strerror(e));
        return -e;
    }
    int rc = sysfs_read("initstate", init, sizeof init);
    if (rc == 0)
        rc = sysfs_read("disksize", size, sizeof size);
    if (rc < 0) {
        if (loud)
            fprintf(stderr, "uzram bench: --kernel-device %s: cannot read its initstate and "
                            "disksize: %s\n", kdev, strerror(-rc));
        return rc;
    }
    unsigned long long is = strtoull(init, NULL, 10), ds = strtoull(size, NULL, 10);
    if (is != 0 || ds != 0) {
        if (loud)
            fprintf(stderr, "uzram bench: --kernel-device %s: refused: it is initialised "
                            "(initstate %llu, disksize %llu) and may hold data, which the "
                            "benchmark's reset would destroy; give a device that is not "
                            "initialised (cat /sys/class/zram-control/hot_add makes one)\n",
                    kdev, is, ds);
        return -EBUSY;
    }
    return 0;
}

/* A kernel zram device nobody else uses, into kdev: a new one from
 * zram-control, or zram0 if it is not initialised.  *hot says whether it
 * must be hot_removed after.  false if there is none. */
static bool kernel_acquire(bool *hot)
{
    *hot = false;
    if (kdev_given)
        return kernel_unused(true) == 0;
    int fd = open("/sys/class/zram-control/hot_add", O_RDONLY);
    if (fd >= 0) {
        char num[16];
        ssize_t n = read(fd, num, sizeof num - 1);
        close(fd);
        if (n > 0) {
            num[n] = 0;
            snprintf(kdev, sizeof kdev, "zram%d", atoi(num));
            *hot = true;
            /* udev (or devtmpfs) makes the node; give it a moment */
            char node[48];
            snprintf(node, sizeof node, "/dev/%s", kdev);
            for (int i = 0; i < 100 && access(node, F_OK) != 0; i++)
                usleep(10000);
            return true;
        }
    }
    snprintf(kdev, sizeof kdev, "zram0");
    char buf[16];
    if (access("/sys/block/zram0", F_OK) != 0) {
        fprintf(stderr, "uzram bench: no kernel zram here: kernel zram skipped\n");
        return false;
    }
    if (sysfs_read("initstate", buf, sizeof buf) != 0 || atoi(buf) != 0) {
        fprintf(stderr, "uzram bench: zram0 is in use and zram-control cannot add a device: "
                        "kernel zram skipped\n");
        return false;
    }
    return true;
}

static void kernel_release(bool hot)
{
    if (kdev_ours)
        sysfs_write("reset", "1");
    kdev_ours = false;
    if (hot) {
        int fd = open("/sys/class/zram-control/hot_remove", O_WRONLY);
        if (fd >= 0) {
            const char *num = kdev + 4;
            ssize_t n = write(fd, num, strlen(num));
            (void)n;
            close(fd);
        }
    }
}

static int bench_kernel_on(const struct opts *o, const struct pagefile *pf, struct result *r,
                           struct result *kchurn);

static int bench_kernel(const struct opts *o, const struct pagefile *pf, struct result *r,
                        struct result *kchurn)
{
    bool hot;
    if (!kernel_acquire(&hot))
        return kdev_given ? -1 : 1;     /* a device asked for and refused is an error */
    int rc = bench_kernel_on(o, pf, r, kchurn);
    kernel_release(hot);
    return rc;
}

static int bench_kernel_on(const struct opts *o, const struct pagefile *pf, struct result *r,
                           struct result *kchurn)
{
    char buf[512];
    /* The kernel answers EINVAL for an algorithm it lacks, EBUSY once the
     * device is initialised (by someone else since kernel_acquire). */
    int rc = sysfs_write("comp_algorithm", o->algorithm);
    if (rc == -EINVAL) {
        fprintf(stderr, "uzram bench: kernel zram has no '%s': kernel zram skipped\n", o->algorithm);
        return kdev_given ? -1 : 1;
    }
    if (rc < 0) {
        fprintf(stderr, "uzram bench: %s: cannot set comp_algorithm to '%s': %s: kernel zram "
                        "skipped\n", kdev, o->algorithm, strerror(-rc));
        return kdev_given ? -1 : 1;
    }
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)(pf->pages * PAGE));
    rc = sysfs_write("disksize", buf);
    if (rc < 0) {
        fprintf(stderr, "uzram bench: %s: cannot set disksize to %s: %s: kernel zram skipped\n",
                kdev, buf, strerror(-rc));
        return kdev_given ? -1 : 1;
    }
    kdev_ours = true;   /* initialised by this run: kernel_release resets it */
    char node[48];
    snprintf(node, sizeof node, "/dev/%s", kdev);
    int fd = open(node, O_RDWR | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "uzram bench: %s: %s\n", node, strerror(errno));
        return 1;
    }
    size_t chunk = 1 << 20;
    uint8_t *io;
    if (posix_memalign((void **)&io, 4096, chunk)) {
        close(fd);
        return -1;
    }
    uint64_t total = pf->pages * PAGE;
    int ret = 0;
    /* zram compresses and decompresses in the thread that submits the
     * bio (its writes and reads are synchronous), so this thread's CPU
     * time holds the kernel's whole cost, as uzram's I/O threads' hold
     * uzram's: the two write_cpu_mb_s divide. */
    double c0 = thread_cpu_s();
    double t0 = now_s();
    for (uint64_t off = 0; off < total; off += chunk) {
        size_t n = total - off < chunk ? total - off : chunk;
        memcpy(io, pf->data + off, n);   /* dd copies into its buffer too */
        if (pwrite(fd, io, n, (off_t)off) != (ssize_t)n) {
            ret = -1;
            break;
        }
    }
    double t1 = now_s();
    double c1 = thread_cpu_s();
    uint64_t bad = 0;
    for (uint64_t off = 0; off < total && ret == 0; off += chunk) {
        size_t n = total - off < chunk ? total - off : chunk;
        if (pread(fd, io, n, (off_t)off) != (ssize_t)n) {
            ret = -1;
            break;
        }
        if (memcmp(io, pf->data + off, n))
            bad++;
    }
    double t2 = now_s();
    double c2 = thread_cpu_s();
    memset(r, 0, sizeof *r);
    if (ret == 0)
        kernel_mm_stat(r);
    if (ret == 0 && bad == 0 && o->churn > 0 && kernel_churn(o, pf, fd, io, kchurn) < 0)
        ret = -2;
    close(fd);
    free(io);
    if (ret == -2) {
        fprintf(stderr, "uzram bench: kernel zram churn failed verification\n");
        return -1;
    }
    if (ret < 0) {
        fprintf(stderr, "uzram bench: kernel zram I/O failed\n");
        return -1;
    }
    r->phase = "fill";
    r->allocator = "kernel-zram";
    r->kernel = true;
    r->pages = pf->pages;
    r->write_mb_s = (double)total / (t1 - t0) / 1e6;
    r->read_mb_s = (double)total / (t2 - t1) / 1e6;
    r->write_cpu_mb_s = c1 > c0 ? (double)total / (c1 - c0) / 1e6 : 0;
    r->read_cpu_mb_s = c2 > c1 ? (double)total / (c2 - c1) / 1e6 : 0;
    r->verified = bad == 0;
    r->footprint_max = r->st.footprint;
    if (bad) {
        fprintf(stderr, "uzram bench: kernel zram read back %llu wrong MiB\n", (unsigned long long)bad);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- output */

/* The current file's duplicates (dupscan.c), for its JSON rows. */
static struct dupscan_file dupscan;
static bool have_dupscan;

static void print_json(const struct opts *o, const struct pagefile *pf, const struct result *r)
{
    printf("{\"file\":\"%s\",\"phase\":\"%s\",\"algorithm\":\"%s\",\"level\":%d,\"allocator\":\"%s\","
           "\"threads\":%d,\"pages\":%llu,\"orig_bytes\":%llu,\"compr_bytes\":%llu,"
           "\"mem_used_bytes\":%llu,\"footprint_bytes\":%llu,\"rss_delta_bytes\":%llu,"
           "\"same_pages\":%llu,\"huge_pages\":%llu,\"write_mb_s\":%.1f,\"read_mb_s\":%.1f,"
           "\"verified\":%s",
           pf->name, r->phase, o->algorithm, o->level, r->allocator, r->kernel ? 1 : o->threads,
           (unsigned long long)r->pages, (unsigned long long)r->st.orig_data_size,
           (unsigned long long)r->st.compr_data_size, (unsigned long long)r->st.mem_used_total,
           (unsigned long long)r->st.footprint, (unsigned long long)r->rss_delta,
           (unsigned long long)r->st.same_pages, (unsigned long long)r->st.huge_pages,
           r->write_mb_s, r->read_mb_s, r->verified ? "true" : "false");
    if (r->write_cpu_mb_s > 0)
        printf(",\"write_cpu_mb_s\":%.1f,\"read_cpu_mb_s\":%.1f", r->write_cpu_mb_s,
               r->read_cpu_mb_s);
    if (!r->kernel)
        printf(",\"dedup_pages\":%llu,\"dedup_saved_bytes\":%llu,\"meta_bytes\":%llu",
               (unsigned long long)r->st.dedup_pages, (unsigned long long)r->st.dedup_saved_bytes,
               (unsigned long long)r->st.meta_bytes);
    if (!r->kernel && have_dupscan)   /* the file's: what storing repeats once could save */
        printf(",\"dup_pages\":%llu,\"lz4_bytes\":%llu,\"dedup_ideal_bytes\":%llu",
               (unsigned long long)dupscan.dup_pages, (unsigned long long)dupscan.lz4_bytes,
               (unsigned long long)dupscan.ideal_bytes);
    if (!strcmp(r->phase, "churn"))
        printf(",\"footprint_max_bytes\":%llu,\"footprint_max_ratio\":%.4f",
               (unsigned long long)r->footprint_max, r->max_ratio);
    if (!strcmp(r->phase, "settled"))
        printf(",\"settled_footprint_bytes\":%llu,\"settle_s\":%.3f,\"cold_read_us\":%.2f,"
               "\"cold_read_p99_us\":%.2f,\"hot_read_us\":%.2f,\"hot_read_p99_us\":%.2f",
               (unsigned long long)r->st.footprint, r->settle_s, r->cold_read_us,
               r->cold_read_p99_us, r->hot_read_us, r->hot_read_p99_us);
    if (r->kernel && r->kernel_mem_after_compact)
        printf(",\"mem_used_after_compact_bytes\":%llu",
               (unsigned long long)r->kernel_mem_after_compact);
    if (!r->kernel)
        printf(",\"compact_steps\":%llu,\"compact_pause_max_us\":%llu",
               (unsigned long long)r->st.compact_steps,
               (unsigned long long)(r->st.compact_pause_max_ns / 1000));
    printf("}\n");
}

static void print_header(void)
{
    printf("%-22s %-6s %-12s %8s %10s %10s %10s %10s %7s %7s %9s %9s %s\n", "file", "phase",
           "allocator", "pages", "orig_MiB", "compr_MiB", "mem_MiB", "foot_MiB", "o/foot",
           "f/compr", "write_MB/s", "read_MB/s", "verified");
}

static void print_row(const struct pagefile *pf, const struct result *r)
{
    const char *base = strrchr(pf->name, '/');
    base = base ? base + 1 : pf->name;
    double mib = 1024.0 * 1024.0;
    printf("%-22.22s %-6s %-12s %8llu %10.1f %10.1f %10.1f %10.1f %7.3f %7.3f %9.0f %9.0f %s\n",
           base, r->phase, r->allocator, (unsigned long long)r->pages,
           (double)r->st.orig_data_size / mib, (double)r->st.compr_data_size / mib,
           (double)r->st.mem_used_total / mib, (double)r->st.footprint / mib,
           r->st.footprint ? (double)r->st.orig_data_size / (double)r->st.footprint : 0.0,
           r->st.compr_data_size ? (double)r->st.footprint / (double)r->st.compr_data_size : 0.0,
           r->write_mb_s, r->read_mb_s, r->verified ? "yes" : "NO");
    if (!r->kernel)
        printf("%-22s %-6s %-12s footprint: allocator %.1f KiB + slot table %.1f KiB + "
               "metadata %.1f KiB + streams and device %.1f KiB\n", "", "", "",
               (double)r->st.mem_used_total / 1024, (double)r->st.slot_table_bytes / 1024,
               (double)r->st.meta_bytes / 1024,
               (double)(r->st.footprint - r->st.mem_used_total - r->st.slot_table_bytes -
                        r->st.meta_bytes) / 1024);
    if (r->kernel && r->kernel_mem_after_compact)
        printf("%-22s %-6s %-12s kernel mem_used/compr %.3f before compact, %.3f after writing compact\n",
               "", "", "", (double)r->st.mem_used_total / (double)r->st.compr_data_size,
               (double)r->kernel_mem_after_compact / (double)r->st.compr_data_size);
    if (!strcmp(r->phase, "churn") && !r->kernel)
        printf("%-22s %-6s %-12s footprint_max %.1f MiB; peak footprint/compr during the churn "
               "%.3f; auto-compaction %llu steps, longest %llu us\n", "", "", "",
               (double)r->footprint_max / mib, r->max_ratio,
               (unsigned long long)r->st.compact_steps,
               (unsigned long long)(r->st.compact_pause_max_ns / 1000));
}

static void usage(void)
{
    fprintf(stderr, "usage: uzram bench [--algorithm NAME] [--level N] [--allocator A[,B...]]\n"
                    "                   [--threads N] [--churn ROUNDS] [--seed S] [--kernel-zram]\n"
                    "                   [--kernel-device zramN] [--group-pages 1|2|4|8|auto] [--dedup 0|1|auto]\n"
                    "                   [--compact-bound N|off] [--plot FILE.svg] [--settle]\n"
                    "                   [--algorithm-params 'priority=1 dict=FILE'] [--settle-with R]\n"
                    "                   [--json] PAGEFILE...\n"
                    "  The defaults are `uzram mount`'s: lz4, group_pages auto, dedup on,\n"
                    "  settling to zstd.\n"
                    "  --algorithm-params P  written to algorithm_params before disksize (up to 4)\n"
                    "  --settle-with R   --settle, but `idle all` then R written to recompress\n"
                    "                    (e.g. 'type=idle group=1': zram's per-page pass)\n"
                    "  --settle          after the fill, settle every page (recompress settle),\n"
                    "                    report the settled memory and time cold 4 KiB reads\n"
                    "  --plot FILE.svg   draw memory over the churn and fill speeds with\n"
                    "                    gnuplot (needs --churn; the script is kept as FILE.gp)\n");
}

/* A setting's word, parsed as its attribute parses it (uzram_config_set),
 * into the options. */
static int bench_set(struct opts *o, const char *opt, const char *name, const char *word)
{
    struct uzram_config c;
    uzram_config_init(&c);
    c.algorithm = o->algorithm;
    int err = uzram_config_set(&c, name, word);
    if (err < 0) {
        fprintf(stderr, "uzram bench: %s: %s\n", opt, uzram_last_error());
        return err;
    }
    o->algorithm = c.algorithm;
    if (strcmp(name, "level") == 0)
        o->level = c.level;
    else if (strcmp(name, "group_pages") == 0)
        o->group = c.group_pages;
    else if (strcmp(name, "dedup") == 0)
        o->dedup = c.dedup;
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    /* the mount's defaults (tools/mount.c): its figures are the ones users get */
    struct opts o = {.algorithm = "lz4", .threads = 1, .seed = 1, .group = UZRAM_GROUP_AUTO};
    snprintf(o.allocators, sizeof o.allocators, "zsmalloc");
    static const struct option lo[] = {
        {"algorithm", required_argument, 0, 'a'}, {"level", required_argument, 0, 'l'},
        {"allocator", required_argument, 0, 'A'}, {"threads", required_argument, 0, 't'},
        {"churn", required_argument, 0, 'c'},     {"seed", required_argument, 0, 's'},
        {"kernel-zram", no_argument, 0, 'k'},     {"json", no_argument, 0, 'j'},
        {"group-pages", required_argument, 0, 'g'}, {"dedup", required_argument, 0, 'D'},
        {"plot", required_argument, 0, 'p'},
        {"kernel-device", required_argument, 0, 'K'},
        {"compact-bound", required_argument, 0, 'C'},
        {"settle", no_argument, 0, 'S'},
        {"algorithm-params", required_argument, 0, 'P'},
        {"settle-with", required_argument, 0, 'W'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (bench_set(&o, "--algorithm", "comp_algorithm", optarg) < 0)
                return 2;
            break;
        case 'l':
            if (bench_set(&o, "--level", "level", optarg) < 0)
                return 2;
            break;
        case 'A': snprintf(o.allocators, sizeof o.allocators, "%s", optarg); break;
        case 't':
            o.threads = (int)strtol(optarg, &end, 10);
            if (*end || o.threads < 1 || o.threads > 64) {
                fprintf(stderr, "uzram bench: --threads takes 1 to 64\n");
                return 2;
            }
            break;
        case 'c':
            o.churn = (int)strtol(optarg, &end, 10);
            if (*end || o.churn < 0) { usage(); return 2; }
            break;
        case 's':
            o.seed = strtoull(optarg, &end, 0);
            if (*end) { usage(); return 2; }
            break;
        case 'g':
            if (bench_set(&o, "--group-pages", "group_pages", optarg) < 0)
                return 2;
            break;
        case 'D':
            if (bench_set(&o, "--dedup", "dedup", optarg) < 0)
                return 2;
            break;
        case 'C':
            if (!strcmp(optarg, "off")) {
                o.compact_bound = UZRAM_COMPACT_OFF;
                break;
            }
            o.compact_bound = (uint32_t)strtoul(optarg, &end, 10);
            if (*end || o.compact_bound < 1000) {
                fprintf(stderr, "uzram bench: --compact-bound takes thousandths >= 1000, or off\n");
                return 2;
            }
            break;
        case 'W': o.settle_rc = optarg; o.settle = true; break;
        case 'P':
            if (o.nparams == (int)(sizeof o.params / sizeof o.params[0])) {
                fprintf(stderr, "uzram bench: --algorithm-params at most 4 times\n");
                return 2;
            }
            o.params[o.nparams++] = optarg;
            break;
        case 'k': o.kernel = true; break;
        case 'p': o.plot = optarg; break;
        case 'K':
            if (strncmp(optarg, "zram", 4) != 0 || strlen(optarg) >= sizeof kdev ||
                strspn(optarg + 4, "0123456789") != strlen(optarg + 4) || !optarg[4]) {
                fprintf(stderr, "uzram bench: --kernel-device takes a name zramN\n");
                return 2;
            }
            snprintf(kdev, sizeof kdev, "%s", optarg);
            kdev_given = true;
            o.kernel = true;
            break;
        case 'j': o.json = true; break;
        case 'S': o.settle = true; break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (optind >= argc) {
        usage();
        return 2;
    }
    if (o.plot && o.churn <= 0) {
        fprintf(stderr, "uzram bench: --plot needs --churn ROUNDS (the memory it draws is the "
                        "churn's)\n");
        return 2;
    }
    struct plot_file *plots = o.plot ? calloc((size_t)(argc - optind), sizeof *plots) : NULL;
    if (o.plot && !plots) {
        fprintf(stderr, "uzram bench: out of memory\n");
        return 1;
    }
    /* A device asked for is checked before anything runs. */
    if (kdev_given && kernel_unused(true) < 0)
        return 1;
    int nplots = 0;
    if (!o.json)
        print_header();
    int status = 0;
    for (int f = optind; f < argc; f++) {
        struct pagefile pf;
        if (load(argv[f], &pf) < 0) {
            status = 1;
            continue;
        }
        have_dupscan = dupscan_file(pf.data, pf.pages, &dupscan) == 0;
        if (have_dupscan) {
            struct dupscan_file ds = dupscan;
            if (!o.json)
                printf("%-22s duplicates: %llu of %llu pages repeat an earlier one; the ideal saving is "
                       "%.1f%% of the lz4 bytes\n", pf.name, (unsigned long long)ds.dup_pages,
                       (unsigned long long)ds.pages,
                       ds.lz4_bytes ? 100.0 * (double)ds.ideal_bytes / (double)ds.lz4_bytes : 0.0);
        }
        struct plot_file *pl = plots ? &plots[nplots++] : NULL;
        if (pl) {
            const char *base = strrchr(pf.name, '/');
            snprintf(pl->name, sizeof pl->name, "%s", base ? base + 1 : pf.name);
        }
        char list[256];
        snprintf(list, sizeof list, "%s", o.allocators);
        char *save = NULL;
        for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
            struct result fill = {0}, churn = {0}, settled = {0};
            int rc = bench_device(&o, &pf, a, &fill, &churn, &settled);
            if (pl && rc == 0 && pl->ns < UZ_PLOT_MAX_SERIES) {
                struct plot_series *s = &pl->s[pl->ns++];
                snprintf(s->label, sizeof s->label, "uzram %s", a);
                s->write_mb_s = fill.write_mb_s;
                s->read_mb_s = fill.read_mb_s;
                s->footprint = churn.trace_fp;
                s->compr = churn.trace_compr;
                s->rounds = churn.trace_rounds;
                churn.trace_fp = churn.trace_compr = NULL;   /* the plot owns them */
            }
            free(churn.trace_fp);
            free(churn.trace_compr);
            if (fill.phase) {
                o.json ? print_json(&o, &pf, &fill) : print_row(&pf, &fill);
            }
            if (settled.phase) {
                o.json ? print_json(&o, &pf, &settled) : print_row(&pf, &settled);
                if (!o.json)
                    printf("%-22s settled in %.2f s; 4 KiB random reads: median %.1f us, p99 "
                           "%.1f us settled; %.1f us, p99 %.1f us before\n", "", settled.settle_s,
                           settled.cold_read_us, settled.cold_read_p99_us, settled.hot_read_us,
                           settled.hot_read_p99_us);
            }
            if (churn.phase) {
                o.json ? print_json(&o, &pf, &churn) : print_row(&pf, &churn);
            }
            if (rc < 0)
                status = 1;
            fflush(stdout);
        }
        if (o.kernel) {
            struct result kr, kc = {0};
            int rc = bench_kernel(&o, &pf, &kr, &kc);
            if (rc == 0)
                o.json ? print_json(&o, &pf, &kr) : print_row(&pf, &kr);
            if (rc == 0 && kc.phase)
                o.json ? print_json(&o, &pf, &kc) : print_row(&pf, &kc);
            else if (rc < 0)
                status = 1;
            if (pl && rc == 0 && pl->ns < UZ_PLOT_MAX_SERIES) {
                struct plot_series *s = &pl->s[pl->ns++];
                snprintf(s->label, sizeof s->label, "kernel zram");
                s->write_mb_s = kr.write_mb_s;
                s->read_mb_s = kr.read_mb_s;
                s->footprint = kc.trace_fp;
                s->compr = kc.trace_compr;
                s->rounds = kc.trace_rounds;
                kc.trace_fp = kc.trace_compr = NULL;
            }
            free(kc.trace_fp);
            free(kc.trace_compr);
        }
        free(pf.data);
    }
    if (plots) {
        char title[256];
        snprintf(title, sizeof title, "uzram bench --churn %d, %s%s: uzram and kernel zram on "
                 "the same pages", o.churn, o.algorithm, o.kernel ? "" : " (no kernel zram)");
        if (status == 0 && plot_write(o.plot, plots, nplots, title) < 0)
            status = 1;
        for (int i = 0; i < nplots; i++)
            for (int k = 0; k < plots[i].ns; k++) {
                free(plots[i].s[k].footprint);
                free(plots[i].s[k].compr);
            }
        free(plots);
    }
    return status;
}
