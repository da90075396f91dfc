/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backing.c - the backing device, common part: where written-back and
 * forwarded pages live, one 4 KiB block per page, whatever holds them.
 *
 * Structure.  struct uz_backing (backing.h) is the interface; an
 * implementation fills its ops and impl when opened:
 *
 *   backing_file.c   a regular file or block device, pread/pwrite,
 *                    O_DIRECT when the file system takes it
 *   backing_nbd.c    an NBD export through libnbd (nbd://, nbds://,
 *                    nbd+unix://): several connections, several
 *                    requests in flight, timeouts, reconnection
 *
 * The name decides which (uz_backing_is_uri); nothing above this file
 * knows the difference.  What is the same for both is kept here: the
 * block bitmap, the counters, the fault hook and the error messages.
 *
 * Blocks are handed out by a two-level sparse bitmap (sparsebits.c):
 * first free block first, so the device fills from the front and a sparse
 * file stays compact; a block is freed when its page is overwritten,
 * discarded or reset.  Block 0 is used like any other (a slot's handle
 * says which block; nothing is kept on the device besides page data).
 *
 * Buffers are the callers' (the streams', page-aligned), so nothing is
 * allocated on the I/O path.  A transfer is len rounded up to io_align
 * (the file's direct-I/O alignment, or 1).
 *
 * Errors are returned, never hidden: a short transfer is -EIO, ENOSPC
 * from a sparse file on a full file system comes back as -ENOSPC, a
 * remote that does not answer in time -ETIMEDOUT; the caller keeps the
 * page in RAM (writeback) or fails the read (counted in failed_reads).
 * uz_backing_fault_hook lets tests fail any I/O.
 */
#define _GNU_SOURCE
#include "backing.h"
#include "error.h"
#include "mem.h"
#include "uzram.h"

#include <errno.h>
#include <string.h>

#define BLK 4096u

int (*uz_backing_fault_hook)(bool write, uint64_t blk);

static const char *const schemes[] = {"nbd://", "nbds://", "nbd+unix://", "nbds+unix://"};

bool uz_backing_is_uri(const char *name)
{
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strncmp(name, schemes[i], strlen(schemes[i])) == 0)
            return true;
    return false;
}

int uz_backing_check_name(const char *name)
{
    if (strlen(name) >= PATH_MAX)
        return uz_error(-ENAMETOOLONG, "backing_dev: name too long");
    if (strpbrk(name, " \t\n"))
        return uz_error(-EINVAL, "backing_dev: '%s': no blanks allowed", name);
    if (!uz_backing_is_uri(name)) {
        if (name[0] != '/')
            return uz_error(-EINVAL, "backing_dev: '%s': give an absolute path or an NBD URI "
                            "(nbd://HOST[:PORT]/EXPORT, nbds://..., nbd+unix:///EXPORT?socket=PATH)",
                            name);
        return 0;
    }
    const char *rest = strstr(name, "://") + 3;
    bool unix_sock = strncmp(name, "nbd+unix://", 11) == 0 || strncmp(name, "nbds+unix://", 12) == 0;
    if (unix_sock) {
        /* nbd+unix:///export?socket=/path: no host (a TLS user may be
         * named: nbds+unix://USER@/...), a socket= */
        const char *q = strchr(rest, '?');
        const char *s = q ? strstr(q, "socket=") : NULL;
        const char *at = strchr(rest, '@');
        const char *path = at && at < rest + strcspn(rest, "/?") ? at + 1 : rest;
        if (path[0] != '/' || !s || (s[-1] != '?' && s[-1] != '&') || s[7] != '/')
            return uz_error(-EINVAL, "backing_dev: '%s': give nbd+unix:///EXPORT?socket=/ABSOLUTE/PATH"
                            " (nbds+unix://USER@/EXPORT?socket=... with TLS)", name);
        return 0;
    }
    /* nbd://[user@]host[:port][/export][?query] */
    const char *at = memchr(rest, '@', strcspn(rest, "/?"));
    if (at)
        rest = at + 1;
    size_t hostlen = strcspn(rest, "/?");
    if (hostlen == 0 || rest[0] == ':')
        return uz_error(-EINVAL, "backing_dev: '%s': give a host (nbd://HOST[:PORT]/EXPORT)", name);
    const char *close = rest[0] == '[' ? memchr(rest, ']', hostlen) : NULL;   /* [v6 address] */
    if (rest[0] == '[' && !close)
        return uz_error(-EINVAL, "backing_dev: '%s': an IPv6 address needs its closing ]", name);
    const char *from = close ? close : rest;
    const char *colon = memchr(from, ':', hostlen - (size_t)(from - rest));
    if (colon) {
        size_t plen = hostlen - (size_t)(colon + 1 - rest);
        if (plen == 0 || strspn(colon + 1, "0123456789") < plen)
            return uz_error(-EINVAL, "backing_dev: '%s': the port is not a number", name);
    }
    return 0;
}

int uzram_backing_name(const char *name)
{
    int err = uz_backing_check_name(name);
    return err < 0 ? err : uz_backing_is_uri(name) ? 1 : 0;
}

