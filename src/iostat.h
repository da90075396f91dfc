/*
 * iostat.h - a frontend's I/O counters and the "stat" attribute, in the
 * block layer's format (what /sys/block/zramN/stat reads).
 *
 * The counters belong to a frontend (the FUSE mount, the nbdkit plugin):
 * it keeps a struct uz_iostat, attaches it to the device it serves, and
 * goes through the uz_io_* wrappers instead of calling uzram_read() and
 * the rest directly.  The "stat" attribute sums the counters attached to
 * the device (a device served by both the plugin and its control mount
 * counts both); with none attached it reads all zeros, as a zram device
 * nobody has done I/O on.
 */
#ifndef UZRAM_IOSTAT_H
#define UZRAM_IOSTAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct uzram;

/* The block layer's stat groups. */
enum { UZ_IO_READ, UZ_IO_WRITE, UZ_IO_DISCARD, UZ_IO_FLUSH, UZ_IO_GROUPS };

struct uz_iostat {
    _Atomic uint64_t ios[UZ_IO_GROUPS];       /* requests completed */
    _Atomic uint64_t sectors[UZ_IO_GROUPS];   /* 512-byte sectors */
    _Atomic uint64_t ticks_ns[UZ_IO_GROUPS];  /* time spent on them */
    _Atomic uint64_t in_flight;
    _Atomic uint64_t busy_since_ns;           /* when in_flight left 0 */
    _Atomic uint64_t io_ticks_ns;             /* time with requests in flight */
};

/* Attach s (zeroed by the caller) to dev so "stat" shows it; detach before
 * s or dev goes away.  -ENOSPC if 16 are attached already. */
int uz_iostat_attach(struct uzram *dev, struct uz_iostat *s);
void uz_iostat_detach(struct uzram *dev, struct uz_iostat *s);

/* The data path, counted in s: the uzram_* calls of the same names. */
int uz_io_read(struct uz_iostat *s, struct uzram *dev, void *buf, size_t len, uint64_t off);
int uz_io_write(struct uz_iostat *s, struct uzram *dev, const void *buf, size_t len,
                uint64_t off);
int uz_io_discard(struct uz_iostat *s, struct uzram *dev, size_t len, uint64_t off);
int uz_io_write_zeroes(struct uz_iostat *s, struct uzram *dev, size_t len, uint64_t off);
int uz_io_flush(struct uz_iostat *s, struct uzram *dev);

/*
 * The "stat" attribute: 17 fields as the block layer prints them - read
 * I/Os, read merges, read sectors, read ticks (ms), the same four for
 * writes, in_flight, io_ticks (ms), time_in_queue (ms), the four for
 * discards, flush I/Os, flush ticks.  uzram merges nothing, so merges are
 * 0.  Length, or -ENOSPC if buf is too small.
 */
int uz_iostat_show(struct uzram *dev, char *buf, size_t size);

#endif
