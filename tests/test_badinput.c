/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_badinput.c - bad input gets a clear error and changes nothing.
 *
 * For every kind of bad input a caller (or a frontend forwarding a remote
 * request) can hand uzram:
 *   - I/O out of range at every boundary: just past the end, straddling
 *     it, offsets near UINT64_MAX where off + len overflows, lengths near
 *     SIZE_MAX, zero-length I/O beyond the end (and zero-length I/O that is
 *     fine), on every allocator; I/O on an uninitialised device;
 *   - malformed and out-of-range values for every writable attribute: empty,
 *     spaces, negative, overflow, trailing garbage, embedded NUL, very long,
 *     random bytes; valid values the device cannot take now (-EBUSY);
 *     read-only and unknown attributes, write-only shows, short buffers;
 *   - configurations that cannot work: unknown algorithm or allocator,
 *     absurd levels, thresholds, stream counts and disk sizes; disksize 0
 *     (an uninitialised device);
 * the call fails with the documented errno, uzram_last_error() is non-empty
 * and names the problem, and the device is exactly as before: its data, its
 * mm_stat and every other readable attribute (io_stat only counts the
 * invalid I/O, by exactly one per call).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "uzram.h"

#define PAGE 4096u
#define NPAGES 16u
#define SIZE ((uint64_t)NPAGES * PAGE)

/* ------------------------------------------------------------ helpers */

static struct uzram *make(const char *allocator, uint64_t disksize)
{
    struct uzram_config cfg;
    uzram_config_init(&cfg);
    cfg.disksize = disksize;
    cfg.allocator = allocator;
    cfg.streams = 1;
    /* no secondary (so no settling): recompress refuses every value,
     * even an empty one, which would recompress every page */
    cfg.recomp_algorithm[0] = NULL;
    struct uzram *dev = NULL;
    if (uzram_create(&cfg, &dev) != 0)
        fail_msg("create: %s", uzram_last_error());
    return dev;
}

/* Fill the device with a mix: same-filled, compressible, huge, zero, unwritten. */
static void populate(struct uzram *dev)
{
    uint8_t p[PAGE];
    for (unsigned i = 0; i < NPAGES; i++) {
        switch (i % 5) {
        case 0: memset(p, 0x5a, PAGE); break;
        case 1: for (unsigned j = 0; j < PAGE; j++) p[j] = (uint8_t)("badinput "[j % 9] + i); break;
        case 2: {
            uint64_t x = 0x243f6a8885a308d3ull * (i + 1);
            for (unsigned j = 0; j < PAGE; j++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                p[j] = (uint8_t)x;
            }
            break;
        }
        case 3: memset(p, 0, PAGE); break;
        default: continue;   /* never written */
        }
        assert_int_equal(uzram_write(dev, p, PAGE, (uint64_t)i * PAGE), 0);
    }
    assert_int_equal(uzram_write(dev, "partial", 7, 4 * PAGE + 1000), 0);
}

/* Everything observable about a device except io_stat. */
struct snap {
    uint8_t data[SIZE];
    char attrs[4096];
    uint64_t invalid_io, failed_reads, failed_writes, notify_free;
};

static void take(struct uzram *dev, struct snap *s)
{
    static const char *const names[] = {"disksize", "initstate", "comp_algorithm",
                                        "algorithm_params", "mm_stat", "max_comp_streams"};
    memset(s, 0, sizeof *s);
    uint64_t size = uzram_disksize(dev);
    if (size)
        assert_int_equal(uzram_read(dev, s->data, size < SIZE ? size : SIZE, 0), 0);
    size_t len = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char v[1024];
        int n = uzram_attr_show(dev, names[i], v, sizeof v);
        if (n < 0)
            fail_msg("show %s: %d", names[i], n);
        len += (size_t)snprintf(s->attrs + len, sizeof s->attrs - len, "%s=%s", names[i], v);
    }
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    s->invalid_io = st.invalid_io;
    s->failed_reads = st.failed_reads;
    s->failed_writes = st.failed_writes;
    s->notify_free = st.notify_free;
}

/* The device must be as in *before; invalid_io may have grown by
 * invalid_delta.  what names the call for failure messages. */
