/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hash_avx2.c - layer 0 of the store (src/README.md): XXH3 for CPUs with
 * AVX2.  This file alone is compiled with -mavx2 (CMakeLists.txt), and
 * hash.c calls it only when cpuid says the CPU has AVX2.
 */
#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t uz_hash_avx2(const void *p, size_t len);

uint64_t uz_hash_avx2(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}
