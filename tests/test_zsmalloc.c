/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_zsmalloc.c - model tests of the zsmalloc allocator.
 *
 * A fake owner keeps an array of slots, each holding one object's handle,
 * size and pattern seed.  Every object is filled with a pattern derived
 * from its seed; after each step the live objects are checked byte for
 * byte against the model, and the allocator's own check() runs after
 * every compaction and periodically.  pin() fails for slots marked busy,
 * so compaction's skip path is exercised too.  The model tests run twice:
 * with the default dense_bytes (small classes live in the pack) and with
 * dense_bytes = 1 (every class has zspages from its first object).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mem.h"
#include "uzram.h"

#define PAGE 4096u

static const struct uz_alloc_ops *ops = &uz_zsmalloc_ops;

/* dense_bytes of the allocators model_init() makes: 0 = the default (small
 * classes live in the pack), 1 = every class has zspages at once. */
static uint64_t g_dense;
static uint32_t g_backref_limit; /* model_init's backref_limit: nonzero, 5-byte pack headers */

/* ---- the fake owner ------------------------------------------------------ */

struct slot {
    uint64_t handle;
    uint32_t size;
    uint32_t seed;
    uint32_t backref;
    bool live;
    bool busy;      /* pin() fails */
    bool pinned;
};

struct model {
    struct uz_allocator *a;
    struct slot *slots;
    uint32_t n;
    uint64_t moves;
    uint64_t live, bytes;
    _Atomic uint64_t limit;
    uint64_t rng;
};

static uint32_t backref_of(uint32_t i)
{
    return i % 3 == 0 ? i | UZ_BACKREF_SHARED : i;
}

static struct slot *slot_of(struct model *m, uint32_t backref)
{
    uint32_t i = backref & ~UZ_BACKREF_SHARED;
    assert_true(i < m->n);
    struct slot *s = &m->slots[i];
    assert_true(s->live);
    assert_int_equal(s->backref, backref);
    return s;
}

static bool owner_pin(void *owner, uint32_t backref)
{
    struct slot *s = slot_of(owner, backref);
    assert_false(s->pinned);
    if (s->busy)
        return false;
    s->pinned = true;
    return true;
}

static void owner_moved(void *owner, uint32_t backref, uint64_t old_handle, uint64_t new_handle)
{
    struct model *m = owner;
    struct slot *s = slot_of(m, backref);
    assert_true(s->pinned);
    assert_true(s->handle == old_handle);
    assert_true(new_handle != old_handle);
    s->handle = new_handle;
    m->moves++;
}

static void owner_unpin(void *owner, uint32_t backref)
{
    struct slot *s = slot_of(owner, backref);
    assert_true(s->pinned);
    s->pinned = false;
}