static void same(struct uzram *dev, const struct snap *before, uint64_t invalid_delta,
                 const char *what)
{
    static struct snap now;
    take(dev, &now);
    if (memcmp(before->data, now.data, sizeof now.data) != 0)
        fail_msg("%s changed the device's data", what);
    if (strcmp(before->attrs, now.attrs) != 0)
        fail_msg("%s changed the attributes:\nbefore: %s\nafter:  %s", what, before->attrs,
                 now.attrs);
    if (now.invalid_io != before->invalid_io + invalid_delta)
        fail_msg("%s: invalid_io went %llu -> %llu, want +%llu", what,
                 (unsigned long long)before->invalid_io, (unsigned long long)now.invalid_io,
                 (unsigned long long)invalid_delta);
    if (now.failed_reads != before->failed_reads || now.failed_writes != before->failed_writes ||
        now.notify_free != before->notify_free)
        fail_msg("%s changed io_stat's failed_reads/failed_writes/notify_free", what);
}

/* The calling thread's last error must be non-empty and contain each of
 * the given words (NULL-terminated). */
static void msg_has(const char *what, ...)
{
    const char *m = uzram_last_error();
    if (m[0] == 0)
        fail_msg("%s: uzram_last_error() is empty", what);
    va_list ap;
    va_start(ap, what);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL;)
        if (strstr(m, w) == NULL)
            fail_msg("%s: message \"%s\" does not mention \"%s\"", what, m, w);
    va_end(ap);
}

/* Clear the thread's message so a stale one cannot pass msg_has(). */
static void clear_msg(struct uzram *dev)
{
    /* sets "no attribute '#'", which mentions nothing the checks look for */
    assert_int_equal(uzram_attr_store(dev, "#", "", 0), -ENOENT);
}

/* ------------------------------------------------------------ I/O */

enum { IO_READ, IO_WRITE, IO_DISCARD, IO_ZEROES, NIO };
static const char *const io_name[NIO] = {"read", "write", "discard", "write_zeroes"};

static uint8_t iobuf[2 * PAGE];

static int do_io(struct uzram *dev, int op, uint64_t off, size_t len)
{
    switch (op) {
    case IO_READ: return uzram_read(dev, iobuf, len, off);
    /* iobuf is far shorter than most lengths used: the library must not
     * read it before checking the range (ASan would say so) */
    case IO_WRITE: return uzram_write(dev, iobuf, len, off);
    case IO_DISCARD: return uzram_discard(dev, len, off);
    default: return uzram_write_zeroes(dev, len, off);
    }
}

struct range {
    uint64_t off;
    uint64_t len;   /* clamped to SIZE_MAX */
};

static void test_io_out_of_range(void **state)
{
    (void)state;
    const struct range bad[] = {
        {SIZE, 1},                      /* first byte past the end */
        {SIZE, PAGE},
        {SIZE - 1, 2},                  /* straddles the end by one byte */
        {SIZE - PAGE, PAGE + 1},
        {0, SIZE + 1},                  /* the whole disk and one byte */
        {1, SIZE},
        {SIZE + 1, 0},                  /* empty, but past the end */
        {SIZE + PAGE, 0},
        {SIZE + PAGE, PAGE},
        {UINT64_MAX, 0},
        {UINT64_MAX, 1},                /* off + len wraps to 0 */
        {UINT64_MAX - PAGE + 1, PAGE},  /* wraps to exactly 0 */
        {UINT64_MAX - 10, 20},          /* wraps to 9: inside the disk */
        {UINT64_MAX - PAGE, 2 * PAGE},  /* wraps into page 0 */
        {1ull << 63, PAGE},
        {1ull << 32, 1},
        {SIZE / 2, SIZE_MAX},           /* len wraps: off + len = off - 1 */
        {1, SIZE_MAX},
        {0, SIZE_MAX},
        {PAGE, SIZE_MAX - PAGE + 1},    /* off + len wraps to exactly 0 */
        {SIZE, SIZE_MAX},
        {UINT64_MAX, SIZE_MAX},
    };
    for (unsigned a = 0; uz_alloc_at(a); a++) {
        struct uzram *dev = make(uz_alloc_at(a)->name, SIZE);
        populate(dev);
        static struct snap before;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            for (int op = 0; op < NIO; op++) {
                char what[160];
                snprintf(what, sizeof what, "[%s] %s(off=%llu, len=%llu)", uz_alloc_at(a)->name,
                         io_name[op], (unsigned long long)bad[i].off,
                         (unsigned long long)bad[i].len);
                take(dev, &before);
                clear_msg(dev);
                int rc = do_io(dev, op, bad[i].off, (size_t)bad[i].len);
                if (rc != -EINVAL)
                    fail_msg("%s returned %d, want -EINVAL", what, rc);
                /* write_zeroes is a discard inside: either name will do */
                msg_has(what, io_name[op], "outside", NULL);
                same(dev, &before, 1, what);
            }
        }
        /* page_state out of range */
        const uint64_t bad_ps[] = {SIZE, SIZE + 1, UINT64_MAX, 1ull << 63};
        for (size_t i = 0; i < sizeof bad_ps / sizeof bad_ps[0]; i++) {
            take(dev, &before);
            clear_msg(dev);
            assert_int_equal(uzram_page_state(dev, bad_ps[i]), -EINVAL);
            msg_has("page_state out of range", "outside", NULL);
            /* invalid_io may or may not count page_state: only data and
             * attributes must be unchanged */
            static struct snap now;
            take(dev, &now);
            assert_memory_equal(before.data, now.data, SIZE);
            assert_string_equal(before.attrs, now.attrs);
        }
        uzram_destroy(dev);
    }
}

