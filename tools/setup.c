/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * setup.c - a uzram device put to use as swap or a filesystem, and back.
 *
 * Up, in order, each step undone (in reverse) if a later one fails:
 *
 *   1. mkdir RUNDIR/NAME                      (rmdir)
 *   2. uzram mount RUNDIR/NAME --size 0 ...   (uzram umount)
 *        an uninitialised device, as a new zram is after hot_add, so the
 *        attributes zram takes only before disksize can still be set
 *   3. write the "pre" attributes, disksize, the "post" attributes
 *   4. losetup --direct-io=on --sector-size 4096 -f --show DIR/disk
 *        (losetup -d)
 *        direct I/O: no second copy of every page in the page cache, and
 *        half the latency of a buffered loop device's writes; 4 KiB
 *        sectors: every request whole pages of the device
 *        (docs/fuse-uring.md, "The loop hop")
 *   5. mkswap + swapon -p PRIO -o OPTIONS      (swapoff)
 *      or mkfs.TYPE + mount -o OPTIONS at the mount point (umount)
 *
 * Down finds the loop device through /sys/block/loopN/loop/backing_file
 * (DIR/disk), so it works from a fresh process with no state file: swapoff
 * or umount what uses it, detach it, unmount DIR (the daemon frees the
 * device and exits), remove DIR.
 *
 * Everything runs the real tools (run.c); their own messages reach the
 * user on stderr, and each failure adds which step it was.
 */
#define _GNU_SOURCE
#include "setup.h"
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Attributes zram accepts only while the device is uninitialised. */
static const char *const pre_init[] = {"comp_algorithm", "algorithm_params", "recomp_algorithm",
                                       "backing_dev",    "group_pages",      "max_comp_streams"};

void setup_init(struct setup *s)
{
    memset(s, 0, sizeof *s);
    s->fs_type = "swap";
    s->priority = -1;
}

int setup_arg(struct setup *s, const char *arg)
{
    if (s->nmount_args >= UZ_SETUP_MAX_ARGS)
        return -E2BIG;
    s->mount_args[s->nmount_args++] = arg;
    return 0;
}

int setup_attr(struct setup *s, const char *nv)
{
    const char *eq = strchr(nv, '=');
    if (!eq || eq == nv)
        return -EINVAL;
    bool pre = false;
    for (size_t i = 0; i < sizeof pre_init / sizeof pre_init[0]; i++)
        if (strlen(pre_init[i]) == (size_t)(eq - nv) && !strncmp(nv, pre_init[i], (size_t)(eq - nv)))
            pre = true;
    if (pre) {
        if (s->npre >= UZ_SETUP_MAX_ATTRS)
            return -E2BIG;
        s->pre[s->npre++] = nv;
    } else {
        if (s->npost >= UZ_SETUP_MAX_ATTRS)
            return -E2BIG;
        s->post[s->npost++] = nv;
    }
    return 0;
}

const char *setup_rundir(void)
{
    const char *d = getenv("UZRAM_RUNDIR");
    return d && *d ? d : "/run/uzram";
}

/* ---------------------------------------------------------------- helpers */

/* Run argv; on failure say which step it was.  0 or -1. */
static int step(const char *cmd, const char *what, char *const argv[], char *out, size_t outsize)
{
    int rc = run_program(argv, out, outsize, out == NULL);
    if (rc == 0)
        return 0;
    if (rc < 0)
        fprintf(stderr, "%s: %s: cannot run %s: %s\n", cmd, what, argv[0], strerror(-rc));
    else
        fprintf(stderr, "%s: %s: %s failed (exit status %d)\n", cmd, what, argv[0], rc);
    return -1;
}

/* Write value to DIR/name as `echo value > DIR/name` would. */
static int write_attr(const char *cmd, const char *dir, const char *name, const char *value)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s%s\n", cmd, path, strerror(errno),
                errno == ENOENT ? " (no such attribute)" : "");
        return -1;
    }
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    int e = errno;
    close(fd);
    if (n != (ssize_t)len) {
        fprintf(stderr, "%s: writing '%s' to %s: %s\n", cmd, value, path,
                n < 0 ? strerror(e) : "short write");
        return -1;
    }
    return 0;
}

