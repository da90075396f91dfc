/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_conf.c - the /etc/uzram.conf reader (tools/conf.c): size
 * expressions against values worked out by hand, every key of a full
 * section, the defaults zram-generator gives, each kind of bad input
 * refused with its line number and rejecting no more than it must (its
 * section, the keys under a bad header, its line), hostile section names,
 * 1 MiB lines, 10,000 sections, and up_check_section (tools/up.c), the check
 * `uzram up` and uzram-generator share, on every value it must refuse.
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
#include "up.h"

static double eval(const char *e, double ram)
{
    double v = -12345;
    char err[128];
    int rc = conf_eval(e, ram, &v, err, sizeof err);
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
        assert_int_equal(conf_eval(bad[i], 1024, &v, err, sizeof err), -22);
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
               "io-uring = off\n"
               "\n"
               "[tmp]\n"
               "zram-size = 1024\n"
               "mount-point = /tmp\n"
               "options = discard,noatime\n"
               "[scratch]\n"
               "fs-type = ext4\n"
               "mount-point = /var/scratch\n");
    struct conf c;
    char err[256] = "";
    int rc = conf_load(path, &c, err, sizeof err);
    unlink(path);
    if (rc < 0)
        fail_msg("%s", err);
    assert_int_equal(c.ndev, 3);
    const struct conf_dev *s = conf_find(&c, "swap");
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
    assert_string_equal(s->io_uring, "off");
    assert_string_equal(s->fs_type, "swap");
    assert_string_equal(s->options, "discard");

    const struct conf_dev *t = conf_find(&c, "tmp");
    assert_non_null(t);
    assert_string_equal(t->fs_type, "ext2");     /* zram-generator's default with a mount-point */
    assert_string_equal(t->mount_point, "/tmp");
    assert_string_equal(t->options, "discard,noatime");
    assert_int_equal(t->swap_priority, 100);     /* the default */
    assert_int_equal(t->nalgo, 0);
    const struct conf_dev *x = conf_find(&c, "scratch");
    assert_non_null(x);
    assert_string_equal(x->fs_type, "ext4");
    assert_string_equal(x->size, "min(ram / 2, 4096)");
    assert_null(conf_find(&c, "zram0"));
    conf_free(&c);
}

static void missing_file_is_empty(void **state)
{
    (void)state;
    struct conf c;
    char err[128];
    assert_int_equal(conf_load("/nonexistent/uzram.conf", &c, err, sizeof err), 0);
    assert_int_equal(c.ndev, 0);
    conf_free(&c);
}

/* Each bad line is refused, naming its line, and rejects its section:
 * the section is there, marked, with the error. */
static void bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *text, *line, *what;
        bool section;   /* the error rejects [a] */
    } cases[] = {
        {"zram-size = 512\n", ":1:", "outside", false},
        {"[a]\nzram-size = ram /\n", ":2:", "zram-size", true},
        {"[a]\nno equals sign\n", ":2:", "key = value", true},
        {"[a]\n\nswap-priority = -1\n", ":3:", "swap-priority", true},
        {"[a]\nswap-priority = 40000\n", ":2:", "swap-priority", true},
        {"[a]\nhost-memory-limit = lots\n", ":2:", "host-memory-limit", true},
        {"[a]\nmount-point = tmp\n", ":2:", "absolute", true},
        {"[a]\nwriteback-device = sda\n", ":2:", "absolute", true},
        {"[a]\ncompression-algorithm = zstd(level=3\n", ":2:", "')'", true},
        {"[a]\ncompression-algorithm = (type=idle)\n", ":2:", "without an algorithm", true},
        {"[a]\ncompression-algorithm = a b c d e\n", ":2:", "at most", true},
        {"[a]\ncompression-algorithm =\n", ":2:", "no algorithm", true},
        {"[a]\ngroup-pages = 3\n", ":2:", "group-pages", true},
        {"[a]\nio-uring = yes\n", ":2:", "io-uring: give auto, on or off", true},
        {"[a]\nzram-fraction = 0.5\n", ":2:", "unknown key", true},
        {"[a/b]\n", ":1:", "device name", false},
        {"[]\n", ":1:", "section", false},
        {"[a\n", ":1:", "section", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(cases[i].text);
        struct conf c;
        char err[256] = "";
        int rc = conf_load(path, &c, err, sizeof err);
        unlink(path);
        if (rc != -22 || !strstr(err, cases[i].line) || !strstr(err, cases[i].what))
            fail_msg("case %zu (%s): rc %d, '%s'", i, cases[i].text, rc, err);
        assert_int_equal(c.nerrors, 1);
        assert_string_equal(c.errors[0], err);
        const struct conf_dev *a = conf_find(&c, "a");
        if (cases[i].section) {
            assert_non_null(a);
            assert_int_equal(a->nerrors, 1);
            assert_string_equal(a->error, err);
            assert_non_null(strstr(err, "[a]"));
        } else {
            assert_null(a);
        }
        conf_free(&c);
    }
}

