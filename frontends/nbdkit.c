/*
 * nbdkit.c - the uzram nbdkit plugin: a compressed RAM disk served over NBD.
 *
 *     nbdkit build/nbdkit-uzram-plugin.so size=1G \
 *            [algorithm=zstd] [level=3] [allocator=zsmalloc] \
 *            [mem_limit=256M] [backing_dev=PATH] [group_pages=auto|K] [dedup=0|1|auto]
 *            [mlock=true]
 *            [control=DIR]
 *
 * A thin adaptor: configuration and callbacks over libuzram, nothing else.
 * Its one default that differs from the library's is group_pages=auto
 * (UZRAM_GROUP_AUTO): large writes, such as a copy onto the export, are
 * compressed in aligned groups of up to 8 pages (faster and smaller with
 * zstd), small random writes page by page.
 * One device exists per nbdkit process and every connection shares it (as
 * with nbdkit-memory-plugin), so the export can be opened by several
 * clients, or one client over several connections (multi-conn).  The
 * library's data path is thread-safe without a device-wide lock, so the
 * thread model is fully parallel.
 *
 * Lifecycle (see nbdkit-plugin(3), "Callback lifecycle"):
 *   config / config_complete   parse and check the parameters
 *   get_ready                  create the device (before nbdkit forks, so a
 *                              bad algorithm or size fails the start with a
 *                              clear message on the terminal)
 *   after_fork                 lock memory (mlockall: locks do not survive
 *                              fork) and start the FUSE control mount
 *                              (threads do not survive fork either)
 *   cleanup / unload           stop the mount, free the device
 *
 * mlock=true (the default) makes the process behave as a swap backend must:
 * every page it holds stays in RAM (mlockall with MCL_ONFAULT, so address
 * space reserved for the slot table costs nothing until touched), and the
 * serving threads are marked as I/O flushers where the kernel allows it, so
 * that serving a request never waits on the swap-out it is part of.
 *
 * control=DIR (only when built with FUSE) mounts the zram attribute files
 * of the running export at DIR: `cat DIR/mm_stat`, `echo 1 > DIR/compact`.
 */
#define _GNU_SOURCE
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uzram.h"
#ifdef UZ_HAVE_FUSE
#include "fuse.h"
#endif

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL


/* Largest request advertised.  The NBD protocol recommends servers accept
 * at least 32 MiB of payload, and nbdkit itself rejects data requests over
 * 64 MiB, so promising more than 32 MiB would only invite failures. */
#define UZ_NBD_MAX_BLOCK (32u * 1024 * 1024)

/* Stop an extents reply after this many extents: nbdkit allows returning
 * less than the whole range, and the client asks again from where it ends. */
#define UZ_NBD_MAX_EXTENTS 65536

/* Parameters, as given on the command line. */
static struct uzram_config cfg;
static int64_t cfg_size = -1;
static bool cfg_mlock = true;
static char *cfg_control;          /* absolute path, or NULL */

/* The one device every connection shares. */
static struct uzram *dev;
#ifdef UZ_HAVE_FUSE
static struct uz_fuse *control;    /* the running control mount, or NULL */
#endif

/* Report a library failure: the detailed message of this thread's last
 * error if there is one, and the errno nbdkit sends to the client. */
static int fail(const char *what, int rc)
{
    const char *msg = uzram_last_error();
    nbdkit_error("uzram: %s: %s", what, msg && *msg ? msg : uzram_strerror(rc));
    nbdkit_set_error(-rc);
    return -1;
}

/* ------------------------------------------------------------ configuration */

static void uz_load(void)
{
    uzram_config_init(&cfg);
    cfg.group_pages = UZRAM_GROUP_AUTO;
}

