/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_shared_lib.c - the public API through build/libuzram.so, as a user
 * of the library links it: only what include/uzram.h declares must be
 * exported, and it must work.  (Every other test links the static archive,
 * which reaches the internal symbols too, so it cannot catch a library
 * that exports nothing.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include <uzram.h>

static void test_roundtrip(void **state)
{
    (void)state;
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = 1 << 20;
    cfg.algorithm = "zstd";
    struct uzram *dev;
    assert_int_equal(uzram_create(&cfg, &dev), 0);
    char page[4096], back[4096];
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (char)("shared library "[i % 15] + (i / 512));
    assert_int_equal(uzram_write(dev, page, sizeof page, 8192), 0);
    assert_int_equal(uzram_read(dev, back, sizeof back, 8192), 0);
    assert_memory_equal(page, back, sizeof page);
    char mm[256];
    assert_true(uzram_attr_show(dev, "mm_stat", mm, sizeof mm) > 0);
    assert_int_equal(uzram_attr_store(dev, "disksize", "2M", 2), -EBUSY);
    assert_true(strlen(uzram_last_error()) > 0);
    uzram_destroy(dev);
}

/* The version the header says is the library's. */
static void test_version(void **state)
{
    (void)state;
    assert_int_equal(uzram_version_number(), UZRAM_VERSION_NUMBER);
    assert_string_equal(uzram_version(), UZRAM_VERSION_STRING);
    assert_int_equal(UZRAM_VERSION_NUMBER,
                     UZRAM_VERSION_MAJOR * 10000 + UZRAM_VERSION_MINOR * 100 + UZRAM_VERSION_RELEASE);
}

/* A program built against an older, shorter struct uzram_config and
 * struct uzram_stats: the library reads and writes only the caller's
 * bytes, and the fields the old program does not know keep their
 * defaults.  The old structs are the current ones cut before
 * recomp_algorithm (config) and before bd_count (stats). */
static void test_older_structs(void **state)
{
    (void)state;
    size_t old_cfg = offsetof(struct uzram_config, recomp_algorithm);
    unsigned char buf[sizeof(struct uzram_config) + 64];
    memset(buf, 0xa5, sizeof buf);   /* what an old program's stack may hold */
    struct uzram_config *cfg = (struct uzram_config *)buf;
    uzram_config_init_size(cfg, old_cfg);
    for (size_t i = old_cfg; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xa5);   /* init wrote nothing past the old end */
    assert_int_equal(cfg->size, old_cfg);
    cfg->disksize = 1 << 20;
    struct uzram *dev;
    assert_int_equal(uzram_create(cfg, &dev), 0);   /* the 0xa5 tail is never read */
    char page[4096];
    memset(page, 7, sizeof page);
    assert_int_equal(uzram_write(dev, page, sizeof page, 0), 0);

    size_t old_stats = offsetof(struct uzram_stats, bd_count);
    unsigned char sbuf[sizeof(struct uzram_stats) + 64];
    memset(sbuf, 0x5a, sizeof sbuf);
    uzram_get_stats_size(dev, (struct uzram_stats *)sbuf, old_stats);
    for (size_t i = old_stats; i < sizeof sbuf; i++)
        assert_int_equal(sbuf[i], 0x5a);
    assert_int_equal(((struct uzram_stats *)sbuf)->same_pages, 1);
    uzram_destroy(dev);

    /* a config from a newer header (larger) or not from config_init */
    struct uzram_config c;
    uzram_config_init(&c);
    c.size = sizeof c + 8;
    assert_int_equal(uzram_create(&c, &dev), -EINVAL);
    c.size = 0;
    assert_int_equal(uzram_create(&c, &dev), -EINVAL);
}

/* Internal symbols stay inside the library. */
static void test_only_the_api_is_exported(void **state)
{
    (void)state;
    void *self = dlopen(NULL, RTLD_NOW);
    assert_non_null(self);
    assert_non_null(dlsym(self, "uzram_create"));
    assert_null(dlsym(self, "uz_dev_init"));
    assert_null(dlsym(self, "uz_malloc"));
    dlclose(self);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_only_the_api_is_exported),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_older_structs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
