/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * parse.h - the parsers every attribute and option uses (parse.c): sizes,
 * decimal numbers, and the key=value tokenizer.  A utility below the
 * store's layers (src/README.md).
 */
#ifndef UZRAM_PARSE_H
#define UZRAM_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A size as the kernel's memparse reads it: a number (decimal, 0x hex or
 * 0 octal) with an optional K, M, G, T, P or E suffix (binary units), and
 * optionally one newline.  0, or -EINVAL (empty, garbage, overflow; *out
 * untouched).  No message: the caller names what was being parsed. */
int uz_memparse(const char *s, size_t len, uint64_t *out);
/* An unsigned decimal integer of len bytes and nothing else (kstrtoull
 * base 10).  0 or -EINVAL. */
int uz_parse_u64(const char *s, size_t len, uint64_t *out);
/* The same of a NUL-terminated string. */
int uz_parse_num(const char *s, uint64_t *out);
/* A group size, the one parser of every group_pages word (the
 * attribute, uzram_config_set, recompress's and the policy's group=):
 * "1" (off), "2", "4", "8", and with allow_auto "auto" (*k =
 * UZRAM_GROUP_AUTO).  0 or -EINVAL (no message: the caller names the
 * setting). */
int uz_parse_group(const char *s, bool allow_auto, uint32_t *k);

/*
 * The key=value tokenizer of every multi-word attribute value
 * (algorithm_params, recomp_algorithm, recompress, writeback, the
 * policies): words separated by spaces or tabs, each "key=value" or a
 * bare word.
 *
 *     struct uz_kv kv;
 *     int err = uz_kv_begin(&kv, value, "recompress");
 *     while (err == 0 && uz_kv_next(&kv)) { ... kv.key, kv.val ... }
 *
 * uz_kv_begin copies s (at most 255 bytes: else -EINVAL with a message
 * naming what).  uz_kv_next: false at the end; else kv.word is the whole
 * word, kv.key the part before '=' and kv.val the part after it (NULL for
 * a bare word, where kv.key is the word).  Cannot fail.
 */
struct uz_kv {
    char buf[256];
    char word[256];
    char *save;
    char *key;
    char *val;
    bool started;
};
int uz_kv_begin(struct uz_kv *kv, const char *s, const char *what);
bool uz_kv_next(struct uz_kv *kv);

#endif
