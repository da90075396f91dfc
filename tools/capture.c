/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * capture.c - `uzram capture PID OUT`: append the resident pages of a live
 * process's writable private memory to a page file.
 *
 * A page file is raw 4 KiB pages, concatenated, nothing else: what a swap
 * device would be handed if the process were pushed out of memory.  The
 * corpora in ../shared/corpus were made this way, and `uzram bench` and the
 * tests read them.
 *
 * How:
 *  1. /proc/PID/maps lists the mappings.  Kept: every mapping whose
 *     permissions are "rw?p" (readable, writable, private): heap, stacks,
 *     anonymous memory, and the written-to private copies of files (.data,
 *     .bss).  Dropped: shared mappings, read-only ones, and the kernel's
 *     special mappings ([vvar], [vvar_vclock], [vdso], [vsyscall],
 *     [uprobes]).
 *  2. /proc/PID/pagemap says which pages of a mapping are present in RAM.
 *     With the PAGEMAP_SCAN ioctl (Linux 6.7+) the kernel hands back runs
 *     of present pages and skips unpopulated page tables wholesale, which
 *     matters for processes that reserve terabytes (a sanitizer's shadow
 *     memory); without it, the 64-bit entry of every page is read (bit 63:
 *     present).  Pages that are swapped out or were never touched are not
 *     captured.
 *  3. /proc/PID/mem is read at the addresses of present pages (pread, whole
 *     runs at a time) and the bytes are appended to OUT, which is opened
 *     with O_APPEND|O_CREAT (mode 0644): several captures can go into one
 *     file.
 *
 * Permissions: reading another process's pagemap and mem needs ptrace
 * access to it (same user and a permissive Yama setting, or
 * CAP_SYS_PTRACE).  The process keeps running while it is read; stop it
 * first (kill -STOP) if a consistent snapshot matters.
 *
 * Errors: a bad PID, a vanished process or missing permission end the
 * command with a message and exit code 1.  A mapping or page that cannot be
 * read (it disappeared, or is an I/O mapping) is skipped and counted in the
 * summary line.  A failed write to OUT ends the command (exit 1).
 *
 * This file depends on nothing but libc, so that tests/test_capture.c can
 * compile it in directly.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>

/* Pages read from /proc/PID/mem with one pread (256 KiB with 4 KiB pages). */
#define CAPTURE_BATCH 64
/* pagemap entries read with one pread in the fallback path. */
#define CAPTURE_PM_ENTRIES 4096
/* Regions returned per PAGEMAP_SCAN call. */
#define CAPTURE_REGIONS 256

/* The PAGEMAP_SCAN ABI (linux/fs.h since 6.7), spelled out here so the
 * tool builds against older headers; the ioctl number encodes the size. */
struct capture_page_region {
    uint64_t start, end, categories;
};

struct capture_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define CAPTURE_PAGEMAP_SCAN _IOWR('f', 16, struct capture_scan_arg)
#define CAPTURE_PAGE_IS_PRESENT (1u << 3)
#define CAPTURE_PM_PRESENT (1ull << 63)

/* Test hook: take the pagemap-entry path even where PAGEMAP_SCAN works. */
static bool capture_force_pagemap;

struct capture {
    pid_t pid;
    int pagemap_fd, mem_fd, out_fd;
    size_t page;                 /* the system page size */
    bool no_scan;                /* PAGEMAP_SCAN unsupported: read entries */
    unsigned char *buf;          /* CAPTURE_BATCH pages */
    uint64_t *pm;                /* CAPTURE_PM_ENTRIES pagemap entries */
    struct capture_page_region *regions;   /* CAPTURE_REGIONS */
    /* results */
    uint64_t pages;              /* pages appended to OUT */
    uint64_t maps;               /* mappings looked at */
    uint64_t maps_skipped;       /* mappings whose pagemap could not be read */
    uint64_t pages_skipped;      /* present pages whose bytes could not be read */
    int write_err;               /* errno of a failed write to OUT, else 0 */
};

static void capture_usage(void)
{
    fprintf(stderr,
            "usage: uzram capture PID OUT\n"
            "  Append the resident pages of PID's writable private mappings\n"
            "  (heap, stacks, anonymous memory) to the page file OUT.\n");
}

/* write() all of buf, retrying on EINTR and short writes.  0 or errno. */
static int capture_write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* pread() until len bytes or an error/EOF.  Returns the bytes read. */
static size_t capture_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (unsigned char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    return done;
}

/* Copy the present pages [addr, addr + n pages) from mem to OUT.
 * Returns false only when writing OUT failed. */
static bool capture_copy_run(struct capture *cap, uint64_t addr, uint64_t n)
{
    while (n > 0) {
        size_t k = n < CAPTURE_BATCH ? (size_t)n : CAPTURE_BATCH;
        size_t len = k * cap->page;
        size_t got = capture_pread_all(cap->mem_fd, cap->buf, len, addr);
        /* Whole pages read before a failure are good; the failing page is
         * retried alone, and skipped if it fails again. */
        size_t good = got / cap->page;
        if (good == 0) {
            cap->pages_skipped++;
            good = 1;
        } else {
            cap->write_err = capture_write_all(cap->out_fd, cap->buf, good * cap->page);
            if (cap->write_err)
                return false;
            cap->pages += good;
        }
        addr += good * cap->page;
        n -= good;
    }
    return true;
}

