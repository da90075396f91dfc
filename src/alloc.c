/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * alloc.c - the allocator registry: the store asks for an allocator by
 * name and gets its ops table (see alloc.h).  Adding an allocator is one
 * line here.
 */
#include "alloc.h"

#include <string.h>

static const struct uz_alloc_ops *const allocators[] = {
    &uz_zsmalloc_ops,
#ifdef UZ_HAVE_XVMALLOC
    &uz_xvmalloc_ops,
#endif
#ifdef UZ_HAVE_MALLOCATOR
    &uz_malloc_ops,
#endif
};

const struct uz_alloc_ops *uz_alloc_at(unsigned i)
{
    return i < sizeof allocators / sizeof allocators[0] ? allocators[i] : NULL;
}

const struct uz_alloc_ops *uz_alloc_find(const char *name)
{
    for (unsigned i = 0; uz_alloc_at(i); i++)
        if (strcmp(uz_alloc_at(i)->name, name) == 0)
            return uz_alloc_at(i);
    return NULL;
}
