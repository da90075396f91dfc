/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mem.c - the one gateway for uzram's memory (see mem.h).
 *
 * Fault injection counts every fallible call (uz_malloc, uz_calloc,
 * uz_vm_reserve, uz_vm_commit_ok) in one atomic counter; when armed, the
 * call whose number equals the armed value fails.
 */
#define _GNU_SOURCE
#include "mem.h"
#include "error.h"
#include "uzram.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <stdatomic.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

static _Atomic uint64_t fault_calls;   /* fallible calls since arm */
static _Atomic uint64_t fault_target;  /* 0 = disarmed */
static _Atomic bool fault_hit;
static _Atomic bool mem_locked;
static _Atomic uint64_t heap_bytes;   /* usable bytes handed out by uz_malloc/uz_calloc */

uint64_t uz_heap_bytes(void) { return atomic_load(&heap_bytes); }

static void *count(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&heap_bytes, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void uz_fault_arm(uint64_t n)
{
    atomic_store(&fault_calls, 0);
    atomic_store(&fault_hit, false);
    atomic_store(&fault_target, n);
}

uint64_t uz_fault_count(void) { return atomic_load(&fault_calls); }
bool uz_fault_fired(void) { return atomic_load(&fault_hit); }

/* True when this call must fail. */
static bool fault_now(void)
{
    uint64_t n = atomic_fetch_add(&fault_calls, 1) + 1;
    uint64_t t = atomic_load_explicit(&fault_target, memory_order_relaxed);
    if (t != 0 && n == t) {
        atomic_store(&fault_hit, true);
        return true;
    }
    return false;
}

void *uz_malloc(size_t size)
{
    if (fault_now())
        return NULL;
    return count(malloc(size ? size : 1));
}

void *uz_malloc_aligned(size_t align, size_t size)
{
    if (fault_now())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        return NULL;
    return count(p);
}

void *uz_calloc(size_t n, size_t size)
{
    if (fault_now())
        return NULL;
    return count(calloc(n ? n : 1, size ? size : 1));
}

void uz_free(void *p)
{
    if (p)
        atomic_fetch_sub_explicit(&heap_bytes, malloc_usable_size(p), memory_order_relaxed);
    free(p);
}

bool uz_vm_commit_ok(void)
{
    return !fault_now();
}

void *uz_vm_reserve(size_t len)
{
    if (fault_now())
        return NULL;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_NOHUGEPAGE
    /* Reservations are committed and released a 4 KiB page at a time.  A
     * transparent huge page (THP "always") would commit 2 MiB at the first
     * touch of an empty 2 MiB range, and its fault costs several times a
     * 4 KiB fault per 4 KiB on memory the machine has handed back to the
     * host (a KVM guest with free page reporting): a footprint jump and a
     * write speed that depends on the machine's history. */
    (void)madvise(p, len, MADV_NOHUGEPAGE);
#endif
    return p;
}

void uz_vm_unreserve(void *addr, size_t len)
{
    if (addr)
        munmap(addr, len);
}

void uz_vm_release(void *addr, size_t len)
{
    if (!atomic_load_explicit(&mem_locked, memory_order_relaxed)) {
        /* a page locked behind the library's back (mlockall by the
         * program) cannot be dropped: it is zeroed instead, which is what
         * the callers rely on (varray.c: the page's count goes to 0) */
        if (madvise(addr, len, MADV_DONTNEED) != 0)
            memset(addr, 0, len);
        return;
    }
    /* Locked pages cannot be dropped: unlock, drop, and ask for
     * lock-on-fault again so the range is locked when next touched. */
    munlock(addr, len);
    if (madvise(addr, len, MADV_DONTNEED) != 0)
        memset(addr, 0, len);
    mlock2(addr, len, MLOCK_ONFAULT);
}

void uz_mem_trim(void)
{
    /* Unlocked, malloc_trim drops every free page of the heap.  Locked, it
     * gives back only the heap's top (sbrk): a locked page refuses
     * MADV_DONTNEED, and the heap is never unlocked to let it, since a
     * swap server's page that was swapped out in that moment would have
     * to be swapped in through the server itself.  Large blocks do not
     * wait for this: under the lock they are mappings of their own, which
     * free() unmaps (uzram_lock_memory fixes the mmap threshold). */
    (void)malloc_trim(0);
}

void uz_vm_populate(void *addr, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    (void)madvise(addr, len, MADV_POPULATE_WRITE);
#else
    (void)addr;
    (void)len;
#endif
}

void uz_mem_set_locked(bool locked)
{
    atomic_store(&mem_locked, locked);
}

/* ---- memory locking for swap servers (the public side: uzram.h) ---- */

void uzram_set_memory_locked(bool locked)
{
    uz_mem_set_locked(locked);
}

static int uzram_lock_memory_impl(void)
{
    uz_error_clear();
    /* Under a finite RLIMIT_MEMLOCK, MCL_FUTURE would make every later
     * mapping past the limit fail: the device could not grow.  Only a
     * process that may lock without limit (root, or an unlimited rlimit)
     * locks. */
    struct rlimit rl;
    if (geteuid() != 0 && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        return uz_error(-EPERM, "lock memory: RLIMIT_MEMLOCK is finite (%llu bytes) and the process "
                        "is not root: run as root or raise the limit to unlimited",
                        (unsigned long long)rl.rlim_cur);
    if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0)
        return uz_error(-errno, "lock memory: mlockall: %s", strerror(errno));
    uz_mem_set_locked(true);
#ifdef M_ARENA_MAX
    /* A locked page cannot be dropped (MADV_DONTNEED fails on it), so a
     * thread arena of glibc's malloc keeps whatever it held at its peak:
     * an NBD server's 16 and more connection threads kept about 260 KiB
     * each after a copy (4 MiB of a 28 MiB server).  One arena, the brk
     * heap, shrinks (sbrk gives locked pages back). */
    (void)mallopt(M_ARENA_MAX, 1);
#endif
#ifdef M_MMAP_THRESHOLD
    /* Blocks from 128 KiB up (compression streams, group scratch) are
     * mappings of their own, which free() unmaps, locked or not.  glibc's
     * threshold would otherwise rise to the largest such block freed (up
     * to 32 MiB) and put later ones in the heap, where, locked, their
     * pages stay after they are freed.  Setting it fixes it. */
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    /* Threads created from now on inherit the flag.  It needs
     * CAP_SYS_RESOURCE; without it the lock alone keeps the server out of
     * swap. */
    (void)prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
    return 0;
}

int uzram_lock_memory(void)
{
    uz_error_clear();
    return uz_error_done(uzram_lock_memory_impl(), "uzram_lock_memory");
}

void uzram_unlock_memory(void)
{
    munlockall();
    uz_mem_set_locked(false);
}
