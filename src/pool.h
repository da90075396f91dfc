/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pool.h - layer 4 of the store (src/README.md): pools, one store with
 * many devices (pool.c).  The public side is in uzram.h
 * ("Pools").
 */
#ifndef UZRAM_POOL_H
#define UZRAM_POOL_H

#include "device.h"

/* The pool's whole store as a device of no pool (for its attributes and
 * stats): initialised, never sized, reset or destroyed by a user. */
struct uzram *uz_pool_view(struct uzram_pool *pool);

/* A pool of capacity bytes (0: the default, 4 TiB), its store
 * configured with the defaults and not yet live, for uzram_pool_create
 * (attr.c) to apply the config's settings to uz_pool_view.  0, or
 * -EINVAL (capacity), -ENOMEM. */
int uz_pool_new(uint64_t capacity, struct uzram_pool **out);
/* Make the pool's store live for its capacity.  0 or uz_store_init's
 * errors (the caller destroys the pool). */
int uz_pool_start(struct uzram_pool *p);

#endif
