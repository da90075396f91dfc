/*
 * iostat.c - frontends' I/O counters, summed into the "stat" attribute
 * (iostat.h).
 *
 * Counting: uz_io_* note the start (in_flight up; the busy period starts
 * when it leaves 0), call the library, then count the request, its
 * sectors and its time, and end the busy period when in_flight returns to
 * 0.  time_in_queue is the sum of the requests' times, io_ticks the
 * length of the busy periods, as the block layer defines them.  Failed
 * requests are counted too (the block layer counts completions); their
 * errors are in io_stat.
 *
 * The registry that ties counters to devices is a small table under a
 * mutex: attach and detach happen once per frontend, and only "stat"
 * reads it, so the data path never takes the lock.
 */
#define _GNU_SOURCE
#include "iostat.h"
#include "error.h"
#include "uzram.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define MAX_ATTACHED 16

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    struct uzram *dev;
    struct uz_iostat *s;
} reg[MAX_ATTACHED];

int uz_iostat_attach(struct uzram *dev, struct uz_iostat *s)
{
    int rc = uz_error(-ENOSPC, "stat: %d frontends are counting already", MAX_ATTACHED);
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_ATTACHED; i++)
        if (!reg[i].dev) {
            reg[i].dev = dev;
            reg[i].s = s;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void uz_iostat_detach(struct uzram *dev, struct uz_iostat *s)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_ATTACHED; i++)
        if (reg[i].dev == dev && reg[i].s == s)
            reg[i].dev = NULL, reg[i].s = NULL;
    pthread_mutex_unlock(&reg_lock);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t io_start(struct uz_iostat *s)
{
    uint64_t t = now_ns();
    if (atomic_fetch_add(&s->in_flight, 1) == 0)
        atomic_store(&s->busy_since_ns, t);
    return t;
}

static int io_done(struct uz_iostat *s, int group, uint64_t bytes, uint64_t t0, int rc)
{
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

int uz_io_read(struct uz_iostat *s, struct uzram *dev, void *buf, size_t len, uint64_t off)
{
    uint64_t t0 = io_start(s);
    return io_done(s, UZ_IO_READ, len, t0, uzram_read(dev, buf, len, off));
}

int uz_io_write(struct uz_iostat *s, struct uzram *dev, const void *buf, size_t len,
                uint64_t off)
{
    uint64_t t0 = io_start(s);
    return io_done(s, UZ_IO_WRITE, len, t0, uzram_write(dev, buf, len, off));
}

int uz_io_discard(struct uz_iostat *s, struct uzram *dev, size_t len, uint64_t off)
{
    uint64_t t0 = io_start(s);
    return io_done(s, UZ_IO_DISCARD, len, t0, uzram_discard(dev, len, off));
}

/* The block layer counts write-zeroes requests among the writes. */
int uz_io_write_zeroes(struct uz_iostat *s, struct uzram *dev, size_t len, uint64_t off)
{
    uint64_t t0 = io_start(s);
    return io_done(s, UZ_IO_WRITE, len, t0, uzram_write_zeroes(dev, len, off));
}

int uz_io_flush(struct uz_iostat *s, struct uzram *dev)
{
    uint64_t t0 = io_start(s);
    return io_done(s, UZ_IO_FLUSH, 0, t0, uzram_flush(dev));
}

int uz_iostat_show(struct uzram *dev, char *buf, size_t size)
{
    uint64_t ios[UZ_IO_GROUPS] = {0}, sec[UZ_IO_GROUPS] = {0}, ms[UZ_IO_GROUPS] = {0};
    uint64_t in_flight = 0, io_ticks = 0, queue = 0;
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_ATTACHED; i++) {
        struct uz_iostat *s = reg[i].dev == dev ? reg[i].s : NULL;
        if (!s)
            continue;
        for (int g = 0; g < UZ_IO_GROUPS; g++) {
            ios[g] += atomic_load(&s->ios[g]);
            sec[g] += atomic_load(&s->sectors[g]);
            uint64_t ns = atomic_load(&s->ticks_ns[g]);
            ms[g] += ns / 1000000;
            queue += ns;
        }
        in_flight += atomic_load(&s->in_flight);
        io_ticks += atomic_load(&s->io_ticks_ns);
    }
    pthread_mutex_unlock(&reg_lock);
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
