/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dynlib.c - shared libraries loaded when first used, not when the
 * program starts (layer 0 of the store: src/README.md).
 *
 * Why.  Every library a process links is mapped at start, and the pages
 * the dynamic linker and the first calls touch are resident from then on:
 * about 64-84 KiB for each of liblz4, liblzo2 and zlib even when the
 * device never uses them (fault-around maps 16 pages of the file per
 * fault).  A device uses one primary algorithm and at most three
 * secondaries, so codec.c resolves each compression library the first
 * time a context of its codec is made (the nbdkit plugin with
 * algorithm=zstd maps libzstd alone).  Nothing on the I/O path changes:
 * calls go through a function pointer filled once.
 *
 * How.  dlopen(soname, RTLD_NOW | RTLD_LOCAL), then dlsym for each
 * symbol; if anything is missing the library is closed again and the
 * error is kept: a library that failed is not retried (the answer is the
 * same for the life of the process).  A process that links the library
 * itself (the tests, the CLI's bench) gets the copy already mapped.  One
 * mutex serialises first loads; afterwards a load is one acquire load of
 * the state.
 *
 * Locking: load_lock is a leaf (nothing is taken under it), taken only
 * when a codec context is made (device init, stream creation), never on
 * the I/O path; src/README.md has the global order.
 */
#define _GNU_SOURCE
#include "dynlib.h"
#include "error.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

int uz_dynlib_load(struct uz_dynlib *lib)
{
    int st = atomic_load_explicit(&lib->state, memory_order_acquire);
    if (st == 1)
        return 0;
    if (st < 0)
        return uz_error(st, "%s could not be loaded earlier", lib->soname);
    pthread_mutex_lock(&load_lock);
    st = atomic_load_explicit(&lib->state, memory_order_relaxed);
    int err = 0;
    if (st == 0) {
        void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            err = uz_error(-ELIBACC, "cannot load %s: %s", lib->soname, dlerror());
        } else {
            for (const struct uz_dynsym *s = lib->syms; s->name && err == 0; s++) {
                void *p = dlsym(h, s->name);
                if (!p)
                    err = uz_error(-ELIBACC, "%s has no %s", lib->soname, s->name);
                else
                    memcpy(s->slot, &p, sizeof p);
            }
            if (err < 0)
                dlclose(h);
        }
        atomic_store_explicit(&lib->state, err < 0 ? err : 1, memory_order_release);
    } else if (st < 0) {
        err = uz_error(st, "%s could not be loaded earlier", lib->soname);
    }
    pthread_mutex_unlock(&load_lock);
    return err;
}
