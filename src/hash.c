/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hash.c - layer 0 of the store (src/README.md): XXH3 compiled in from
 * the header (static, inlined: the library is not linked, so no process
 * maps libxxhash for the one function used), in two builds: this file's,
 * for the baseline instruction set (SSE2 on x86-64), and hash_avx2.c's,
 * compiled for AVX2.  The first call picks one by what the CPU offers
 * (cpuid), once per process; both give the same value, so the choice is
 * invisible but for speed.  A page is hashed once per write with dedup
 * on, before it is compressed: the AVX2 build takes about 60% of the
 * baseline's time on a 4 KiB page.
 */
#define _GNU_SOURCE
#include "hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <stdatomic.h>

static uint64_t hash_base(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}

#if defined(__x86_64__) && defined(UZ_HAVE_HASH_AVX2)
uint64_t uz_hash_avx2(const void *p, size_t len);   /* hash_avx2.c */

typedef uint64_t (*hash_fn)(const void *, size_t);
static _Atomic(hash_fn) chosen;

uint64_t uz_hash(const void *p, size_t len)
{
    hash_fn f = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (__builtin_expect(f == NULL, 0)) {
        __builtin_cpu_init();
        f = __builtin_cpu_supports("avx2") ? uz_hash_avx2 : hash_base;
        atomic_store_explicit(&chosen, f, memory_order_relaxed);
    }
    return f(p, len);
}
#else
uint64_t uz_hash(const void *p, size_t len)
{
    return hash_base(p, len);
}
#endif
