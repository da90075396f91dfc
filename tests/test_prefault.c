/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_prefault.c - the prefault helper (prefault.c) under zsmalloc.
 *
 *  - after the allocator moves its top, the window of pages above it
 *    becomes resident (mincore), and no page more than the window;
 *  - the allocator's metadata counts exactly those bytes, so the footprint
 *    includes them; destroying the allocator stops the helper;
 *  - every object still holds what was written (the helper never touches
 *    the allocator's own pages), and freed objects' pages are released;
 *  - in a forked child the helper is started anew on the next move of top,
 *    and stopping the child's allocator does not wait for the parent's
 *    thread;
 *  - UZ_PREFAULT=0: no helper, no resident page above top;
 *  - freed huge pages: up to 16 (at this size) stay resident on the warm
 *    list, counted in the metadata, and the next huge objects take them.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zsmalloc.h"

#define PAGE 4096u
#define NOBJ 300u

static const struct uz_alloc_ops *ops = &uz_zsmalloc_ops;

static struct uz_allocator *make(void)
{
    struct uz_alloc_params p = { .max_bytes = 64u << 20 };
    struct uz_allocator *a = ops->create(&p);
    assert_non_null(a);
    return a;
}

/* Resident pages of the arena in [from, to). */
static uint32_t resident(struct uz_allocator *a, uint32_t from, uint32_t to)
{
    unsigned char vec[1024];
    assert_true(to - from <= sizeof vec);
    if (to == from)
        return 0;
    assert_int_equal(mincore(a->arena + (size_t)from * PAGE, (size_t)(to - from) * PAGE, vec), 0);
    uint32_t n = 0;
    for (uint32_t i = 0; i < to - from; i++)
        n += vec[i] & 1;
    return n;
}

static uint32_t top_of(struct uz_allocator *a)
{
    pthread_mutex_lock(&a->arena_lock);
    uint32_t t = a->top;
    pthread_mutex_unlock(&a->arena_lock);
    return t;
}

/* The threads of this process (/proc/self/status). */
static unsigned nthreads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    unsigned n = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %u", &n) == 1)
            break;
    fclose(f);
    assert_true(n > 0);
    return n;
}

/* Wait (up to 5 s) until the window of want pages above top is settled:
 * the helper refills it when less than half is left, so at rest between
 * want / 2 and want pages right above top are resident, and exactly those
 * are counted. */