/* Present pages of [start, end) by PAGEMAP_SCAN.  0, or -1 with errno set
 * (ENOTTY/EINVAL: the kernel has no such ioctl). */
static int capture_scan(struct capture *cap, uint64_t start, uint64_t end)
{
    uint64_t cur = start;
    while (cur < end) {
        struct capture_scan_arg arg = {
            .size = sizeof arg,
            .start = cur,
            .end = end,
            .vec = (uint64_t)(uintptr_t)cap->regions,
            .vec_len = CAPTURE_REGIONS,
            .category_mask = CAPTURE_PAGE_IS_PRESENT,
            .return_mask = CAPTURE_PAGE_IS_PRESENT,
        };
        /* The kernel fills the regions; clearing them first costs little
         * and tells memory checkers (which do not know this ioctl) that
         * what we read back is defined. */
        memset(cap->regions, 0, sizeof(struct capture_page_region) * CAPTURE_REGIONS);
        int n = ioctl(cap->pagemap_fd, CAPTURE_PAGEMAP_SCAN, &arg);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct capture_page_region *r = &cap->regions[i];
            if (!capture_copy_run(cap, r->start, (r->end - r->start) / cap->page))
                return 0;       /* write error: the caller sees write_err */
        }
        if (arg.walk_end <= cur)  /* no progress: do not loop forever */
            break;
        cur = arg.walk_end;
    }
    return 0;
}

/* Present pages of [start, end) from the pagemap entries.  0, or -1. */
static int capture_read_pagemap(struct capture *cap, uint64_t start, uint64_t end)
{
    uint64_t first = start / cap->page, last = end / cap->page;
    for (uint64_t vpn = first; vpn < last;) {
        uint64_t want = last - vpn < CAPTURE_PM_ENTRIES ? last - vpn : CAPTURE_PM_ENTRIES;
        size_t got = capture_pread_all(cap->pagemap_fd, cap->pm, want * sizeof(uint64_t),
                                       vpn * sizeof(uint64_t));
        uint64_t n = got / sizeof(uint64_t);
        if (n == 0)
            return -1;
        /* copy each run of present pages in one go */
        for (uint64_t i = 0; i < n;) {
            if (!(cap->pm[i] & CAPTURE_PM_PRESENT)) {
                i++;
                continue;
            }
            uint64_t j = i;
            while (j < n && (cap->pm[j] & CAPTURE_PM_PRESENT))
                j++;
            if (!capture_copy_run(cap, (vpn + i) * cap->page, j - i))
                return 0;
            i = j;
        }
        vpn += n;
    }
    return 0;
}

/* Capture one mapping.  Returns false only when writing OUT failed. */
static bool capture_range(struct capture *cap, uint64_t start, uint64_t end)
{
    cap->maps++;
    int r = -1;
    if (!cap->no_scan) {
        r = capture_scan(cap, start, end);
        if (r < 0 && (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP)) {
            cap->no_scan = true;    /* an older kernel: from now on read entries */
            r = -1;
        } else if (r < 0) {
            cap->maps_skipped++;
            return true;
        }
    }
    if (cap->no_scan)
        r = capture_read_pagemap(cap, start, end);
    if (r < 0)
        cap->maps_skipped++;
    return cap->write_err == 0;
}

/* Kernel-provided mappings that are not the process's memory. */
static bool capture_special(const char *name)
{
    static const char *const special[] = {
        "[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]", "[uprobes]",
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (strcmp(name, special[i]) == 0)
            return true;
    return false;
}

/* Parse one line of /proc/PID/maps ("start-end perms offset dev inode
 * [name]").  True if it is a mapping to capture. */
static bool capture_wanted(const char *line, uint64_t *start, uint64_t *end)
{
    char perms[8];
    int name_at = 0;
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*x %*x:%*x %*u %n", start, end, perms,
               &name_at) < 3 || name_at == 0)
        return false;
    if (strlen(perms) != 4 || perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p')
        return false;
    char name[64];
    size_t len = strcspn(line + name_at, "\n");
    if (len > 0 && len < sizeof name) {
        memcpy(name, line + name_at, len);
        name[len] = '\0';
        if (capture_special(name))
            return false;
    }
    return *end > *start;
}

/* Open /proc/PID/<what>, printing why not on failure. */
static int capture_open_proc(pid_t pid, const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH)
            fprintf(stderr, "uzram capture: no process with pid %d\n", (int)pid);
        else if (errno == EACCES || errno == EPERM)
            fprintf(stderr, "uzram capture: %s: permission denied (reading another "
                    "process's memory needs ptrace access: run as its owner or as root)\n",
                    path);
        else
            fprintf(stderr, "uzram capture: %s: %s\n", path, strerror(errno));
    }
    return fd;
}

