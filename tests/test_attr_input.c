/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_attr_input.c - attribute stores that must give a clear answer
 * (issue 19, findings 7 and 8):
 *
 *   - a pool-wide setting stored through a device of the pool (mem_limit,
 *     dedup, auto_compact, writeback_limit, writeback_limit_enable,
 *     forward_threshold, writeback_compressed, the policies) is -EBUSY
 *     with a message that says where to set it, and changes nothing; the
 *     pool's own value is accepted; through the pool
 *     (uzram_pool_attr_store) each is set, and every device shows it;
 *     compact and mem_used_max act on the pool through any device;
 *   - algorithm_params with a level and no algo or priority sets the
 *     primary's level, as zram's does;
 *   - numbers inside attribute values are decimal digits only: no '+',
 *     no blank (kstrto*);
 *   - group_pages 3 in a configuration is refused with a message that
 *     names the value a user gives ("auto"), not the C constant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uzram.h"

static char shown[4096];

static const char *show(struct uzram *dev, const char *name)
{
    int n = uzram_attr_show(dev, name, shown, sizeof shown);
    if (n < 0)
        fail_msg("show %s: %s", name, uzram_last_error());
    return shown;
}

static const char *pool_show(struct uzram_pool *p, const char *name)
{
    int n = uzram_pool_attr_show(p, name, shown, sizeof shown);
    if (n < 0)
        fail_msg("pool show %s: %s", name, uzram_last_error());
    return shown;
}

static int store(struct uzram *dev, const char *name, const char *v)
{
    return uzram_attr_store(dev, name, v, strlen(v));
}

static int pool_store(struct uzram_pool *p, const char *name, const char *v)
{
    return uzram_pool_attr_store(p, name, v, strlen(v));
}

/* The pool-wide settings a device shows: name, another value, and how
 * that value shows. */
static const struct {
    const char *name, *other, *other_shown;
} settings[] = {
    {"dedup", "0", "0\n"},
    {"auto_compact", "1.5", "1.500\n"},
    {"writeback_limit", "77", "77\n"},
    {"writeback_limit_enable", "1", "1\n"},
    {"forward_threshold", "3000", "3000\n"},
    {"writeback_compressed", "1", "1\n"},
    {"recompress_policy", "idle_secs=60 algo=zstd max_pages=10 period_ms=1000",
     "idle_secs=60 algo=zstd max_pages=10 period_ms=1000\n"},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static void test_pool_settings_through_a_device(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 64ull << 20;
    cfg.algorithm = "lz4";
    cfg.recomp_algorithm[0] = "zstd";
    struct uzram_pool *p;
    assert_int_equal(uzram_pool_create(&cfg, &p), 0);
    struct uzram *a, *b;
    assert_int_equal(uzram_pool_add(p, &a), 0);
    assert_int_equal(uzram_pool_add(p, &b), 0);
    assert_int_equal(store(a, "disksize", "4M"), 0);
    char before[4096], pool_before[4096];
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *n = settings[i].name;
        snprintf(before, sizeof before, "%s", show(a, n));
        snprintf(pool_before, sizeof pool_before, "%s", pool_show(p, n));
        assert_string_equal(before, pool_before);
        /* another value through a device: EBUSY, where to set it, nothing changed */
        assert_int_equal(store(a, n, settings[i].other), -EBUSY);
        assert_non_null(strstr(uzram_last_error(), "a pool-wide setting: set it in DIR/"));
        assert_non_null(strstr(uzram_last_error(), n));
        assert_string_equal(show(a, n), before);
        assert_string_equal(show(b, n), before);
        assert_string_equal(pool_show(p, n), before);
        /* the pool's own value, as the device shows it, is accepted */
        before[strcspn(before, "\n")] = 0;
        assert_int_equal(store(b, n, before), 0);
        /* through the pool: set, and every device shows it */
        assert_int_equal(pool_store(p, n, settings[i].other), 0);
        assert_string_equal(show(a, n), settings[i].other_shown);
        assert_string_equal(show(b, n), settings[i].other_shown);
        /* now the new value is the pool's: accepted through a device,
         * also spelled another way */
        assert_int_equal(store(a, n, settings[i].other), 0);
    }
    assert_int_equal(store(a, "auto_compact", "1.50"), 0);
    assert_int_equal(store(a, "auto_compact", "1.6"), -EBUSY);
    assert_int_equal(store(a, "writeback_limit", "077"), 0);
    /* mem_limit (write-only): the pool's value by its size */
    assert_int_equal(pool_store(p, "mem_limit", "8M"), 0);
    assert_int_equal(store(a, "mem_limit", "8M"), 0);
    assert_int_equal(store(a, "mem_limit", "8388608"), 0);
    assert_int_equal(store(a, "mem_limit", "16M"), -EBUSY);
    assert_non_null(strstr(uzram_last_error(), "mem_limit: a pool-wide setting"));
    assert_int_equal(store(b, "mem_limit", "0"), -EBUSY);
    struct uzram_pool_stats ps;
    uzram_pool_get_stats(p, &ps);
    assert_int_equal(ps.mem_limit, 8ull << 20);
    /* the store-shaping ones keep their own message; a bad name is EINVAL */
    assert_int_equal(store(b, "comp_algorithm", "zstd"), -EBUSY);
    assert_non_null(strstr(uzram_last_error(), "set it when the pool is made"));
    assert_int_equal(store(b, "comp_algorithm", "nosuch"), -EINVAL);
    assert_int_equal(store(b, "comp_algorithm", "lz4\n"), 0);
    /* what acts on the pool and sets nothing */
    assert_int_equal(store(a, "compact", "1"), 0);
    assert_int_equal(store(b, "mem_used_max", "0"), 0);
    int err = uzram_pool_remove(p, 0);
    if (err)
        fail_msg("remove: %s", uzram_last_error());
    assert_int_equal(uzram_pool_remove(p, 1), 0);
    assert_int_equal(uzram_pool_destroy(p), 0);
}

