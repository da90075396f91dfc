/*
 * conf.h - /etc/uzram.conf: devices to set up at boot, in
 * zram-generator's format and with its keys (see uzram.conf(5)).
 *
 *   [swap]                       # a section per device, named freely
 *   zram-size = min(ram / 2, 4096)
 *   compression-algorithm = lz4 zstd(level=9)
 *   swap-priority = 100
 *
 *   [tmp]
 *   zram-size = 1024
 *   fs-type = ext4
 *   mount-point = /tmp
 */
#ifndef UZRAM_CONF_H
#define UZRAM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UZ_CONF_MAX_ALGOS 4      /* the primary and up to 3 for recompression */

struct uz_conf_algo {
    char name[32];
    char params[128];            /* "level=3 dict=/x", "" if none */
};

struct uz_conf_dev {
    char name[64];
    char size[256];              /* zram-size: an expression of ram, in MiB */
    char resident_limit[256];    /* zram-resident-limit (mem_limit), "" = none */
    uint64_t host_memory_limit;  /* MiB; 0 = none */
    struct uz_conf_algo algo[UZ_CONF_MAX_ALGOS];
    int nalgo;                   /* 0: the default algorithm */
    char recompress_args[128];   /* the trailing "(type=idle ...)" of compression-algorithm */
    int swap_priority;
    char writeback_device[256];
    char fs_type[32];            /* "swap", or mkfs.TYPE */
    char mount_point[256];
    char options[256];
    /* uzram's own keys */
    char allocator[32];
    unsigned group_pages;        /* 0: off */
    char recompress_policy[128];
    char writeback_policy[128];
    char auto_compact[16];
};

struct uz_conf {
    struct uz_conf_dev *dev;
    size_t ndev;
};

/* Every key a section takes, NULL-terminated: zram-generator's, then
 * uzram's own. */
extern const char *const uz_conf_keys[];

/* The file to read: $UZRAM_CONF, or /etc/uzram.conf. */
const char *uz_conf_path(void);

/*
 * Parse the file at path into *c.  A missing file is an empty
 * configuration (0).  Any error - a line that is neither a section, a
 * comment nor key = value, a bad value, an unknown key - is -EINVAL with
 * "FILE:LINE: what" in err.  Free with uz_conf_free().
 */
int uz_conf_load(const char *path, struct uz_conf *c, char *err, size_t errsize);
void uz_conf_free(struct uz_conf *c);
const struct uz_conf_dev *uz_conf_find(const struct uz_conf *c, const char *name);

/*
 * Evaluate a size expression in MiB: numbers, "ram" (RAM in MiB),
 * + - * / %, parentheses, min(a, b, ...) and max(a, b, ...).  0 or
 * -EINVAL with the reason in err.
 */
int uz_conf_eval(const char *expr, double ram_mib, double *out, char *err, size_t errsize);

/* Physical RAM in MiB. */
double uz_conf_ram_mib(void);

#endif
