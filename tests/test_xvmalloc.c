/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_xvmalloc.c - xvmalloc and the malloc baseline against a model.
 *
 * The model is a fake owner: an array of slots, each holding at most one
 * object (its handle, size and the seed of its byte pattern).  The backref
 * of an object is its slot index; pin() is a try-lock flag per slot, and
 * moved() updates the slot's handle.  Random alloc / free / compact steps
 * run against an allocator, and after every step each live object is
 * spot-checked (size, pattern at both ends and the middle, page bounds);
 * fully after every compaction and periodically, with ops->check().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "mem.h"
#include "uzram.h"

extern const struct uz_alloc_ops uz_xvmalloc_ops;
extern const struct uz_alloc_ops uz_malloc_ops;

#define PAGE 4096u

struct slot {
    uint64_t h;
    uint32_t size;
    uint32_t seed;
    bool live;
    bool pinned;
    bool busy;      /* pin() fails: the owner is locked elsewhere */
};

struct model {
    const struct uz_alloc_ops *ops;
    struct uz_allocator *a;
    struct slot *slots;
    unsigned nslots;
    unsigned live;
    _Atomic uint64_t limit;
    uint64_t rng;
    bool page_bound;   /* objects must not cross a page (xvmalloc) */
    uint64_t moves;
};

static uint32_t rnd(struct model *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return (uint32_t)(m->rng >> 16);
}

static inline uint8_t pat(uint32_t seed, uint32_t i)
{
    return (uint8_t)(((seed + i) * 2654435761u) >> 24);
}

/* ---- the fake owner ---- */

static bool own_pin(void *owner, uint32_t br)
{
    struct model *m = owner;
    assert_true(br < m->nslots);
    struct slot *s = &m->slots[br];
    assert_true(s->live);
    if (s->pinned || s->busy)
        return false;
    s->pinned = true;
    return true;
}

static void own_moved(void *owner, uint32_t br, uint64_t old_h, uint64_t new_h)
{
    struct model *m = owner;
    assert_true(br < m->nslots);
    struct slot *s = &m->slots[br];
    assert_true(s->live && s->pinned);
    assert_true(s->h == old_h);
    assert_true(new_h != old_h);
    s->h = new_h;
    m->moves++;
}

static void own_unpin(void *owner, uint32_t br)
{
    struct model *m = owner;
    assert_true(br < m->nslots);
    assert_true(m->slots[br].pinned);
    m->slots[br].pinned = false;
}

static const struct uz_owner_ops owner_ops = { own_pin, own_moved, own_unpin };

static void model_init(struct model *m, const struct uz_alloc_ops *ops, unsigned nslots,
                       uint64_t max_bytes, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->ops = ops;
    m->nslots = nslots;
    m->slots = calloc(nslots, sizeof *m->slots);
    assert_non_null(m->slots);
    m->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    m->page_bound = ops == &uz_xvmalloc_ops;
    atomic_store(&m->limit, 0);
    struct uz_alloc_params p = {
        .max_bytes = max_bytes,
        .owner_ops = &owner_ops,
        .owner = m,
        .limit_pages = &m->limit,
    };
    m->a = ops->create(&p);
    assert_non_null(m->a);
}

static void stats(struct model *m, struct uz_alloc_stats *st)
{
    memset(st, 0, sizeof *st);
    m->ops->stats(m->a, st);
}

static void check(struct model *m)
{
    int rc = m->ops->check(m->a);
    if (rc)
        fail_msg("%s check: %d: %s", m->ops->name, rc, uzram_last_error());
}

static void fill(struct model *m, unsigned i)
{
    struct slot *s = &m->slots[i];
    uint8_t *p = m->ops->map(m->a, s->h);
    for (uint32_t k = 0; k < s->size; k++)
        p[k] = pat(s->seed, k);
}

