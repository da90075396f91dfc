/*
 * up.c - `uzram up NAME` and `uzram down NAME`: bring up and take down
 * the device [NAME] of /etc/uzram.conf ($UZRAM_CONF).  These are the
 * commands the units of uzram-generator run; by hand they are what
 * `systemctl start uzram-NAME` does.
 *
 * A section becomes a struct uz_setup (setup.c does the rest):
 *
 *   zram-size, zram-resident-limit   disksize, `uzram mount --mem-limit`
 *   compression-algorithm A(P) B(Q)  --algorithm A, algorithm_params
 *                                    "priority=0 P", recomp_algorithm
 *                                    "algo=B priority=1", algorithm_params
 *                                    "priority=1 Q"
 *   writeback-device, allocator,     --backing-dev, --allocator,
 *   group-pages                      --group-pages
 *   recompress-policy, writeback-policy, auto-compact   the attributes
 *   fs-type, mount-point, options, swap-priority        as swapon/mount
 *
 * host-memory-limit: on a machine with more RAM (MiB) than that, `up`
 * does nothing and says so (the generator makes no unit for it at all).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "conf.h"
#include "setup.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Buffers the strings of a struct uz_setup point into. */
struct up_strings {
    char size_arg[32], limit_arg[32];
    char attrs[UZ_SETUP_MAX_ATTRS][192];
    int nattrs;
};

static const char *keep(struct up_strings *b, const char *fmt, const char *a, const char *c)
{
    if (b->nattrs >= UZ_SETUP_MAX_ATTRS)
        return NULL;
    char *dst = b->attrs[b->nattrs++];
    snprintf(dst, sizeof b->attrs[0], fmt, a, c);
    return dst;
}

/* Evaluate a MiB expression to bytes (whole pages); -1 if not > 0. */
static int mib_bytes(const char *cmd, const char *name, const char *key, const char *expr,
                     uint64_t *out)
{
    double v;
    char err[128];
    if (uz_conf_eval(expr, uz_conf_ram_mib(), &v, err, sizeof err) < 0) {
        fprintf(stderr, "%s: [%s] %s: %s\n", cmd, name, key, err);
        return -1;
    }
    if (!(v * 1048576.0 >= 4096.0) || v > 1e12) {
        fprintf(stderr, "%s: [%s] %s = %s gives %.3f MiB: not a usable size\n", cmd, name, key,
                expr, v);
        return -1;
    }
    *out = ((uint64_t)floor(v * 1048576.0) + 4095) / 4096 * 4096;
    return 0;
}

/* Fill s (borrowing strings from d and b) from the section d. */
static int build(const char *cmd, const struct uz_conf_dev *d, struct uz_setup *s,
                 struct up_strings *b)
{
    uz_setup_init(s);
    memset(b, 0, sizeof *b);
    s->name = d->name;
    if (mib_bytes(cmd, d->name, "zram-size", d->size, &s->disksize) < 0)
        return -1;
    if (d->resident_limit[0]) {
        uint64_t limit;
        if (mib_bytes(cmd, d->name, "zram-resident-limit", d->resident_limit, &limit) < 0)
            return -1;
        snprintf(b->limit_arg, sizeof b->limit_arg, "%llu", (unsigned long long)limit);
        uz_setup_arg(s, "--mem-limit");
        uz_setup_arg(s, b->limit_arg);
    }
    int err = 0;
    if (d->nalgo > 0) {
        uz_setup_arg(s, "--algorithm");
        uz_setup_arg(s, d->algo[0].name);
    }
    for (int i = 1; i < d->nalgo; i++) {
        char prio[12];
        snprintf(prio, sizeof prio, "%d", i);
        const char *a = keep(b, "recomp_algorithm=algo=%s priority=%s", d->algo[i].name, prio);
        err |= !a || uz_setup_attr(s, a) < 0;
    }
    for (int i = 0; i < d->nalgo; i++) {
        if (!d->algo[i].params[0])
            continue;
        char prio[12];
        snprintf(prio, sizeof prio, "%d", i);
        const char *a = keep(b, "algorithm_params=priority=%s %s", prio, d->algo[i].params);
        err |= !a || uz_setup_attr(s, a) < 0;
    }
    if (d->writeback_device[0]) {
        uz_setup_arg(s, "--backing-dev");
        uz_setup_arg(s, d->writeback_device);
    }
    if (d->allocator[0]) {
        uz_setup_arg(s, "--allocator");
        uz_setup_arg(s, d->allocator);
    }
    if (d->group_pages > 1) {
        snprintf(b->size_arg, sizeof b->size_arg, "%u", d->group_pages);
        uz_setup_arg(s, "--group-pages");
        uz_setup_arg(s, b->size_arg);
    }
    struct {
        const char *attr, *value;
    } post[] = {{"recompress_policy", d->recompress_policy},
                {"writeback_policy", d->writeback_policy},
                {"auto_compact", d->auto_compact}};
    for (size_t i = 0; i < sizeof post / sizeof post[0]; i++) {
        if (!post[i].value[0])
            continue;
        const char *a = keep(b, "%s=%s", post[i].attr, post[i].value);
        err |= !a || uz_setup_attr(s, a) < 0;
    }
    if (err) {
        fprintf(stderr, "%s: [%s]: too many settings\n", cmd, d->name);
        return -1;
    }
    s->fs_type = d->fs_type;
    s->mount_point = d->mount_point[0] ? d->mount_point : NULL;
    s->options = d->options;
    s->priority = d->swap_priority;
    return 0;
}

