/*
 * attr.c - the zram attribute table: the one parser and printer of
 * /sys/block/zramN-style attributes that every frontend uses.
 *
 * Each attribute is one row: its name, its sysfs mode, and a show and/or
 * store function.  Formats follow the kernel's zram_drv.c output (field
 * widths included) so that tools written for zram read uzram unchanged;
 * errors follow what a write to the sysfs file returns (EINVAL for
 * malformed input, EBUSY for changes that need a reset first).
 *
 * Values are parsed strictly (parse.c): a number may be followed by one
 * newline (and nothing else), as `echo VALUE > file` writes it.  A failed
 * store changes nothing, but for writeback and recompress, long scans
 * whose failure leaves what uzram.h says.  Stores that reshape the device
 * are refused with EBUSY while it is open (device.c, "Open count").
 *
 * Locking: a show, and a store that does not reshape the device, hold
 * init_lock for reading; a reshaping store holds it for writing
 * (src/README.md, "Lock order").
 */
#define _GNU_SOURCE
#include "attr.h"
#include "device.h"
#include "pool.h"
#include "iostat.h"
#include "dedup.h"
#include "parse.h"
#include "policy.h"
#include "recompress.h"
#include "writeback.h"
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct val {                 /* a stored value, trimmed of its newline */
    char s[256];
    size_t len;
};

struct attr {
    const char *name;
    unsigned mode;
    int (*show)(struct uzram *dev, char *buf, size_t size);
    int (*store)(struct uzram *dev, const struct val *v);
    bool reshape;   /* the store changes the device's shape: exclude I/O */
    bool closed;    /* refused with EBUSY while the device is open (uzram_open) */
    bool own;       /* a device's own, also in a pool (else the store's: the pool's) */
};

/* ----------------------------------------------------------- parsing */

/* An unsigned decimal integer and nothing else (kstrtoull base 10). */
static int parse_u64(const struct val *v, uint64_t *out)
{
    return uz_parse_u64(v->s, v->len, out);
}

/* Append to buf; returns the new length or -ENOSPC. */
static int emit(char *buf, size_t size, int len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int emit(char *buf, size_t size, int len, const char *fmt, ...)
{
    if (len < 0)
        return len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, size - (size_t)len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)(len + n) >= size)
        return -ENOSPC;
    return len + n;
}

/* -------------------------------------------------------- attributes */

static int show_disksize(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%llu\n", (unsigned long long)dev->disksize);
}

static int store_disksize(struct uzram *dev, const struct val *v)
{
    uint64_t bytes;
    if (uz_memparse(v->s, v->len, &bytes) < 0)
        return uz_error(-EINVAL, "disksize: '%s' is not a size (e.g. 512M, 1G)", v->s);
    if (bytes == 0)
        return uz_error(-EINVAL, "disksize: must be more than 0");
    if (dev->initialised)
        return uz_error(-EBUSY, "disksize: device is initialised; write 1 to reset first");
    return uz_dev_init(dev, bytes);
}

static int show_initstate(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%u\n", dev->initialised ? 1u : 0u);
}

static int store_reset(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x == 0)
        return uz_error(-EINVAL, "reset: write a non-zero number");
    return uz_dev_reset(dev);
}

static int show_comp_algorithm(struct uzram *dev, char *buf, size_t size)
{
    int len = 0;
    const struct uz_codec *c;
    for (unsigned i = 0; (c = uz_codec_at(i)) != NULL; i++)
        len = emit(buf, size, len, strcmp(c->name, dev->algorithm) == 0 ? "[%s] " : "%s ", c->name);
    return emit(buf, size, len, "\n");
}

static int store_comp_algorithm(struct uzram *dev, const struct val *v)
{
    const struct uz_codec *c = uz_codec_find(v->s);
    if (!c)
        return uz_error(-EINVAL, "comp_algorithm: unknown algorithm '%s'", v->s);
    if (dev->initialised)
        return uz_error(-EBUSY, "comp_algorithm: device is initialised; reset it first");
    snprintf(dev->algorithm, sizeof dev->algorithm, "%s", c->name);
    dev->level = 0;
    return 0;
}

/* A signed decimal: an optional '-' and digits, nothing else (kstrtoint
 * base 10, without its leading '+'). */
static int parse_long(const char *s, long *out)
{
    uint64_t x;
    bool neg = s[0] == '-';
    if (uz_parse_num(s + neg, &x) < 0 || x > (uint64_t)INT32_MAX)
        return -EINVAL;
    *out = neg ? -(long)x : (long)x;
    return 0;
}

/* "algo=NAME level=L" or "priority=N level=L": priority 0 (or an algo
 * that is the primary) sets the primary's level, 1..3 a secondary's;
 * neither given is the primary, as zram's default priority is. */
