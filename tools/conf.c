/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * conf.c - the reader of /etc/uzram.conf (conf.h) and its size
 * expressions.
 *
 * The syntax is systemd's (systemd.syntax(5)) as zram-generator reads it:
 * "[section]" lines, "key = value" lines, comments from '#' or ';' at the
 * start of a line, blank lines.  Each section is one device, its keys
 * those of zram-generator.conf(5) plus uzram's own (allocator,
 * group-pages, recompress-policy, writeback-policy, auto-compact,
 * io-uring).  Keys
 * before any section are an error (zram-generator's "set!" program keys
 * have no use here).
 *
 * Lines are read whole, however long (read_line keeps the first
 * UZ_CONF_LINE_MAX bytes and counts the rest), so that a long comment is
 * skipped and a long or NUL-holding key line is an error of that line
 * alone.  An error rejects the least it can (conf_load in conf.h): a
 * section, the keys under a bad header, or one line; every error is kept
 * with its line for the caller to print.  Values are checked here for
 * their syntax; what only the library can judge (an algorithm's name and
 * parameters, auto-compact, the policies, the size against the largest
 * disksize) is checked by up_check_section (up.h), which both `uzram up` and
 * the generator run, so that the generator writes no unit that `up` would
 * then refuse.
 *
 * Expressions are parsed by recursive descent over doubles:
 *     expr   := term (('+' | '-') term)*
 *     term   := factor (('*' | '/' | '%') factor)*
 *     factor := NUMBER | "ram" | ('min' | 'max') '(' expr (',' expr)* ')'
 *             | '(' expr ')' | '-' factor
 */
#define _GNU_SOURCE
#include "conf.h"
#include "uzram.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const conf_keys[UZ_CONF_NKEYS + 1] = {
    "zram-size", "zram-resident-limit", "host-memory-limit", "compression-algorithm",
    "swap-priority", "writeback-device", "fs-type", "mount-point", "options",
    "allocator", "group-pages", "recompress-policy", "writeback-policy", "auto-compact", "io-uring",
    NULL,
};
_Static_assert(sizeof conf_keys / sizeof conf_keys[0] == UZ_CONF_NKEYS + 1 &&
               sizeof ((struct conf_dev *)0)->key_line / sizeof(unsigned) == UZ_CONF_NKEYS,
               "conf_keys and key_line have one entry per key");

const char *conf_path(void)
{
    const char *p = getenv("UZRAM_CONF");
    return p && *p ? p : "/etc/uzram.conf";
}

