/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_attr.c - the zram attribute table: every attribute shown and stored
 * as /sys/block/zramN has it, malformed values refused with the error
 * sysfs gives, and a refused store changing nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "uzram.h"

#define PAGE 4096u

static int store(struct uzram *dev, const char *name, const char *val)
{
    return uzram_attr_store(dev, name, val, strlen(val));
}

static const char *show(struct uzram *dev, const char *name)
{
    static char buf[1024];
    int n = uzram_attr_show(dev, name, buf, sizeof buf);
    if (n < 0)
        snprintf(buf, sizeof buf, "error %d", n);
    return buf;
}

static struct uzram *uninit(void)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    struct uzram *dev;
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    return dev;
}

static void test_memparse(void **state)
{
    uint64_t v;
    assert_int_equal(uz_memparse("4096", 4, &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(uz_memparse("512M\n", 5, &v), 0);
    assert_int_equal(v, 512ull << 20);
    assert_int_equal(uz_memparse("1G", 2, &v), 0);
    assert_int_equal(v, 1ull << 30);
    assert_int_equal(uz_memparse("1t", 2, &v), 0);
    assert_int_equal(v, 1ull << 40);
    assert_int_equal(uz_memparse("0x1000", 6, &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(uz_memparse("", 0, &v), -EINVAL);
    assert_int_equal(uz_memparse("abc", 3, &v), -EINVAL);
    assert_int_equal(uz_memparse("1Q", 2, &v), -EINVAL);
    assert_int_equal(uz_memparse("1MB", 3, &v), -EINVAL);
    assert_int_equal(uz_memparse("-1", 2, &v), -EINVAL);
    assert_int_equal(uz_memparse("99999999999999999999", 20, &v), -EINVAL);
    assert_int_equal(uz_memparse("16E", 3, &v), -EINVAL);   /* overflow */
}

static void test_lifecycle(void **state)
{
    struct uzram *dev = uninit();
    assert_string_equal(show(dev, "initstate"), "0\n");
    assert_string_equal(show(dev, "disksize"), "0\n");
    assert_int_equal(store(dev, "disksize", "junk\n"), -EINVAL);
    assert_int_equal(store(dev, "disksize", "0\n"), -EINVAL);
    assert_string_equal(show(dev, "initstate"), "0\n");
    assert_int_equal(store(dev, "comp_algorithm", "zstd\n"), 0);
    assert_string_equal(show(dev, "comp_algorithm"), "lzo-rle lzo lz4 lz4hc [zstd] deflate none \n");
    assert_int_equal(store(dev, "algorithm_params", "algo=zstd level=5\n"), 0);
    /* the default secondary (settling's) is shown too, at its own level */
    assert_string_equal(show(dev, "algorithm_params"),
                        "priority=0 algo=zstd level=5\npriority=1 algo=zstd level=6\n");
    assert_int_equal(store(dev, "algorithm_params", "algo=zstd level=500\n"), -EINVAL);
    assert_int_equal(store(dev, "algorithm_params", "algo=lz4 level=1\n"), -EINVAL);
    assert_int_equal(store(dev, "algorithm_params", "level\n"), -EINVAL);
    assert_int_equal(store(dev, "algorithm_params", "color=blue\n"), -EINVAL);
    assert_string_equal(show(dev, "algorithm_params"),
                        "priority=0 algo=zstd level=5\npriority=1 algo=zstd level=6\n");
    assert_int_equal(store(dev, "disksize", "1M\n"), 0);
    assert_string_equal(show(dev, "initstate"), "1\n");
    assert_string_equal(show(dev, "disksize"), "1048576\n");
    assert_int_equal(uzram_disksize(dev), 1 << 20);
    /* changes that need a reset first */
    assert_int_equal(store(dev, "disksize", "2M\n"), -EBUSY);
    assert_int_equal(store(dev, "comp_algorithm", "lz4\n"), -EBUSY);
    assert_int_equal(store(dev, "comp_algorithm", "bogus\n"), -EINVAL);
    assert_string_equal(show(dev, "comp_algorithm"), "lzo-rle lzo lz4 lz4hc [zstd] deflate none \n");
    char page[PAGE];
    memset(page, 'x', sizeof page);
    page[100] = 'y';
    assert_int_equal(uzram_write(dev, page, PAGE, 0), 0);
    /* reset */
    assert_int_equal(store(dev, "reset", "0\n"), -EINVAL);
    assert_int_equal(store(dev, "reset", "x\n"), -EINVAL);
    assert_string_equal(show(dev, "initstate"), "1\n");
    assert_int_equal(store(dev, "reset", "1\n"), 0);
    assert_string_equal(show(dev, "initstate"), "0\n");
    assert_int_equal(uzram_write(dev, page, PAGE, 0), -ENXIO);
    assert_int_equal(store(dev, "disksize", "8K"), 0);
    assert_int_equal(uzram_read(dev, page, PAGE, 0), 0);
    assert_int_equal(page[100], 0);   /* a fresh device */
    uzram_destroy(dev);
}

static void test_stats_formats(void **state)
{
    struct uzram *dev = uninit();
    assert_int_equal(store(dev, "disksize", "64K"), 0);
    char page[PAGE];
    memset(page, 7, sizeof page);   /* same-filled */
    assert_int_equal(uzram_write(dev, page, PAGE, 0), 0);
    for (size_t i = 0; i < PAGE; i++)
        page[i] = (char)(i * 7 % 251);
    assert_int_equal(uzram_write(dev, page, PAGE, PAGE), 0);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    char want[512];
    snprintf(want, sizeof want, "%8llu %8llu %8llu %8llu %8llu %8llu %8llu %8llu %8llu\n",
             2ull * PAGE, (unsigned long long)st.compr_data_size,
             (unsigned long long)st.mem_used_total, 0ull, (unsigned long long)st.mem_used_max,
             1ull, 0ull, 0ull, 0ull);
    assert_string_equal(show(dev, "mm_stat"), want);
    assert_true(st.compr_data_size > 0 && st.compr_data_size < PAGE);
    char junk[8];
    assert_int_equal(uzram_read(dev, junk, 8, 64 * 1024), -EINVAL);
    assert_string_equal(show(dev, "io_stat"), "       0        0        1        0\n");
    assert_int_equal(strncmp(show(dev, "debug_stat"), "version: 1\n", 11), 0);
    /* mem_limit is write-only, like sysfs */
    assert_int_equal(uzram_attr_show(dev, "mem_limit", want, sizeof want), -EACCES);
    assert_int_equal(store(dev, "mem_limit", "1M\n"), 0);
    assert_int_equal(store(dev, "mem_limit", "lots\n"), -EINVAL);
    uzram_get_stats(dev, &st);
    assert_int_equal(st.mem_limit, 1 << 20);   /* the bad store changed nothing */
    assert_int_equal(store(dev, "mem_used_max", "5\n"), -EINVAL);
    assert_int_equal(store(dev, "mem_used_max", "0\n"), 0);
    assert_int_equal(store(dev, "compact", "1\n"), 0);
    /* read-only, unknown, too small a buffer */
    assert_int_equal(store(dev, "mm_stat", "1"), -EACCES);
    assert_int_equal(store(dev, "no_such", "1"), -ENOENT);
    assert_int_equal(uzram_attr_show(dev, "no_such", want, sizeof want), -ENOENT);
    assert_int_equal(uzram_attr_show(dev, "mm_stat", want, 10), -ENOSPC);
    assert_int_equal(uzram_attr_store(dev, "mem_limit", "1\0002", 3), -EINVAL);
    assert_string_equal(show(dev, "max_comp_streams"), show(dev, "max_comp_streams"));
    assert_int_equal(store(dev, "max_comp_streams", "0"), -EINVAL);
    assert_string_equal(show(dev, "auto_compact"), "1.050\n");
    assert_int_equal(store(dev, "auto_compact", "1.2\n"), 0);
    assert_string_equal(show(dev, "auto_compact"), "1.200\n");
    assert_int_equal(store(dev, "auto_compact", "0"), 0);
    assert_string_equal(show(dev, "auto_compact"), "0\n");
    assert_int_equal(store(dev, "auto_compact", "0.9"), -EINVAL);
    assert_string_equal(show(dev, "auto_compact"), "0\n");
    uzram_destroy(dev);
}

static void test_listing(void **state)
{
    const char *need[] = {"disksize", "initstate", "reset", "comp_algorithm", "algorithm_params",
                          "mem_limit", "mem_used_max", "compact", "mm_stat", "io_stat",
                          "debug_stat"};
    for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
        bool found = false;
        unsigned mode;
        const char *n;
        for (unsigned i = 0; (n = uzram_attr_name(i, &mode)) != NULL; i++)
            if (!strcmp(n, need[k]))
                found = true;
        assert_true(found);
    }
    assert_string_equal(uzram_strerror(-EINVAL), "invalid argument");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memparse),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_stats_formats),
        cmocka_unit_test(test_listing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
