/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * policy.h - layer 5 of the store (src/README.md): the policies that run
 * by themselves, a background thread per device (policy.c).
 */
#ifndef UZRAM_POLICY_H
#define UZRAM_POLICY_H

#include "store.h"

/* Parse a policy attribute value into *out (recompress: wb false).
 * "0" / "off" turns it off.  0 or -EINVAL with a message; *out is
 * written only on success. */
int uz_policy_parse(struct uz_store *dev, bool wb, const char *s, struct uz_policy_cfg *out);
/* The attribute's text.  Its length, or -ENOSPC. */
int uz_policy_show(struct uz_store *dev, bool wb, char *buf, size_t size);

/* Start the policy thread if a policy is on and none runs (device
 * initialised).  0 or -ENOMEM/-EAGAIN (no thread; nothing changed). */
int uz_policy_start(struct uz_store *dev);
/* Stop it and wait for it.  Called with init_lock held for writing or
 * with no lock.  Cannot fail. */
void uz_policy_stop(struct uz_store *dev);

#endif