static int store_algorithm_params(struct uzram *dev, const struct val *v)
{
    struct uz_kv kv;
    int err = uz_kv_begin(&kv, v->s, "algorithm_params");
    if (err < 0)
        return err;
    const char *algo = NULL;
    char algo_buf[64];
    long prio = -1;
    long level = 0;
    bool have_level = false, any = false;
    while (uz_kv_next(&kv)) {
        const char *tok = kv.key, *val = kv.val;
        any = true;
        if (!val)
            return uz_error(-EINVAL, "algorithm_params: '%s' is not key=value", tok);
        if (strcmp(tok, "algo") == 0) {
            snprintf(algo_buf, sizeof algo_buf, "%s", val);
            algo = algo_buf;
        } else if (strcmp(tok, "priority") == 0) {
            if (parse_long(val, &prio) < 0 || prio < 0)
                return uz_error(-EINVAL, "algorithm_params: bad priority '%s'", val);
        } else if (strcmp(tok, "level") == 0) {
            if (parse_long(val, &level) < 0)
                return uz_error(-EINVAL, "algorithm_params: bad level '%s'", val);
            have_level = true;
        } else if (strcmp(tok, "dict") == 0) {
            return uz_error(-EINVAL, "algorithm_params: dictionaries are not supported");
        } else {
            return uz_error(-EINVAL, "algorithm_params: unknown key '%s'", tok);
        }
    }
    if (!any)
        return uz_error(-EINVAL, "algorithm_params: give level=L (for the primary), with "
                        "algo=NAME or priority=N for a secondary");
    if (!algo && prio < 0)
        prio = 0;
    if (prio > UZ_NR_SECONDARY || (prio > 0 && !dev->recomp_algo[prio - 1].name[0]))
        return uz_error(-EINVAL, "algorithm_params: no secondary algorithm at priority %ld", prio);
    if (algo) {
        const struct uz_codec *c = uz_codec_find(algo);
        long found = -1;
        if (c && (prio <= 0) && strcmp(c->name, dev->algorithm) == 0)
            found = 0;
        for (long p = 1; c && found < 0 && p <= UZ_NR_SECONDARY; p++)
            if ((prio < 0 || prio == p) && strcmp(c->name, dev->recomp_algo[p - 1].name) == 0)
                found = p;
        if (found < 0)
            return uz_error(-EINVAL, "algorithm_params: '%s' is not a selected algorithm", algo);
        prio = found;
    }
    if (!have_level)
        return 0;
    const struct uz_codec *c = uz_codec_find(prio > 0 ? dev->recomp_algo[prio - 1].name : dev->algorithm);
    if (level < c->level_min || level > c->level_max)
        return uz_error(-EINVAL, "algorithm_params: level %ld is outside %s's %d..%d", level,
                        c->name, c->level_min, c->level_max);
    if (dev->initialised)
        return uz_error(-EBUSY, "algorithm_params: device is initialised; reset it first");
    if (prio > 0)
        dev->recomp_algo[prio - 1].level = (int)level;
    else
        dev->level = (int)level;
    return 0;
}

static int show_algorithm_params(struct uzram *dev, char *buf, size_t size)
{
    const struct uz_codec *c = uz_codec_find(dev->algorithm);
    int len = emit(buf, size, 0, "priority=0 algo=%s level=%d\n", dev->algorithm,
                   dev->level ? dev->level : c->level_default);
    for (int p = 1; p <= UZ_NR_SECONDARY; p++) {
        const struct uz_recomp_algo *sc = &dev->recomp_algo[p - 1];
        if (!sc->name[0])
            continue;
        c = uz_codec_find(sc->name);
        len = emit(buf, size, len, "priority=%d algo=%s level=%d\n", p, sc->name,
                   sc->level ? sc->level
                   : c->level_secondary ? c->level_secondary : c->level_default);
    }
    return len;
}

static int store_mem_limit(struct uzram *dev, const struct val *v)
{
    uint64_t bytes;
    if (uz_memparse(v->s, v->len, &bytes) < 0)
        return uz_error(-EINVAL, "mem_limit: '%s' is not a size (0 = no limit)", v->s);
    atomic_store(&dev->limit_pages, (bytes + UZRAM_PAGE_SIZE - 1) / UZRAM_PAGE_SIZE);
    return 0;
}

static int store_mem_used_max(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x != 0)
        return uz_error(-EINVAL, "mem_used_max: only 0 may be written (resets the peak)");
    if (dev->initialised)
        uz_mem_used_max_reset(dev);
    return 0;
}

static int store_compact(struct uzram *dev, const struct val *v)
{
    if (!dev->initialised)
        return uz_error(-EINVAL, "compact: device is not initialised");
    dev->aops->compact(dev->alloc, 0);
    return 0;
}

static int show_mm_stat(struct uzram *dev, char *buf, size_t size)
{
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    return emit(buf, size, 0, "%8llu %8llu %8llu %8llu %8llu %8llu %8llu %8llu %8llu\n",
                (unsigned long long)st.orig_data_size, (unsigned long long)st.compr_data_size,
                (unsigned long long)st.mem_used_total, (unsigned long long)st.mem_limit,
                (unsigned long long)st.mem_used_max, (unsigned long long)st.same_pages,
                (unsigned long long)st.pages_compacted, (unsigned long long)st.huge_pages,
                (unsigned long long)st.huge_pages_since);
}

static int show_io_stat(struct uzram *dev, char *buf, size_t size)
{
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    return emit(buf, size, 0, "%8llu %8llu %8llu %8llu\n", (unsigned long long)st.failed_reads,
                (unsigned long long)st.failed_writes, (unsigned long long)st.invalid_io,
                (unsigned long long)st.notify_free);
}

/* zram prints "version: 1" then writestall and miss_free; uzram adds its
 * own lines after them (footprint accounting). */
