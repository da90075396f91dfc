/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stat.c - `uzram stat [--output COLUMNS] [--bytes] [--raw] [--noheadings]
 * [--json] [DIR...]`: list uzram mounts the way zramctl lists zram
 * devices, with zramctl's options and column names.
 *
 *     NAME         ALGORITHM DISKSIZE  DATA COMPR TOTAL STREAMS MOUNTPOINT
 *     /tmp/uzram-1 lz4             1G 81.2M 21.3M 22.4M       4 /mnt/x
 *
 * NAME is the uzram mount; DATA, COMPR, TOTAL, MEM-LIMIT, MEM-USED,
 * ZERO-PAGES and MIGRATED are mm_stat's orig_data_size, compr_data_size,
 * mem_used_total, mem_limit, mem_used_max, same_pages and pages_compacted;
 * COMP-RATIO is DATA / TOTAL; FOOTPRINT (uzram's own) is debug_stat's
 * footprint, everything the device holds.  MOUNTPOINT is where the disk is
 * in use: "[SWAP]" or the mount point of the loop device whose backing
 * file is NAME/disk, or the loop device itself if it is attached but not
 * mounted.  Everything is read from the attribute files, so this works for
 * any process's mount.  With no DIR, every fuse.uzram in /proc/self/mounts
 * is listed; none prints the header only.  Sizes are zramctl's
 * human-readable ones ("1G", "12.5M") unless --bytes.  --json prints
 * util-linux's form, {"zramctl": [{"name": ..., ...}]}.
 *
 * A pool mount (`uzram pool DIR`: DIR/zram-control exists) gives one row
 * per device, named DIR/zramN, then a row of the pool's totals named DIR
 * with MOUNTPOINT "[POOL]", from DIR/pool_stat (an object shared by
 * several devices counted once: its DATA is every device's, its COMPR
 * and TOTAL the store's).  In --json the devices are in "zramctl" as any
 * other, and each pool is an object of "pools" (and "pool" too when the
 * listing has one pool only): its name, footprint_bytes, orig_bytes,
 * compr_bytes, shared_bytes, shared_pages, saved_bytes, mem_used_total,
 * mem_limit, mem_used_max, disksize, capacity, same_pages, huge_pages,
 * bd_count (numbers, in bytes or pages) and "devices", its rows.
 *
 * TRANSPORT, RING-REQUESTS and TRANSPORT-NOTE are the mount's FUSE
 * transport (DIR/.transport: io_uring or dev_fuse, the requests served
 * through the rings, why dev_fuse); --json without --output adds them to
 * the default columns.  A pool's rows all show the pool mount's.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "setup.h"

#include <dirent.h>
#include <getopt.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

struct row {
    char name[PATH_MAX];
    char algorithm[32];
    uint64_t disksize;
    uint64_t mm[9];     /* mm_stat, in its order */
    unsigned streams;
    uint64_t footprint;   /* debug_stat's "footprint:" */
    uint64_t dedup[5];    /* dedup_stat's first line: pages, saved, index bytes, hits, refused */
    char mountpoint[PATH_MAX];
    char transport[16];   /* DIR/.transport: "io_uring", "dev_fuse"; "" if none */
    char transport_note[192];   /* why dev_fuse */
    uint64_t ring_requests;
    int pool;             /* a pool's totals: its index + 1; 0 for a device */
    int in_pool;          /* a pool's device: the pool's index + 1 */
};

/* DIR/pool_stat's fields, in their order (uzram.h: uzram_pool_attr_show). */
enum { PS_DEVICES, PS_DISKSIZE, PS_CAPACITY, PS_ORIG, PS_COMPR, PS_SHARED, PS_SHARED_PAGES,
       PS_SAVED, PS_SAME, PS_HUGE, PS_USED, PS_LIMIT, PS_USED_MAX, PS_FOOTPRINT, PS_BD_COUNT,
       PS_N };
struct pool_info {
    char name[PATH_MAX];
    uint64_t ps[PS_N];
};

enum { MM_ORIG, MM_COMPR, MM_USED, MM_LIMIT, MM_USED_MAX, MM_SAME, MM_COMPACTED, MM_HUGE,
       MM_HUGE_SINCE };

/* Attribute files read so far: a mount that answers keeps this moving
 * (load_mount_timed waits while it does). */
static _Atomic unsigned long attrs_read;

/* Read DIR/NAME into buf (NUL-terminated).  Length or -errno. */
static int read_attr(const char *dir, const char *name, char *buf, size_t size)
{
    atomic_fetch_add(&attrs_read, 1);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    return (int)len;
}

/* Where DIR/disk is in use, through the loop device backed by it:
 * [SWAP], its mount point, or the loop device itself. */
static void find_user(const char *dir, char *out, size_t size)
{
    char dev[64];
    out[0] = 0;
    if (!setup_loop_of(dir, dev, sizeof dev))
        return;
    if (setup_in_swaps(dev))
        snprintf(out, size, "[SWAP]");
    else if (!setup_mount_of(dev, out, size))
        snprintf(out, size, "%s", dev);
}

/* Fill r from the attribute files of the uzram mounted at dir. */
static int load_row(const char *dir, struct row *r)
{
    char buf[4096];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", dir);
    int n = read_attr(dir, "comp_algorithm", buf, sizeof buf);
    if (n < 0)
        return n;
    char *lb = strchr(buf, '['), *rb = lb ? strchr(lb, ']') : NULL;
    if (lb && rb)
        snprintf(r->algorithm, sizeof r->algorithm, "%.*s", (int)(rb - lb - 1), lb + 1);
    if ((n = read_attr(dir, "disksize", buf, sizeof buf)) < 0)
        return n;
    r->disksize = strtoull(buf, NULL, 10);
    if ((n = read_attr(dir, "mm_stat", buf, sizeof buf)) < 0)
        return n;
    char *p = buf;
    for (int i = 0; i < 9; i++)
        r->mm[i] = strtoull(p, &p, 10);
    if (read_attr(dir, "max_comp_streams", buf, sizeof buf) > 0)
        r->streams = (unsigned)strtoul(buf, NULL, 10);
    if (read_attr(dir, "debug_stat", buf, sizeof buf) > 0) {
        const char *f = strstr(buf, "footprint:");
        if (f)
            r->footprint = strtoull(f + 10, NULL, 10);
    }
    if (read_attr(dir, "dedup_stat", buf, sizeof buf) > 0) {
        char *q = buf;
        for (int i = 0; i < 5; i++)
            r->dedup[i] = strtoull(q, &q, 10);
    }
    find_user(dir, r->mountpoint, sizeof r->mountpoint);
    return 0;
}

/* The mount's transport, from mnt/.transport (fuse.h: the transport,
 * its counters, why /dev/fuse), into r; left empty for a server without
 * that file. */
static void load_transport(const char *mnt, struct row *r)
{
    char buf[512];
    if (read_attr(mnt, ".transport", buf, sizeof buf) <= 0)
        return;
    char *nl = strchr(buf, '\n');
    if (!nl)
        return;
    *nl = 0;
    snprintf(r->transport, sizeof r->transport, "%.15s", buf);
    char *line2 = nl + 1, *rr = strstr(line2, "ring_requests=");
    if (rr)
        r->ring_requests = strtoull(rr + 14, NULL, 10);
    char *line3 = strchr(line2, '\n');
    if (line3 && line3[1]) {
        line3++;
        line3[strcspn(line3, "\n")] = 0;
        snprintf(r->transport_note, sizeof r->transport_note, "%.191s", line3);
    }
}

static bool is_pool(const char *dir)
{
    char path[PATH_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "%s/zram-control", dir);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* The device numbers of the pool at dir, ascending, into *ids (malloc'd). */
static int pool_devices(const char *dir, int **ids)
{
    DIR *d = opendir(dir);
    *ids = NULL;
    if (!d)
        return -errno;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "zram", 4) != 0 || !e->d_name[4])
            continue;
        long id = strtol(e->d_name + 4, &end, 10);
        if (*end || id < 0)
            continue;
        if (n == cap) {
            int *grown = realloc(*ids, (size_t)(cap = cap ? 2 * cap : 16) * sizeof **ids);
            if (!grown)
                break;
            *ids = grown;
        }
        (*ids)[n++] = (int)id;
    }
    closedir(d);
    if (n)
        qsort(*ids, (size_t)n, sizeof **ids, cmp_int);
    return n;
}

/* A pool's totals as a row (its name, algorithm and dedup figures from
 * its own attributes). */
static int load_pool(const char *dir, struct pool_info *p, struct row *r)
{
    char buf[4096];
    memset(r, 0, sizeof *r);
    snprintf(p->name, sizeof p->name, "%s", dir);
    snprintf(r->name, sizeof r->name, "%s", dir);
    int n = read_attr(dir, "pool_stat", buf, sizeof buf);
    if (n < 0)
        return n;
    char *q = buf;
    for (int i = 0; i < PS_N; i++)
        p->ps[i] = strtoull(q, &q, 10);
    if (read_attr(dir, "comp_algorithm", buf, sizeof buf) > 0) {
        char *lb = strchr(buf, '['), *rb = lb ? strchr(lb, ']') : NULL;
        if (lb && rb)
            snprintf(r->algorithm, sizeof r->algorithm, "%.*s", (int)(rb - lb - 1), lb + 1);
        else
            snprintf(r->algorithm, sizeof r->algorithm, "%.*s", (int)strcspn(buf, " \n"), buf);
    }
    if (read_attr(dir, "dedup_stat", buf, sizeof buf) > 0) {
        q = buf;
        for (int i = 0; i < 5; i++)
            r->dedup[i] = strtoull(q, &q, 10);
    }
    r->disksize = p->ps[PS_DISKSIZE];
    r->mm[MM_ORIG] = p->ps[PS_ORIG];
    r->mm[MM_COMPR] = p->ps[PS_COMPR];
    r->mm[MM_USED] = p->ps[PS_USED];
    r->mm[MM_LIMIT] = p->ps[PS_LIMIT];
    r->mm[MM_USED_MAX] = p->ps[PS_USED_MAX];
    r->mm[MM_SAME] = p->ps[PS_SAME];
    r->mm[MM_HUGE] = p->ps[PS_HUGE];
    r->footprint = p->ps[PS_FOOTPRINT];
    snprintf(r->mountpoint, sizeof r->mountpoint, "[POOL]");
    return 0;
}

/* What one mount gives: its device rows (a pool's, then its totals as
 * the last row), malloc'd. */
struct mount_rows {
    struct row *rows;
    size_t n;
    struct pool_info pool;
    bool is_pool;
};

static int load_mount(const char *dir, struct mount_rows *m)
{
    memset(m, 0, sizeof *m);
    if (!is_pool(dir)) {
        m->rows = calloc(1, sizeof *m->rows);
        if (!m->rows)
            return -ENOMEM;
        int err = load_row(dir, &m->rows[0]);
        m->n = err < 0 ? 0 : 1;
        if (err == 0)
            load_transport(dir, &m->rows[0]);
        return err;
    }
    m->is_pool = true;
    int *ids;
    int n = pool_devices(dir, &ids);
    if (n < 0)
        return n;
    m->rows = calloc((size_t)n + 1, sizeof *m->rows);
    if (!m->rows) {
        free(ids);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/zram%d", dir, ids[i]);
        if (load_row(sub, &m->rows[m->n]) == 0)   /* one removed meanwhile is left out */
            m->n++;
    }
    free(ids);
    int err = load_pool(dir, &m->pool, &m->rows[m->n]);
    if (err == 0)
        m->n++;
    if (m->n > 0) {       /* one transport for the whole mount */
        load_transport(dir, &m->rows[0]);
        for (size_t i = 1; i < m->n; i++) {
            memcpy(m->rows[i].transport, m->rows[0].transport, sizeof m->rows[i].transport);
            memcpy(m->rows[i].transport_note, m->rows[0].transport_note,
                   sizeof m->rows[i].transport_note);
            m->rows[i].ring_requests = m->rows[0].ring_requests;
        }
    }
    return err;
}

/*
 * A mount whose server hangs would hang a plain read forever, so each
 * mount is read on a thread of its own; if LOAD_TIMEOUT_S pass with no
 * attribute file read (a pool of two thousand devices takes longer than
 * that in all, each of its files answering in well under a
 * millisecond), it is reported as not responding and left behind (the
 * thread frees the job if it ever finishes; process exit ends it
 * otherwise).
 */
#define LOAD_TIMEOUT_S 3

struct load_job {
    char dir[PATH_MAX];
    struct mount_rows m;
    int err;
    bool done, abandoned;
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t load_cond = PTHREAD_COND_INITIALIZER;

static void *load_thread(void *arg)
{
    struct load_job *j = arg;
    int err = load_mount(j->dir, &j->m);
    pthread_mutex_lock(&load_lock);
    j->err = err;
    j->done = true;
    bool orphan = j->abandoned;
    pthread_cond_broadcast(&load_cond);
    pthread_mutex_unlock(&load_lock);
    if (orphan) {
        free(j->m.rows);
        free(j);
    }
    return NULL;
}

/* load_mount() with a time limit: -ETIMEDOUT if the mount does not answer. */
static int load_mount_timed(const char *dir, struct mount_rows *m)
{
    struct load_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    pthread_t t;
    if (pthread_create(&t, NULL, load_thread, j) != 0) {
        free(j);
        return load_mount(dir, m);
    }
    pthread_detach(t);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += LOAD_TIMEOUT_S;
    unsigned long seen = atomic_load(&attrs_read);
    pthread_mutex_lock(&load_lock);
    while (!j->done)
        if (pthread_cond_timedwait(&load_cond, &load_lock, &ts) != 0) {
            unsigned long now = atomic_load(&attrs_read);
            if (now == seen)
                break;   /* nothing answered for LOAD_TIMEOUT_S */
            seen = now;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += LOAD_TIMEOUT_S;
        }
    int err;
    if (j->done) {
        err = j->err;
        *m = j->m;
        free(j);
    } else {
        err = -ETIMEDOUT;
        j->abandoned = true;
    }
    pthread_mutex_unlock(&load_lock);
    return err;
}

/*
 * A size as zramctl prints it: binary units with a one-letter suffix and
 * at most one decimal, which is dropped when it is 0 ("1G", "12.5M",
 * "512B").
 */
static void human(uint64_t bytes, char *out, size_t size)
{
    static const char units[] = "BKMGTPE";
    int exp = 0;
    while (exp < 6 && bytes >= (1ull << (10 * (exp + 1))))
        exp++;
    if (exp == 0) {
        snprintf(out, size, "%" PRIu64 "B", bytes);
        return;
    }
    uint64_t unit = 1ull << (10 * exp);
    uint64_t whole = bytes / unit;
    /* tenths, rounded half up, computed without overflow */
    uint64_t rest = bytes % unit;
    uint64_t tenths = (rest / (unit / 1024) * 10 + 512) / 1024;
    if (tenths >= 10) {
        whole++;
        tenths = 0;
    }
    if (whole >= 1024 && exp < 6) {   /* 1023.96K rounds up to 1M */
        whole = 1;
        tenths = 0;
        exp++;
    }
    if (tenths)
        snprintf(out, size, "%" PRIu64 ".%" PRIu64 "%c", whole, tenths, units[exp]);
    else
        snprintf(out, size, "%" PRIu64 "%c", whole, units[exp]);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* The columns, zramctl's first (its names and meanings), then uzram's. */
enum col_kind { K_TEXT, K_SIZE, K_COUNT, K_RATIO };
struct col {
    const char *name;
    enum col_kind kind;
    const char *help;
};
enum { C_NAME, C_DISKSIZE, C_DATA, C_COMPR, C_ALGORITHM, C_STREAMS, C_ZERO_PAGES, C_TOTAL,
       C_MEM_LIMIT, C_MEM_USED, C_MIGRATED, C_COMP_RATIO, C_MOUNTPOINT, C_FOOTPRINT,
       C_DEDUP_PAGES, C_DEDUP_SAVED, C_DEDUP_INDEX, C_DEDUP_HITS, C_DEDUP_REFUSED,
       C_TRANSPORT, C_RING_REQUESTS, C_TRANSPORT_NOTE, NCOLS };
static const struct col cols[NCOLS] = {
    [C_NAME] = {"NAME", K_TEXT, "the uzram mount (directory)"},
    [C_DISKSIZE] = {"DISKSIZE", K_SIZE, "limit on the uncompressed amount of data"},
    [C_DATA] = {"DATA", K_SIZE, "uncompressed size of stored data"},
    [C_COMPR] = {"COMPR", K_SIZE, "compressed size of stored data"},
    [C_ALGORITHM] = {"ALGORITHM", K_TEXT, "the selected compression algorithm"},
    [C_STREAMS] = {"STREAMS", K_COUNT, "number of concurrent compress operations"},
    [C_ZERO_PAGES] = {"ZERO-PAGES", K_COUNT, "empty (same-filled) pages with no allocated memory"},
    [C_TOTAL] = {"TOTAL", K_SIZE, "allocator memory including fragmentation (mem_used_total)"},
    [C_MEM_LIMIT] = {"MEM-LIMIT", K_SIZE, "memory limit used to store compressed data"},
    [C_MEM_USED] = {"MEM-USED", K_SIZE, "most memory used to store compressed data (mem_used_max)"},
    [C_MIGRATED] = {"MIGRATED", K_COUNT, "number of objects migrated by compaction"},
    [C_COMP_RATIO] = {"COMP-RATIO", K_RATIO, "compression ratio: DATA / TOTAL"},
    [C_MOUNTPOINT] = {"MOUNTPOINT", K_TEXT, "where the device is mounted, or [SWAP]"},
    [C_FOOTPRINT] = {"FOOTPRINT", K_SIZE, "all memory the device holds: allocator, slot table, "
                                          "metadata, streams (uzram)"},
    [C_DEDUP_PAGES] = {"DEDUP-PAGES", K_COUNT, "pages stored as references to an identical page (uzram)"},
    [C_DEDUP_SAVED] = {"DEDUP-SAVED", K_SIZE, "compressed bytes those references save (uzram)"},
    [C_DEDUP_INDEX] = {"DEDUP-INDEX", K_SIZE, "memory of the content index and shared records (uzram)"},
    [C_DEDUP_HITS] = {"DEDUP-HITS", K_COUNT, "writes that found their page stored already (uzram)"},
    [C_DEDUP_REFUSED] = {"DEDUP-REFUSED", K_COUNT, "index matches refused by the byte compare (uzram)"},
    [C_TRANSPORT] = {"TRANSPORT", K_TEXT, "how the kernel hands requests over: io_uring or dev_fuse (uzram)"},
    [C_RING_REQUESTS] = {"RING-REQUESTS", K_COUNT, "requests served through the io_uring queues (uzram)"},
    [C_TRANSPORT_NOTE] = {"TRANSPORT-NOTE", K_TEXT, "why dev_fuse, when it is (uzram)"},
};
/* --json without --output adds these to the default columns */
static const int json_extra_cols[] = {C_TRANSPORT, C_RING_REQUESTS, C_TRANSPORT_NOTE};
static const int default_cols[] = {C_NAME,  C_ALGORITHM, C_DISKSIZE, C_DATA,
                                   C_COMPR, C_TOTAL,     C_STREAMS,  C_MOUNTPOINT};

struct out_opts {
    int col[NCOLS * 2];
    int ncol;
    bool bytes, raw, noheadings, json;
};

/* The value of column c as text (sizes human unless bytes). */
static void cell(const struct row *r, int c, bool bytes, char *out, size_t size)
{
    uint64_t v = 0;
    switch (c) {
    case C_NAME: snprintf(out, size, "%s", r->name); return;
    case C_ALGORITHM: snprintf(out, size, "%s", r->algorithm); return;
    case C_MOUNTPOINT: snprintf(out, size, "%s", r->mountpoint); return;
    case C_TRANSPORT: snprintf(out, size, "%s", r->transport); return;
    case C_TRANSPORT_NOTE: snprintf(out, size, "%s", r->transport_note); return;
    case C_RING_REQUESTS: snprintf(out, size, "%" PRIu64, r->ring_requests); return;
    case C_STREAMS: snprintf(out, size, "%u", r->streams); return;
    case C_ZERO_PAGES: snprintf(out, size, "%" PRIu64, r->mm[MM_SAME]); return;
    case C_MIGRATED: snprintf(out, size, "%" PRIu64, r->mm[MM_COMPACTED]); return;
    case C_DEDUP_PAGES: snprintf(out, size, "%" PRIu64, r->dedup[0]); return;
    case C_DEDUP_HITS: snprintf(out, size, "%" PRIu64, r->dedup[3]); return;
    case C_DEDUP_REFUSED: snprintf(out, size, "%" PRIu64, r->dedup[4]); return;
    case C_COMP_RATIO:
        if (r->mm[MM_USED])
            snprintf(out, size, "%.4f", (double)r->mm[MM_ORIG] / (double)r->mm[MM_USED]);
        else
            snprintf(out, size, "%s", "0");
        return;
    case C_DISKSIZE: v = r->disksize; break;
    case C_DATA: v = r->mm[MM_ORIG]; break;
    case C_COMPR: v = r->mm[MM_COMPR]; break;
    case C_TOTAL: v = r->mm[MM_USED]; break;
    case C_MEM_LIMIT: v = r->mm[MM_LIMIT]; break;
    case C_MEM_USED: v = r->mm[MM_USED_MAX]; break;
    case C_FOOTPRINT: v = r->footprint; break;
    case C_DEDUP_SAVED: v = r->dedup[1]; break;
    case C_DEDUP_INDEX: v = r->dedup[2]; break;
    }
    if (bytes)
        snprintf(out, size, "%" PRIu64, v);
    else
        human(v, out, size);
}

/* The JSON key of a column: its name in lower case, as util-linux does. */
static void json_key(const char *name)
{
    putchar('"');
    for (const char *c = name; *c; c++)
        putchar(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    printf("\": ");
}

/* One row as util-linux prints it: {"name": ..., ...}; numbers (and
 * sizes, with --bytes) are numbers, an empty MOUNTPOINT is null. */
static void print_json_row(const struct row *r, const struct out_opts *o)
{
    char buf[PATH_MAX];
    printf("{");
    for (int k = 0; k < o->ncol; k++) {
        int c = o->col[k];
        printf("%s", k ? ", " : "");
        json_key(cols[c].name);
        cell(r, c, o->bytes, buf, sizeof buf);
        bool number = cols[c].kind == K_COUNT || cols[c].kind == K_RATIO ||
                      (cols[c].kind == K_SIZE && o->bytes);
        if (number)
            printf("%s", buf);
        else if ((c == C_MOUNTPOINT || c == C_TRANSPORT || c == C_TRANSPORT_NOTE) && !buf[0])
            printf("null");
        else
            json_string(buf);
    }
    printf("}");
}

/* A pool's object: its figures, then "devices", its rows. */
static void print_json_pool(const struct pool_info *p, int idx, const struct row *rows, size_t n,
                            const struct out_opts *o, const char *indent)
{
    static const struct { const char *key; int field; } keys[] = {
        {"footprint_bytes", PS_FOOTPRINT}, {"orig_bytes", PS_ORIG}, {"compr_bytes", PS_COMPR},
        {"shared_bytes", PS_SHARED}, {"shared_pages", PS_SHARED_PAGES},
        {"saved_bytes", PS_SAVED}, {"mem_used_total", PS_USED}, {"mem_limit", PS_LIMIT},
        {"mem_used_max", PS_USED_MAX}, {"disksize", PS_DISKSIZE}, {"capacity", PS_CAPACITY},
        {"same_pages", PS_SAME}, {"huge_pages", PS_HUGE}, {"bd_count", PS_BD_COUNT},
    };
    printf("{\n%s   \"name\": ", indent);
    json_string(p->name);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        printf(",\n%s   \"%s\": %" PRIu64, indent, keys[i].key, p->ps[keys[i].field]);
    printf(",\n%s   \"devices\": [", indent);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].in_pool != idx + 1)
            continue;
        printf("%s\n%s      ", first ? "" : ",", indent);
        print_json_row(&rows[i], o);
        first = false;
    }
    printf("%s%s   ]\n%s}", first ? "" : "\n", first ? "" : indent, indent);
}

/* util-linux's JSON: {"zramctl": [ {"name": ..., ...}, ... ]}, every
 * device (a pool's too, not its totals); then the pools, if any. */
static void print_json(const struct row *rows, size_t n, const struct pool_info *pools,
                       size_t npools, const struct out_opts *o)
{
    printf("{\n   \"zramctl\": [");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].pool)
            continue;
        printf("%s\n      ", first ? "" : ",");
        print_json_row(&rows[i], o);
        first = false;
    }
    printf("%s   ]", first ? "" : "\n");
    if (npools == 1) {
        printf(",\n   \"pool\": ");
        print_json_pool(&pools[0], 0, rows, n, o, "   ");
    }
    if (npools) {
        printf(",\n   \"pools\": [");
        for (size_t p = 0; p < npools; p++) {
            printf("%s\n      ", p ? "," : "");
            print_json_pool(&pools[p], (int)p, rows, n, o, "      ");
        }
        printf("\n   ]");
    }
    printf("\n}\n");
}