double conf_ram_mib(void)
{
    return (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/* ---------------------------------------------------------- expressions */

struct parser {
    const char *s;
    double ram;
    char *err;
    size_t errsize;
    bool failed;
};

static void perr(struct parser *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errsize, fmt, ap);
    va_end(ap);
}

static void skip_ws(struct parser *p)
{
    while (isspace((unsigned char)*p->s))
        p->s++;
}

static double expr(struct parser *p);

static double factor(struct parser *p)
{
    skip_ws(p);
    const char *at = p->s;
    if (*p->s == '(') {
        p->s++;
        double v = expr(p);
        skip_ws(p);
        if (*p->s != ')')
            perr(p, "missing ')' at '%s'", p->s);
        else
            p->s++;
        return v;
    }
    if (*p->s == '-') {
        p->s++;
        return -factor(p);
    }
    if (isdigit((unsigned char)*p->s) || *p->s == '.') {
        char *end;
        double v = strtod(p->s, &end);
        p->s = end;
        return v;
    }
    if (isalpha((unsigned char)*p->s)) {
        size_t n = 0;
        while (isalnum((unsigned char)p->s[n]) || p->s[n] == '_')
            n++;
        if (n == 3 && !strncmp(p->s, "ram", 3)) {
            p->s += 3;
            return p->ram;
        }
        bool is_min = n == 3 && !strncmp(p->s, "min", 3);
        bool is_max = n == 3 && !strncmp(p->s, "max", 3);
        if (!is_min && !is_max) {
            perr(p, "unknown name '%.*s' (use ram, min(), max())", (int)n, p->s);
            return 0;
        }
        p->s += 3;
        skip_ws(p);
        if (*p->s != '(') {
            perr(p, "%s needs '('", is_min ? "min" : "max");
            return 0;
        }
        p->s++;
        double v = expr(p);
        skip_ws(p);
        while (*p->s == ',') {
            p->s++;
            double w = expr(p);
            v = is_min ? fmin(v, w) : fmax(v, w);
            skip_ws(p);
        }
        if (*p->s != ')')
            perr(p, "missing ')' in %s()", is_min ? "min" : "max");
        else
            p->s++;
        return v;
    }
    perr(p, *at ? "unexpected '%s'" : "an operand is missing at the end", at);
    return 0;
}

static double term(struct parser *p)
{
    double v = factor(p);
    for (;;) {
        skip_ws(p);
        char op = *p->s;
        if (op != '*' && op != '/' && op != '%')
            return v;
        p->s++;
        double w = factor(p);
        if ((op == '/' || op == '%') && w == 0) {
            perr(p, "division by zero");
            return 0;
        }
        v = op == '*' ? v * w : op == '/' ? v / w : fmod(v, w);
    }
}

static double expr(struct parser *p)
{
    double v = term(p);
    for (;;) {
        skip_ws(p);
        char op = *p->s;
        if (op != '+' && op != '-')
            return v;
        p->s++;
        double w = term(p);
        v = op == '+' ? v + w : v - w;
    }
}

int conf_eval(const char *s, double ram_mib, double *out, char *err, size_t errsize)
{
    char dummy[8];
    struct parser p = {s, ram_mib, err ? err : dummy, err ? errsize : sizeof dummy, false};
    double v = expr(&p);
    skip_ws(&p);
    if (!p.failed && *p.s)
        perr(&p, "unexpected '%s'", p.s);
    if (!p.failed && !isfinite(v))
        perr(&p, "the value is not finite");
    if (p.failed)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Invariant: *out is a whole number of pages, at least one, and fits 64
 * bits (UZ_CONF_MAX_MIB); NaN and infinities fail the comparisons. */
int conf_bytes(const char *expr, double ram_mib, uint64_t *out, char *err, size_t errsize)
{
    double v;
    char why[128];
    if (conf_eval(expr, ram_mib, &v, why, sizeof why) < 0) {
        snprintf(err, errsize, "%s", why);
        return -EINVAL;
    }
    if (!(v * 1048576.0 >= 4096.0) || !(v <= UZ_CONF_MAX_MIB)) {
        snprintf(err, errsize, "'%s' gives %.6g MiB: %s", expr, v,
                 v <= UZ_CONF_MAX_MIB ? "a size is at least a page (4 KiB)" : "too large");
        return -EINVAL;
    }
    *out = ((uint64_t)floor(v * 1048576.0) + 4095) / 4096 * 4096;
    return 0;
}

/* --------------------------------------------------------------- parser */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static int copy(char *dst, size_t size, const char *v)
{
    if (strlen(v) >= size)
        return -1;
    strcpy(dst, v);
    return 0;
}

/*
 * compression-algorithm: "NAME[(PARAMS)] ... [(RECOMPRESS ARGS)]", the
 * first the primary, the others secondaries for recompression in
 * priority order.  Parameters are separated by ',' or blanks; they are
 * kept blank-separated, as zram's algorithm_params takes them.
 */
static int parse_algorithms(struct conf_dev *d, const char *v, char *why, size_t whysize)
{
    d->nalgo = 0;
    d->recompress_args[0] = 0;
    const char *s = v;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *name = s;
        while (*s && *s != '(' && !isspace((unsigned char)*s))
            s++;
        size_t nlen = (size_t)(s - name);
        char params[128] = "";
        if (*s == '(') {
            const char *close = strchr(s, ')');
            if (!close) {
                snprintf(why, whysize, "missing ')'");
                return -1;
            }
            size_t plen = (size_t)(close - s - 1);
            if (plen >= sizeof params) {
                snprintf(why, whysize, "parameters too long");
                return -1;
            }
            memcpy(params, s + 1, plen);
            params[plen] = 0;
            for (char *c = params; *c; c++)
                if (*c == ',')
                    *c = ' ';
            s = close + 1;
        }
        if (nlen == 0) {   /* "(type=idle ...)": the recompression arguments */
            if (d->nalgo == 0 || *trim(params) == 0) {
                snprintf(why, whysize, "'(...)' without an algorithm before it");
                return -1;
            }
            snprintf(d->recompress_args, sizeof d->recompress_args, "%s", trim(params));
            continue;
        }
        if (d->nalgo >= UZ_CONF_MAX_ALGOS) {
            snprintf(why, whysize, "at most %d algorithms (a primary and %d secondaries)",
                     UZ_CONF_MAX_ALGOS, UZ_CONF_MAX_ALGOS - 1);
            return -1;
        }
        if (nlen >= sizeof d->algo[0].name) {
            snprintf(why, whysize, "algorithm name too long");
            return -1;
        }
        struct conf_algo *a = &d->algo[d->nalgo++];
        memcpy(a->name, name, nlen);
        a->name[nlen] = 0;
        snprintf(a->params, sizeof a->params, "%s", trim(params));
    }
    if (d->nalgo == 0) {
        snprintf(why, whysize, "no algorithm");
        return -1;
    }
    return 0;
}

static int parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || x > max || *v == '-')
        return -1;
    *out = x;
    return 0;
}

