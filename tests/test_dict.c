/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dict.c - zstd dictionaries (algorithm_params dict=PATH, codec.c,
 * streams.c) and their trainer (train_dict, train.c), with the real
 * libzstd on real pages (the corpus's sqlite heap): the codec's
 * dictionary ID check, a device whose primary or secondary compresses
 * with a dictionary reading every page back after settling, the -EBUSY
 * that keeps a dictionary while pages use it, and every bad input
 * (missing, unreadable, empty, a directory, not a dictionary, a codec
 * that takes none), each leaving what is stored as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zdict.h>

#include "codec.h"
#include "streams.h"
#include "uzram.h"
#include "lib/test_files.h"
#include "lib/test_device.h"

#define PAGE 4096u
#define NPAGES 2048u

static uint8_t *pages;          /* NPAGES of the corpus */
static char dir[64];            /* a scratch directory */
static char dict_a[128], dict_b[128], junk[128], empty[128];

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A dictionary trained with libzstd itself on pages [from, from + n). */
static void train(const char *path, uint64_t from, uint64_t n)
{
    static uint8_t d[112 << 10];
    size_t *sz = malloc(n * sizeof *sz);
    for (uint64_t i = 0; i < n; i++)
        sz[i] = PAGE;
    size_t len = ZDICT_trainFromBuffer(d, sizeof d, pages + from * PAGE, sz, (unsigned)n);
    free(sz);
    assert_false(ZDICT_isError(len));
    write_file(path, d, len);
}

static int setup(void **state)
{
    (void)state;
    uint64_t got;
    pages = test_corpus_load("sqlite.pages.zst", NPAGES, &got);
    if (!pages || got < NPAGES) {
        fprintf(stderr, "test_dict: needs %u pages of sqlite.pages.zst in $UZ_CORPUS\n", NPAGES);
        return -1;
    }
    snprintf(dir, sizeof dir, "/tmp/uzram-dict-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dict_a, sizeof dict_a, "%s/a.dict", dir);
    snprintf(dict_b, sizeof dict_b, "%s/b.dict", dir);
    snprintf(junk, sizeof junk, "%s/junk", dir);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    train(dict_a, 0, 1024);
    train(dict_b, 1024, 1024);
    write_file(junk, pages + 7 * PAGE, 8192);    /* content, not a dictionary */
    write_file(empty, "", 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return -1;
    free(pages);
    return 0;
}

static uint8_t *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[1 << 20];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* The codec: a dictionary shrinks pages like the ones it was trained on,
 * round-trips, and a frame decodes only in a context of its dictionary's
 * ID (another dictionary, or none, is refused; so is a dictionary frame
 * in a context without one). */
static void test_codec_dict_id(void **state)
{
    (void)state;
    const struct uz_codec *z = uz_codec_find("zstd");
    assert_non_null(z->dict_check);
    assert_null(uz_codec_find("lz4")->dict_check);
    size_t la, lb;
    uint8_t *a = malloc(1 << 20), *b = malloc(1 << 20);
    const uint8_t *fa = load(dict_a, &la);
    memcpy(a, fa, la);
    const uint8_t *fb = load(dict_b, &lb);
    memcpy(b, fb, lb);
    uint32_t ida = 0, idb = 0;
    const char *why = NULL;
    assert_int_equal(z->dict_check(a, la, &ida, &why), 0);
    assert_int_equal(z->dict_check(b, lb, &idb, &why), 0);
    assert_int_not_equal(ida, 0);
    assert_int_not_equal(ida, idb);
    assert_int_equal(z->dict_check(pages, 8192, &ida, &why), -1);
    assert_non_null(strstr(why, "not a zstd dictionary"));
    /* the magic and an ID, then garbage: the tables do not load */
    uint8_t bad[4096];
    memcpy(bad, a, 8);
    memset(bad + 8, 0xff, sizeof bad - 8);
    assert_int_equal(z->dict_check(bad, sizeof bad, &ida, &why), -1);
    assert_int_equal(z->dict_check(a, la, &ida, &why), 0);

    void *da = z->dict_new(a, la, 6), *db = z->dict_new(b, lb, 6);
    assert_non_null(da);
    assert_non_null(db);
    free(a);    /* the digested forms hold copies */
    free(b);
    void *ca = z->ctx_new_dict(6, 0, da), *cb = z->ctx_new_dict(6, 8 * PAGE, db);
    void *c0 = z->ctx_new(6);
    assert_non_null(ca);
    assert_non_null(cb);
    assert_non_null(c0);
    uint8_t out[UZ_CODEC_PAGE_BOUND], back[PAGE];
    size_t with = 0, without = 0;
    for (unsigned p = 0; p < 512; p++) {
        const uint8_t *pg = pages + (uint64_t)p * PAGE;
        size_t n0 = z->compress(c0, pg, PAGE, out, sizeof out);
        size_t n = z->compress(ca, pg, PAGE, out, sizeof out);
        if (n == 0 || n0 == 0)
            continue;   /* a zero page: zstd still makes a frame; an odd one may not */
        with += n;
        without += n0;
        assert_int_equal(z->decompress(ca, out, n, back, PAGE), 0);
        assert_memory_equal(back, pg, PAGE);
        assert_int_equal(z->decompress(cb, out, n, back, PAGE), -1);   /* another ID */
        assert_int_equal(z->decompress(c0, out, n, back, PAGE), -1);   /* no dictionary */
        n0 = z->compress(c0, pg, PAGE, out, sizeof out);
        assert_int_equal(z->decompress(ca, out, n0, back, PAGE), -1);  /* a frame of none */
        assert_int_equal(z->decompress(c0, out, n0, back, PAGE), 0);
    }
    /* trained on these very pages: it must pay here (docs/dictionaries.md) */
    assert_true(with < without * 95 / 100);
    z->ctx_free(ca);
    z->ctx_free(cb);
    z->ctx_free(c0);
    z->dict_free(da);
    z->dict_free(db);
}

static struct uzram *make(const char *algo, const char *params)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.algorithm = algo;
    cfg.recompress_policy = "off";   /* settled here when asked */
    struct uzram *d;
    assert_int_equal(uzram_create(&cfg, &d), 0);
    if (params && uzram_attr_store(d, "algorithm_params", params, strlen(params)) != 0)
        fail_msg("algorithm_params %s: %s", params, uzram_last_error());
    return d;
}

static void size_it(struct uzram *d)
{
    char sz[32];
    snprintf(sz, sizeof sz, "%u", NPAGES * PAGE);
    assert_int_equal(uzram_attr_store(d, "disksize", sz, strlen(sz)), 0);
}

/* Every page, whole and one in seven alone (test_device.h). */
static void verify(struct uzram *d)
{
    test_verify(d, pages, NPAGES, 1, 7);
}

/* A secondary with a dictionary: settling (groups and single pages)
 * and zram's per-page pass both use it, every page reads back, and the
 * dictionary cannot change (-EBUSY) until a reset has freed them. */
static void test_secondary_dict_settles(void **state)
{
    (void)state;
    char p[256];
    snprintf(p, sizeof p, "priority=1 dict=%s", dict_a);
    struct uzram *d = make(NULL, p);
    char buf[1024];
    assert_true(uzram_attr_show(d, "algorithm_params", buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "priority=1 algo=zstd level=6 dict="));
    assert_non_null(strstr(buf, dict_a));
    assert_non_null(strstr(buf, "dict_id="));
    size_it(d);
    assert_int_equal(uzram_write(d, pages, NPAGES * PAGE, 0), 0);
    /* half settled (regrouped), half page by page as zram does */
    assert_int_equal(uzram_attr_store(d, "idle", "all", 3), 0);
    assert_int_equal(uzram_attr_store(d, "recompress", "type=idle group=1 max_pages=1024", 32),
                     0);
    assert_true(debug_stat(d, "recompressed") > 0);
    assert_int_equal(uzram_attr_store(d, "recompress", "settle", 6), 0);
    assert_true(debug_stat(d, "settle_groups") > 0);
    verify(d);
    /* pages use it: it stays */
    snprintf(p, sizeof p, "priority=1 dict=%s", dict_b);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EBUSY);
    assert_non_null(strstr(uzram_last_error(), "reset it first"));
    assert_int_equal(uzram_attr_store(d, "algorithm_params", "priority=1 dict=", 16), -EBUSY);
    verify(d);
    /* after a reset it may change, and the device works with the new one */
    assert_int_equal(uzram_attr_store(d, "reset", "1", 1), 0);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), 0);
    size_it(d);
    assert_int_equal(uzram_write(d, pages, NPAGES * PAGE, 0), 0);
    assert_int_equal(uzram_attr_store(d, "recompress", "settle", 6), 0);
    verify(d);
    uzram_destroy(d);
}