static int uz_config(const char *key, const char *value)
{
    if (strcmp(key, "size") == 0) {
        cfg_size = nbdkit_parse_size(value);
        if (cfg_size == -1)
            return -1;                      /* nbdkit_parse_size reported it */
        if (cfg_size == 0) {
            nbdkit_error("uzram: size must be greater than 0");
            return -1;
        }
    } else if (strcmp(key, "algorithm") == 0) {
        cfg.algorithm = nbdkit_strdup_intern(value);
        if (!cfg.algorithm)
            return -1;
    } else if (strcmp(key, "level") == 0) {
        if (nbdkit_parse_int("level", value, &cfg.level) == -1)
            return -1;
    } else if (strcmp(key, "allocator") == 0) {
        cfg.allocator = nbdkit_strdup_intern(value);
        if (!cfg.allocator)
            return -1;
    } else if (strcmp(key, "mem_limit") == 0) {
        int64_t r = nbdkit_parse_size(value);
        if (r == -1)
            return -1;
        cfg.mem_limit = (uint64_t)r;
    } else if (strcmp(key, "dedup") == 0) {
        if (strcmp(value, "0") && strcmp(value, "1") && strcmp(value, "auto") &&
            strcmp(value, "on") && strcmp(value, "off")) {
            nbdkit_error("uzram: dedup=%s: give 0, 1 or auto", value);
            return -1;
        }
        cfg.dedup = nbdkit_strdup_intern(value);
        if (!cfg.dedup)
            return -1;
    } else if (strcmp(key, "group_pages") == 0) {
        if (strcmp(value, "auto") == 0)
            cfg.group_pages = UZRAM_GROUP_AUTO;
        else if (nbdkit_parse_uint32_t("group_pages", value, &cfg.group_pages) == -1)
            return -1;
    } else if (strcmp(key, "backing_dev") == 0) {
        /* nbdkit changes directory to / when it daemonises */
        cfg.backing_dev = nbdkit_realpath(value);
        if (!cfg.backing_dev)
            return -1;
    } else if (strcmp(key, "mlock") == 0) {
        int r = nbdkit_parse_bool(value);
        if (r == -1)
            return -1;
        cfg_mlock = r;
    } else if (strcmp(key, "control") == 0) {
#ifdef UZ_HAVE_FUSE
        free(cfg_control);
        /* nbdkit changes directory to / when it daemonises. */
        cfg_control = nbdkit_absolute_path(value);
        if (!cfg_control)
            return -1;
#else
        nbdkit_error("uzram: control=%s: this plugin was built without FUSE support", value);
        return -1;
#endif
    } else {
        nbdkit_error("uzram: unknown parameter '%s'", key);
        return -1;
    }
    return 0;
}

static int uz_config_complete(void)
{
    if (cfg_size == -1) {
        nbdkit_error("uzram: you must give the disk size: size=SIZE (e.g. size=1G)");
        return -1;
    }
    cfg.disksize = (uint64_t)cfg_size;
    return 0;
}

#define uz_config_help \
    "size=<SIZE>         (required) Disk size, e.g. 1G (rounded up to 4K).\n" \
    "algorithm=<NAME>    Compressor: lz4 (default), lz4hc, lzo, zstd, deflate.\n" \
    "level=<N>           Compression level (0 = the algorithm's default).\n" \
    "allocator=<NAME>    Allocator for compressed pages (default zsmalloc).\n" \
    "mem_limit=<SIZE>    Cap on memory for compressed pages (0 = none).\n" \
    "backing_dev=<PATH>  File or block device for writeback and over-limit pages.\n" \
    "group_pages=<K>     Compress aligned runs of K pages (1, 2, 4, 8) as one unit, or auto\n" \
    "                    (default): each write uses the largest aligned run of 8, 4 or 2\n" \
    "                    pages it covers, pages alone for the rest.\n" \
    "dedup=<MODE>        0, 1 or auto: store identical pages once (default auto: a sample\n" \
    "                    of pages is looked up, every page once duplicates are common).\n" \
    "mlock=<BOOL>        Lock the server's memory, as swap needs (default true).\n" \
    "control=<DIR>       Mount the zram attribute files at DIR (FUSE)."

static void uz_dump_plugin(void)
{
    printf("uzram_version=%s\n", uzram_version());
    printf("uzram_algorithms=");
    for (unsigned i = 0; uzram_algorithm_name(i); i++)
        printf("%s%s", i ? "," : "", uzram_algorithm_name(i));
    printf("\n");
#ifdef UZ_HAVE_FUSE
    printf("uzram_control=yes\n");
#else
    printf("uzram_control=no\n");
#endif
}

