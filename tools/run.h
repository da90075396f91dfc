/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * run.h - running other programs from the CLI (losetup, mkswap, mkfs,
 * swapon, mount, gnuplot, and `uzram` itself): one spawn-and-wait helper.
 */
#ifndef UZRAM_RUN_H
#define UZRAM_RUN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Run argv[0] (looked up in PATH) with argv and wait for it.  If out is
 * not NULL, its standard output is captured into out (NUL-terminated,
 * trailing newline removed, truncated to outsize - 1); if quiet, its
 * standard output goes to /dev/null (stderr is always left alone, so the
 * program's own error reaches the user).  Returns the exit status (0 on
 * success), 128 + N if it died of signal N, or -errno if it could not be
 * started (-ENOENT: not installed).
 */
int run_program(char *const argv[], char *out, size_t outsize, bool quiet);

/* The path of the running executable (for running `uzram` sub-commands),
 * or "uzram" if /proc/self/exe cannot be read. */
const char *self_exe(void);

#endif
