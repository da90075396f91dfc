/* SPDX-License-Identifier: BSD-2-Clause */
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
#include "train.h"
#include "error.h"
#include "mem.h"
#include "store_life.h"

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
        len = emit(buf, size, len, strcmp(c->name, dev->store->algorithm) == 0 ? "[%s] " : "%s ",
                   c->name);
    return emit(buf, size, len, "\n");
}

static int store_comp_algorithm(struct uzram *dev, const struct val *v)
{
    const struct uz_codec *c = uz_codec_find(v->s);
    if (!c)
        return uz_error(-EINVAL, "comp_algorithm: unknown algorithm '%s'", v->s);
    if (dev->initialised)
        return uz_error(-EBUSY, "comp_algorithm: device is initialised; reset it first");
    snprintf(dev->store->algorithm, sizeof dev->store->algorithm, "%s", c->name);
    dev->store->level = 0;
    uz_dict_clear(&dev->store->dict);   /* an algorithm's params go with it */
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

/* "algo=NAME level=L dict=PATH" or "priority=N level=L dict=PATH" (level
 * and dict each optional, one of them given): priority 0 (or an algo that
 * is the primary) sets the primary's params, 1..3 a secondary's; neither
 * given is the primary, as zram's default priority is.  Each key given
 * replaces its part; "dict=" with no path drops the dictionary.
 *
 * Invariant (a dictionary outlives every page made with it): a level or a
 * dictionary changes only while the store is not initialised (-EBUSY
 * otherwise, as zram answers), and a store holds no page then; the
 * streams digest the dictionary at init and keep it until the reset that
 * frees the last page (streams.c).  A failed store changes nothing: the
 * file is read and checked (uz_dict_load) before anything is replaced. */
static int store_algorithm_params(struct uzram *dev, const struct val *v)
{
    struct uz_kv kv;
    int err = uz_kv_begin(&kv, v->s, "algorithm_params");
    if (err < 0)
        return err;
    const char *algo = NULL;
    char algo_buf[64];
    char dict_path[256];
    long prio = -1;
    long level = 0;
    bool have_level = false, have_dict = false, any = false;
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
            snprintf(dict_path, sizeof dict_path, "%s", val);
            have_dict = true;
        } else {
            return uz_error(-EINVAL, "algorithm_params: unknown key '%s'", tok);
        }
    }
    if (!any)
        return uz_error(-EINVAL, "algorithm_params: give level=L and/or dict=PATH (for the "
                        "primary), with algo=NAME or priority=N for a secondary");
    if (!algo && prio < 0)
        prio = 0;
    if (prio > UZ_NR_SECONDARY || (prio > 0 && !dev->store->recomp_algo[prio - 1].name[0]))
        return uz_error(-EINVAL, "algorithm_params: no secondary algorithm at priority %ld", prio);
    if (algo) {
        const struct uz_codec *c = uz_codec_find(algo);
        long found = -1;
        if (c && (prio <= 0) && strcmp(c->name, dev->store->algorithm) == 0)
            found = 0;
        for (long p = 1; c && found < 0 && p <= UZ_NR_SECONDARY; p++)
            if ((prio < 0 || prio == p) &&
                strcmp(c->name, dev->store->recomp_algo[p - 1].name) == 0)
                found = p;
        if (found < 0)
            return uz_error(-EINVAL, "algorithm_params: '%s' is not a selected algorithm", algo);
        prio = found;
    }
    if (!have_level && !have_dict)
        return 0;
    const struct uz_codec *c = uz_codec_find(prio > 0 ? dev->store->recomp_algo[prio - 1].name
                                                      : dev->store->algorithm);
    if (have_level && (level < c->level_min || level > c->level_max))
        return uz_error(-EINVAL, "algorithm_params: level %ld is outside %s's %d..%d", level,
                        c->name, c->level_min, c->level_max);
    if (have_dict && !c->dict_check)
        return uz_error(-EINVAL, "algorithm_params: %s takes no dictionary (dict= is for zstd)",
                        c->name);
    if (dev->initialised)
        return uz_error(-EBUSY, "algorithm_params: device is initialised; pages may use its "
                        "dictionary and level: reset it first");
    struct uz_dict_buf *d = prio > 0 ? &dev->store->recomp_algo[prio - 1].dict
                                     : &dev->store->dict;
    if (have_dict && dict_path[0]) {
        err = uz_dict_load(d, c, dict_path, "algorithm_params");
        if (err < 0)
            return err;
    } else if (have_dict) {
        uz_dict_clear(d);
    }
    if (!have_level)
        return 0;
    if (prio > 0)
        dev->store->recomp_algo[prio - 1].level = (int)level;
    else
        dev->store->level = (int)level;
    return 0;
}

/* " dict=PATH id=ID" of a dictionary, or nothing. */
static int emit_dict(char *buf, size_t size, int len, const struct uz_dict_buf *d)
{
    if (!d->len)
        return len;
    return emit(buf, size, len, " dict=%s dict_id=%u", d->path, d->id);
}