/* Boundaries that are fine: zero-length I/O up to and at the end, the last
 * byte; the data stays as it was (writes write what is there). */
static void test_io_boundaries_ok(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, SIZE);
    populate(dev);
    static struct snap before;
    take(dev, &before);
    const uint64_t offs[] = {0, 1, PAGE - 1, PAGE, SIZE / 2 + 3, SIZE - 1, SIZE};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        for (int op = 0; op < NIO; op++) {
            char what[96];
            snprintf(what, sizeof what, "%s(off=%llu, len=0)", io_name[op],
                     (unsigned long long)offs[i]);
            if (do_io(dev, op, offs[i], 0) != 0)
                fail_msg("%s: %s", what, uzram_last_error());
            same(dev, &before, 0, what);
        }
        assert_int_equal(uzram_write(dev, NULL, 0, offs[i]), 0);
        assert_int_equal(uzram_read(dev, NULL, 0, offs[i]), 0);
    }
    /* the last byte, and the last page, read and rewritten as they are */
    uint8_t b[PAGE];
    assert_int_equal(uzram_read(dev, b, 1, SIZE - 1), 0);
    assert_int_equal(b[0], before.data[SIZE - 1]);
    assert_int_equal(uzram_write(dev, b, 1, SIZE - 1), 0);
    assert_int_equal(uzram_read(dev, b, PAGE, SIZE - PAGE), 0);
    assert_memory_equal(b, before.data + SIZE - PAGE, PAGE);
    assert_int_equal(uzram_page_state(dev, SIZE - 1) >= 0, 1);
    static struct snap after;
    take(dev, &after);
    assert_memory_equal(before.data, after.data, SIZE);
    uzram_destroy(dev);
}

static void test_io_uninitialised(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, 0);
    static struct snap before;
    take(dev, &before);
    const struct range r[] = {{0, 0}, {0, 1}, {0, PAGE}, {UINT64_MAX, 1}, {1, SIZE_MAX}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        for (int op = 0; op < NIO; op++) {
            char what[96];
            snprintf(what, sizeof what, "%s(off=%llu, len=%llu) uninitialised", io_name[op],
                     (unsigned long long)r[i].off, (unsigned long long)r[i].len);
            clear_msg(dev);
            int rc = do_io(dev, op, r[i].off, (size_t)r[i].len);
            if (rc != -ENXIO)
                fail_msg("%s returned %d, want -ENXIO", what, rc);
            msg_has(what, io_name[op], "not initialised", NULL);
            same(dev, &before, 0, what);
        }
    }
    assert_int_equal(uzram_page_state(dev, 0), -ENXIO);
    assert_int_equal(uzram_compact(dev), 0);
    clear_msg(dev);
    assert_int_equal(uzram_attr_store(dev, "compact", "1", 1), -EINVAL);
    msg_has("compact uninitialised", "compact", "not initialised", NULL);
    same(dev, &before, 0, "compact on an uninitialised device");
    uzram_destroy(dev);
}

/* ------------------------------------------------------------ attributes */

struct value {
    const char *s;
    size_t len;   /* 0: strlen(s) */
};
#define V(x) {x, sizeof(x) - 1}

/* Malformed for every attribute that takes a number or a name. */
static const struct value common_bad[] = {
    V(""), V("\n"), V(" "), V("  \n"), V("\t"), V("-1"), V("-1\n"), V("+1"), V("--5"),
    V("1 "), V(" 1"), V("1\t"), V("1\n\n"), V("1\n2"), V("\n1"),
    V("18446744073709551616"), V("99999999999999999999999999999"), V("-18446744073709551616"),
    V("0x"), V("1x"), V("1K2"), V("1.5"), V("1e3"), V("1,000"), V("one"), V("\xff\xfe"),
    V("1\0"), V("\0" "1"), V("12\0" "34"), V("\0"),
};