/* Apply key = value to d; -1 with the reason in why. */
static int set_key(struct conf_dev *d, const char *k, const char *v, char *why, size_t whysize)
{
    unsigned long long x;
    double dummy;
    char eerr[128];
    if (!strcmp(k, "zram-size") || !strcmp(k, "zram-resident-limit")) {
        if (conf_eval(v, 1024, &dummy, eerr, sizeof eerr) < 0) {
            snprintf(why, whysize, "%s: %s", k, eerr);
            return -1;
        }
        return copy(!strcmp(k, "zram-size") ? d->size : d->resident_limit, sizeof d->size, v) < 0
                   ? (snprintf(why, whysize, "%s: too long", k), -1)
                   : 0;
    }
    if (!strcmp(k, "host-memory-limit")) {
        if (!strcmp(v, "none")) {
            d->host_memory_limit = 0;
            return 0;
        }
        if (parse_uint(v, UINT64_MAX / 2, &x) < 0) {
            snprintf(why, whysize, "host-memory-limit: give MiB or none");
            return -1;
        }
        d->host_memory_limit = x;
        return 0;
    }
    if (!strcmp(k, "compression-algorithm")) {
        char w[96];
        if (parse_algorithms(d, v, w, sizeof w) < 0) {
            snprintf(why, whysize, "compression-algorithm: %s", w);
            return -1;
        }
        return 0;
    }
    if (!strcmp(k, "swap-priority")) {
        if (parse_uint(v, 32767, &x) < 0) {
            snprintf(why, whysize, "swap-priority: give 0 to 32767");
            return -1;
        }
        d->swap_priority = (int)x;
        return 0;
    }
    if (!strcmp(k, "io-uring")) {
        if (conf_io_uring_mode(v) < 0) {
            snprintf(why, whysize, "io-uring: give auto, on or off");
            return -1;
        }
        snprintf(d->io_uring, sizeof d->io_uring, "%s", v);
        return 0;
    }
    if (!strcmp(k, "group-pages")) {
        /* the group_pages attribute's words (the others the library
         * checks at `up`: up_check_section) */
        struct uzram_config c;
        uzram_config_init(&c);
        if (uzram_config_set(&c, "group_pages", v) < 0) {
            snprintf(why, whysize, "group-pages: %s", uzram_last_error());
            return -1;
        }
        d->group_pages = c.group_pages;
        return 0;
    }
    struct {
        const char *key;
        char *dst;
        size_t size;
        bool path;
    } strs[] = {
        {"writeback-device", d->writeback_device, sizeof d->writeback_device, true},
        {"fs-type", d->fs_type, sizeof d->fs_type, false},
        {"mount-point", d->mount_point, sizeof d->mount_point, true},
        {"options", d->options, sizeof d->options, false},
        {"allocator", d->allocator, sizeof d->allocator, false},
        {"recompress-policy", d->recompress_policy, sizeof d->recompress_policy, false},
        {"writeback-policy", d->writeback_policy, sizeof d->writeback_policy, false},
        {"auto-compact", d->auto_compact, sizeof d->auto_compact, false},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(k, strs[i].key))
            continue;
        if (!strcmp(k, "writeback-device")) {
            /* an absolute path or an NBD URI: the library's judgement
             * (the text only: the network may not be up yet) */
            if (uzram_backing_name(v) < 0) {
                const char *m = uzram_last_error();
                snprintf(why, whysize, "%s: %s", k,
                         m && *m ? m : "give an absolute path or an NBD URI");
                return -1;
            }
        } else if (strs[i].path && v[0] != '/') {
            snprintf(why, whysize, "%s: give an absolute path", k);
            return -1;
        }
        if (strchr(v, ' ') && (!strcmp(k, "fs-type") || !strcmp(k, "allocator") || strs[i].path)) {
            snprintf(why, whysize, "%s: no blanks allowed", k);
            return -1;
        }
        if (copy(strs[i].dst, strs[i].size, v) < 0) {
            snprintf(why, whysize, "%s: too long", k);
            return -1;
        }
        return 0;
    }
    snprintf(why, whysize, "unknown key '%s'", k);
    return -1;
}

