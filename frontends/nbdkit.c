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
 * A thin adaptor: configuration and callbacks over libuzram, nothing else.
 * Its one default that differs from the library's is group_pages=auto
 * (UZRAM_GROUP_AUTO): large writes, such as a copy onto the export, are
 * compressed in aligned groups of up to 8 pages (faster and smaller with
 * zstd), small random writes page by page.
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
 * With export=, DIR is the pool's mount without disks (uz_fuse_start_pool):
 * the pool's attributes, zram-control, and DIR/zramN/ for device N (the
 * exports' devices in the order given, then the clones as made).  Devices
 * made there (hot_add, DIR/zramN/clone) are not exports; an export's
 * device is held, so hot_remove of it is EBUSY.
 *
 * Pool mode (export= given at least once): one pool (uzram_pool_create)
 * holds every export, one device each, in the order given (device 0 is
 * the first export=).  The store's parameters (algorithm, level,
 * allocator, mem_limit, dedup, group_pages, backing_dev) are the pool's;
 * size= is the size of an export= given without one.  The export name a
 * client asks for picks the device; the default export "" is the first;
 * any other name is refused (ENOENT: "Requested export not available").
 * .list_exports lists the exports, clones made so far included.
 *
 * Clones, on demand by name (max_clones=N, 0 = off, the default): a
 * client that asks for "SRC@NAME", where SRC is an export and no export
 * has that name yet, makes it: a uzram_clone of SRC, made in .open of that
 * first connection, then an export of its own for the life of the process
 * (a later connection to "SRC@NAME" finds the same clone and its writes).
 * The moment is race-free by rule: the clone is made only while no client
 * is connected to SRC (a client still connected after UZ_NBD_CLONE_WAIT
 * seconds has this connection refused), and under the lock every .open
 * takes before uzram_open, so no connection to SRC starts while it is
 * made.  The clone thus holds exactly what SRC's last client left.
 * Nothing but a client's own request by name makes one, so a listing
 * (whose NBD_OPT_INFO opens every listed export) makes none.  With clones,
 * group_pages defaults to 1: a clone shares single pages but copies
 * compressed groups.
 * Every refusal reaches the client as NBD_REP_ERR_UNKNOWN ("Requested
 * export not available": nbdkit 1.32 sends no other); the log has why.
 * Devices are removed only at unload, when no connection is left.
 */
#define _GNU_SOURCE
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

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
 * UZ_NBD_NAME_MAX bytes of letters, digits, '.', '_', '-' and '+', with
 * '@' between the parts of a clone's name; no part is "." or "..", which
 * clients that take the name from a URI's path would not keep as such. */
#define UZ_NBD_NAME_MAX 255

/* Pool capacity (the most bytes its devices may have at once): the
 * library's default, 4 TiB, unless the exports given need more; then the
 * most it allows.  Address space only. */
#define UZ_NBD_POOL_DEFAULT (4ull << 40)
#define UZ_NBD_POOL_MAX (8ull << 40)

/* Seconds a connection that makes a clone waits for the source's clients
 * to be gone (one that has just disconnected may not be closed yet). */
#define UZ_NBD_CLONE_WAIT 5

/* Parameters, as given on the command line. */
static struct uzram_config cfg;
static int64_t cfg_size = -1;
static bool cfg_mlock = true;
static char *cfg_control;          /* absolute path, or NULL */
static uint32_t cfg_max_clones;    /* clones clients may make; 0 = none */
static bool cfg_group_pages_given;

/* export=NAME[:SIZE] parameters, in order (pool mode when there is one) */
struct uz_export_param {
    const char *name;
    int64_t size;                  /* -1: size= */
};
static struct uz_export_param *cfg_exports;
static unsigned cfg_nexports;

/* An export: a device and its name.  Never freed while the server runs
 * (unload frees them), so a connection's handle stays valid. */
struct uz_export {
    char *name;                    /* "" for the single device */
    char *desc;                    /* description for listings, or NULL */
    struct uzram *dev;
    int id;                        /* device number in the pool */
};

/* Single-device mode: the one device every connection shares. */
static struct uz_export single;

/* A connection's device (the handle is its export). */
static inline struct uzram *hdev(void *handle)
{
    return ((struct uz_export *)handle)->dev;
}

/* Pool mode: the pool and its exports; the list grows only (by clones),
 * under exports_lock, which .open also holds around uzram_open. */
static struct uzram_pool *pool;
static pthread_mutex_t exports_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closed_cond;          /* a connection closed; CLOCK_MONOTONIC */
static struct uz_export **exports;
static unsigned nexports, exports_cap;
static unsigned nclones;
static const char *default_name;   /* the first export's, read without the lock */
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

/* Is s[0..len) a valid name part (no '@')? */
static bool name_part_ok(const char *s, size_t len)
{
    if (len == 0 || len > UZ_NBD_NAME_MAX)
        return false;
    if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
        return false;                       /* "." and ".." */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

/* export=NAME[:SIZE] */
static int config_export(const char *value)
{
    const char *colon = strchr(value, ':');
    size_t len = colon ? (size_t)(colon - value) : strlen(value);
    int64_t size = -1;

    if (!name_part_ok(value, len)) {
        nbdkit_error("uzram: export=%s: the name must be 1 to %d letters, digits, '.', '_', "
                     "'-' or '+', not '.' or '..' ('@' is for clones)", value, UZ_NBD_NAME_MAX);
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
    struct uz_export_param *a = realloc(cfg_exports, (cfg_nexports + 1) * sizeof *a);
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

static void uz_load(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&closed_cond, &ca);
    pthread_condattr_destroy(&ca);
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
        if (!whole_number(key, value) || nbdkit_parse_int("level", value, &cfg.level) == -1)
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
        cfg_group_pages_given = true;
        if (strcmp(value, "auto") == 0)
            cfg.group_pages = UZRAM_GROUP_AUTO;
        else if (strcmp(value, "1") == 0 || strcmp(value, "2") == 0 ||
                 strcmp(value, "4") == 0 || strcmp(value, "8") == 0)
            cfg.group_pages = (uint32_t)atoi(value);
        else {
            nbdkit_error("uzram: group_pages=%s: give 1 (off), 2, 4, 8 or auto", value);
            return -1;
        }
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
 * uzram is mounted.  uz_fuse_start checks the same, but only once the
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
    bool mounted = uz_fuse_is_mounted(real);
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

static int uz_config_complete(void)
{
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

#define uz_config_help \
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
    "level=<N>           Compression level (0 = the algorithm's default).\n" \
    "allocator=<NAME>    Allocator for compressed pages (default zsmalloc).\n" \
    "mem_limit=<SIZE>    Cap on memory for compressed pages (0 = none).\n" \
    "backing_dev=<PATH>|<NBD-URI>  File, block device or NBD export for writeback\n" \
    "                    and over-limit pages.\n" \
    "group_pages=<K>     Compress aligned runs of K pages (1, 2, 4, 8) as one unit, or auto\n" \
    "                    (default, but 1 with max_clones): each write uses the largest\n" \
    "                    aligned run of 8, 4 or 2 pages it covers, pages alone for the rest.\n" \
    "dedup=<MODE>        0, 1 or auto: store identical pages once (default auto: a sample\n" \
    "                    of pages is looked up, every page once duplicates are common).\n" \
    "mlock=<BOOL>        Lock the server's memory, as swap needs (default true).\n" \
    "control=<DIR>       Mount the zram attribute files at DIR (FUSE); with export=,\n" \
    "                    the pool's: its attributes, zram-control, DIR/zramN per device."

static void uz_dump_plugin(void)
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

/* Append e to the pool's exports (under exports_lock once serving).
 * 0, or -1 with errno ENOMEM. */
static int add_export(struct uz_export *e)
{
    if (nexports == exports_cap) {
        unsigned cap = exports_cap ? exports_cap * 2 : 16;
        struct uz_export **a = realloc(exports, cap * sizeof *a);
        if (!a) {
            errno = ENOMEM;
            return -1;
        }
        exports = a;
        exports_cap = cap;
    }
    exports[nexports++] = e;
    return 0;
}

/* Make device d (just added or cloned) the export name, described by
 * desc, and hold it (uzram_pool_get) for as long as it is one, so that
 * nothing else that reaches the pool can remove it under a connection.
 * The export, or NULL (ENOMEM) with d removed. */
static struct uz_export *new_export(const char *name, struct uzram *d, const char *desc)
{
    int id = uzram_device_id(d);
    struct uz_export *e = calloc(1, sizeof *e);
    if (e) {
        e->name = strdup(name);
        e->desc = strdup(desc);
        e->id = id;
    }
    if (!e || !e->name || !e->desc || !(e->dev = uzram_pool_get(pool, id)) ||
        add_export(e) == -1) {
        if (e) {
            if (e->dev)
                uzram_pool_put(e->dev);
            free(e->name);
            free(e->desc);
            free(e);
        }
        uzram_pool_remove(pool, id);
        errno = ENOMEM;
        return NULL;
    }
    return e;
}

static void free_export(struct uz_export *e)
{
    free(e->name);
    free(e->desc);
    free(e);
}

/* Library failure outside a connection: the message, -1. */
static int lib_error(const char *what, const char *name, int rc)
{
    const char *msg = uzram_last_error();
    nbdkit_error("uzram: %s%s%s: %s", what, name ? " " : "", name ? name : "",
                 msg && *msg ? msg : uzram_strerror(rc));
    return -1;
}

/* Make the pool and a device of it for each export=, in order. */
static int create_pool(void)
{
    int rc = uzram_pool_create(&cfg, &pool);
    if (rc < 0) {
        pool = NULL;
        return lib_error("cannot create the pool", NULL, rc);
    }
    default_name = cfg_exports[0].name;     /* interned by nbdkit: lives to unload */
    for (unsigned i = 0; i < cfg_nexports; i++) {
        const struct uz_export_param *p = &cfg_exports[i];
        struct uzram *d;
        rc = uzram_pool_add(pool, &d);
        if (rc < 0)
            return lib_error("cannot add the device of export", p->name, rc);
        char size[32], desc[96];
        int n = snprintf(size, sizeof size, "%" PRId64, p->size);
        rc = uzram_attr_store(d, "disksize", size, (size_t)n);
        if (rc < 0) {
            lib_error("cannot size the device of export", p->name, rc);
            uzram_pool_remove(pool, uzram_device_id(d));
            return -1;
        }
        snprintf(desc, sizeof desc, "uzram device %d of the pool", uzram_device_id(d));
        if (!new_export(p->name, d, desc)) {
            nbdkit_error("uzram: export %s: out of memory", p->name);
            return -1;
        }
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
    struct uz_fuse_opts o;
    uz_fuse_opts_init(&o);
    o.expose_disk = false;          /* the disk is the NBD export */
    o.threads = 2;                  /* attribute files only: little traffic */
    o.deferred = true;
    int rc = pool ? uz_fuse_start_pool(pool, cfg_control, &o, &control)
                  : uz_fuse_start(single.dev, cfg_control, &o, &control);
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
    /* threads made before nbdkit forks are lost in the child: the
     * policies' thread starts in after_fork */
    held_rc_policy = cfg.recompress_policy;
    held_wb_policy = cfg.writeback_policy;
    cfg.recompress_policy = cfg.writeback_policy = NULL;
    if (cfg_nexports) {
        if (create_pool() == -1)
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
        uz_fuse_stop(control);
        control = NULL;
    }
#endif
}

static int uz_after_fork(void)
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
        int rc = uz_fuse_run(control);
        if (rc < 0) {
            control = NULL;         /* uz_fuse_run stopped and freed it */
            nbdkit_error("uzram: control=%s: cannot serve the attribute files: %s",
                         cfg_control, strerror(-rc));
            return -1;
        }
    }
#endif
    return 0;
}

static void uz_cleanup(void)
{
    stop_control();
}

static void uz_unload(void)
{
    /* cleanup is not guaranteed to run; stopping twice is harmless. */
    stop_control();
    uzram_destroy(single.dev);
    single.dev = NULL;
    /* No connection is left: every device can go, clones and sources in
     * any order. */
    for (unsigned i = 0; i < nexports; i++) {
        uzram_pool_put(exports[i]->dev);
        int rc = uzram_pool_remove(pool, exports[i]->id);
        if (rc < 0)
            nbdkit_debug("uzram: removing device %d (export %s): %s", exports[i]->id,
                         exports[i]->name, uzram_strerror(rc));
        free_export(exports[i]);
    }
    free(exports);
    exports = NULL;
    nexports = exports_cap = 0;
    /* devices made through control=DIR (hot_add, clone) are no exports */
    for (int id = pool ? uzram_pool_next(pool, -1) : -1; id >= 0; id = uzram_pool_next(pool, id)) {
        int rc = uzram_pool_remove(pool, id);
        if (rc < 0)
            nbdkit_debug("uzram: removing device %d: %s", id, uzram_strerror(rc));
    }
    if (pool) {
        int rc = uzram_pool_destroy(pool);
        if (rc < 0)
            nbdkit_debug("uzram: destroying the pool: %s", uzram_strerror(rc));
        pool = NULL;
    }
    free(cfg_exports);
    cfg_exports = NULL;
    cfg_nexports = 0;
    free(cfg_control);
    cfg_control = NULL;
}

/* ------------------------------------------------------------ connections */

/* The export called name ("" = the first), or NULL.  exports_lock held. */
static struct uz_export *find_export(const char *name, size_t len)
{
    if (len == 0)
        return nexports ? exports[0] : NULL;
    for (unsigned i = 0; i < nexports; i++)
        if (strlen(exports[i]->name) == len && memcmp(exports[i]->name, name, len) == 0)
            return exports[i];
    return NULL;
}

/* Refuse a connection: the message in the server's log, errno for the
 * reply (ENOENT: the client reads "Requested export not available"). */
static void *refuse(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *refuse(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nbdkit_verror(fmt, ap);
    va_end(ap);
    errno = err;
    return NULL;
}

/* Is name SRC@NAME with every part a valid name?  *src_len: SRC's length. */
static bool clone_name_ok(const char *name, size_t *src_len)
{
    const char *at = strrchr(name, '@');
    if (!at)
        return false;
    for (const char *p = name;;) {
        const char *end = strchr(p, '@');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!name_part_ok(p, len))
            return false;
        if (!end)
            break;
        p = end + 1;
    }
    *src_len = (size_t)(at - name);
    return true;
}

/* A name a client sent, fit for the log: at most 64 bytes, anything but
 * printable ASCII shown as '?'. */
static const char *shown(const char *name, char buf[static 72])
{
    size_t i;
    for (i = 0; name[i] && i < 64; i++)
        buf[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    strcpy(buf + i, name[i] ? "..." : "");
    return buf;
}

/* name is no export: make it if it is SRC@NAME and clones are allowed,
 * else refuse.  exports_lock held, so no connection to SRC starts (its
 * .open waits for the lock) while the clone is made. */
static struct uz_export *make_clone(const char *name)
{
    size_t src_len;
    char buf[72];
    if (!clone_name_ok(name, &src_len))
        return refuse(ENOENT, "uzram: no export '%s'", shown(name, buf));
    if (cfg_max_clones == 0)
        return refuse(ENOENT, "uzram: no export '%s' (clones are off: max_clones=0)", name);
    struct uz_export *src = find_export(name, src_len);
    if (!src)
        return refuse(ENOENT, "uzram: no export '%s', and no export '%.*s' to clone", name,
                      (int)src_len, name);
    if (nclones >= cfg_max_clones)
        return refuse(ENOSPC, "uzram: export '%s': no more clones (max_clones=%" PRIu32
                      " made)", name, cfg_max_clones);
    /* A client that has just disconnected from SRC may not be closed on
     * the server's side yet: wait a little for SRC's last close.  The
     * wait lets the lock go, so look again at what it decided. */
    unsigned open = uzram_open_count(src->dev);
    if (open) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += UZ_NBD_CLONE_WAIT;
        while ((open = uzram_open_count(src->dev)) != 0)
            if (pthread_cond_timedwait(&closed_cond, &exports_lock, &deadline) == ETIMEDOUT)
                break;
        open = uzram_open_count(src->dev);
        struct uz_export *e = find_export(name, strlen(name));
        if (e)
            return e;                       /* made by another connection meanwhile */
        if (nclones >= cfg_max_clones)
            return refuse(ENOSPC, "uzram: export '%s': no more clones (max_clones=%" PRIu32
                          " made)", name, cfg_max_clones);
    }
    if (open)
        return refuse(EBUSY, "uzram: export '%s': its source '%s' has %u connection%s; a clone "
                      "is made only while no client is connected to its source",
                      name, src->name, open, open == 1 ? "" : "s");

    struct uzram *d;
    int rc = uzram_clone(src->dev, &d);
    if (rc < 0) {
        const char *msg = uzram_last_error();
        return refuse(-rc, "uzram: export '%s': cannot clone '%s': %s", name, src->name,
                      msg && *msg ? msg : uzram_strerror(rc));
    }
    char desc[UZ_NBD_NAME_MAX + 64];
    snprintf(desc, sizeof desc, "uzram device %d of the pool, a clone of %s",
             uzram_device_id(d), src->name);
    struct uz_export *e = new_export(name, d, desc);
    if (!e)
        return refuse(ENOMEM, "uzram: export '%s': out of memory", name);
    nclones++;
    nbdkit_debug("uzram: export %s made: device %d, a clone of %s (device %d)", name, e->id,
                 src->name, src->id);
    return e;
}

/* Each connection holds its device open, as an opener of /dev/zramN
 * does: reset, disksize and the algorithm stores through control=DIR get
 * EBUSY while a client is connected, and the client keeps its data.
 * The handle is the connection's export. */
static void *uz_open(int readonly)
{
    if (!pool) {
        uzram_open(single.dev);
        return &single;
    }
    const char *name = nbdkit_export_name();
    if (!name)
        return NULL;                        /* nbdkit reported it */
    pthread_mutex_lock(&exports_lock);
    struct uz_export *e = find_export(name, strlen(name));
    if (!e)
        e = make_clone(name);
    if (e)
        uzram_open(e->dev);
    int err = errno;
    pthread_mutex_unlock(&exports_lock);
    errno = err;
    return e;
}

static void uz_close(void *handle)
{
    if (!pool) {
        uzram_close(hdev(handle));
        return;
    }
    /* a clone of this export may wait for its last close */
    pthread_mutex_lock(&exports_lock);
    uzram_close(hdev(handle));
    pthread_cond_broadcast(&closed_cond);
    pthread_mutex_unlock(&exports_lock);
}

/* Pool mode: every export, in device order of creation; the default
 * export is the first.  Single-device mode: "" alone, as without these
 * callbacks. */
static int uz_list_exports(int readonly, int is_tls, struct nbdkit_exports *list)
{
    if (!pool)
        return nbdkit_use_default_export(list);
    int rc = 0;
    pthread_mutex_lock(&exports_lock);
    for (unsigned i = 0; i < nexports && rc == 0; i++)
        rc = nbdkit_add_export(list, exports[i]->name, exports[i]->desc);
    pthread_mutex_unlock(&exports_lock);
    return rc;
}

static const char *uz_default_export(int readonly, int is_tls)
{
    if (!pool)
        return "";
    return default_name;
}

static const char *uz_export_description(void *handle)
{
    struct uz_export *e = handle;
    return e->desc;                         /* NULL for the single device */
}

static int64_t uz_get_size(void *handle)
{
    return (int64_t)uzram_disksize(hdev(handle));
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
    int rc = uzram_read(hdev(handle), buf, count, offset);
    return rc < 0 ? fail("read", rc) : 0;
}

/* FUA needs nothing more: the data is in the store when uzram_write
 * returns. */
static int uz_pwrite(void *handle, const void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags)
{
    int rc = uzram_write(hdev(handle), buf, count, offset);
    return rc < 0 ? fail("write", rc) : 0;
}

static int uz_flush(void *handle, uint32_t flags)
{
    int rc = uzram_flush(hdev(handle));
    return rc < 0 ? fail("flush", rc) : 0;
}

static int uz_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    int rc = uzram_discard(hdev(handle), count, offset);
    return rc < 0 ? fail("trim", rc) : 0;
}

/* Zeroing drops the pages whether or not the client allows a hole
 * (NBDKIT_FLAG_MAY_TRIM): a dropped page reads as zeros and costs nothing.
 * It is always fast, so NBDKIT_FLAG_FAST_ZERO needs no special case. */
static int uz_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
    int rc = uzram_write_zeroes(hdev(handle), count, offset);
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
    .load = uz_load,
    .unload = uz_unload,
    .config = uz_config,
    .config_complete = uz_config_complete,
    .config_help = uz_config_help,
    .dump_plugin = uz_dump_plugin,
    .get_ready = uz_get_ready,
    .after_fork = uz_after_fork,
    .cleanup = uz_cleanup,
    .list_exports = uz_list_exports,
    .default_export = uz_default_export,
    .open = uz_open,
    .close = uz_close,
    .export_description = uz_export_description,
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
