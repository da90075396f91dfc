/*
 * test_conf.c - the /etc/uzram.conf reader (tools/conf.c): size
 * expressions against values worked out by hand, every key of a full
 * section, the defaults zram-generator gives, and each kind of bad input
 * refused with its line number.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

static double eval(const char *e, double ram)
{
    double v = -12345;
    char err[128];
    int rc = uz_conf_eval(e, ram, &v, err, sizeof err);
    if (rc < 0)
        fail_msg("'%s': %s", e, err);
    return v;
}

static void expressions(void **state)
{
    (void)state;
    assert_true(eval("512", 8192) == 512);
    assert_true(eval("ram / 2", 8192) == 4096);
    assert_true(eval("min(ram / 2, 4096)", 16384) == 4096);
    assert_true(eval("min(ram / 2, 4096)", 2048) == 1024);
    assert_true(eval("max(ram / 8, 256, 100)", 1024) == 256);
    assert_true(eval("ram * 0.25 + 2 * (3 - 1)", 1000) == 254);
    assert_true(eval("-2 + 10 % 4", 0) == 0);
    assert_true(eval("  ram  ", 77.5) == 77.5);
    static const char *bad[] = {"", "ram /", "2 +* 3", "min(1, 2", "foo(1)", "ram / 0",
                                "(1", "1 2", "max", "ram % 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v;
        char err[128] = "";
        assert_int_equal(uz_conf_eval(bad[i], 1024, &v, err, sizeof err), -22);
        assert_true(err[0] != 0);
    }
}

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof path, "/tmp/uzram-test-conf.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void full_section(void **state)
{
    (void)state;
    write_file("# a comment\n"
               "; another\n"
               "\n"
               "[swap]\n"
               "zram-size = min(ram / 2, 4096)\n"
               "compression-algorithm = lz4 zstd(level=9) deflate(level=6, window=15) (type=idle)\n"
               "swap-priority = 42\n"
               "writeback-device = /dev/disk/by-partlabel/wb\n"
               "zram-resident-limit = ram / 8\n"
               "host-memory-limit = 65536\n"
               "allocator = zsmalloc\n"
               "group-pages = 4\n"
               "recompress-policy = idle_secs=60 algo=zstd\n"
               "writeback-policy = idle_secs=600\n"
               "auto-compact = 1.100\n"
               "\n"
               "[tmp]\n"
               "zram-size = 1024\n"
               "mount-point = /tmp\n"
               "options = discard,noatime\n"
               "[scratch]\n"
               "fs-type = ext4\n"
               "mount-point = /var/scratch\n");
    struct uz_conf c;
    char err[256] = "";
    int rc = uz_conf_load(path, &c, err, sizeof err);
    unlink(path);
    if (rc < 0)
        fail_msg("%s", err);
    assert_int_equal(c.ndev, 3);
    const struct uz_conf_dev *s = uz_conf_find(&c, "swap");
    assert_non_null(s);
    assert_string_equal(s->size, "min(ram / 2, 4096)");
    assert_int_equal(s->nalgo, 3);
    assert_string_equal(s->algo[0].name, "lz4");
    assert_string_equal(s->algo[0].params, "");
    assert_string_equal(s->algo[1].name, "zstd");
    assert_string_equal(s->algo[1].params, "level=9");
    assert_string_equal(s->algo[2].name, "deflate");
    assert_string_equal(s->algo[2].params, "level=6  window=15");
    assert_string_equal(s->recompress_args, "type=idle");
    assert_int_equal(s->swap_priority, 42);
    assert_string_equal(s->writeback_device, "/dev/disk/by-partlabel/wb");
    assert_string_equal(s->resident_limit, "ram / 8");
    assert_int_equal(s->host_memory_limit, 65536);
    assert_string_equal(s->allocator, "zsmalloc");
    assert_int_equal(s->group_pages, 4);
    assert_string_equal(s->recompress_policy, "idle_secs=60 algo=zstd");
    assert_string_equal(s->writeback_policy, "idle_secs=600");
    assert_string_equal(s->auto_compact, "1.100");
    assert_string_equal(s->fs_type, "swap");
    assert_string_equal(s->options, "discard");

    const struct uz_conf_dev *t = uz_conf_find(&c, "tmp");
    assert_non_null(t);
    assert_string_equal(t->fs_type, "ext2");     /* zram-generator's default with a mount-point */
    assert_string_equal(t->mount_point, "/tmp");
    assert_string_equal(t->options, "discard,noatime");
    assert_int_equal(t->swap_priority, 100);     /* the default */
    assert_int_equal(t->nalgo, 0);
    const struct uz_conf_dev *x = uz_conf_find(&c, "scratch");
    assert_non_null(x);
    assert_string_equal(x->fs_type, "ext4");
    assert_string_equal(x->size, "min(ram / 2, 4096)");
    assert_null(uz_conf_find(&c, "zram0"));
    uz_conf_free(&c);
}