static const struct uz_owner_ops owner_ops = { owner_pin, owner_moved, owner_unpin };

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rnd(struct model *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

/* Sizes 1..4096, most of them 1000..3000 as lz4 pages are. */
static uint32_t rnd_size(struct model *m)
{
    if (rnd(m) % 10 < 7)
        return 1000 + (uint32_t)(rnd(m) % 2001);
    return 1 + (uint32_t)(rnd(m) % PAGE);
}

static void pattern_fill(uint8_t *p, uint32_t size, uint32_t seed)
{
    uint32_t x = seed | 1;
    for (uint32_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static bool pattern_ok(const uint8_t *p, uint32_t size, uint32_t seed)
{
    uint32_t x = seed | 1;
    for (uint32_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        if (p[i] != (uint8_t)(x >> 16))
            return false;
    }
    return true;
}

static void model_init(struct model *m, uint32_t n, uint64_t max_bytes, bool owner, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->slots = calloc(n, sizeof *m->slots);
    assert_non_null(m->slots);
    m->rng = seed ? seed : 88172645463325252ull;
    struct uz_alloc_params p = {
        .max_bytes = max_bytes,
        .owner_ops = owner ? &owner_ops : NULL,
        .owner = m,
        .limit_pages = &m->limit,
        .dense_bytes = g_dense,
        .backref_limit = g_backref_limit,
    };
    m->a = ops->create(&p);
    assert_non_null(m->a);
}

static void model_fini(struct model *m)
{
    ops->destroy(m->a);
    free(m->slots);
}

/* Allocate slot i with size bytes; returns the allocator's result. */
static int model_alloc(struct model *m, uint32_t i, uint32_t size)
{
    struct slot *s = &m->slots[i];
    assert_false(s->live);
    uint64_t h = 0;
    int err = ops->alloc(m->a, size, backref_of(i), &h);
    if (err)
        return err;
    assert_true(h != 0);
    s->handle = h;
    s->size = size;
    s->seed = (uint32_t)rnd(m);
    s->backref = backref_of(i);
    s->live = true;
    s->busy = false;
    pattern_fill(ops->map(m->a, h), size, s->seed);
    m->live++;
    m->bytes += size;
    return 0;
}

static void model_free(struct model *m, uint32_t i)
{
    struct slot *s = &m->slots[i];
    assert_true(s->live);
    ops->free(m->a, s->handle);
    s->live = false;
    m->live--;
    m->bytes -= s->size;
}

static void model_verify(struct model *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        struct slot *s = &m->slots[i];
        if (!s->live)
            continue;
        assert_int_equal(ops->obj_size(m->a, s->handle), s->size);
        if (!pattern_ok(ops->map(m->a, s->handle), s->size, s->seed))
            fail_msg("slot %u (size %u) lost its bytes", i, s->size);
    }
    struct uz_alloc_stats st;
    ops->stats(m->a, &st);
    assert_int_equal(st.objects, m->live);
    assert_int_equal(st.obj_bytes, m->bytes);
}

static void model_check(struct model *m)
{
    int err = ops->check(m->a);
    if (err)
        fail_msg("check: %d", err);
}

static uint64_t pages_used(struct model *m)
{
    struct uz_alloc_stats st;
    ops->stats(m->a, &st);
    return st.pages_used;
}

/* Compact with every live owner busy: nothing may move.  Returns the
 * pages freed (they must match pages_used), owners free again after. */
static uint64_t compact_all_busy(struct model *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        m->slots[i].busy = m->slots[i].live;
    uint64_t before = pages_used(m), moves = m->moves;
    uint64_t freed = ops->compact(m->a, 0);
    assert_int_equal(m->moves, moves);
    assert_int_equal(pages_used(m), before - freed);
    for (uint32_t i = 0; i < m->n; i++)
        m->slots[i].busy = false;
    return freed;
}

static void model_free_all(struct model *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (m->slots[i].live)
            model_free(m, i);
}

/* The end of a test: everything verified and checked, freed, and the
 * allocator holds no page any more. */
static void model_finish(struct model *m)
{
    model_verify(m);
    model_check(m);
    model_free_all(m);
    assert_int_equal(pages_used(m), 0);
    model_check(m);
    model_fini(m);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_geometry(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 8192, 64u << 20, true, 1);
    size_t huge = ops->huge_class_size(m.a);
    assert_true(huge >= 3000 && huge < PAGE);
    assert_int_equal(ops->alloc(m.a, 0, 0, &(uint64_t){ 0 }), -EINVAL);
    assert_int_equal(ops->alloc(m.a, PAGE + 1, 0, &(uint64_t){ 0 }), -EINVAL);

    /* every size once; sizes and bytes are exact */
    for (uint32_t sz = 1; sz <= PAGE; sz++)
        assert_int_equal(model_alloc(&m, sz - 1, sz), 0);
    model_verify(&m);
    model_check(&m);

    /* set_backref: compaction must see the new one */
    struct slot *s = &m.slots[1234];
    uint32_t nb = 5000;
    assert_false(m.slots[nb].live);
    ops->set_backref(m.a, s->handle, backref_of(nb));
    m.slots[nb] = *s;
    m.slots[nb].backref = backref_of(nb);
    s->live = false;
    s = &m.slots[PAGE - 1]; /* a huge one */
    uint32_t nb2 = 5001;
    ops->set_backref(m.a, s->handle, backref_of(nb2));
    m.slots[nb2] = *s;
    m.slots[nb2].backref = backref_of(nb2);
    s->live = false;
    for (uint32_t i = 0; i < PAGE; i += 2)
        if (m.slots[i].live)
            model_free(&m, i);
    ops->compact(m.a, 0);
    model_finish(&m);
}

static void test_huge_one_page_each(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 500, 16u << 20, true, 2);
    uint32_t huge = (uint32_t)ops->huge_class_size(m.a);
    struct uz_alloc_stats st0, st;
    ops->stats(m.a, &st0);
    for (uint32_t i = 0; i < 500; i++) {
        uint32_t sz = huge + 1 + (uint32_t)(rnd(&m) % (PAGE - huge));
        if (i == 0)
            sz = PAGE;
        if (i == 1)
            sz = huge + 1;
        assert_int_equal(model_alloc(&m, i, sz), 0);
        assert_int_equal(pages_used(&m), i + 1);
        /* a raw page is the whole page, page aligned */
        assert_int_equal((uintptr_t)ops->map(m.a, m.slots[i].handle) % PAGE, 0);
    }
    ops->stats(m.a, &st);
    assert_int_equal(st.pages_used, 500);
    /* descriptors, and the prefault window above top (16 pages at this
     * size; prefault.c), which st0 may or may not have had yet */
    assert_true(st.meta_bytes <= st0.meta_bytes + 500 * 20 + PAGE + 16 * PAGE);
    /* the largest payload that is not huge shares pages */
    struct model m2;
    model_init(&m2, 100, 16u << 20, true, 3);
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(model_alloc(&m2, i, huge), 0);
    assert_true(pages_used(&m2) < 100);
    model_verify(&m2);
    model_check(&m2);
    model_free_all(&m2);
    assert_int_equal(pages_used(&m2), 0);
    model_fini(&m2);

    model_finish(&m);
}

/* The model test: random alloc / free / compact, everything verified
 * after every step. */
static void run_model(uint32_t nslots, uint32_t steps, uint64_t seed, bool verify_each, uint32_t compact_permille)
{
    struct model m;
    model_init(&m, nslots, 64u << 20, true, seed);
    for (uint32_t step = 0; step < steps; step++) {
        uint32_t i = (uint32_t)(rnd(&m) % nslots);
        uint32_t op = (uint32_t)(rnd(&m) % 1000);
        if (op < compact_permille) {
            /* compaction with some owners busy */
            for (uint32_t j = 0; j < nslots; j++)
                m.slots[j].busy = m.slots[j].live && rnd(&m) % 8 == 0;
            uint64_t before = pages_used(&m);
            uint64_t freed = ops->compact(m.a, op % 2 ? 0 : 1 + rnd(&m) % 20);
            assert_int_equal(pages_used(&m), before - freed);
            for (uint32_t j = 0; j < nslots; j++)
                m.slots[j].busy = false;
            model_check(&m);
            model_verify(&m);
        } else if (m.slots[i].live) {
            model_free(&m, i);
        } else {
            assert_int_equal(model_alloc(&m, i, rnd_size(&m)), 0);
        }
        if (verify_each)
            model_verify(&m);
        if (step % 500 == 0)
            model_check(&m);
    }
    model_finish(&m);
}

static void test_model_small(void **state)
{
    (void)state;
    for (g_dense = 0; g_dense <= 1; g_dense++) {
        run_model(150, 6000, 11, true, 20);
        run_model(40, 4000, 12, true, 20);
    }
    g_dense = 0;
}

static void test_model_large(void **state)
{
    (void)state;
    for (g_dense = 0; g_dense <= 1; g_dense++)
        run_model(6000, 60000, 13, false, 2);
    /* classes crossing dense_bytes while the test runs */
    g_dense = 64u << 10;
    run_model(6000, 60000, 14, false, 2);
    g_dense = 0;
}

/* The pack holds objects byte-exact: a fill costs the records (6-byte
 * header each) plus run tails and the open runs' last pages. */
/* hdr: the record header the allocator was made for (backref_limit). */
static void pack_exact(double hdr)
{
    struct model m;
    g_dense = UINT64_MAX;
    model_init(&m, 20000, 256u << 20, true, 21);
    size_t huge = ops->huge_class_size(m.a);
    for (uint32_t i = 0; i < m.n; i++) {
        uint32_t sz = rnd_size(&m);
        assert_int_equal(model_alloc(&m, i, sz > huge ? huge : sz), 0);
    }
    struct uz_alloc_stats st;
    ops->stats(m.a, &st);
    double recs = (double)st.obj_bytes + hdr * (double)st.objects;
    print_message("pack: %llu objects, %llu bytes, %llu pages (%.4f x records)\n",
                  (unsigned long long)st.objects, (unsigned long long)st.obj_bytes,
                  (unsigned long long)st.pages_used, st.pages_used * (double)PAGE / recs);
    assert_true(st.pages_used * (double)PAGE <= recs * 1.01 + 4 * PAGE);
    model_verify(&m);
    model_check(&m);
    /* free 70%: cleaning brings the pages back near the live records */
    for (uint32_t i = 0; i < m.n; i++)
        if (rnd(&m) % 10 < 7)
            model_free(&m, i);
    model_check(&m);
    /* a busy owner keeps its whole run in place */
    compact_all_busy(&m);
    uint64_t before = pages_used(&m);
    uint64_t freed = ops->compact(m.a, 0);
    assert_int_equal(pages_used(&m), before - freed);
    ops->stats(m.a, &st);
    recs = (double)st.obj_bytes + hdr * (double)st.objects;
    print_message("pack after freeing 70%% and compaction: %llu pages (%.4f x records), %llu moves\n",
                  (unsigned long long)st.pages_used, st.pages_used * (double)PAGE / recs,
                  (unsigned long long)m.moves);
    assert_true(m.moves > 0);
    assert_true(st.pages_used * (double)PAGE <= recs * 1.03 + 40 * PAGE);
    model_finish(&m);
    g_dense = 0;
}

static void test_pack_exact(void **state)
{
    (void)state;
    pack_exact(6.0);
}

/* backref_limit <= 2^26: pack records carry 5-byte headers (backref index
 * and shared bit, size and dead bit in 40 bits); the same bounds hold with
 * the smaller header, the model and check() agree on every backref, and a
 * backref at the limit is refused. */
static void test_pack_short_header(void **state)
{
    (void)state;
    g_backref_limit = 20000;
    pack_exact(5.0);
    struct model m;
    model_init(&m, 16, 1u << 20, true, 3);
    uint64_t h = 0;
    assert_int_equal(ops->alloc(m.a, 100, 20000, &h), -EINVAL);
    assert_int_equal(ops->alloc(m.a, 100, 20000 | UZ_BACKREF_SHARED, &h), -EINVAL);
    assert_int_equal(ops->alloc(m.a, 100, 19999 | UZ_BACKREF_SHARED, &h), 0);
    assert_int_equal(ops->backref(m.a, h), 19999 | UZ_BACKREF_SHARED);
    ops->set_backref(m.a, h, 7);
    assert_int_equal(ops->backref(m.a, h), 7);
    assert_int_equal(ops->obj_size(m.a, h), 100);
    ops->free(m.a, h);
    model_finish(&m);
    /* the random model, short headers, compaction between steps */
    run_model(4000, 40000, 77, false, 50);
    g_backref_limit = 0;
}


/* A class starts in the pack and gets zspages once it holds dense_bytes;
 * cleaning then moves its pack records into its zspages. */
static void test_pack_to_class(void **state)
{
    (void)state;
    struct model m;
    g_dense = 256u << 10;
    model_init(&m, 4000, 64u << 20, true, 22);
    /* 1000-byte objects: the first ~256 KiB go to the pack */
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(model_alloc(&m, i, 1000), 0);
    /* pack records lie edge to edge, 6 + 1000 bytes apart; slots of the
     * class are further apart (4-byte header, 16-byte rounding) */
    uint32_t packed = 0;
    for (uint32_t i = 1; i < 1000; i++)
        packed += (uint8_t *)ops->map(m.a, m.slots[i].handle) -
                  (uint8_t *)ops->map(m.a, m.slots[i - 1].handle) == 1006;
    /* free most of the early (pack) ones and some late (class) ones */
    for (uint32_t i = 0; i < 1000; i++)
        if (i < 250 ? i % 4 != 0 : i % 3 == 0)
            model_free(&m, i);
    uint64_t before = pages_used(&m);
    uint64_t freed = ops->compact(m.a, 0);
    print_message("pack to class: %u records at pack offsets, %llu pages -> %llu, %llu moves\n", packed,
                  (unsigned long long)before, (unsigned long long)pages_used(&m), (unsigned long long)m.moves);
    assert_true(packed >= 200 && packed < 300);
    assert_true(m.moves > 0);
    assert_int_equal(pages_used(&m), before - freed);
    model_verify(&m);
    model_check(&m);
    model_free_all(&m);
    assert_int_equal(pages_used(&m), 0);
    model_fini(&m);
    g_dense = 0;
}

static void test_limit(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 4000, 64u << 20, true, 4);
    atomic_store(&m.limit, 60);
    uint32_t i = 0, fails = 0;
    for (; i < 4000 && fails < 50; i++) {
        struct uz_alloc_stats before, after;
        ops->stats(m.a, &before);
        uint32_t sz = rnd_size(&m);
        int err = model_alloc(&m, i, sz);
        ops->stats(m.a, &after);
        if (err) {
            assert_int_equal(err, -ENOMEM);
            assert_int_equal(after.pages_used, before.pages_used);
            assert_int_equal(after.objects, before.objects);
            assert_int_equal(after.obj_bytes, before.obj_bytes);
            fails++;
        }
        assert_true(after.pages_used <= 60);
    }
    assert_true(fails == 50);
    assert_true(pages_used(&m) >= 50);
    model_verify(&m);
    model_check(&m);
    /* a raised limit lets allocation go on */
    atomic_store(&m.limit, 0);
    uint32_t j;
    for (j = 0; j < m.n && m.slots[j].live; j++)
        ;
    assert_true(j < m.n);
    assert_int_equal(model_alloc(&m, j, PAGE), 0);
    /* at the limit a huge alloc fails too */
    atomic_store(&m.limit, pages_used(&m));
    for (j = 0; j < m.n && m.slots[j].live; j++)
        ;
    assert_int_equal(model_alloc(&m, j, PAGE), -ENOMEM);
    model_verify(&m);
    model_check(&m);
    model_free_all(&m);
    assert_int_equal(pages_used(&m), 0);
    model_fini(&m);
}