static struct uzram *make_uninit(const char *algo)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.algorithm = algo;
    cfg.recomp_algorithm[0] = "lz4";
    struct uzram *dev;
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    return dev;
}

static void test_algorithm_params_primary(void **state)
{
    (void)state;
    struct uzram *dev = make_uninit("zstd");
    assert_int_equal(store(dev, "algorithm_params", "level=3\n"), 0);
    assert_non_null(strstr(show(dev, "algorithm_params"), "priority=0 algo=zstd level=3\n"));
    /* the secondary kept its default */
    assert_null(strstr(show(dev, "algorithm_params"), "priority=1 algo=lz4 level=3"));
    assert_int_equal(store(dev, "algorithm_params", "level=99"), -EINVAL);
    assert_non_null(strstr(uzram_last_error(), "outside zstd's"));
    assert_int_equal(store(dev, "algorithm_params", "priority=0 level=5"), 0);
    assert_non_null(strstr(show(dev, "algorithm_params"), "priority=0 algo=zstd level=5\n"));
    /* initialised: EBUSY, as for an explicit priority */
    assert_int_equal(store(dev, "disksize", "1M"), 0);
    assert_int_equal(store(dev, "algorithm_params", "level=4"), -EBUSY);
    assert_non_null(strstr(show(dev, "algorithm_params"), "priority=0 algo=zstd level=5\n"));
    uzram_destroy(dev);
}

static void test_strict_numbers(void **state)
{
    (void)state;
    struct uzram *dev = make_uninit("zstd");
    assert_int_equal(store(dev, "algorithm_params", "level=7"), 0);
    char before[4096];
    snprintf(before, sizeof before, "%s", show(dev, "algorithm_params"));
    static const char *bad[] = {
        "level=+3", "level= 3", "level=3x", "level=", "priority=+0 level=3",
        "priority=- level=3", "level=99999999999999999999", "level=3 level", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(store(dev, "algorithm_params", bad[i]), -EINVAL);
        assert_true(strlen(uzram_last_error()) > 0);
    }
    assert_string_equal(show(dev, "algorithm_params"), before);
    /* the policies' numbers: digits only */
    static const char *badpol[] = {
        "idle_secs=+60 algo=lz4", "idle_secs=60 algo=lz4 period_ms=+5",
        "idle_secs=60 algo=lz4 max_pages=\v5", "idle_secs=-1 algo=lz4",
    };
    for (size_t i = 0; i < sizeof badpol / sizeof badpol[0]; i++) {
        assert_int_equal(store(dev, "recompress_policy", badpol[i]), -EINVAL);
        assert_non_null(strstr(uzram_last_error(), "recompress_policy"));
    }
    /* unchanged: the default, settling */
    assert_string_equal(show(dev, "recompress_policy"),
                        "settle idle_secs=120 algo=lz4 max_pages=64 period_ms=20 cpu=5\n");
    assert_int_equal(store(dev, "recompress_policy", "idle_secs=60 algo=lz4 period_ms=5"), 0);
    uzram_destroy(dev);
}

static void test_group_pages_message(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 1 << 20;
    cfg.group_pages = 3;
    struct uzram *dev = NULL;
    assert_int_equal(uzram_create(&cfg, &dev), -EINVAL);
    assert_null(dev);
    char m[256];
    snprintf(m, sizeof m, "%s", uzram_last_error());
    assert_non_null(strstr(m, "group_pages: '3'"));
    assert_non_null(strstr(m, "or auto"));
    assert_null(strstr(m, "UZRAM_GROUP_AUTO"));
    /* the attribute says the same, word for word: one parser */
    struct uzram *u = make_uninit("lz4");
    assert_int_equal(store(u, "group_pages", "3"), -EINVAL);
    assert_string_equal(uzram_last_error(), m);
    uzram_destroy(u);
    /* and so does uzram_config_set */
    assert_int_equal(uzram_config_set(&cfg, "group_pages", "3"), -EINVAL);
    assert_string_equal(uzram_last_error(), m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_settings_through_a_device),
        cmocka_unit_test(test_algorithm_params_primary),
        cmocka_unit_test(test_strict_numbers),
        cmocka_unit_test(test_group_pages_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