/* ------------------------------------------------------------ lifecycle */

/* Lock the process's memory as a swap backend must (uzram_lock_memory:
 * mlockall on fault, the library told, PR_SET_IO_FLUSHER where allowed). */
static int lock_memory(void)
{
    int rc = uzram_lock_memory();
    if (rc < 0) {
        nbdkit_error("uzram: %s (run as root, raise RLIMIT_MEMLOCK to unlimited, or pass "
                     "mlock=false)", uzram_last_error());
        return -1;
    }
    return 0;
}

static int uz_get_ready(void)
{
    /* The real lock is taken in after_fork (locks do not survive fork);
     * try it here once so that a missing privilege stops the start with
     * a message on the terminal, not in the daemon's log. */
    if (cfg_mlock) {
        if (lock_memory() == -1)
            return -1;
        uzram_unlock_memory();
    }
    int rc = uzram_create(&cfg, &dev);
    if (rc < 0) {
        const char *msg = uzram_last_error();
        nbdkit_error("uzram: cannot create the device: %s",
                     msg && *msg ? msg : uzram_strerror(rc));
        return -1;
    }
    return 0;
}

static int uz_after_fork(void)
{
    if (cfg_mlock && lock_memory() == -1)
        return -1;
#ifdef UZ_HAVE_FUSE
    if (cfg_control) {
        struct uz_fuse_opts o;
        uz_fuse_opts_init(&o);
        o.expose_disk = false;      /* the disk is the NBD export */
        o.threads = 2;              /* attribute files only: little traffic */
        int rc = uz_fuse_start(dev, cfg_control, &o, &control);
        if (rc < 0) {
            nbdkit_error("uzram: control=%s: cannot mount the attribute files: %s",
                         cfg_control, uzram_strerror(rc));
            control = NULL;
            return -1;
        }
    }
#endif
    return 0;
}

static void stop_control(void)
{
#ifdef UZ_HAVE_FUSE
    if (control) {
        uz_fuse_stop(control);
        control = NULL;
    }
#endif
}

static void uz_cleanup(void)
{
    stop_control();
}

static void uz_unload(void)
{
    /* cleanup is not guaranteed to run; stopping twice is harmless. */
    stop_control();
    uzram_destroy(dev);
    dev = NULL;
    free(cfg_control);
    cfg_control = NULL;
}

/* ------------------------------------------------------------ connections */

/* Each connection holds the device open, as an opener of /dev/zramN
 * does: reset, disksize and the algorithm stores through control=DIR get
 * EBUSY while a client is connected, and the client keeps its data. */
static void *uz_open(int readonly)
{
    uzram_open(dev);
    return NBDKIT_HANDLE_NOT_NEEDED;
}

static void uz_close(void *handle)
{
    uzram_close(dev);
}

static int64_t uz_get_size(void *handle)
{
    return (int64_t)uzram_disksize(dev);
}

static int uz_block_size(void *handle, uint32_t *minimum, uint32_t *preferred,
                         uint32_t *maximum)
{
    *minimum = 1;                   /* any byte range works */
    /* Smaller writes read-modify-write: a page, or with group_pages K a
     * group of K pages, which is compressed as one unit only when a write
     * covers it whole.  With auto any whole page is stored without
     * touching its neighbours (larger writes form groups by themselves). */
    *preferred = UZRAM_PAGE_SIZE *
                 (cfg.group_pages > 1 && cfg.group_pages != UZRAM_GROUP_AUTO ? cfg.group_pages : 1);
    *maximum = UZ_NBD_MAX_BLOCK;
    return 0;
}

/* Everything is true: the store is RAM, so data is durable (for as long as
 * the process lives) when a write returns, zeroing is always a matter of
 * dropping pages, and all connections see one device. */
static int uz_true(void *handle)
{
    return 1;
}

static int uz_false(void *handle)
{
    return 0;
}

static int uz_can_fua(void *handle)
{
    return NBDKIT_FUA_NATIVE;
}