static int show_algorithm_params(struct uzram *dev, char *buf, size_t size)
{
    const struct uz_codec *c = uz_codec_find(dev->store->algorithm);
    int len = emit(buf, size, 0, "priority=0 algo=%s level=%d", dev->store->algorithm,
                   dev->store->level ? dev->store->level : c->level_default);
    len = emit(buf, size, emit_dict(buf, size, len, &dev->store->dict), "\n");
    for (int p = 1; p <= UZ_NR_SECONDARY; p++) {
        const struct uz_recomp_algo *sc = &dev->store->recomp_algo[p - 1];
        if (!sc->name[0])
            continue;
        c = uz_codec_find(sc->name);
        len = emit(buf, size, len, "priority=%d algo=%s level=%d", p, sc->name,
                   sc->level ? sc->level
                   : c->level_secondary ? c->level_secondary : c->level_default);
        len = emit(buf, size, emit_dict(buf, size, len, &sc->dict), "\n");
    }
    return len;
}

static int store_mem_limit(struct uzram *dev, const struct val *v)
{
    uint64_t bytes;
    if (uz_memparse(v->s, v->len, &bytes) < 0)
        return uz_error(-EINVAL, "mem_limit: '%s' is not a size (0 = no limit)", v->s);
    atomic_store(&dev->store->limit_pages, (bytes + UZRAM_PAGE_SIZE - 1) / UZRAM_PAGE_SIZE);
    return 0;
}

static int store_mem_used_max(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x != 0)
        return uz_error(-EINVAL, "mem_used_max: only 0 may be written (resets the peak)");
    if (dev->initialised)
        uz_mem_used_max_reset(dev->store);
    return 0;
}

static int store_compact(struct uzram *dev, const struct val *v)
{
    if (!dev->initialised)
        return uz_error(-EINVAL, "compact: device is not initialised");
    dev->store->aops->compact(dev->store->alloc, 0);
    uz_mem_trim();      /* the heap the store's buffers and streams left */
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
                   (unsigned long long)atomic_load(&dev->store->ev.writestall),
                   (unsigned long long)atomic_load(&dev->store->ev.miss_free));
    len = emit(buf, size, len, "footprint: %llu slot_table: %llu meta: %llu streams: %llu\n",
               (unsigned long long)st.footprint, (unsigned long long)st.slot_table_bytes,
               (unsigned long long)st.meta_bytes,
               (unsigned long long)(dev->initialised ? dev->store->streams.bytes : 0));
    len = emit(buf, size, len, "auto_compact_steps: %llu auto_compact_pause_max_us: %llu\n",
               (unsigned long long)st.compact_steps,
               (unsigned long long)(st.compact_pause_max_ns / 1000));
    len = emit(buf, size, len, "group_writes: %llu group_fallbacks: %llu group_breaks: %llu\n",
               (unsigned long long)atomic_load(&dev->store->ev.group_writes),
               (unsigned long long)atomic_load(&dev->store->ev.group_fallbacks),
               (unsigned long long)atomic_load(&dev->store->ev.group_breaks));
    len = emit(buf, size, len, "recomp_groups: %llu settle_groups: %llu settle_pages: %llu "
               "settle_cpu_ms: %llu settle_yields: %llu\n",
               (unsigned long long)atomic_load(&dev->store->ev.recomp_groups),
               (unsigned long long)atomic_load(&dev->store->ev.settle_groups),
               (unsigned long long)atomic_load(&dev->store->ev.settle_pages),
               (unsigned long long)(atomic_load(&dev->store->ev.pol_rc_cpu_ns) / 1000000),
               (unsigned long long)atomic_load(&dev->store->ev.pol_rc_yields));
    return emit(buf, size, len, "forwarded: %llu written_back: %llu writeback_failed: %llu "
                "bd_failed: %llu recompressed: %llu recomp_incompressible: %llu\n",
                (unsigned long long)st.forwarded, (unsigned long long)st.written_back,
                (unsigned long long)atomic_load(&dev->store->ev.wb_failed),
                (unsigned long long)st.bd_failed, (unsigned long long)st.recompressed,
                (unsigned long long)st.recomp_incomp);
}

static int show_max_comp_streams(struct uzram *dev, char *buf, size_t size)
{
    struct uz_store *st = dev->store;
    return emit(buf, size, 0, "%u\n", dev->initialised ? st->streams.n : st->nstreams);
}

/* zram accepts and ignores writes here (streams are per CPU). */
static int store_max_comp_streams(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x == 0 || x > 1024)
        return uz_error(-EINVAL, "max_comp_streams: write a number from 1 to 1024");
    if (!dev->initialised)
        dev->store->nstreams = (unsigned)x;
    return 0;
}

/* auto_compact: the footprint bound of automatic compaction, a decimal
 * of at most three places (thousandths of compr_data_size), at least 1;
 * "0" turns it off. */