/* Parse a PID: digits only (no sign, no blanks), positive, fits a pid_t. */
static bool capture_parse_pid(const char *s, pid_t *pid)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v <= 0 || v > INT_MAX)
        return false;
    *pid = (pid_t)v;
    return true;
}

/*
 * uzram capture PID OUT
 *
 * argv[0] is the subcommand's name ("capture"), argv[1] the PID and
 * argv[2] the output file.  Returns the exit code: 0 on success (even if
 * some mappings or pages could not be read; the summary counts them), 1 on
 * bad arguments or any error that stops the capture.
 *
 *     char *args[] = { "capture", "1234", "/tmp/p.pages", NULL };
 *     int rc = cmd_capture(3, args);
 */
int cmd_capture(int argc, char **argv)
{
    if (argc != 3) {
        capture_usage();
        return 1;
    }
    struct capture cap = { .pagemap_fd = -1, .mem_fd = -1, .out_fd = -1 };
    if (!capture_parse_pid(argv[1], &cap.pid)) {
        fprintf(stderr, "uzram capture: '%s' is not a process id\n", argv[1]);
        capture_usage();
        return 1;
    }
    long ps = sysconf(_SC_PAGESIZE);
    cap.page = ps > 0 ? (size_t)ps : 4096;
    cap.no_scan = capture_force_pagemap;

    int rc = 1;
    FILE *maps = NULL;
    char *line = NULL;
    size_t line_cap = 0;

    int maps_fd = capture_open_proc(cap.pid, "maps");
    if (maps_fd < 0)
        goto out;
    maps = fdopen(maps_fd, "r");
    if (!maps) {
        fprintf(stderr, "uzram capture: %s\n", strerror(errno));
        close(maps_fd);
        goto out;
    }
    cap.pagemap_fd = capture_open_proc(cap.pid, "pagemap");
    if (cap.pagemap_fd < 0)
        goto out;
    cap.mem_fd = capture_open_proc(cap.pid, "mem");
    if (cap.mem_fd < 0)
        goto out;
    cap.buf = malloc((size_t)CAPTURE_BATCH * cap.page);
    cap.pm = malloc(CAPTURE_PM_ENTRIES * sizeof *cap.pm);
    cap.regions = malloc(CAPTURE_REGIONS * sizeof *cap.regions);
    if (!cap.buf || !cap.pm || !cap.regions) {
        fprintf(stderr, "uzram capture: out of memory\n");
        goto out;
    }
    cap.out_fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (cap.out_fd < 0) {
        fprintf(stderr, "uzram capture: %s: %s\n", argv[2], strerror(errno));
        goto out;
    }

    /* The maps file of a process that exits mid-read simply ends. */
    errno = 0;
    while (getline(&line, &line_cap, maps) > 0) {
        uint64_t start, end;
        if (!capture_wanted(line, &start, &end))
            continue;
        if (!capture_range(&cap, start, end)) {
            fprintf(stderr, "uzram capture: writing %s: %s\n", argv[2], strerror(cap.write_err));
            goto out;
        }
    }
    if (ferror(maps)) {
        fprintf(stderr, "uzram capture: reading /proc/%d/maps: %s\n", (int)cap.pid,
                strerror(errno ? errno : EIO));
        goto out;
    }
    if (cap.maps == 0 && kill(cap.pid, 0) < 0 && errno == ESRCH) {
        fprintf(stderr, "uzram capture: process %d exited before it could be read\n",
                (int)cap.pid);
        goto out;
    }
    if (fsync(cap.out_fd) < 0 && errno != EINVAL && errno != EROFS) {
        fprintf(stderr, "uzram capture: writing %s: %s\n", argv[2], strerror(errno));
        goto out;
    }

    fprintf(stderr, "captured %" PRIu64 " pages (%.1f MiB) from %d",
            cap.pages, (double)(cap.pages * cap.page) / (1024.0 * 1024.0), (int)cap.pid);
    if (cap.maps_skipped || cap.pages_skipped)
        fprintf(stderr, "; skipped %" PRIu64 " unreadable mapping%s and %" PRIu64
                " unreadable page%s", cap.maps_skipped, cap.maps_skipped == 1 ? "" : "s",
                cap.pages_skipped, cap.pages_skipped == 1 ? "" : "s");
    fputc('\n', stderr);
    rc = 0;

out:
    free(line);
    if (maps)
        fclose(maps);
    if (cap.pagemap_fd >= 0)
        close(cap.pagemap_fd);
    if (cap.mem_fd >= 0)
        close(cap.mem_fd);
    if (cap.out_fd >= 0 && close(cap.out_fd) < 0 && rc == 0) {
        fprintf(stderr, "uzram capture: writing %s: %s\n", argv[2], strerror(errno));
        rc = 1;
    }
    free(cap.buf);
    free(cap.pm);
    free(cap.regions);
    return rc;
}
