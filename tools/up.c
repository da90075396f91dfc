/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * up.c - `uzram up [--] NAME` and `uzram down [--] NAME`: bring up and
 * take down the device [NAME] of /etc/uzram.conf ($UZRAM_CONF).  These
 * are the commands the units of uzram-generator run (with "--", so that
 * no name reads as an option); by hand they are what `systemctl start
 * uzram-NAME` does.
 *
 * A section becomes a struct setup (build(); setup.c does the rest),
 * nearly all of it attribute writes, so that the library judges them:
 *
 *   zram-size                        disksize (conf_bytes)
 *   compression-algorithm A(P) B(Q)  before disksize: comp_algorithm A,
 *                                    recomp_algorithm "algo=B priority=1",
 *                                    algorithm_params "priority=0 P" and
 *                                    "priority=1 Q"
 *   group-pages                      before disksize: group_pages
 *   zram-resident-limit              after it: mem_limit (conf_bytes)
 *   recompress-policy, writeback-policy, auto-compact   after it: the
 *                                    attributes of those names
 *   writeback-device, allocator,     `uzram mount --backing-dev, --allocator,
 *   io-uring                          --io-uring`
 *   fs-type, mount-point, options, swap-priority        as swapon/mount
 *
 * up_check_section (up.h) replays those writes on a library device before
 * anything is mounted; the generator runs the same check, so a value `up`
 * would refuse gets no unit.  host-memory-limit: on a machine with more
 * RAM (MiB) than that, `up` does nothing and says so (the generator makes
 * no unit for it at all).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "conf.h"
#include "setup.h"
#include "up.h"
#include "uzram.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Buffers the strings of a struct setup point into, and the key of
 * the section each attribute write comes from. */
struct up_strings {
    char size_arg[32];
    char attrs[UZ_SETUP_MAX_ATTRS][192];
    const char *keys[UZ_SETUP_MAX_ATTRS];
    int nattrs;
};

/* Format an attribute write "NAME=VALUE" into b and add it to s; false
 * when there is no room (or the value does not fit). */
static bool add_attr(struct setup *s, struct up_strings *b, const char *key, const char *fmt,
                     ...)
{
    if (b->nattrs >= UZ_SETUP_MAX_ATTRS)
        return false;
    char *dst = b->attrs[b->nattrs];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, sizeof b->attrs[0], fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof b->attrs[0] || setup_attr(s, dst) < 0)
        return false;
    b->keys[b->nattrs++] = key;
    return true;
}

/* Fill s (borrowing strings from d and b) from the section d: -1 with
 * the reason in why (and the key to blame in *key). */
static int build(const struct conf_dev *d, double ram, struct setup *s,
                 struct up_strings *b, char *why, size_t whysize, const char **key)
{
    char e[160];
    setup_init(s);
    memset(b, 0, sizeof *b);
    s->name = d->name;
    *key = "zram-size";
    if (conf_bytes(d->size, ram, &s->disksize, e, sizeof e) < 0) {
        snprintf(why, whysize, "zram-size: %s", e);
        return -1;
    }
    bool ok = true;
    /* before disksize (setup_attr sorts them): the primary first, then
     * the secondaries, then the parameters that name them */
    if (d->nalgo > 0)
        ok &= add_attr(s, b, "compression-algorithm", "comp_algorithm=%s", d->algo[0].name);
    for (int i = 1; i < d->nalgo; i++)
        ok &= add_attr(s, b, "compression-algorithm", "recomp_algorithm=algo=%s priority=%d",
                       d->algo[i].name, i);
    for (int i = 0; i < d->nalgo; i++)
        if (d->algo[i].params[0])
            ok &= add_attr(s, b, "compression-algorithm", "algorithm_params=priority=%d %s", i,
                           d->algo[i].params);
    if (d->group_pages == UZRAM_GROUP_AUTO)
        ok &= add_attr(s, b, "group-pages", "group_pages=auto");
    else if (d->group_pages > 1)
        ok &= add_attr(s, b, "group-pages", "group_pages=%u", d->group_pages);
    /* after disksize */
    if (d->resident_limit[0]) {
        uint64_t limit;
        *key = "zram-resident-limit";
        if (conf_bytes(d->resident_limit, ram, &limit, e, sizeof e) < 0) {
            snprintf(why, whysize, "zram-resident-limit: %s", e);
            return -1;
        }
        ok &= add_attr(s, b, "zram-resident-limit", "mem_limit=%llu", (unsigned long long)limit);
    }
    struct {
        const char *key, *attr, *value;
    } post[] = {{"recompress-policy", "recompress_policy", d->recompress_policy},
                {"writeback-policy", "writeback_policy", d->writeback_policy},
                {"auto-compact", "auto_compact", d->auto_compact}};
    for (size_t i = 0; i < sizeof post / sizeof post[0]; i++)
        if (post[i].value[0])
            ok &= add_attr(s, b, post[i].key, "%s=%s", post[i].attr, post[i].value);
    /* mount arguments: what no attribute sets */
    if (d->writeback_device[0]) {
        setup_arg(s, "--backing-dev");
        setup_arg(s, d->writeback_device);
    }
    if (d->allocator[0]) {
        setup_arg(s, "--allocator");
        setup_arg(s, d->allocator);
    }
    if (d->io_uring[0]) {
        setup_arg(s, "--io-uring");
        setup_arg(s, d->io_uring);
    }
    *key = NULL;
    if (!ok) {
        snprintf(why, whysize, "too many settings");
        return -1;
    }
    s->fs_type = d->fs_type;
    s->mount_point = d->mount_point[0] ? d->mount_point : NULL;
    s->options = d->options;
    s->priority = d->swap_priority;
    return 0;
}

