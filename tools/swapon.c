/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swapon.c - `uzram swapon` and `uzram swapoff`: compressed swap in one
 * command, as zramctl + mkswap + swapon give it for kernel zram.
 *
 *   uzram swapon [--size SIZE | --percent P] [--algorithm A] [--priority N]
 *                [--name NAME] [--options LIST] [--attr NAME=VALUE]...
 *                [--level N] [--allocator Z] [--mem-limit SIZE]
 *                [--backing-dev PATH|NBD-URI] [--group-pages K] [--threads N]
 *                [--io-uring auto|on|off]
 *   uzram swapoff [DEVICE...]
 *
 * swapon mounts a device at RUNDIR/NAME (RUNDIR is /run/uzram, or
 * $UZRAM_RUNDIR; NAME defaults to the first free swapN), attaches a loop
 * device with direct I/O and 4 KiB sectors, runs mkswap and swapon, and prints the loop
 * device; the steps are setup.c's, undone if one fails.  The default size
 * is a quarter of RAM (compcache's default).  --attr writes any zram
 * attribute (recomp_algorithm=..., writeback_policy=...) at the right
 * moment: before disksize for those zram takes only then.
 *
 * swapoff takes a loop device, a mount directory or a NAME; with none it
 * removes every uzram swap under RUNDIR.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "setup.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uzram.h"

static int swapon_usage(FILE *f)
{
    fprintf(f,
            "usage: uzram swapon [--size SIZE | --percent P] [--algorithm A] [--priority N]\n"
            "                    [--name NAME] [--options LIST] [--attr NAME=VALUE]...\n"
            "                    [--level N] [--allocator Z] [--mem-limit SIZE]\n"
            "                    [--backing-dev PATH|NBD-URI] [--group-pages K] [--threads N]\n"
            "                    [--io-uring auto|on|off]\n"
            "  Makes a uzram device and swaps on it: mounts it at RUNDIR/NAME\n"
            "  (/run/uzram/swapN; RUNDIR from UZRAM_RUNDIR), attaches a loop device\n"
            "  with direct I/O and 4 KiB sectors, mkswap, swapon.  Prints the loop device.\n"
            "  --size SIZE        disk size (K, M, G suffixes); default 25%% of RAM\n"
            "  --percent P        disk size as P%% of RAM\n"
            "  --algorithm A      compression algorithm (lz4, zstd, lzo, ...)\n"
            "  --priority N       swap priority (0..32767)\n"
            "  --name NAME        the directory name under RUNDIR\n"
            "  --options LIST     swapon options (default: discard)\n"
            "  --attr NAME=VALUE  write a zram attribute (repeatable)\n"
            "  --level, --allocator, --mem-limit, --backing-dev, --group-pages,\n"
            "  --threads, --io-uring   passed to `uzram mount`\n");
    return f == stderr ? 2 : 0;
}

static uint64_t ram_bytes(void)
{
    return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

int cmd_swapon(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'},
        {"percent", required_argument, NULL, 'P'},
        {"algorithm", required_argument, NULL, 'a'},
        {"priority", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},
        {"options", required_argument, NULL, 'o'},
        {"attr", required_argument, NULL, 'A'},
        {"level", required_argument, NULL, 'l'},
        {"allocator", required_argument, NULL, 'z'},
        {"mem-limit", required_argument, NULL, 'm'},
        {"backing-dev", required_argument, NULL, 'b'},
        {"group-pages", required_argument, NULL, 'g'},
        {"threads", required_argument, NULL, 't'},
        {"io-uring", required_argument, NULL, 'U'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct setup s;
    setup_init(&s);
    bool have_size = false, have_percent = false;
    char *end;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:P:a:p:n:o:A:l:z:m:b:g:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (uzram_parse_size(optarg, &s.disksize) < 0 || s.disksize == 0) {
                fprintf(stderr, "uzram swapon: --size: '%s' is not a size (e.g. 256M, 4G)\n",
                        optarg);
                return 2;
            }
            have_size = true;
            break;
        case 'P': {
            double p = strtod(optarg, &end);
            if (*optarg == 0 || *end || !(p > 0 && p <= 1000)) {
                fprintf(stderr, "uzram swapon: --percent: '%s' is not a percentage (0 < P <= 1000)\n",
                        optarg);
                return 2;
            }
            s.disksize = (uint64_t)((double)ram_bytes() * p / 100.0);
            have_percent = true;
            break;
        }
        case 'p': {
            long p = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || p < 0 || p > 32767) {
                fprintf(stderr, "uzram swapon: --priority: give 0 to 32767\n");
                return 2;
            }
            s.priority = (int)p;
            break;
        }
        case 'n':
            s.name = optarg;
            break;
        case 'o':
            s.options = optarg;
            break;
        case 'A':
            if (setup_attr(&s, optarg) < 0) {
                fprintf(stderr, "uzram swapon: --attr: '%s': give NAME=VALUE (at most %d)\n",
                        optarg, UZ_SETUP_MAX_ATTRS);
                return 2;
            }
            break;
        case 'a': case 'l': case 'z': case 'm': case 'b': case 'g': case 't': case 'U': {
            const char *opt = NULL;
            for (const struct option *o = longopts; o->name; o++)
                if (o->val == c)
                    opt = o->name;
            static char flags[UZ_SETUP_MAX_ARGS][24];
            snprintf(flags[s.nmount_args % UZ_SETUP_MAX_ARGS], sizeof flags[0], "--%s", opt);
            if (setup_arg(&s, flags[s.nmount_args % UZ_SETUP_MAX_ARGS]) < 0 ||
                setup_arg(&s, optarg) < 0) {
                fprintf(stderr, "uzram swapon: too many options\n");
                return 2;
            }
            break;
        }
        case 'h':
            return swapon_usage(stdout);
        default:
            return swapon_usage(stderr);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "uzram swapon: unexpected argument '%s'\n", argv[optind]);
        return swapon_usage(stderr);
    }
    if (have_size && have_percent) {
        fprintf(stderr, "uzram swapon: give --size or --percent, not both\n");
        return 2;
    }
    if (!have_size && !have_percent)
        s.disksize = ram_bytes() / 4;
    s.disksize = (s.disksize + 4095) / 4096 * 4096;
    if (geteuid() != 0) {
        fprintf(stderr, "uzram swapon: needs root (loop devices and swapon)\n");
        return 1;
    }
    char dir[PATH_MAX], loop[64];
    if (setup_up("uzram swapon", &s, dir, sizeof dir, loop, sizeof loop) != 0)
        return 1;
    printf("%s\n", loop);
    return 0;
}