int uz_backing_open(struct uz_backing **out, const char *name)
{
    int err = uz_backing_check_name(name);
    if (err < 0)
        return err;
    struct uz_backing *b = uz_calloc(1, sizeof *b);
    if (!b)
        return uz_error(-ENOMEM, "backing_dev: out of memory");
    strcpy(b->path, name);
    err = uz_backing_is_uri(name) ? uz_backing_nbd_open(b, name) : uz_backing_file_open(b, name);
    if (err < 0) {
        uz_free(b);
        return err;
    }
    if (uz_sb_init(&b->used, b->nblocks) < 0) {
        b->ops->close(b);
        uz_free(b);
        return uz_error(-ENOMEM, "backing_dev: out of memory");
    }
    if (b->batch == 0)
        b->batch = 1;
    *out = b;
    return 0;
}

void uz_backing_close(struct uz_backing *b)
{
    if (!b)
        return;
    b->ops->close(b);
    uz_sb_fini(&b->used);
    uz_free(b);
}

int uz_backing_alloc(struct uz_backing *b, uint64_t *blk)
{
    int err = uz_sb_alloc(&b->used, blk);
    if (err == -ENOSPC)
        return uz_error(err, "backing_dev: all %llu blocks are in use",
                        (unsigned long long)b->nblocks);
    if (err < 0)
        return uz_error(err, "backing_dev: no memory for the block bitmap");
    return 0;
}

void uz_backing_free(struct uz_backing *b, uint64_t blk)
{
    uz_sb_clear(&b->used, blk);
}

/* Count and report each transfer of v[0..n); the number that failed. */
static unsigned account(struct uz_backing *b, bool write, struct uz_bio *v, unsigned n)
{
    unsigned bad = 0;
    for (unsigned i = 0; i < n; i++) {
        if (v[i].err < 0) {
            bad++;
            atomic_fetch_add_explicit(&b->failed, 1, memory_order_relaxed);
            uz_error(v[i].err, "backing_dev: %s of block %llu on %s failed: %s",
                     write ? "write" : "read", (unsigned long long)v[i].blk, b->path,
                     strerror(-v[i].err));
        } else {
            atomic_fetch_add_explicit(write ? &b->writes : &b->reads, 1, memory_order_relaxed);
        }
    }
    return bad;
}

/* The hook's word on each of v[0..n) (its failures are never sent), and
 * the lengths rounded; true if the hook failed any. */
static bool hook_pass(struct uz_backing *b, bool write, struct uz_bio *v, unsigned n)
{
    bool any = false;
    for (unsigned i = 0; i < n; i++) {
        v[i].n = uz_backing_iolen(b, v[i].n);
        v[i].err = uz_backing_fault_hook ? uz_backing_fault_hook(write, v[i].blk) : 0;
        any |= v[i].err < 0;
    }
    return any;
}

/* The ones the hook let through, in runs of at most b->batch, through
 * the implementation, waited for. */
static void send_pass(struct uz_backing *b, bool write, struct uz_bio *v, unsigned n)
{
    for (unsigned i = 0; i < n;) {
        if (v[i].err < 0) {
            i++;
            continue;
        }
        unsigned j = i;
        while (j < n && v[j].err == 0 && j - i < b->batch)
            j++;
        b->ops->rw(b, write, v + i, j - i);
        i = j;
    }
}

static unsigned transfer(struct uz_backing *b, bool write, struct uz_bio *v, unsigned n)
{
    hook_pass(b, write, v, n);
    send_pass(b, write, v, n);
    return account(b, write, v, n);
}

int uz_backing_write_start(struct uz_backing *b, struct uz_bio *v, unsigned n, bool may_wait,
                           struct uz_inflight *f)
{
    f->v = v;
    f->n = n;
    f->state = NULL;
    f->done = true;
    if (hook_pass(b, true, v, n) || !b->ops->start || n > b->batch) {
        send_pass(b, true, v, n);   /* at once */
        account(b, true, v, n);
        return 0;
    }
    int err = b->ops->start(b, v, n, may_wait, &f->state);
    if (err < 0)
        return err;
    f->done = false;
    return 0;
}

unsigned uz_backing_write_finish(struct uz_backing *b, struct uz_inflight *f)
{
    unsigned bad = 0;
    if (f->done) {
        for (unsigned i = 0; i < f->n; i++)
            bad += f->v[i].err < 0;
        return bad;   /* counted at start */
    }
    b->ops->finish(b, f->v, f->n, f->state);
    f->done = true;
    return account(b, true, f->v, f->n);
}

unsigned uz_backing_write_batch(struct uz_backing *b, struct uz_bio *v, unsigned n)
{
    return transfer(b, true, v, n);
}

int uz_backing_write(struct uz_backing *b, uint64_t blk, const void *buf, size_t len)
{
    struct uz_bio v = {.blk = blk, .buf = (void *)buf, .n = len};
    transfer(b, true, &v, 1);
    return v.err;
}

int uz_backing_read(struct uz_backing *b, uint64_t blk, void *buf, size_t len)
{
    struct uz_bio v = {.blk = blk, .buf = buf, .n = len};
    transfer(b, false, &v, 1);
    return v.err;
}
