/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * policy.c - policies that run by themselves: a background thread per
 * device that recompresses pages idle longer than T, and writes back pages
 * idle longer than T while the footprint is above a bound.
 *
 * Both are off by default; each is one attribute (recompress_policy,
 * writeback_policy) or one config string, in the same key=value format:
 *
 *   recompress_policy  "idle_secs=T [algo=NAME|priority=N] [max_pages=N] [period_ms=P]
 *                       [group=K]"  (group=K: regroup runs of K idle pages, recompress.c)
 *   writeback_policy   "idle_secs=T [above=BYTES] [max_pages=N] [period_ms=P]"
 *   "0" or "off"       turns the policy off
 *
 * The thread.  It exists only while the device is initialised and a
 * policy is on: started at init (or by the first policy store), stopped
 * by reset and destroy.  Every tick (the shortest period of the policies
 * on; default 1000 ms) it runs each policy whose period has come for a
 * bounded amount of work: at most max_pages pages handled (default 256)
 * and at most SCAN_MAX slots looked at, resuming where the last tick
 * stopped (a cursor per policy), so one tick never holds the device for
 * long and a huge device is covered over several ticks.  The age test
 * reads the slot's atime directly (no need for `idle` first).
 *
 * Locking (the global order: src/README.md, "Lock order").  A tick runs under init_lock taken for reading, like any
 * attribute store; it takes it with tryrdlock, so a reset (which holds
 * init_lock for writing while it stops the thread) never waits for a
 * tick that waits for it.
 *
 * Reported in policy_stat: ticks, pages handled, errors, and the longest
 * tick of each policy.
 */
#define _GNU_SOURCE
#include "policy.h"
#include "device.h"
#include "parse.h"
#include "recompress.h"
#include "writeback.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_PAGES 256
#define DEFAULT_PERIOD_MS 1000
#define SCAN_MAX (64u * 1024)
/* Settling's defaults (recompress_policy "settle"; docs/settling.md says
 * how they were chosen): pages idle 120 s, at most 5% of one core. */
#define UZ_SETTLE_IDLE_SECS 120
#define UZ_SETTLE_CPU_PCT 5
#define SETTLE_MAX_PAGES 64      /* settle: 256 KiB a tick, a few ms of zstd */
#define SETTLE_PERIOD_MS 20
#define YIELD_MAX_MS 10000       /* foreground I/O holds settling off at most this long */
#define IDLE_PASS_MS 1000
#define POLICY_STACK (256u * 1024)

struct uz_policy {
    struct uz_store *dev;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint64_t rc_cursor, wb_cursor;
    uint64_t rc_next_ms, wb_next_ms;
    uint64_t io_seen, rc_ran_ms, pass_done;   /* recompress: I/O seen, last run, pass's work */
    uint64_t pause_ns;                        /* the CPU bound's pause still owed */
};

static void wb_tick(struct uz_store *dev, struct uz_policy *p, struct uz_policy_cfg wb,
                           uint64_t now_ms);

/* CPU time of the calling thread, in ns. */
static uint64_t thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void note_max(_Atomic uint64_t *max, uint64_t v)
{
    uint64_t m = atomic_load(max);
    while (v > m && !atomic_compare_exchange_weak(max, &m, v))
        ;
}

