/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mount.c - the `uzram mount`, `uzram pool`, `uzram clone` and `uzram
 * umount` commands: parse the options, create the device (or the pool
 * and its first devices) through the public API, daemonize, serve it with
 * the FUSE server (frontends/fuse.h) until DIR is unmounted or a signal
 * comes, and the reverse.  `uzram clone DIR/zramN` is a client of a
 * running pool mount: it reads DIR/zramN/clone, which makes the clone.
 *
 * The daemon locks its memory (uzram_lock_memory) when it may, so the
 * mount can take swap; it leaves its pid in a pidfile named after DIR's
 * device number so that `uzram umount DIR` can wait for it to finish.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "conf.h"
#include "fuse.h"
#include "setup.h"
#include "uzram.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>

/* ------------------------------------------------------ uzram mount */

/* Where the daemon of the mount with device number dev leaves its pid,
 * so that `uzram umount` can wait for it to finish. */
static void pidfile_path(dev_t dev, char *buf, size_t size, bool create_dir)
{
    char dir[PATH_MAX - 64];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0)
        snprintf(dir, sizeof dir, "/run/uzram");
    else if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/uzram", xdg);
    else
        snprintf(dir, sizeof dir, "/tmp/uzram-%u", (unsigned)geteuid());
    if (create_dir)
        mkdir(dir, 0755);
    snprintf(buf, size, "%s/%u:%u.pid", dir, major(dev), minor(dev));
}

static int write_pidfile(const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -errno;
    fprintf(fp, "%ld\n", (long)getpid());
    return fclose(fp) == 0 ? 0 : -errno;
}

/* Is DIR (absolute, resolved) the mount point of a fuse.uzram mount?  If
 * so and owner is not NULL, *owner is the uid that mounted it (FUSE's
 * user_id= option), -1 if the options do not say. */
static bool find_uzram_mount(const char *dir, long *owner)
{
    FILE *fp = fopen("/proc/self/mounts", "r");
    if (!fp)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp)) {
        char src[1024], mnt[PATH_MAX], type[256], opts[4096];
        if (sscanf(line, "%1023s %4095s %255s %4095s", src, mnt, type, opts) != 4)
            continue;
        setup_unescape(mnt);   /* \040 for a blank */
        if (strcmp(type, "fuse.uzram") != 0 || strcmp(mnt, dir) != 0)
            continue;
        found = true;
        if (owner) {
            const char *u = strstr(opts, "user_id=");
            *owner = u && (u == opts || u[-1] == ',') ? strtol(u + 8, NULL, 10) : -1;
        }
    }
    fclose(fp);
    return found;
}

static bool is_uzram_mount(const char *dir)
{
    return find_uzram_mount(dir, NULL);
}

static int pool_usage(FILE *fp)
{
    fprintf(fp,
            "usage: uzram pool DIR [--devices N] [--size SIZE] [--capacity SIZE] [--algorithm A]\n"
            "                      [--level N] [--allocator Z] [--mem-limit SIZE]\n"
            "                      [--backing-dev PATH|NBD-URI] [--group-pages K|auto] [--dedup 0|1|auto]\n"
            "                      [--threads N] [--io-uring auto|on|off] [--pidfile FILE] [-f]\n"
            "  Serves a pool of devices that share one store at DIR, as zram's sysfs:\n"
            "  DIR/zram-control/hot_add (read: a new device, its number) and hot_remove\n"
            "  (write N), DIR/zramN/ (disk and the attribute files, as `uzram mount`; read\n"
            "  DIR/zramN/clone or run `uzram clone DIR/zramN` for a copy-on-write clone),\n"
            "  and the pool's attributes (mem_limit, pool_stat, ...) in DIR.  Starts with\n"
            "  N devices (default 1) of disksize SIZE (default 0: set DIR/zramN/disksize);\n"
            "  --capacity bounds the sum of their sizes (default 4T).  Pages are stored one\n"
            "  by one (--group-pages 1) unless asked, so a clone shares every page.\n"
            "  Runs in the background unless -f; `uzram umount DIR` stops it.\n"
            "  --io-uring: FUSE over io_uring where the kernel allows it (auto, the\n"
            "  default), required (on), or /dev/fuse only (off).\n");
    return fp == stderr ? 2 : 0;
}