static int show_auto_compact(struct uzram *dev, char *buf, size_t size)
{
    uint32_t b = atomic_load(&dev->store->compact_bound);
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
        return uz_error(-EINVAL, "auto_compact: bound %s is below 1 (or write 0 to turn it off)",
                        v->s);
    atomic_store(&dev->store->compact_bound, pm);
    return 0;
}

/* group_pages: 1 (off), 2, 4, 8 or auto (each write chooses: io.c), while
 * uninitialised (as comp_algorithm). */
static int show_group_pages(struct uzram *dev, char *buf, size_t size)
{
    if (dev->store->group_auto)
        return emit(buf, size, 0, "auto\n");
    return emit(buf, size, 0, "%u\n", dev->store->group_pages);
}

static int store_group_pages(struct uzram *dev, const struct val *v)
{
    uint32_t x;
    if (uz_parse_group(v->s, true, &x) < 0)
        return uz_error(-EINVAL, "group_pages: '%s': write 1 (off), 2, 4, 8 or auto", v->s);
    bool automatic = x == UZRAM_GROUP_AUTO;
    if (dev->initialised)
        return uz_error(-EBUSY, "group_pages: device is initialised; reset it first");
    dev->store->group_auto = automatic;
    dev->store->group_pages = automatic ? UZ_GROUP_MAX : (uint32_t)x;
    return 0;
}

/* ------------------------------------------------ beyond RAM */

static int show_backing_dev(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%s\n", dev->store->bd ? dev->store->bd->path : "none");
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
    uz_backing_close(dev->store->bd);
    dev->store->bd = b;
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
    return emit(buf, size, 0, "%llu\n", (unsigned long long)atomic_load(&dev->store->wb_limit));
}

static int store_writeback_limit(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0)
        return uz_error(-EINVAL, "writeback_limit: write a number of 4 KiB pages");
    atomic_store(&dev->store->wb_limit, x);
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
    return show_bool(&dev->store->wb_limit_enable, buf, size);
}

static int store_writeback_limit_enable(struct uzram *dev, const struct val *v)
{
    return store_bool(&dev->store->wb_limit_enable, v, "writeback_limit_enable");
}

static int show_writeback_compressed(struct uzram *dev, char *buf, size_t size)
{
    return show_bool(&dev->store->wb_compressed, buf, size);
}

static int store_writeback_compressed(struct uzram *dev, const struct val *v)
{
    return store_bool(&dev->store->wb_compressed, v, "writeback_compressed");
}

/* zram's writeback_batch_size: pages a batch of a writeback run holds,
 * where the backing device takes several at once (an NBD remote, up to
 * three batches in flight; a local file goes page by page). */
static int show_writeback_batch_size(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%u\n", atomic_load(&dev->store->wb_batch));
}

static int store_writeback_batch_size(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x < 1 || x > UZ_WB_BATCH_MAX)
        return uz_error(-EINVAL, "writeback_batch_size: write 1 to %d pages", UZ_WB_BATCH_MAX);
    atomic_store(&dev->store->wb_batch, (uint32_t)x);
    return 0;
}

static int show_forward_threshold(struct uzram *dev, char *buf, size_t size)
{
    return emit(buf, size, 0, "%u\n", atomic_load(&dev->store->forward_threshold));
}

static int store_forward_threshold(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x > UZRAM_PAGE_SIZE)
        return uz_error(-EINVAL, "forward_threshold: bytes 0..4096 (0 = off)");
    atomic_store(&dev->store->forward_threshold, (uint32_t)x);
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

/* "PATH [size=BYTES]": train a zstd dictionary from the device's pages,
 * idle ones first, and write it to PATH (absolute: a frontend's working
 * directory is not the user's).  For algorithm_params dict=PATH. */
static int store_train_dict(struct uzram *dev, const struct val *v)
{
    struct uz_kv kv;
    int err = uz_kv_begin(&kv, v->s, "train_dict");
    if (err < 0)
        return err;
    char path[256] = "";
    uint64_t size = UZ_TRAIN_DICT_DEFAULT;
    while (uz_kv_next(&kv)) {
        if (!kv.val && !path[0]) {
            snprintf(path, sizeof path, "%s", kv.key);
        } else if (kv.val && strcmp(kv.key, "size") == 0) {
            if (uz_memparse(kv.val, strlen(kv.val), &size) < 0)
                return uz_error(-EINVAL, "train_dict: size '%s' is not a size", kv.val);
        } else {
            return uz_error(-EINVAL, "train_dict: '%s': give PATH [size=BYTES]", kv.word);
        }
    }
    if (path[0] != '/')
        return uz_error(-EINVAL, "train_dict: give the absolute path of the file to write");
    if (!dev->initialised)
        return uz_error(-EINVAL, "train_dict: device is not initialised");
    pthread_mutex_lock(&dev->store->policy_lock);
    uint32_t age = dev->store->rc_policy.on ? dev->store->rc_policy.idle_secs : 0;
    pthread_mutex_unlock(&dev->store->policy_lock);
    struct uz_train_out out;
    return uz_train(dev->store, dev->base, dev->base + dev->nslots, age,
                    size > UZ_TRAIN_DICT_MAX ? UZ_TRAIN_DICT_MAX + 1 : (size_t)size, path, &out);
}