/* --raw: one blank between cells, no padding; blanks, backslashes and
 * control characters in a value as \xHH so every line splits cleanly. */
static void raw_cell(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '\\' || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void print_table(const struct row *rows, size_t n, const struct out_opts *o)
{
    int nc = o->ncol;
    char (*text)[PATH_MAX] = calloc((n + 1) * (size_t)nc, PATH_MAX);
    if (!text) {
        fprintf(stderr, "uzram stat: out of memory\n");
        return;
    }
    size_t width[NCOLS * 2];
    for (int k = 0; k < nc; k++) {
        snprintf(text[k], PATH_MAX, "%s", cols[o->col[k]].name);
        width[k] = o->noheadings ? 0 : strlen(text[k]);
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < nc; k++) {
            char *t = text[(i + 1) * (size_t)nc + (size_t)k];
            cell(&rows[i], o->col[k], o->bytes, t, PATH_MAX);
            if (strlen(t) > width[k])
                width[k] = strlen(t);
        }
    for (size_t i = o->noheadings ? 1 : 0; i <= n; i++) {
        for (int k = 0; k < nc; k++) {
            const char *t = text[i * (size_t)nc + (size_t)k];
            bool left = cols[o->col[k]].kind == K_TEXT;
            if (o->raw) {
                if (k)
                    putchar(' ');
                raw_cell(t);
            } else if (k == nc - 1 && left) {
                printf("%s", t);
            } else {
                printf(left ? "%-*s" : "%*s", (int)width[k], t);
                if (k < nc - 1)
                    putchar(' ');
            }
        }
        printf("\n");
    }
    free(text);
}

/* Parse "NAME,DATA,..." (or "+COL,..." to add to the defaults) into o. */
static int parse_columns(const char *list, struct out_opts *o)
{
    if (*list == '+')
        list++;
    else
        o->ncol = 0;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int c = 0; c < NCOLS; c++)
            if (!strcasecmp(t, cols[c].name))
                found = c;
        if (found < 0) {
            fprintf(stderr, "uzram stat: unknown column: %s (see uzram stat --help)\n", t);
            return -1;
        }
        if (o->ncol >= NCOLS * 2) {
            fprintf(stderr, "uzram stat: too many columns\n");
            return -1;
        }
        o->col[o->ncol++] = found;
    }
    if (o->ncol == 0) {
        fprintf(stderr, "uzram stat: --output: no columns\n");
        return -1;
    }
    return 0;
}