static void test_compact_reduces(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 20000, 64u << 20, true, 5);
    for (uint32_t i = 0; i < m.n; i++)
        assert_int_equal(model_alloc(&m, i, rnd_size(&m)), 0);
    uint64_t full = pages_used(&m);
    for (uint32_t i = 0; i < m.n; i++)
        if (rnd(&m) % 10 < 7)
            model_free(&m, i);
    uint64_t before = pages_used(&m);
    model_check(&m);
    uint64_t freed = ops->compact(m.a, 0);
    uint64_t after = pages_used(&m);
    struct uz_alloc_stats st;
    ops->stats(m.a, &st);
    print_message("compaction: %llu pages full, %llu after freeing 70%%, %llu after compaction"
                  " (%.3f x object bytes), %llu moves\n",
                  (unsigned long long)full, (unsigned long long)before, (unsigned long long)after,
                  after * (double)PAGE / st.obj_bytes, (unsigned long long)m.moves);
    assert_true(freed > 0);
    assert_int_equal(after, before - freed);
    assert_int_equal(st.pages_compacted, freed);
    assert_true(after < before * 6 / 10);
    assert_true(after * PAGE < st.obj_bytes * 1.10 + 400 * PAGE);
    model_check(&m);
    model_verify(&m);
    /* nothing more to gain */
    assert_true(ops->compact(m.a, 0) < 10);
    model_free_all(&m);
    assert_int_equal(pages_used(&m), 0);
    model_fini(&m);
}