/* Attribute-specific malformed or out-of-range values. */
static const struct value disksize_bad[] = {
    V("0"), V("0\n"), V("0K"), V("1Q"), V("K"), V("1KK"), V("1 K"), V("1MB"), V("16E"), V("17E"),
    V("17179869184G"), V("8E"), V("1P"), V("9223372036854775808"), V("18446744073709551615"),
    V("08"), V("0x1g2"),
};
static const struct value reset_bad[] = {V("0"), V("0\n"), V("00"), V("reset"), V("yes")};
static const struct value algo_bad[] = {
    V("lz5"), V("LZ4"), V("lz4 "), V(" lz4"), V("lz4,zstd"), V("zstd\n\n"), V("lz4\0"),
    V("[lz4]"), V("lz4 zstd"), V("842"),
};
static const struct value params_bad[] = {
    V("level"), V("level="), V("level=abc"), V("level=1x"), V("level=99999999999999999999"),
    V("level=-1"), V("level=0"), V("level=100000"), V("priority=-1"), V("priority=3"),
    V("priority=x"), V("priority="), V("algo="), V("algo=nope"), V("algo=deflate"),
    V("dict=/etc/passwd"), V("foo=1"), V("="), V("level=1 level="), V("algo=lz4 level=65538"),
    V("algo=lz4 priority=2 level=1"), V("algo=lz4 bogus"),
};
static const struct value limit_bad[] = {V("1Q"), V("K"), V("1KK"), V("1 K"), V("1MB"), V("16E"),
                                         V("-1K"), V("0x"), V("1G\n\n")};
static const struct value used_max_bad[] = {V("1"), V("5\n"), V("0 "), V("0x0")};
static const struct value streams_bad[] = {V("0"), V("1025"), V("4294967297"), V("-4")};
static const struct value compact_bound_bad[] = {V("0.5"), V("0.999"), V("1."), V(".5"),
                                                 V("1.0001"), V("1.05x"), V("1..05"), V("1000000")};

struct attr_case {
    const char *name;
    const struct value *v;
    size_t n;
};

static const struct attr_case specific[] = {
    {"disksize", disksize_bad, sizeof disksize_bad / sizeof disksize_bad[0]},
    {"reset", reset_bad, sizeof reset_bad / sizeof reset_bad[0]},
    {"comp_algorithm", algo_bad, sizeof algo_bad / sizeof algo_bad[0]},
    {"algorithm_params", params_bad, sizeof params_bad / sizeof params_bad[0]},
    {"mem_limit", limit_bad, sizeof limit_bad / sizeof limit_bad[0]},
    {"mem_used_max", used_max_bad, sizeof used_max_bad / sizeof used_max_bad[0]},
    {"max_comp_streams", streams_bad, sizeof streams_bad / sizeof streams_bad[0]},
    {"auto_compact", compact_bound_bad, sizeof compact_bound_bad / sizeof compact_bound_bad[0]},
};

static void show_value(char *out, size_t cap, const struct value *v)
{
    size_t o = 0;
    for (size_t i = 0; i < v->len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)v->s[i];
        o += (size_t)snprintf(out + o, cap - o, c >= 32 && c < 127 ? "%c" : "\\x%02x", c);
        if (i == 40 && v->len > 48) {
            o += (size_t)snprintf(out + o, cap - o, "...(%zu bytes)", v->len);
            break;
        }
    }
    out[o] = 0;
}

/* Store v into name; it must fail with want (or -EINVAL/-EBUSY if want is
 * 0) and change nothing. */
static void refuse_saying(struct uzram *dev, const char *name, const struct value *v, int want,
                          const char *state_name, const char *word);

static void refuse(struct uzram *dev, const char *name, const struct value *v, int want,
                   const char *state_name)
{
    refuse_saying(dev, name, v, want, state_name, NULL);
}

/* The same, the message also naming word (the last error is the store's:
 * read before any other library call, each of which clears it). */