static int stat_usage(FILE *f)
{
    fprintf(f, "usage: uzram stat [--output COLUMNS | --output-all] [--bytes] [--raw]\n"
               "                  [--noheadings] [--json] [DIR...]\n"
               "  Lists uzram mounts (all of them without DIR) as zramctl lists zram devices.\n"
               "  -o, --output COLUMNS  comma-separated columns (+COLUMNS adds to the default)\n"
               "      --output-all      every column\n"
               "  -b, --bytes           sizes in bytes rather than human-readable\n"
               "      --raw             raw output: single blanks, no alignment\n"
               "  -n, --noheadings      no header line\n"
               "  -J, --json            JSON output\n"
               "\nColumns:\n");
    for (int c = 0; c < NCOLS; c++)
        fprintf(f, "  %11s  %s\n", cols[c].name, cols[c].help);
    return f == stderr ? 2 : 0;
}

/* Append the mount points of every fuse.uzram to *dirs. */
static size_t find_mounts(char ***dirs)
{
    FILE *fp = fopen("/proc/self/mounts", "r");
    size_t n = 0;
    *dirs = NULL;
    if (!fp)
        return 0;
    char line[4096], src[PATH_MAX], mnt[PATH_MAX], type[256];
    while (fgets(line, sizeof line, fp)) {
        if (sscanf(line, "%4095s %4095s %255s", src, mnt, type) != 3 ||
            strcmp(type, "fuse.uzram") != 0)
            continue;
        setup_unescape(mnt);
        char **grown = realloc(*dirs, (n + 1) * sizeof **dirs);
        if (!grown)
            break;
        *dirs = grown;
        (*dirs)[n++] = strdup(mnt);
    }
    fclose(fp);
    return n;
}