static int show_debug_stat(struct uzram *dev, char *buf, size_t size)
{
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    int len = emit(buf, size, 0, "version: 1\n%8llu %8llu\n",
                   (unsigned long long)atomic_load(&dev->ev.writestall),
                   (unsigned long long)atomic_load(&dev->ev.miss_free));
    len = emit(buf, size, len, "footprint: %llu slot_table: %llu meta: %llu streams: %llu\n",
               (unsigned long long)st.footprint, (unsigned long long)st.slot_table_bytes,
               (unsigned long long)st.meta_bytes,
               (unsigned long long)(dev->initialised ? dev->streams.bytes : 0));
    len = emit(buf, size, len, "auto_compact_steps: %llu auto_compact_pause_max_us: %llu\n",
               (unsigned long long)st.compact_steps,
               (unsigned long long)(st.compact_pause_max_ns / 1000));
    len = emit(buf, size, len, "group_writes: %llu group_fallbacks: %llu group_breaks: %llu\n",
               (unsigned long long)atomic_load(&dev->ev.group_writes),
               (unsigned long long)atomic_load(&dev->ev.group_fallbacks),
               (unsigned long long)atomic_load(&dev->ev.group_breaks));
    len = emit(buf, size, len, "recomp_groups: %llu settle_groups: %llu settle_pages: %llu "
               "settle_cpu_ms: %llu settle_yields: %llu\n",
               (unsigned long long)atomic_load(&dev->ev.recomp_groups),
               (unsigned long long)atomic_load(&dev->ev.settle_groups),
               (unsigned long long)atomic_load(&dev->ev.settle_pages),
               (unsigned long long)(atomic_load(&dev->ev.pol_rc_cpu_ns) / 1000000),
               (unsigned long long)atomic_load(&dev->ev.pol_rc_yields));
    return emit(buf, size, len, "forwarded: %llu written_back: %llu writeback_failed: %llu "
                "bd_failed: %llu recompressed: %llu recomp_incompressible: %llu\n",
                (unsigned long long)st.forwarded, (unsigned long long)st.written_back,
                (unsigned long long)atomic_load(&dev->ev.wb_failed),
                (unsigned long long)st.bd_failed, (unsigned long long)st.recompressed,
                (unsigned long long)st.recomp_incomp);
}

static int show_max_comp_streams(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%u\n", dev->initialised ? dev->streams.n : dev->nstreams);
}

/* zram accepts and ignores writes here (streams are per CPU). */
static int store_max_comp_streams(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x == 0 || x > 1024)
        return uz_error(-EINVAL, "max_comp_streams: write a number from 1 to 1024");
    if (!dev->initialised)
        dev->nstreams = (unsigned)x;
    return 0;
}

/* auto_compact: the footprint bound of automatic compaction, a decimal
 * of at most three places (thousandths of compr_data_size), at least 1;
 * "0" turns it off. */
static int show_auto_compact(struct uzram *dev, char *buf, size_t size)
{
    uint32_t b = atomic_load(&dev->compact_bound);
    if (b == 0)
        return emit(buf, size, 0, "0\n");
    return emit(buf, size, 0, "%u.%03u\n", b / 1000, b % 1000);
}

/* The bound in thousandths, or -EINVAL (no message: the store gives it). */
static int parse_bound(const struct val *v, uint32_t *out)
{
    uint64_t whole = 0, frac = 0;
    size_t i = 0;
    int fdigits = 0;
    while (i < v->len && isdigit((unsigned char)v->s[i]) && whole < 1000)
        whole = whole * 10 + (uint64_t)(v->s[i++] - '0');
    if (i == 0)
        goto bad;
    if (i < v->len && v->s[i] == '.') {
        i++;
        while (i < v->len && isdigit((unsigned char)v->s[i]) && fdigits < 3) {
            frac = frac * 10 + (uint64_t)(v->s[i++] - '0');
            fdigits++;
        }
        if (fdigits == 0)
            goto bad;
    }
    if (i != v->len)
        goto bad;
    while (fdigits++ < 3)
        frac *= 10;
    *out = (uint32_t)(whole * 1000 + frac);
    return 0;
bad:
    return -EINVAL;
}

static int store_auto_compact(struct uzram *dev, const struct val *v)
{
    uint32_t pm;
    if (parse_bound(v, &pm) < 0)
        return uz_error(-EINVAL, "auto_compact: '%s' is not a number like 1.05 (0 = off)", v->s);
    if (pm != 0 && pm < 1000)
        return uz_error(-EINVAL, "auto_compact: bound %s is below 1 (or write 0 to turn it off)", v->s);
    atomic_store(&dev->compact_bound, pm);
    return 0;
}

/* group_pages: 1 (off), 2, 4, 8 or auto (each write chooses: io.c), while
 * uninitialised (as comp_algorithm). */
static int show_group_pages(struct uzram *dev, char *buf, size_t size)
{
    if (dev->group_auto)
        return emit(buf, size, 0, "auto\n");
    return emit(buf, size, 0, "%u\n", dev->group_pages);
}

static int store_group_pages(struct uzram *dev, const struct val *v)
{
    uint64_t x = 0;
    bool automatic = strcmp(v->s, "auto") == 0;
    if (!automatic && (parse_u64(v, &x) < 0 || (x != 1 && x != 2 && x != 4 && x != 8)))
        return uz_error(-EINVAL, "group_pages: write 1 (off), 2, 4, 8 or auto");
    if (dev->initialised)
        return uz_error(-EBUSY, "group_pages: device is initialised; reset it first");
    dev->group_auto = automatic;
    dev->group_pages = automatic ? UZ_GROUP_MAX : (uint32_t)x;
    return 0;
}

/* ------------------------------------------------ beyond RAM */

static int show_backing_dev(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%s\n", dev->bd ? dev->bd->path : "none");
}

/* An absolute path or an NBD URI (backing.h), while uninitialised (as
 * zram); "none" drops it. */
static int store_backing_dev(struct uzram *dev, const struct val *v)
{
    bool none = strcmp(v->s, "none") == 0;
    if (!none) {
        int err = uz_backing_check_name(v->s);
        if (err < 0)
            return err;
    }
    if (dev->initialised)
        return uz_error(-EBUSY, "backing_dev: device is initialised; reset it first");
    struct uz_backing *b = NULL;
    if (!none) {
        int err = uz_backing_open(&b, v->s);
        if (err < 0)
            return err;
    }
    uz_backing_close(dev->bd);
    dev->bd = b;
    return 0;
}