/* As zram: one line per secondary, "#P: " and the algorithm list with the
 * chosen one in brackets. */
static int show_recomp_algorithm(struct uzram *dev, char *buf, size_t size)
{
    int len = 0;
    buf[0] = 0;
    for (int p = 1; p <= UZ_NR_SECONDARY; p++) {
        if (!dev->store->recomp_algo[p - 1].name[0])
            continue;
        len = emit(buf, size, len, "#%d: ", p);
        const struct uz_codec *c;
        for (unsigned i = 0; (c = uz_codec_at(i)) != NULL; i++)
            len = emit(buf, size, len,
                       strcmp(c->name, dev->store->recomp_algo[p - 1].name) == 0 ? "[%s] " : "%s ",
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
    struct uz_recomp_algo *ra = &dev->store->recomp_algo[prio - 1];
    snprintf(ra->name, sizeof ra->name, "%s", c->name);
    dev->store->recomp_algo[prio - 1].level = 0;
    uz_dict_clear(&dev->store->recomp_algo[prio - 1].dict);
    return 0;
}

/* "type=idle|huge|huge_idle threshold=BYTES max_pages=N algo=NAME|priority=N
 * group=K" */
static int store_recompress(struct uzram *dev, const struct val *v)
{
    struct uz_store *st = dev->store;   /* the secondaries are the store's */
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
            if (uz_parse_num(val, &x) < 0 || x < 1 || x > UZ_NR_SECONDARY ||
                !st->recomp_algo[x - 1].name[0])
                return uz_error(-EINVAL, "recompress: no secondary algorithm at priority %s", val);
            r.prio = (uint32_t)x;
        } else if (strcmp(tok, "group") == 0) {
            if (uz_parse_group(val, false, &r.group) < 0)
                return uz_error(-EINVAL, "recompress: group is 1, 2, 4 or 8 pages");
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
    return uz_policy_show(dev->store, false, buf, size);
}

static int show_wb_policy(struct uzram *dev, char *buf, size_t size)
{
    return uz_policy_show(dev->store, true, buf, size);
}

static int store_policy(struct uzram *dev, const struct val *v, bool wb)
{
    struct uz_policy_cfg c;
    int err = uz_policy_parse(dev->store, wb, v->s, &c);
    if (err < 0)
        return err;
    pthread_mutex_lock(&dev->store->policy_lock);
    struct uz_policy_cfg *slot = wb ? &dev->store->wb_policy : &dev->store->rc_policy, old = *slot;
    *slot = c;
    pthread_mutex_unlock(&dev->store->policy_lock);
    err = dev->initialised ? uz_policy_start(dev->store) : 0;
    if (err < 0) {
        /* the thread could not start: put the old setting back */
        pthread_mutex_lock(&dev->store->policy_lock);
        *slot = old;
        pthread_mutex_unlock(&dev->store->policy_lock);
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
    int m = atomic_load(&dev->store->dedup_mode);
    return emit(buf, size, 0, "%s\n", names[m]);
}

/* Any time: it decides how pages written from now on are stored. */
static int store_dedup(struct uzram *dev, const struct val *v)
{
    int mode;
    int err = uz_dedup_parse(v->s, &mode);
    if (err == 0)
        atomic_store(&dev->store->dedup_mode, mode);
    return err;
}

static int show_dedup_stat(struct uzram *dev, char *buf, size_t size)
{
    return uz_dedup_show(dev->store, buf, size);
}

static int show_policy_stat(struct uzram *dev, char *buf, size_t size)
{
    struct uz_events *c = &dev->store->ev;
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
    {.name = "disksize", .mode = 0644, .show = show_disksize, .store = store_disksize,
     .reshape = true, .closed = true, .own = true},
    {.name = "initstate", .mode = 0444, .show = show_initstate, .own = true},
    {.name = "reset", .mode = 0200, .store = store_reset, .reshape = true, .closed = true,
     .own = true},
    {.name = "comp_algorithm", .mode = 0644, .show = show_comp_algorithm,
     .store = store_comp_algorithm, .reshape = true, .closed = true},
    {.name = "algorithm_params", .mode = 0644, .show = show_algorithm_params,
     .store = store_algorithm_params, .reshape = true, .closed = true},
    {.name = "mem_limit", .mode = 0200, .store = store_mem_limit},
    {.name = "mem_used_max", .mode = 0200, .store = store_mem_used_max},
    {.name = "compact", .mode = 0200, .store = store_compact},
    {.name = "mm_stat", .mode = 0444, .show = show_mm_stat, .own = true},
    {.name = "io_stat", .mode = 0444, .show = show_io_stat, .own = true},
    {.name = "debug_stat", .mode = 0444, .show = show_debug_stat},
    {.name = "max_comp_streams", .mode = 0644, .show = show_max_comp_streams,
     .store = store_max_comp_streams, .reshape = true},
    {.name = "auto_compact", .mode = 0644, .show = show_auto_compact, .store = store_auto_compact},
    {.name = "group_pages", .mode = 0644, .show = show_group_pages, .store = store_group_pages,
     .reshape = true, .closed = true},
    {.name = "backing_dev", .mode = 0644, .show = show_backing_dev, .store = store_backing_dev,
     .reshape = true, .closed = true},
    {.name = "bd_stat", .mode = 0444, .show = show_bd_stat},
    {.name = "writeback", .mode = 0200, .store = store_writeback, .own = true},
    {.name = "writeback_limit", .mode = 0644, .show = show_writeback_limit,
     .store = store_writeback_limit},
    {.name = "writeback_limit_enable", .mode = 0644, .show = show_writeback_limit_enable,
     .store = store_writeback_limit_enable},
    {.name = "writeback_compressed", .mode = 0644, .show = show_writeback_compressed,
     .store = store_writeback_compressed},
    {.name = "writeback_batch_size", .mode = 0644, .show = show_writeback_batch_size,
     .store = store_writeback_batch_size},
    {.name = "forward_threshold", .mode = 0644, .show = show_forward_threshold,
     .store = store_forward_threshold},
    {.name = "idle", .mode = 0200, .store = store_idle, .own = true},
    {.name = "recomp_algorithm", .mode = 0644, .show = show_recomp_algorithm,
     .store = store_recomp_algorithm, .reshape = true, .closed = true},
    {.name = "recompress", .mode = 0200, .store = store_recompress, .own = true},
    {.name = "train_dict", .mode = 0200, .store = store_train_dict, .own = true},
    {.name = "recompress_policy", .mode = 0644, .show = show_rc_policy, .store = store_rc_policy},
    {.name = "writeback_policy", .mode = 0644, .show = show_wb_policy, .store = store_wb_policy},
    {.name = "policy_stat", .mode = 0444, .show = show_policy_stat},
    {.name = "dedup", .mode = 0644, .show = show_dedup, .store = store_dedup},
    {.name = "dedup_stat", .mode = 0444, .show = show_dedup_stat},
    /* the block layer's, src/iostat.c */
    {.name = "stat", .mode = 0444, .show = uz_iostat_show, .own = true},
};
#define NATTRS (sizeof attrs / sizeof attrs[0])

static const struct attr *find_attr(const char *name)
{
    for (size_t i = 0; i < NATTRS; i++)
        if (strcmp(attrs[i].name, name) == 0)
            return &attrs[i];
    return NULL;
}

/* Settings of struct uzram_config that zram has no attribute for: rows
 * of their own, parsed here as the attributes are, but no file
 * (uzram_attr_name does not list them, uzram_attr_show/store do not find
 * them). */
static int store_allocator(struct uzram *dev, const struct val *v)
{
    const struct uz_alloc_ops *ops = uz_alloc_find(v->s);
    if (!ops)
        return uz_error(-EINVAL, "allocator: unknown allocator '%s'", v->s);
    if (dev->initialised)
        return uz_error(-EBUSY, "allocator: device is initialised; reset it first");
    snprintf(dev->store->allocator_name, sizeof dev->store->allocator_name, "%s", ops->name);
    return 0;
}

static int store_huge_threshold(struct uzram *dev, const struct val *v)
{
    uint64_t x;
    if (parse_u64(v, &x) < 0 || x > UZRAM_PAGE_SIZE)
        return uz_error(-EINVAL, "huge_threshold: '%s': bytes 0..4096 (0 = the allocator's)", v->s);
    if (dev->initialised)
        return uz_error(-EBUSY, "huge_threshold: device is initialised; reset it first");
    dev->store->huge_threshold_cfg = (uint32_t)x;
    return 0;
}

static const struct attr config_rows[] = {
    {.name = "allocator", .store = store_allocator, .reshape = true, .closed = true},
    {.name = "huge_threshold", .store = store_huge_threshold, .reshape = true, .closed = true},
};

/* The row of a setting: an attribute, or a config-only row. */
static const struct attr *find_setting(const char *name)
{
    const struct attr *a = find_attr(name);
    for (size_t i = 0; !a && i < sizeof config_rows / sizeof config_rows[0]; i++)
        if (strcmp(config_rows[i].name, name) == 0)
            a = &config_rows[i];
    return a;
}

/* Store value into setting name of a device nobody else can reach yet
 * (no locks): its row's own parser.  0 or the row's error. */
static int set_setting(struct uzram *dev, const char *name, const char *value)
{
    const struct attr *a = find_setting(name);
    struct val v;
    size_t len = strlen(value);
    if (len >= sizeof v.s)
        return uz_error(-EINVAL, "%s: value too long", name);
    memcpy(v.s, value, len + 1);
    v.len = len;
    return a->store(dev, &v);
}

/* The fields of cfg that are set, each through its row, in the order a
 * zram set-up script writes them (algorithms before their levels, all
 * before disksize); disksize only if with_size. */
static int apply_config(struct uzram *dev, const struct uzram_config *cfg, bool with_size)
{
    char b[64];
    int err = 0;
#define SET(name, value) do { if (err == 0) err = set_setting(dev, name, value); } while (0)
#define SETF(name, ...) do { snprintf(b, sizeof b, __VA_ARGS__); SET(name, b); } while (0)
    if (cfg->allocator)
        SET("allocator", cfg->allocator);
    if (cfg->algorithm)
        SET("comp_algorithm", cfg->algorithm);
    if (cfg->level)
        SETF("algorithm_params", "level=%d", cfg->level);
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        if (cfg->recomp_algorithm[i]) {
            char r[160];
            snprintf(r, sizeof r, "algo=%.100s priority=%d", cfg->recomp_algorithm[i], i + 1);
            SET("recomp_algorithm", r);
        }
    if (cfg->huge_threshold)
        SETF("huge_threshold", "%u", cfg->huge_threshold);
    if (cfg->streams)
        SETF("max_comp_streams", "%u", cfg->streams);
    if (cfg->compact_bound == UZRAM_COMPACT_OFF)
        SET("auto_compact", "0");
    else if (cfg->compact_bound)
        SETF("auto_compact", "%u.%03u", cfg->compact_bound / 1000, cfg->compact_bound % 1000);
    if (cfg->group_pages == UZRAM_GROUP_AUTO)
        SET("group_pages", "auto");
    else if (cfg->group_pages > 1)
        SETF("group_pages", "%u", cfg->group_pages);
    if (cfg->mem_limit)
        SETF("mem_limit", "%llu", (unsigned long long)cfg->mem_limit);
    if (cfg->dedup)
        SET("dedup", cfg->dedup);
    /* the default, settling, with no secondary to settle with: off */
    bool no_secondary = true;
    for (int i = 0; i < UZ_NR_SECONDARY; i++)
        no_secondary &= !cfg->recomp_algorithm[i];
    if (cfg->recompress_policy &&
        !(no_secondary && strcmp(cfg->recompress_policy, UZRAM_SETTLE) == 0))
        SET("recompress_policy", cfg->recompress_policy);
    if (cfg->writeback_policy)
        SET("writeback_policy", cfg->writeback_policy);
    if (cfg->backing_dev && cfg->backing_dev[0])
        SET("backing_dev", cfg->backing_dev);
    if (cfg->writeback_compressed)
        SET("writeback_compressed", "1");
    if (cfg->forward_threshold)
        SETF("forward_threshold", "%u", cfg->forward_threshold);
    if (with_size && cfg->disksize)
        SETF("disksize", "%llu", (unsigned long long)cfg->disksize);
#undef SET
#undef SETF
    return err;
}

/* cfg as this library's whole struct in *full (fields past the caller's
 * size keep their defaults).  0 or -EINVAL. */
static int full_config(const struct uzram_config *cfg, struct uzram_config *full, const char *who)
{
    uzram_config_init(full);
    if (!cfg)
        return 0;
    if (cfg->size == 0)
        return uz_error(-EINVAL, "%s: the config was not made by uzram_config_init", who);
    if (cfg->size > sizeof *full)
        return uz_error(-EINVAL, "%s: the config is from a newer uzram.h (%u bytes, this library "
                        "knows %zu)", who, cfg->size, sizeof *full);
    memcpy(full, cfg, cfg->size);
    full->size = sizeof *full;
    return 0;
}

static int uzram_create_impl(const struct uzram_config *cfg, struct uzram **out)
{
    struct uzram_config c;
    int err = full_config(cfg, &c, "uzram_create");
    if (err < 0)
        return err;
    struct uz_store *st;
    err = uz_store_create(1, &st);
    if (err < 0)
        return err;
    struct uzram *dev;
    err = uz_dev_new(st, false, &dev);
    if (err < 0) {
        uz_store_destroy(st);
        return err;
    }
    err = apply_config(dev, &c, true);
    if (err < 0) {
        (void)uz_dev_remove(dev, false);   /* (and its store) */
        return err;
    }
    *out = dev;
    return 0;
}

int uzram_create(const struct uzram_config *cfg, struct uzram **out)
{
    uz_error_clear();
    return uz_error_done(uzram_create_impl(cfg, out), "uzram_create");
}

static int uzram_pool_create_impl(const struct uzram_config *cfg, struct uzram_pool **out)
{
    struct uzram_config c;
    int err = full_config(cfg, &c, "uzram_pool_create");
    if (err < 0)
        return err;
    struct uzram_pool *p;
    err = uz_pool_new(c.disksize, &p);
    if (err < 0)
        return err;
    err = apply_config(uz_pool_view(p), &c, false);
    if (err == 0)
        err = uz_pool_start(p);
    if (err < 0) {
        (void)uzram_pool_destroy(p);
        return err;
    }
    *out = p;
    return 0;
}

int uzram_pool_create(const struct uzram_config *cfg, struct uzram_pool **out)
{
    uz_error_clear();
    return uz_error_done(uzram_pool_create_impl(cfg, out), "uzram_pool_create");
}

/* uzram_config_set's names: the attributes' and config-only rows', and
 * the config's own field names for them. */
static const struct { const char *alias, *name; } setting_alias[] = {
    {"size", "disksize"}, {"algorithm", "comp_algorithm"}, {"streams", "max_comp_streams"},
    {"compact_bound", "auto_compact"}, {"level", "algorithm_params"},
};

static int uzram_config_set_impl(struct uzram_config *cfg, const char *name, const char *value)
{
    if (!cfg || cfg->size == 0 || cfg->size > sizeof *cfg)
        return uz_error(-EINVAL, "uzram_config_set: the config was not made by uzram_config_init");
    if (!name || !value)
        return uz_error(-EINVAL, "uzram_config_set: no name or no value");
    for (size_t i = 0; i < sizeof setting_alias / sizeof setting_alias[0]; i++)
        if (strcmp(name, setting_alias[i].alias) == 0)
            name = setting_alias[i].name;
    const struct attr *a = find_setting(name);
    static const char *const actions[] = {"reset", "compact", "mem_used_max", "writeback",
                                          "idle", "recompress"};
    for (size_t i = 0; a && i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(name, actions[i]) == 0)
            a = NULL;   /* an action, not a setting */
    if (!a || !a->store)
        return uz_error(-ENOENT, "uzram_config_set: '%s' is not a setting", name);
    /* the value through its row, on a scratch device of a store of its
     * own that is never sized: the one parser, and what it keeps is the
     * value as the row understood it */
    struct uz_store *st;
    int err = uz_store_create(1, &st);
    if (err < 0)
        return err;
    struct uzram *dev;
    err = uz_dev_new(st, false, &dev);
    if (err < 0) {
        uz_store_destroy(st);
        return err;
    }
    /* the secondaries the config names, for the settings that refer to
     * them (policies' algo=, algorithm_params) */
    for (int i = 0; err == 0 && i < UZ_NR_SECONDARY; i++)
        if (cfg->recomp_algorithm[i]) {
            char r[160];
            snprintf(r, sizeof r, "algo=%.100s priority=%d", cfg->recomp_algorithm[i], i + 1);
            err = set_setting(dev, "recomp_algorithm", r);
        }
    bool level = strcmp(name, "algorithm_params") == 0 && strchr(value, '=') == NULL;
    char lv[64];
    if (level) {   /* "level" N: the primary's level */
        snprintf(lv, sizeof lv, "level=%.50s", value);
        if (err == 0 && cfg->algorithm)
            err = set_setting(dev, "comp_algorithm", cfg->algorithm);
    }
    uint64_t size = 0;
    if (err == 0 && strcmp(name, "disksize") == 0) {
        /* sized on use; here only the word */
        if (uz_memparse(value, strlen(value), &size) < 0)
            err = uz_error(-EINVAL, "disksize: '%s' is not a size (e.g. 512M, 1G)", value);
        else if (size == 0)
            err = uz_error(-EINVAL, "disksize: must be more than 0");
    } else if (err == 0 && strcmp(name, "backing_dev") == 0) {
        /* opened on use, not here */
        if (!value[0])
            err = uz_error(-EINVAL, "backing_dev: give a path");
    } else if (err == 0) {
        err = set_setting(dev, name, level ? lv : value);
    }
    struct uz_store *s = dev->store;
    if (err == 0) {
        if (strcmp(name, "disksize") == 0)
            cfg->disksize = size;
        else if (strcmp(name, "comp_algorithm") == 0)
            cfg->algorithm = value;
        else if (strcmp(name, "allocator") == 0)
            cfg->allocator = value;
        else if (strcmp(name, "algorithm_params") == 0 && level)
            cfg->level = s->level;
        else if (strcmp(name, "huge_threshold") == 0)
            cfg->huge_threshold = s->huge_threshold_cfg;
        else if (strcmp(name, "max_comp_streams") == 0)
            cfg->streams = s->nstreams;
        else if (strcmp(name, "auto_compact") == 0)
            cfg->compact_bound = s->compact_bound ? s->compact_bound : UZRAM_COMPACT_OFF;
        else if (strcmp(name, "group_pages") == 0)
            cfg->group_pages = s->group_auto ? UZRAM_GROUP_AUTO : s->group_pages;
        else if (strcmp(name, "mem_limit") == 0)
            cfg->mem_limit = atomic_load(&s->limit_pages) * UZRAM_PAGE_SIZE;
        else if (strcmp(name, "dedup") == 0)
            cfg->dedup = value;
        else if (strcmp(name, "recompress_policy") == 0)
            cfg->recompress_policy = value;
        else if (strcmp(name, "writeback_policy") == 0)
            cfg->writeback_policy = value;
        else if (strcmp(name, "backing_dev") == 0)
            cfg->backing_dev = value;
        else if (strcmp(name, "writeback_compressed") == 0)
            cfg->writeback_compressed = atomic_load(&s->wb_compressed);
        else if (strcmp(name, "forward_threshold") == 0)
            cfg->forward_threshold = atomic_load(&s->forward_threshold);
        else
            err = uz_error(-ENOENT, "uzram_config_set: '%s' is not a setting of struct "
                           "uzram_config (set it with uzram_attr_store)", name);
    }
    (void)uz_dev_remove(dev, false);
    return err;
}

int uzram_config_set(struct uzram_config *cfg, const char *name, const char *value)
{
    uz_error_clear();
    return uz_error_done(uzram_config_set_impl(cfg, name, value), "uzram_config_set");
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
               (x + UZRAM_PAGE_SIZE - 1) / UZRAM_PAGE_SIZE == atomic_load(&st->store->limit_pages);
    if (a->store == store_comp_algorithm) {
        const struct uz_codec *c = uz_codec_find(v->s);
        return c && strcmp(c->name, st->store->algorithm) == 0;
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
    struct uzram *st = uz_pool_view(dev->pool);
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

static int uzram_attr_show_impl(struct uzram *dev, const char *name, char *buf, size_t size)
{
    uz_error_clear();
    const struct attr *a = find_attr(name);
    if (!a)
        return uz_error(-ENOENT, "no attribute '%s'", name);
    if (!a->show || !(a->mode & 0444))
        return uz_error(-EACCES, "%s is write-only", name);
    if (size == 0)
        return uz_error(-ENOSPC, "%s: no room in a buffer of 0 bytes", name);
    if (uz_in_pool(dev) && !a->own)
        return uzram_attr_show(uz_pool_view(dev->pool), name, buf, size);
    uz_dev_read_lock(dev);   /* (reader-preferring: may nest) */
    int len = a->show(dev, buf, size);
    uz_dev_read_unlock(dev);
    if (len == -ENOSPC)
        return uz_error(-ENOSPC, "%s: the value does not fit in %zu bytes", name,
                        size);
    return len;
}

int uzram_attr_show(struct uzram *dev, const char *name, char *buf, size_t size)
{
    uz_error_clear();
    return uz_error_done(uzram_attr_show_impl(dev, name, buf, size), "uzram_attr_show");
}

static int uzram_attr_store_impl(struct uzram *dev, const char *name, const char *value, size_t len)
{
    uz_error_clear();
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
     * (compact, mem_limit, ...) run beside it (device.h, uz_dev_write_lock). */
    if (a->reshape)
        uz_dev_write_lock(dev);
    else
        uz_dev_read_lock(dev);
    int err = a->closed ? uz_dev_check_closed(dev, name) : 0;
    if (err == 0)
        err = a->store(dev, &v);
    uz_dev_read_unlock(dev);   /* (either) */
    return err;
}

int uzram_attr_store(struct uzram *dev, const char *name, const char *value, size_t len)
{
    uz_error_clear();
    return uz_error_done(uzram_attr_store_impl(dev, name, value, len), "uzram_attr_store");
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

static int uzram_pool_attr_show_impl(struct uzram_pool *p, const char *name, char *buf, size_t size)
{
    uz_error_clear();
    unsigned mode = 0;
    int err = find_pool_attr(name, &mode);
    if (err < 0)
        return err;
    if (!(mode & 0444))
        return uz_error(-EACCES, "%s is write-only", name);
    if (size == 0)
        return uz_error(-ENOSPC, "%s: no room in a buffer of 0 bytes", name);
    if (strcmp(name, "pool_stat") == 0)
        return show_pool_stat(p, buf, size);
    return uzram_attr_show(uz_pool_view(p), name, buf, size);
}

int uzram_pool_attr_show(struct uzram_pool *p, const char *name, char *buf, size_t size)
{
    uz_error_clear();
    return uz_error_done(uzram_pool_attr_show_impl(p, name, buf, size), "uzram_pool_attr_show");
}

static int uzram_pool_attr_store_impl(struct uzram_pool *p, const char *name, const char *value,
                                      size_t len)
{
    uz_error_clear();
    unsigned mode = 0;
    int err = find_pool_attr(name, &mode);
    if (err < 0)
        return err;
    if (!(mode & 0200))
        return uz_error(-EACCES, "%s is read-only", name);
    return uzram_attr_store(uz_pool_view(p), name, value, len);
}

int uzram_pool_attr_store(struct uzram_pool *p, const char *name, const char *value, size_t len)
{
    uz_error_clear();
    return uz_error_done(uzram_pool_attr_store_impl(p, name, value, len), "uzram_pool_attr_store");
}

const char *uzram_algorithm_name(unsigned i)
{
    const struct uz_codec *c = uz_codec_at(i);
    return c ? c->name : NULL;
}
