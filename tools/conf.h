/* SPDX-License-Identifier: BSD-2-Clause */
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
#define UZ_CONF_NKEYS 15         /* the entries of conf_keys */

struct conf_algo {
    char name[32];
    char params[128];            /* "level=3 dict=/x", "" if none */
};

struct conf_dev {
    char name[64];
    char size[256];              /* zram-size: an expression of ram, in MiB */
    char resident_limit[256];    /* zram-resident-limit (mem_limit), "" = none */
    uint64_t host_memory_limit;  /* MiB; 0 = none */
    struct conf_algo algo[UZ_CONF_MAX_ALGOS];
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
    char io_uring[8];            /* "auto", "on", "off"; "" = auto */
    /* where each key was last set: key_line[i] is the line of
     * conf_keys[i], 0 if the section does not set it */
    unsigned key_line[UZ_CONF_NKEYS];
    unsigned line;               /* the section's first [NAME] line */
    /* A section with an error in it is rejected whole: nerrors > 0, and
     * error is the first one ("FILE:LINE: [NAME] what").  The generator
     * writes no unit for it, `uzram up` refuses it. */
    unsigned nerrors;
    char error[320];
};

struct conf {
    struct conf_dev *dev;     /* every section, the rejected ones too */
    size_t ndev, cap;
    /* Every error of the file in line order, at most UZ_CONF_MAX_MESSAGES
     * of them ("FILE:LINE: what"); nerrors counts them all. */
    char **errors;
    size_t nerrors;
};

#define UZ_CONF_MAX_MESSAGES 100
#define UZ_CONF_LINE_MAX 1023    /* a longer line is an error, unless a comment */

/* Every key a section takes, NULL-terminated: zram-generator's, then
 * uzram's own. */
extern const char *const conf_keys[];

/* The file to read: $UZRAM_CONF, or /etc/uzram.conf. */
const char *conf_path(void);

/*
 * Parse the file at path into *c.  A missing file is an empty
 * configuration (0).  A bad line rejects only what it must:
 *   - a bad key or value, a line that is not key = value, a line longer
 *     than UZ_CONF_LINE_MAX or one with a NUL byte, inside a section:
 *     that section (all of it, wherever else its name appears);
 *   - a section header that is malformed or names no possible device
 *     ('/', blanks, quotes, '$', '%', a leading '.' or '-', ...): the
 *     keys under it, up to the next header;
 *   - key = value before any section: that line.
 * Comment lines ('#' or ';' first) are skipped whatever their length
 * or content.  Returns 0 (no error), -EINVAL (errors: each is in
 * c->errors, the first also in err, and c holds every section, the
 * rejected ones marked by nerrors) or another -errno when the file cannot
 * be read (c empty, the reason in err).  Free with conf_free() in every
 * case.
 */
int conf_load(const char *path, struct conf *c, char *err, size_t errsize);
void conf_free(struct conf *c);
/* The section [name], rejected or not; NULL if the file has none. */
const struct conf_dev *conf_find(const struct conf *c, const char *name);
/* The line that set key in d (0 if none did). */
unsigned conf_key_line(const struct conf_dev *d, const char *key);

/*
 * Is name usable as a device (a unit name uzram-NAME.service, a
 * directory RUNDIR/NAME and a command-line word)?  Letters, digits and
 * ":_.-", at most 63 bytes, not starting with '.' or '-'.  False with the
 * reason in why.
 */
bool conf_name_ok(const char *name, char *why, size_t whysize);

/*
 * Evaluate a size expression in MiB: numbers, "ram" (RAM in MiB),
 * + - * / %, parentheses, min(a, b, ...) and max(a, b, ...).  0 or
 * -EINVAL with the reason in err.
 */
int conf_eval(const char *expr, double ram_mib, double *out, char *err, size_t errsize);

/*
 * A size key's expression (zram-size, zram-resident-limit) in bytes,
 * rounded up to whole pages: 0, or -EINVAL with the reason in err when it
 * does not evaluate, or is below a page or above UZ_CONF_MAX_MIB (which
 * keeps the bytes in 64 bits; the device's own limit is the library's,
 * checked when the size is applied).  The one evaluation both `uzram up`
 * and the generator use.
 */
#define UZ_CONF_MAX_MIB 1e12
int conf_bytes(const char *expr, double ram_mib, uint64_t *out, char *err, size_t errsize);

/* Physical RAM in MiB. */
double conf_ram_mib(void);

/* The words of `--io-uring` and uzram.conf's `io-uring`, parsed here
 * alone: 0 for "auto", 1 for "on", 2 for "off" (fuse.h's
 * UZ_FUSE_URING_AUTO, _ON, _OFF), -1 for anything else.  Never sets an
 * error; the caller names the option. */
int conf_io_uring_mode(const char *word);

#endif
