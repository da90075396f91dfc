/*
 * fuse.h - serve a uzram device as a directory (FUSE).
 *
 * The directory looks like /sys/block/zramN with the block device added:
 *
 *     DIR/disk            the device's bytes, disksize long (read, write,
 *                         fallocate PUNCH_HOLE|KEEP_SIZE = discard,
 *                         ZERO_RANGE = write zeroes, fsync = flush)
 *     DIR/disksize        one file per zram attribute, with the mode
 *     DIR/mm_stat ...     uzram_attr_name() gives; reading one shows the
 *                         value fresh, writing one is a single store whose
 *                         error the writer gets as errno (EINVAL, EBUSY...)
 *
 * so `losetup -f DIR/disk` makes a block device of it (swap, ext4, ...)
 * and `cat DIR/mm_stat`, `echo 1 > DIR/compact` work as on sysfs.  Both
 * kinds of file are opened direct_io: the page cache never holds a second
 * copy of the disk, and every read of an attribute calls show.
 *
 * The server runs on its own fixed pool of threads, all created by
 * uz_fuse_start(); its I/O path allocates nothing (requests are decoded in
 * each thread's receive buffer and reads are copied out of a buffer
 * preallocated per thread), and each thread runs with PR_SET_IO_FLUSHER so
 * that the kernel does not recurse into swap to give it memory.  A process
 * that serves swap should also lock its memory (uzram_lock_memory()).
 * While DIR/disk is open the server holds the device open (uzram_open):
 * reset and the other reshaping stores are EBUSY, as on zram.
 *
 * Usage (the nbdkit plugin's control=DIR, attributes only):
 *
 *     struct uz_fuse_opts o;
 *     uz_fuse_opts_init(&o);
 *     o.expose_disk = false;
 *     struct uz_fuse *f;
 *     int err = uz_fuse_start(dev, "/run/uzram-ctl", &o, &f);
 *     ...
 *     uz_fuse_stop(f);
 *
 * Signals: the workers block every signal but SIGRTMAX-2, which
 * uz_fuse_stop() sends them to interrupt their read of /dev/fuse; its
 * handler is installed by uz_fuse_start() unless the process has one (which
 * then must not use SA_RESTART).
 *
 * Thread-safety: uz_fuse_start / uz_fuse_stop on one server must not race
 * with each other; uz_fuse_end_fd() may be polled from any thread.  The
 * device must outlive the server (destroy it after uz_fuse_stop()).
 */
#ifndef UZRAM_FUSE_H
#define UZRAM_FUSE_H

#include <stdbool.h>

#include "uzram.h"

struct uz_fuse;

#define UZ_FUSE_MAX_THREADS 64   /* most worker threads a server runs */

struct uz_fuse_opts {
    /* Show DIR/disk (default true).  false: attribute files only. */
    bool expose_disk;
    /* Source and type in /proc/mounts: "uzram" and "uzram" give
     * "uzram DIR fuse.uzram ...". */
    const char *fsname;
    const char *subtype;
    /* Worker threads serving requests (default 8, at most
     * UZ_FUSE_MAX_THREADS). */
    unsigned threads;
    /* Let users other than the mounting one in (default: true when the
     * mounter is root; otherwise it needs user_allow_other in
     * /etc/fuse.conf). */
    bool allow_other;
};

/* Fill *o with the defaults above.  Never fails. */
void uz_fuse_opts_init(struct uz_fuse_opts *o);

/*
 * Mount DIR (an existing directory) and serve dev there from background
 * threads.  o may be NULL for the defaults.  Returns 0 and the server in
 * *out, or a negative errno (-ENOTDIR, -ENOENT, -EPERM, -ENOMEM, -EIO for
 * a failed mount) with a message in uzram_last_error() style on stderr.
 * Nothing stays mounted on error.
 */
int uz_fuse_start(struct uzram *dev, const char *dir, const struct uz_fuse_opts *o,
                  struct uz_fuse **out);

/*
 * Unmount (lazily, so it never fails), wait for every worker to finish
 * its request and exit, and free the server.  If something still uses
 * DIR/disk after two seconds (a loop device left attached), the
 * workers are stopped anyway and that user's I/O fails from then on.
 * NULL is accepted.  The device is not destroyed.
 */
void uz_fuse_stop(struct uz_fuse *f);

/*
 * A descriptor that becomes readable (POLLIN) once the mount has ended
 * from outside: `umount DIR`, `fusermount3 -u DIR`, or an abort of the
 * connection.  A daemon polls it next to its signals and then calls
 * uz_fuse_stop().  Owned by the server; do not close or read it.
 */
int uz_fuse_end_fd(const struct uz_fuse *f);

#endif