static void verify_one(struct model *m, unsigned i, bool full)
{
    struct slot *s = &m->slots[i];
    assert_int_equal(m->ops->obj_size(m->a, s->h), s->size);
    const uint8_t *p = m->ops->map(m->a, s->h);
    if (m->page_bound)
        assert_true((uintptr_t)p % PAGE + s->size <= PAGE);
    if (full) {
        for (uint32_t k = 0; k < s->size; k++)
            if (p[k] != pat(s->seed, k))
                fail_msg("slot %u: byte %u of %u differs", i, k, s->size);
    } else {
        assert_int_equal(p[0], pat(s->seed, 0));
        assert_int_equal(p[s->size - 1], pat(s->seed, s->size - 1));
        assert_int_equal(p[s->size / 2], pat(s->seed, s->size / 2));
    }
}

static void verify_all(struct model *m, bool full)
{
    for (unsigned i = 0; i < m->nslots; i++)
        if (m->slots[i].live)
            verify_one(m, i, full);
}

/* Allocate into slot i; returns the allocator's result. */
static int put(struct model *m, unsigned i, uint32_t size)
{
    struct slot *s = &m->slots[i];
    assert_false(s->live);
    uint64_t h = 0;
    int rc = m->ops->alloc(m->a, size, i, &h);
    if (rc)
        return rc;
    s->h = h;
    s->size = size;
    s->seed = rnd(m);
    s->live = true;
    m->live++;
    fill(m, i);
    return 0;
}

static void drop(struct model *m, unsigned i)
{
    struct slot *s = &m->slots[i];
    assert_true(s->live);
    verify_one(m, i, true);
    m->ops->free(m->a, s->h);
    s->live = false;
    m->live--;
}

static void model_fini(struct model *m)
{
    for (unsigned i = 0; i < m->nslots; i++)
        if (m->slots[i].live)
            drop(m, i);
    struct uz_alloc_stats st;
    stats(m, &st);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.obj_bytes, 0);
    assert_int_equal(st.pages_used, 0);
    check(m);
    m->ops->destroy(m->a);
    free(m->slots);
}

/* Sizes 1..4096, mostly 1000..3000 (what compressed pages look like). */
static uint32_t rand_size(struct model *m)
{
    uint32_t r = rnd(m) % 100;
    if (r < 60)
        return 1000 + rnd(m) % 2001;
    if (r < 80)
        return 1 + rnd(m) % 999;
    if (r < 95)
        return 3001 + rnd(m) % (4072 - 3000);
    return 4073 + rnd(m) % 24;
}

/* ---- the model test ---- */

static void run_model(const struct uz_alloc_ops *ops, uint64_t seed, unsigned steps)
{
    struct model m;
    model_init(&m, ops, 1000, 16u << 20, seed);
    bool limited = false;
    uint64_t nomem = 0, compacted = 0, peak = 0;
    for (unsigned step = 0; step < steps; step++) {
        uint32_t r = rnd(&m) % 1000;
        unsigned i = rnd(&m) % m.nslots;
        if (r < 5) {
            /* Toggle the memory limit: cap at what is used now. */
            struct uz_alloc_stats st;
            stats(&m, &st);
            limited = !limited;
            atomic_store(&m.limit, limited ? (st.pages_used ? st.pages_used : 1) : 0);
        } else if (r < 15) {
            struct uz_alloc_stats before, after;
            stats(&m, &before);
            for (unsigned k = 0; k < m.nslots; k++)
                m.slots[k].busy = rnd(&m) % 16 == 0;
            uint64_t freed = ops->compact(m.a, rnd(&m) % 3 ? rnd(&m) % 8 : 0);
            for (unsigned k = 0; k < m.nslots; k++) {
                assert_false(m.slots[k].pinned);
                m.slots[k].busy = false;
            }
            stats(&m, &after);
            assert_int_equal(after.pages_compacted - before.pages_compacted, freed);
            compacted += freed;
            assert_int_equal(before.pages_used - after.pages_used, freed);
            assert_int_equal(after.objects, before.objects);
            assert_int_equal(after.obj_bytes, before.obj_bytes);
            check(&m);
            verify_all(&m, true);
        } else if (r < 570) {
            if (m.slots[i].live)
                continue;
            uint32_t size = rand_size(&m);
            struct uz_alloc_stats before, after;
            stats(&m, &before);
            int rc = put(&m, i, size);
            stats(&m, &after);
            if (rc) {
                assert_int_equal(rc, -ENOMEM);
                assert_true(limited);
                nomem++;
                assert_memory_equal(&before, &after, sizeof before);
                assert_false(m.slots[i].live);
            } else {
                assert_int_equal(after.objects, before.objects + 1);
                assert_int_equal(after.obj_bytes, before.obj_bytes + size);
                uint64_t lim = atomic_load(&m.limit);
                if (lim && after.pages_used > before.pages_used)
                    assert_true(after.pages_used <= lim);
                if (after.pages_used > peak)
                    peak = after.pages_used;
                verify_one(&m, i, true);
            }
        } else {
            if (m.slots[i].live)
                drop(&m, i);
        }
        verify_all(&m, false);
        if (step % 500 == 0) {
            check(&m);
            verify_all(&m, true);
        }
    }
    atomic_store(&m.limit, 0);
    check(&m);
    verify_all(&m, true);
    print_message("%s seed %llu: peak %llu pages, %llu refused over the limit, "
                  "%llu pages compacted, %llu moves\n", ops->name, (unsigned long long)seed,
                  (unsigned long long)peak, (unsigned long long)nomem,
                  (unsigned long long)compacted, (unsigned long long)m.moves);
    model_fini(&m);
}