static void refuse_saying(struct uzram *dev, const char *name, const struct value *v, int want,
                          const char *state_name, const char *word)
{
    static struct snap before;
    take(dev, &before);
    char shown[160], what[256];
    show_value(shown, sizeof shown, v);
    snprintf(what, sizeof what, "store %s=\"%s\" (%s)", name, shown, state_name);
    clear_msg(dev);
    int rc = uzram_attr_store(dev, name, v->s, v->len);
    if (want ? rc != want : (rc != -EINVAL && rc != -EBUSY))
        fail_msg("%s returned %d (%s), want %d", what, rc, uzram_last_error(),
                 want ? want : -EINVAL);
    msg_has(what, name, word, NULL);
    same(dev, &before, 0, what);
}

static char *long_value(size_t n, char c)
{
    char *s = malloc(n);
    memset(s, c, n);
    return s;
}

/* Run the whole matrix against one device state. */
static void malformed_matrix(struct uzram *dev, const char *state_name)
{
    unsigned mode;
    const char *name;
    for (unsigned i = 0; (name = uzram_attr_name(i, &mode)) != NULL; i++) {
        if (!(mode & 0200))
            continue;
        if (strcmp(name, "compact") == 0)
            continue;   /* takes any value, as in the kernel: see test_compact_any_value */
        for (size_t k = 0; k < sizeof common_bad / sizeof common_bad[0]; k++) {
            /* auto_compact takes decimals: "1.5" is a good value there */
            if (strcmp(name, "auto_compact") == 0 && strcmp(common_bad[k].s, "1.5") == 0)
                continue;
            refuse(dev, name, &common_bad[k], 0, state_name);
        }
        for (size_t c = 0; c < sizeof specific / sizeof specific[0]; c++)
            if (strcmp(specific[c].name, name) == 0)
                for (size_t k = 0; k < specific[c].n; k++)
                    refuse(dev, name, &specific[c].v[k], 0, state_name);
        /* very long values: just over the limit, and far over */
        const size_t lens[] = {255, 256, 300, 4096, 100000};
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            char *s = long_value(lens[k], k % 2 ? '9' : '1');
            struct value v = {s, lens[k]};
            refuse(dev, name, &v, -EINVAL, state_name);
            free(s);
        }
        /* random bytes, fixed seed */
        uint64_t x = 0x9e3779b97f4a7c15ull ^ i;
        for (int k = 0; k < 50; k++) {
            char s[64];
            size_t len = 1 + (size_t)(x % 63);
            for (size_t j = 0; j < len; j++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                s[j] = (char)(x >> 24);
            }
            s[0] = (char)(0x80 | s[0]);   /* never a digit or a name: always malformed */
            struct value v = {s, len};
            refuse(dev, name, &v, 0, state_name);
        }
    }
}

static void test_attr_malformed_initialised(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, SIZE);
    populate(dev);
    assert_int_equal(uzram_attr_store(dev, "mem_limit", "1M", 2), 0);
    malformed_matrix(dev, "initialised");
    uzram_destroy(dev);
}

static void test_attr_malformed_uninitialised(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, 0);
    malformed_matrix(dev, "uninitialised");
    uzram_destroy(dev);
}

/* Valid values that an initialised device cannot take: -EBUSY, a message
 * that says to reset first, nothing changed. */
static void test_attr_busy(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, SIZE);
    populate(dev);
    const struct {
        const char *name;
        struct value v;
    } busy[] = {
        {"disksize", V("1M")}, {"disksize", V("65536\n")}, {"comp_algorithm", V("zstd")},
        {"comp_algorithm", V("lz4\n")}, {"algorithm_params", V("algo=lz4 level=3")},
        {"algorithm_params", V("priority=0 level=2\n")},
    };
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++) {
        refuse_saying(dev, busy[i].name, &busy[i].v, -EBUSY, "initialised", "reset");
    }
    uzram_destroy(dev);
}

/* compact takes any value (the kernel ignores it); whatever it is, the data
 * stays. */
static void test_compact_any_value(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, SIZE);
    populate(dev);
    static struct snap before, after;
    take(dev, &before);
    for (size_t k = 0; k < sizeof common_bad / sizeof common_bad[0]; k++) {
        int rc = uzram_attr_store(dev, "compact", common_bad[k].s, common_bad[k].len);
        assert_true(rc == 0 || rc == -EINVAL);
        take(dev, &after);
        assert_memory_equal(before.data, after.data, SIZE);
    }
    uzram_destroy(dev);
}

