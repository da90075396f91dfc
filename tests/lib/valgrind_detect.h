/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * valgrind_detect.h - RUNNING_ON_VALGRIND where valgrind's header is
 * installed, else 0: tests that reserve terabytes of address space (which
 * valgrind cannot) shrink themselves under it.
 */
#ifndef UZRAM_TEST_VALGRIND_DETECT_H
#define UZRAM_TEST_VALGRIND_DETECT_H
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#endif
