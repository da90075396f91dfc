/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mem.h - every allocation uzram makes goes through here.
 *
 * Two reasons for one gateway:
 *  - fault injection: a test can arm the Nth allocation (counted from the
 *    moment it arms) to fail, and so drive every error path (SQLite's way);
 *  - accounting: heap bytes handed out are counted, so a device can report
 *    its true footprint.
 *
 * Page-granular memory (the slot table, allocator arenas) is reserved as
 * address space with uz_vm_reserve() and becomes resident only where it is
 * touched; uz_vm_release() gives pages back to the operating system.  When
 * the process has locked its memory (mlockall(MCL_ONFAULT), as the swap
 * frontends do), release unlocks the range first, drops it, and re-arms
 * lock-on-fault so the pages are locked again when touched.
 */
#ifndef UZRAM_MEM_H
#define UZRAM_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Heap allocation.  uz_malloc/uz_calloc return NULL on (injected) failure. */
void *uz_malloc(size_t size);
void *uz_calloc(size_t n, size_t size);
/* size bytes aligned to align (a power of two, a multiple of
 * sizeof(void *)); freed with uz_free. */
void *uz_malloc_aligned(size_t align, size_t size);
void uz_free(void *p);
/* Bytes currently held through uz_malloc/uz_calloc, process-wide (what
 * malloc really gave, malloc_usable_size). */
uint64_t uz_heap_bytes(void);

/* Reserve len bytes (a multiple of the page size) of address space with no
 * memory behind it yet.  NULL on failure (injected too). */
void *uz_vm_reserve(size_t len);
/* Give a reservation back. */
void uz_vm_unreserve(void *addr, size_t len);
/* Drop the pages in [addr, addr+len): they read as zeros afterwards and
 * take no memory. */
void uz_vm_release(void *addr, size_t len);
/* Make the pages of [addr, addr+len) resident now, with one call rather
 * than a page fault each (best effort: a failure only means they fault in
 * when touched).  For the prefault helper (prefault.c), off the write
 * path: on the write path it costs more than the fault it saves (for one
 * page; for 64 at a time, the same as faulting), and the pages it would
 * commit are mostly resident already. */
void uz_vm_populate(void *addr, size_t len);
/* A fallible point on a path that makes memory resident (an allocator
 * growing by a zspage): returns false when fault injection fails it. */
bool uz_vm_commit_ok(void);

/* Give the malloc heap's free pages back to the operating system
 * (malloc_trim), after a compaction or a settling pass has freed what the
 * store held there.  Under the library's memory lock (uz_mem_set_locked)
 * only the heap's top goes: the heap stays locked throughout, as a swap
 * server's memory must.  Best effort: cannot fail. */
void uz_mem_trim(void);

/* Say that the process runs with mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT)
 * so uz_vm_release must unlock before dropping. */
void uz_mem_set_locked(bool locked);

/* Fault injection: after uz_fault_arm(n), the n-th allocation from now on
 * (1-based) fails, and every one after it succeeds again.  n == 0 disarms.
 * uz_fault_count() is the number of fallible allocations made since the
 * last arm (or since start), so a test can count a scenario's allocations.
 * Global to the process; meant for single-threaded tests. */
void uz_fault_arm(uint64_t n);
uint64_t uz_fault_count(void);
bool uz_fault_fired(void);

#endif
