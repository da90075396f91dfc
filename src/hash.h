/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hash.h - layer 0 of the store (src/README.md): the 64-bit content hash
 * of a page (xxHash's XXH3), with the widest vector unit the CPU has
 * (hash.c, hash_avx2.c).
 */
#ifndef UZRAM_HASH_H
#define UZRAM_HASH_H

#include <stddef.h>
#include <stdint.h>

/* XXH3_64bits of len bytes (seed 0).  The value does not depend on the
 * code path chosen: any CPU, any build gives the same hash.  Cannot fail;
 * thread-safe. */
uint64_t uz_hash(const void *p, size_t len);

#endif
