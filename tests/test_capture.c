/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_capture.c - `uzram capture PID OUT` (tools/capture.c).
 *
 * Why this file includes a .c file: the CMake build links every test
 * program with the library (uzram_static) only, and the capture command
 * lives with the CLI in tools/, outside the library.  tools/capture.c
 * depends on nothing but libc, so the test compiles it in directly
 * (#include "../tools/capture.c" below).  That gives the test the real
 * cmd_capture and also its static helpers, so the two ways of finding
 * present pages (the PAGEMAP_SCAN ioctl and reading pagemap entries) can
 * be checked against each other on one mapping.
 *
 * The target is a forked child that maps 2 MiB, fills every page with a
 * pattern naming its index, maps a larger region it never touches, and
 * waits.  The test captures it and counts the pattern pages in the output.
 * Reading another process's memory needs ptrace access: a parent has it
 * over its own child (as root, or as the same user under Yama's default).
 */
#include "../tools/capture.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PG 4096u
#define PATTERN_PAGES 512u                 /* 2 MiB */
#define HOLE_BYTES (256u << 20)            /* mapped, never touched */

/* Page `idx` of the pattern: a marker, the index, then bytes derived from
 * the index, so a captured page can be checked whole. */
static void pattern_fill(unsigned char *p, uint32_t idx)
{
    memcpy(p, "UZCAPTST", 8);
    memcpy(p + 8, &idx, 4);
    for (size_t k = 12; k < PG; k++)
        p[k] = (unsigned char)(idx * 131u + k * 7u + (k >> 8));
}

/* The index of a pattern page, or -1 if p is not one. */
static long pattern_index(const unsigned char *p)
{
    if (memcmp(p, "UZCAPTST", 8) != 0)
        return -1;
    uint32_t idx;
    memcpy(&idx, p + 8, 4);
    if (idx >= PATTERN_PAGES)
        return -1;
    static unsigned char want[PG];
    pattern_fill(want, idx);
    return memcmp(p, want, PG) == 0 ? (long)idx : -1;
}

struct child {
    pid_t pid;
    uint64_t region;     /* address of the pattern pages in the child */
    uint64_t hole;       /* address of the untouched region */
};

/* Fork the target; returns once its pages are written.  With `sparse`,
 * the child then drops every odd pattern page (MADV_DONTNEED), so those are
 * no longer present. */
static struct child child_start_ex(bool sparse)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        unsigned char *a = mmap(NULL, PATTERN_PAGES * PG, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        unsigned char *hole = mmap(NULL, HOLE_BYTES, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (a == MAP_FAILED || hole == MAP_FAILED)
            _exit(1);
        /* no transparent huge page may fill the hole in */
        madvise(a, PATTERN_PAGES * PG, MADV_NOHUGEPAGE);
        madvise(hole, HOLE_BYTES, MADV_NOHUGEPAGE);
        for (uint32_t i = 0; i < PATTERN_PAGES; i++)
            pattern_fill(a + (size_t)i * PG, i);
        for (uint32_t i = 1; sparse && i < PATTERN_PAGES; i += 2)
            madvise(a + (size_t)i * PG, PG, MADV_DONTNEED);
        uint64_t msg[2] = { (uint64_t)(uintptr_t)a, (uint64_t)(uintptr_t)hole };
        if (write(p[1], msg, sizeof msg) != (ssize_t)sizeof msg)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    uint64_t msg[2];
    assert_int_equal(read(p[0], msg, sizeof msg), (ssize_t)sizeof msg);
    close(p[0]);
    return (struct child){ pid, msg[0], msg[1] };
}

static struct child child_start(void)
{
    return child_start_ex(false);
}

static void child_stop(struct child *c)
{
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
}

/* A fresh temporary file name (the file exists, empty). */
static void temp_path(char *path, size_t n)
{
    snprintf(path, n, "/tmp/uz_capture_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

struct scan {
    uint64_t pages;               /* pages in the file */
    uint64_t matches;             /* pattern pages, counting repeats */
    unsigned distinct;            /* distinct pattern indexes seen */
};

static struct scan scan_file(const char *path)
{
    struct scan s = { 0 };
    static bool seen[PATTERN_PAGES];
    memset(seen, 0, sizeof seen);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char page[PG];
    while (fread(page, 1, PG, f) == PG) {
        s.pages++;
        long idx = pattern_index(page);
        if (idx >= 0) {
            s.matches++;
            if (!seen[idx]) {
                seen[idx] = true;
                s.distinct++;
            }
        }
    }
    fclose(f);
    return s;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static int capture(pid_t pid, const char *out)
{
    char pidstr[32];
    snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
    char *argv[] = { "capture", pidstr, (char *)out, NULL };
    return cmd_capture(3, argv);
}

/* ------------------------------------------------------------------ tests */

static void test_capture_child(void **state)
{
    struct child c = child_start();
    char out[64];
    temp_path(out, sizeof out);
    int rc = capture(c.pid, out);
    child_stop(&c);
    assert_int_equal(rc, 0);
    struct scan s = scan_file(out);
    print_message("  %llu pages captured, %llu pattern pages (%u distinct)\n",
                  (unsigned long long)s.pages, (unsigned long long)s.matches, s.distinct);
    /* every pattern page was present, so every one is there */
    assert_true(s.matches >= PATTERN_PAGES);
    assert_int_equal(s.distinct, PATTERN_PAGES);
    /* whole pages only, and the untouched hole was not read */
    assert_int_equal(file_size(out) % PG, 0);
    assert_true((uint64_t)file_size(out) < HOLE_BYTES);
    unlink(out);
}

/* OUT is appended to, never truncated. */
static void test_capture_appends(void **state)
{
    struct child c = child_start();
    char out[64];
    temp_path(out, sizeof out);
    assert_int_equal(capture(c.pid, out), 0);
    off_t first = file_size(out);
    assert_int_equal(capture(c.pid, out), 0);
    child_stop(&c);
    off_t second = file_size(out);
    assert_true(second >= first + (off_t)(PATTERN_PAGES * PG));
    struct scan s = scan_file(out);
    assert_true(s.matches >= 2 * PATTERN_PAGES);
    assert_int_equal(s.distinct, PATTERN_PAGES);
    unlink(out);
}

/* Set up a struct capture by hand, as cmd_capture does, for one range. */
static void capture_one_range(pid_t pid, uint64_t start, uint64_t end, bool entries,
                              const char *out, struct capture *cap)
{
    memset(cap, 0, sizeof *cap);
    cap->pid = pid;
    cap->page = (size_t)sysconf(_SC_PAGESIZE);
    cap->no_scan = entries;
    cap->pagemap_fd = capture_open_proc(pid, "pagemap");
    cap->mem_fd = capture_open_proc(pid, "mem");
    cap->out_fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644);
    assert_true(cap->pagemap_fd >= 0 && cap->mem_fd >= 0 && cap->out_fd >= 0);
    cap->buf = malloc((size_t)CAPTURE_BATCH * cap->page);
    cap->pm = malloc(CAPTURE_PM_ENTRIES * sizeof *cap->pm);
    cap->regions = malloc(CAPTURE_REGIONS * sizeof *cap->regions);
    assert_true(cap->buf && cap->pm && cap->regions);
    assert_true(capture_range(cap, start, end));
    close(cap->pagemap_fd);
    close(cap->mem_fd);
    close(cap->out_fd);
    free(cap->buf);
    free(cap->pm);
    free(cap->regions);
}

/* Both ways of finding present pages agree, byte for byte, on a range that
 * holds the pattern pages, part of the untouched hole, and pages made
 * non-present again in between. */
static void test_scan_and_entries_agree(void **state)
{
    struct child c = child_start();
    char a[64], b[64];
    temp_path(a, sizeof a);
    temp_path(b, sizeof b);
    struct capture ca, cb;
    /* the pattern region alone */
    capture_one_range(c.pid, c.region, c.region + PATTERN_PAGES * PG, false, a, &ca);
    capture_one_range(c.pid, c.region, c.region + PATTERN_PAGES * PG, true, b, &cb);
    /* and a stretch of the hole: nothing present there */
    capture_one_range(c.pid, c.hole, c.hole + (64u << 20), false, a, &ca);
    uint64_t scan_hole = ca.pages;
    capture_one_range(c.pid, c.hole, c.hole + (64u << 20), true, b, &cb);
    uint64_t entries_hole = cb.pages;
    child_stop(&c);
    assert_int_equal(scan_hole, 0);
    assert_int_equal(entries_hole, 0);
    assert_int_equal(file_size(a), (off_t)(PATTERN_PAGES * PG));
    assert_int_equal(file_size(b), (off_t)(PATTERN_PAGES * PG));
    struct scan sa = scan_file(a), sb = scan_file(b);
    assert_int_equal(sa.matches, PATTERN_PAGES);
    assert_int_equal(sb.matches, PATTERN_PAGES);
    /* same bytes in the same order */
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    static unsigned char pa[PG], pb[PG];
    for (unsigned i = 0; i < PATTERN_PAGES; i++) {
        assert_int_equal(fread(pa, 1, PG, fa), PG);
        assert_int_equal(fread(pb, 1, PG, fb), PG);
        assert_memory_equal(pa, pb, PG);
        assert_int_equal(pattern_index(pa), (long)i);   /* in address order */
    }
    fclose(fa);
    fclose(fb);
    unlink(a);
    unlink(b);
}

/* Only present pages are captured: of a pattern whose odd pages were
 * dropped, exactly the even ones come out, by both ways of finding them,
 * and the whole-process capture has every even page and no odd one. */
static void test_capture_sparse(void **state)
{
    struct child c = child_start_ex(true);
    char a[64], b[64], all[64];
    temp_path(a, sizeof a);
    temp_path(b, sizeof b);
    temp_path(all, sizeof all);
    struct capture ca, cb;
    capture_one_range(c.pid, c.region, c.region + PATTERN_PAGES * PG, false, a, &ca);
    capture_one_range(c.pid, c.region, c.region + PATTERN_PAGES * PG, true, b, &cb);
    int rc = capture(c.pid, all);
    child_stop(&c);
    assert_int_equal(rc, 0);
    assert_int_equal(ca.pages, PATTERN_PAGES / 2);
    assert_int_equal(cb.pages, PATTERN_PAGES / 2);
    const char *files[] = { a, b };
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(files[f], "rb");
        assert_non_null(fp);
        static unsigned char page[PG];
        for (unsigned i = 0; i < PATTERN_PAGES / 2; i++) {
            assert_int_equal(fread(page, 1, PG, fp), PG);
            assert_int_equal(pattern_index(page), (long)(2 * i));
        }
        assert_int_equal(fread(page, 1, PG, fp), 0);
        fclose(fp);
    }
    struct scan s = scan_file(all);
    assert_int_equal(s.distinct, PATTERN_PAGES / 2);
    unlink(a);
    unlink(b);
    unlink(all);
}

static void test_capture_bad_args(void **state)
{
    char out[64];
    temp_path(out, sizeof out);
    char *none[] = { "capture", NULL };
    char *one[] = { "capture", "1", NULL };
    char *three[] = { "capture", "1", out, "extra", NULL };
    assert_int_equal(cmd_capture(1, none), 1);
    assert_int_equal(cmd_capture(2, one), 1);
    assert_int_equal(cmd_capture(4, three), 1);
    static const char *bad[] = { "", "0", "-5", "12x", "x12", "99999999999", " 7" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = { "capture", (char *)bad[i], out, NULL };
        assert_int_equal(cmd_capture(3, argv), 1);
    }
    assert_int_equal(file_size(out), 0);
    unlink(out);
}

static void test_capture_no_such_process(void **state)
{
    /* a pid that just stopped existing */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    char out[64];
    temp_path(out, sizeof out);
    assert_int_equal(capture(pid, out), 1);
    assert_int_equal(file_size(out), 0);
    unlink(out);
}

static void test_capture_bad_output(void **state)
{
    struct child c = child_start();
    int rc1 = capture(c.pid, "/nonexistent-dir/out.pages");
    int rc2 = capture(c.pid, "/proc/self");   /* a directory */
    child_stop(&c);
    assert_int_equal(rc1, 1);
    assert_int_equal(rc2, 1);
}

/* Without ptrace access (an unprivileged user looking at pid 1): exit 1. */
static void test_capture_no_permission(void **state)
{
    unlink("/tmp/uz_capture_denied");
    if (geteuid() != 0) {
        print_message("  not root: cannot drop to another user; skipped\n");
        skip();
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        char *argv[] = { "capture", "1", "/tmp/uz_capture_denied", NULL };
        _exit(cmd_capture(3, argv));
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    struct stat sb;
    assert_int_not_equal(stat("/tmp/uz_capture_denied", &sb), 0);   /* nothing created */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_child),
        cmocka_unit_test(test_capture_appends),
        cmocka_unit_test(test_scan_and_entries_agree),
        cmocka_unit_test(test_capture_sparse),
        cmocka_unit_test(test_capture_bad_args),
        cmocka_unit_test(test_capture_no_such_process),
        cmocka_unit_test(test_capture_bad_output),
        cmocka_unit_test(test_capture_no_permission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