int uz_policy_parse(struct uz_store *dev, bool wb, const char *s, struct uz_policy_cfg *out)
{
    const char *what = wb ? "writeback_policy" : "recompress_policy";
    struct uz_policy_cfg c = {.max_pages = DEFAULT_MAX_PAGES, .period_ms = DEFAULT_PERIOD_MS,
                              .group = 1};
    if (strcmp(s, "0") == 0 || strcmp(s, "off") == 0) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    struct uz_kv kv;
    int err = uz_kv_begin(&kv, s, what);
    if (err < 0)
        return err;
    bool have_idle = false, have_max = false, have_period = false;
    while (uz_kv_next(&kv)) {
        const char *tok = kv.key, *v = kv.val;
        if (!v && strcmp(tok, "settle") == 0 && !wb) {
            c.settle = true;
            continue;
        }
        if (!v)
            return uz_error(-EINVAL, "%s: '%s' is not key=value", what, tok);
        uint64_t x;
        if (strcmp(tok, "algo") == 0 && !wb) {
            c.prio = 0;
            for (uint32_t p = 1; p <= UZ_NR_SECONDARY; p++) {
                const struct uz_codec *cd = uz_codec_find(v);
                if (cd && strcmp(dev->recomp_algo[p - 1].name, cd->name) == 0)
                    c.prio = p;
            }
            if (!c.prio)
                return uz_error(-EINVAL, "%s: '%s' is not a secondary algorithm (recomp_algorithm)",
                                what, v);
            continue;
        }
        if (strcmp(tok, "above") == 0 && wb) {
            if (uz_memparse(v, strlen(v), &x) < 0)
                return uz_error(-EINVAL, "%s: above=%s is not a size", what, v);
            c.above = x;
            continue;
        }
        if (!*v)
            return uz_error(-EINVAL, "%s: %s needs a number", what, tok);
        if (uz_parse_num(v, &x) < 0)
            return uz_error(-EINVAL, "%s: %s=%s is not a number", what, tok, v);
        if (strcmp(tok, "idle_secs") == 0) {
            if (x >= SLOT_ATIME_WRAP)
                return uz_error(-EINVAL, "%s: idle_secs must be below %u (access times wrap)", what,
                                SLOT_ATIME_WRAP);
            c.idle_secs = (uint32_t)x;
            have_idle = true;
        } else if (strcmp(tok, "priority") == 0 && !wb) {
            if (x < 1 || x > UZ_NR_SECONDARY || !dev->recomp_algo[x - 1].name[0])
                return uz_error(-EINVAL, "%s: no secondary algorithm at priority %s", what, v);
            c.prio = (uint32_t)x;
        } else if (strcmp(tok, "group") == 0 && !wb) {
            if (uz_parse_group(v, false, &c.group) < 0)
                return uz_error(-EINVAL, "%s: group is 1, 2, 4 or 8 pages", what);
        } else if (strcmp(tok, "max_pages") == 0) {
            if (x == 0)
                return uz_error(-EINVAL, "%s: max_pages must be at least 1", what);
            c.max_pages = x;
            have_max = true;
        } else if (strcmp(tok, "period_ms") == 0) {
            if (x < 1 || x > 3600000)
                return uz_error(-EINVAL, "%s: period_ms must be 1..3600000", what);
            c.period_ms = (uint32_t)x;
            have_period = true;
        } else if (strcmp(tok, "cpu") == 0) {
            if (x > 100)
                return uz_error(-EINVAL, "%s: cpu is a percentage of one core, 0..100 (0: no bound)",
                                what);
            c.cpu_pct = (uint32_t)x;
        } else {
            return uz_error(-EINVAL, "%s: unknown key '%s'", what, tok);
        }
    }
    if (c.settle) {
        if (c.group > 1)
            return uz_error(-EINVAL, "%s: settle makes its own groups; give settle or group=K", what);
        if (!have_idle)
            c.idle_secs = UZ_SETTLE_IDLE_SECS;
        if (!have_max)
            c.max_pages = SETTLE_MAX_PAGES;
        if (!have_period)
            c.period_ms = SETTLE_PERIOD_MS;
        if (!strstr(s, "cpu="))
            c.cpu_pct = UZ_SETTLE_CPU_PCT;
        have_idle = true;
    }
    if (!have_idle)
        return uz_error(-EINVAL, "%s: give idle_secs=T, settle (or 0 to turn the policy off)", what);
    if (!wb && !c.prio) {
        for (uint32_t p = 1; p <= UZ_NR_SECONDARY && !c.prio; p++)
            if (dev->recomp_algo[p - 1].name[0])
                c.prio = p;
        if (!c.prio)
            return uz_error(-EINVAL, "%s: no secondary algorithm (set recomp_algorithm first)", what);
    }
    c.on = true;
    *out = c;
    return 0;
}

