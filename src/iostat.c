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
 * relaxed atomics a request: the data path takes no lock for it.
 */
#define _GNU_SOURCE
#include "iostat.h"
#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
    atomic_fetch_add(&s->ticks_ns[group], t - t0);
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
