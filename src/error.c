/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * error.c - per-thread detailed error messages (see error.h) and the
 * readable text of the errno values uzram returns.
 *
 * The message is a buffer of each thread's own (_Thread_local): set by
 * uz_error, cleared by uz_error_clear at the entry of each public
 * function that can fail, valid until the thread's next such call or its
 * exit.  uzram_strerror returns static strings only.
 */
#define _GNU_SOURCE   /* strerrordesc_np */
#include "error.h"
#include "uzram.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[256];

int uz_error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return err;
}

void uz_error_clear(void)
{
    last_error[0] = 0;
}

int uz_error_done(int rc, const char *what)
{
    if (rc < 0 && !last_error[0])
        (void)uz_error(rc, "%s: %s", what, strerror(-rc));
    return rc;
}

const char *uzram_last_error(void)
{
    return last_error;
}

const char *uzram_strerror(int err)
{
    if (err > 0 || err < -INT_MAX)   /* no errno; and -INT_MIN overflows */
        return "unknown error";
    switch (-err) {
    case 0: return "success";
    case EINVAL: return "invalid argument";
    case ENOMEM: return "out of memory or over the memory limit";
    case EIO: return "I/O error";
    case EBUSY: return "busy: the device is initialised or open, or the setting is the pool's";
    case ENXIO: return "device is not initialised (set disksize)";
    case ENOENT: return "no such attribute";
    case EACCES: return "attribute is not readable/writable that way";
    case ENOSPC: return "no space";
    case EFAULT: return "internal consistency error";
    case EMLINK: return "a shared page has the most references it can hold";
    default: {
        /* the C library's own text, if it has a static one (strerror may
         * format into a buffer that its next call overwrites) */
        const char *d = NULL;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        d = strerrordesc_np(-err);
#endif
        return d ? d : "unknown error";
    }
    }
}