static int mount_usage(FILE *fp)
{
    fprintf(fp,
            "usage: uzram mount DIR [--size SIZE] [--algorithm A] [--level N] [--allocator Z]\n"
            "                       [--mem-limit SIZE] [--backing-dev PATH|NBD-URI] [--group-pages K|auto]\n"
            "                       [--dedup 0|1|auto] [--threads N] [--io-uring auto|on|off]\n"
            "                       [--pidfile FILE] [-f]\n"
            "  Serves a new uzram device at DIR: DIR/disk (the device) and its zram\n"
            "  attribute files.  SIZE takes K, M, G, T suffixes; the default size is\n"
            "  25%% of RAM.  Runs in the background unless -f; `uzram umount DIR` stops it.\n"
            "  --io-uring: FUSE over io_uring where the kernel allows it (auto, the\n"
            "  default), required (on), or /dev/fuse only (off).\n");
    return fp == stderr ? 2 : 0;
}

/* A setting's word, parsed as its attribute parses it (uzram_config_set). */
static int config_set(const char *me, const char *opt, struct uzram_config *cfg, const char *name,
                      const char *word)
{
    int err = uzram_config_set(cfg, name, word);
    if (err < 0)
        fprintf(stderr, "%s: %s: %s\n", me, opt, uzram_last_error());
    return err;
}

static int parse_size(const char *opt, const char *s, uint64_t *out)
{
    if (uzram_parse_size(s, out) < 0) {
        fprintf(stderr, "uzram: %s: '%s' is not a size (e.g. 512M, 4G)\n", opt, s);
        return -1;
    }
    return 0;
}

/* Serve until DIR is unmounted or a signal in sigs arrives (they are
 * blocked by the caller and read through a signalfd). */
