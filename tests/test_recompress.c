/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_recompress.c - secondary algorithms, recompress, and the policies.
 *
 * recomp_algorithm (format, -EBUSY after init, up to three priorities),
 * algorithm_params for a secondary, recompress in every type with
 * threshold / max_pages / algo / priority, reads of recompressed pages
 * (each priority its own codec), the incompressible flag (set once, never
 * retried), writeback of recompressed pages (raw and compressed), and the
 * two policies running by themselves (recompress_policy, writeback_policy,
 * policy_stat), stopped by reset.  Every step checked against a model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "slot.h"
#include "device.h"
#include "page.h"
#include "uzram.h"
#include "lib/test_files.h"

#define PAGE 4096u
#define NPAGES 64u

static uint8_t model[NPAGES * PAGE];

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Pages lz4 leaves room on for zstd: words from a small vocabulary in a
 * random order; every 8th page random (incompressible). */
static void fill_dev(struct uzram *d)
{
    static const char *words[] = {"alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ",
                                  "eta ", "theta ", "iota ", "kappa ", "lambda ", "mu "};
    for (uint64_t p = 0; p < NPAGES; p++) {
        uint8_t *pg = model + p * PAGE;
        if (p % 8 == 7) {
            for (size_t i = 0; i < PAGE; i++)
                pg[i] = (uint8_t)mix(p * PAGE + i);
        } else {
            size_t o = 0;
            uint64_t x = p;
            while (o < PAGE) {
                x = mix(x);
                const char *w = words[x % 12];
                for (size_t k = 0; w[k] && o < PAGE; k++)
                    pg[o++] = (uint8_t)w[k];
            }
        }
    }
    assert_int_equal(uzram_write(d, model, sizeof model, 0), 0);
}

static void verify(struct uzram *d)
{
    static uint8_t buf[NPAGES * PAGE];
    assert_int_equal(uzram_read(d, buf, sizeof buf, 0), 0);
    for (uint64_t p = 0; p < NPAGES; p++)
        if (memcmp(buf + p * PAGE, model + p * PAGE, PAGE) != 0)
            fail_msg("page %llu differs", (unsigned long long)p);
    if (uzram_check(d) != 0)
        fail_msg("store check: %s", uzram_last_error());
}

static int st(struct uzram *d, const char *name, const char *v)
{
    return uzram_attr_store(d, name, v, strlen(v));
}

static uint32_t flags(struct uzram *d, uint64_t p)
{
    return uz_slot_peek(d->store, p) & SLOT_STATE;
}

static struct uzram *make(const char *secondaries[3], const char *bd)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = NPAGES * PAGE;
    cfg.streams = 2;
    cfg.backing_dev = bd;
    for (int i = 0; i < 3; i++)
        cfg.recomp_algorithm[i] = secondaries ? secondaries[i] : NULL;
    struct uzram *d;
    if (uzram_create(&cfg, &d) != 0)
        fail_msg("create: %s", uzram_last_error());
    return d;
}

static void test_recomp_algorithm_attr(void **state)
{
    (void)state;
    struct uzram *d = make(NULL, NULL);
    char buf[512];
    assert_int_equal(uzram_attr_show(d, "recomp_algorithm", buf, sizeof buf), 1);
    assert_int_equal(st(d, "recomp_algorithm", "algo=zstd"), -EBUSY);
    assert_int_equal(st(d, "recomp_algorithm", "algo=nope"), -EINVAL);
    assert_int_equal(st(d, "recompress", "type=idle"), -EINVAL);   /* no secondary */
    assert_int_equal(st(d, "reset", "1"), 0);
    assert_int_equal(st(d, "recomp_algorithm", "algo=zstd priority=4"), -EINVAL);
    assert_int_equal(st(d, "recomp_algorithm", "algo=zstd"), 0);
    assert_int_equal(st(d, "recomp_algorithm", "algo=deflate priority=3"), 0);
    uzram_attr_show(d, "recomp_algorithm", buf, sizeof buf);
    assert_non_null(strstr(buf, "#1: "));
    assert_non_null(strstr(buf, "[zstd]"));
    assert_non_null(strstr(buf, "#3: "));
    assert_non_null(strstr(buf, "[deflate]"));
    assert_null(strstr(buf, "#2: "));
    assert_int_equal(st(d, "algorithm_params", "priority=1 level=9"), 0);
    assert_int_equal(st(d, "algorithm_params", "priority=2 level=9"), -EINVAL);
    assert_int_equal(st(d, "algorithm_params", "algo=deflate level=6"), 0);
    assert_int_equal(st(d, "algorithm_params", "algo=zstd level=99"), -EINVAL);
    uzram_attr_show(d, "algorithm_params", buf, sizeof buf);
    assert_non_null(strstr(buf, "priority=1 algo=zstd level=9\n"));
    assert_non_null(strstr(buf, "priority=3 algo=deflate level=6\n"));
    assert_int_equal(st(d, "disksize", "256K"), 0);
    assert_int_equal(st(d, "recomp_algorithm", "algo=lz4hc priority=2"), -EBUSY);
    assert_int_equal(st(d, "algorithm_params", "priority=1 level=3"), -EBUSY);
    uzram_destroy(d);
}

