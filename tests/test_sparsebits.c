/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_sparsebits.c - the two-level sparse bitmap: first-zero allocation
 * order, set/clear/test, chunks allocated only where used and freed when
 * empty, a bitmap whose size is not a chunk multiple, -ENOSPC when full,
 * and -ENOMEM from a failed chunk allocation (fault injection).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "mem.h"
#include "sparsebits.h"

static void test_alloc_order(void **state)
{
    (void)state;
    struct uz_sparsebits sb;
    assert_int_equal(uz_sb_init(&sb, 100000), 0);
    uint64_t top = sb.chunk_bytes;
    uint64_t b;
    for (uint64_t i = 0; i < 40000; i++) {
        assert_int_equal(uz_sb_alloc(&sb, &b), 0);
        assert_int_equal(b, i);
    }
    assert_int_equal(uz_sb_count(&sb), 40000);
    assert_int_equal(sb.chunk_bytes, top + 2 * 4096);
    uz_sb_clear(&sb, 17);
    uz_sb_clear(&sb, 35000);
    assert_false(uz_sb_test(&sb, 17));
    assert_int_equal(uz_sb_alloc(&sb, &b), 0);
    assert_int_equal(b, 17);
    assert_int_equal(uz_sb_alloc(&sb, &b), 0);
    assert_int_equal(b, 35000);
    /* empty the second chunk: it is freed */
    for (uint64_t i = 32768; i < 40000; i++)
        uz_sb_clear(&sb, i);
    assert_int_equal(sb.chunk_bytes, top + 4096);
    assert_int_equal(uz_sb_count(&sb), 32768);
    /* a far bit costs one chunk */
    assert_int_equal(uz_sb_set(&sb, 99999), 0);
    assert_true(uz_sb_test(&sb, 99999));
    assert_false(uz_sb_test(&sb, 70000));
    assert_int_equal(uz_sb_set(&sb, 99999), 0);   /* idempotent */
    assert_int_equal(uz_sb_count(&sb), 32769);
    uz_sb_fini(&sb);
}

static void test_full_and_nomem(void **state)
{
    (void)state;
    struct uz_sparsebits sb;
    assert_int_equal(uz_sb_init(&sb, 70), 0);
    uint64_t b;
    for (int i = 0; i < 70; i++)
        assert_int_equal(uz_sb_alloc(&sb, &b), 0);
    assert_int_equal(uz_sb_alloc(&sb, &b), -ENOSPC);
    uz_sb_clear(&sb, 69);
    assert_int_equal(uz_sb_alloc(&sb, &b), 0);
    assert_int_equal(b, 69);
    uz_sb_fini(&sb);

    assert_int_equal(uz_sb_init(&sb, 1 << 20), 0);
    uz_fault_arm(1);
    assert_int_equal(uz_sb_alloc(&sb, &b), -ENOMEM);
    uz_fault_arm(0);
    assert_int_equal(uz_sb_count(&sb), 0);
    assert_int_equal(uz_sb_alloc(&sb, &b), 0);
    assert_int_equal(b, 0);
    uz_sb_fini(&sb);
    uz_fault_arm(1);
    assert_int_equal(uz_sb_init(&sb, 1 << 20), -ENOMEM);
    uz_fault_arm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_order),
        cmocka_unit_test(test_full_and_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