/* The primary with a dictionary, on the write path; groups too. */
static void test_primary_dict(void **state)
{
    (void)state;
    char p[256];
    snprintf(p, sizeof p, "algo=zstd level=3 dict=%s", dict_a);
    struct uzram *d = make("zstd", p);
    assert_int_equal(uzram_attr_store(d, "group_pages", "8", 1), 0);
    size_it(d);
    assert_int_equal(uzram_write(d, pages, NPAGES * PAGE, 0), 0);
    verify(d);
    /* single pages rewritten over groups: broken, stored with the dictionary */
    for (uint64_t q = 3; q < NPAGES; q += 64)
        assert_int_equal(uzram_write(d, pages + q * PAGE, PAGE, q * PAGE), 0);
    verify(d);
    uzram_destroy(d);
}

/* Every bad dict=: a clear error naming the file and why, the process
 * goes on, the setting is as it was, and what is stored reads back. */
static void test_bad_input(void **state)
{
    (void)state;
    char p[512];
    struct uzram *d = make(NULL, NULL);
    struct { const char *path; int err; const char *says; } bad[] = {
        {"/nonexistent/uzram.dict", -ENOENT, "cannot open"},
        {"/tmp", -EINVAL, "not a regular file"},
        {junk, -EINVAL, "not a zstd dictionary"},
        {empty, -EINVAL, "empty file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(p, sizeof p, "priority=1 dict=%s", bad[i].path);
        assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), bad[i].err);
        if (!strstr(uzram_last_error(), bad[i].says) || !strstr(uzram_last_error(), bad[i].path))
            fail_msg("%s: '%s'", bad[i].path, uzram_last_error());
    }
    /* a FIFO with no writer: refused at once, not waited on */
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(p, sizeof p, "priority=1 dict=%s", fifo);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EINVAL);
    assert_non_null(strstr(uzram_last_error(), "not a regular file"));
    /* unreadable: not as root, which reads any file */
    if (geteuid() != 0) {
        char noread[160];
        snprintf(noread, sizeof noread, "%s/noread", dir);
        write_file(noread, "x", 1);
        chmod(noread, 0);
        snprintf(p, sizeof p, "priority=1 dict=%s", noread);
        assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EACCES);
    }
    /* codecs that take none: the primary lz4, a deflate secondary */
    snprintf(p, sizeof p, "dict=%s", dict_a);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EINVAL);
    assert_non_null(strstr(uzram_last_error(), "lz4 takes no dictionary"));
    assert_int_equal(uzram_attr_store(d, "recomp_algorithm", "algo=deflate priority=2", 23), 0);
    snprintf(p, sizeof p, "algo=deflate dict=%s", dict_a);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EINVAL);
    assert_non_null(strstr(uzram_last_error(), "deflate takes no dictionary"));
    snprintf(p, sizeof p, "priority=3 dict=%s", dict_a);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EINVAL);
    /* none of it took */
    char buf[1024];
    assert_true(uzram_attr_show(d, "algorithm_params", buf, sizeof buf) > 0);
    assert_null(strstr(buf, "dict="));
    /* a good one, then a bad one over it: the good one stays */
    snprintf(p, sizeof p, "priority=1 dict=%s", dict_a);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), 0);
    snprintf(p, sizeof p, "priority=1 dict=%s", junk);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EINVAL);
    assert_true(uzram_attr_show(d, "algorithm_params", buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, dict_a));
    /* and the device works with it, with data already stored kept */
    size_it(d);
    assert_int_equal(uzram_write(d, pages, NPAGES * PAGE, 0), 0);
    assert_int_equal(uzram_attr_store(d, "recompress", "settle", 6), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(p, sizeof p, "priority=1 dict=%s", bad[i].path);
        assert_int_equal(uzram_attr_store(d, "algorithm_params", p, strlen(p)), -EBUSY);
    }
    verify(d);
    /* the file may go: the device holds its own copy */
    char moved[160];
    snprintf(moved, sizeof moved, "%s.moved", dict_a);
    assert_int_equal(rename(dict_a, moved), 0);
    verify(d);
    assert_int_equal(uzram_attr_store(d, "reset", "1", 1), 0);
    size_it(d);    /* re-init from the kept copy */
    assert_int_equal(uzram_write(d, pages, NPAGES * PAGE, 0), 0);
    assert_int_equal(uzram_attr_store(d, "recompress", "settle", 6), 0);
    verify(d);
    assert_int_equal(rename(moved, dict_a), 0);
    /* dict= with no path drops it (before init) */
    assert_int_equal(uzram_attr_store(d, "reset", "1", 1), 0);
    assert_int_equal(uzram_attr_store(d, "algorithm_params", "priority=1 dict=", 16), 0);
    assert_true(uzram_attr_show(d, "algorithm_params", buf, sizeof buf) > 0);
    assert_null(strstr(buf, "dict="));
    uzram_destroy(d);
}