static int show_bd_stat(struct uzram *dev, char *buf, size_t size)
{
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    return emit(buf, size, 0, "%8llu %8llu %8llu\n", (unsigned long long)st.bd_count,
                (unsigned long long)st.bd_reads, (unsigned long long)st.bd_writes);
}

/* zram's writeback modes: idle, huge, huge_idle, incompressible,
 * page_index=N, page_indexes=LO-HI (inclusive; several may be given), and
 * the type=MODE spelling of the first four. */
static int store_writeback(struct uzram *dev, const struct val *v)
{
    if (!dev->initialised)
        return uz_error(-EINVAL, "writeback: device is not initialised");
    struct uz_kv kv;
    int kerr = uz_kv_begin(&kv, v->s, "writeback");
    if (kerr < 0)
        return kerr;
    struct { uint64_t lo, hi; } ranges[16];
    int nranges = 0;
    unsigned mode = 0;
    bool have_mode = false;
    while (uz_kv_next(&kv)) {
        char *tok = kv.word;
        const char *m = kv.val && strcmp(kv.key, "type") == 0 ? kv.val : tok;
        if (strcmp(m, "idle") == 0) {
            mode = WB_IDLE;
        } else if (strcmp(m, "huge") == 0) {
            mode = WB_HUGE;
        } else if (strcmp(m, "huge_idle") == 0) {
            mode = WB_HUGE | WB_IDLE;
        } else if (strcmp(m, "incompressible") == 0) {
            mode = WB_INCOMP;
        } else if (strncmp(tok, "page_index=", 11) == 0 || strncmp(tok, "page_indexes=", 13) == 0) {
            if (nranges == 16)
                return uz_error(-EINVAL, "writeback: at most 16 page ranges");
            char *val = strchr(tok, '=') + 1;
            uint64_t lo, hi;
            char *dash = tok[10] == 'e' ? strchr(val, '-') : NULL;
            if (dash)
                *dash = 0;
            if (uz_parse_num(val, &lo) < 0 || (dash && uz_parse_num(dash + 1, &hi) < 0))
                return uz_error(-EINVAL, "writeback: '%s' is not an index or LO-HI range", tok);
            if (!dash && tok[10] == 'e')
                return uz_error(-EINVAL, "writeback: page_indexes takes LO-HI");
            if (!dash)
                hi = lo;
            if (lo > hi || hi >= dev->nslots)
                return uz_error(-EINVAL, "writeback: page range %llu-%llu is outside 0-%llu",
                                (unsigned long long)lo, (unsigned long long)hi,
                                (unsigned long long)dev->nslots - 1);
            ranges[nranges].lo = lo;
            ranges[nranges].hi = hi + 1;
            nranges++;
            continue;
        } else {
            return uz_error(-EINVAL, "writeback: unknown mode '%s' (idle, huge, huge_idle, "
                            "incompressible, page_index=N, page_indexes=LO-HI)", tok);
        }
        if (have_mode)
            return uz_error(-EINVAL, "writeback: one mode at a time");
        have_mode = true;
    }
    if (!have_mode && nranges == 0)
        return uz_error(-EINVAL, "writeback: give a mode");
    if (!dev->store->bd)
        return uz_error(-ENODEV, "writeback: no backing device (set backing_dev before disksize)");
    if (nranges == 0) {
        ranges[0].lo = 0;
        ranges[0].hi = dev->nslots;
        nranges = 1;
    }
    for (int i = 0; i < nranges; i++) {
        struct uz_wb_req r = {.mode = have_mode ? mode : WB_ANY, .lo = dev->base + ranges[i].lo,
                              .hi = dev->base + ranges[i].hi};
        int err = uz_writeback(dev->store, &r);
        if (err < 0)
            return err;
    }
    return 0;
}

static int show_writeback_limit(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%llu\n", (unsigned long long)atomic_load(&dev->wb_limit));
}

static int store_writeback_limit(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0)
        return uz_error(-EINVAL, "writeback_limit: write a number of 4 KiB pages");
    atomic_store(&dev->wb_limit, x);
    return 0;
}

static int show_bool(_Atomic bool *b, char *buf, size_t size)
{
    return emit(buf, size, 0, "%d\n", atomic_load(b) ? 1 : 0);
}

static int store_bool(_Atomic bool *b, const struct val *v, const char *what)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x > 1)
        return uz_error(-EINVAL, "%s: write 0 or 1", what);
    atomic_store(b, x == 1);
    return 0;
}

static int show_writeback_limit_enable(struct uzram *dev, char *buf, size_t size)
{
    return show_bool(&dev->wb_limit_enable, buf, size);
}

static int store_writeback_limit_enable(struct uzram *dev, const struct val *v)
{
    return store_bool(&dev->wb_limit_enable, v, "writeback_limit_enable");
}

static int show_writeback_compressed(struct uzram *dev, char *buf, size_t size)
{
    return show_bool(&dev->wb_compressed, buf, size);
}

static int store_writeback_compressed(struct uzram *dev, const struct val *v)
{
    return store_bool(&dev->wb_compressed, v, "writeback_compressed");
}

/* zram's writeback_batch_size: pages a writeback run keeps in flight at
 * once, where the backing device takes several (an NBD remote; a local
 * file goes page by page). */
static int show_writeback_batch_size(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%u\n", atomic_load(&dev->wb_batch));
}

