/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nbdkit.c - the uzram nbdkit plugin: a compressed RAM disk served over NBD.
 *
 *     nbdkit build/nbdkit-uzram-plugin.so size=1G \
 *            [algorithm=zstd] [level=3] [allocator=zsmalloc] \
 *            [mem_limit=256M] [backing_dev=PATH|NBD-URI] [group_pages=auto|K] [dedup=0|1|auto]
 *            [mlock=true]
 *            [control=DIR]
 *
 *     nbdkit build/nbdkit-uzram-plugin.so export=NAME[:SIZE] [export=NAME[:SIZE]]... \
 *            [size=SIZE] [max_clones=N] [the store's parameters above]
 *
 * The plugin's parameters and callbacks over libuzram; in pool mode the
 * export registry and the clone policy are exports.c's (exports.h).
 * Two of its defaults differ from the library's: group_pages=auto
 * (UZRAM_GROUP_AUTO): large writes, such as a copy onto the export, are
 * compressed in aligned groups of up to 8 pages (faster and smaller with
 * zstd), small random writes page by page; and with lz4, the primary,
 * level 4 (UZ_NBD_LZ4_LEVEL: lz4's acceleration), since settling
 * recompresses every idle page with the secondary.
 * Without export=, one device exists per nbdkit process and every
 * connection shares it, whatever export name it asks for (as
 * with nbdkit-memory-plugin), so the export can be opened by several
 * clients, or one client over several connections (multi-conn).  The
 * library's data path is thread-safe without a device-wide lock, so the
 * thread model is fully parallel.
 *
 * Lifecycle (see nbdkit-plugin(3), "Callback lifecycle"):
 *   config / config_complete   parse and check the parameters
 *   get_ready                  create the device, or the pool and a device
 *                              for each export=, and mount control=DIR
 *                              (before nbdkit forks, so a bad algorithm,
 *                              size or directory fails the start with a
 *                              clear message on the terminal, before any
 *                              client can connect)
 *   after_fork                 lock memory (mlockall: locks do not survive
 *                              fork) and start serving the control mount
 *                              (its threads: they do not survive fork
 *                              either); nothing else can fail here
 *
 * Why nothing may fail after the fork: with --run, nbdkit forks the
 * server as a child and runs the command in the parent, which keeps the
 * listening socket; a child that dies in after_fork leaves the command
 * connected to a socket nobody serves, waiting for ever.  So every check
 * is made in config_complete (control=DIR exists, is a directory, has no
 * uzram mounted on it) or get_ready (the device, the mount itself), and
 * after_fork only repeats what get_ready proved possible (mlockall) and
 * starts threads.  If that still fails, the control mount is undone and
 * nbdkit exits with the message (only --run's command may then wait:
 * nbdkit does not watch its captive server).
 *   list_exports, open         pool mode: the exports; the device of the
 *                              name asked for, or a clone made (below)
 *   cleanup / unload           stop the mount, free the device (or every
 *                              device, then the pool)
 *
 * mlock=true (the default) makes the process behave as a swap backend must:
 * every page it holds stays in RAM (mlockall with MCL_ONFAULT, so address
 * space reserved for the slot table costs nothing until touched), and the
 * serving threads are marked as I/O flushers where the kernel allows it, so
 * that serving a request never waits on the swap-out it is part of.
 *
 * control=DIR (only when built with FUSE) mounts the zram attribute files
 * of the running export at DIR: `cat DIR/mm_stat`, `echo 1 > DIR/compact`.
 * DIR must exist, be a directory and have no uzram mounted on it (a second
 * mount would hide the first one's files; `uzram mount` refuses it too).
 * With export=, DIR is the pool's mount without disks (uzfs_start_pool):
 * the pool's attributes, zram-control, and DIR/zramN/ for device N (the
 * exports' devices in the order given, then the clones as made).  Devices
 * made there (hot_add, DIR/zramN/clone) are not exports; an export's
 * device is held, so hot_remove of it is EBUSY.
 *
 * Pool mode (export= given at least once): one pool holds every export,
 * one device each, in the order given (device 0 is the first export=).
 * The store's parameters (algorithm, level, allocator, mem_limit, dedup,
 * group_pages, backing_dev) are the pool's; size= is the size of an
 * export= given without one.  Which device an export name is, and the
 * clones a client makes by asking for "SRC@NAME" (max_clones=N), are
 * exports.c's.  With clones, group_pages defaults to 1: a clone shares
 * single pages but copies compressed groups.
 * Every refusal reaches the client as NBD_REP_ERR_UNKNOWN ("Requested
 * export not available": nbdkit 1.32 sends no other); the log has why.
 * Devices are removed only at unload, when no connection is left.
 */
#define _GNU_SOURCE
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exports.h"
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

/* Export names, configured or asked for by a client (untrusted): 1 to
 * EXPORT_NAME_MAX bytes of letters, digits, '.', '_', '-' and '+', with
 * '@' between the parts of a clone's name; no part is "." or "..", which
 * clients that take the name from a URI's path would not keep as such. */

/* Pool capacity (the most bytes its devices may have at once): the
 * library's default, 4 TiB, unless the exports given need more; then the
 * most it allows.  Address space only. */
#define UZ_NBD_POOL_DEFAULT (4ull << 40)
#define UZ_NBD_POOL_MAX (8ull << 40)

/* Parameters, as given on the command line. */
static struct uzram_config cfg;
static int64_t cfg_size = -1;
static bool cfg_mlock = true;
static char *cfg_control;          /* absolute path, or NULL */
static uint32_t cfg_max_clones;    /* clones clients may make; 0 = none */
static bool cfg_group_pages_given;
static bool cfg_level_given;

/* The primary's level when lz4 is the primary and no level= is given:
 * its acceleration (docs/settling.md, "NBD").  Every page idle for the
 * settling time is recompressed with the secondary anyway, so the primary
 * is chosen for the write path: level 4 costs 6-7% more memory until the
 * pages settle and writes about 15% more bytes per second of CPU. */
#define UZ_NBD_LZ4_LEVEL 4

/* export=NAME[:SIZE] parameters, in order (pool mode when there is one) */
static struct export_param *cfg_exports;
static unsigned cfg_nexports;

/* Single-device mode: the one device every connection shares. */
static struct export single;

/* A connection's device (the handle is its export). */
static inline struct uzram *hdev(void *handle)
{
    return ((struct export *)handle)->dev;
}

#ifdef UZ_HAVE_FUSE
static struct uzfs *control;    /* the running control mount, or NULL */
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

/* export=NAME[:SIZE] */
static int config_export(const char *value)
{
    const char *colon = strchr(value, ':');
    size_t len = colon ? (size_t)(colon - value) : strlen(value);
    int64_t size = -1;

    if (!export_name_ok(value, len)) {
        nbdkit_error("uzram: export=%s: the name must be 1 to %d letters, digits, '.', '_', "
                     "'-' or '+', not '.' or '..' ('@' is for clones)", value, EXPORT_NAME_MAX);
        return -1;
    }
    if (colon) {
        size = nbdkit_parse_size(colon + 1);
        if (size == -1)
            return -1;                      /* nbdkit_parse_size reported it */
        if (size == 0) {
            nbdkit_error("uzram: export=%s: the size must be greater than 0", value);
            return -1;
        }
    }
    const char *name = nbdkit_strndup_intern(value, len);
    if (!name)
        return -1;
    for (unsigned i = 0; i < cfg_nexports; i++)
        if (strcmp(cfg_exports[i].name, name) == 0) {
            nbdkit_error("uzram: export=%s: there is an export of that name already", value);
            return -1;
        }
    if (cfg_nexports == UZRAM_POOL_MAX_DEVICES) {
        nbdkit_error("uzram: export=%s: at most %d exports", value, UZRAM_POOL_MAX_DEVICES);
        return -1;
    }
    struct export_param *a = realloc(cfg_exports, (cfg_nexports + 1) * sizeof *a);
    if (!a) {
        nbdkit_error("uzram: export=%s: out of memory", value);
        return -1;
    }
    cfg_exports = a;
    cfg_exports[cfg_nexports].name = name;
    cfg_exports[cfg_nexports].size = size;
    cfg_nexports++;
    return 0;
}

/* KEY=VALUE where VALUE must be a whole number ([-]digits): say so in
 * words of our own (nbdkit's parser reports "abc" as an empty string). */
static bool whole_number(const char *key, const char *value)
{
    const char *p = value + (value[0] == '-');
    if (*p && strspn(p, "0123456789") == strlen(p))
        return true;
    nbdkit_error("uzram: %s=%s: not a whole number", key, value);
    return false;
}

static void uzram_plugin_load(void)
{
    exports_init();
    uzram_config_init(&cfg);
    cfg.group_pages = UZRAM_GROUP_AUTO;
}

/* The settings of struct uzram_config that the plugin passes as they are,
 * each parsed by its attribute (uzram_config_set): the automatic policies
 * (settling is recompress_policy's default; "off" turns it off), and the
 * store's thresholds. */
static bool is_policy_key(const char *key)
{
    static const char *const keys[] = {
        "recompress_policy", "writeback_policy", "huge_threshold", "max_comp_streams",
        "auto_compact",      "writeback_compressed", "forward_threshold",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

static int uzram_plugin_config(const char *key, const char *value)
{
    if (strcmp(key, "size") == 0) {
        /* the disksize attribute's words (memparse: 512M, 1G, 2T) */
        struct uzram_config c;
        uzram_config_init(&c);
        if (uzram_config_set(&c, "disksize", value) < 0) {
            nbdkit_error("uzram: size=%s: %s", value, uzram_last_error());
            return -1;
        }
        if (c.disksize > INT64_MAX) {
            nbdkit_error("uzram: size=%s: too large", value);
            return -1;
        }
        cfg_size = (int64_t)c.disksize;
    } else if (strcmp(key, "algorithm") == 0 || strcmp(key, "level") == 0 ||
               strcmp(key, "allocator") == 0 || strcmp(key, "mem_limit") == 0 ||
               strcmp(key, "dedup") == 0 || strcmp(key, "group_pages") == 0 ||
               is_policy_key(key)) {
        /* the word as the attribute of that name parses it */
        const char *word = nbdkit_strdup_intern(value);
        if (!word)
            return -1;
        if (uzram_config_set(&cfg, key, word) < 0) {
            nbdkit_error("uzram: %s=%s: %s", key, value, uzram_last_error());
            return -1;
        }
        if (strcmp(key, "group_pages") == 0)
            cfg_group_pages_given = true;
        if (strcmp(key, "level") == 0)
            cfg_level_given = true;
    } else if (strcmp(key, "backing_dev") == 0) {
        /* an NBD URI as it is (far memory, docs/far-memory.md); a path
         * made absolute, as nbdkit changes directory to / when it
         * daemonises */
        if (uzram_backing_name(value) == 1) {
            cfg.backing_dev = strdup(value);
            if (!cfg.backing_dev) {
                nbdkit_error("uzram: backing_dev: out of memory");
                return -1;
            }
            return 0;
        }
        cfg.backing_dev = nbdkit_realpath(value);
        if (!cfg.backing_dev)
            return -1;
    } else if (strcmp(key, "export") == 0) {
        return config_export(value);
    } else if (strcmp(key, "max_clones") == 0) {
        if (!whole_number(key, value) ||
            nbdkit_parse_uint32_t("max_clones", value, &cfg_max_clones) == -1)
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

#ifdef UZ_HAVE_FUSE
/* control=DIR, before anything is made: an existing directory on which no
 * uzram is mounted.  uzfs_start checks the same, but only once the
 * device is made; `uzram mount` refuses a uzram's directory too, where a
 * second mount would hide the first one's disk. */
static int check_control(void)
{
    struct stat st;
    if (stat(cfg_control, &st) != 0) {
        nbdkit_error("uzram: control=%s: %s", cfg_control, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        nbdkit_error("uzram: control=%s: not a directory", cfg_control);
        return -1;
    }
    char *real = realpath(cfg_control, NULL);
    if (!real) {
        nbdkit_error("uzram: control=%s: %s", cfg_control, strerror(errno));
        return -1;
    }
    bool mounted = uzfs_is_mounted(real);
    free(real);
    if (mounted) {
        nbdkit_error("uzram: control=%s: a uzram is already mounted there (a second mount "
                     "would hide its files): unmount it or give another directory",
                     cfg_control);
        return -1;
    }
    return 0;
}
#endif

static int uzram_plugin_config_complete(void)
{
    if (!cfg_level_given && (!cfg.algorithm || strcmp(cfg.algorithm, "lz4") == 0))
        cfg.level = UZ_NBD_LZ4_LEVEL;
#ifdef UZ_HAVE_FUSE
    if (cfg_control && check_control() == -1)
        return -1;
#endif
    if (cfg_nexports == 0) {
        if (cfg_max_clones) {
            nbdkit_error("uzram: max_clones needs a pool: give its exports with export=NAME[:SIZE]");
            return -1;
        }
        if (cfg_size == -1) {
            nbdkit_error("uzram: you must give the disk size: size=SIZE (e.g. size=1G)");
            return -1;
        }
        cfg.disksize = (uint64_t)cfg_size;
        return 0;
    }

    /* pool mode */
    uint64_t sum = 0;
    for (unsigned i = 0; i < cfg_nexports; i++) {
        if (cfg_exports[i].size == -1) {
            if (cfg_size == -1) {
                nbdkit_error("uzram: export=%s has no size: give export=%s:SIZE, or size=SIZE "
                             "for every export given without one",
                             cfg_exports[i].name, cfg_exports[i].name);
                return -1;
            }
            cfg_exports[i].size = cfg_size;
        }
        /* round up to a page, as the device does */
        uint64_t sz = ((uint64_t)cfg_exports[i].size + UZRAM_PAGE_SIZE - 1) &
                      ~(uint64_t)(UZRAM_PAGE_SIZE - 1);
        sum += sz;
        if (sum > UZ_NBD_POOL_MAX) {
            nbdkit_error("uzram: the exports' sizes add up to more than a pool may hold (%llu TiB)",
                         (unsigned long long)(UZ_NBD_POOL_MAX >> 40));
            return -1;
        }
    }
    /* the pool's capacity; 0 = the library's default */
    cfg.disksize = sum > UZ_NBD_POOL_DEFAULT ? UZ_NBD_POOL_MAX : 0;
    /* A clone shares single pages but copies compressed groups (see
     * uzram_clone): where clones are made, pages stay single unless the
     * user asks for groups. */
    if (cfg_max_clones && !cfg_group_pages_given)
        cfg.group_pages = 1;
    return 0;
}

#define uzram_plugin_config_help \
    "size=<SIZE>         Disk size, e.g. 1G (rounded up to 4K); required without\n" \
    "                    export=, and with it the size of each export given without one.\n" \
    "export=<NAME>[:<SIZE>]  Serve a pool: one export per export= (give it again for\n" \
    "                    more), each a device of one pool; the store's parameters are\n" \
    "                    the pool's.  The default export is the first.\n" \
    "max_clones=<N>      With export=: clients may make N clones, by asking for the\n" \
    "                    export SRC@NAME (a copy-on-write clone of SRC, made while no\n" \
    "                    client is connected to SRC).  Default 0: none.  With clones,\n" \
    "                    group_pages defaults to 1 (a clone copies compressed groups).\n" \
    "algorithm=<NAME>    Compressor: lz4 (default), lz4hc, lzo, zstd, deflate.\n" \
    "level=<N>           Compression level (0 = the algorithm's default; default 4\n" \
    "                    with lz4, its acceleration: settling recompresses idle pages).\n" \
    "allocator=<NAME>    Allocator for compressed pages (default zsmalloc).\n" \
    "mem_limit=<SIZE>    Cap on memory for compressed pages (0 = none).\n" \
    "backing_dev=<PATH>|<NBD-URI>  File, block device or NBD export for writeback\n" \
    "                    and over-limit pages.\n" \
    "group_pages=<K>     Compress aligned runs of K pages (1, 2, 4, 8) as one unit, or auto\n" \
    "                    (default, but 1 with max_clones): each write uses the largest\n" \
    "                    aligned run of 8, 4 or 2 pages it covers, pages alone for the rest.\n" \
    "dedup=<MODE>        0, 1 or auto: store identical pages once (default 1: every page\n" \
    "                    is looked up; auto: a sample, every page once repeats are common).\n" \
    "recompress_policy=<P>  Settling of idle pages (default \"settle\": idle 120 s, then\n" \
    "                    regrouped and recompressed with zstd; \"settle idle_secs=T\"\n" \
    "                    changes T; off turns it off), or zram-style \"idle_secs=T ...\".\n" \
    "writeback_policy=<P>  \"idle_secs=T [above=BYTES]\": idle pages to backing_dev.\n" \
    "huge_threshold=<N>  As the attribute of that name (uzram(1)), as are:\n" \
    "max_comp_streams=<N>\n" \
    "auto_compact=<F|0>\n" \
    "writeback_compressed=<0|1>\n" \
    "forward_threshold=<N>\n" \
    "mlock=<BOOL>        Lock the server's memory, as swap needs (default true).\n" \
    "control=<DIR>       Mount the zram attribute files at DIR (FUSE); with export=,\n" \
    "                    the pool's: its attributes, zram-control, DIR/zramN per device."

static void uzram_plugin_dump_plugin(void)
{
    printf("uzram_version=%s\n", uzram_version());
    printf("uzram_algorithms=");
    for (unsigned i = 0; uzram_algorithm_name(i); i++)
        printf("%s%s", i ? "," : "", uzram_algorithm_name(i));
    printf("\n");
    printf("uzram_exports=yes\n");
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

/* Mount control=DIR (get_ready): every failure of the mount happens
 * here, before the fork; after_fork starts its threads (o.deferred). */
static int mount_control(void)
{
#ifdef UZ_HAVE_FUSE
    if (!cfg_control)
        return 0;
    struct uzfs_opts o;
    uzfs_opts_init(&o);
    o.expose_disk = false;          /* the disk is the NBD export */
    o.threads = 2;                  /* attribute files only: little traffic */
    o.deferred = true;
    struct uzram_pool *pool = exports_pool();
    int rc = pool ? uzfs_start_pool(pool, cfg_control, &o, &control)
                  : uzfs_start(single.dev, cfg_control, &o, &control);
    if (rc < 0) {
        /* the server's errors are errno values, not the library's */
        nbdkit_error("uzram: control=%s: cannot mount the attribute files: %s", cfg_control,
                     rc == -EBUSY ? "a uzram is already mounted there" : strerror(-rc));
        control = NULL;
        return -1;
    }
#endif
    return 0;
}

/* The policies' settings, held back from the device made in get_ready:
 * their thread would not survive nbdkit's fork.  after_fork sets them. */
static const char *held_rc_policy, *held_wb_policy;

/* Set the held policies (after_fork): on the device, or the pool. */
static int start_policies(void)
{
    const char *names[2] = {"recompress_policy", "writeback_policy"};
    const char *vals[2] = {held_rc_policy, held_wb_policy};
    for (int i = 0; i < 2; i++) {
        if (!vals[i] || !strcmp(vals[i], "off") || !strcmp(vals[i], "0"))
            continue;
        struct uzram_pool *pool = exports_pool();
        int rc = pool ? uzram_pool_attr_store(pool, names[i], vals[i], strlen(vals[i]))
                      : uzram_attr_store(single.dev, names[i], vals[i], strlen(vals[i]));
        /* the default, settling, on a device with no secondary: off */
        if (rc < 0 && !(i == 0 && !strcmp(vals[i], UZRAM_SETTLE))) {
            nbdkit_error("uzram: %s=%s: %s", names[i], vals[i], uzram_last_error());
            return -1;
        }
    }
    return 0;
}

static int uzram_plugin_get_ready(void)
{
    /* The real lock is taken in after_fork (locks do not survive fork);
     * try it here once so that a missing privilege stops the start with
     * a message on the terminal, not in the daemon's log. */
    if (cfg_mlock) {
        if (lock_memory() == -1)
            return -1;
        uzram_unlock_memory();
    }
    /* threads made before nbdkit forks are lost in the child: the
     * policies' thread starts in after_fork */
    held_rc_policy = cfg.recompress_policy;
    held_wb_policy = cfg.writeback_policy;
    cfg.recompress_policy = cfg.writeback_policy = NULL;
    if (cfg_nexports) {
        if (exports_create(&cfg, cfg_exports, cfg_nexports, cfg_max_clones) == -1)
            return -1;              /* unload frees what it made */
    } else {
        int rc = uzram_create(&cfg, &single.dev);
        if (rc < 0) {
            const char *msg = uzram_last_error();
            nbdkit_error("uzram: cannot create the device: %s",
                         msg && *msg ? msg : uzram_strerror(rc));
            return -1;
        }
    }
    return mount_control();
}

static void stop_control(void)
{
#ifdef UZ_HAVE_FUSE
    if (control) {
        uzfs_stop(control);
        control = NULL;
    }
#endif
}

static int uzram_plugin_after_fork(void)
{
    if (cfg_mlock && lock_memory() == -1) {
        stop_control();
        return -1;
    }
    if (start_policies() == -1) {
        stop_control();
        return -1;
    }
#ifdef UZ_HAVE_FUSE
    if (control) {
        int rc = uzfs_run(control);
        if (rc < 0) {
            control = NULL;         /* uzfs_run stopped and freed it */
            nbdkit_error("uzram: control=%s: cannot serve the attribute files: %s",
                         cfg_control, strerror(-rc));
            return -1;
        }
    }
#endif
    return 0;
}

static void uzram_plugin_cleanup(void)
{
    stop_control();
}

static void uzram_plugin_unload(void)
{
    /* cleanup is not guaranteed to run; stopping twice is harmless. */
    stop_control();
    uzram_destroy(single.dev);
    single.dev = NULL;
    exports_destroy();
    free(cfg_exports);
    cfg_exports = NULL;
    cfg_nexports = 0;
    free(cfg_control);
    cfg_control = NULL;
}

/* ------------------------------------------------------------ connections */

/* Each connection holds its device open, as an opener of /dev/zramN
 * does: reset, disksize and the algorithm stores through control=DIR get
 * EBUSY while a client is connected, and the client keeps its data.
 * The handle is the connection's export. */
static void *uzram_plugin_open(int readonly)
{
    if (!exports_pool()) {
        uzram_open(single.dev);
        return &single;
    }
    const char *name = nbdkit_export_name();
    if (!name)
        return NULL;                        /* nbdkit reported it */
    return exports_open(name);
}

static void uzram_plugin_close(void *handle)
{
    if (!exports_pool())
        uzram_close(hdev(handle));
    else
        exports_close(handle);
}

/* Pool mode: every export, in device order of creation; the default
 * export is the first.  Single-device mode: "" alone, as without these
 * callbacks. */
static int uzram_plugin_list_exports(int readonly, int is_tls, struct nbdkit_exports *list)
{
    if (!exports_pool())
        return nbdkit_use_default_export(list);
    return exports_list(list);
}

static const char *uzram_plugin_default_export(int readonly, int is_tls)
{
    if (!exports_pool())
        return "";
    return exports_default_name();
}

static const char *uzram_plugin_export_description(void *handle)
{
    struct export *e = handle;
    return e->desc;                         /* NULL for the single device */
}

static int64_t uzram_plugin_get_size(void *handle)
{
    return (int64_t)uzram_disksize(hdev(handle));
}

static int uzram_plugin_block_size(void *handle, uint32_t *minimum, uint32_t *preferred,
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
static int uzram_plugin_true(void *handle)
{
    return 1;
}

static int uzram_plugin_false(void *handle)
{
    return 0;
}

static int uzram_plugin_can_fua(void *handle)
{
    return NBDKIT_FUA_NATIVE;
}

static int uzram_plugin_can_cache(void *handle)
{
    return NBDKIT_CACHE_NATIVE;
}

/* ------------------------------------------------------------ data path */

static int uzram_plugin_pread(void *handle, void *buf, uint32_t count, uint64_t offset,
                              uint32_t flags)
{
    int rc = uzram_read(hdev(handle), buf, count, offset);
    return rc < 0 ? fail("read", rc) : 0;
}

/* FUA needs nothing more: the data is in the store when uzram_write
 * returns. */
static int uzram_plugin_pwrite(void *handle, const void *buf, uint32_t count,
                               uint64_t offset, uint32_t flags)
{
    int rc = uzram_write(hdev(handle), buf, count, offset);
    return rc < 0 ? fail("write", rc) : 0;
}

static int uzram_plugin_flush(void *handle, uint32_t flags)
{
    int rc = uzram_flush(hdev(handle));
    return rc < 0 ? fail("flush", rc) : 0;
}

static int uzram_plugin_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    int rc = uzram_discard(hdev(handle), count, offset);
    return rc < 0 ? fail("trim", rc) : 0;
}

/* Zeroing drops the pages whether or not the client allows a hole
 * (NBDKIT_FLAG_MAY_TRIM): a dropped page reads as zeros and costs nothing.
 * It is always fast, so NBDKIT_FLAG_FAST_ZERO needs no special case. */
static int uzram_plugin_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    int rc = uzram_write_zeroes(hdev(handle), count, offset);
    return rc < 0 ? fail("zero", rc) : 0;
}

/* Everything is in RAM already: there is nothing to prefetch. */
static int uzram_plugin_cache(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    return 0;
}

/* Pages that read as zeros without being stored (never written, trimmed,
 * or written as zeros) are holes; runs of pages in the same state are
 * reported as one extent.  Extents are clipped to [offset, offset+count):
 * nbdkit 1.32 asserts that none is longer than the request. */
static int uzram_plugin_extents(void *handle, uint32_t count, uint64_t offset,
                                uint32_t flags, struct nbdkit_extents *extents)
{
    struct uzram *dev = hdev(handle);
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
    .load = uzram_plugin_load,
    .unload = uzram_plugin_unload,
    .config = uzram_plugin_config,
    .config_complete = uzram_plugin_config_complete,
    .config_help = uzram_plugin_config_help,
    .dump_plugin = uzram_plugin_dump_plugin,
    .get_ready = uzram_plugin_get_ready,
    .after_fork = uzram_plugin_after_fork,
    .cleanup = uzram_plugin_cleanup,
    .list_exports = uzram_plugin_list_exports,
    .default_export = uzram_plugin_default_export,
    .open = uzram_plugin_open,
    .close = uzram_plugin_close,
    .export_description = uzram_plugin_export_description,
    .get_size = uzram_plugin_get_size,
    .block_size = uzram_plugin_block_size,
    .can_write = uzram_plugin_true,
    .can_flush = uzram_plugin_true,
    .is_rotational = uzram_plugin_false,
    .can_trim = uzram_plugin_true,
    .can_zero = uzram_plugin_true,
    .can_fast_zero = uzram_plugin_true,
    .can_fua = uzram_plugin_can_fua,
    .can_multi_conn = uzram_plugin_true,
    .can_extents = uzram_plugin_true,
    .can_cache = uzram_plugin_can_cache,
    .pread = uzram_plugin_pread,
    .pwrite = uzram_plugin_pwrite,
    .flush = uzram_plugin_flush,
    .trim = uzram_plugin_trim,
    .zero = uzram_plugin_zero,
    .cache = uzram_plugin_cache,
    .extents = uzram_plugin_extents,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
