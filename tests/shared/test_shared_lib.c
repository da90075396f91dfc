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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
