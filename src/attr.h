/*
 * attr.h - internal helpers of the zram attribute table (src/attr.c).
 */
#ifndef UZRAM_ATTR_H
#define UZRAM_ATTR_H
#include <stdint.h>
#include <stddef.h>

/* Parse a size the way the kernel's memparse does: a number (decimal, 0x
 * hex or 0 octal) with an optional K, M, G, T, P or E suffix (binary units),
 * optionally followed by one newline.  0 or -EINVAL (empty, garbage,
 * overflow). */
int uz_memparse(const char *s, size_t len, uint64_t *out);

#endif
