/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * attr.h - layer 6 of the store (src/README.md): the zram attribute
 * table (attr.c).  Its whole interface is public: uzram_attr_show,
 * uzram_attr_store and uzram_attr_name in uzram.h.
 */
#ifndef UZRAM_ATTR_H
#define UZRAM_ATTR_H

#include "uzram.h"

#endif
