/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * varray.c - a virtually indexed on-demand array.
 *
 * The whole array's address space is reserved up front (no memory behind
 * it).  Element i lives at base + page(i)*4096 + 16 + slot(i)*elem_size:
 * every page starts with a 16-byte header, so finding an element is one
 * division and a multiply.  A page becomes resident when first written and
 * is given back to the operating system as soon as nothing on it is in use.
 *
 * The header's first word counts the page's users: live elements plus
 * pins (threads that are working on an element of the page).  Invariants:
 *   - count == 0  <=>  the page is not resident (reads as the zero page);
 *   - the page is released only by the thread that moved count 0 -> RELEASING,
 *     and while RELEASING nobody changes count (pinners wait);
 *   - releasing zeroes the page, which also clears RELEASING.
 * So a page never vanishes under a pinned element, and an empty page never
 * stays resident.
 *
 * The used bitmap has a bit per page: set by the pin that moves count
 * 0 -> 1, cleared by the releaser while count is RELEASING (so before
 * any pinner can move it 0 -> 1 again).  Invariant: bit set <=> count is
 * neither 0 nor RELEASING, outside those two windows.  Scans
 * (uz_varray_next_used) read the bitmap alone, so an array of terabytes
 * with a few resident pages is scanned in the time of its bitmap's words.
 */
#include "varray.h"
#include "mem.h"

#include <errno.h>
#include <stdbool.h>
#include <sched.h>

#define RELEASING 0x80000000u

static size_t bitmap_bytes(const struct uz_varray *va)
{
    return (va->npages + 63) / 64 * sizeof(uint64_t);
}

static void set_used(struct uz_varray *va, uint64_t i, bool on)
{
    uint64_t pg = i / va->per_page, bit = 1ull << (pg % 64);
    if (on)
        atomic_fetch_or_explicit(&va->used[pg / 64], bit, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&va->used[pg / 64], ~bit, memory_order_relaxed);
}

static _Atomic uint32_t *page_count(struct uz_varray *va, uint64_t i)
{
    return (_Atomic uint32_t *)(va->base + (i / va->per_page) * 4096u);
}

int uz_varray_init(struct uz_varray *va, uint64_t nelems, size_t elem_size)
{
    va->elem_size = elem_size;
    va->per_page = (4096u - UZ_VARRAY_HDR) / elem_size;
    va->nelems = nelems;
    va->npages = (nelems + va->per_page - 1) / va->per_page;
    if (va->npages == 0)
        va->npages = 1;
    atomic_store(&va->resident_pages, 0);
    va->base = uz_vm_reserve(va->npages * 4096u);
    if (!va->base)
        return -ENOMEM;
    va->used = uz_vm_reserve(bitmap_bytes(va));
    if (!va->used) {
        uz_vm_unreserve(va->base, va->npages * 4096u);
        va->base = NULL;
        return -ENOMEM;
    }
    return 0;
}

void uz_varray_fini(struct uz_varray *va)
{
    uz_vm_unreserve(va->base, va->npages * 4096u);
    uz_vm_unreserve((void *)va->used, bitmap_bytes(va));
    va->base = NULL;
    va->used = NULL;
}

uint64_t uz_varray_next_used(const struct uz_varray *va, uint64_t i, uint64_t end)
{
    if (i >= end)
        return end;
    uint64_t pg = i / va->per_page, last = (end - 1) / va->per_page;
    uint64_t w = pg / 64;
    uint64_t bits = atomic_load_explicit(&va->used[w], memory_order_relaxed) & (~0ull << (pg % 64));
    while (!bits) {
        if (++w > last / 64)
            return end;
        bits = atomic_load_explicit(&va->used[w], memory_order_relaxed);
    }
    pg = w * 64 + (uint64_t)__builtin_ctzll(bits);
    if (pg > last)
        return end;
    uint64_t at = pg * va->per_page;
    return at > i ? at : i;
}

void uz_varray_pin(struct uz_varray *va, uint64_t i)
{
    _Atomic uint32_t *c = page_count(va, i);
    uint32_t v = atomic_load_explicit(c, memory_order_acquire);
    for (;;) {
        if (v & RELEASING) {
            sched_yield();
            v = atomic_load_explicit(c, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(c, &v, v + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    if (v == 0) {
        atomic_fetch_add_explicit(&va->resident_pages, 1, memory_order_relaxed);
        set_used(va, i, true);
    }
}

static void drop(struct uz_varray *va, uint64_t i)
{
    _Atomic uint32_t *c = page_count(va, i);
    if (atomic_fetch_sub_explicit(c, 1, memory_order_acq_rel) != 1)
        return;
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(c, &zero, RELEASING))
        return;   /* someone pinned it again */
    atomic_fetch_sub_explicit(&va->resident_pages, 1, memory_order_relaxed);
    set_used(va, i, false);
    uz_vm_release((uint8_t *)c, 4096u);   /* zeroes the page: count = 0 */
}

void uz_varray_unpin(struct uz_varray *va, uint64_t i)
{
    drop(va, i);
}

void uz_varray_live(struct uz_varray *va, uint64_t i, int delta)
{
    if (delta > 0)
        atomic_fetch_add_explicit(page_count(va, i), (uint32_t)delta, memory_order_relaxed);
    else if (delta < 0)
        drop(va, i);   /* a pin is held, so this never reaches 0 */
}
