/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse_dl.c - libfuse loaded when a FUSE mount starts, not when the
 * program does.
 *
 * Why.  The nbdkit plugin serves FUSE only with control=DIR, and the CLI
 * only in `uzram mount`; linked normally, libfuse3 would be mapped (and
 * about 160 KiB of it resident) in every nbdkit process and every CLI
 * command that never mounts anything.  So neither links libfuse: this
 * file defines the libfuse functions frontends/fuse.c calls, with
 * libfuse's own prototypes (fuse_lowlevel.h), and each forwards to the
 * real one, found with dlsym in libfuse3.so.3 when the first session is
 * made.  fuse.c stays written against libfuse as it is.
 *
 * fuse_session_new loads the library (once; a failure is reported as
 * libfuse reports its own: NULL, with a message on stderr, and
 * uzfs_start fails).  Every other function is only reachable through
 * a session, so it finds its pointer set.  The load is serialised by
 * pthread_once; the pointers are written before any session exists.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define FUSE_SONAME "libfuse3.so.3"

#define FUSE_FNS(X) X(fuse_reply_err) X(fuse_reply_buf) X(fuse_reply_write) \
    X(fuse_session_receive_buf) X(fuse_session_process_buf) X(fuse_reply_open) \
    X(fuse_reply_attr) X(fuse_session_new) X(fuse_session_mount) X(fuse_session_exited) \
    X(fuse_session_exit) X(fuse_session_destroy) X(fuse_req_userdata) X(fuse_reply_statfs) \
    X(fuse_reply_entry) X(fuse_add_direntry) X(fuse_session_custom_io) X(fuse_session_fd) \
    X(fuse_req_ctx)

#define FN_FIELD(f) __typeof__(f) *f;
static struct { FUSE_FNS(FN_FIELD) } fn;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;               /* 1 when every pointer is set */

static void load(void)
{
    void *h = dlopen(FUSE_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "uzram: cannot load %s: %s\n", FUSE_SONAME, dlerror());
        return;
    }
    void *p;
#define FN_LOAD(f)                                                                  \
    if (!(p = dlsym(h, #f))) {                                                      \
        fprintf(stderr, "uzram: %s has no %s\n", FUSE_SONAME, #f);                   \
        dlclose(h);                                                                 \
        return;                                                                     \
    }                                                                               \
    memcpy(&fn.f, &p, sizeof p);
    FUSE_FNS(FN_LOAD)
#undef FN_LOAD
    loaded = 1;
}

struct fuse_session *fuse_session_new(struct fuse_args *args, const struct fuse_lowlevel_ops *op,
                                      size_t op_size, void *userdata)
{
    pthread_once(&once, load);
    return loaded ? fn.fuse_session_new(args, op, op_size, userdata) : NULL;
}

int fuse_session_mount(struct fuse_session *se, const char *mountpoint)
{
    return fn.fuse_session_mount(se, mountpoint);
}

int fuse_session_receive_buf(struct fuse_session *se, struct fuse_buf *buf)
{
    return fn.fuse_session_receive_buf(se, buf);
}

void fuse_session_process_buf(struct fuse_session *se, const struct fuse_buf *buf)
{
    fn.fuse_session_process_buf(se, buf);
}

int fuse_session_exited(struct fuse_session *se)
{
    return fn.fuse_session_exited(se);
}

void fuse_session_exit(struct fuse_session *se)
{
    fn.fuse_session_exit(se);
}

void fuse_session_destroy(struct fuse_session *se)
{
    fn.fuse_session_destroy(se);
}

void *fuse_req_userdata(fuse_req_t req)
{
    return fn.fuse_req_userdata(req);
}

const struct fuse_ctx *fuse_req_ctx(fuse_req_t req)
{
    return fn.fuse_req_ctx(req);
}

int fuse_reply_err(fuse_req_t req, int err)
{
    return fn.fuse_reply_err(req, err);
}

int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
    return fn.fuse_reply_buf(req, buf, size);
}

int fuse_reply_write(fuse_req_t req, size_t count)
{
    return fn.fuse_reply_write(req, count);
}

int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
    return fn.fuse_reply_open(req, fi);
}

int fuse_reply_attr(fuse_req_t req, const struct stat *attr, double attr_timeout)
{
    return fn.fuse_reply_attr(req, attr, attr_timeout);
}

int fuse_reply_statfs(fuse_req_t req, const struct statvfs *stbuf)
{
    return fn.fuse_reply_statfs(req, stbuf);
}

int fuse_reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
    return fn.fuse_reply_entry(req, e);
}

size_t fuse_add_direntry(fuse_req_t req, char *buf, size_t bufsize, const char *name,
                         const struct stat *stbuf, off_t off)
{
    return fn.fuse_add_direntry(req, buf, bufsize, name, stbuf, off);
}

int fuse_session_custom_io(struct fuse_session *se, const struct fuse_custom_io *io, int fd)
{
    return fn.fuse_session_custom_io(se, io, fd);
}

int fuse_session_fd(struct fuse_session *se)
{
    return fn.fuse_session_fd(se);
}