static void dev_defaults(struct conf_dev *d, const char *name, unsigned line)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->size, sizeof d->size, "min(ram / 2, 4096)");   /* zram-generator's */
    d->swap_priority = 100;
    d->line = line;
}

/* The defaults that depend on other keys, once the section is read. */
static void dev_finish(struct conf_dev *d)
{
    if (!d->fs_type[0])
        snprintf(d->fs_type, sizeof d->fs_type, "%s", d->mount_point[0] ? "ext2" : "swap");
    if (!d->options[0])
        snprintf(d->options, sizeof d->options, "discard");
}

bool conf_name_ok(const char *name, char *why, size_t whysize)
{
    const char *bad = NULL;
    if (!*name)
        bad = "an empty name";
    else if (strlen(name) >= sizeof ((struct conf_dev *)0)->name)
        bad = "longer than 63 bytes";
    else if (name[0] == '.')
        bad = "a leading '.'";
    else if (name[0] == '-')
        bad = "a leading '-' (it would read as an option)";
    for (const char *c = name; !bad && *c; c++)
        if (!isalnum((unsigned char)*c) && *c != ':' && *c != '_' && *c != '.' && *c != '-')
            bad = "a character other than letters, digits and :_.-";
    if (bad)
        snprintf(why, whysize, "'%s' cannot be a device name: %s", name, bad);
    return bad == NULL;
}

/* One line of the file, however long: its first UZ_CONF_LINE_MAX bytes
 * in buf, its whole length, whether it holds a NUL byte, and its first
 * byte that is not a blank (-1 for a blank line). */
struct line {
    char buf[UZ_CONF_LINE_MAX + 1];
    size_t len, total;
    bool nul;
    int first;
};

/* Read the next line into *l; false at the end of the file. */
static bool read_line(FILE *fp, struct line *l)
{
    int ch;
    l->len = l->total = 0;
    l->nul = false;
    l->first = -1;
    while ((ch = getc(fp)) != EOF && ch != '\n') {
        if (l->first < 0 && !isspace(ch))
            l->first = ch;
        if (ch == 0)
            l->nul = true;
        if (l->len < UZ_CONF_LINE_MAX)
            l->buf[l->len++] = (char)ch;
        l->total++;
    }
    l->buf[l->len] = 0;
    return ch != EOF || l->total > 0;
}

/* Record an error "PATH:LINE: [NAME] what" (NAME if it rejects section
 * d, which is then marked); false if out of memory. */
