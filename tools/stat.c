/*
 * stat.c - `uzram stat [--json] [DIR...]`: list uzram mounts the way
 * zramctl lists zram devices.
 *
 *     NAME         ALGORITHM DISKSIZE  DATA COMPR TOTAL STREAMS MOUNTPOINT
 *     /tmp/uzram-1 lz4             1G 81.2M 21.3M 22.4M       4 /mnt/x
 *
 * NAME is the uzram mount; DATA, COMPR and TOTAL are mm_stat's
 * orig_data_size, compr_data_size and mem_used_total; MOUNTPOINT is where
 * the disk is in use: "[SWAP]" or the mount point of the loop device whose
 * backing file is NAME/disk, or the loop device itself if it is attached
 * but not mounted.  Everything is read from the attribute files, so this
 * works for any process's mount.  With no DIR, every fuse.uzram in
 * /proc/self/mounts is listed; none prints the header only.
 * --json prints an array of objects with the sizes in bytes.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct row {
    char name[PATH_MAX];
    char algorithm[32];
    uint64_t disksize;
    uint64_t mm[9];     /* mm_stat, in its order */
    unsigned streams;
    char mountpoint[PATH_MAX];
};

enum { MM_ORIG, MM_COMPR, MM_USED, MM_LIMIT, MM_USED_MAX, MM_SAME, MM_COMPACTED, MM_HUGE,
       MM_HUGE_SINCE };

/* Read DIR/NAME into buf (NUL-terminated).  Length or -errno. */
static int read_attr(const char *dir, const char *name, char *buf, size_t size)
{
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

/* Undo the octal escapes (\040 for a blank) of /proc/mounts fields. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* The mount point of source device dev in /proc/self/mounts, into out. */
static bool mount_of(const char *dev, char *out, size_t size)
{
    FILE *fp = fopen("/proc/self/mounts", "r");
    if (!fp)
        return false;
    char line[4096], src[PATH_MAX], mnt[PATH_MAX];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp)) {
        if (sscanf(line, "%4095s %4095s", src, mnt) != 2)
            continue;
        unescape(src);
        if (strcmp(src, dev) == 0) {
            unescape(mnt);
            snprintf(out, size, "%s", mnt);
            found = true;
        }
    }
    fclose(fp);
    return found;
}

static bool is_swap(const char *dev)
{
    FILE *fp = fopen("/proc/swaps", "r");
    if (!fp)
        return false;
    char line[4096], name[PATH_MAX];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp))
        if (sscanf(line, "%4095s", name) == 1 && strcmp(name, dev) == 0)
            found = true;
    fclose(fp);
    return found;
}

/* Where DIR/disk is in use, through the loop device backed by it. */
static void find_user(const char *dir, char *out, size_t size)
{
    char disk[PATH_MAX + 8];
    snprintf(disk, sizeof disk, "%s/disk", dir);
    out[0] = 0;
    DIR *d = opendir("/sys/block");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "loop", 4) != 0)
            continue;
        char path[PATH_MAX], back[PATH_MAX];
        snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", e->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        bool match = fgets(back, sizeof back, fp) != NULL;
        fclose(fp);
        if (!match)
            continue;
        back[strcspn(back, "\n")] = 0;
        if (strcmp(back, disk) != 0)
            continue;
        char dev[300];
        snprintf(dev, sizeof dev, "/dev/%s", e->d_name);
        if (is_swap(dev))
            snprintf(out, size, "[SWAP]");
        else if (!mount_of(dev, out, size))
            snprintf(out, size, "%s", dev);
        break;
    }
    closedir(d);
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
    find_user(dir, r->mountpoint, sizeof r->mountpoint);
    return 0;
}

/*
 * A mount whose server hangs would hang a plain read forever, so each
 * mount is read on a thread of its own; after LOAD_TIMEOUT_S it is
 * reported as not responding and left behind (the thread frees the job
 * if it ever finishes; process exit ends it otherwise).
 */
#define LOAD_TIMEOUT_S 3

