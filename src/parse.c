/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * parse.c - sizes, decimal numbers and key=value words: the one parser of
 * each, for the attribute table, the policies, the frontends' options
 * (through uzram_parse_size) and the command line.  Strict, as sysfs is:
 * a number is digits and nothing else; a value may end in one newline
 * (what `echo VALUE > file` writes) only where the caller allows it.
 */
#define _GNU_SOURCE
#include "parse.h"
#include "error.h"
#include "uzram.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int uz_memparse(const char *s, size_t len, uint64_t *out)
{
    char tmp[64];
    if (len > 0 && s[len - 1] == '\n')
        len--;
    if (len == 0 || len >= sizeof tmp || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 0);
    if (errno)
        return -EINVAL;
    int shift = 0;
    switch (*end) {
    case 'E': case 'e': shift += 10; /* fall through */
    case 'P': case 'p': shift += 10; /* fall through */
    case 'T': case 't': shift += 10; /* fall through */
    case 'G': case 'g': shift += 10; /* fall through */
    case 'M': case 'm': shift += 10; /* fall through */
    case 'K': case 'k': shift += 10; end++; break;
    default: break;
    }
    if (*end != 0)
        return -EINVAL;
    if (shift && v > (~0ull >> shift))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

static int uzram_parse_size_impl(const char *s, uint64_t *out)
{
    uz_error_clear();
    if (!s || uz_memparse(s, strlen(s), out) < 0)
        return uz_error(-EINVAL, "'%s' is not a size (e.g. 4096, 512M, 1G)", s ? s : "(null)");
    return 0;
}

int uzram_parse_size(const char *s, uint64_t *out)
{
    uz_error_clear();
    return uz_error_done(uzram_parse_size_impl(s, out), "uzram_parse_size");
}

int uz_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -EINVAL;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (~0ull - d) / 10)
            return -EINVAL;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

int uz_parse_num(const char *s, uint64_t *out)
{
    return uz_parse_u64(s, strlen(s), out);
}

int uz_kv_begin(struct uz_kv *kv, const char *s, const char *what)
{
    size_t n = strlen(s);
    if (n >= sizeof kv->buf)
        return uz_error(-EINVAL, "%s: value too long (at most %zu bytes)", what, sizeof kv->buf - 1);
    memcpy(kv->buf, s, n + 1);
    kv->save = NULL;
    kv->started = false;
    kv->key = kv->val = NULL;
    return 0;
}

bool uz_kv_next(struct uz_kv *kv)
{
    char *tok = strtok_r(kv->started ? NULL : kv->buf, " \t", &kv->save);
    kv->started = true;
    if (!tok)
        return false;
    strcpy(kv->word, tok);
    kv->key = tok;
    kv->val = NULL;
    char *eq = strchr(tok, '=');
    if (eq) {
        *eq = 0;
        kv->val = eq + 1;
    }
    return true;
}

int uz_parse_group(const char *s, bool allow_auto, uint32_t *k)
{
    uint64_t x;
    if (allow_auto && strcmp(s, "auto") == 0) {
        *k = UZRAM_GROUP_AUTO;
        return 0;
    }
    if (uz_parse_u64(s, strlen(s), &x) < 0 || (x != 1 && x != 2 && x != 4 && x != 8))
        return -EINVAL;
    *k = (uint32_t)x;
    return 0;
}