static void missing_file_is_empty(void **state)
{
    (void)state;
    struct uz_conf c;
    char err[128];
    assert_int_equal(uz_conf_load("/nonexistent/uzram.conf", &c, err, sizeof err), 0);
    assert_int_equal(c.ndev, 0);
    uz_conf_free(&c);
}

/* Each bad file is refused, naming its line. */
static void bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *text, *line, *what;
    } cases[] = {
        {"zram-size = 512\n", ":1:", "outside"},
        {"[a]\nzram-size = ram /\n", ":2:", "zram-size"},
        {"[a]\nno equals sign\n", ":2:", "key = value"},
        {"[a]\n\nswap-priority = -1\n", ":3:", "swap-priority"},
        {"[a]\nswap-priority = 40000\n", ":2:", "swap-priority"},
        {"[a]\nhost-memory-limit = lots\n", ":2:", "host-memory-limit"},
        {"[a]\nmount-point = tmp\n", ":2:", "absolute"},
        {"[a]\nwriteback-device = sda\n", ":2:", "absolute"},
        {"[a]\ncompression-algorithm = zstd(level=3\n", ":2:", "')'"},
        {"[a]\ncompression-algorithm = (type=idle)\n", ":2:", "without an algorithm"},
        {"[a]\ncompression-algorithm = a b c d e\n", ":2:", "at most"},
        {"[a]\ncompression-algorithm =\n", ":2:", "no algorithm"},
        {"[a]\ngroup-pages = 3\n", ":2:", "group-pages"},
        {"[a]\nzram-fraction = 0.5\n", ":2:", "unknown key"},
        {"[a/b]\n", ":1:", "device name"},
        {"[]\n", ":1:", "section"},
        {"[a\n", ":1:", "section"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(cases[i].text);
        struct uz_conf c;
        char err[256] = "";
        int rc = uz_conf_load(path, &c, err, sizeof err);
        unlink(path);
        if (rc != -22 || !strstr(err, cases[i].line) || !strstr(err, cases[i].what))
            fail_msg("case %zu (%s): rc %d, '%s'", i, cases[i].text, rc, err);
        assert_int_equal(c.ndev, 0);
    }
}

/* The key list uzram-generator --help prints (and the manual is checked
 * against) is the parser's: each listed key is known, and an unlisted one
 * is not. */
static void key_list_is_the_parsers(void **state)
{
    (void)state;
    int n = 0;
    for (; uz_conf_keys[n]; n++) {
        char text[128];
        snprintf(text, sizeof text, "[a]\n%s = 1x\n", uz_conf_keys[n]);
        write_file(text);
        struct uz_conf c;
        char err[256] = "";
        uz_conf_load(path, &c, err, sizeof err);
        unlink(path);
        if (strstr(err, "unknown key"))
            fail_msg("listed key %s is unknown to the parser", uz_conf_keys[n]);
        uz_conf_free(&c);
    }
    assert_int_equal(n, 14);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expressions),
        cmocka_unit_test(full_section),
        cmocka_unit_test(missing_file_is_empty),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(key_list_is_the_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
