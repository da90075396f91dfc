/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_device.h - what unit tests ask of a device: a counter of its
 * debug_stat ("name: value" pairs), and every page compared with what
 * was written.  Include after <cmocka.h> (the helpers assert).
 */
#ifndef UZRAM_TEST_DEVICE_H
#define UZRAM_TEST_DEVICE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uzram.h"

/* The value of counter name in d's debug_stat; fails the test if the
 * attribute cannot be read or has no such counter. */
static inline unsigned long long debug_stat(struct uzram *d, const char *name)
{
    char buf[4096], key[64];
    assert_true(uzram_attr_show(d, "debug_stat", buf, sizeof buf) > 0);
    snprintf(key, sizeof key, "%s: ", name);
    const char *at = strstr(buf, key);
    if (!at)
        fail_msg("debug_stat has no %s", name);
    return strtoull(at + strlen(key), NULL, 10);
}

/* d holds model's npages pages: read whole, then pages first, first +
 * stride, ... one by one (a part of each group), then uzram_check. */
static inline void test_verify(struct uzram *d, const uint8_t *model, uint64_t npages,
                               uint64_t first, uint64_t stride)
{
    uint8_t *buf = malloc(npages * UZRAM_PAGE_SIZE);
    assert_non_null(buf);
    assert_int_equal(uzram_read(d, buf, npages * UZRAM_PAGE_SIZE, 0), 0);
    for (uint64_t p = 0; p < npages; p++)
        if (memcmp(buf + p * UZRAM_PAGE_SIZE, model + p * UZRAM_PAGE_SIZE, UZRAM_PAGE_SIZE) != 0)
            fail_msg("page %llu differs", (unsigned long long)p);
    for (uint64_t p = first; p < npages; p += stride) {
        assert_int_equal(uzram_read(d, buf, UZRAM_PAGE_SIZE, p * UZRAM_PAGE_SIZE), 0);
        if (memcmp(buf, model + p * UZRAM_PAGE_SIZE, UZRAM_PAGE_SIZE) != 0)
            fail_msg("page %llu differs (read alone)", (unsigned long long)p);
    }
    free(buf);
    if (uzram_check(d) != 0)
        fail_msg("store check: %s", uzram_last_error());
}

#endif