static int store_writeback_batch_size(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x < 1 || x > UZ_WB_BATCH_MAX)
        return uz_error(-EINVAL, "writeback_batch_size: write 1 to %d pages", UZ_WB_BATCH_MAX);
    atomic_store(&dev->wb_batch, (uint32_t)x);
    return 0;
}

static int show_forward_threshold(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%u\n", atomic_load(&dev->forward_threshold));
}

static int store_forward_threshold(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x > UZRAM_PAGE_SIZE)
        return uz_error(-EINVAL, "forward_threshold: bytes 0..4096 (0 = off)");
    atomic_store(&dev->forward_threshold, (uint32_t)x);
    return 0;
}

/* "all" or seconds since last access (below 2^20: atime wraps). */
static int store_idle(struct uzram *dev, const struct val *v)
{
    uint64_t age = 0;
    if (strcmp(v->s, "all") != 0) {
        if (parse_u64(v, &age) < 0)
            return uz_error(-EINVAL, "idle: write 'all' or a number of seconds");
        if (age >= SLOT_ATIME_WRAP)
            return uz_error(-EINVAL, "idle: at most %u seconds (access times wrap after 12 days)",
                            SLOT_ATIME_WRAP - 1);
    }
    if (!dev->initialised)
        return uz_error(-EINVAL, "idle: device is not initialised");
    uz_idle_mark(dev->store, dev->base, dev->base + dev->nslots, (uint32_t)age);
    return 0;
}

/* As zram: one line per secondary, "#P: " and the algorithm list with the
 * chosen one in brackets. */
static int show_recomp_algorithm(struct uzram *dev, char *buf, size_t size)
{
    int len = 0;
    buf[0] = 0;
    for (int p = 1; p <= UZ_NR_SECONDARY; p++) {
        if (!dev->recomp_algo[p - 1].name[0])
            continue;
        len = emit(buf, size, len, "#%d: ", p);
        const struct uz_codec *c;
        for (unsigned i = 0; (c = uz_codec_at(i)) != NULL; i++)
            len = emit(buf, size, len, strcmp(c->name, dev->recomp_algo[p - 1].name) == 0 ? "[%s] " : "%s ",
                       c->name);
        len = emit(buf, size, len, "\n");
    }
    if (len == 0)
        len = emit(buf, size, 0, "\n");
    return len;
}

/* "algo=NAME priority=1..3" (priority defaults to 1), before init. */
static int store_recomp_algorithm(struct uzram *dev, const struct val *v)
{
    struct uz_kv kv;
    int err = uz_kv_begin(&kv, v->s, "recomp_algorithm");
    if (err < 0)
        return err;
    const struct uz_codec *c = NULL;
    uint64_t prio = 1;
    while (uz_kv_next(&kv)) {
        if (kv.val && strcmp(kv.key, "algo") == 0) {
            c = uz_codec_find(kv.val);
            if (!c)
                return uz_error(-EINVAL, "recomp_algorithm: unknown algorithm '%s'", kv.val);
        } else if (kv.val && strcmp(kv.key, "priority") == 0) {
            if (uz_parse_num(kv.val, &prio) < 0 || prio < 1 || prio > UZ_NR_SECONDARY)
                return uz_error(-EINVAL, "recomp_algorithm: priority is 1..%d", UZ_NR_SECONDARY);
        } else {
            return uz_error(-EINVAL, "recomp_algorithm: '%s': give algo=NAME priority=N", kv.word);
        }
    }
    if (!c)
        return uz_error(-EINVAL, "recomp_algorithm: give algo=NAME");
    if (dev->initialised)
        return uz_error(-EBUSY, "recomp_algorithm: device is initialised; reset it first");
    snprintf(dev->recomp_algo[prio - 1].name, sizeof dev->recomp_algo[prio - 1].name, "%s", c->name);
    dev->recomp_algo[prio - 1].level = 0;
    return 0;
}

/* "type=idle|huge|huge_idle threshold=BYTES max_pages=N algo=NAME|priority=N
 * group=K" */