int cmd_swapoff(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: uzram swapoff [DEVICE...]\n"
               "  Undoes `uzram swapon`: swapoff, detach the loop device, unmount.\n"
               "  DEVICE is the loop device, the mount directory or its NAME; with\n"
               "  none, every uzram swap under RUNDIR (/run/uzram or UZRAM_RUNDIR).\n");
        return 0;
    }
    if (argc >= 2 && argv[1][0] == '-' && strcmp(argv[1], "--")) {
        fprintf(stderr, "uzram swapoff: unknown option '%s'\n", argv[1]);
        return 2;
    }
    int first = argc >= 2 && !strcmp(argv[1], "--") ? 2 : 1;
    if (geteuid() != 0) {
        fprintf(stderr, "uzram swapoff: needs root\n");
        return 1;
    }
    int rc = 0;
    if (first < argc) {
        for (int i = first; i < argc; i++)
            rc |= setup_down("uzram swapoff", argv[i]);
        return rc;
    }
    const char *run = setup_rundir();
    DIR *d = opendir(run);
    if (!d)
        return 0;   /* nothing was ever set up */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", run, e->d_name);
        char *abs = realpath(dir, NULL);
        if (abs && setup_is_swap(abs))
            rc |= setup_down("uzram swapoff", abs);
        free(abs);
    }
    closedir(d);
    return rc;
}