/* Read-only and unknown attributes, write-only shows, short buffers. */
static void test_attr_access(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, SIZE);
    populate(dev);
    static struct snap before;
    take(dev, &before);
    unsigned mode;
    const char *name;
    char buf[1024];
    for (unsigned i = 0; (name = uzram_attr_name(i, &mode)) != NULL; i++) {
        if (!(mode & 0200)) {
            clear_msg(dev);
            assert_int_equal(uzram_attr_store(dev, name, "0", 1), -EACCES);
            msg_has("store to a read-only attribute", name, NULL);
        }
        if (!(mode & 0444)) {
            clear_msg(dev);
            assert_int_equal(uzram_attr_show(dev, name, buf, sizeof buf), -EACCES);
            msg_has("show of a write-only attribute", name, NULL);
            continue;
        }
        /* short buffers: -ENOSPC, never a byte past size (exact-size heap
         * buffers, so ASan sees an overrun) */
        int full = uzram_attr_show(dev, name, buf, sizeof buf);
        assert_true(full > 0);
        assert_int_equal(uzram_attr_show(dev, name, buf, 0), -ENOSPC);
        msg_has("show into 0 bytes", name, NULL);
        for (size_t size = 1; size <= (size_t)full; size++) {
            char *b = malloc(size);
            int rc = uzram_attr_show(dev, name, b, size);
            if (rc != -ENOSPC)
                fail_msg("show %s into %zu bytes (needs %d + 1): %d", name, size, full, rc);
            msg_has("show into a short buffer", name, "does not fit", NULL);
            free(b);
        }
        char *b = malloc((size_t)full + 1);
        assert_int_equal(uzram_attr_show(dev, name, b, (size_t)full + 1), full);
        assert_int_equal(strlen(b), full);
        free(b);
    }
    const char *unknown[] = {"nope", "", "DISKSIZE", "disksize ", "mm_stat\n", "../disksize",
                             "disksize/",
                             "a_very_long_attribute_name_that_does_not_exist_anywhere_at_all"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        clear_msg(dev);
        assert_int_equal(uzram_attr_store(dev, unknown[i], "1", 1), -ENOENT);
        msg_has("store to an unknown attribute", unknown[i], NULL);
        clear_msg(dev);
        assert_int_equal(uzram_attr_show(dev, unknown[i], buf, sizeof buf), -ENOENT);
        msg_has("show of an unknown attribute", unknown[i], NULL);
    }
    same(dev, &before, 0, "attribute access errors");
    uzram_destroy(dev);
}

/* An empty value given as (NULL, 0), as a frontend might pass an empty
 * write: refused like "", no crash. */
static void test_attr_null_empty(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, SIZE);
    populate(dev);
    static struct snap before;
    take(dev, &before);
    unsigned mode;
    const char *name;
    for (unsigned i = 0; (name = uzram_attr_name(i, &mode)) != NULL; i++) {
        if (!(mode & 0200) || strcmp(name, "compact") == 0)
            continue;
        int rc = uzram_attr_store(dev, name, NULL, 0);
        if (rc != -EINVAL)
            fail_msg("store %s=(NULL, 0): %d, want -EINVAL", name, rc);
    }
    same(dev, &before, 0, "empty stores");
    uzram_destroy(dev);
}

/* ------------------------------------------------------------ configs */