struct load_job {
    char dir[PATH_MAX];
    struct row row;
    int err;
    bool done, abandoned;
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t load_cond = PTHREAD_COND_INITIALIZER;

static void *load_thread(void *arg)
{
    struct load_job *j = arg;
    int err = load_row(j->dir, &j->row);
    pthread_mutex_lock(&load_lock);
    j->err = err;
    j->done = true;
    bool orphan = j->abandoned;
    pthread_cond_broadcast(&load_cond);
    pthread_mutex_unlock(&load_lock);
    if (orphan)
        free(j);
    return NULL;
}

/* load_row() with a time limit: -ETIMEDOUT if the mount does not answer. */
static int load_row_timed(const char *dir, struct row *r)
{
    struct load_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    pthread_t t;
    if (pthread_create(&t, NULL, load_thread, j) != 0) {
        free(j);
        return load_row(dir, r);
    }
    pthread_detach(t);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += LOAD_TIMEOUT_S;
    pthread_mutex_lock(&load_lock);
    while (!j->done)
        if (pthread_cond_timedwait(&load_cond, &load_lock, &ts) != 0)
            break;
    int err;
    if (j->done) {
        err = j->err;
        *r = j->row;
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

static void print_json(const struct row *rows, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        printf("%s\n  {\"name\": ", i ? "," : "");
        json_string(r->name);
        printf(", \"algorithm\": ");
        json_string(r->algorithm);
        printf(", \"disksize\": %" PRIu64 ", \"data\": %" PRIu64 ", \"compr\": %" PRIu64
               ", \"total\": %" PRIu64 ", \"mem_limit\": %" PRIu64 ", \"mem_used_max\": %" PRIu64
               ", \"same_pages\": %" PRIu64 ", \"pages_compacted\": %" PRIu64
               ", \"huge_pages\": %" PRIu64 ", \"streams\": %u, \"mountpoint\": ",
               r->disksize, r->mm[MM_ORIG], r->mm[MM_COMPR], r->mm[MM_USED], r->mm[MM_LIMIT],
               r->mm[MM_USED_MAX], r->mm[MM_SAME], r->mm[MM_COMPACTED], r->mm[MM_HUGE],
               r->streams);
        if (r->mountpoint[0])
            json_string(r->mountpoint);
        else
            printf("null");
        printf("}");
    }
    printf("%s]\n", n ? "\n" : "");
}

#define NCOLS 8

static void print_table(const struct row *rows, size_t n)
{
    static const char *const head[NCOLS] = {"NAME",  "ALGORITHM", "DISKSIZE", "DATA",
                                            "COMPR", "TOTAL",     "STREAMS",  "MOUNTPOINT"};
    /* left-aligned: NAME, ALGORITHM, MOUNTPOINT (as zramctl) */
    static const bool left[NCOLS] = {true, true, false, false, false, false, false, true};
    char (*cell)[NCOLS][PATH_MAX] = n ? calloc(n, sizeof *cell) : NULL;
    size_t width[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        width[c] = strlen(head[c]);
    for (size_t i = 0; cell && i < n; i++) {
        const struct row *r = &rows[i];
        snprintf(cell[i][0], PATH_MAX, "%s", r->name);
        snprintf(cell[i][1], PATH_MAX, "%s", r->algorithm);
        human(r->disksize, cell[i][2], PATH_MAX);
        human(r->mm[MM_ORIG], cell[i][3], PATH_MAX);
        human(r->mm[MM_COMPR], cell[i][4], PATH_MAX);
        human(r->mm[MM_USED], cell[i][5], PATH_MAX);
        snprintf(cell[i][6], PATH_MAX, "%u", r->streams);
        snprintf(cell[i][7], PATH_MAX, "%s", r->mountpoint);
        for (int c = 0; c < NCOLS; c++)
            if (strlen(cell[i][c]) > width[c])
                width[c] = strlen(cell[i][c]);
    }
    for (size_t i = 0; i <= (cell ? n : 0); i++) {
        for (int c = 0; c < NCOLS; c++) {
            const char *s = i == 0 ? head[c] : cell[i - 1][c];
            if (c == NCOLS - 1)
                printf("%s", s);
            else
                printf(left[c] ? "%-*s " : "%*s ", (int)width[c], s);
        }
        printf("\n");
    }
    free(cell);
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
        unescape(mnt);
        char **grown = realloc(*dirs, (n + 1) * sizeof **dirs);
        if (!grown)
            break;
        *dirs = grown;
        (*dirs)[n++] = strdup(mnt);
    }
    fclose(fp);
    return n;
}

int uz_cmd_stat(int argc, char **argv)
{
    bool json = false;
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "--json") || !strcmp(argv[first], "-J")) {
            json = true;
        } else if (!strcmp(argv[first], "-h") || !strcmp(argv[first], "--help")) {
            printf("usage: uzram stat [--json] [DIR...]\n"
                   "  Lists uzram mounts (all of them without DIR) like zramctl.\n");
            return 0;
        } else if (!strcmp(argv[first], "--")) {
            first++;
            break;
        } else {
            fprintf(stderr, "uzram stat: unknown option '%s'\n", argv[first]);
            return 2;
        }
    }
    char **dirs;
    size_t ndirs;
    if (first < argc) {
        ndirs = (size_t)(argc - first);
        dirs = calloc(ndirs, sizeof *dirs);
        for (size_t i = 0; dirs && i < ndirs; i++) {
            char *abs = realpath(argv[first + (int)i], NULL);
            dirs[i] = abs ? abs : strdup(argv[first + (int)i]);
        }
    } else {
        ndirs = find_mounts(&dirs);
    }
    struct row *rows = ndirs ? calloc(ndirs, sizeof *rows) : NULL;
    if (ndirs && (!rows || !dirs)) {
        fprintf(stderr, "uzram stat: out of memory\n");
        return 1;
    }
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < ndirs; i++) {
        if (!dirs[i])
            continue;
        int err = load_row_timed(dirs[i], &rows[n]);
        if (err < 0) {
            fprintf(stderr, "uzram stat: %s: %s%s\n", dirs[i],
                    err == -ETIMEDOUT ? "not responding" : strerror(-err),
                    err == -ENOENT ? " (not a uzram mount?)" : "");
            rc = 1;
        } else {
            n++;
        }
    }
    if (json)
        print_json(rows, n);
    else
        print_table(rows, n);
    for (size_t i = 0; i < ndirs; i++)
        free(dirs[i]);
    free(dirs);
    free(rows);
    return rc;
}
