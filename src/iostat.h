/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * iostat.h - layer 4 of the store (src/README.md): the device's block
 * layer counters and the "stat" attribute, in the format of
 * /sys/block/zramN/stat (iostat.c).  io.c counts every call of the public
 * data path, whoever makes it (a library user, the FUSE mount, the nbdkit
 * plugin), as the block layer counts every request to a disk.
 */
#ifndef UZRAM_IOSTAT_H
#define UZRAM_IOSTAT_H

#include "store.h"

/* Start of a request: its start time, for uz_iostat_done.  Cannot fail. */
uint64_t uz_iostat_start(struct uzram *dev);
/* A request of group (UZ_IO_*) and bytes ended; rc is passed through.
 * Failed requests are counted too (the block layer counts completions;
 * the errors are in io_stat). */
int uz_iostat_done(struct uzram *dev, int group, uint64_t bytes, uint64_t t0, int rc);

/*
 * The "stat" attribute: 17 fields as the block layer prints them - read
 * I/Os, read merges, read sectors, read ticks (ms), the same four for
 * writes, in_flight, io_ticks (ms), time_in_queue (ms), the four for
 * discards, flush I/Os, flush ticks.  uzram merges nothing, so merges are
 * 0.  Length, or -ENOSPC if buf is too small.
 */
int uz_iostat_show(struct uzram *dev, char *buf, size_t size);

#endif
