/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * setup.h - bringing a uzram device into use and taking it out again:
 * the steps `uzram swapon`, `uzram up` (a device of /etc/uzram.conf) and
 * their reverses share.
 */
#ifndef UZRAM_SETUP_H
#define UZRAM_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UZ_SETUP_MAX_ARGS 32
#define UZ_SETUP_MAX_ATTRS 16

/* One device to bring up.  Strings are borrowed; zero-initialise, then
 * fill in (setup_init sets the defaults). */
struct setup {
    const char *name;        /* RUNDIR/name is the mount; NULL: first free "swapN" */
    uint64_t disksize;       /* bytes, > 0 */
    /* extra arguments to `uzram mount` (--algorithm A, --mem-limit M, ...) */
    const char *mount_args[UZ_SETUP_MAX_ARGS];
    int nmount_args;
    /* attribute writes "NAME=VALUE": those zram takes only before
     * disksize (recomp_algorithm, algorithm_params, ...) go before it,
     * the others after (setup_attr sorts them) */
    const char *pre[UZ_SETUP_MAX_ATTRS], *post[UZ_SETUP_MAX_ATTRS];
    int npre, npost;
    const char *fs_type;     /* "swap" (default) or a mkfs.TYPE type */
    const char *mount_point; /* where a filesystem goes (required unless swap) */
    const char *options;     /* swapon -o / mount -o list; NULL: "discard" */
    int priority;            /* swap priority, -1 = the kernel's default */
};

void setup_init(struct setup *s);

/* Append a mount argument / an attribute write "NAME=VALUE".  -E2BIG when
 * full, -EINVAL for an attribute without '='. */
int setup_arg(struct setup *s, const char *arg);
int setup_attr(struct setup *s, const char *name_eq_value);

/* The directory the mounts live in: $UZRAM_RUNDIR, or /run/uzram. */
const char *setup_rundir(void);

/*
 * Mount the device at RUNDIR/name (`uzram mount --size 0`, then the
 * attribute writes and disksize), attach a loop device with direct I/O,
 * then mkswap + swapon, or mkfs + mount.  A failing step undoes the ones
 * before it.  On success the mount directory and the loop device are
 * copied to dir and loop.  cmd names the command in error messages.
 * Returns 0 or 1 (errors printed).
 */
int setup_up(const char *cmd, const struct setup *s, char *dir, size_t dirsize,
             char *loop, size_t loopsize);

/*
 * Take down the device target names (its mount directory, its loop
 * device /dev/loopN, or a name under RUNDIR): swapoff or umount the loop
 * device, detach it, `uzram umount` the directory, remove it.  Returns 0
 * or 1 (errors printed).
 */
int setup_down(const char *cmd, const char *target);

/* Is the directory's loop device an active swap?  (For `uzram swapoff`
 * with no argument.) */
bool setup_is_swap(const char *dir);
/* The first loop device whose backing file is DIR/disk, as "/dev/loopN",
 * into out; false if there is none.  Cannot fail otherwise. */
bool setup_loop_of(const char *dir, char *out, size_t size);
/* The last (topmost) mount point of source dev in /proc/self/mounts,
 * unescaped, into out; false if it is not mounted. */
bool setup_mount_of(const char *dev, char *out, size_t size);
/* Undo the octal escapes (\040 for a blank) of a /proc/mounts field. */
void setup_unescape(char *s);
/* Is dev (a /dev path) an active swap device (/proc/swaps)? */
bool setup_in_swaps(const char *dev);

#endif
