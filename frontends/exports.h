/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exports.h - the nbdkit plugin's pool mode: the export registry and the
 * clone policy (exports.c).  The plugin (nbdkit.c) keeps the parameters
 * and the callbacks; this file knows which device of the pool each export
 * name is, and when a name that is no export may become a clone.
 *
 * Every function here runs in the plugin's callbacks and reports through
 * nbdkit's log (nbdkit_error, nbdkit_debug).  The registry is made once,
 * in get_ready (exports_create), grows only (by clones, in open), and is
 * freed at unload (exports_destroy), when no connection is left: an
 * export's pointer stays valid for the life of the server.
 */
#ifndef UZRAM_EXPORTS_H
#define UZRAM_EXPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uzram.h"

struct nbdkit_exports;

/* The longest name part (an export's name, or either side of SRC@NAME). */
#define EXPORT_NAME_MAX 255

/* An export: a device and its name.  The single device of the plugin
 * without export= is one too (name "", no description, id 0). */
struct export {
    char *name;
    char *desc;                 /* description for listings, or NULL */
    struct uzram *dev;
    int id;                     /* device number in the pool */
};

/* export=NAME[:SIZE] as given (size -1: the plugin's size=). */
struct export_param {
    const char *name;
    int64_t size;
};

/* Is s[0..len) a valid name part: 1 to EXPORT_NAME_MAX letters, digits,
 * '.', '_', '-' or '+', not "." or ".."? */
bool export_name_ok(const char *s, size_t len);

/* From .load: the condition a clone waits on (CLOCK_MONOTONIC). */
void exports_init(void);

/* From get_ready: the pool (cfg as uzram_pool_create takes it) and a
 * device for each of the n params, in order, each sized and held as an
 * export; clients may make max_clones clones.  0, or -1 with the reason
 * logged (unload frees what was made). */
int exports_create(const struct uzram_config *cfg, const struct export_param *params, unsigned n,
                   uint32_t max_clones);

/* The pool, or NULL (not made, or single-device mode). */
struct uzram_pool *exports_pool(void);

/* From .open: the export called name ("" = the first) with its device
 * opened (uzram_open) for the connection; if name is no export but
 * SRC@NAME with SRC an export and clones allowed, the clone made now
 * (only while SRC has no client: the clone waits up to
 * EXPORT_CLONE_WAIT_S seconds for SRC's last close, and no connection to
 * SRC starts while it is made).  NULL with errno (ENOENT: no such
 * export, ENOSPC: no more clones, EBUSY: SRC still has a client, ENOMEM,
 * or the library's error) and the reason logged. */
#define EXPORT_CLONE_WAIT_S 5
struct export *exports_open(const char *name);

/* From .close: the connection's device closed (uzram_close); a clone of
 * this export waiting for its last close is woken. */
void exports_close(struct export *e);

/* From .list_exports: every export (clones made so far included), in
 * the order made.  0, or nbdkit_add_export's -1. */
int exports_list(struct nbdkit_exports *list);

/* The first export's name: the default export. */
const char *exports_default_name(void);

/* From .unload, with no connection left: every device (exports, clones,
 * and devices made through control=DIR) removed, then the pool. */
void exports_destroy(void);

#endif