/* The key of the section attribute write nv came from. */
static const char *key_of(const struct up_strings *b, const char *nv)
{
    for (int i = 0; i < b->nattrs; i++)
        if (b->attrs[i] == nv)
            return b->keys[i];
    return NULL;
}

/* Store "NAME=VALUE" in dev: 0, or -1 with the library's reason. */
static int store_nv(struct uzram *dev, const char *nv, char *why, size_t whysize)
{
    const char *eq = strchr(nv, '=');
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(eq - nv), nv);
    int err = uzram_attr_store(dev, name, eq + 1, strlen(eq + 1));
    if (err < 0) {
        const char *msg = uzram_last_error();
        snprintf(why, whysize, "%s", msg && *msg ? msg : uzram_strerror(err));
        return -1;
    }
    return 0;
}

/*
 * Replay s on a library device: what `uzram mount DIR --size 0
 * --group-pages 1 [--allocator Z]` creates (setup_up, step 2), then
 * the pre attributes, disksize and the post ones (step 3), through
 * uzram_attr_store, which the mount's attribute files call.  One
 * compression stream: the check compresses nothing.
 */
static int dry_run(const struct conf_dev *d, const struct setup *s,
                   const struct up_strings *b, char *why, size_t whysize, const char **key)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.group_pages = 1;
    cfg.streams = 1;
    cfg.allocator = d->allocator[0] ? d->allocator : NULL;
    struct uzram *dev;
    int err = uzram_create(&cfg, &dev);
    if (err < 0) {
        const char *msg = uzram_last_error();
        snprintf(why, whysize, "%s", msg && *msg ? msg : uzram_strerror(err));
        *key = d->allocator[0] ? "allocator" : NULL;
        return -1;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < s->npre; i++)
        if ((rc = store_nv(dev, s->pre[i], why, whysize)) < 0)
            *key = key_of(b, s->pre[i]);
    if (rc == 0) {
        char size[48];
        snprintf(size, sizeof size, "disksize=%llu", (unsigned long long)s->disksize);
        if ((rc = store_nv(dev, size, why, whysize)) < 0)
            *key = "zram-size";
    }
    for (int i = 0; rc == 0 && i < s->npost; i++)
        if ((rc = store_nv(dev, s->post[i], why, whysize)) < 0)
            *key = key_of(b, s->post[i]);
    uzram_destroy(dev);
    return rc;
}

int up_check_section(const struct conf_dev *d, double ram_mib, char *why, size_t whysize,
                     const char **key)
{
    *key = NULL;
    if (d->nerrors) {
        snprintf(why, whysize, "%s", d->error);
        return -1;
    }
    if (strcmp(d->fs_type, "swap") && !d->mount_point[0]) {
        *key = "fs-type";
        snprintf(why, whysize, "fs-type %s needs a mount-point", d->fs_type);
        return -1;
    }
    struct setup s;
    struct up_strings b;
    if (build(d, ram_mib, &s, &b, why, whysize, key) < 0)
        return -1;
    char msg[320];
    if (dry_run(d, &s, &b, msg, sizeof msg, key) < 0) {
        /* the library names its attribute; say which key gave it */
        snprintf(why, whysize, "%s%s%s", *key ? *key : "", *key ? ": " : "", msg);
        return -1;
    }
    return 0;
}

