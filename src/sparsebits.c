/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sparsebits.c - a two-level sparse bitmap ("dynamic page flags").
 *
 * Layout:
 *
 *   chunk[]   top level, one pointer per 32768 bits (a 4 KiB chunk of 512
 *             64-bit words).  NULL means every bit of the chunk is zero;
 *             a chunk is allocated when its first bit is set and freed when
 *             its last set bit is cleared, so a bitmap over a 1 TiB backing
 *             file (2^28 blocks) costs 64 KiB of top level plus 4 KiB per
 *             128 MiB range actually in use.
 *   pop[]     set bits per chunk: a full chunk (32768) is skipped by the
 *             search without reading it, an empty one is freed.
 *   hint      no chunk below it has a zero bit: the first-zero search
 *             starts there, so allocating N blocks in a row costs O(N)
 *             word scans, not O(N^2).
 *
 * Invariants (under lock): pop[c] == number of set bits in chunk c;
 * chunk[c] == NULL <=> pop[c] == 0; every chunk below hint is full;
 * count == sum of pop[].
 */
#include "sparsebits.h"
#include "mem.h"

#include <errno.h>
#include <string.h>

#define WORDS (UZ_SB_CHUNK_BITS / 64)

int uz_sb_init(struct uz_sparsebits *sb, uint64_t nbits)
{
    memset(sb, 0, sizeof *sb);
    sb->nbits = nbits;
    sb->nchunks = (nbits + UZ_SB_CHUNK_BITS - 1) / UZ_SB_CHUNK_BITS;
    if (sb->nchunks == 0)
        sb->nchunks = 1;
    sb->chunk = uz_calloc(sb->nchunks, sizeof *sb->chunk);
    sb->pop = sb->chunk ? uz_calloc(sb->nchunks, sizeof *sb->pop) : NULL;
    if (!sb->pop) {
        uz_free(sb->chunk);
        sb->chunk = NULL;
        return -ENOMEM;
    }
    sb->chunk_bytes = sb->nchunks * (sizeof *sb->chunk + sizeof *sb->pop);
    pthread_mutex_init(&sb->lock, NULL);
    return 0;
}

void uz_sb_fini(struct uz_sparsebits *sb)
{
    if (!sb->chunk)
        return;
    for (uint64_t c = 0; c < sb->nchunks; c++)
        uz_free(sb->chunk[c]);
    uz_free(sb->chunk);
    uz_free(sb->pop);
    pthread_mutex_destroy(&sb->lock);
    memset(sb, 0, sizeof *sb);
}

/* Bits of chunk c that lie inside the bitmap. */
static uint32_t chunk_bits(const struct uz_sparsebits *sb, uint64_t c)
{
    uint64_t left = sb->nbits - c * UZ_SB_CHUNK_BITS;
    return left < UZ_SB_CHUNK_BITS ? (uint32_t)left : UZ_SB_CHUNK_BITS;
}

/* Set bit b (known zero) of chunk c, allocating the chunk.  Lock held. */
static int set_locked(struct uz_sparsebits *sb, uint64_t c, uint32_t b)
{
    if (!sb->chunk[c]) {
        sb->chunk[c] = uz_calloc(WORDS, sizeof(uint64_t));
        if (!sb->chunk[c])
            return -ENOMEM;
        sb->chunk_bytes += WORDS * sizeof(uint64_t);
    }
    sb->chunk[c][b / 64] |= 1ull << (b % 64);
    sb->pop[c]++;
    sb->count++;
    return 0;
}

int uz_sb_alloc(struct uz_sparsebits *sb, uint64_t *bit)
{
    pthread_mutex_lock(&sb->lock);
    int err = -ENOSPC;
    for (uint64_t c = sb->hint; c < sb->nchunks; c++) {
        uint32_t nb = chunk_bits(sb, c);
        if (sb->pop[c] >= nb) {
            if (c == sb->hint)
                sb->hint = c + 1;
            continue;
        }
        uint32_t b = 0;
        if (sb->chunk[c]) {
            uint32_t w = 0;
            while (sb->chunk[c][w] == ~0ull)
                w++;   /* pop < nb guarantees a zero bit at or before nb */
            b = w * 64 + (uint32_t)__builtin_ctzll(~sb->chunk[c][w]);
        }
        if (b >= nb)
            continue;
        err = set_locked(sb, c, b);
        if (err == 0)
            *bit = c * UZ_SB_CHUNK_BITS + b;
        break;
    }
    pthread_mutex_unlock(&sb->lock);
    return err;
}

int uz_sb_set(struct uz_sparsebits *sb, uint64_t bit)
{
    uint64_t c = bit / UZ_SB_CHUNK_BITS;
    uint32_t b = (uint32_t)(bit % UZ_SB_CHUNK_BITS);
    pthread_mutex_lock(&sb->lock);
    int err = 0;
    if (!sb->chunk[c] || !(sb->chunk[c][b / 64] & (1ull << (b % 64))))
        err = set_locked(sb, c, b);
    pthread_mutex_unlock(&sb->lock);
    return err;
}

void uz_sb_clear(struct uz_sparsebits *sb, uint64_t bit)
{
    uint64_t c = bit / UZ_SB_CHUNK_BITS;
    uint32_t b = (uint32_t)(bit % UZ_SB_CHUNK_BITS);
    pthread_mutex_lock(&sb->lock);
    uint64_t *ch = sb->chunk[c];
    if (ch && (ch[b / 64] & (1ull << (b % 64)))) {
        ch[b / 64] &= ~(1ull << (b % 64));
        sb->count--;
        if (--sb->pop[c] == 0) {
            uz_free(ch);
            sb->chunk[c] = NULL;
            sb->chunk_bytes -= WORDS * sizeof(uint64_t);
        }
        if (c < sb->hint)
            sb->hint = c;
    }
    pthread_mutex_unlock(&sb->lock);
}

bool uz_sb_test(struct uz_sparsebits *sb, uint64_t bit)
{
    uint64_t c = bit / UZ_SB_CHUNK_BITS;
    uint32_t b = (uint32_t)(bit % UZ_SB_CHUNK_BITS);
    pthread_mutex_lock(&sb->lock);
    bool v = sb->chunk[c] && (sb->chunk[c][b / 64] & (1ull << (b % 64)));
    pthread_mutex_unlock(&sb->lock);
    return v;
}

uint64_t uz_sb_count(struct uz_sparsebits *sb)
{
    pthread_mutex_lock(&sb->lock);
    uint64_t n = sb->count;
    pthread_mutex_unlock(&sb->lock);
    return n;
}