int uz_policy_show(struct uz_store *dev, bool wb, char *buf, size_t size)
{
    pthread_mutex_lock(&dev->policy_lock);
    struct uz_policy_cfg c = wb ? dev->wb_policy : dev->rc_policy;
    pthread_mutex_unlock(&dev->policy_lock);
    int n;
    if (!c.on)
        n = snprintf(buf, size, "0\n");
    else if (wb)
        n = snprintf(buf, size, "idle_secs=%u above=%llu max_pages=%llu period_ms=%u\n", c.idle_secs,
                     (unsigned long long)c.above, (unsigned long long)c.max_pages, c.period_ms);
    else if (c.settle)
        n = snprintf(buf, size, "settle idle_secs=%u algo=%s max_pages=%llu period_ms=%u cpu=%u\n",
                     c.idle_secs, dev->recomp_algo[c.prio - 1].name, (unsigned long long)c.max_pages,
                     c.period_ms, c.cpu_pct);
    else if (c.group > 1)
        n = snprintf(buf, size, "idle_secs=%u algo=%s max_pages=%llu period_ms=%u group=%u\n",
                     c.idle_secs, dev->recomp_algo[c.prio - 1].name, (unsigned long long)c.max_pages,
                     c.period_ms, c.group);
    else
        n = snprintf(buf, size, "idle_secs=%u algo=%s max_pages=%llu period_ms=%u\n", c.idle_secs,
                     dev->recomp_algo[c.prio - 1].name, (unsigned long long)c.max_pages, c.period_ms);
    return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

/* One tick's work; init_lock held for reading, device initialised. */
static void tick(struct uz_store *dev, struct uz_policy *p, uint64_t now_ms)
{
    pthread_mutex_lock(&dev->policy_lock);
    struct uz_policy_cfg rc = dev->rc_policy, wb = dev->wb_policy;
    pthread_mutex_unlock(&dev->policy_lock);

    if (rc.on && now_ms >= p->rc_next_ms && dev->recomp_algo[rc.prio - 1].name[0]) {
        p->rc_next_ms = now_ms + rc.period_ms;
        /* give way to foreground I/O: a tick waits while reads or writes
         * came in since the last one, at most YIELD_MAX_MS in a row */
        uint64_t io = atomic_load(&dev->ev.reads) + atomic_load(&dev->ev.writes);
        if (rc.cpu_pct && io != p->io_seen && now_ms - p->rc_ran_ms < YIELD_MAX_MS) {
            p->io_seen = io;
            atomic_fetch_add(&dev->ev.pol_rc_yields, 1);
            wb_tick(dev, p, wb, now_ms);
            return;
        }
        p->io_seen = io;
        p->rc_ran_ms = now_ms;
        uint64_t t0 = mono_ms(), c0 = thread_ns();
        struct uz_rc_req r = {.mode = RC_AGE, .min_age = rc.idle_secs, .max_pages = rc.max_pages,
                              .prio = rc.prio, .lo = p->rc_cursor, .hi = dev->nslots,
                              .scan_max = SCAN_MAX, .group = rc.group, .settle = rc.settle};
        (void)uz_recompress(dev, &r);
        bool wrapped = r.next >= dev->nslots;
        p->rc_cursor = wrapped ? 0 : r.next;
        p->pass_done += r.done;
        /* a pass that settled pages ends with a compaction: the objects
         * it freed left holes in the allocator's pages */
        if (wrapped && p->pass_done && rc.settle) {
            (void)dev->aops->compact(dev->alloc, 0);
            uz_mem_trim();
        }
        uint64_t cpu = thread_ns() - c0;
        atomic_fetch_add(&dev->ev.pol_rc_ticks, 1);
        atomic_fetch_add(&dev->ev.pol_rc_pages, r.done);
        atomic_fetch_add(&dev->ev.pol_rc_cpu_ns, cpu);
        note_max(&dev->ev.pol_rc_ns_max, (mono_ms() - t0) * 1000000);
        /* the CPU bound: the tick's CPU time c is followed by a pause of
         * c * (100 - pct) / pct, so the thread's share of one core over
         * any span of ticks stays within pct */
        if (rc.cpu_pct && rc.cpu_pct < 100) {
            p->pause_ns += cpu * (100 - rc.cpu_pct) / rc.cpu_pct;
            uint64_t pause = p->pause_ns / 1000000;   /* whole ms; the rest carries over */
            p->pause_ns -= pause * 1000000;
            uint64_t end = mono_ms();   /* the pause follows the tick */
            if (p->rc_next_ms < end + pause)
                p->rc_next_ms = end + pause;
            else
                p->pause_ns = 0;   /* the period is longer than the pause owed */
        }
        /* a whole pass that found nothing to do: look again in a second,
         * and give the secondaries' group workspaces back meanwhile */
        if (wrapped) {
            if (p->pass_done == 0) {
                uz_secondaries_rest(dev);
                if (p->rc_next_ms < now_ms + IDLE_PASS_MS)
                    p->rc_next_ms = now_ms + IDLE_PASS_MS;
            }
            p->pass_done = 0;
        }
    }
    wb_tick(dev, p, wb, now_ms);
}

/* The writeback policy's part of a tick. */
static void wb_tick(struct uz_store *dev, struct uz_policy *p, struct uz_policy_cfg wb,
                           uint64_t now_ms)
{
    if (wb.on && now_ms >= p->wb_next_ms && dev->bd) {
        p->wb_next_ms = now_ms + wb.period_ms;
        struct uz_alloc_stats as;
        dev->aops->stats(dev->alloc, &as);
        if (uz_footprint(dev, &as) > wb.above) {
            uint64_t t0 = mono_ms();
            struct uz_wb_req r = {.mode = WB_AGE, .min_age = wb.idle_secs, .max_pages = wb.max_pages,
                                  .lo = p->wb_cursor, .hi = dev->nslots};
            int err = uz_writeback(dev, &r);
            p->wb_cursor = r.next >= dev->nslots ? 0 : r.next;
            if (err < 0)
                atomic_fetch_add(&dev->ev.pol_wb_errors, 1);
            atomic_fetch_add(&dev->ev.pol_wb_ticks, 1);
            atomic_fetch_add(&dev->ev.pol_wb_pages, r.done);
            note_max(&dev->ev.pol_wb_ns_max, (mono_ms() - t0) * 1000000);
        }
    }
}

static void *policy_main(void *arg)
{
    struct uz_policy *p = arg;
    struct uz_store *dev = p->dev;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_lock(&dev->policy_lock);
        uint32_t period = DEFAULT_PERIOD_MS;
        if (dev->rc_policy.on && dev->rc_policy.period_ms < period)
            period = dev->rc_policy.period_ms;
        if (dev->wb_policy.on && dev->wb_policy.period_ms < period)
            period = dev->wb_policy.period_ms;
        bool rc_on = dev->rc_policy.on, wb_on = dev->wb_policy.on;
        pthread_mutex_unlock(&dev->policy_lock);
        /* sleep to the first policy's next run (a CPU bound's pause or an
         * idle pass can put it past the period), at least one period */
        uint64_t now = mono_ms(), next = UINT64_MAX;
        if (rc_on && p->rc_next_ms < next)
            next = p->rc_next_ms;
        if (wb_on && p->wb_next_ms < next)
            next = p->wb_next_ms;
        if (next != UINT64_MAX && next > now + period)
            period = (uint32_t)(next - now < 3600000 ? next - now : 3600000);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)period * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        if (pthread_rwlock_tryrdlock(&dev->init_lock) == 0) {
            if (dev->initialised)
                tick(dev, p, mono_ms());
            pthread_rwlock_unlock(&dev->init_lock);
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int uz_policy_start(struct uz_store *dev)
{
    pthread_mutex_lock(&dev->policy_lock);
    int err = 0;
    if (dev->policy || !dev->initialised || (!dev->rc_policy.on && !dev->wb_policy.on))
        goto out;
    struct uz_policy *p = uz_calloc(1, sizeof *p);
    if (!p) {
        err = uz_error(-ENOMEM, "policy: no memory for the policy thread");
        goto out;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->dev = dev;
    dev->policy = p;
    /* a small stack: the thread's work is in the streams' contexts, and a
     * locked server (mlockall) pays for every byte of it */
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setstacksize(&ta, POLICY_STACK);
    int rc = pthread_create(&p->thread, &ta, policy_main, p);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        dev->policy = NULL;
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        uz_free(p);
        err = uz_error(-rc, "policy: cannot start the policy thread");
    }
out:
    pthread_mutex_unlock(&dev->policy_lock);
    return err;
}

void uz_policy_stop(struct uz_store *dev)
{
    pthread_mutex_lock(&dev->policy_lock);
    struct uz_policy *p = dev->policy;
    dev->policy = NULL;
    pthread_mutex_unlock(&dev->policy_lock);
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    uz_free(p);
}
