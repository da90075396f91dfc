/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * up.h - a section of /etc/uzram.conf checked as `uzram up` would apply
 * it (up.c), for `uzram up` itself and for uzram-generator.
 */
#ifndef UZRAM_UP_H
#define UZRAM_UP_H

#include <stddef.h>

#include "conf.h"

/*
 * Would `uzram up` take the section d?  The section is turned into its
 * set-up exactly as `uzram up` turns it (the sizes evaluated against
 * ram_mib), and the set-up's attribute writes - the algorithms and their
 * parameters, disksize, mem_limit, the policies, auto_compact - are
 * replayed on a device of the library's own, in the order `uzram up`
 * writes them, so each value meets the parser that would judge it at
 * boot.  What the check cannot try without the machine's state is left
 * to `up`: writeback-device (its disk may not exist yet when generators
 * run), the mount point and fs-type (mkfs.TYPE).  Returns 0, or -1 with
 * the reason in why and, when one key is to blame, that key (an entry
 * of conf_keys) in *key (else NULL).  A section the reader rejected
 * (d->nerrors) fails with its first error.
 */
int up_check_section(const struct conf_dev *d, double ram_mib, char *why, size_t whysize,
                     const char **key);

#endif