static void test_bad_configs(void **state)
{
    (void)state;
    struct cfgcase {
        const char *what;
        const char *algorithm;
        int level;
        const char *allocator;
        uint32_t huge;
        unsigned streams;
        uint64_t disksize;
        const char *mentions;
    } cases[] = {
        {"unknown algorithm", "nope", 0, NULL, 0, 0, SIZE, "nope"},
        {"empty algorithm", "", 0, NULL, 0, 0, SIZE, "algorithm"},
        {"algorithm in capitals", "LZ4", 0, NULL, 0, 0, SIZE, "LZ4"},
        {"algorithm with a space", "lz4 ", 0, NULL, 0, 0, SIZE, "lz4 "},
        {"lz4 level -1", "lz4", -1, NULL, 0, 0, SIZE, "level"},
        {"lz4 level 65538", "lz4", 65538, NULL, 0, 0, SIZE, "level"},
        {"zstd level 23", "zstd", 23, NULL, 0, 0, SIZE, "level"},
        {"zstd level -5", "zstd", -5, NULL, 0, 0, SIZE, "level"},
        {"lzo level 2", "lzo", 2, NULL, 0, 0, SIZE, "level"},
        {"deflate level 10", "deflate", 10, NULL, 0, 0, SIZE, "level"},
        {"level INT_MAX", "lz4hc", INT_MAX, NULL, 0, 0, SIZE, "level"},
        {"level INT_MIN", "lz4hc", INT_MIN, NULL, 0, 0, SIZE, "level"},
        {"unknown allocator", NULL, 0, "slab", 0, 0, SIZE, "slab"},
        {"empty allocator", NULL, 0, "", 0, 0, SIZE, "allocator"},
        {"allocator in capitals", NULL, 0, "ZSMALLOC", 0, 0, SIZE, "ZSMALLOC"},
        {"huge threshold over a page", NULL, 0, NULL, PAGE + 1, 0, SIZE, "huge"},
        {"huge threshold UINT32_MAX", NULL, 0, NULL, UINT32_MAX, 0, SIZE, "huge"},
        {"1025 streams", NULL, 0, NULL, 0, 1025, SIZE, "streams"},
        {"UINT_MAX streams", NULL, 0, NULL, 0, UINT_MAX, SIZE, "streams"},
        {"disksize 2^60", NULL, 0, NULL, 0, 0, 1ull << 60, "disksize"},
        {"disksize 2^63", NULL, 0, NULL, 0, 0, 1ull << 63, "disksize"},
        {"disksize UINT64_MAX - 4095", NULL, 0, NULL, 0, 0, UINT64_MAX - 4095, "disksize"},
        /* also an unknown algorithm with an absurd level: the algorithm is named */
        {"unknown algorithm and level", "lz9", 99, NULL, 0, 0, SIZE, "lz9"},
    };
    struct uzram *scratch = make(NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct uzram_config cfg;
        uzram_config_init(&cfg);
        if (cases[i].algorithm)
            cfg.algorithm = cases[i].algorithm;
        if (cases[i].allocator)
            cfg.allocator = cases[i].allocator;
        cfg.level = cases[i].level;
        cfg.huge_threshold = cases[i].huge;
        cfg.streams = cases[i].streams;
        cfg.disksize = cases[i].disksize;
        struct uzram *dev = NULL;
        clear_msg(scratch);
        int rc = uzram_create(&cfg, &dev);
        if (rc != -EINVAL)
            fail_msg("config %s: create returned %d, want -EINVAL", cases[i].what, rc);
        if (dev != NULL)
            fail_msg("config %s: a device was handed out", cases[i].what);
        msg_has(cases[i].what, cases[i].mentions, NULL);
    }
    uzram_destroy(scratch);
}

/* A disksize too large to be a disk must say so, not something else. */
static void test_disksize_too_large_message(void **state)
{
    (void)state;
    const uint64_t sizes[] = {1ull << 60, UINT64_MAX - 4095, UINT64_MAX - 4094, UINT64_MAX - 1,
                              UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct uzram_config cfg;
        uzram_config_init(&cfg);
        cfg.disksize = sizes[i];
        struct uzram *dev = NULL;
        int rc = uzram_create(&cfg, &dev);
        char what[96];
        snprintf(what, sizeof what, "create with disksize %llu", (unsigned long long)sizes[i]);
        if (rc != -EINVAL || dev)
            fail_msg("%s: %d, want -EINVAL", what, rc);
        msg_has(what, "disksize", "at most", NULL);
        /* the same through the attribute */
        cfg.disksize = 0;
        assert_int_equal(uzram_create(&cfg, &dev), 0);
        char s[32];
        int n = snprintf(s, sizeof s, "%llu", (unsigned long long)sizes[i]);
        assert_int_equal(uzram_attr_store(dev, "disksize", s, (size_t)n), -EINVAL);
        snprintf(what, sizeof what, "store disksize=%s", s);
        msg_has(what, "disksize", "at most", NULL);
        assert_int_equal(uzram_disksize(dev), 0);
        uzram_destroy(dev);
    }
}

/* disksize 0 is not an error: it makes an uninitialised device, on which
 * only the attribute interface works until disksize is stored. */
static void test_disksize_zero_config(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, 0);
    char b[256];
    assert_int_equal(uzram_attr_show(dev, "initstate", b, sizeof b), 2);
    assert_string_equal(b, "0\n");
    assert_true(uzram_attr_show(dev, "mm_stat", b, sizeof b) > 0);
    assert_int_equal(uzram_disksize(dev), 0);
    struct uzram_stats st;
    uzram_get_stats(dev, &st);
    assert_int_equal(st.orig_data_size, 0);
    assert_int_equal(uzram_attr_store(dev, "disksize", "64K", 3), 0);
    assert_int_equal(uzram_disksize(dev), 65536);
    assert_int_equal(uzram_read(dev, b, 10, 65536 - 10), 0);
    uzram_destroy(dev);
}

