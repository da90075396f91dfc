/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * train.h - layer 3 of the store (src/README.md): a zstd dictionary
 * trained from the store's own pages (train.c).
 */
#ifndef UZRAM_TRAIN_H
#define UZRAM_TRAIN_H

#include "slot.h"

/* The default and the bounds of a trained dictionary's size, bytes. */
#define UZ_TRAIN_DICT_DEFAULT (112u << 10)
#define UZ_TRAIN_DICT_MIN (4u << 10)
#define UZ_TRAIN_DICT_MAX (1u << 20)

struct uz_train_out {
    uint64_t idle_pages, other_pages;  /* samples taken: idle ones, then the rest */
    size_t dict_bytes;                 /* the dictionary written */
};

/* Train a zstd dictionary of at most dict_bytes (UZ_TRAIN_DICT_MIN..MAX)
 * from the pages of store slots [lo, hi) and write it to path (made
 * anew, mode 0644, replaced whole: a temporary file renamed over it).
 * Samples are up to 100 x dict_bytes of pages stored compressed in RAM
 * (written-back, same-filled and raw pages teach nothing), spread evenly
 * over the range: idle pages first (SLOT_IDLE, or not accessed for
 * idle_age s when idle_age > 0: what settling will compress), then the
 * others if the idle ones are too few.  Reading them is not an access
 * (uz_group_peek): idle pages stay idle.  0, or -EINVAL (dict_bytes out
 * of bounds, too few pages: ZDICT's reason), -EIO (a page that does not
 * decompress), -ENOMEM, the file's error (-EACCES, -ENOENT, -ENOSPC ...);
 * each with a message.  Nothing in the store changes. */
int uz_train(struct uz_store *st, uint64_t lo, uint64_t hi, uint32_t idle_age, size_t dict_bytes,
             const char *path, struct uz_train_out *out);

#endif
