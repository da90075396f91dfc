/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * train.c - `uzram train DIR|PAGEFILE -o FILE [--size BYTES]`: a zstd
 * dictionary trained from a device's own pages, for algorithm_params
 * dict=FILE.
 *
 * On a mount (DIR of `uzram mount`, or DIR/zramN of a pool) the device
 * trains itself: the tool writes "FILE size=BYTES" to DIR/train_dict,
 * and the server reads the pages (idle ones first, without making them
 * hot) and writes FILE.  On a page file (raw or .zst, as `uzram bench`
 * takes them) the tool makes a device of its own with the mount's
 * defaults, fills it with the pages and asks it the same through
 * uzram_attr_store: the one trainer either way (src/train.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zdict.h>

#include "cli.h"
#include "pagefile.h"
#include "uzram.h"

#define PAGE 4096u

static void usage(FILE *f)
{
    fprintf(f, "usage: uzram train DIR|PAGEFILE -o FILE [--size BYTES]\n"
               "  train a zstd dictionary from a device's pages (idle ones first) and write\n"
               "  it to FILE, for `algorithm_params priority=N dict=FILE`\n"
               "  DIR        a mount (uzram mount / pool's DIR/zramN): it trains on its pages\n"
               "  PAGEFILE   raw 4 KiB pages or .zst (uzram capture): trained on a device of\n"
               "             the mount's defaults filled with them\n"
               "  -o FILE    the dictionary to write (replaced whole)\n"
               "  --size N   its size at most (4K..1M; default 112K, as zstd --train)\n");
}

/* The device of a page file: made, filled, trained on, destroyed. */
static int train_pagefile(const char *pf, const char *req)
{
    uint8_t *data;
    uint64_t pages;
    char msg[512];
    if (pagefile_load(pf, 0, &data, &pages, msg, sizeof msg) < 0) {
        fprintf(stderr, "uzram train: %s\n", msg);
        return 1;
    }
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = pages * PAGE;
    struct uzram *dev;
    int rc = 1;
    if (uzram_create(&cfg, &dev) < 0) {
        fprintf(stderr, "uzram train: %s\n", uzram_last_error());
        free(data);
        return 1;
    }
    for (uint64_t off = 0; off < pages * PAGE; off += 256u * PAGE) {
        size_t n = pages * PAGE - off < 256u * PAGE ? (size_t)(pages * PAGE - off) : 256u * PAGE;
        if (uzram_write(dev, data + off, n, off) < 0) {
            fprintf(stderr, "uzram train: %s: %s\n", pf, uzram_last_error());
            goto out;
        }
    }
    if (uzram_attr_store(dev, "train_dict", req, strlen(req)) < 0) {
        fprintf(stderr, "uzram train: %s: %s\n", pf, uzram_last_error());
        goto out;
    }
    rc = 0;
out:
    uzram_destroy(dev);
    free(data);
    return rc;
}

/* The mount at dir trains itself. */
static int train_mount(const char *dir, const char *req)
{
    char attr[PATH_MAX];
    snprintf(attr, sizeof attr, "%s/train_dict", dir);
    int fd = open(attr, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, "uzram train: %s: %s (%s)\n", attr, strerror(e),
                e == ENOENT ? "not a uzram mount, or a pool's DIR: give DIR/zramN" : "open");
        return 1;
    }
    ssize_t w = write(fd, req, strlen(req));
    int e = errno;
    close(fd);
    if (w < 0) {
        fprintf(stderr, "uzram train: %s: %s%s\n", dir, strerror(e),
                e == EINVAL ? " (too few compressed pages in RAM to train on, or the device is "
                              "not initialised; the mount's log says which)" : "");
        return 1;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    static const struct option lo[] = {{"output", required_argument, 0, 'o'},
                                       {"size", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    uint64_t size = 112u << 10;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (uzram_parse_size(optarg, &size) < 0 || size < (4u << 10) || size > (1u << 20)) {
                fprintf(stderr, "uzram train: --size takes 4K to 1M, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || !out) {
        usage(stderr);
        return 2;
    }
    const char *src = argv[optind];
    /* FILE, absolute: the server's working directory is not ours */
    char abs[PATH_MAX + 256], req[PATH_MAX + 320];
    if (out[0] == '/') {
        snprintf(abs, sizeof abs, "%s", out);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            fprintf(stderr, "uzram train: cannot tell the working directory: %s\n", strerror(errno));
            return 1;
        }
        snprintf(abs, sizeof abs, "%s/%.200s", cwd, out);
    }
    snprintf(req, sizeof req, "%s size=%llu", abs, (unsigned long long)size);
    if (strlen(req) > 250) {
        fprintf(stderr, "uzram train: -o %s: path too long (at most about 230 bytes)\n", abs);
        return 2;
    }
    struct stat sb;
    if (stat(src, &sb) < 0) {
        fprintf(stderr, "uzram train: %s: %s\n", src, strerror(errno));
        return 1;
    }
    int rc = S_ISDIR(sb.st_mode) ? train_mount(src, req) : train_pagefile(src, req);
    if (rc)
        return rc;
    /* say what was written */
    FILE *f = fopen(abs, "rb");
    static unsigned char d[1u << 20];
    size_t n = f ? fread(d, 1, sizeof d, f) : 0;
    if (f)
        fclose(f);
    if (n == 0) {
        fprintf(stderr, "uzram train: %s was not written\n", abs);
        return 1;
    }
    printf("%s: %zu bytes, dictionary ID %u\n", abs, n, ZDICT_getDictID(d, n));
    return 0;
}