static void serve_until_done(struct uzfs *f, const sigset_t *sigs)
{
    int sfd = signalfd(-1, sigs, SFD_CLOEXEC);
    struct pollfd p[2] = {{.fd = uzfs_end_fd(f), .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    for (;;) {
        int n = poll(p, sfd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ||
            (sfd >= 0 && (p[1].revents & POLLIN)))
            break;
    }
    if (sfd >= 0)
        close(sfd);
}

/* What `uzram mount` or `uzram pool` was asked for. */
struct mount_args {
    struct uzram_config cfg;   /* a pool's: disksize is its capacity */
    struct uzfs_opts fo;
    bool foreground;
    bool pool;
    unsigned devices;   /* a pool's first devices */
    uint64_t size;      /* and their disksize */
    char *dir;        /* absolute */
    char *pidfile;    /* absolute, or NULL */
};

/* Parse argv into *a (a `uzram pool` if pool).  Returns -1 to go on,
 * else the exit status. */
static int parse_mount_args(int argc, char **argv, bool pool, struct mount_args *a)
{
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'},
        {"devices", required_argument, NULL, 'n'},
        {"capacity", required_argument, NULL, 'c'},
        {"algorithm", required_argument, NULL, 'a'},
        {"level", required_argument, NULL, 'l'},
        {"allocator", required_argument, NULL, 'z'},
        {"mem-limit", required_argument, NULL, 'm'},
        {"backing-dev", required_argument, NULL, 'b'},
        {"group-pages", required_argument, NULL, 'g'},
        {"dedup", required_argument, NULL, 'D'},
        {"threads", required_argument, NULL, 't'},
        {"io-uring", required_argument, NULL, 'U'},
        {"pidfile", required_argument, NULL, 'p'},
        {"foreground", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    uzram_config_init(&a->cfg);
    /* the mount's default (uzram.h); a pool's is single pages, which a
     * clone shares (grouped pages it copies) */
    a->cfg.group_pages = pool ? 1 : UZRAM_GROUP_AUTO;
    a->pool = pool;
    a->devices = 1;     /* as the zram module loads: num_devices=1 */
    uzfs_opts_init(&a->fo);
    if (pool)
        a->fo.fsname = "uzram-pool";
    bool have_size = false;
    const char *pidfile = NULL;
    const char *me = pool ? "uzram pool" : "uzram mount";
    int (*usage)(FILE *) = pool ? pool_usage : mount_usage;
    char *end;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:a:l:z:m:b:g:t:p:fh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_size("--size", optarg, pool ? &a->size : &a->cfg.disksize) < 0)
                return 2;
            have_size = true;
            break;
        case 'c':
            if (!pool || parse_size("--capacity", optarg, &a->cfg.disksize) < 0)
                return pool ? 2 : usage(stderr);
            break;
        case 'n':
            a->devices = (unsigned)strtoul(optarg, &end, 10);
            if (!pool || *optarg == 0 || *end || a->devices > UZRAM_POOL_MAX_DEVICES) {
                if (pool)
                    fprintf(stderr, "%s: --devices: give 0 to %d\n", me, UZRAM_POOL_MAX_DEVICES);
                return pool ? 2 : usage(stderr);
            }
            break;
        case 'a':
            if (config_set(me, "--algorithm", &a->cfg, "comp_algorithm", optarg) < 0)
                return 2;
            break;
        case 'l':
            if (config_set(me, "--level", &a->cfg, "level", optarg) < 0)
                return 2;
            break;
        case 'z':
            if (config_set(me, "--allocator", &a->cfg, "allocator", optarg) < 0)
                return 2;
            break;
        case 'm':
            if (config_set(me, "--mem-limit", &a->cfg, "mem_limit", optarg) < 0)
                return 2;
            break;
        case 'b':
            /* an NBD URI as it is (far memory); a path made absolute,
             * as the daemon changes directory */
            switch (uzram_backing_name(optarg)) {
            case 1:
                a->cfg.backing_dev = strdup(optarg);
                continue;
            case 0:
                break;
            default:
                if (strncmp(optarg, "nbd", 3) == 0) {   /* a URI, malformed */
                    fprintf(stderr, "%s: --backing-dev: %s\n", me, uzram_last_error());
                    return 2;
                }
            }
            a->cfg.backing_dev = realpath(optarg, NULL);
            if (!a->cfg.backing_dev) {
                fprintf(stderr, "%s: --backing-dev %s: %s\n", me, optarg, strerror(errno));
                return 2;
            }
            break;
        case 'D':
            if (config_set(me, "--dedup", &a->cfg, "dedup", optarg) < 0)
                return 2;
            break;
        case 'g':
            if (config_set(me, "--group-pages", &a->cfg, "group_pages", optarg) < 0)
                return 2;
            break;
        case 't':
            a->fo.threads = (unsigned)strtoul(optarg, &end, 10);
            if (*optarg == 0 || *end || a->fo.threads == 0 || a->fo.threads > UZ_FUSE_MAX_THREADS) {
                fprintf(stderr, "%s: --threads: give 1 to %d\n", me, UZ_FUSE_MAX_THREADS);
                return 2;
            }
            break;
        case 'U':
            _Static_assert(UZ_FUSE_URING_AUTO == 0 && UZ_FUSE_URING_ON == 1 && UZ_FUSE_URING_OFF == 2,
                           "conf_io_uring_mode's numbers are fuse.h's");
            a->fo.io_uring = conf_io_uring_mode(optarg);
            if (a->fo.io_uring < 0) {
                fprintf(stderr, "%s: --io-uring: give auto, on or off\n", me);
                return 2;
            }
            break;
        case 'p':
            pidfile = optarg;
            break;
        case 'f':
            a->foreground = true;
            break;
        case 'h':
            return usage(stdout);
        default:
            return usage(stderr);
        }
    }
    if (optind != argc - 1)
        return usage(stderr);
    const char *arg = argv[optind];
    struct stat st;
    a->dir = realpath(arg, NULL);
    if (!a->dir || stat(a->dir, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", me, arg, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s: not a directory\n", me, arg);
        return 1;
    }
    if (is_uzram_mount(a->dir)) {
        fprintf(stderr, "%s: %s: a uzram is already mounted there\n", me, a->dir);
        return 1;
    }
    if (!have_size && !pool) {   /* compcache's default: a quarter of RAM */
        uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
        a->cfg.disksize = ram / 4 / UZRAM_PAGE_SIZE * UZRAM_PAGE_SIZE;
    }
    if (pidfile) {   /* the daemon moves to /: keep the path absolute */
        char cwd[PATH_MAX];
        if (pidfile[0] == '/')
            a->pidfile = strdup(pidfile);
        else if (getcwd(cwd, sizeof cwd) && asprintf(&a->pidfile, "%s/%s", cwd, pidfile) < 0)
            a->pidfile = NULL;
        if (!a->pidfile) {
            fprintf(stderr, "%s: --pidfile: cannot resolve '%s'\n", me, pidfile);
            return 1;
        }
    }
    return -1;
}