static bool wait_window(struct uz_allocator *a, uint32_t want)
{
    for (int i = 0; i < 500; i++) {
        uint32_t t = top_of(a);
        uint64_t counted = uz_prefault_bytes(&a->pf) / PAGE;
        if (counted >= want / 2 && counted <= want && resident(a, t, t + (uint32_t)counted) == counted)
            return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* NOBJ raw (huge) objects, each filled with its number. */
static void fill(struct uz_allocator *a, uint64_t *h, uint32_t base)
{
    for (uint32_t i = 0; i < NOBJ; i++) {
        assert_int_equal(ops->alloc(a, PAGE, base + i, &h[i]), 0);
        memset(ops->map(a, h[i]), (int)((base + i) & 0xff), PAGE);
    }
}

static void verify(struct uz_allocator *a, const uint64_t *h, uint32_t base)
{
    for (uint32_t i = 0; i < NOBJ; i++) {
        const uint8_t *p = ops->map(a, h[i]);
        for (uint32_t k = 0; k < PAGE; k++)
            if (p[k] != (uint8_t)((base + i) & 0xff))
                fail_msg("object %u byte %u changed", i, k);
    }
}

static void test_window(void **state)
{
    (void)state;
    unsetenv("UZ_PREFAULT");
    struct uz_allocator *a = make();
    uint64_t h[NOBJ];
    fill(a, h, 0);
    /* 300 committed pages: the smallest window, 16 pages */
    assert_true(wait_window(a, 16));
    uint32_t t = top_of(a);
    assert_int_equal(t, NOBJ);
    assert_int_equal(resident(a, t + 16, t + 64), 0);
    struct uz_alloc_stats st;
    ops->stats(a, &st);
    assert_int_equal(st.pages_used, NOBJ);
    verify(a, h, 0);
    assert_int_equal(ops->check(a), 0);
    /* fill the warm list (16 freed huge pages kept) from the bottom, then
     * free the top half, last first: top moves down, the window follows */
    for (uint32_t i = 0; i < 16; i++)
        ops->free(a, h[i]);
    for (uint32_t i = NOBJ; i-- > NOBJ / 2;)
        ops->free(a, h[i]);
    assert_true(wait_window(a, 16));
    t = top_of(a);
    assert_int_equal(t, NOBJ / 2);
    /* the freed pages beyond the window went back to the system */
    assert_int_equal(resident(a, t + 16, NOBJ), 0);
    uint64_t h2[NOBJ];
    fill(a, h2, 1000);
    verify(a, h2, 1000);
    for (uint32_t i = 16; i < NOBJ / 2; i++)
        assert_int_equal(((uint8_t *)ops->map(a, h[i]))[0], i & 0xff);
    assert_int_equal(ops->check(a), 0);
    ops->destroy(a);
}

/* A whole compaction rests the window: its pages go back to the system
 * and the helper keeps none until top moves; then the window is back. */
static void test_rest(void **state)
{
    (void)state;
    unsetenv("UZ_PREFAULT");
    struct uz_allocator *a = make();
    uint64_t h[NOBJ];
    fill(a, h, 0);
    assert_true(wait_window(a, 16));
    uint32_t t = top_of(a);
    assert_true(resident(a, t, t + 16) >= 8);
    (void)ops->compact(a, 0);
    assert_true(atomic_load(&a->pf.resting));
    assert_int_equal(uz_prefault_bytes(&a->pf), 0);
    assert_int_equal(top_of(a), t);
    assert_int_equal(resident(a, t, t + 64), 0);
    verify(a, h, 0);
    assert_int_equal(ops->check(a), 0);
    /* writes again: the first move of top ends the rest */
    uint64_t h2[NOBJ];
    fill(a, h2, 1000);
    assert_false(atomic_load(&a->pf.resting));
    assert_true(wait_window(a, 16));
    verify(a, h, 0);
    verify(a, h2, 1000);
    assert_int_equal(ops->check(a), 0);
    ops->destroy(a);
}

static void test_fork(void **state)
{
    (void)state;
    unsetenv("UZ_PREFAULT");
    struct uz_allocator *a = make();
    uint64_t h[NOBJ];
    fill(a, h, 0);
    assert_true(wait_window(a, 16));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child: no helper until top moves, then a new one */
        uint64_t h2[NOBJ];
        fill(a, h2, 2000);
        int ok = wait_window(a, 16);
        verify(a, h, 0);
        verify(a, h2, 2000);
        ops->destroy(a);
        _exit(ok ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    verify(a, h, 0);
    ops->destroy(a);
}

static void test_off(void **state)
{
    (void)state;
    setenv("UZ_PREFAULT", "0", 1);
    unsigned threads0 = nthreads();
    struct uz_allocator *a = make();
    uint64_t h[NOBJ];
    fill(a, h, 0);
    /* No helper exists, so nothing can make a page resident later: no
     * thread was started (the process has as many as before) and the
     * helper's state says it does not run.  Then nothing above top is
     * resident now, and it never will be. */
    assert_false(a->pf.running);
    assert_int_equal(nthreads(), threads0);
    uint32_t t = top_of(a);
    assert_int_equal(resident(a, t, t + 64), 0);
    assert_int_equal(uz_prefault_bytes(&a->pf), 0);
    verify(a, h, 0);
    ops->destroy(a);
    unsetenv("UZ_PREFAULT");
}

static void test_warm(void **state)
{
    (void)state;
    setenv("UZ_PREFAULT", "0", 1);   /* only the warm list resident above use */
    struct uz_allocator *a = make();
    uint64_t h[NOBJ];
    fill(a, h, 0);
    struct uz_alloc_stats st0, st;
    ops->stats(a, &st0);
    /* free 40 from the middle: 16 stay resident, 24 go back */
    uint32_t first = 100;
    uint8_t *page[40];
    for (uint32_t i = 0; i < 40; i++) {
        page[i] = ops->map(a, h[first + i]);
        ops->free(a, h[first + i]);
    }
    ops->stats(a, &st);
    assert_int_equal(st.pages_used, NOBJ - 40);
    assert_int_equal(st.meta_bytes, st0.meta_bytes + 16 * PAGE);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < 40; i++) {
        unsigned char v;
        assert_int_equal(mincore((void *)page[i], PAGE, &v), 0);
        kept += v & 1;
    }
    assert_int_equal(kept, 16);
    assert_int_equal(ops->check(a), 0);
    /* the next 16 huge objects take the warm pages (no new page fault) */
    for (uint32_t i = 0; i < 16; i++) {
        assert_int_equal(ops->alloc(a, PAGE, 5000 + i, &h[first + i]), 0);
        uint8_t *p = ops->map(a, h[first + i]);
        bool warm = false;
        for (uint32_t k = 0; k < 40; k++)
            warm |= p == page[k];
        assert_true(warm);
        memset(p, 0x77, PAGE);
    }
    ops->stats(a, &st);
    assert_int_equal(st.meta_bytes, st0.meta_bytes);
    assert_int_equal(ops->check(a), 0);
    ops->destroy(a);
    unsetenv("UZ_PREFAULT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_rest),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_warm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