/* Load the configuration and find [name]; prints why not. */
static int load(const char *cmd, const char *name, struct uz_conf *c,
                const struct uz_conf_dev **d)
{
    char err[512];
    const char *path = uz_conf_path();
    if (uz_conf_load(path, c, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return -1;
    }
    *d = uz_conf_find(c, name);
    if (!*d) {
        fprintf(stderr, "%s: %s has no device [%s]\n", cmd, path, name);
        uz_conf_free(c);
        return -1;
    }
    return 0;
}

static int updown_usage(const char *what, int rc)
{
    FILE *f = rc ? stderr : stdout;
    if (!strcmp(what, "up"))
        fprintf(f, "usage: uzram up NAME\n"
                   "  Brings up the device [NAME] of the configuration file (/etc/uzram.conf,\n"
                   "  or UZRAM_CONF): swap, or a filesystem at its mount-point.\n");
    else
        fprintf(f, "usage: uzram down NAME\n"
                   "  Takes down the device [NAME] that `uzram up NAME` brought up.\n");
    return rc;
}

int uz_cmd_up(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return updown_usage("up", 0);
    if (argc != 2 || argv[1][0] == '-')
        return updown_usage("up", 2);
    struct uz_conf c;
    const struct uz_conf_dev *d;
    if (load("uzram up", argv[1], &c, &d) < 0)
        return 1;
    int rc = 1;
    double ram = uz_conf_ram_mib();
    if (d->host_memory_limit && ram > (double)d->host_memory_limit) {
        printf("uzram up: [%s] skipped: %.0f MiB of RAM is over its host-memory-limit %llu\n",
               d->name, ram, (unsigned long long)d->host_memory_limit);
        rc = 0;
        goto out;
    }
    if (d->recompress_args[0])
        fprintf(stderr, "uzram up: [%s] warning: '(%s)' after the algorithms is not used; "
                "recompress-policy makes uzram recompress by itself\n", d->name,
                d->recompress_args);
    struct uz_setup s;
    struct up_strings b;
    if (build("uzram up", d, &s, &b) < 0)
        goto out;
    if (geteuid() != 0) {
        fprintf(stderr, "uzram up: needs root (loop devices, swapon, mount)\n");
        goto out;
    }
    char dir[PATH_MAX], loop[64];
    rc = uz_setup_up("uzram up", &s, dir, sizeof dir, loop, sizeof loop);
    if (rc == 0)
        printf("%s: %s on %s (%s)\n", d->name, loop, !strcmp(d->fs_type, "swap") ? "[SWAP]"
                                                                              : d->mount_point,
               dir);
out:
    uz_conf_free(&c);
    return rc;
}

int uz_cmd_down(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return updown_usage("down", 0);
    if (argc != 2 || argv[1][0] == '-')
        return updown_usage("down", 2);
    if (geteuid() != 0) {
        fprintf(stderr, "uzram down: needs root\n");
        return 1;
    }
    return uz_setup_down("uzram down", argv[1]);
}
