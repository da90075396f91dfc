/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * generator.c - uzram-generator, a systemd generator (systemd.generator(7)):
 * one unit per device of /etc/uzram.conf ($UZRAM_CONF).
 *
 *   uzram-generator NORMAL_DIR [EARLY_DIR LATE_DIR]
 *
 * systemd runs it early at boot (and on daemon-reload) with the three
 * directories; it writes into NORMAL_DIR only:
 *
 *   uzram-NAME.service    Type=oneshot, RemainAfterExit=yes:
 *                         ExecStart=uzram up -- NAME, ExecStop=uzram down -- NAME
 *   swap.target.wants/uzram-NAME.service       for a swap device
 *   local-fs.target.wants/uzram-NAME.service   for a filesystem
 *   remote-fs.target.wants/uzram-NAME.service  for either, when its writeback-device
 *                                              is an NBD URI (after network-online.target)
 *
 * The device is a service rather than .swap/.mount units because its loop
 * device's name is known only once it is attached; the FUSE daemon that
 * `uzram up` starts lives in the service's cgroup and is stopped by
 * `uzram down` before systemd would kill it.  A device whose
 * host-memory-limit is below the machine's RAM gets no unit.  UZRAM_CONF
 * and UZRAM_RUNDIR, when set, are passed on to the units (for tests).
 *
 * Each section is checked as `uzram up` would take it (up_check_section, the
 * same code `up` runs first), so a unit is written only for a device
 * `up` can bring up.  A bad section gets no unit and the others still
 * do: every error is printed (FILE:LINE, on stderr, which systemd puts in
 * the journal) with what it rejected, and the exit status is then 1,
 * which systemd logs.
 */
#define _GNU_SOURCE
#include "conf.h"
#include "uzram.h"
#include "up.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef UZ_BINDIR
#define UZ_BINDIR "/usr/local/bin"
#endif

static const char *prog = "uzram-generator";

/* The uzram binary: beside this one if it is there (a build tree),
 * else where it is installed. */
static void uzram_path(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        snprintf(out, size, "%s/uzram", dirname(self));
        if (access(out, X_OK) == 0)
            return;
    }
    snprintf(out, size, "%s/uzram", UZ_BINDIR);
}

/* s as one double-quoted word of a unit file: \ and " escaped, % doubled
 * (systemd's specifier character). */
