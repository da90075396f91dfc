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
 * Values are parsed strictly: a number may be followed by one newline (and
 * nothing else), as `echo VALUE > file` writes it.  A failed store changes
 * nothing.
 */
#define _GNU_SOURCE
#include "attr.h"
#include "error.h"
#include "store.h"

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
};

/* ----------------------------------------------------------- parsing */

int uz_memparse(const char *s, size_t len, uint64_t *out)
{
    char tmp[64];
    if (len > 0 && s[len - 1] == '\n')
        len--;
    if (len == 0 || len >= sizeof tmp || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 0);
    if (errno)
        return -EINVAL;
    int shift = 0;
    switch (*end) {
    case 'E': case 'e': shift += 10; /* fall through */
    case 'P': case 'p': shift += 10; /* fall through */
    case 'T': case 't': shift += 10; /* fall through */
    case 'G': case 'g': shift += 10; /* fall through */
    case 'M': case 'm': shift += 10; /* fall through */
    case 'K': case 'k': shift += 10; end++; break;
    default: break;
    }
    if (*end != 0)
        return -EINVAL;
    if (shift && v > (~0ull >> shift))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

/* An unsigned decimal integer and nothing else (kstrtoull base 10). */
static int parse_u64(const struct val *v, uint64_t *out)
{
    if (v->len == 0 || v->len > 20)
        return -EINVAL;
    uint64_t x = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (!isdigit((unsigned char)v->s[i]))
            return -EINVAL;
        unsigned d = (unsigned)(v->s[i] - '0');
        if (x > (~0ull - d) / 10)
            return -EINVAL;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
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
    uz_dev_teardown(dev);
    atomic_store(&dev->limit_pages, 0);   /* as zram's reset does */
    return 0;
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

/* "algo=NAME level=L" or "priority=0 level=L" (only the primary, priority
 * 0, exists until recompression comes). */
static int store_algorithm_params(struct uzram *dev, const struct val *v)
{
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", v->s);
    const char *algo = NULL;
    long prio = -1;
    long level = 0;
    bool have_level = false;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return uz_error(-EINVAL, "algorithm_params: '%s' is not key=value", tok);
        *eq = 0;
        const char *val = eq + 1;
        char *end;
        if (strcmp(tok, "algo") == 0) {
            algo = val;
        } else if (strcmp(tok, "priority") == 0) {
            prio = strtol(val, &end, 10);
            if (*val == 0 || *end || prio < 0)
                return uz_error(-EINVAL, "algorithm_params: bad priority '%s'", val);
        } else if (strcmp(tok, "level") == 0) {
            level = strtol(val, &end, 10);
            if (*val == 0 || *end)
                return uz_error(-EINVAL, "algorithm_params: bad level '%s'", val);
            have_level = true;
        } else if (strcmp(tok, "dict") == 0) {
            return uz_error(-EINVAL, "algorithm_params: dictionaries are not supported");
        } else {
            return uz_error(-EINVAL, "algorithm_params: unknown key '%s'", tok);
        }
    }
    if (!algo && prio < 0)
        return uz_error(-EINVAL, "algorithm_params: give algo=NAME or priority=N");
    if (prio > 0)
        return uz_error(-EINVAL, "algorithm_params: no secondary algorithm at priority %ld", prio);
    if (algo) {
        const struct uz_codec *c = uz_codec_find(algo);
        if (!c || strcmp(c->name, dev->algorithm) != 0)
            return uz_error(-EINVAL, "algorithm_params: '%s' is not the selected algorithm", algo);
    }
    if (!have_level)
        return 0;
    const struct uz_codec *c = uz_codec_find(dev->algorithm);
    if (level < c->level_min || level > c->level_max)
        return uz_error(-EINVAL, "algorithm_params: level %ld is outside %s's %d..%d", level,
                        c->name, c->level_min, c->level_max);
    if (dev->initialised)
        return uz_error(-EBUSY, "algorithm_params: device is initialised; reset it first");
    dev->level = (int)level;
    return 0;
}

static int show_algorithm_params(struct uzram *dev, char *buf, size_t size)
{
    const struct uz_codec *c = uz_codec_find(dev->algorithm);
    return emit(buf, size, 0, "priority=0 algo=%s level=%d\n", dev->algorithm,
                dev->level ? dev->level : c->level_default);
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
                   (unsigned long long)atomic_load(&dev->c.writestall),
                   (unsigned long long)atomic_load(&dev->c.miss_free));
    len = emit(buf, size, len, "footprint: %llu slot_table: %llu meta: %llu streams: %llu\n",
               (unsigned long long)st.footprint, (unsigned long long)st.slot_table_bytes,
               (unsigned long long)st.meta_bytes,
               (unsigned long long)(dev->initialised ? dev->streams.bytes : 0));
    return emit(buf, size, len, "auto_compact_steps: %llu auto_compact_pause_max_us: %llu\n",
                (unsigned long long)st.compact_steps,
                (unsigned long long)(st.compact_pause_max_ns / 1000));
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

static int store_auto_compact(struct uzram *dev, const struct val *v)
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
    uint64_t pm = whole * 1000 + frac;
    if (pm != 0 && pm < 1000)
        return uz_error(-EINVAL, "auto_compact: bound %s is below 1 (or write 0 to turn it off)", v->s);
    atomic_store(&dev->compact_bound, (uint32_t)pm);
    return 0;
bad:
    return uz_error(-EINVAL, "auto_compact: '%s' is not a number like 1.05 (0 = off)", v->s);
}

static const struct attr attrs[] = {
    {"disksize", 0644, show_disksize, store_disksize, true},
    {"initstate", 0444, show_initstate, NULL, false},
    {"reset", 0200, NULL, store_reset, true},
    {"comp_algorithm", 0644, show_comp_algorithm, store_comp_algorithm, true},
    {"algorithm_params", 0644, show_algorithm_params, store_algorithm_params, true},
    {"mem_limit", 0200, NULL, store_mem_limit, false},
    {"mem_used_max", 0200, NULL, store_mem_used_max, false},
    {"compact", 0200, NULL, store_compact, false},
    {"mm_stat", 0444, show_mm_stat, NULL, false},
    {"io_stat", 0444, show_io_stat, NULL, false},
    {"debug_stat", 0444, show_debug_stat, NULL, false},
    {"max_comp_streams", 0644, show_max_comp_streams, store_max_comp_streams, true},
    {"auto_compact", 0644, show_auto_compact, store_auto_compact, false},
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

int uzram_attr_show(struct uzram *dev, const char *name, char *buf, size_t size)
{
    const struct attr *a = find_attr(name);
    if (!a)
        return uz_error(-ENOENT, "no attribute '%s'", name);
    if (!a->show || !(a->mode & 0444))
        return uz_error(-EACCES, "%s is write-only", name);
    if (size == 0)
        return -ENOSPC;
    pthread_rwlock_rdlock(&dev->init_lock);   /* (reader-preferring: may nest) */
    int len = a->show(dev, buf, size);
    pthread_rwlock_unlock(&dev->init_lock);
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
    /* Stores that change the device's shape exclude all I/O; the others
     * (compact, mem_limit, ...) run beside it. */
    if (a->reshape)
        pthread_rwlock_wrlock(&dev->init_lock);
    else
        pthread_rwlock_rdlock(&dev->init_lock);
    int err = a->store(dev, &v);
    pthread_rwlock_unlock(&dev->init_lock);
    return err;
}

const char *uzram_algorithm_name(unsigned i)
{
    const struct uz_codec *c = uz_codec_at(i);
    return c ? c->name : NULL;
}