/* Is dir (resolved) a uzram mount, or a device directory DIR/zramN of a
 * pool mounted at DIR?  Read from /proc/self/mounts: a mount that hangs
 * is not touched. */
static bool is_uzram_dir(const char *dir)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    bool in_pool = slash && slash != parent && !strncmp(slash + 1, "zram", 4) &&
                   slash[5] >= '0' && slash[5] <= '9' &&
                   strspn(slash + 5, "0123456789") == strlen(slash + 5);
    if (in_pool)
        *slash = 0;
    FILE *fp = fopen("/proc/self/mounts", "r");
    if (!fp)
        return true;   /* cannot tell: let the attribute reads decide */
    char line[4096], src[PATH_MAX], mnt[PATH_MAX], type[256];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp)) {
        if (sscanf(line, "%4095s %4095s %255s", src, mnt, type) != 3 ||
            strcmp(type, "fuse.uzram") != 0)
            continue;
        setup_unescape(mnt);
        found = !strcmp(mnt, dir) || (in_pool && !strcmp(mnt, parent));
    }
    fclose(fp);
    return found;
}

int cmd_stat(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"output-all", no_argument, NULL, 'A'},
        {"bytes", no_argument, NULL, 'b'},
        {"raw", no_argument, NULL, 'r'},
        {"noheadings", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct out_opts o = {.ncol = 0};
    for (size_t i = 0; i < sizeof default_cols / sizeof default_cols[0]; i++)
        o.col[o.ncol++] = default_cols[i];
    int c;
    bool chosen = false;   /* --output or --output-all */
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:bnJh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (parse_columns(optarg, &o) < 0)
                return 2;
            chosen = true;
            break;
        case 'A':
            chosen = true;
            o.ncol = 0;
            for (int k = 0; k < NCOLS; k++)
                o.col[o.ncol++] = k;
            break;
        case 'b': o.bytes = true; break;
        case 'r': o.raw = true; break;
        case 'n': o.noheadings = true; break;
        case 'J': o.json = true; break;
        case 'h': return stat_usage(stdout);
        default: return stat_usage(stderr);
        }
    }
    if (o.json && !chosen)
        for (size_t i = 0; i < sizeof json_extra_cols / sizeof json_extra_cols[0]; i++)
            o.col[o.ncol++] = json_extra_cols[i];
    int first = optind;
    char **dirs;
    size_t ndirs;
    int rc = 0;
    if (first < argc) {
        ndirs = (size_t)(argc - first);
        dirs = calloc(ndirs, sizeof *dirs);
        for (size_t i = 0; dirs && i < ndirs; i++) {
            const char *arg = argv[first + (int)i];
            char *abs = realpath(arg, NULL);
            int e = errno;
            if (abs && !is_uzram_dir(abs)) {
                fprintf(stderr, "uzram stat: %s: not a uzram mount\n", arg);
                free(abs);
                rc = 1;
                continue;   /* dirs[i] stays NULL: skipped */
            }
            if (!abs && e != ENOTCONN) {   /* a dead mount does not resolve: say so below */
                fprintf(stderr, "uzram stat: %s: %s\n", arg, strerror(e));
                rc = 1;
                continue;
            }
            dirs[i] = abs ? abs : strdup(arg);
        }
    } else {
        ndirs = find_mounts(&dirs);
    }
    struct row *rows = NULL;
    struct pool_info *pools = NULL;
    size_t n = 0, npools = 0;
    if (ndirs && !dirs) {
        fprintf(stderr, "uzram stat: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < ndirs; i++) {
        if (!dirs[i])
            continue;
        struct mount_rows m;
        int err = load_mount_timed(dirs[i], &m);
        struct row *grown = err < 0 ? NULL : realloc(rows, (n + m.n) * sizeof *rows);
        struct pool_info *pgrown = grown && m.is_pool ? realloc(pools, (npools + 1) * sizeof *pools)
                                                      : pools;
        if (err < 0 || !grown || (m.is_pool && !pgrown)) {
            fprintf(stderr, "uzram stat: %s: %s%s\n", dirs[i],
                    err == -ETIMEDOUT ? "not responding" : strerror(err < 0 ? -err : ENOMEM),
                    err == -ENOENT ? " (not a uzram mount?)"
                    : err == -ENOTCONN ? " (its server is gone: `uzram umount` removes the mount)" : "");
            if (grown)
                rows = grown;
            pools = pgrown ? pgrown : pools;
            if (err != -ETIMEDOUT)
                free(m.rows);
            /* Listing every mount, a dead one (its server gone) is not a
             * device: it is named on stderr and the live ones are listed,
             * with success.  A mount named on the command line fails. */
            if (!(first >= argc && err == -ENOTCONN))
                rc = 1;
            continue;
        }
        rows = grown;
        pools = pgrown;
        for (size_t k = 0; k < m.n; k++) {
            rows[n + k] = m.rows[k];
            if (m.is_pool)
                rows[n + k].in_pool = (int)npools + 1;
        }
        if (m.is_pool) {
            rows[n + m.n - 1].pool = (int)npools + 1;
            rows[n + m.n - 1].in_pool = 0;
            pools[npools++] = m.pool;
        }
        n += m.n;
        free(m.rows);
    }
    if (o.json)
        print_json(rows, n, pools, npools, &o);
    else
        print_table(rows, n, &o);
    for (size_t i = 0; i < ndirs; i++)
        free(dirs[i]);
    free(dirs);
    free(rows);
    free(pools);
    return rc;
}
