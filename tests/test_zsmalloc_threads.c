/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_zsmalloc_threads.c - zsmalloc under concurrency.
 *
 * Worker threads allocate, write, map, verify and free their own objects
 * while two other threads compact at once (cleaning the pack drops its
 * lock while it moves records: two cleaners must never take one run) and
 * one of them runs check() over and over, with the other held off (as
 * the store's write lock holds compaction off its check).  Each
 * object's slot has a lock that is the owner lock of alloc.h: a worker
 * takes it (spinning) around every use of its object, compaction takes it
 * with a trylock through pin().  Built with ThreadSanitizer too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define NWORKERS 3
#define SLOTS_PER_WORKER 400
#define NSLOTS (NWORKERS * SLOTS_PER_WORKER)
#define STEPS 20000

static const struct uz_alloc_ops *ops = &uz_zsmalloc_ops;

struct slot {
    atomic_int lock;        /* 0 free, 1 held */
    uint64_t handle;        /* guarded by lock */
    uint32_t size;
    uint32_t seed;
    bool live;
};

struct shared {
    struct uz_allocator *a;
    struct slot slots[NSLOTS];
    atomic_bool stop;
    atomic_ulong moves;
    atomic_int failures;
    pthread_rwlock_t compacting;    /* compact: read; check: write */
};

static bool slot_trylock(struct slot *s)
{
    int expect = 0;
    return atomic_compare_exchange_strong_explicit(&s->lock, &expect, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static void slot_lock(struct slot *s)
{
    while (!slot_trylock(s))
        sched_yield();
}

static void slot_unlock(struct slot *s)
{
    atomic_store_explicit(&s->lock, 0, memory_order_release);
}

static bool owner_pin(void *owner, uint32_t backref)
{
    struct shared *sh = owner;
    return slot_trylock(&sh->slots[backref & ~UZ_BACKREF_SHARED]);
}

static void owner_moved(void *owner, uint32_t backref, uint64_t old_handle, uint64_t new_handle)
{
    struct shared *sh = owner;
    struct slot *s = &sh->slots[backref & ~UZ_BACKREF_SHARED];
    if (!s->live || s->handle != old_handle)
        atomic_fetch_add(&sh->failures, 1);
    s->handle = new_handle;
    atomic_fetch_add(&sh->moves, 1);
}

static void owner_unpin(void *owner, uint32_t backref)
{
    struct shared *sh = owner;
    slot_unlock(&sh->slots[backref & ~UZ_BACKREF_SHARED]);
}

static const struct uz_owner_ops owner_ops = { owner_pin, owner_moved, owner_unpin };

static void fill(uint8_t *p, uint32_t size, uint32_t seed)
{
    uint32_t x = seed | 1;
    for (uint32_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static bool same(const uint8_t *p, uint32_t size, uint32_t seed)
{
    uint32_t x = seed | 1;
    for (uint32_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        if (p[i] != (uint8_t)(x >> 16))
            return false;
    }
    return true;
}

/* Check slot s (locked by the caller). */
static void verify_slot(struct shared *sh, struct slot *s)
{
    if (!s->live)
        return;
    if (ops->obj_size(sh->a, s->handle) != s->size || !same(ops->map(sh->a, s->handle), s->size, s->seed))
        atomic_fetch_add(&sh->failures, 1);
}

struct worker {
    struct shared *sh;
    uint32_t first;
    uint64_t rng;
};

static uint64_t rnd(uint64_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    return *r;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    for (int step = 0; step < STEPS; step++) {
        uint32_t i = w->first + (uint32_t)(rnd(&w->rng) % SLOTS_PER_WORKER);
        struct slot *s = &sh->slots[i];
        slot_lock(s);
        verify_slot(sh, s);
        if (s->live && rnd(&w->rng) % 2) {
            ops->free(sh->a, s->handle);
            s->live = false;
        } else if (s->live) {
            /* rewrite in place */
            s->seed = (uint32_t)rnd(&w->rng);
            fill(ops->map(sh->a, s->handle), s->size, s->seed);
        } else {
            uint32_t size = rnd(&w->rng) % 10 < 7 ? 1000 + (uint32_t)(rnd(&w->rng) % 2001)
                                                  : 1 + (uint32_t)(rnd(&w->rng) % 4096);
            uint64_t h;
            if (ops->alloc(sh->a, size, i, &h) == 0) {
                s->handle = h;
                s->size = size;
                s->seed = (uint32_t)rnd(&w->rng);
                s->live = true;
                fill(ops->map(sh->a, h), size, s->seed);
            } else {
                atomic_fetch_add(&sh->failures, 1);
            }
        }
        slot_unlock(s);
    }
    return NULL;
}

struct compactor {
    struct shared *sh;
    bool checks;
};

static void *compactor_main(void *arg)
{
    struct compactor *c = arg;
    struct shared *sh = c->sh;
    unsigned rounds = c->checks ? 0 : 1;
    while (!atomic_load(&sh->stop)) {
        pthread_rwlock_rdlock(&sh->compacting);
        ops->compact(sh->a, rounds % 2 ? 0 : 8);
        pthread_rwlock_unlock(&sh->compacting);
        if (c->checks && rounds % 16 == 0) {
            pthread_rwlock_wrlock(&sh->compacting);
            if (ops->check(sh->a) != 0)
                atomic_fetch_add(&sh->failures, 1);
            pthread_rwlock_unlock(&sh->compacting);
        }
        rounds++;
        sched_yield();
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct shared *sh = calloc(1, sizeof *sh);
    assert_non_null(sh);
    struct uz_alloc_params p = { .max_bytes = 64u << 20, .owner_ops = &owner_ops, .owner = sh };
    sh->a = ops->create(&p);
    assert_non_null(sh->a);

    pthread_t workers[NWORKERS], compactors[2];
    struct worker w[NWORKERS];
    struct compactor c[2] = { { sh, true }, { sh, false } };
    pthread_rwlock_init(&sh->compacting, NULL);
    for (int t = 0; t < NWORKERS; t++) {
        w[t] = (struct worker){ sh, (uint32_t)t * SLOTS_PER_WORKER, 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1) };
        assert_int_equal(pthread_create(&workers[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&compactors[t], NULL, compactor_main, &c[t]), 0);
    for (int t = 0; t < NWORKERS; t++)
        pthread_join(workers[t], NULL);
    atomic_store(&sh->stop, true);
    for (int t = 0; t < 2; t++)
        pthread_join(compactors[t], NULL);
    pthread_rwlock_destroy(&sh->compacting);

    assert_int_equal(atomic_load(&sh->failures), 0);
    assert_int_equal(ops->check(sh->a), 0);
    uint64_t live = 0, bytes = 0;
    for (int i = 0; i < NSLOTS; i++) {
        verify_slot(sh, &sh->slots[i]);
        if (sh->slots[i].live) {
            live++;
            bytes += sh->slots[i].size;
        }
    }
    assert_int_equal(atomic_load(&sh->failures), 0);
    struct uz_alloc_stats st;
    ops->stats(sh->a, &st);
    assert_int_equal(st.objects, live);
    assert_int_equal(st.obj_bytes, bytes);
    print_message("threads: %lu objects moved by compaction, %llu pages compacted\n",
                  (unsigned long)atomic_load(&sh->moves), (unsigned long long)st.pages_compacted);

    /* a final compaction and a clean teardown */
    ops->compact(sh->a, 0);
    assert_int_equal(ops->check(sh->a), 0);
    for (int i = 0; i < NSLOTS; i++) {
        verify_slot(sh, &sh->slots[i]);
        if (sh->slots[i].live)
            ops->free(sh->a, sh->slots[i].handle);
    }
    assert_int_equal(atomic_load(&sh->failures), 0);
    ops->stats(sh->a, &st);
    assert_int_equal(st.pages_used, 0);
    assert_int_equal(st.objects, 0);
    assert_int_equal(ops->check(sh->a), 0);
    ops->destroy(sh->a);
    free(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