static int write_nv(const char *cmd, const char *dir, const char *nv)
{
    const char *eq = strchr(nv, '=');
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(eq - nv), nv);
    return write_attr(cmd, dir, name, eq + 1);
}

static bool is_uzram_mount(const char *dir)
{
    FILE *fp = fopen("/proc/self/mounts", "r");
    if (!fp)
        return false;
    char line[4096], src[PATH_MAX], mnt[PATH_MAX], type[64];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp))
        if (sscanf(line, "%4095s %4095s %63s", src, mnt, type) == 3 && !strcmp(mnt, dir) &&
            !strcmp(type, "fuse.uzram"))
            found = true;
    fclose(fp);
    return found;
}

/* The first loop device whose backing file is dir/disk, as "/dev/loopN"
 * into out; false if there is none. */
bool setup_loop_of(const char *dir, char *out, size_t size)
{
    char disk[PATH_MAX + 8];
    snprintf(disk, sizeof disk, "%s/disk", dir);
    DIR *d = opendir("/sys/block");
    if (!d)
        return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "loop", 4) != 0)
            continue;
        char path[PATH_MAX], back[PATH_MAX];
        snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", e->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        if (fgets(back, sizeof back, fp)) {
            back[strcspn(back, "\n")] = 0;
            if (!strcmp(back, disk)) {
                snprintf(out, size, "/dev/%.58s", e->d_name);
                found = true;
            }
        }
        fclose(fp);
    }
    closedir(d);
    return found;
}

bool setup_in_swaps(const char *dev)
{
    FILE *fp = fopen("/proc/swaps", "r");
    if (!fp)
        return false;
    char line[4096], name[PATH_MAX];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp))
        if (sscanf(line, "%4095s", name) == 1 && !strcmp(name, dev))
            found = true;
    fclose(fp);
    return found;
}

/* Undo the octal escapes (\040 for a blank) of /proc/mounts fields. */
void setup_unescape(char *s)
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
bool setup_mount_of(const char *dev, char *out, size_t size)
{
    FILE *fp = fopen("/proc/self/mounts", "r");
    if (!fp)
        return false;
    char line[4096], src[PATH_MAX], mnt[PATH_MAX];
    bool found = false;
    while (fgets(line, sizeof line, fp)) {
        if (sscanf(line, "%4095s %4095s", src, mnt) != 2)
            continue;
        setup_unescape(src);
        if (!strcmp(src, dev)) {
            setup_unescape(mnt);
            snprintf(out, size, "%s", mnt);
            found = true;
        }
    }
    fclose(fp);
    return found;
}

bool setup_is_swap(const char *dir)
{
    char loop[64];
    return setup_loop_of(dir, loop, sizeof loop) && setup_in_swaps(loop);
}

/* mkdir RUNDIR/name (or the first free RUNDIR/swapN) into dir. */
static int make_dir(const char *cmd, const char *name, char *dir, size_t size)
{
    const char *run = setup_rundir();
    if (mkdir(run, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: mkdir %s: %s\n", cmd, run, strerror(errno));
        return -1;
    }
    char *abs = realpath(run, NULL);
    if (!abs) {
        fprintf(stderr, "%s: %s: %s\n", cmd, run, strerror(errno));
        return -1;
    }
    int rc = -1;
    if (name) {
        if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
            fprintf(stderr, "%s: '%s' is not a device name (no '/')\n", cmd, name);
        } else {
            snprintf(dir, size, "%s/%s", abs, name);
            if (mkdir(dir, 0755) == 0)
                rc = 0;
            else if (errno == EEXIST)
                fprintf(stderr, "%s: %s exists: is %s already up?%s\n", cmd, dir, name,
                        is_uzram_mount(dir) ? "" : " (remove the directory if not)");
            else
                fprintf(stderr, "%s: mkdir %s: %s\n", cmd, dir, strerror(errno));
        }
    } else {
        for (int i = 0; i < 1024 && rc < 0; i++) {
            snprintf(dir, size, "%s/swap%d", abs, i);
            if (mkdir(dir, 0755) == 0)
                rc = 0;
            else if (errno != EEXIST) {
                fprintf(stderr, "%s: mkdir %s: %s\n", cmd, dir, strerror(errno));
                break;
            }
        }
    }
    free(abs);
    return rc;
}