static void test_recompress(void **state)
{
    (void)state;
    const char *sec[3] = {"lz4hc", "zstd", NULL};
    struct uzram *d = make(sec, NULL);
    fill_dev(d);
    struct uzram_stats s0, s1;
    uzram_get_stats(d, &s0);
    /* nothing idle: nothing done */
    assert_int_equal(st(d, "recompress", "type=idle"), 0);
    uzram_get_stats(d, &s1);
    assert_int_equal(s1.recompressed, 0);
    assert_int_equal(st(d, "recompress", "type=bogus"), -EINVAL);
    assert_int_equal(st(d, "recompress", "algo=deflate"), -EINVAL);
    assert_int_equal(st(d, "recompress", "priority=3"), -EINVAL);
    assert_int_equal(st(d, "recompress", "threshold=5000"), -EINVAL);
    /* max_pages bounds the work */
    assert_int_equal(st(d, "idle", "all"), 0);
    /* (group=1: zram's per-page pass alone; the default regroups idle runs
     * first, see test_group.c) */
    assert_int_equal(st(d, "recompress", "type=idle max_pages=3 priority=2 group=1"), 0);
    uzram_get_stats(d, &s1);
    assert_true(s1.recompressed >= 1 && s1.recompressed <= 3);
    verify(d);
    /* huge only: the random pages, which nothing shrinks -> incompressible */
    assert_int_equal(st(d, "recompress", "type=huge"), 0);
    uzram_get_stats(d, &s1);
    assert_int_equal(s1.recomp_incomp, NPAGES / 8);
    assert_true(flags(d, 7) & SLOT_INCOMP);
    assert_true(flags(d, 7) & SLOT_HUGE);
    /* ... and never tried again */
    assert_int_equal(st(d, "recompress", "type=huge"), 0);
    uzram_get_stats(d, &s1);
    assert_int_equal(s1.recomp_incomp, NPAGES / 8);
    /* everything else, by priority order; threshold skips small objects */
    assert_int_equal(st(d, "recompress", "threshold=4000"), 0);
    uzram_get_stats(d, &s1);
    assert_true(s1.recompressed <= 3);
    assert_int_equal(st(d, "recompress", ""), 0);
    uzram_get_stats(d, &s1);
    assert_true(s1.recompressed > NPAGES / 2);
    assert_true(s1.compr_data_size < s0.compr_data_size);
    unsigned prio_seen[4] = {0};
    for (uint64_t p = 0; p < NPAGES; p++)
        prio_seen[slot_prio(flags(d, p))]++;
    assert_true(prio_seen[1] + prio_seen[2] > NPAGES / 2);
    verify(d);
    /* an overwrite is a fresh page: primary algorithm, flags cleared */
    assert_int_equal(uzram_write(d, model + 7 * PAGE, PAGE, 7 * PAGE), 0);
    assert_int_equal(flags(d, 7) & (SLOT_INCOMP | SLOT_PRIO_MASK), 0);
    /* the incompressible writeback mode takes the flagged pages */
    verify(d);
    uzram_destroy(d);
}

static char bd_path[64];

static const char *make_backing(uint64_t nblocks)
{
    return test_backing_file(bd_path, sizeof bd_path, nblocks);
}