static int store_recompress(struct uzram *dev, const struct val *v)
{
    struct uzram *st = dev->store;   /* the secondaries are the store's */
    struct uz_kv kv;
    int kerr = uz_kv_begin(&kv, v->s, "recompress");
    if (kerr < 0)
        return kerr;
    struct uz_rc_req r = {0};
    bool group_given = false;
    while (uz_kv_next(&kv)) {
        const char *tok = kv.key, *val = kv.val;
        if (!val && strcmp(tok, "settle") == 0) {
            r.settle = true;   /* settle now: every page, idle or not */
            continue;
        }
        if (!val)
            return uz_error(-EINVAL, "recompress: '%s' is not key=value", tok);
        uint64_t x;
        if (strcmp(tok, "type") == 0) {
            if (strcmp(val, "idle") == 0)
                r.mode = RC_IDLE;
            else if (strcmp(val, "huge") == 0)
                r.mode = RC_HUGE;
            else if (strcmp(val, "huge_idle") == 0)
                r.mode = RC_IDLE | RC_HUGE;
            else
                return uz_error(-EINVAL, "recompress: type is idle, huge or huge_idle");
        } else if (strcmp(tok, "threshold") == 0) {
            if (uz_parse_num(val, &x) < 0 || x >= UZRAM_PAGE_SIZE)
                return uz_error(-EINVAL, "recompress: threshold is bytes below 4096");
            r.threshold = x;
        } else if (strcmp(tok, "max_pages") == 0) {
            if (uz_parse_num(val, &x) < 0 || x == 0)
                return uz_error(-EINVAL, "recompress: max_pages is a number from 1");
            r.max_pages = x;
        } else if (strcmp(tok, "priority") == 0) {
            if (uz_parse_num(val, &x) < 0 || x < 1 || x > UZ_NR_SECONDARY || !st->recomp_algo[x - 1].name[0])
                return uz_error(-EINVAL, "recompress: no secondary algorithm at priority %s", val);
            r.prio = (uint32_t)x;
        } else if (strcmp(tok, "group") == 0) {
            if (uz_parse_num(val, &x) < 0 || (x != 1 && x != 2 && x != 4 && x != 8))
                return uz_error(-EINVAL, "recompress: group is 1, 2, 4 or 8 pages");
            r.group = (uint32_t)x;
            group_given = true;
        } else if (strcmp(tok, "algo") == 0) {
            const struct uz_codec *c = uz_codec_find(val);
            r.prio = 0;
            for (uint32_t p = 1; c && p <= UZ_NR_SECONDARY; p++)
                if (strcmp(st->recomp_algo[p - 1].name, c->name) == 0)
                    r.prio = p;
            if (!r.prio)
                return uz_error(-EINVAL, "recompress: '%s' is not a secondary algorithm", val);
        } else {
            return uz_error(-EINVAL, "recompress: unknown key '%s'", tok);
        }
    }
    if (r.settle && (group_given || r.mode || r.threshold))
        return uz_error(-EINVAL, "recompress: settle takes every page; give it alone or with "
                        "algo=, priority= or max_pages=");
    if (!dev->initialised)
        return uz_error(-EINVAL, "recompress: device is not initialised");
    r.lo = dev->base;
    r.hi = dev->base + dev->nslots;
    /* uzram's default for idle pages is to settle them (recompress.c,
     * "Settling"): aligned runs of 8, 4 or 2 regrouped with the secondary
     * (cold pages are rarely read, and pages compress far better
     * together), groups recompressed as units, the rest page by page as
     * zram does, shared pages once in their record.  group=1 asks for
     * zram's per-page pass alone. */
    if (!group_given && r.mode == RC_IDLE && r.threshold == 0)
        r.settle = true;
    return uz_recompress(st, &r);
}

static int show_rc_policy(struct uzram *dev, char *buf, size_t size)
{
    return uz_policy_show(dev, false, buf, size);
}

static int show_wb_policy(struct uzram *dev, char *buf, size_t size)
{
    return uz_policy_show(dev, true, buf, size);
}

static int store_policy(struct uzram *dev, const struct val *v, bool wb)
{
    struct uz_policy_cfg c;
    int err = uz_policy_parse(dev, wb, v->s, &c);
    if (err < 0)
        return err;
    pthread_mutex_lock(&dev->policy_lock);
    struct uz_policy_cfg *slot = wb ? &dev->wb_policy : &dev->rc_policy, old = *slot;
    *slot = c;
    pthread_mutex_unlock(&dev->policy_lock);
    err = dev->initialised ? uz_policy_start(dev) : 0;
    if (err < 0) {
        /* the thread could not start: put the old setting back */
        pthread_mutex_lock(&dev->policy_lock);
        *slot = old;
        pthread_mutex_unlock(&dev->policy_lock);
    }
    return err;
}

static int store_rc_policy(struct uzram *dev, const struct val *v)
{
    return store_policy(dev, v, false);
}

static int store_wb_policy(struct uzram *dev, const struct val *v)
{
    return store_policy(dev, v, true);
}

static int show_dedup(struct uzram *dev, char *buf, size_t size)
{
    static const char *names[] = {"0", "1", "auto"};
    int m = atomic_load(&dev->dedup_mode);
    return emit(buf, size, 0, "%s\n", names[m]);
}

/* Any time: it decides how pages written from now on are stored. */
static int store_dedup(struct uzram *dev, const struct val *v)
{
    int mode;
    int err = uz_dedup_parse(v->s, &mode);
    if (err == 0)
        atomic_store(&dev->dedup_mode, mode);
    return err;
}

static int show_dedup_stat(struct uzram *dev, char *buf, size_t size)
{
    return uz_dedup_show(dev, buf, size);
}

static int show_policy_stat(struct uzram *dev, char *buf, size_t size)
{
    struct uz_events *c = &dev->ev;
    int len = emit(buf, size, 0, "recompress: ticks %llu pages %llu max_tick_us %llu\n",
                   (unsigned long long)atomic_load(&c->pol_rc_ticks),
                   (unsigned long long)atomic_load(&c->pol_rc_pages),
                   (unsigned long long)atomic_load(&c->pol_rc_ns_max) / 1000);
    return emit(buf, size, len, "writeback: ticks %llu pages %llu errors %llu max_tick_us %llu\n",
                (unsigned long long)atomic_load(&c->pol_wb_ticks),
                (unsigned long long)atomic_load(&c->pol_wb_pages),
                (unsigned long long)atomic_load(&c->pol_wb_errors),
                (unsigned long long)atomic_load(&c->pol_wb_ns_max) / 1000);
}