static bool report(struct conf *c, const char *path, unsigned lineno, struct conf_dev *d,
                   const char *fmt, ...)
{
    char what[288], msg[sizeof d->error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* a message longer than msg is cut: it names its line first */
    int n = d ? snprintf(msg, sizeof msg, "%s:%u: [%s] %s", path, lineno, d->name, what)
              : snprintf(msg, sizeof msg, "%s:%u: %s", path, lineno, what);
    if (n < 0)
        msg[0] = 0;
    if (d && d->nerrors++ == 0)
        memcpy(d->error, msg, sizeof msg);
    if (c->nerrors++ >= UZ_CONF_MAX_MESSAGES)
        return true;
    char **grown = realloc(c->errors, c->nerrors * sizeof *grown);
    char *copy = grown ? strdup(msg) : NULL;
    if (grown)
        c->errors = grown;
    if (!copy) {
        c->nerrors--;
        return false;
    }
    c->errors[c->nerrors - 1] = copy;
    return true;
}

/* The section named name: found, or added at the end; NULL when out of
 * memory.  The array grows by doubling, so 10,000 sections stay cheap. */
static struct conf_dev *section(struct conf *c, const char *name, unsigned lineno)
{
    for (size_t i = c->ndev; i-- > 0;)
        if (!strcmp(c->dev[i].name, name))
            return &c->dev[i];   /* a section again: its keys add up */
    if (c->ndev == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct conf_dev *grown = realloc(c->dev, cap * sizeof *grown);
        if (!grown)
            return NULL;
        c->dev = grown;
        c->cap = cap;
    }
    struct conf_dev *d = &c->dev[c->ndev++];
    dev_defaults(d, name, lineno);
    return d;
}

static int key_index(const char *k)
{
    for (int i = 0; conf_keys[i]; i++)
        if (!strcmp(conf_keys[i], k))
            return i;
    return -1;
}

unsigned conf_key_line(const struct conf_dev *d, const char *key)
{
    int i = key_index(key);
    return i < 0 ? 0 : d->key_line[i];
}

/*
 * The reader's state is the section the lines apply to: cur, a device;
 * or none, before the first header (a key there is an error of its own
 * line) and after a bad header (the keys under it go nowhere, and
 * skipping says so, since they were meant for a device that is not).
 */
int conf_load(const char *path, struct conf *c, char *err, size_t errsize)
{
    memset(c, 0, sizeof *c);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        int e = errno;
        snprintf(err, errsize, "%s: %s", path, strerror(e));
        return -e;
    }
    struct line *l = malloc(sizeof *l);
    if (!l) {
        fclose(fp);
        snprintf(err, errsize, "%s: out of memory", path);
        return -ENOMEM;
    }
    char why[192];
    unsigned lineno = 0;
    bool ok = true, skipping = false;
    struct conf_dev *cur = NULL;
    errno = 0;
    while (ok && read_line(fp, l)) {
        lineno++;
        if (l->first < 0 || l->first == '#' || l->first == ';')
            continue;   /* blank or a comment, whatever its length */
        bool header = l->first == '[';
        if (l->nul || l->total > UZ_CONF_LINE_MAX) {
            if (l->nul)
                snprintf(why, sizeof why, "NUL byte");
            else
                snprintf(why, sizeof why, "line too long (%zu bytes, at most %d)", l->total,
                         UZ_CONF_LINE_MAX);
            if (header) {   /* a header that cannot be read: skip its keys */
                ok = report(c, path, lineno, NULL, "%s in a section header: the keys up to "
                            "the next section are ignored", why);
                cur = NULL;
                skipping = true;
            } else if (!skipping) {
                ok = report(c, path, lineno, cur, "%s", why);
            }
            continue;
        }
        char *s = trim(l->buf);
        if (header) {
            char *close = strchr(s, ']');
            cur = NULL;
            skipping = true;
            if (!close || close[1] || close == s + 1) {
                ok = report(c, path, lineno, NULL, "bad section header '%s': the keys up to "
                            "the next section are ignored", s);
                continue;
            }
            *close = 0;
            const char *name = s + 1;
            if (!conf_name_ok(name, why, sizeof why)) {
                ok = report(c, path, lineno, NULL, "%s; the section is ignored", why);
                continue;
            }
            cur = section(c, name, lineno);
            ok = cur != NULL;
            skipping = false;
            continue;
        }
        if (skipping)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            ok = report(c, path, lineno, cur, "expected key = value, got '%s'", s);
            continue;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        if (!cur) {
            ok = report(c, path, lineno, NULL, "'%s' outside a [device] section", k);
            continue;
        }
        if (set_key(cur, k, v, why, sizeof why) < 0) {
            ok = report(c, path, lineno, cur, "%s", why);
            continue;
        }
        cur->key_line[key_index(k)] = lineno;
    }
    int read_error = ferror(fp) ? (errno ? errno : EIO) : 0;   /* EISDIR for a directory */
    fclose(fp);
    free(l);
    if (!ok || read_error) {
        int e = !ok ? ENOMEM : read_error;
        conf_free(c);
        snprintf(err, errsize, "%s: %s", path, strerror(e));
        return -e;
    }
    for (size_t i = 0; i < c->ndev; i++)
        dev_finish(&c->dev[i]);
    if (c->nerrors) {
        snprintf(err, errsize, "%s", c->errors[0]);
        return -EINVAL;
    }
    return 0;
}

void conf_free(struct conf *c)
{
    size_t kept = c->nerrors < UZ_CONF_MAX_MESSAGES ? c->nerrors : UZ_CONF_MAX_MESSAGES;
    for (size_t i = 0; c->errors && i < kept; i++)
        free(c->errors[i]);
    free(c->errors);
    free(c->dev);
    memset(c, 0, sizeof *c);
}

const struct conf_dev *conf_find(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->ndev; i++)
        if (!strcmp(c->dev[i].name, name))
            return &c->dev[i];
    return NULL;
}

int conf_io_uring_mode(const char *word)
{
    static const char *const words[] = {"auto", "on", "off"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(word, words[i]))
            return i;
    return -1;
}