/* Print why d fails the check, naming its line when one key is to blame. */
static void print_check_error(const char *cmd, const struct conf_dev *d, const char *why,
                              const char *key)
{
    unsigned line = key ? conf_key_line(d, key) : 0;
    if (d->nerrors)
        fprintf(stderr, "%s: %s%s\n", cmd, why,
                d->nerrors > 1 ? " (and more errors in the section)" : "");
    else if (line)
        fprintf(stderr, "%s: %s:%u: [%s] %s\n", cmd, conf_path(), line, d->name, why);
    else
        fprintf(stderr, "%s: %s: [%s] %s\n", cmd, conf_path(), d->name, why);
}

/* Load the configuration and find [name]; prints why not. */
static int load(const char *cmd, const char *name, struct conf *c,
                const struct conf_dev **d)
{
    char err[512];
    const char *path = conf_path();
    int rc = conf_load(path, c, err, sizeof err);
    if (rc < 0 && rc != -EINVAL) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return -1;
    }
    *d = conf_find(c, name);
    if (!*d) {
        fprintf(stderr, "%s: %s has no device [%s]\n", cmd, path, name);
        /* one of them may be the header meant */
        size_t kept = c->nerrors < UZ_CONF_MAX_MESSAGES ? c->nerrors : UZ_CONF_MAX_MESSAGES;
        for (size_t i = 0; i < kept; i++)
            fprintf(stderr, "%s: %s\n", cmd, c->errors[i]);
        conf_free(c);
        return -1;
    }
    return 0;
}

/* The NAME of `uzram up|down [--] NAME`, or NULL for a usage error. */
static const char *name_arg(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--"))
        return argv[2];
    if (argc == 2 && argv[1][0] != '-')
        return argv[1];
    return NULL;
}

static int updown_usage(const char *what, int rc)
{
    FILE *f = rc ? stderr : stdout;
    if (!strcmp(what, "up"))
        fprintf(f, "usage: uzram up [--] NAME\n"
                   "  Brings up the device [NAME] of the configuration file (/etc/uzram.conf,\n"
                   "  or UZRAM_CONF): swap, or a filesystem at its mount-point.\n");
    else
        fprintf(f, "usage: uzram down [--] NAME\n"
                   "  Takes down the device [NAME] that `uzram up NAME` brought up.\n");
    return rc;
}

int cmd_up(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return updown_usage("up", 0);
    const char *name = name_arg(argc, argv);
    if (!name)
        return updown_usage("up", 2);
    struct conf c;
    const struct conf_dev *d;
    if (load("uzram up", name, &c, &d) < 0)
        return 1;
    int rc = 1;
    double ram = conf_ram_mib();
    if (d->host_memory_limit && ram > (double)d->host_memory_limit && !d->nerrors) {
        printf("uzram up: [%s] skipped: %.0f MiB of RAM is over its host-memory-limit %llu\n",
               d->name, ram, (unsigned long long)d->host_memory_limit);
        rc = 0;
        goto out;
    }
    char why[400];
    const char *key;
    if (up_check_section(d, ram, why, sizeof why, &key) < 0) {
        print_check_error("uzram up", d, why, key);
        goto out;
    }
    if (d->recompress_args[0])
        fprintf(stderr, "uzram up: [%s] warning: '(%s)' after the algorithms is not used; "
                "recompress-policy makes uzram recompress by itself\n", d->name,
                d->recompress_args);
    struct setup s;
    struct up_strings b;
    if (build(d, ram, &s, &b, why, sizeof why, &key) < 0) {   /* as checked: cannot fail */
        print_check_error("uzram up", d, why, key);
        goto out;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "uzram up: needs root (loop devices, swapon, mount)\n");
        goto out;
    }
    char dir[PATH_MAX], loop[64];
    rc = setup_up("uzram up", &s, dir, sizeof dir, loop, sizeof loop);
    if (rc == 0)
        printf("%s: %s on %s (%s)\n", d->name, loop, !strcmp(d->fs_type, "swap") ? "[SWAP]"
                                                                              : d->mount_point,
               dir);
out:
    conf_free(&c);
    return rc;
}

int cmd_down(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return updown_usage("down", 0);
    const char *name = name_arg(argc, argv);
    if (!name)
        return updown_usage("down", 2);
    if (geteuid() != 0) {
        fprintf(stderr, "uzram down: needs root\n");
        return 1;
    }
    return setup_down("uzram down", name);
}