static void test_model_xvmalloc(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_model(&uz_xvmalloc_ops, seed, 12000);
}

static void test_model_malloc(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 2; seed++)
        run_model(&uz_malloc_ops, seed, 12000);
}

/* ---- targeted tests, run on both allocators ---- */

/* Every size 1..4096: obj_size exact, map writable for the whole size. */
static void every_size(const struct uz_alloc_ops *ops)
{
    struct model m;
    model_init(&m, ops, PAGE, 32u << 20, 7);
    for (unsigned s = 1; s <= PAGE; s++)
        assert_int_equal(put(&m, s - 1, s), 0);
    check(&m);
    verify_all(&m, true);
    /* free every other one, then the rest */
    for (unsigned s = 1; s <= PAGE; s += 2)
        drop(&m, s - 1);
    check(&m);
    verify_all(&m, true);
    model_fini(&m);
}

static void test_sizes_xvmalloc(void **state) { (void)state; every_size(&uz_xvmalloc_ops); }
static void test_sizes_malloc(void **state) { (void)state; every_size(&uz_malloc_ops); }

/* An injected failure at the growth point fails the alloc, changes nothing. */
static void fault_alloc(const struct uz_alloc_ops *ops)
{
    struct model m;
    model_init(&m, ops, 16, 1u << 20, 3);
    assert_int_equal(put(&m, 0, 100), 0);
    struct uz_alloc_stats before, after;
    stats(&m, &before);
    uz_fault_arm(1);
    int rc = put(&m, 1, PAGE);        /* needs a page of its own */
    bool fired = uz_fault_fired();
    uz_fault_arm(0);
    assert_true(fired);
    assert_int_equal(rc, -ENOMEM);
    stats(&m, &after);
    assert_memory_equal(&before, &after, sizeof before);
    check(&m);
    assert_int_equal(put(&m, 1, PAGE), 0);
    model_fini(&m);
}

static void test_fault_xvmalloc(void **state) { (void)state; fault_alloc(&uz_xvmalloc_ops); }
static void test_fault_malloc(void **state) { (void)state; fault_alloc(&uz_malloc_ops); }

/* create() fails cleanly at every fallible step. */
static void fault_create(const struct uz_alloc_ops *ops)
{
    struct uz_alloc_params p = { .max_bytes = 1u << 20 };
    for (uint64_t n = 1; n < 50; n++) {
        uz_fault_arm(n);
        struct uz_allocator *a = ops->create(&p);
        bool fired = uz_fault_fired();
        uz_fault_arm(0);
        if (!a) {
            assert_true(fired);
            continue;
        }
        ops->destroy(a);
        if (!fired)
            return;
    }
    fail_msg("create never succeeded");
}

static void test_fault_create_xvmalloc(void **state) { (void)state; fault_create(&uz_xvmalloc_ops); }
static void test_fault_create_malloc(void **state) { (void)state; fault_create(&uz_malloc_ops); }

