/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sparsebits.h - a two-level sparse bitmap (see sparsebits.c).
 *
 * The "dynamic page flags" idea: a bit per item, held as a top-level array
 * of pointers to fixed-size chunks; a NULL pointer reads as a chunk of
 * zeros, so only the ranges in use cost memory.  uzram uses it for the
 * blocks of the backing device.
 *
 * Thread-safety: every function takes the bitmap's mutex; any number of
 * threads may call them at once.
 */
#ifndef UZRAM_SPARSEBITS_H
#define UZRAM_SPARSEBITS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define UZ_SB_CHUNK_BITS 32768u      /* one 4 KiB chunk */

struct uz_sparsebits {
    pthread_mutex_t lock;
    uint64_t nbits;
    uint64_t nchunks;
    uint64_t **chunk;                /* nchunks pointers, NULL = all zeros */
    uint16_t *pop;                   /* set bits per chunk (0..32768) */
    uint64_t count;                  /* set bits in all */
    uint64_t hint;                   /* no chunk below this one has a zero bit */
    /* memory held by chunks and the top level: changed under lock, read
     * without it by the footprint (device.c, shared.c), hence atomic */
    _Atomic uint64_t chunk_bytes;
};

/* An empty bitmap of nbits bits (only the top level is allocated: 8 bytes
 * per 32768 bits).  0 or -ENOMEM. */
int uz_sb_init(struct uz_sparsebits *sb, uint64_t nbits);
void uz_sb_fini(struct uz_sparsebits *sb);

/* Find the first zero bit, set it and store its index in *bit.  0, -ENOSPC
 * if every bit is set, -ENOMEM if a chunk could not be allocated. */
int uz_sb_alloc(struct uz_sparsebits *sb, uint64_t *bit);
/* Set / clear one bit (bit < nbits).  uz_sb_set returns -ENOMEM if it had
 * to allocate a chunk and could not, else 0.  A chunk whose last set bit
 * is cleared is freed. */
int uz_sb_set(struct uz_sparsebits *sb, uint64_t bit);
void uz_sb_clear(struct uz_sparsebits *sb, uint64_t bit);
bool uz_sb_test(struct uz_sparsebits *sb, uint64_t bit);
/* Set bits in all. */
uint64_t uz_sb_count(struct uz_sparsebits *sb);

#endif