static int uz_can_cache(void *handle)
{
    return NBDKIT_CACHE_NATIVE;
}

/* ------------------------------------------------------------ data path */

static int uz_pread(void *handle, void *buf, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
    int rc = uzram_read(dev, buf, count, offset);
    return rc < 0 ? fail("read", rc) : 0;
}

/* FUA needs nothing more: the data is in the store when uzram_write
 * returns. */
static int uz_pwrite(void *handle, const void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags)
{
    int rc = uzram_write(dev, buf, count, offset);
    return rc < 0 ? fail("write", rc) : 0;
}

static int uz_flush(void *handle, uint32_t flags)
{
    int rc = uzram_flush(dev);
    return rc < 0 ? fail("flush", rc) : 0;
}

static int uz_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    int rc = uzram_discard(dev, count, offset);
    return rc < 0 ? fail("trim", rc) : 0;
}

/* Zeroing drops the pages whether or not the client allows a hole
 * (NBDKIT_FLAG_MAY_TRIM): a dropped page reads as zeros and costs nothing.
 * It is always fast, so NBDKIT_FLAG_FAST_ZERO needs no special case. */
static int uz_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    int rc = uzram_write_zeroes(dev, count, offset);
    return rc < 0 ? fail("zero", rc) : 0;
}

/* Everything is in RAM already: there is nothing to prefetch. */
static int uz_cache(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    return 0;
}

/* Pages that read as zeros without being stored (never written, trimmed,
 * or written as zeros) are holes; runs of pages in the same state are
 * reported as one extent.  Extents are clipped to [offset, offset+count):
 * nbdkit 1.32 asserts that none is longer than the request. */
static int uz_extents(void *handle, uint32_t count, uint64_t offset,
                      uint32_t flags, struct nbdkit_extents *extents)
{
    uint64_t size = uzram_disksize(dev);
    uint64_t end = offset + count;
    uint64_t pos = offset;
    unsigned added = 0;

    if (end > size)
        end = size;
    while (pos < end) {
        int state = uzram_page_state(dev, pos);
        if (state < 0)
            return fail("extents", state);
        /* the run ends at the first page boundary past pos whose page
         * differs, or at end */
        uint64_t run = pos - pos % UZRAM_PAGE_SIZE + UZRAM_PAGE_SIZE;
        while (run < end) {
            int next = uzram_page_state(dev, run);
            if (next < 0)
                return fail("extents", next);
            if (next != state)
                break;
            run += UZRAM_PAGE_SIZE;
        }
        if (run > end)
            run = end;
        uint32_t type = state == UZRAM_PAGE_ZERO
            ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0;
        if (nbdkit_add_extent(extents, pos, run - pos, type) == -1)
            return -1;
        pos = run;
        if ((flags & NBDKIT_FLAG_REQ_ONE) || ++added == UZ_NBD_MAX_EXTENTS)
            break;
    }
    return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "uzram",
    .longname = "uzram compressed RAM disk",
    .version = UZRAM_VERSION_STRING,
    .description = "A RAM disk whose pages are compressed, as with Linux zram.",
    .magic_config_key = "size",
    .load = uz_load,
    .unload = uz_unload,
    .config = uz_config,
    .config_complete = uz_config_complete,
    .config_help = uz_config_help,
    .dump_plugin = uz_dump_plugin,
    .get_ready = uz_get_ready,
    .after_fork = uz_after_fork,
    .cleanup = uz_cleanup,
    .open = uz_open,
    .close = uz_close,
    .get_size = uz_get_size,
    .block_size = uz_block_size,
    .can_write = uz_true,
    .can_flush = uz_true,
    .is_rotational = uz_false,
    .can_trim = uz_true,
    .can_zero = uz_true,
    .can_fast_zero = uz_true,
    .can_fua = uz_can_fua,
    .can_multi_conn = uz_true,
    .can_extents = uz_true,
    .can_cache = uz_can_cache,
    .pread = uz_pread,
    .pwrite = uz_pwrite,
    .flush = uz_flush,
    .trim = uz_trim,
    .zero = uz_zero,
    .cache = uz_cache,
    .extents = uz_extents,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