static void test_compact_busy_and_bounded(void **state)
{
    (void)state;
    struct model m;
    g_dense = 1;     /* the size classes' compaction: no pack (its cleaning frees a run of 32) */
    model_init(&m, 3000, 64u << 20, true, 6);
    for (uint32_t i = 0; i < m.n; i++)
        assert_int_equal(model_alloc(&m, i, 1500 + (uint32_t)(rnd(&m) % 16)), 0);
    for (uint32_t i = 0; i < m.n; i++)
        if (rnd(&m) % 10 < 7)
            model_free(&m, i);
    /* every owner busy: nothing moves, but free pages at the ends of
     * zspages are still trimmed */
    uint64_t before = pages_used(&m);
    uint64_t trimmed = compact_all_busy(&m);
    assert_int_equal(m.moves, 0);
    assert_true(trimmed < before / 4);
    model_check(&m);
    model_verify(&m);
    before -= trimmed;
    /* bounded: one source zspage (at most 16 pages) per call */
    uint64_t freed = ops->compact(m.a, 1);
    assert_true(freed > 0 && freed <= 16);
    assert_int_equal(pages_used(&m), before - freed);
    model_check(&m);
    model_verify(&m);
    /* the rest */
    freed += ops->compact(m.a, 0);
    assert_true(freed > before / 3);
    model_check(&m);
    model_verify(&m);
    model_free_all(&m);
    model_fini(&m);
    g_dense = 0;
}

