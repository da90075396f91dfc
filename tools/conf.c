/*
 * conf.c - the reader of /etc/uzram.conf (conf.h) and its size
 * expressions.
 *
 * The syntax is systemd's (systemd.syntax(5)) as zram-generator reads it:
 * "[section]" lines, "key = value" lines, comments from '#' or ';' at the
 * start of a line, blank lines.  Each section is one device, its keys
 * those of zram-generator.conf(5) plus uzram's own (allocator,
 * group-pages, recompress-policy, writeback-policy, auto-compact).  Keys
 * before any section are an error (zram-generator's "set!" program keys
 * have no use here).  Values are checked here, once, so that the
 * generator refuses a bad file at boot-time generation instead of a unit
 * failing later.
 *
 * Expressions are parsed by recursive descent over doubles:
 *     expr   := term (('+' | '-') term)*
 *     term   := factor (('*' | '/' | '%') factor)*
 *     factor := NUMBER | "ram" | ('min' | 'max') '(' expr (',' expr)* ')'
 *             | '(' expr ')' | '-' factor
 */
#define _GNU_SOURCE
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const uz_conf_keys[] = {
    "zram-size", "zram-resident-limit", "host-memory-limit", "compression-algorithm",
    "swap-priority", "writeback-device", "fs-type", "mount-point", "options",
    "allocator", "group-pages", "recompress-policy", "writeback-policy", "auto-compact", NULL,
};

const char *uz_conf_path(void)
{
    const char *p = getenv("UZRAM_CONF");
    return p && *p ? p : "/etc/uzram.conf";
}

double uz_conf_ram_mib(void)
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

int uz_conf_eval(const char *s, double ram_mib, double *out, char *err, size_t errsize)
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
static int parse_algorithms(struct uz_conf_dev *d, const char *v, char *why, size_t whysize)
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
        struct uz_conf_algo *a = &d->algo[d->nalgo++];
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
static int set_key(struct uz_conf_dev *d, const char *k, const char *v, char *why, size_t whysize)
{
    unsigned long long x;
    double dummy;
    char eerr[128];
    if (!strcmp(k, "zram-size") || !strcmp(k, "zram-resident-limit")) {
        if (uz_conf_eval(v, 1024, &dummy, eerr, sizeof eerr) < 0) {
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
    if (!strcmp(k, "group-pages")) {
        if (parse_uint(v, 8, &x) < 0 || (x & (x - 1))) {
            snprintf(why, whysize, "group-pages: give 1, 2, 4 or 8");
            return -1;
        }
        d->group_pages = (unsigned)x;
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
        if (strs[i].path && v[0] != '/') {
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

static void dev_defaults(struct uz_conf_dev *d, const char *name)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->size, sizeof d->size, "min(ram / 2, 4096)");   /* zram-generator's */
    d->swap_priority = 100;
}

/* The defaults that depend on other keys, once the section is read. */
static void dev_finish(struct uz_conf_dev *d)
{
    if (!d->fs_type[0])
        snprintf(d->fs_type, sizeof d->fs_type, "%s", d->mount_point[0] ? "ext2" : "swap");
    if (!d->options[0])
        snprintf(d->options, sizeof d->options, "discard");
}

int uz_conf_load(const char *path, struct uz_conf *c, char *err, size_t errsize)
{
    memset(c, 0, sizeof *c);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -errno;
    }
    char line[1024], why[160];
    int lineno = 0, rc = 0;
    struct uz_conf_dev *cur = NULL;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            snprintf(err, errsize, "%s:%d: line too long", path, lineno);
            rc = -EINVAL;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] || close == s + 1) {
                snprintf(err, errsize, "%s:%d: bad section header '%s'", path, lineno, s);
                rc = -EINVAL;
                break;
            }
            *close = 0;
            const char *name = s + 1;
            if (strlen(name) >= sizeof cur->name || strchr(name, '/') || strchr(name, ' ') ||
                name[0] == '.') {
                snprintf(err, errsize, "%s:%d: '%s' cannot be a device name (no '/', blanks or "
                         "leading '.')", path, lineno, name);
                rc = -EINVAL;
                break;
            }
            cur = NULL;
            for (size_t i = 0; i < c->ndev; i++)
                if (!strcmp(c->dev[i].name, name))
                    cur = &c->dev[i];   /* a section again: its keys add up */
            if (!cur) {
                struct uz_conf_dev *grown = realloc(c->dev, (c->ndev + 1) * sizeof *grown);
                if (!grown) {
                    rc = -ENOMEM;
                    snprintf(err, errsize, "out of memory");
                    break;
                }
                c->dev = grown;
                cur = &c->dev[c->ndev++];
                dev_defaults(cur, name);
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errsize, "%s:%d: expected key = value, got '%s'", path, lineno, s);
            rc = -EINVAL;
            break;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        if (!cur) {
            snprintf(err, errsize, "%s:%d: '%s' outside a [device] section", path, lineno, k);
            rc = -EINVAL;
            break;
        }
        if (set_key(cur, k, v, why, sizeof why) < 0) {
            snprintf(err, errsize, "%s:%d: [%s] %s", path, lineno, cur->name, why);
            rc = -EINVAL;
            break;
        }
    }
    fclose(fp);
    if (rc < 0) {
        uz_conf_free(c);
        return rc;
    }
    for (size_t i = 0; i < c->ndev; i++)
        dev_finish(&c->dev[i]);
    return 0;
}

void uz_conf_free(struct uz_conf *c)
{
    free(c->dev);
    c->dev = NULL;
    c->ndev = 0;
}

const struct uz_conf_dev *uz_conf_find(const struct uz_conf *c, const char *name)
{
    for (size_t i = 0; i < c->ndev; i++)
        if (!strcmp(c->dev[i].name, name))
            return &c->dev[i];
    return NULL;
}