/*
 * Go to the background the way mount(8) users expect: the parent exits
 * only once the outcome is known, with 0 if DIR is served and the child's
 * failure status otherwise.  The child reports success with one byte on
 * the pipe (see daemon_ready()); if it fails it just exits, and the
 * parent sees EOF.  Threads do not survive fork, so this comes before
 * anything starts one.  Returns true in the child (with the pipe's write
 * end in *ready); in the parent, false with the exit status in *status.
 */
static bool fork_daemon(int *ready, int *status)
{
    int p[2];
    fflush(NULL);
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("uzram mount: pipe");
        *status = 1;
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("uzram mount: fork");
        *status = 1;
        return false;
    }
    if (pid == 0) {
        close(p[0]);
        setsid();
        *ready = p[1];
        return true;
    }
    close(p[1]);
    char b;
    ssize_t r;
    while ((r = read(p[0], &b, 1)) < 0 && errno == EINTR)
        ;
    close(p[0]);
    if (r == 1) {
        *status = 0;
        return false;
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    *status = WIFEXITED(ws) && WEXITSTATUS(ws) != 0 ? WEXITSTATUS(ws) : 1;
    return false;
}

/* The mount is served: release the parent, and leave the terminal. */
static void daemon_ready(int ready)
{
    if (chdir("/") != 0) {
        /* harmless: the daemon uses absolute paths only */
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
    char ok = 'o';
    ssize_t r = write(ready, &ok, 1);
    (void)r;
    close(ready);
}

/* A swap device's server must never wait for swap: lock memory (on
 * fault, so reservations stay virtual), keep out of the OOM killer's way
 * (its death would take every swapped page with it), and stop reclaim
 * from recursing into I/O (uzram_lock_memory sets PR_SET_IO_FLUSHER;
 * the workers set it for themselves too). */
static void harden_daemon(void)
{
    int err = uzram_lock_memory();
    if (err < 0)
        fprintf(stderr, "uzram mount: warning: cannot lock memory (%s); "
                "as swap this device may deadlock under memory pressure\n", strerror(-err));
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = write(fd, "-1000", 5);   /* needs CAP_SYS_RESOURCE */
        (void)r;
        close(fd);
    }
}

/* A pool and its first a->devices devices of disksize a->size; the
 * server in *f.  Returns 0 or -1 (errors printed); nothing is left on
 * error. */
static int start_pool(const struct mount_args *a, struct uzram_pool **pool, struct uzfs **f)
{
    int err = uzram_pool_create(&a->cfg, pool);
    if (err < 0) {
        const char *msg = uzram_last_error();
        fprintf(stderr, "uzram pool: %s\n", msg && *msg ? msg : uzram_strerror(err));
        return -1;
    }
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)a->size);
    for (unsigned i = 0; i < a->devices && err >= 0; i++) {
        struct uzram *dev;
        err = uzram_pool_add(*pool, &dev);
        if (err >= 0 && a->size)
            err = uzram_attr_store(dev, "disksize", size, strlen(size));
    }
    if (err < 0) {
        const char *msg = uzram_last_error();
        fprintf(stderr, "uzram pool: device: %s\n", msg && *msg ? msg : uzram_strerror(err));
    } else if ((err = uzfs_start_pool(*pool, a->dir, &a->fo, f)) >= 0) {
        return 0;
    }
    for (int id = uzram_pool_next(*pool, -1); id >= 0; id = uzram_pool_next(*pool, id))
        uzram_pool_remove(*pool, id);
    uzram_pool_destroy(*pool);
    return -1;
}