/* ---------------------------------------------------------------- up */

int setup_up(const char *cmd, const struct setup *s, char *dir_out, size_t dirsize,
             char *loop_out, size_t loopsize)
{
    char dir[PATH_MAX], disk[PATH_MAX + 8], loop[64] = "", size[32];
    bool swap = !s->fs_type || !strcmp(s->fs_type, "swap");
    const char *opts = s->options ? s->options : "discard";
    if (!swap && (!s->mount_point || s->mount_point[0] != '/')) {
        fprintf(stderr, "%s: a %s filesystem needs an absolute mount point\n", cmd, s->fs_type);
        return 1;
    }
    if (s->disksize == 0) {
        fprintf(stderr, "%s: the size must be more than 0\n", cmd);
        return 1;
    }
    if (make_dir(cmd, s->name, dir, sizeof dir) < 0)
        return 1;
    int done = 0;   /* how many steps to undo */
    snprintf(disk, sizeof disk, "%s/disk", dir);

    /* 2: the mount, uninitialised */
    char *margv[UZ_SETUP_MAX_ARGS + 10];
    int m = 0;
    margv[m++] = (char *)self_exe();
    margv[m++] = "mount";
    margv[m++] = dir;
    margv[m++] = "--size";
    margv[m++] = "0";
    /* swap and file systems keep zram's single pages unless asked (a
     * later --group-pages among the options wins): the mount's own
     * default, auto, groups large writes, and a swap-in or a file system
     * block read would then decompress the whole group */
    margv[m++] = "--group-pages";
    margv[m++] = "1";
    for (int i = 0; i < s->nmount_args; i++)
        margv[m++] = (char *)s->mount_args[i];
    margv[m] = NULL;
    if (step(cmd, "mounting uzram", margv, NULL, 0) < 0)
        goto undo;
    done = 1;

    /* 3: attributes and disksize */
    for (int i = 0; i < s->npre; i++)
        if (write_nv(cmd, dir, s->pre[i]) < 0)
            goto undo;
    snprintf(size, sizeof size, "%" PRIu64, s->disksize);
    if (write_attr(cmd, dir, "disksize", size) < 0)
        goto undo;
    for (int i = 0; i < s->npost; i++)
        if (write_nv(cmd, dir, s->post[i]) < 0)
            goto undo;

    /* 4: the loop device */
    char *lo[] = {"losetup", "--direct-io=on", "--sector-size", "4096", "--find", "--show", disk, NULL};
    if (step(cmd, "attaching a loop device", lo, loop, sizeof loop) < 0 || !loop[0])
        goto undo;
    done = 2;

    /* 5: swap or a filesystem */
    if (swap) {
        char *mk[] = {"mkswap", loop, NULL};
        if (step(cmd, "making swap", mk, NULL, 0) < 0)
            goto undo;
        char prio[16];
        snprintf(prio, sizeof prio, "%d", s->priority);
        char *on[] = {"swapon", "-o", (char *)opts, loop, NULL};
        char *onp[] = {"swapon", "-p", prio, "-o", (char *)opts, loop, NULL};
        if (step(cmd, "enabling swap", s->priority >= 0 ? onp : on, NULL, 0) < 0)
            goto undo;
    } else {
        char mkfs[64];
        snprintf(mkfs, sizeof mkfs, "mkfs.%s", s->fs_type);
        char *mk[] = {mkfs, loop, NULL};
        char *mkq[] = {mkfs, "-q", loop, NULL};   /* ext2/3/4: not a page of output */
        bool ext = !strncmp(s->fs_type, "ext", 3);
        if (step(cmd, "making the filesystem", ext ? mkq : mk, NULL, 0) < 0)
            goto undo;
        if (mkdir(s->mount_point, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "%s: mkdir %s: %s\n", cmd, s->mount_point, strerror(errno));
            goto undo;
        }
        char *mo[] = {"mount", "-o", (char *)opts, loop, (char *)s->mount_point, NULL};
        if (step(cmd, "mounting the filesystem", mo, NULL, 0) < 0)
            goto undo;
        size_t n = strlen(s->mount_point);
        if (n >= 4 && !strcmp(s->mount_point + n - 4, "/tmp"))
            chmod(s->mount_point, 01777);   /* a /tmp is everyone's */
    }
    snprintf(dir_out, dirsize, "%s", dir);
    snprintf(loop_out, loopsize, "%s", loop);
    return 0;

undo:
    if (done >= 2) {
        char *d[] = {"losetup", "-d", loop, NULL};
        step(cmd, "undo: detaching the loop device", d, NULL, 0);
    }
    if (done >= 1) {
        char *u[] = {(char *)self_exe(), "umount", dir, NULL};
        step(cmd, "undo: unmounting uzram", u, NULL, 0);
    }
    rmdir(dir);
    return 1;
}