/* Write text, then n copies of byte ch and a newline, then tail. */
static void write_long(const char *text, char ch, size_t n, const char *tail)
{
    snprintf(path, sizeof path, "/tmp/uzram-test-conf.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    for (size_t i = 0; i < n; i++)
        fputc(ch, f);
    fputc('\n', f);
    fputs(tail, f);
    assert_int_equal(fclose(f), 0);
}

/* A bad line rejects what it must and no more: its section, the keys under
 * a bad header, or itself; comments are skipped however long. */
static void rejects_only_what_it_must(void **state)
{
    (void)state;
    static const char text[] =
        "[g1]\n"
        "zram-size = 100\n"
        "#.............................................................................\n"
        "[a]\n"
        "zram-size = 10\n"
        "auto-compact = 1.2\n"
        "no-equals\n"                         /* 7: rejects [a] */
        "[b]\n"
        "zram-size = 1\0 2\n"                 /* 9: a NUL byte rejects [b] */
        "[g1\n"                               /* 10: a bad header */
        "zram-size = 5\n"                     /* ... its keys go nowhere */
        "[g2]\n"
        "swap-priority = 7\n"
        "[-rf]\n"                             /* 14: not a device */
        "zram-size = 6\n"
        "[g2]\n"
        "zram-size = 200\n";
    snprintf(path, sizeof path, "/tmp/uzram-test-conf.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct conf c;
    char err[256] = "";
    int rc = conf_load(path, &c, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, -22);
    assert_int_equal(c.nerrors, 4);
    assert_non_null(strstr(c.errors[0], ":7: [a] expected key = value"));
    assert_non_null(strstr(c.errors[1], ":9: [b] NUL byte"));
    assert_non_null(strstr(c.errors[2], ":10: bad section header '[g1'"));
    assert_non_null(strstr(c.errors[3], ":14: '-rf' cannot be a device name: a leading '-'"));
    assert_int_equal(c.ndev, 4);   /* g1 a b g2 */
    const struct conf_dev *g1 = conf_find(&c, "g1"), *g2 = conf_find(&c, "g2");
    assert_non_null(g1);
    assert_non_null(g2);
    assert_int_equal(g1->nerrors, 0);
    assert_int_equal(g2->nerrors, 0);
    assert_string_equal(g1->size, "100");   /* not the 5 under the bad header */
    assert_string_equal(g2->size, "200");   /* the 6 under [-rf] went nowhere either */
    assert_int_equal(g2->swap_priority, 7);
    assert_int_equal(conf_key_line(g2, "zram-size"), 17);
    assert_int_equal(conf_key_line(g2, "swap-priority"), 13);
    assert_int_equal(conf_key_line(g2, "mount-point"), 0);
    assert_int_equal(conf_find(&c, "a")->nerrors, 1);
    assert_int_equal(conf_find(&c, "b")->nerrors, 1);
    assert_null(conf_find(&c, "-rf"));
    conf_free(&c);
}

/* A 1 MiB line: as a comment it is skipped, as a key line it rejects its
 * section only, as a header the keys under it; nothing is cut into a
 * second line. */
static void long_lines(void **state)
{
    (void)state;
    const size_t mib = 1 << 20;
    struct conf c;
    char err[256];

    write_long("[a]\nzram-size = 64\n#", 'x', mib, "swap-priority = 5\n");
    assert_int_equal(conf_load(path, &c, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(c.ndev, 1);
    assert_int_equal(c.dev[0].swap_priority, 5);
    conf_free(&c);

    write_long("[a]\nzram-size = 64\n   ;", ' ', UZ_CONF_LINE_MAX * 3, "[b]\n");
    assert_int_equal(conf_load(path, &c, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(c.ndev, 2);
    conf_free(&c);

    write_long("[a]\nzram-size = ", '1', mib, "[b]\nzram-size = 64\n");
    assert_int_equal(conf_load(path, &c, err, sizeof err), -22);
    unlink(path);
    assert_non_null(strstr(err, ":2: [a] line too long (1048588 bytes, at most 1023)"));
    assert_int_equal(c.nerrors, 1);
    assert_int_equal(c.ndev, 2);
    assert_int_equal(conf_find(&c, "a")->nerrors, 1);
    assert_int_equal(conf_find(&c, "b")->nerrors, 0);
    assert_string_equal(conf_find(&c, "b")->size, "64");
    conf_free(&c);

    /* exactly the limit is a line (trailing blanks count); one more is
     * too long */
    size_t fill = UZ_CONF_LINE_MAX - (sizeof "zram-size = 64" - 1);
    write_long("[a]\nzram-size = 64", ' ', fill, "");
    assert_int_equal(conf_load(path, &c, err, sizeof err), 0);
    unlink(path);
    assert_string_equal(c.dev[0].size, "64");
    conf_free(&c);
    write_long("[a]\nzram-size = 64", ' ', fill + 1, "");
    assert_int_equal(conf_load(path, &c, err, sizeof err), -22);
    unlink(path);
    assert_non_null(strstr(err, ":2: [a] line too long (1024 bytes"));
    conf_free(&c);

    write_long("[", 'n', mib, "zram-size = 5\n[b]\n");
    assert_int_equal(conf_load(path, &c, err, sizeof err), -22);
    unlink(path);
    assert_non_null(strstr(err, ":1: line too long"));
    assert_non_null(strstr(err, "section header"));
    assert_int_equal(c.ndev, 1);
    assert_string_equal(c.dev[0].name, "b");
    assert_string_equal(c.dev[0].size, "min(ram / 2, 4096)");
    conf_free(&c);
}

/* Names that cannot be a unit, a directory or a command-line word are
 * refused with their line; no section is made for them. */
static void hostile_names(void **state)
{
    (void)state;
    static const char *names[] = {
        "/", "a/b", "..", ".", ".hidden", "-rf", "--help", "-", "a b", "\"q\"", "'q'",
        "$HOME", "a$b", "%n", "a%i", "a\\b", "a;b", "a\tb", "\xc3\xa9t\xc3\xa9",
        "x234567890123456789012345678901234567890123456789012345678901234",   /* 64 */
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "[ok]\n[%s]\nzram-size = 64\n", names[i]);
        write_file(text);
        struct conf c;
        char err[256] = "";
        int rc = conf_load(path, &c, err, sizeof err);
        unlink(path);
        if (rc != -22 || !strstr(err, ":2: ") || !strstr(err, "cannot be a device name"))
            fail_msg("name '%s': rc %d, '%s'", names[i], rc, err);
        assert_int_equal(c.ndev, 1);
        assert_string_equal(c.dev[0].name, "ok");
        assert_string_equal(c.dev[0].size, "min(ram / 2, 4096)");
        conf_free(&c);
    }
    char why[160];
    static const char *good[] = {"swap", "a.b", "a-", "x:y_z", "a..b", "Z9",
                                 "x23456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!conf_name_ok(good[i], why, sizeof why))
            fail_msg("'%s' refused: %s", good[i], why);
}

/* 10,000 sections: every one read, the last found, no error. */
static void many_sections(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/uzram-test-conf.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 10000; i++)
        fprintf(f, "[s%d]\nzram-size = %d\n", i, i + 1);
    fprintf(f, "[s5]\nswap-priority = 9\n");   /* a section again adds up */
    assert_int_equal(fclose(f), 0);
    struct conf c;
    char err[256];
    assert_int_equal(conf_load(path, &c, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(c.ndev, 10000);
    assert_string_equal(conf_find(&c, "s9999")->size, "10000");
    assert_int_equal(conf_find(&c, "s5")->swap_priority, 9);
    assert_string_equal(conf_find(&c, "s5")->size, "6");
    conf_free(&c);
}

/* Many bad lines: every one counted, the first UZ_CONF_MAX_MESSAGES kept. */
static void many_errors(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/uzram-test-conf.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 500; i++)
        fprintf(f, "[b%d]\nbogus-key = 1\n", i);
    assert_int_equal(fclose(f), 0);
    struct conf c;
    char err[256];
    assert_int_equal(conf_load(path, &c, err, sizeof err), -22);
    unlink(path);
    assert_int_equal(c.nerrors, 500);
    assert_int_equal(c.ndev, 500);
    assert_non_null(strstr(c.errors[UZ_CONF_MAX_MESSAGES - 1], "[b99] unknown key"));
    conf_free(&c);
}

/* up_check_section, the check `uzram up` and the generator share: each value
 * `up` refuses is refused, naming the key; a good section passes. */
static void up_check(void **state)
{
    (void)state;
    static const struct {
        const char *line, *key, *what;
    } cases[] = {
        {"zram-size = -5", "zram-size", "at least a page"},
        {"zram-size = 0", "zram-size", "at least a page"},
        {"zram-size = 0.001", "zram-size", "at least a page"},
        {"zram-size = 99999999999999999999999", "zram-size", "too large"},
        {"zram-size = ram*ram*ram*ram*ram", "zram-size", "too large"},
        {"zram-size = 16777216", "zram-size", "disksize"},           /* 16 TiB */
        {"zram-resident-limit = -1", "zram-resident-limit", "at least a page"},
        {"compression-algorithm = bogus", "compression-algorithm", "unknown algorithm 'bogus'"},
        {"compression-algorithm = lz4 bogus", "compression-algorithm", "unknown algorithm 'bogus'"},
        {"compression-algorithm = zstd(level=abc)", "compression-algorithm", "bad level 'abc'"},
        {"compression-algorithm = zstd(level=99)", "compression-algorithm", "level 99"},
        {"compression-algorithm = lz4 zstd(frobs=1)", "compression-algorithm", "unknown key"},
        {"compression-algorithm = lz4 zstd(dict=/nonexistent/d)", "compression-algorithm",
         "cannot open"},
        {"compression-algorithm = lz4(dict=/etc/passwd)", "compression-algorithm",
         "takes no dictionary"},
        {"compression-algorithm = lz4 zstd(level=9,dict=/etc/passwd)", "compression-algorithm",
         "not a zstd dictionary"},
        {"auto-compact = -1", "auto-compact", "not a number"},
        {"auto-compact = 0.5", "auto-compact", "below 1"},
        {"allocator = bogus", "allocator", "unknown allocator"},
        {"recompress-policy = idle_secs=1 priority=3", "recompress-policy", "secondary"},
        {"writeback-policy = idle_secs=x", "writeback-policy", "not a number"},
        {"fs-type = ext4", "fs-type", "needs a mount-point"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "[a]\nzram-size = 64\n%s\n", cases[i].line);
        write_file(text);
        struct conf c;
        char err[256], why[400] = "";
        int rc = conf_load(path, &c, err, sizeof err);
        unlink(path);
        if (rc < 0)
            fail_msg("'%s' refused by the reader: %s", cases[i].line, err);
        const char *key = "unset";
        rc = up_check_section(&c.dev[0], 8192, why, sizeof why, &key);
        if (rc != -1 || !key || strcmp(key, cases[i].key) || !strstr(why, cases[i].what))
            fail_msg("'%s': rc %d, key %s, '%s'", cases[i].line, rc, key ? key : "NULL", why);
        assert_int_equal(conf_key_line(&c.dev[0], key), 3);
        conf_free(&c);
    }
    /* good ones, the same keys */
    write_file("[a]\n"
               "zram-size = min(ram / 2, 4096)\n"
               "zram-resident-limit = ram / 8\n"
               "compression-algorithm = lz4 zstd(level=9) deflate(level=6) (type=idle)\n"
               "allocator = zsmalloc\n"
               "group-pages = 4\n"
               "recompress-policy = idle_secs=60 algo=zstd\n"
               "writeback-policy = idle_secs=600\n"
               "auto-compact = 1.100\n"
               "writeback-device = /nonexistent/yet\n"   /* judged by `up`, not the check */
               "[b]\n"
               "auto-compact = 0\n"
               "mount-point = /x\n");
    struct conf c;
    char err[256], why[400] = "";
    const char *key;
    assert_int_equal(conf_load(path, &c, err, sizeof err), 0);
    unlink(path);
    for (size_t i = 0; i < c.ndev; i++)
        if (up_check_section(&c.dev[i], 8192, why, sizeof why, &key) < 0)
            fail_msg("[%s] refused: %s", c.dev[i].name, why);
    conf_free(&c);
    /* a section the reader rejected fails the check with its error */
    write_file("[a]\nzram-size = 64\nnonsense\n");
    assert_int_equal(conf_load(path, &c, err, sizeof err), -22);
    unlink(path);
    assert_int_equal(up_check_section(&c.dev[0], 8192, why, sizeof why, &key), -1);
    assert_non_null(strstr(why, ":3: [a] expected key = value"));
    conf_free(&c);
}

/* The key list uzram-generator --help prints (and the manual is checked
 * against) is the parser's: each listed key is known, and an unlisted one
 * is not. */
static void key_list_is_the_parsers(void **state)
{
    (void)state;
    int n = 0;
    for (; conf_keys[n]; n++) {
        char text[128];
        snprintf(text, sizeof text, "[a]\n%s = 1x\n", conf_keys[n]);
        write_file(text);
        struct conf c;
        char err[256] = "";
        conf_load(path, &c, err, sizeof err);
        unlink(path);
        if (strstr(err, "unknown key"))
            fail_msg("listed key %s is unknown to the parser", conf_keys[n]);
        conf_free(&c);
    }
    assert_int_equal(n, 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expressions),
        cmocka_unit_test(full_section),
        cmocka_unit_test(missing_file_is_empty),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(rejects_only_what_it_must),
        cmocka_unit_test(long_lines),
        cmocka_unit_test(hostile_names),
        cmocka_unit_test(many_sections),
        cmocka_unit_test(many_errors),
        cmocka_unit_test(up_check),
        cmocka_unit_test(key_list_is_the_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