/* Remove every device of the pool and free it (the server is stopped). */
static void destroy_pool(struct uzram_pool *pool)
{
    for (int id = uzram_pool_next(pool, -1); id >= 0; id = uzram_pool_next(pool, id))
        if (uzram_pool_remove(pool, id) < 0)
            fprintf(stderr, "uzram pool: zram%d: %s\n", id, uzram_last_error());
    int err = uzram_pool_destroy(pool);
    if (err < 0)
        fprintf(stderr, "uzram pool: %s\n", uzram_strerror(err));
}

/* `uzram mount` and `uzram pool`: parse, daemonize, serve, tear down. */
static int run_mount(int argc, char **argv, bool pool)
{
    struct mount_args a;
    int rc = parse_mount_args(argc, argv, pool, &a);
    if (rc >= 0)
        goto out;
    rc = 1;
    int ready = -1;
    if (!a.foreground && !fork_daemon(&ready, &rc))
        goto out;   /* the parent, with the mount's outcome */

    harden_daemon();
    sigset_t sigs;   /* the ways to stop: read through a signalfd */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct uzram *dev = NULL;
    struct uzram_pool *upool = NULL;
    struct uzfs *f;
    if (pool) {
        if (start_pool(&a, &upool, &f) < 0)
            goto out;
    } else {
        int err = uzram_create(&a.cfg, &dev);
        if (err < 0) {
            const char *msg = uzram_last_error();
            fprintf(stderr, "uzram mount: %s\n", msg && *msg ? msg : uzram_strerror(err));
            goto out;
        }
        if (uzfs_start(dev, a.dir, &a.fo, &f) < 0) {
            uzram_destroy(dev);
            goto out;
        }
    }
    char runpid[PATH_MAX] = "";
    struct stat st;
    if (stat(a.dir, &st) == 0) {
        pidfile_path(st.st_dev, runpid, sizeof runpid, true);
        write_pidfile(runpid);
    }
    int err;
    if (a.pidfile && (err = write_pidfile(a.pidfile)) < 0)
        fprintf(stderr, "%s: warning: %s: %s\n", pool ? "uzram pool" : "uzram mount", a.pidfile,
                strerror(-err));
    if (!a.foreground)
        daemon_ready(ready);

    serve_until_done(f, &sigs);
    uzfs_stop(f);
    if (pool)
        destroy_pool(upool);
    else
        uzram_destroy(dev);
    if (runpid[0])
        unlink(runpid);
    if (a.pidfile)
        unlink(a.pidfile);
    rc = 0;
out:
    free(a.dir);
    free(a.pidfile);
    return rc;
}

int cmd_mount(int argc, char **argv)
{
    return run_mount(argc, argv, false);
}

int cmd_pool(int argc, char **argv)
{
    return run_mount(argc, argv, true);
}

/* ------------------------------------------------------ uzram clone */

/* `uzram clone DIR/zramN`: read DIR/zramN/clone (the server makes the
 * clone and answers its number M), print DIR/zramM. */