static const struct attr attrs[] = {
    {"disksize", 0644, show_disksize, store_disksize, true, true, true},
    {"initstate", 0444, show_initstate, NULL, false, false, true},
    {"reset", 0200, NULL, store_reset, true, true, true},
    {"comp_algorithm", 0644, show_comp_algorithm, store_comp_algorithm, true, true, false},
    {"algorithm_params", 0644, show_algorithm_params, store_algorithm_params, true, true, false},
    {"mem_limit", 0200, NULL, store_mem_limit, false, false, false},
    {"mem_used_max", 0200, NULL, store_mem_used_max, false, false, false},
    {"compact", 0200, NULL, store_compact, false, false, false},
    {"mm_stat", 0444, show_mm_stat, NULL, false, false, true},
    {"io_stat", 0444, show_io_stat, NULL, false, false, true},
    {"debug_stat", 0444, show_debug_stat, NULL, false, false, false},
    {"max_comp_streams", 0644, show_max_comp_streams, store_max_comp_streams, true, false, false},
    {"auto_compact", 0644, show_auto_compact, store_auto_compact, false, false, false},
    {"group_pages", 0644, show_group_pages, store_group_pages, true, true, false},
    {"backing_dev", 0644, show_backing_dev, store_backing_dev, true, true, false},
    {"bd_stat", 0444, show_bd_stat, NULL, false, false, false},
    {"writeback", 0200, NULL, store_writeback, false, false, true},
    {"writeback_limit", 0644, show_writeback_limit, store_writeback_limit, false, false, false},
    {"writeback_limit_enable", 0644, show_writeback_limit_enable, store_writeback_limit_enable, false, false, false},
    {"writeback_compressed", 0644, show_writeback_compressed, store_writeback_compressed, false, false, false},
    {"writeback_batch_size", 0644, show_writeback_batch_size, store_writeback_batch_size, false, false, false},
    {"forward_threshold", 0644, show_forward_threshold, store_forward_threshold, false, false, false},
    {"idle", 0200, NULL, store_idle, false, false, true},
    {"recomp_algorithm", 0644, show_recomp_algorithm, store_recomp_algorithm, true, true, false},
    {"recompress", 0200, NULL, store_recompress, false, false, true},
    {"recompress_policy", 0644, show_rc_policy, store_rc_policy, false, false, false},
    {"writeback_policy", 0644, show_wb_policy, store_wb_policy, false, false, false},
    {"policy_stat", 0444, show_policy_stat, NULL, false, false, false},
    {"dedup", 0644, show_dedup, store_dedup, false, false, false},
    {"dedup_stat", 0444, show_dedup_stat, NULL, false, false, false},
    {"stat", 0444, uz_iostat_show, NULL, false, false, true},   /* the block layer's, src/iostat.c */
};
#define NATTRS (sizeof attrs / sizeof attrs[0])

static const struct attr *find_attr(const char *name)
{
    for (size_t i = 0; i < NATTRS; i++)
        if (strcmp(attrs[i].name, name) == 0)
            return &attrs[i];
    return NULL;
}

const char *uzram_attr_name(unsigned i, unsigned *mode)
{
    if (i >= NATTRS)
        return NULL;
    if (mode)
        *mode = attrs[i].mode;
    return attrs[i].name;
}

/* Does v say what the store st holds for a (so that a store of it
 * through a device changes nothing)?  The value as the attribute shows
 * it, or the same number, size or bound; mem_limit, write-only, by its
 * pages. */
static bool same_as_store(struct uzram *st, const struct attr *a, const struct val *v)
{
    uint64_t x, y;
    if (a->store == store_mem_limit)
        return uz_memparse(v->s, v->len, &x) == 0 &&
               (x + UZRAM_PAGE_SIZE - 1) / UZRAM_PAGE_SIZE == atomic_load(&st->limit_pages);
    if (a->store == store_comp_algorithm) {
        const struct uz_codec *c = uz_codec_find(v->s);
        return c && strcmp(c->name, st->algorithm) == 0;
    }
    struct val shown;
    if (!a->show)
        return false;
    uz_dev_read_lock(st);
    int n = a->show(st, shown.s, sizeof shown.s);
    uz_dev_read_unlock(st);
    if (n <= 0)
        return false;                      /* (-ENOSPC: longer than any value) */
    if (shown.s[n - 1] == '\n')
        shown.s[--n] = 0;
    shown.len = (size_t)n;
    if (shown.len == v->len && memcmp(shown.s, v->s, v->len) == 0)
        return true;
    uint32_t b1, b2;
    if (a->store == store_auto_compact)
        return parse_bound(v, &b1) == 0 && parse_bound(&shown, &b2) == 0 && b1 == b2;
    return parse_u64(v, &x) == 0 && parse_u64(&shown, &y) == 0 && x == y;
}

/* A store of a pool's attribute through one of its devices (see
 * uzram.h, "Pools").  compact and mem_used_max act on the pool (they set
 * nothing).  Every other is a pool-wide setting, refused with EBUSY
 * unless it is the pool's value already (a zram set-up script writes
 * comp_algorithm before disksize): those that shape the store are fixed
 * when the pool is made, the others are set in the pool's own attributes
 * (pool_attrs below), never by one device for all. */
static int store_pool_setting(struct uzram *dev, const struct attr *a, const struct val *v)
{
    struct uzram *st = dev->store;
    if (a->store == store_compact || a->store == store_mem_used_max)
        return uzram_attr_store(st, a->name, v->s, v->len);
    if (a->store == store_comp_algorithm && !uz_codec_find(v->s))
        return uz_error(-EINVAL, "comp_algorithm: unknown algorithm '%s'", v->s);
    if (same_as_store(st, a, v))
        return 0;
    if (a->reshape)
        return uz_error(-EBUSY, "%s: zram%d is a device of a pool, whose devices share the "
                        "pool's setting (set it when the pool is made)", a->name, dev->id);
    return uz_error(-EBUSY, "%s: a pool-wide setting: set it in DIR/ (the pool's own attributes), "
                    "not in DIR/zram%d/", a->name, dev->id);
}