static void test_no_owner(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 1000, 16u << 20, false, 7);
    for (uint32_t i = 0; i < m.n; i++)
        assert_int_equal(model_alloc(&m, i, rnd_size(&m)), 0);
    for (uint32_t i = 0; i < m.n; i += 2)
        model_free(&m, i);
    uint64_t before = pages_used(&m);
    assert_int_equal(ops->compact(m.a, 0), 0);
    assert_int_equal(pages_used(&m), before);
    model_verify(&m);
    model_check(&m);
    model_free_all(&m);
    model_fini(&m);
}

/* Fill the arena with single pages, free them, then ask for long runs:
 * the free one-page runs must be merged back (coalesced). */
static void test_arena_exhaustion(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 60000, 0, true, 8); /* arena: 64 MiB = 16384 pages */
    uint32_t n = 0;
    int err;
    while ((err = model_alloc(&m, n, PAGE)) == 0)
        n++;
    assert_int_equal(err, -ENOMEM);
    assert_true(n >= 16000 && n <= 16384);
    model_check(&m);
    /* free all but every 64th, in address order */
    for (uint32_t i = 0; i < n; i++)
        if (i % 64 != 0)
            model_free(&m, i);
    model_check(&m);
    /* objects of a class with multi-page runs */
    uint32_t k = n, got = 0;
    while (k < m.n && model_alloc(&m, k, 2000) == 0) {
        k++;
        got++;
    }
    /* most of the freed pages hold them again (each 64-page gap minus the
     * tail of the last run) */
    print_message("arena: %u one-page objects, then %u 2000-byte objects\n", n, got);
    assert_true((uint64_t)got * 2000 > (uint64_t)(n - n / 64) * PAGE * 8 / 10);
    model_verify(&m);
    model_check(&m);
    model_free_all(&m);
    assert_int_equal(pages_used(&m), 0);
    model_check(&m);
    /* the whole arena is usable again */
    for (k = 0; k < 4000; k++)
        assert_int_equal(model_alloc(&m, k, 3000), 0);
    model_check(&m);
    model_free_all(&m);
    model_fini(&m);
}