/* The limit is read on every growth; allocations inside used pages pass. */
static void limit(const struct uz_alloc_ops *ops)
{
    struct model m;
    model_init(&m, ops, 64, 1u << 20, 5);
    atomic_store(&m.limit, 2);
    unsigned i = 0, fails = 0;
    for (; i < 64; i++) {
        struct uz_alloc_stats before, after;
        stats(&m, &before);
        int rc = put(&m, i, 1500);
        stats(&m, &after);
        if (rc) {
            assert_int_equal(rc, -ENOMEM);
            assert_memory_equal(&before, &after, sizeof before);
            fails++;
            break;
        }
        assert_true(after.pages_used <= 2);
    }
    assert_int_equal(fails, 1);
    assert_true(i >= 2);
    atomic_store(&m.limit, 0);
    assert_int_equal(put(&m, i, 1500), 0);
    check(&m);
    model_fini(&m);
}

static void test_limit_xvmalloc(void **state) { (void)state; limit(&uz_xvmalloc_ops); }
static void test_limit_malloc(void **state) { (void)state; limit(&uz_malloc_ops); }

/* set_backref changes whom compaction asks to pin. */
static void test_set_backref(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, &uz_xvmalloc_ops, 2000, 8u << 20, 11);
    /* 1000 objects under wrong backrefs, then fixed: a wrong one would be
     * caught by own_pin/own_moved when compaction moves it. */
    for (unsigned i = 0; i < 1000; i++) {
        uint64_t h;
        assert_int_equal(uz_xvmalloc_ops.alloc(m.a, 600, 1999 - i, &h), 0);
        m.slots[i] = (struct slot){ .h = h, .size = 600, .seed = i, .live = true };
        m.live++;
        fill(&m, i);
        uz_xvmalloc_ops.set_backref(m.a, h, i);
    }
    for (unsigned i = 0; i < 1000; i++)
        if (i % 4)
            drop(&m, i);
    uint64_t freed = uz_xvmalloc_ops.compact(m.a, 0);
    assert_true(freed > 0);
    assert_true(m.moves > 0);
    check(&m);
    verify_all(&m, true);
    model_fini(&m);
}

/* Compaction: sparse pages are emptied, busy owners' objects stay put. */
static void test_compact_xvmalloc(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, &uz_xvmalloc_ops, 4000, 16u << 20, 13);
    for (unsigned i = 0; i < 4000; i++)
        assert_int_equal(put(&m, i, 500 + rnd(&m) % 200), 0);
    struct uz_alloc_stats full, sparse, after;
    stats(&m, &full);
    for (unsigned i = 0; i < 4000; i++)
        if (rnd(&m) % 4)
            drop(&m, i);
    stats(&m, &sparse);
    check(&m);
    /* Mark a few owners busy: their objects must not move. */
    uint64_t busy_h[4000] = { 0 };
    for (unsigned i = 0; i < 4000; i += 97)
        if (m.slots[i].live) {
            m.slots[i].busy = true;
            busy_h[i] = m.slots[i].h;
        }
    /* A bounded pass first. */
    uint64_t f1 = uz_xvmalloc_ops.compact(m.a, 3);
    assert_true(f1 <= 3);
    check(&m);
    uint64_t f2 = uz_xvmalloc_ops.compact(m.a, 0);
    stats(&m, &after);
    check(&m);
    verify_all(&m, true);
    for (unsigned i = 0; i < 4000; i += 97)
        if (m.slots[i].live) {
            assert_int_equal(m.slots[i].h, busy_h[i]);
            m.slots[i].busy = false;
        }
    assert_int_equal(after.pages_compacted, f1 + f2);
    assert_int_equal(sparse.pages_used - after.pages_used, f1 + f2);
    /* live data would fit in far fewer pages than were left after the frees */
    uint64_t ideal = (after.obj_bytes + after.objects * 16 + PAGE - 1) / PAGE;
    print_message("compact: %llu pages full, %llu sparse, %llu after (ideal %llu), %llu moves\n",
                  (unsigned long long)full.pages_used, (unsigned long long)sparse.pages_used,
                  (unsigned long long)after.pages_used, (unsigned long long)ideal,
                  (unsigned long long)m.moves);
    assert_true(after.pages_used < sparse.pages_used * 2 / 3);
    assert_true(after.pages_used < ideal * 3 / 2);
    model_fini(&m);
}

