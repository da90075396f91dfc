/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * error.h - the calling thread's detailed error message.
 *
 * Functions that fail return a negative errno; where there is more to say
 * ("disksize: trailing garbage"), they also record a message here, which
 * uzram_last_error() hands to the user.
 */
#ifndef UZRAM_ERROR_H
#define UZRAM_ERROR_H

/* printf-style; returns err unchanged so callers can write
 * `return uz_error(-EINVAL, "bad %s", x);` */
int uz_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empty this thread's last error: every public call that can fail does
 * this first (uzram.h, "Errors"). */
void uz_error_clear(void);
/* A public call's result: a failure (rc < 0) that set no message gets
 * "what: strerror(-rc)", so no failure is silent.  Returns rc. */
int uz_error_done(int rc, const char *what);

/* Clear the calling thread's message: the first thing every public
 * function that can fail does (uzram.h, "Errors"), so that the message
 * after a failure is that failure's and after a success is "". */
void uz_error_clear(void);

#endif
