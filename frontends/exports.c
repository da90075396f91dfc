/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exports.c - the nbdkit plugin's export registry and clone policy
 * (exports.h): in pool mode (export= given), one pool holds every export,
 * one device each, in the order given (device 0 is the first export=);
 * the export name a client asks for picks the device, the default export
 * "" is the first, any other name is refused (ENOENT: "Requested export
 * not available").
 *
 * Clones, on demand by name (max_clones=N, 0 = off): a client that asks
 * for "SRC@NAME", where SRC is an export and no export has that name yet,
 * makes it: a uzram_clone of SRC, made in .open of that first connection,
 * then an export of its own for the life of the process (a later
 * connection to "SRC@NAME" finds the same clone and its writes).  The
 * moment is race-free by rule: the clone is made only while no client is
 * connected to SRC (a client still connected after EXPORT_CLONE_WAIT_S
 * seconds has this connection refused), and under exports_lock, which
 * every .open holds around uzram_open, so no connection to SRC starts
 * while it is made.  The clone thus holds exactly what SRC's last client
 * left.  Nothing but a client's own request by name makes one, so a
 * listing (whose NBD_OPT_INFO opens every listed export) makes none.
 *
 * Each export's device is held (uzram_pool_get) for as long as it is
 * one, so nothing else that reaches the pool (control=DIR's hot_remove)
 * can remove it under a connection.  Devices are removed only at unload.
 */
#define _GNU_SOURCE
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exports.h"

/* The pool and its exports; the list grows only (by clones), under
 * exports_lock, which .open also holds around uzram_open. */
static struct uzram_pool *pool;
static pthread_mutex_t exports_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closed_cond;          /* a connection closed; CLOCK_MONOTONIC */
static struct export **exports;
static unsigned nexports, exports_cap;
static unsigned nclones;
static uint32_t max_clones;
static const char *default_name;   /* the first export's, read without the lock */

bool export_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > EXPORT_NAME_MAX)
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

void exports_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&closed_cond, &ca);
    pthread_condattr_destroy(&ca);
}

struct uzram_pool *exports_pool(void)
{
    return pool;
}

const char *exports_default_name(void)
{
    return default_name;
}

/* Append e to the exports (under exports_lock once serving).  0, or -1
 * with errno ENOMEM. */
static int add_export(struct export *e)
{
    if (nexports == exports_cap) {
        unsigned cap = exports_cap ? exports_cap * 2 : 16;
        struct export **a = realloc(exports, cap * sizeof *a);
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
 * desc, and hold it (uzram_pool_get) for as long as it is one.  The
 * export, or NULL (ENOMEM) with d removed. */
static struct export *new_export(const char *name, struct uzram *d, const char *desc)
{
    int id = uzram_device_id(d);
    struct export *e = calloc(1, sizeof *e);
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

static void free_export(struct export *e)
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

int exports_create(const struct uzram_config *cfg, const struct export_param *params, unsigned n,
                   uint32_t clones)
{
    int rc = uzram_pool_create(cfg, &pool);
    if (rc < 0) {
        pool = NULL;
        return lib_error("cannot create the pool", NULL, rc);
    }
    max_clones = clones;
    default_name = params[0].name;          /* interned by nbdkit: lives to unload */
    for (unsigned i = 0; i < n; i++) {
        const struct export_param *p = &params[i];
        struct uzram *d;
        rc = uzram_pool_add(pool, &d);
        if (rc < 0)
            return lib_error("cannot add the device of export", p->name, rc);
        char size[32], desc[96];
        int len = snprintf(size, sizeof size, "%" PRId64, p->size);
        rc = uzram_attr_store(d, "disksize", size, (size_t)len);
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

void exports_destroy(void)
{
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
}

/* The export called name ("" = the first), or NULL.  exports_lock held. */
static struct export *find_export(const char *name, size_t len)
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
        if (!export_name_ok(p, len))
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
static struct export *make_clone(const char *name)
{
    size_t src_len;
    char buf[72];
    if (!clone_name_ok(name, &src_len))
        return refuse(ENOENT, "uzram: no export '%s'", shown(name, buf));
    if (max_clones == 0)
        return refuse(ENOENT, "uzram: no export '%s' (clones are off: max_clones=0)", name);
    struct export *src = find_export(name, src_len);
    if (!src)
        return refuse(ENOENT, "uzram: no export '%s', and no export '%.*s' to clone", name,
                      (int)src_len, name);
    if (nclones >= max_clones)
        return refuse(ENOSPC, "uzram: export '%s': no more clones (max_clones=%" PRIu32
                      " made)", name, max_clones);
    /* A client that has just disconnected from SRC may not be closed on
     * the server's side yet: wait a little for SRC's last close.  The
     * wait lets the lock go, so look again at what it decided. */
    unsigned open = uzram_open_count(src->dev);
    if (open) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += EXPORT_CLONE_WAIT_S;
        while ((open = uzram_open_count(src->dev)) != 0)
            if (pthread_cond_timedwait(&closed_cond, &exports_lock, &deadline) == ETIMEDOUT)
                break;
        open = uzram_open_count(src->dev);
        struct export *e = find_export(name, strlen(name));
        if (e)
            return e;                       /* made by another connection meanwhile */
        if (nclones >= max_clones)
            return refuse(ENOSPC, "uzram: export '%s': no more clones (max_clones=%" PRIu32
                          " made)", name, max_clones);
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
    char desc[EXPORT_NAME_MAX + 64];
    snprintf(desc, sizeof desc, "uzram device %d of the pool, a clone of %s",
             uzram_device_id(d), src->name);
    struct export *e = new_export(name, d, desc);
    if (!e)
        return refuse(ENOMEM, "uzram: export '%s': out of memory", name);
    nclones++;
    nbdkit_debug("uzram: export %s made: device %d, a clone of %s (device %d)", name, e->id,
                 src->name, src->id);
    return e;
}

struct export *exports_open(const char *name)
{
    pthread_mutex_lock(&exports_lock);
    struct export *e = find_export(name, strlen(name));
    if (!e)
        e = make_clone(name);
    if (e)
        uzram_open(e->dev);
    int err = errno;
    pthread_mutex_unlock(&exports_lock);
    errno = err;
    return e;
}

void exports_close(struct export *e)
{
    /* a clone of this export may wait for its last close */
    pthread_mutex_lock(&exports_lock);
    uzram_close(e->dev);
    pthread_cond_broadcast(&closed_cond);
    pthread_mutex_unlock(&exports_lock);
}

int exports_list(struct nbdkit_exports *list)
{
    int rc = 0;
    pthread_mutex_lock(&exports_lock);
    for (unsigned i = 0; i < nexports && rc == 0; i++)
        rc = nbdkit_add_export(list, exports[i]->name, exports[i]->desc);
    pthread_mutex_unlock(&exports_lock);
    return rc;
}