/* malloc's compaction moves nothing and frees no counted pages. */
static void test_compact_malloc(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, &uz_malloc_ops, 1000, 16u << 20, 17);
    for (unsigned i = 0; i < 1000; i++)
        assert_int_equal(put(&m, i, 1 + rnd(&m) % PAGE), 0);
    for (unsigned i = 0; i < 1000; i += 2)
        drop(&m, i);
    assert_int_equal(uz_malloc_ops.compact(m.a, 0), 0);
    assert_int_equal(m.moves, 0);
    check(&m);
    verify_all(&m, true);
    model_fini(&m);
}

/* xvmalloc specifics: the huge threshold and page sharing around it. */
static void test_huge_xvmalloc(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, &uz_xvmalloc_ops, 16, 1u << 20, 19);
    size_t hc = uz_xvmalloc_ops.huge_class_size(m.a);
    assert_int_equal(hc, 4072);
    struct uz_alloc_stats st;
    /* The largest non-huge object leaves room for a small one. */
    assert_int_equal(put(&m, 0, (uint32_t)hc), 0);
    assert_int_equal(put(&m, 1, 8), 0);
    stats(&m, &st);
    assert_int_equal(st.pages_used, 1);
    /* A huge object takes a page of its own, even a 4096-byte one. */
    assert_int_equal(put(&m, 2, (uint32_t)hc + 1), 0);
    assert_int_equal(put(&m, 3, PAGE), 0);
    stats(&m, &st);
    assert_int_equal(st.pages_used, 3);
    assert_int_equal((uintptr_t)uz_xvmalloc_ops.map(m.a, m.slots[3].h) % PAGE, 0);
    /* Two 2100-byte objects cannot share a page. */
    assert_int_equal(put(&m, 4, 2100), 0);
    assert_int_equal(put(&m, 5, 2100), 0);
    stats(&m, &st);
    assert_int_equal(st.pages_used, 5);
    /* Freed pages go back; handles are never 0. */
    for (unsigned i = 0; i < 6; i++)
        assert_true(m.slots[i].h != 0);
    drop(&m, 4);
    stats(&m, &st);
    assert_int_equal(st.pages_used, 4);
    check(&m);
    model_fini(&m);
}

/* The arena bounds the pages: running out is -ENOMEM, not a crash. */
static void test_arena_exhausted(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, &uz_xvmalloc_ops, 20000, 0, 23);
    unsigned n = 0;
    int rc;
    while ((rc = m.ops->alloc(m.a, PAGE, n, &m.slots[n].h)) == 0) {
        m.slots[n].size = PAGE;
        m.slots[n].live = true;
        m.live++;
        fill(&m, n);   /* pattern with seed 0 */
        n++;
        assert_true(n < m.nslots);
    }
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(n, (64u << 20) / PAGE);
    check(&m);
    /* Freeing one makes room for one again. */
    drop(&m, 0);
    assert_int_equal(put(&m, 0, PAGE), 0);
    model_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_xvmalloc),
        cmocka_unit_test(test_sizes_malloc),
        cmocka_unit_test(test_huge_xvmalloc),
        cmocka_unit_test(test_fault_xvmalloc),
        cmocka_unit_test(test_fault_malloc),
        cmocka_unit_test(test_fault_create_xvmalloc),
        cmocka_unit_test(test_fault_create_malloc),
        cmocka_unit_test(test_limit_xvmalloc),
        cmocka_unit_test(test_limit_malloc),
        cmocka_unit_test(test_set_backref),
        cmocka_unit_test(test_compact_xvmalloc),
        cmocka_unit_test(test_compact_malloc),
        cmocka_unit_test(test_arena_exhausted),
        cmocka_unit_test(test_model_xvmalloc),
        cmocka_unit_test(test_model_malloc),
    };
    return cmocka_run_group_tests_name("xvmalloc", tests, NULL, NULL);
}