/* max_bytes at the largest disksize, 8 TiB, makes an allocator (its
 * arena clipped to what 32-bit page numbers count) that stores, maps and
 * frees objects of every kind; one page more is refused with -EINVAL.
 * Issue 19: 8 TiB failed ("cannot create the zsmalloc allocator") while
 * 8191 GiB worked. */
static void test_max_bytes_limit(void **state)
{
    (void)state;
    struct model m;
    model_init(&m, 3000, 1ull << 43, true, 11);
    for (uint32_t i = 0; i < m.n; i++)
        assert_int_equal(model_alloc(&m, i, i % 3 == 2 ? PAGE : rnd_size(&m)), 0);
    for (uint32_t i = 0; i < m.n; i += 3)
        model_free(&m, i);
    model_verify(&m);
    model_check(&m);
    model_free_all(&m);
    assert_int_equal(pages_used(&m), 0);
    model_fini(&m);

    struct uz_alloc_params p = { .max_bytes = (1ull << 43) + PAGE, .owner_ops = &owner_ops,
                                 .owner = &m };
    assert_null(ops->create(&p));
    assert_non_null(strstr(uzram_last_error(), "too large"));
}

/* Fail the n-th fallible call for every n: every failure is a clean
 * -ENOMEM (or NULL from create) and the allocator stays consistent. */