/* uzram.h, "Errors": the message is the calling thread's, cleared by each
 * call that can fail, set by its failure; uzram_strerror's strings are
 * static. */
static void *fail_in_thread(void *arg)
{
    struct uzram *dev = arg;
    if (uzram_attr_store(dev, "disksize", "junk", 4) != -EINVAL || !strstr(uzram_last_error(), "junk"))
        return (void *)1;
    return NULL;
}

static void test_last_error_contract(void **state)
{
    (void)state;
    struct uzram *dev = make(NULL, SIZE);
    uint8_t page[PAGE];
    memset(page, 0x5a, sizeof page);

    /* a failure sets its own message; the pointer stays the thread's */
    assert_int_equal(uzram_write(dev, page, PAGE, SIZE), -EINVAL);
    const char *m = uzram_last_error();
    assert_non_null(strstr(m, "outside"));
    /* a call that cannot fail leaves it */
    (void)uzram_disksize(dev);
    (void)uzram_open_count(dev);
    assert_ptr_equal(uzram_last_error(), m);
    assert_non_null(strstr(m, "outside"));
    /* the next call that can fail clears it, and a success leaves "" */
    assert_int_equal(uzram_write(dev, page, PAGE, 0), 0);
    assert_string_equal(uzram_last_error(), "");
    char buf[256];
    assert_int_equal(uzram_attr_store(dev, "no_such_attr", "1", 1), -ENOENT);
    assert_non_null(strstr(uzram_last_error(), "no_such_attr"));
    assert_true(uzram_attr_show(dev, "mm_stat", buf, sizeof buf) > 0);
    assert_string_equal(uzram_last_error(), "");
    uint64_t v;
    assert_int_equal(uzram_parse_size("12Q", &v), -EINVAL);
    assert_int_equal(uzram_page_state(dev, 0), UZRAM_PAGE_DATA);
    assert_string_equal(uzram_last_error(), "");

    /* another thread's failure is not this thread's message */
    assert_int_equal(uzram_flush(dev), 0);
    pthread_t t;
    void *rc = (void *)2;
    assert_int_equal(pthread_create(&t, NULL, fail_in_thread, dev), 0);
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_null(rc);
    assert_string_equal(uzram_last_error(), "");

    /* page_state: -ENXIO on an uninitialised device, with a message */
    struct uzram *empty = make(NULL, 0);
    assert_int_equal(uzram_page_state(empty, 0), -ENXIO);
    assert_non_null(strstr(uzram_last_error(), "not initialised"));
    uzram_destroy(empty);

    /* uzram_strerror: static strings, the same pointer every time, for
     * the values uzram returns and for any other */
    const int errs[] = {0, -EINVAL, -ENOMEM, -EBUSY, -ENXIO, -EMLINK, -ENOSPC, -ENODEV, -ELIBACC,
                        -4000, 12345, INT_MIN};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        const char *a = uzram_strerror(errs[i]);
        assert_non_null(a);
        assert_true(a[0] != 0);
        assert_ptr_equal(uzram_strerror(errs[i]), a);
    }
    assert_string_equal(uzram_strerror(-4000), "unknown error");
    assert_non_null(strstr(uzram_strerror(-EMLINK), "references"));
    /* the attribute and algorithm names are static too */
    unsigned mode;
    const char *n0 = uzram_attr_name(0, &mode);
    assert_non_null(n0);
    assert_ptr_equal(uzram_attr_name(0, &mode), n0);
    uzram_destroy(dev);
}

int main(void)
{
    /* The snapshots and exact-length shows below need an attribute's text
     * to stay put while no I/O runs; zsmalloc's prefault helper changes
     * the footprint (debug_stat) by itself, in the background. */
    setenv("UZ_PREFAULT", "0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_out_of_range),
        cmocka_unit_test(test_io_boundaries_ok),
        cmocka_unit_test(test_io_uninitialised),
        cmocka_unit_test(test_attr_malformed_initialised),
        cmocka_unit_test(test_attr_malformed_uninitialised),
        cmocka_unit_test(test_attr_busy),
        cmocka_unit_test(test_compact_any_value),
        cmocka_unit_test(test_attr_access),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_disksize_too_large_message),
        cmocka_unit_test(test_disksize_zero_config),
        cmocka_unit_test(test_last_error_contract),
        /* last: under UBSan a NULL passed to memchr/memcpy stops the program */
        cmocka_unit_test(test_attr_null_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
