/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dynlib.h - a shared library loaded on first use (dynlib.c): layer 0 of
 * the store (src/README.md).
 */
#ifndef UZRAM_DYNLIB_H
#define UZRAM_DYNLIB_H

#include <stdatomic.h>

/* One symbol: its name and where its address goes (a pointer to a
 * function pointer of the symbol's type, as void *: the address is copied
 * in with memcpy, the way POSIX sanctions for dlsym's result). */
struct uz_dynsym {
    const char *name;
    void *slot;
};

/* A library: its soname and symbols (a table ended by a NULL name).  state
 * starts 0 (static storage); uz_dynlib_load sets it. */
struct uz_dynlib {
    const char *soname;
    const struct uz_dynsym *syms;
    _Atomic int state;            /* 0 not tried, 1 loaded, < 0 the error */
};

/* Load lib and fill every symbol's slot, once per process: later calls
 * return the first one's answer at the cost of one atomic load.  0, or
 * -ELIBACC (the library or a symbol is missing; uz_error says which).
 * Thread-safe. */
int uz_dynlib_load(struct uz_dynlib *lib);

#endif