/* ---------------------------------------------------------------- down */

/* The mount directory target refers to, into dir. */
static int resolve(const char *cmd, const char *target, char *dir, size_t size)
{
    if (!strncmp(target, "/dev/", 5)) {
        const char *base = strrchr(target, '/') + 1;
        char path[PATH_MAX], back[PATH_MAX];
        snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", base);
        FILE *fp = fopen(path, "r");
        bool ok = fp && fgets(back, sizeof back, fp);
        if (fp)
            fclose(fp);
        back[ok ? strcspn(back, "\n") : 0] = 0;
        size_t n = strlen(back);
        if (!ok || n < 5 || strcmp(back + n - 5, "/disk") != 0) {
            fprintf(stderr, "%s: %s is not a loop device on a uzram disk\n", cmd, target);
            return -1;
        }
        snprintf(dir, size, "%.*s", (int)(n - 5), back);
        return 0;
    }
    char tmp[PATH_MAX];
    if (!strchr(target, '/'))
        snprintf(tmp, sizeof tmp, "%s/%s", setup_rundir(), target);
    else
        snprintf(tmp, sizeof tmp, "%s", target);
    char *abs = realpath(tmp, NULL);
    snprintf(dir, size, "%s", abs ? abs : tmp);
    free(abs);
    return 0;
}

int setup_down(const char *cmd, const char *target)
{
    char dir[PATH_MAX], loop[64], mnt[PATH_MAX];
    if (resolve(cmd, target, dir, sizeof dir) < 0)
        return 1;
    bool mounted = is_uzram_mount(dir);
    bool have_loop = mounted && setup_loop_of(dir, loop, sizeof loop);
    if (!mounted) {
        fprintf(stderr, "%s: %s: no uzram device is mounted there\n", cmd, dir);
        return 1;
    }
    if (have_loop) {
        if (setup_in_swaps(loop)) {
            char *off[] = {"swapoff", loop, NULL};
            if (step(cmd, "disabling swap", off, NULL, 0) < 0)
                return 1;
        }
        while (setup_mount_of(loop, mnt, sizeof mnt)) {
            char *um[] = {"umount", mnt, NULL};
            if (step(cmd, "unmounting the filesystem", um, NULL, 0) < 0)
                return 1;
        }
        char *d[] = {"losetup", "-d", loop, NULL};
        if (step(cmd, "detaching the loop device", d, NULL, 0) < 0)
            return 1;
    }
    char *u[] = {(char *)self_exe(), "umount", dir, NULL};
    if (step(cmd, "unmounting uzram", u, NULL, 0) < 0)
        return 1;
    /* the directory goes too if swapon or up made it (it is in RUNDIR) */
    char *run = realpath(setup_rundir(), NULL);
    size_t n = run ? strlen(run) : 0;
    if (run && !strncmp(dir, run, n) && dir[n] == '/' && !strchr(dir + n + 1, '/'))
        rmdir(dir);
    free(run);
    return 0;
}
