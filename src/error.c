/*
 * error.c - per-thread detailed error messages (see error.h) and the
 * readable text of the errno values uzram returns.
 */
#include "error.h"
#include "uzram.h"

#include <errno.h>
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
    switch (-err) {
    case 0: return "success";
    case EINVAL: return "invalid argument";
    case ENOMEM: return "out of memory or over the memory limit";
    case EIO: return "I/O error";
    case EBUSY: return "device is initialised (reset it first)";
    case ENXIO: return "device is not initialised (set disksize)";
    case ENOENT: return "no such attribute";
    case EACCES: return "attribute is not readable/writable that way";
    case ENOSPC: return "no space";
    case EFAULT: return "internal consistency error";
    default: return strerror(-err);
    }
}