static void test_fault_injection(void **state)
{
    (void)state;
    for (uint64_t n = 1;; n++) {
        uz_fault_arm(n);
        struct model m;
        memset(&m, 0, sizeof m);
        m.n = 300;
        m.slots = calloc(m.n, sizeof *m.slots);
        m.rng = 99;
        struct uz_alloc_params p = { .max_bytes = 8u << 20, .owner_ops = &owner_ops, .owner = &m };
        m.a = ops->create(&p);
        if (!m.a) {
            assert_true(uz_fault_fired());
            free(m.slots);
            continue;
        }
        int failures = 0;
        for (uint32_t i = 0; i < m.n; i++) {
            uint32_t sz = i % 10 == 0 ? PAGE : rnd_size(&m);
            int err = model_alloc(&m, i, sz);
            if (err) {
                assert_int_equal(err, -ENOMEM);
                failures++;
            }
            if (i % 3 == 0 && m.slots[i / 2].live)
                model_free(&m, i / 2);
        }
        ops->compact(m.a, 0);
        bool fired = uz_fault_fired();
        uz_fault_arm(0);
        assert_true(failures <= 1);
        assert_true(fired || failures == 0);
        model_verify(&m);
        model_check(&m);
        model_free_all(&m);
        assert_int_equal(pages_used(&m), 0);
        model_fini(&m);
        if (!fired)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_huge_one_page_each),
        cmocka_unit_test(test_model_small),
        cmocka_unit_test(test_model_large),
        cmocka_unit_test(test_pack_exact),
        cmocka_unit_test(test_pack_short_header),
        cmocka_unit_test(test_pack_to_class),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_compact_reduces),
        cmocka_unit_test(test_compact_busy_and_bounded),
        cmocka_unit_test(test_no_owner),
        cmocka_unit_test(test_arena_exhaustion),
        cmocka_unit_test(test_max_bytes_limit),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