static void put_word(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '%')
            fputc('%', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The unit of d and its .wants link.  d->name is a device name
 * (conf_name_ok: letters, digits, ":_.-", no leading '-' or '.'), so it
 * is a unit name's part and one word of a command line as it is. */
static int write_unit(const char *dir, const struct conf_dev *d, const char *uzram)
{
    char why[160];
    if (!conf_name_ok(d->name, why, sizeof why)) {
        fprintf(stderr, "%s: %s\n", prog, why);
        return -1;
    }
    bool swap = !strcmp(d->fs_type, "swap");
    bool remote = d->writeback_device[0] && uzram_backing_name(d->writeback_device) == 1;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/uzram-%s.service", dir, d->name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    fprintf(f, "# Written by uzram-generator from %s: do not edit.\n", conf_path());
    fprintf(f, "[Unit]\n");
    if (swap)
        fprintf(f, "Description=uzram compressed swap %s\n", d->name);
    else
        fprintf(f, "Description=uzram compressed %s filesystem %s on %s\n", d->fs_type, d->name,
                d->mount_point);
    fprintf(f, "Documentation=man:uzram.conf(5) man:uzram(1)\n");
    fprintf(f, "DefaultDependencies=no\n");
    /* a writeback device on another host (an NBD URI): up once the
     * network is, as remote file systems are, and down before it goes */
    const char *wanted_by = remote ? "remote-fs.target" : swap ? "swap.target" : "local-fs.target";
    if (remote) {
        fprintf(f, "Wants=network-online.target\n");
        fprintf(f, "After=systemd-modules-load.service network-online.target\n");
    } else {
        fprintf(f, "After=systemd-modules-load.service\n");
    }
    fprintf(f, "Before=%s shutdown.target\n", wanted_by);
    fprintf(f, "Conflicts=shutdown.target\n");
    fprintf(f, "\n[Service]\n");
    fprintf(f, "Type=oneshot\n");
    fprintf(f, "RemainAfterExit=yes\n");
    fprintf(f, "OOMScoreAdjust=-1000\n");
    const char *envs[] = {"UZRAM_CONF", "UZRAM_RUNDIR"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = getenv(envs[i]);
        if (v && *v) {
            char kv[PATH_MAX + 32];
            snprintf(kv, sizeof kv, "%s=%s", envs[i], v);
            fprintf(f, "Environment=");
            put_word(f, kv);
            fputc('\n', f);
        }
    }
    fprintf(f, "ExecStart=");
    put_word(f, uzram);
    fprintf(f, " up -- %s\n", d->name);
    fprintf(f, "ExecStop=");
    put_word(f, uzram);
    fprintf(f, " down -- %s\n", d->name);
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    /* wanted by swap.target or local-fs.target (remote-fs.target) */
    char wants[PATH_MAX], link[PATH_MAX + 128], target[128];
    snprintf(wants, sizeof wants, "%s/%s.wants", dir, wanted_by);
    if (mkdir(wants, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: mkdir %s: %s\n", prog, wants, strerror(errno));
        return -1;
    }
    snprintf(link, sizeof link, "%s/uzram-%s.service", wants, d->name);
    snprintf(target, sizeof target, "../uzram-%s.service", d->name);
    unlink(link);
    if (symlink(target, link) != 0) {
        fprintf(stderr, "%s: symlink %s: %s\n", prog, link, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: uzram-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n"
               "  Writes a unit per device of /etc/uzram.conf (or UZRAM_CONF) into\n"
               "  NORMAL_DIR, as systemd calls generators.  Keys of a [device] section:\n");
        for (int i = 0; conf_keys[i]; i++)
            printf("    %s\n", conf_keys[i]);
        return 0;
    }
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: uzram-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n");
        return 2;
    }
    const char *dir = argv[1];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s: not a directory\n", prog, dir);
        return 1;
    }
    struct conf c;
    char err[512];
    int rc = conf_load(conf_path(), &c, err, sizeof err);
    if (rc < 0 && rc != -EINVAL) {   /* unreadable */
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    rc = 0;
    size_t kept = c.nerrors < UZ_CONF_MAX_MESSAGES ? c.nerrors : UZ_CONF_MAX_MESSAGES;
    for (size_t i = 0; i < kept; i++)
        fprintf(stderr, "%s: %s\n", prog, c.errors[i]);
    if (c.nerrors > kept)
        fprintf(stderr, "%s: %s: %zu more errors\n", prog, conf_path(), c.nerrors - kept);
    if (c.nerrors)
        rc = 1;
    char uzram[PATH_MAX];
    uzram_path(uzram, sizeof uzram);
    double ram = conf_ram_mib();
    for (size_t i = 0; i < c.ndev; i++) {
        const struct conf_dev *d = &c.dev[i];
        char why[400];
        const char *key;
        if (d->nerrors) {
            fprintf(stderr, "%s: [%s] (line %u) has %u error%s: no unit written\n", prog, d->name,
                    d->line, d->nerrors, d->nerrors > 1 ? "s" : "");
            rc = 1;
            continue;
        }
        if (d->host_memory_limit && ram > (double)d->host_memory_limit) {
            fprintf(stderr, "%s: [%s] skipped: %.0f MiB of RAM is over host-memory-limit %llu\n",
                    prog, d->name, ram, (unsigned long long)d->host_memory_limit);
            continue;
        }
        if (up_check_section(d, ram, why, sizeof why, &key) < 0) {
            unsigned line = key ? conf_key_line(d, key) : 0;
            fprintf(stderr, "%s: %s:%u: [%s] %s: no unit written\n", prog, conf_path(),
                    line ? line : d->line, d->name, why);
            rc = 1;
            continue;
        }
        if (write_unit(dir, d, uzram) < 0)
            rc = 1;
    }
    conf_free(&c);
    return rc;
}