static void test_writeback_recompressed(void **state)
{
    (void)state;
    for (int comp = 0; comp < 2; comp++) {
        const char *sec[3] = {NULL, "zstd", "deflate"};
        struct uzram *d = make(sec, make_backing(NPAGES));
        assert_int_equal(st(d, "writeback_compressed", comp ? "1" : "0"), 0);
        fill_dev(d);
        assert_int_equal(st(d, "recompress", ""), 0);
        assert_int_equal(st(d, "writeback", "incompressible"), 0);
        struct uzram_stats s;
        uzram_get_stats(d, &s);
        assert_int_equal(s.bd_count, NPAGES / 8);
        assert_int_equal(st(d, "writeback", "page_indexes=0-63"), 0);
        uzram_get_stats(d, &s);
        assert_int_equal(s.bd_count, NPAGES);
        assert_int_equal(s.mem_used_total, 0);
        verify(d);
        uzram_destroy(d);
        unlink(bd_path);
    }
}

static void wait_for(struct uzram *d, bool wb, uint64_t want)
{
    for (int i = 0; i < 500; i++) {
        struct uzram_stats s;
        uzram_get_stats(d, &s);
        if ((wb ? s.bd_count : s.recompressed) >= want)
            return;
        usleep(10000);
    }
    fail_msg("the %s policy did not get to %llu pages in 5 s", wb ? "writeback" : "recompress",
             (unsigned long long)want);
}

static void test_policies(void **state)
{
    (void)state;
    const char *sec[3] = {"zstd", NULL, NULL};
    struct uzram *d = make(sec, make_backing(NPAGES));
    char buf[256];
    uzram_attr_show(d, "recompress_policy", buf, sizeof buf);
    /* the default: settling, with the secondary given */
    assert_string_equal(buf, "settle idle_secs=120 algo=zstd max_pages=64 period_ms=20 cpu=5\n");
    assert_int_equal(st(d, "recompress_policy", "off"), 0);
    uzram_attr_show(d, "recompress_policy", buf, sizeof buf);
    assert_string_equal(buf, "0\n");
    assert_int_equal(st(d, "recompress_policy", "idle_secs=x"), -EINVAL);
    assert_int_equal(st(d, "recompress_policy", "max_pages=3"), -EINVAL);
    assert_int_equal(st(d, "recompress_policy", "idle_secs=1 algo=deflate"), -EINVAL);
    assert_int_equal(st(d, "writeback_policy", "idle_secs=1 above=1Q"), -EINVAL);
    fill_dev(d);
    /* recompress pages idle >= 0 s, 8 per tick of 10 ms */
    assert_int_equal(st(d, "recompress_policy", "idle_secs=0 algo=zstd max_pages=8 period_ms=10"), 0);
    uzram_attr_show(d, "recompress_policy", buf, sizeof buf);
    assert_string_equal(buf, "idle_secs=0 algo=zstd max_pages=8 period_ms=10\n");
    wait_for(d, false, NPAGES - NPAGES / 8);
    verify(d);
    assert_int_equal(st(d, "recompress_policy", "0"), 0);
    /* write back everything idle >= 0 s while the footprint is above 0 */
    assert_int_equal(st(d, "writeback_policy", "idle_secs=0 above=0 max_pages=16 period_ms=10"), 0);
    wait_for(d, true, NPAGES);
    verify(d);
    uzram_attr_show(d, "policy_stat", buf, sizeof buf);
    unsigned long long rt, rp, rmax, wt, wp, we, wmax;
    assert_int_equal(sscanf(buf, "recompress: ticks %llu pages %llu max_tick_us %llu\n"
                            "writeback: ticks %llu pages %llu errors %llu max_tick_us %llu",
                            &rt, &rp, &rmax, &wt, &wp, &we, &wmax), 7);
    assert_true(rt >= (NPAGES - NPAGES / 8) / 8);
    assert_true(rp >= NPAGES - NPAGES / 8);
    assert_true(wp == NPAGES);
    assert_int_equal(we, 0);
    /* reset stops the thread; the policy is kept and restarts with init */
    assert_int_equal(st(d, "reset", "1"), 0);
    assert_null(d->store->policy);
    assert_int_equal(st(d, "disksize", "256K"), 0);
    assert_non_null(d->store->policy);
    uzram_destroy(d);
    unlink(bd_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recomp_algorithm_attr),
        cmocka_unit_test(test_recompress),
        cmocka_unit_test(test_writeback_recompressed),
        cmocka_unit_test(test_policies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
