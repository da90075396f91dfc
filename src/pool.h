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

#endif
