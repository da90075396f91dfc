/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * iostat.c - layer 4 of the store (src/README.md): the device's block
 * layer counters, and the "stat" attribute that prints them (iostat.h).
 *
 * Counting: io.c notes the start of every public data-path call
 * (in_flight up; a busy period starts when it leaves 0), runs it, then
 * counts the request, its sectors and its time, and ends the busy period
 * when in_flight returns to 0.  time_in_queue is the sum of the requests'
 * times, io_ticks the length of the busy periods, as the block layer
 * defines them.  Failed requests are counted too (the block layer counts
 * completions); their errors are in io_stat.  Two clock reads and six
 * atomics a request: the data path takes no lock for it.
 *
 * The clock.  Two clock_gettime calls a request are a visible share of a
 * 4 KiB read, which decompresses in well under a microsecond.  On x86 the
 * invariant time-stamp counter (when CPUID says it is invariant) is read
 * instead, scaled to nanoseconds by a factor calibrated once per process
 * against CLOCK_MONOTONIC over 2 ms; elsewhere, or where the factor cannot
 * be calibrated, clock_gettime.
 */
#define _GNU_SOURCE
#include "iostat.h"
#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#define HAVE_TSC 1
#endif

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifdef HAVE_TSC
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;
static double ns_per_tick;          /* 0: use clock_gettime */

static void tsc_calibrate(void)
{
    /* only an invariant counter (CPUID 0x80000007, EDX bit 8) ticks at
     * one rate on every CPU and in every power state */
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return;
    uint64_t n0 = mono_ns(), t0 = __rdtsc(), n1;
    while ((n1 = mono_ns()) - n0 < 2000000)
        ;
    uint64_t t1 = __rdtsc();
    if (t1 > t0)
        ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
}
#endif

/* Nanoseconds on a monotonic scale of this process (only differences are
 * used). */
static uint64_t now_ns(void)
{
#ifdef HAVE_TSC
    pthread_once(&tsc_once, tsc_calibrate);
    if (ns_per_tick > 0)
        return (uint64_t)((double)__rdtsc() * ns_per_tick);
#endif
    return mono_ns();
}

uint64_t uz_iostat_start(struct uzram *dev)
{
    struct uz_iostat *s = &dev->iostat;
    uint64_t t = now_ns();
    if (atomic_fetch_add(&s->in_flight, 1) == 0)
        atomic_store(&s->busy_since_ns, t);
    return t;
}

int uz_iostat_done(struct uzram *dev, int group, uint64_t bytes, uint64_t t0, int rc)
{
    struct uz_iostat *s = &dev->iostat;
    uint64_t t = now_ns();
    atomic_fetch_add(&s->ios[group], 1);
    atomic_fetch_add(&s->sectors[group], bytes / 512);
    atomic_fetch_add(&s->ticks_ns[group], t > t0 ? t - t0 : 0);
    if (atomic_fetch_sub(&s->in_flight, 1) == 1) {
        uint64_t since = atomic_load(&s->busy_since_ns);
        if (t > since)
            atomic_fetch_add(&s->io_ticks_ns, t - since);
    }
    return rc;
}

int uz_iostat_show(struct uzram *dev, char *buf, size_t size)
{
    uint64_t ios[UZ_IO_GROUPS] = {0}, sec[UZ_IO_GROUPS] = {0}, ms[UZ_IO_GROUPS] = {0};
    uint64_t in_flight = 0, io_ticks = 0, queue = 0;
    const struct uz_iostat *s = &dev->iostat;
    for (int g = 0; g < UZ_IO_GROUPS; g++) {
        ios[g] = atomic_load(&s->ios[g]);
        sec[g] = atomic_load(&s->sectors[g]);
        uint64_t ns = atomic_load(&s->ticks_ns[g]);
        ms[g] = ns / 1000000;
        queue += ns;
    }
    in_flight = atomic_load(&s->in_flight);
    io_ticks = atomic_load(&s->io_ticks_ns);
    int n = snprintf(buf, size,
                     "%8" PRIu64 " %8u %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8u %8" PRIu64
                     " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
                     " %8u %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
                     ios[UZ_IO_READ], 0u, sec[UZ_IO_READ], ms[UZ_IO_READ], ios[UZ_IO_WRITE], 0u,
                     sec[UZ_IO_WRITE], ms[UZ_IO_WRITE], in_flight, io_ticks / 1000000,
                     queue / 1000000, ios[UZ_IO_DISCARD], 0u, sec[UZ_IO_DISCARD],
                     ms[UZ_IO_DISCARD], ios[UZ_IO_FLUSH], ms[UZ_IO_FLUSH]);
    if (n < 0 || (size_t)n >= size)
        return uz_error(-ENOSPC, "stat: buffer of %zu bytes is too small", size);
    return n;
}