int cmd_clone(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        bool help = argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
        fprintf(help ? stdout : stderr,
                "usage: uzram clone DIR/zramN\n"
                "  Makes a copy-on-write clone of device N of the pool mounted at DIR\n"
                "  (`uzram pool DIR`) and prints the new device's directory, DIR/zramM.\n");
        return help ? 0 : 2;
    }
    char *path = realpath(argv[1], NULL);
    if (!path) {
        fprintf(stderr, "uzram clone: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    char file[PATH_MAX + 16], buf[64];
    snprintf(file, sizeof file, "%s/clone", path);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    ssize_t n = -1;
    int e = errno;
    if (fd >= 0) {
        while ((n = read(fd, buf, sizeof buf - 1)) < 0 && errno == EINTR)
            ;
        e = errno;
        close(fd);
    }
    char *slash = strrchr(path, '/');
    int rc = 1;
    if (fd < 0 && e == ENOENT)
        fprintf(stderr, "uzram clone: %s: not a device of a uzram pool\n", argv[1]);
    else if (n <= 0)
        fprintf(stderr, "uzram clone: %s: %s%s\n", argv[1], n == 0 ? "no answer" : strerror(e),
                n < 0 && e == EINVAL ? " (is its disksize set?)" : "");
    else if (slash) {
        buf[n] = 0;
        *slash = 0;
        printf("%s/zram%ld\n", path, strtol(buf, NULL, 10));
        rc = 0;
    }
    free(path);
    return rc;
}

/* ----------------------------------------------------- uzram umount */

/* Is process pid gone (or a zombie nobody has reaped yet)? */
static bool process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');     /* "pid (comm) S ..." */
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* The pid in the mount's runtime pidfile, or 0. */
static pid_t mount_daemon(dev_t dev)
{
    char path[PATH_MAX];
    pidfile_path(dev, path, sizeof path, false);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    long pid = 0;
    if (fscanf(fp, "%ld", &pid) != 1 || pid <= 1)
        pid = 0;
    fclose(fp);
    if (pid && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        pid = 0;
    return (pid_t)pid;
}

static int umount_one(const char *arg)
{
    char *dir = realpath(arg, NULL);
    int resolve_err = dir ? 0 : errno;
    const char *path = dir ? dir : arg;     /* a dead mount does not resolve */
    struct stat st;
    pid_t pid = 0;
    if (stat(path, &st) == 0)
        pid = mount_daemon(st.st_dev);
    long owner = -1;
    if (!find_uzram_mount(path, &owner)) {
        fprintf(stderr, "uzram umount: %s: not a uzram mount%s%s%s\n", arg,
                resolve_err && resolve_err != ENOTCONN ? " (" : "",
                resolve_err && resolve_err != ENOTCONN ? strerror(resolve_err) : "",
                resolve_err && resolve_err != ENOTCONN ? ")" : "");
        free(dir);
        return 1;
    }
    /* fusermount3 would only say "entry not found in /etc/mtab" */
    if (geteuid() != 0 && owner >= 0 && owner != (long)geteuid()) {
        fprintf(stderr, "uzram umount: %s: mounted by another user (uid %ld): only that user "
                "or root can unmount it\n", arg, owner);
        free(dir);
        return 1;
    }
    /* Not lazy: a disk still in use (a loop device, an open file) keeps
     * the mount and its daemon, as umount(8) would. */
    int rc = 0;
    if (geteuid() == 0) {
        /* A loop device just detached lets go of DIR/disk a moment
         * later: give a busy mount a second. */
        int r, e;
        for (int tries = 0;; tries++) {
            r = umount2(path, 0);
            e = errno;
            if (r == 0 || e != EBUSY || tries >= 20)
                break;
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (r != 0) {
            fprintf(stderr, "uzram umount: %s: %s%s\n", arg, strerror(e),
                    e == EBUSY ? " (is DIR/disk attached to a loop device or open?)" : "");
            rc = 1;
        }
    } else {
        char *av[] = {"fusermount3", "-u", (char *)path, NULL};
        pid_t child;
        int status = 1;
        if (posix_spawnp(&child, "fusermount3", NULL, NULL, av, environ) != 0 ||
            waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = 1;
    }
    /* The daemon destroys its device and exits once the mount is gone. */
    if (rc == 0 && pid > 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        int waited = 0;
        while (!process_gone(pid) && waited < 3000) {   /* 30 s */
            nanosleep(&ts, NULL);
            waited++;
        }
        if (waited >= 3000) {
            fprintf(stderr, "uzram umount: %s: daemon %ld did not exit\n", arg, (long)pid);
            rc = 1;
        }
    }
    free(dir);
    return rc;
}

int cmd_umount(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: uzram umount DIR...\n"
                        "  Unmounts a uzram mount; its daemon frees the device and exits.\n");
        return argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? 0 : 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++)
        rc |= umount_one(argv[i]);
    return rc;
}