int uzram_attr_show(struct uzram *dev, const char *name, char *buf, size_t size)
{
    const struct attr *a = find_attr(name);
    if (!a)
        return uz_error(-ENOENT, "no attribute '%s'", name);
    if (!a->show || !(a->mode & 0444))
        return uz_error(-EACCES, "%s is write-only", name);
    if (size == 0)
        return -ENOSPC;
    if (uz_in_pool(dev) && !a->own)
        return uzram_attr_show(dev->store, name, buf, size);
    uz_dev_read_lock(dev);   /* (reader-preferring: may nest) */
    int len = a->show(dev, buf, size);
    uz_dev_read_unlock(dev);
    return len;
}

int uzram_attr_store(struct uzram *dev, const char *name, const char *value, size_t len)
{
    const struct attr *a = find_attr(name);
    if (!a)
        return uz_error(-ENOENT, "no attribute '%s'", name);
    if (!a->store)
        return uz_error(-EACCES, "%s is read-only", name);
    struct val v;
    if (len > 0 && value[len - 1] == '\n')
        len--;
    if (len >= sizeof v.s)
        return uz_error(-EINVAL, "%s: value too long", name);
    if (len && (memchr(value, 0, len) || memchr(value, '\n', len)))
        return uz_error(-EINVAL, "%s: value has an embedded NUL or newline", name);
    if (len)
        memcpy(v.s, value, len);
    v.s[len] = 0;
    v.len = len;
    if (uz_in_pool(dev) && !a->own)
        return store_pool_setting(dev, a, &v);
    /* Stores that change the device's shape exclude all I/O; the others
     * (compact, mem_limit, ...) run beside it.  A device of a pool holds
     * the store's lock for reading under its own, as its I/O does. */
    if (a->reshape)
        pthread_rwlock_wrlock(&dev->init_lock);
    else
        pthread_rwlock_rdlock(&dev->init_lock);
    if (uz_in_pool(dev))
        pthread_rwlock_rdlock(&dev->store->init_lock);
    int err = a->closed ? uz_dev_check_closed(dev, name) : 0;
    if (err == 0)
        err = a->store(dev, &v);
    if (uz_in_pool(dev))
        pthread_rwlock_unlock(&dev->store->init_lock);
    pthread_rwlock_unlock(&dev->init_lock);
    return err;
}

/* ------------------------------------------------------ pool attributes */

static int show_pool_stat(struct uzram_pool *p, char *buf, size_t size)
{
    struct uzram_pool_stats s;
    uzram_pool_get_stats(p, &s);
    return emit(buf, size, 0, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                "%llu %llu\n", (unsigned long long)s.devices, (unsigned long long)s.disksize,
                (unsigned long long)s.capacity, (unsigned long long)s.orig_data_size,
                (unsigned long long)s.compr_data_size, (unsigned long long)s.shared_bytes,
                (unsigned long long)s.shared_pages, (unsigned long long)s.saved_bytes,
                (unsigned long long)s.same_pages, (unsigned long long)s.huge_pages,
                (unsigned long long)s.mem_used_total, (unsigned long long)s.mem_limit,
                (unsigned long long)s.mem_used_max, (unsigned long long)s.footprint,
                (unsigned long long)s.bd_count);
}

/* The pool's attributes: the store's, by the device attribute's name and
 * printer, and pool_stat; comp_algorithm is shown only. */
static const struct {
    const char *name;
    unsigned mode;
} pool_attrs[] = {
    {"comp_algorithm", 0444},
    {"mem_limit", 0200},
    {"mem_used_max", 0200},
    {"compact", 0200},
    {"mm_stat", 0444},
    {"debug_stat", 0444},
    {"dedup", 0644},
    {"dedup_stat", 0444},
    {"pool_stat", 0444},
    /* the settings a device of the pool shows but may not store */
    {"auto_compact", 0644},
    {"writeback_limit", 0644},
    {"writeback_limit_enable", 0644},
    {"writeback_compressed", 0644},
    {"writeback_batch_size", 0644},
    {"forward_threshold", 0644},
    {"recompress_policy", 0644},
    {"writeback_policy", 0644},
};
#define NPOOL_ATTRS (sizeof pool_attrs / sizeof pool_attrs[0])

static int find_pool_attr(const char *name, unsigned *mode)
{
    for (size_t i = 0; i < NPOOL_ATTRS; i++)
        if (strcmp(pool_attrs[i].name, name) == 0) {
            *mode = pool_attrs[i].mode;
            return 0;
        }
    return uz_error(-ENOENT, "no pool attribute '%s'", name);
}

const char *uzram_pool_attr_name(unsigned i, unsigned *mode)
{
    if (i >= NPOOL_ATTRS)
        return NULL;
    if (mode)
        *mode = pool_attrs[i].mode;
    return pool_attrs[i].name;
}

int uzram_pool_attr_show(struct uzram_pool *p, const char *name, char *buf, size_t size)
{
    unsigned mode = 0;
    int err = find_pool_attr(name, &mode);
    if (err < 0)
        return err;
    if (!(mode & 0444))
        return uz_error(-EACCES, "%s is write-only", name);
    if (size == 0)
        return -ENOSPC;
    if (strcmp(name, "pool_stat") == 0)
        return show_pool_stat(p, buf, size);
    return uzram_attr_show(uz_pool_store(p), name, buf, size);
}

int uzram_pool_attr_store(struct uzram_pool *p, const char *name, const char *value, size_t len)
{
    unsigned mode = 0;
    int err = find_pool_attr(name, &mode);
    if (err < 0)
        return err;
    if (!(mode & 0200))
        return uz_error(-EACCES, "%s is read-only", name);
    return uzram_attr_store(uz_pool_store(p), name, value, len);
}

const char *uzram_algorithm_name(unsigned i)
{
    const struct uz_codec *c = uz_codec_at(i);
    return c ? c->name : NULL;
}
