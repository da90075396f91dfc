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
 */
#include "varray.h"
#include "mem.h"

#include <errno.h>
#include <sched.h>

#define RELEASING 0x80000000u

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
    return va->base ? 0 : -ENOMEM;
}

void uz_varray_fini(struct uz_varray *va)
{
    uz_vm_unreserve(va->base, va->npages * 4096u);
    va->base = NULL;
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
    if (v == 0)
        atomic_fetch_add_explicit(&va->resident_pages, 1, memory_order_relaxed);
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
