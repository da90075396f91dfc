/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_iostat.c - the "stat" attribute (src/iostat.c): zeros on a new
 * device; after real reads, writes, write-zeroes, discards and flushes
 * through the public data path, each field as the block layer defines it;
 * devices counted apart; a small buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uzram.h"

static struct uzram *make(void)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 16u << 20;
    struct uzram *dev;
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    return dev;
}

/* The 17 fields of dev's stat attribute. */
static void fields(struct uzram *dev, uint64_t f[17])
{
    char buf[512];
    int n = uzram_attr_show(dev, "stat", buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    char *p = buf;
    for (int i = 0; i < 17; i++) {
        char *end;
        f[i] = strtoull(p, &end, 10);
        assert_true(end > p);
        p = end;
    }
    assert_string_equal(p, "\n");
}

static void counts(void **state)
{
    (void)state;
    struct uzram *dev = make();
    uint64_t f[17];
    fields(dev, f);
    for (int i = 0; i < 17; i++)
        assert_int_equal(f[i], 0);

    static char buf[1 << 20];
    memset(buf, 0x5a, sizeof buf);
    for (int i = 0; i < 3; i++)
        assert_int_equal(uzram_write(dev, buf, sizeof buf, (uint64_t)i << 20), 0);
    assert_int_equal(uzram_write_zeroes(dev, 8192, 4u << 20), 0);
    assert_int_equal(uzram_read(dev, buf, 4096, 0), 0);
    assert_int_equal(uzram_read(dev, buf, 512, 4096), 0);
    assert_int_equal(uzram_discard(dev, 1 << 20, 0), 0);
    assert_int_equal(uzram_flush(dev), 0);
    /* a failing request is counted too, as the block layer counts it */
    assert_int_equal(uzram_read(dev, buf, 4096, 64u << 20), -EINVAL);
    fields(dev, f);
    assert_int_equal(f[0], 3);                       /* reads */
    assert_int_equal(f[1], 0);                       /* read merges */
    assert_int_equal(f[2], (4096 + 512 + 4096) / 512);
    assert_int_equal(f[4], 4);                       /* writes: 3 + write-zeroes */
    assert_int_equal(f[6], 3 * 2048 + 16);
    assert_int_equal(f[8], 0);                       /* in flight */
    assert_true(f[10] >= f[3] + f[7]);               /* time_in_queue covers the groups */
    assert_int_equal(f[11], 1);                      /* discards */
    assert_int_equal(f[13], 2048);
    assert_int_equal(f[15], 1);                      /* flushes */

    /* the counters are the disk's: a reset keeps them, as a block device's */
    assert_int_equal(uzram_attr_store(dev, "reset", "1", 1), 0);
    fields(dev, f);
    assert_int_equal(f[0], 3);

    char tiny[16];
    assert_int_equal(uzram_attr_show(dev, "stat", tiny, sizeof tiny), -ENOSPC);
    assert_int_equal(uzram_attr_store(dev, "stat", "1", 1), -EACCES);
    uzram_destroy(dev);
}

/* Counters of one device do not show on another. */
static void per_device(void **state)
{
    (void)state;
    struct uzram *d1 = make(), *d2 = make();
    char page[4096] = {1};
    assert_int_equal(uzram_write(d1, page, sizeof page, 0), 0);
    uint64_t f[17];
    fields(d2, f);
    assert_int_equal(f[4], 0);
    fields(d1, f);
    assert_int_equal(f[4], 1);
    uzram_destroy(d1);
    uzram_destroy(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts),
        cmocka_unit_test(per_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
