/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * train.c - a zstd dictionary trained from the store's own pages, for
 * algorithm_params dict=PATH (the "train_dict" attribute, `uzram train`).
 *
 * Structure: two passes over a device's range, idle pages first.  Each
 * pass counts its candidates with racy looks at the slot flags
 * (uz_next_used skips table pages never used), then takes every s-th of
 * them, s chosen so that the samples fit the budget, each read under its
 * unit's locks with uz_group_peek: a look, not an access, so training
 * does not make cold pages hot.  A page may change between the count and
 * the read: the read decides (the count only spaces the samples).  The
 * samples go to libzstd's trainer (uz_zstd_train, codec.c) and the
 * dictionary to a temporary file beside path, renamed over it once
 * written whole, so a reader of path sees the old file or the new one.
 *
 * Locking: a unit's slot locks at a time, and the streams under them, as
 * a read takes them (src/README.md, "Lock order").  The caller holds the
 * device's and the store's init_lock for reading.
 */
#define _GNU_SOURCE
#include "train.h"
#include "group.h"
#include "error.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE UZRAM_PAGE_SIZE
#define TRAIN_SAMPLES_MAX (32u << 20)    /* bytes of samples at most */

/* Is the page of flags f a candidate of the pass (racy: a guess)? */
static bool candidate(uint32_t f, bool idle_pass, uint32_t idle_age, uint32_t now)
{
    /* (HUGE is a group size bit in a member: test GROUP first, store.h) */
    if (!(f & SLOT_GROUP) && (!(f & (SLOT_OBJ | SLOT_SHARED)) || (f & SLOT_HUGE)))
        return false;
    bool idle = (f & SLOT_IDLE) || (idle_age && slot_age(f, now) >= idle_age);
    return idle == idle_pass;
}

/* One pass: up to *room more pages into buf + *n pages.  0 or -EIO. */
static int sample_pass(struct uz_store *st, uint64_t lo, uint64_t hi, bool idle_pass,
                       uint32_t idle_age, uint8_t *buf, uint64_t cap, uint64_t *n,
                       uint64_t *taken)
{
    uint32_t now = uz_now(st);
    uint64_t count = 0;
    for (uint64_t i = uz_next_used(st, lo, hi); i < hi; i = uz_next_used(st, i + 1, hi))
        count += candidate(uz_slot_peek(st, i) & SLOT_STATE, idle_pass, idle_age, now);
    uint64_t room = cap - *n;
    if (count == 0 || room == 0)
        return 0;
    uint64_t stride = count > room ? count / room : 1;
    uint64_t seen = 0;
    for (uint64_t i = uz_next_used(st, lo, hi); i < hi && *n < cap;
         i = uz_next_used(st, i + 1, hi)) {
        if (!candidate(uz_slot_peek(st, i) & SLOT_STATE, idle_pass, idle_age, now))
            continue;
        if (seen++ % stride)
            continue;
        int r = uz_group_peek(st, i, idle_pass, idle_age, buf + *n * PAGE);
        if (r < 0)
            return r;
        *n += (uint64_t)r;
        *taken += (uint64_t)r;
    }
    return 0;
}

/* Write len bytes to path through a temporary file renamed over it. */
static int write_file(const char *path, const void *data, size_t len)
{
    size_t pl = strlen(path);
    char *tmp = uz_malloc(pl + 16);
    if (!tmp)
        return uz_error(-ENOMEM, "train_dict: no memory");
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        uz_free(tmp);
        return uz_error(-e, "train_dict: cannot create a file beside %s: %s", path, strerror(e));
    }
    int err = 0;
    size_t done = 0;
    while (done < len && err == 0) {
        ssize_t w = write(fd, (const uint8_t *)data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            err = w < 0 ? -errno : -EIO;
        else
            done += (size_t)w;
    }
    if (err == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        err = -errno;
    if (close(fd) < 0 && err == 0)
        err = -errno;
    if (err == 0 && rename(tmp, path) < 0)
        err = -errno;
    if (err < 0) {
        unlink(tmp);
        uz_free(tmp);
        return uz_error(err, "train_dict: cannot write %s: %s", path, strerror(-err));
    }
    uz_free(tmp);
    return 0;
}

int uz_train(struct uz_store *st, uint64_t lo, uint64_t hi, uint32_t idle_age, size_t dict_bytes,
             const char *path, struct uz_train_out *out)
{
    memset(out, 0, sizeof *out);
    if (dict_bytes < UZ_TRAIN_DICT_MIN || dict_bytes > UZ_TRAIN_DICT_MAX)
        return uz_error(-EINVAL, "train_dict: size=%zu is outside %u..%u bytes", dict_bytes,
                        UZ_TRAIN_DICT_MIN, UZ_TRAIN_DICT_MAX);
    uint64_t cap = (uint64_t)dict_bytes * 100 / PAGE;
    if (cap > TRAIN_SAMPLES_MAX / PAGE)
        cap = TRAIN_SAMPLES_MAX / PAGE;
    uint8_t *buf = uz_malloc(cap * PAGE);
    size_t *sizes = uz_malloc(cap * sizeof *sizes);
    uint8_t *dict = uz_malloc(dict_bytes);
    int err = 0;
    if (!buf || !sizes || !dict) {
        err = uz_error(-ENOMEM, "train_dict: no memory for %llu pages of samples",
                       (unsigned long long)cap);
        goto out;
    }
    uint64_t n = 0;
    err = sample_pass(st, lo, hi, true, idle_age, buf, cap, &n, &out->idle_pages);
    if (err == 0)
        err = sample_pass(st, lo, hi, false, idle_age, buf, cap, &n, &out->other_pages);
    if (err < 0)
        goto out;
    for (uint64_t i = 0; i < n; i++)
        sizes[i] = PAGE;
    const char *why = "too few pages";
    size_t len = n ? uz_zstd_train(dict, dict_bytes, buf, sizes, (unsigned)n, &why) : 0;
    if (len == 0) {
        err = uz_error(-EINVAL, "train_dict: no dictionary from %llu compressed pages in RAM: %s",
                       (unsigned long long)n, why);
        goto out;
    }
    err = write_file(path, dict, len);
    if (err == 0)
        out->dict_bytes = len;
out:
    uz_free(dict);
    uz_free(sizes);
    uz_free(buf);
    return err;
}