/* train_dict: from the device's pages, idle first, without making them
 * hot; the file is a dictionary a device then takes; bad requests fail
 * clearly and change nothing. */
static void test_train(void **state)
{
    (void)state;
    struct uzram *d = make(NULL, NULL);
    char p[256], out[160];
    snprintf(out, sizeof out, "%s/trained.dict", dir);
    assert_int_equal(uzram_attr_store(d, "train_dict", out, strlen(out)), -EINVAL);  /* no init */
    size_it(d);
    assert_int_equal(uzram_attr_store(d, "train_dict", out, strlen(out)), -EINVAL);  /* empty */
    assert_non_null(strstr(uzram_last_error(), "no dictionary from 0"));
    assert_int_equal(uzram_write(d, pages, NPAGES * PAGE, 0), 0);
    assert_int_equal(uzram_attr_store(d, "idle", "all", 3), 0);
    assert_int_equal(uzram_attr_store(d, "train_dict", "rel.dict", 8), -EINVAL);
    assert_non_null(strstr(uzram_last_error(), "absolute"));
    snprintf(p, sizeof p, "%s size=1", out);
    assert_int_equal(uzram_attr_store(d, "train_dict", p, strlen(p)), -EINVAL);
    snprintf(p, sizeof p, "/nonexistent/dir/x.dict");
    assert_int_equal(uzram_attr_store(d, "train_dict", p, strlen(p)), -ENOENT);
    snprintf(p, sizeof p, "%s size=64K", out);
    assert_int_equal(uzram_attr_store(d, "train_dict", p, strlen(p)), 0);
    size_t len;
    uint8_t *dict = load(out, &len);
    assert_true(len > 1024 && len <= (64u << 10));
    assert_int_not_equal(ZDICT_getDictID(dict, len), 0);
    /* the pages stayed idle: type=idle still finds every one */
    assert_int_equal(uzram_attr_store(d, "recompress", "type=idle", 9), 0);
    assert_true(debug_stat(d, "settle_pages") > NPAGES / 2);
    verify(d);
    /* training on settled pages (groups of the secondary) works too */
    assert_int_equal(uzram_attr_store(d, "train_dict", out, strlen(out)), 0);
    uzram_destroy(d);
    /* a device takes it */
    snprintf(p, sizeof p, "priority=1 dict=%s", out);
    d = make(NULL, p);
    size_it(d);
    assert_int_equal(uzram_write(d, pages, NPAGES * PAGE, 0), 0);
    assert_int_equal(uzram_attr_store(d, "recompress", "settle", 6), 0);
    verify(d);
    uzram_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_dict_id),
        cmocka_unit_test(test_secondary_dict_settles),
        cmocka_unit_test(test_primary_dict),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_train),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
