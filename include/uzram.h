/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * uzram.h - the whole public API of libuzram.
 *
 * libuzram is the kernel's zram carried into user space: a block store of
 * 4 KiB pages that are compressed and kept in RAM.  Zero and same-filled
 * pages take no memory at all; pages that do not compress are stored raw.
 *
 * A device is a byte-addressable disk of a fixed size (its "disksize").
 * Any byte range can be read or written; partial pages are handled by
 * read-modify-write under the page's lock.  A page that was never written,
 * or that was discarded, reads as zeros.
 *
 * Besides the data path, a device has the zram attribute interface: the
 * same attribute names, value formats and error behaviour as the files under
 * /sys/block/zramN.  uzram_attr_show() / uzram_attr_store() are the one place
 * every frontend (library users, the FUSE mount, the nbdkit plugin) goes
 * through.
 *
 * Errors: every function that can fail returns a negative errno value
 * (-EINVAL, -ENOMEM, -EIO, ...); each function below lists the ones it
 * returns.  uzram_strerror() gives a readable text of the errno;
 * uzram_last_error() gives the detailed message of the calling thread's
 * last failure (e.g. "disksize: unknown suffix 'Q'").  The message is per
 * thread: every function that can return an error clears it when it is
 * called, and a failure sets it before returning, so right after a call
 * returned a negative value it says why that call failed, and after one
 * that succeeded it is "".  The functions that cannot fail (those that
 * say so, and those that return a pointer, a size or a count) leave it
 * as it was.
 *
 * Thread-safety: unless a function says otherwise, every function may be
 * called from any number of threads at once on the same device.  The data
 * path takes only a per-page lock and a per-CPU compression stream; there is
 * no device-wide lock on it.  uzram_destroy() must not race with any other
 * call on the same device.
 *
 * Typical use:
 *
 *     struct uzram_config cfg;
 *     uzram_config_init(&cfg);
 *     cfg.disksize = 1ull << 30;
 *     cfg.algorithm = "zstd";
 *     struct uzram *dev;
 *     int err = uzram_create(&cfg, &dev);
 *     if (err < 0) { fprintf(stderr, "%s\n", uzram_last_error()); ... }
 *     uzram_write(dev, buf, 4096, 0);
 *     uzram_read(dev, buf, 4096, 0);
 *     char mm[256];
 *     uzram_attr_show(dev, "mm_stat", mm, sizeof mm);
 *     uzram_destroy(dev);
 */
#ifndef UZRAM_H
#define UZRAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function below is exported from libuzram.so; everything else in
 * the library is hidden. */
#if defined(__GNUC__)
#define UZRAM_API __attribute__((visibility("default")))
#else
#define UZRAM_API
#endif

/*
 * Version, as lz4.h and zstd.h give theirs: the header's version as
 * macros, the library's at run time (uzram_version_number()), so a
 * program can tell which library it runs with.  UZRAM_VERSION_NUMBER is
 * major * 10000 + minor * 100 + release.
 */
#define UZRAM_VERSION_MAJOR 0
#define UZRAM_VERSION_MINOR 2
#define UZRAM_VERSION_RELEASE 0
#define UZRAM_VERSION_NUMBER \
    (UZRAM_VERSION_MAJOR * 10000 + UZRAM_VERSION_MINOR * 100 + UZRAM_VERSION_RELEASE)
#define UZRAM_STR_(x) #x
#define UZRAM_STR(x) UZRAM_STR_(x)
#define UZRAM_VERSION_STRING \
    UZRAM_STR(UZRAM_VERSION_MAJOR) "." UZRAM_STR(UZRAM_VERSION_MINOR) "." UZRAM_STR(UZRAM_VERSION_RELEASE)

/*
 * Structs that grow.  struct uzram_config and struct uzram_stats are
 * allocated by the caller and may gain fields at their ends in later
 * versions.  The caller's size travels with them: uzram_config_init()
 * records sizeof the caller's struct in its `size` field, and
 * uzram_get_stats() passes it, so a program built against an older
 * header keeps working with a newer library (the fields it does not know
 * take their defaults, or are not written).  Both are macros over the
 * _size functions for that reason; call the macros.
 */

/* The page size of the store.  All sizes in statistics are bytes unless
 * named "pages". */
#define UZRAM_PAGE_SIZE 4096u

struct uzram;

/*
 * Device configuration.  Initialise with uzram_config_init(), then set what
 * you need.  Strings are copied by uzram_create(); they need not outlive it.
 */
struct uzram_config {
    /* sizeof the caller's struct, set by uzram_config_init(); 0 (a config
     * not made by it) is refused with -EINVAL. */
    uint32_t size;
    /* Disk size in bytes, rounded up to a whole page.  0 creates an
     * uninitialised device: only the attribute interface works until
     * "disksize" is stored (as with zram). */
    uint64_t disksize;
    /* Primary compression algorithm: "lz4" (default), "lz4hc", "lzo",
     * "lzo-rle" (alias of lzo here), "zstd", "deflate", "none" (no
     * compression: every page kept raw, the raw RAM mode). */
    const char *algorithm;
    /* Compression level; 0 means the algorithm's default. */
    int level;
    /* Allocator for compressed objects: "zsmalloc" (default). */
    const char *allocator;
    /* Cap on the allocator's memory in bytes (zram's mem_limit); 0 = none.
     * A write that would pass it fails with -ENOMEM and changes nothing. */
    uint64_t mem_limit;
    /* Pages that compress to this many bytes or more are stored raw.
     * 0 = the allocator's default (the largest size class that is not
     * huge, as zram does). */
    uint32_t huge_threshold;
    /* Number of compression streams; 0 = one per CPU (as zram). */
    unsigned streams;
    /* Automatic compaction: keep the footprint within this bound, in
     * thousandths of compr_data_size, by compacting in bounded steps on the
     * write path (the "auto_compact" attribute).  0 = the default, 1050
     * (1.05 x); UZRAM_COMPACT_OFF = never compact unless asked. */
    uint32_t compact_bound;
    /* Group compression (the "group_pages" attribute): 0 or 1 = off (the
     * default); 2, 4 or 8 = a write that covers an aligned group of that
     * many pages (an offset multiple of group_pages * 4096) compresses them
     * as one unit: better ratio and faster with zstd and lz4 on real
     * memory, at the price of decompressing the whole group for a read of
     * part of it, and of breaking it into single pages (read, recompress
     * each page, store) for a write or discard of part of it.
     * UZRAM_GROUP_AUTO (the "auto" attribute value; the default of the
     * nbdkit plugin and of `uzram mount`, not of the library): each write
     * chooses, by its own offset and length, the largest aligned group of
     * 8, 4 or 2 pages it covers, and stores the pages it does not cover
     * whole one by one.  So large sequential writes are compressed in
     * groups and small random writes stay single pages, with no
     * read-modify-write of a group unless one is stored there already.
     * On a device with a backing device auto stores single pages only
     * (groups are never written back).  With dedup on or auto (the
     * default) auto stores single pages too, every one looked up, and
     * settling makes the groups; if dedup was on when the disk size was
     * set, it keeps doing so after dedup is turned off, until the next
     * disksize.
     * The streams of a device that writes groups carry scratch for 8-page
     * groups (in the footprint; a zstd context sized for 32 KiB inputs).  Other values: -EINVAL.
     * Groups are never written back; see also recompress group=K, which
     * builds groups on any device. */
    uint32_t group_pages;

    /* ---- beyond RAM (all off / empty by default) ---- */

    /* Backing file or block device (zram's backing_dev): written-back and
     * forwarded pages live there, one 4 KiB block each.  A regular file
     * must already have its size (e.g. `truncate -s 4G FILE`); it is used
     * with O_DIRECT when the file system allows.  Or an NBD URI, far
     * memory on another host (docs/far-memory.md):
     * nbd://HOST[:PORT]/EXPORT, nbds://[USER@]HOST... (TLS: libnbd's
     * tls-psk-file= or tls-certificates=; USER, the PSK identity, is the
     * process's user name when not given), nbd+unix:///EXPORT?socket=PATH,
     * nbds+unix://[USER@]/..., with optional connections=N (1..16,
     * default 4, used when the server offers multi-conn) and timeout=S
     * (1..3600 s per request or connection attempt, default 10).  Over
     * NBD a failed or timed-out writeback keeps the page in RAM, a read
     * that fails or does not match what was written (a server that
     * restarted empty) is -EIO and counted as a failed read, never wrong
     * bytes.  Dropped connections are made again on use (at most once a
     * second while the server is away), and a read or write whose
     * connection dropped is sent once more on a fresh one, so one request
     * takes at most about 2 x timeout; one the server failed, or that
     * timed out, is not retried.  Reset and destroy never wait for the
     * server.  NULL = none. */
    const char *backing_dev;
    /* Write pages to the backing device compressed (smaller I/O, read back
     * and decompressed on access) instead of as raw 4 KiB pages. */
    bool writeback_compressed;
    /* The compcache forward of incompressible pages: with a backing device,
     * a page whose compressed size is this many bytes or more goes straight
     * to it (e.g. 2048 = compresses worse than half a page).  0 = off.
     * (Pages over mem_limit always go there when a backing device is set.) */
    uint32_t forward_threshold;
    /* Secondary algorithms for recompression, priorities 1..3 (zram's
     * recomp_algorithm); NULL = none at that priority.  Default:
     * UZRAM_SETTLE_ALGORITHM (zstd, level 6 unless algorithm_params says
     * otherwise) at priority 1, the one settling uses; no dictionary (one
     * does not pay on settled groups: docs/dictionaries.md). */
    const char *recomp_algorithm[3];
    /* Automatic policies, in the format of the recompress_policy and
     * writeback_policy attributes; NULL or "off" = off.  The recompress
     * policy's default is UZRAM_SETTLE: settling (see below). */
    const char *recompress_policy;
    const char *writeback_policy;

    /* ---- fields added in 0.2 (the size field tells the library whether
     * a caller knows them) ---- */

    /* Identical pages stored once (the "dedup" attribute): "1"/"on" (the
     * default, NULL), "auto", "0"/"off".  A page about to be stored is
     * looked up by a 64-bit hash (XXH3) in a content index and, if the
     * same bytes are stored already (compared, never trusted to the hash),
     * it becomes one more reference to them.  "on" looks up every page;
     * "auto" looks at one page in sixteen (chosen by content, so
     * duplicates are sampled alike) and at every page while at least 2% of
     * them turn out to be stored already (every page is indexed either
     * way); it misses the repeats that come before the sample has seen
     * enough of them, so "on" is the default (docs/settling.md).  A shared page is read, written back,
     * recompressed and compacted once, for all its references; writing a
     * page of it gives that page its own copy. */
    const char *dedup;
};

/* Settling, the default recompress_policy ("settle"): a background
 * thread per device finds pages idle for 120 s (idle_secs=T) and, in
 * aligned windows of 8, regroups runs of 8, 4 or 2 of them into groups
 * compressed with the first secondary (zstd level 6 by default),
 * recompresses groups made by the primary as a unit, and recompresses
 * what is left page by page; shared pages stay shared (their record is
 * recompressed once).  Its CPU is bounded (cpu=5: 5% of one core, over
 * any span of ticks) and it gives way to foreground I/O for at most 10 s
 * at a time.  "settle idle_secs=T cpu=P" changes its figures; "off" (or
 * NULL in the config) turns it off.  A read of a settled page
 * decompresses its group; a write of one breaks the group (group.c) and
 * the page is settled again once idle.  In a pool, a source that clones
 * read through is settled once for all of them: regrouped where no clone
 * has a page of its own, page by page where one has. */
#define UZRAM_SETTLE "settle"
#define UZRAM_SETTLE_ALGORITHM "zstd"

/* group_pages: each write chooses its groups (see above).  An older
 * library refuses it with -EINVAL. */
#define UZRAM_GROUP_AUTO 0xffffffffu

#define UZRAM_COMPACT_DEFAULT 1050u
#define UZRAM_COMPACT_OFF 0xffffffffu

/* Fill *cfg with the defaults described above (size bytes of it: pass
 * sizeof *cfg, as the macro does).  Cannot fail.  Thread-safe. */
UZRAM_API void uzram_config_init_size(struct uzram_config *cfg, size_t size);
#define uzram_config_init(cfg) uzram_config_init_size((cfg), sizeof *(cfg))

/*
 * Set one field of *cfg from a word, parsed by the attribute table, the
 * one parser every frontend uses (so a word means here what it means
 * written to the attribute file of that name).  name is an attribute
 * name (disksize, comp_algorithm, max_comp_streams, auto_compact,
 * group_pages, mem_limit, dedup, recompress_policy, writeback_policy,
 * backing_dev, writeback_compressed, forward_threshold) or allocator,
 * huge_threshold, or one of the aliases size, algorithm, level (N, the
 * primary's), streams, compact_bound.  Values that name secondaries
 * (policies' algo=) are checked against cfg->recomp_algorithm, so set
 * those first.  String fields keep the pointer value: it must outlive
 * cfg's use.  backing_dev is opened only by uzram_create.  0, or -ENOENT
 * (no such setting) or the attribute's -EINVAL, with a message; *cfg is
 * unchanged on error.  Thread-safe.
 */
UZRAM_API int uzram_config_set(struct uzram_config *cfg, const char *name, const char *value);

/*
 * Create a device.  On success stores it in *out and returns 0.
 * cfg == NULL means every default.  Errors: -EINVAL (a config not made by
 * uzram_config_init or made by a newer header than the library's; an
 * unknown algorithm, allocator or secondary algorithm; a level outside
 * the algorithm's range; disksize over 8 TiB; group_pages, dedup,
 * huge_threshold, streams, compact_bound or a policy not as described
 * above), -ENOMEM (also when the algorithm's library cannot be loaded:
 * liblz4, libzstd, ... are loaded on first use), or the backing device's
 * error (-ENOENT, -EACCES, -ENOTBLK, -EINVAL for
 * a file smaller than a block, ...).  A policy whose thread cannot start
 * is no error: policy_stat says so.  Nothing is created on error.
 * Thread-safe.
 */
UZRAM_API int uzram_create(const struct uzram_config *cfg, struct uzram **out);

/* Free a device and everything it holds.  NULL is accepted.  Cannot
 * fail.  Must not race any other call on the device. */
UZRAM_API void uzram_destroy(struct uzram *dev);

/*
 * The open count, zram's rule that an open device cannot be reshaped.
 * A frontend calls uzram_open() when a client starts using the disk (a
 * FUSE open of DIR/disk, an NBD connection) and uzram_close() when it
 * stops.  While the count is not 0, the attribute stores that reshape the
 * device (reset, disksize, comp_algorithm, algorithm_params,
 * recomp_algorithm, group_pages, backing_dev, max_comp_streams) fail with
 * -EBUSY, as zram's do while /dev/zramN is open, and the client keeps its
 * data.  uzram_open cannot fail and works on an uninitialised device too
 * (an open zram device of disksize 0 stays unsizable until closed);
 * uzram_close must pair with an open.  uzram_open_count() is the current
 * count.  All three are thread-safe.
 */
UZRAM_API void uzram_open(struct uzram *dev);
UZRAM_API void uzram_close(struct uzram *dev);
UZRAM_API unsigned uzram_open_count(struct uzram *dev);

/*
 * Check the store's invariants (counters against a recount of the slot
 * table, every object's back-reference, compressed groups, backing
 * blocks, the allocator's own structures).  Waits for I/O in flight and
 * holds new I/O off while it runs (it takes the device exclusively); slow
 * (every stored page is looked at): for tests and for debugging.
 * Returns 0, or -EFAULT with the first broken invariant in
 * uzram_last_error().  An uninitialised device checks clean.  On a device
 * of a pool it checks the whole pool (every device, the links of clones,
 * the shared records), holding the pool's I/O off.
 */
UZRAM_API int uzram_check(struct uzram *dev);

/*
 * Memory locking, for a process that serves swap (a swap device in user
 * space must not be swapped out, or it deadlocks).
 *
 * uzram_lock_memory: mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) (a
 *   page is locked when first touched, so reserved address space costs
 *   nothing), tells the library (it then unlocks pages before giving them
 *   back, and relocks on fault), and marks the calling thread and the
 *   threads it creates afterwards PR_SET_IO_FLUSHER where the process may
 *   (CAP_SYS_RESOURCE; without it the lock alone still keeps the server
 *   out of swap).  With glibc it also limits malloc to one arena
 *   (mallopt M_ARENA_MAX 1): a locked page cannot be dropped, so a thread
 *   arena would keep its peak for ever, while the brk heap shrinks.
 *   Returns 0; -EPERM when the process may not lock without
 *   limit (not root and RLIMIT_MEMLOCK finite: MCL_FUTURE would make the
 *   device unable to grow); or mlockall's error (-ENOMEM, -EPERM).  On
 *   error nothing is locked.  Call it once, before starting I/O threads.
 * uzram_unlock_memory: munlockall() and tell the library.  Cannot fail.
 * uzram_set_memory_locked: only tell the library, for a program that
 *   locked its memory with mlockall(MCL_ONFAULT) itself.  Cannot fail.
 */
UZRAM_API int uzram_lock_memory(void);
UZRAM_API void uzram_unlock_memory(void);
UZRAM_API void uzram_set_memory_locked(bool locked);

/*
 * Parse a size as the attribute files do ("512M", "1G", "4096", suffixes
 * K M G T P E, either case; one trailing newline allowed) into *out.
 * Returns 0, or -EINVAL (not a size, or it overflows 64 bits; *out is
 * untouched).  Thread-safe.
 */
UZRAM_API int uzram_parse_size(const char *s, uint64_t *out);

/* Is name a backing device's name (uzram_config.backing_dev, the
 * backing_dev attribute)?  1: an NBD URI of a form that can be opened
 * (nbd://, nbds:// with a host, the +unix forms with an absolute
 * socket=), 0: an absolute path, -EINVAL (with a message) otherwise.  Only
 * the text is checked: nothing is opened or connected to. */
UZRAM_API int uzram_backing_name(const char *name);

/* The disk size in bytes (0 while uninitialised). */
UZRAM_API uint64_t uzram_disksize(const struct uzram *dev);

/*
 * Data path.  Offsets and lengths are in bytes and need no alignment;
 * [off, off+len) must lie inside the disk, else -EINVAL (counted in
 * io_stat's invalid_io) and nothing happens.  len == 0 is a no-op that
 * returns 0 if off <= disksize.  On an uninitialised device: -ENXIO.
 *
 * uzram_write: stores len bytes.  On failure (-ENOMEM: memory limit or
 *   allocation failure; -EIO: a page written in part whose old content
 *   does not decode, or the backing device failed; -EMLINK, see below) the pages not yet written keep
 *   their previous content; every page is either wholly old or wholly new.
 * uzram_read: copies len bytes out; never-written bytes read as zeros.
 *   -EIO if a stored page cannot be decoded (counted in failed_reads).
 * uzram_discard: whole pages in the range are freed; the partial head and
 *   tail pages are zeroed.  Afterwards the range reads as zeros.  Freeing
 *   part of a compressed group (group_pages, recompress group=K) stores the
 *   rest of the group page by page, so it can fail with -ENOMEM (under a
 *   memory limit), changing nothing, as a partial-page discard can.
 * uzram_write_zeroes: same effect as discard (zero pages cost nothing).
 * uzram_flush: nothing is volatile inside uzram; returns 0 (also on an
 *   uninitialised device).  Provided so that frontends can forward flush
 *   requests.
 *
 * On a device of a pool, the first change of a run of 680 pages that a
 * clone and its source still share (see uzram_clone) gives the clone
 * pages of its own first.  A write, discard or write_zeroes there can
 * also fail with -ENOMEM (no record id, or a copy of grouped pages over
 * mem_limit) or -EMLINK (a shared page already has the most references a
 * record holds, 2^32 - 16), changing nothing.
 */
UZRAM_API int uzram_write(struct uzram *dev, const void *buf, size_t len, uint64_t off);
UZRAM_API int uzram_read(struct uzram *dev, void *buf, size_t len, uint64_t off);
UZRAM_API int uzram_discard(struct uzram *dev, size_t len, uint64_t off);
UZRAM_API int uzram_write_zeroes(struct uzram *dev, size_t len, uint64_t off);
UZRAM_API int uzram_flush(struct uzram *dev);

/*
 * Page state, for extents: UZRAM_PAGE_ZERO if the page at byte offset off
 * (rounded down to a page) reads as zeros without being stored (never
 * written, discarded, or a same-filled zero page); UZRAM_PAGE_DATA
 * otherwise.  A page a clone reads through to its source is the source's.
 * -EINVAL if off is not inside the disk (off >= disksize; counted in
 * io_stat's invalid_io), -ENXIO on an uninitialised device.  Thread-safe.
 */
enum { UZRAM_PAGE_DATA = 0, UZRAM_PAGE_ZERO = 1 };
UZRAM_API int uzram_page_state(struct uzram *dev, uint64_t off);

/*
 * Statistics, the numbers behind mm_stat / io_stat / debug_stat, plus the
 * whole footprint.  Safe to call at any time; the fields are each exact
 * but not taken as one atomic snapshot.
 */
struct uzram_stats {
    uint64_t orig_data_size;   /* bytes of stored pages, uncompressed */
    uint64_t compr_data_size;  /* bytes of compressed objects */
    uint64_t mem_used_total;   /* allocator pages in use, bytes */
    uint64_t mem_limit;        /* bytes, 0 = none */
    uint64_t mem_used_max;     /* peak of mem_used_total, bytes */
    uint64_t same_pages;       /* same-filled pages (no memory used) */
    uint64_t pages_compacted;  /* allocator pages freed by compaction */
    uint64_t huge_pages;       /* pages stored raw */
    uint64_t huge_pages_since; /* pages stored raw since creation */
    uint64_t failed_reads, failed_writes, invalid_io, notify_free;
    uint64_t footprint;        /* everything held: allocator pages, slot
                                * table pages, metadata, streams */
    uint64_t slot_table_bytes; /* resident part of the slot table */
    uint64_t meta_bytes;       /* allocator metadata */
    uint64_t reads, writes;    /* page-level operations served */
    uint64_t compact_steps;    /* automatic compaction steps run */
    uint64_t compact_pause_max_ns; /* longest automatic step */
    /* backing device (bd_stat), in 4 KiB pages */
    uint64_t bd_count;         /* blocks held on the backing device */
    uint64_t bd_reads, bd_writes;
    uint64_t bd_failed;        /* backing I/O errors */
    uint64_t forwarded;        /* writes that went straight to the backing device */
    uint64_t written_back;     /* pages moved there by writeback (ever) */
    uint64_t recompressed;     /* objects replaced by a smaller secondary one (ever) */
    uint64_t recomp_incomp;    /* pages flagged incompressible by recompress */
    /* ---- added in 0.2 ---- */
    uint64_t dedup_pages;      /* pages stored as a reference to an identical page */
    uint64_t dedup_saved_bytes; /* compressed bytes those references save */
    uint64_t dedup_index_bytes; /* the content index and shared records (in footprint) */
    uint64_t dedup_hits;       /* lookups that found the page stored */
    uint64_t dedup_refused;    /* index matches whose bytes differed (not shared) */
};
/* Fill size bytes of *st (pass sizeof *st, as the macro does).  Cannot
 * fail.  Thread-safe. */
UZRAM_API void uzram_get_stats_size(struct uzram *dev, struct uzram_stats *st, size_t size);
#define uzram_get_stats(dev, st) uzram_get_stats_size((dev), (st), sizeof *(st))

/*
 * Attributes, by zram's names: disksize initstate reset comp_algorithm
 * algorithm_params mem_limit mem_used_max compact mm_stat io_stat
 * debug_stat max_comp_streams backing_dev bd_stat writeback
 * writeback_limit writeback_limit_enable idle recomp_algorithm recompress,
 * and uzram's own: auto_compact (the footprint bound of automatic
 * compaction: "1.050", or "0" when off), writeback_compressed (0/1),
 * writeback_batch_size (zram's: pages a batch of a writeback run holds,
 * 1..128, default 128 (zram's is 32), where the backing device takes
 * several at once, as an NBD one does (up to three batches in flight);
 * kept across reset; a pool's setting),
 * forward_threshold (bytes, 0 = off), group_pages (1, 2, 4, 8 or auto,
 * as the config's field; set while uninitialised, -EBUSY after, as
 * comp_algorithm), recompress_policy
 * ("idle_secs=T [algo=NAME|priority=N] [max_pages=N] [period_ms=P]
 * [group=K]", "0" = off), writeback_policy ("idle_secs=T [above=BYTES]
 * [max_pages=N] [period_ms=P]", "0" = off), policy_stat, dedup ("0",
 * "1" or "auto"; any time, for pages written from then on), dedup_stat
 * (pages deduplicated, bytes saved, index bytes, hits, index matches
 * refused by the byte compare; then the mode and why) and stat (the block
 * layer's 17 fields of /sys/block/zramN/stat, every request of the data
 * path counted), and train_dict ("PATH [size=BYTES]", write-only: train a
 * zstd dictionary of at most BYTES, 4K..1M, default 112K, from the
 * device's own pages stored compressed in RAM, idle ones first, read
 * without an access so they stay idle, and write it to PATH, which must
 * be absolute; replaced whole.  -EINVAL for a relative path, a size out
 * of bounds, an uninitialised device or too few pages to train on, the
 * file's errno when it cannot be written; the device is unchanged
 * either way); all are listed by uzram_attr_name().
 *
 * Beyond RAM, as zram: backing_dev is written while uninitialised
 * (-EBUSY after) and cleared by reset; writeback without a backing device
 * is -ENODEV, and an I/O error or exhausted writeback_limit is -EIO (the
 * page stays in RAM); idle takes "all" or a number of seconds (below
 * 2^20: slot access times wrap after 12 days); recomp_algorithm
 * ("algo=NAME priority=1..3") is set before init, recompress after;
 * so is algorithm_params ("[algo=NAME|priority=N] [level=L] [dict=PATH]":
 * without algo or priority, the primary's, as zram's; each key given
 * replaces its part, "dict=" with no path drops the dictionary).
 * dict=PATH, as zram's since Linux 6.12, is for zstd alone (any other
 * codec: -EINVAL): the file is read and checked when written (a missing
 * or unreadable file: its errno, -ENOENT, -EACCES; a directory, an empty
 * file, one over 4 MiB or not a zstd dictionary, with its magic and a
 * non-zero ID: -EINVAL), kept by the device (the file may go; a copy
 * held across reset, dropped when that priority's algorithm is set
 * again) and digested at init once for all streams.  Every page that
 * algorithm compresses then uses it, and a read checks the frame's
 * dictionary ID.  A level or dictionary cannot change while the device
 * is initialised (-EBUSY, as zram): a page always reads with the
 * dictionary it was written with, and a failed store changes nothing.  Counts, levels and
 * device numbers in every value are decimal digits only (a '-' before a
 * level), as the kernel's kstrto* read them: no blank, '+' or other byte
 * around them but the one trailing newline; sizes are memparse's (digits
 * first, 0x hex, a K..E suffix).  recompress also takes group=K (2, 4 or 8; 1 = per page only, as zram);
 * "type=idle" with no group= and no threshold= regroups with K = 8 first
 * and then recompresses what is left page by page.  In group mode every aligned
 * run of K pages that all qualify (type=idle: all idle) and are all stored
 * one by one in RAM (objects or same fills, not written back, not in a
 * group) is compressed together with the secondary (algo=/priority=, by
 * default the first) and kept as a group if its chunks cost fewer bytes
 * of allocator size classes than the pages' objects did.  Writeback and
 * per-page recompression pass group members by.
 *
 * uzram_attr_show: writes the value as /sys/block/zramN/NAME would read,
 *   including the trailing newline, NUL-terminated, into buf (size bytes).
 *   Returns the length (without the NUL), -ENOENT for an unknown name,
 *   -EACCES for a write-only attribute, -ENOSPC if buf is too small.
 * uzram_attr_store: parses value (len bytes, a trailing newline is allowed)
 *   as a write to the sysfs file would.  Returns 0, or the error sysfs
 *   gives: -EINVAL for malformed input, -EBUSY for disksize/algorithm on an
 *   initialised device or for a reshaping store while the device is open
 *   (uzram_open), -EACCES for read-only attributes, -ENOENT for an
 *   unknown name, -ENOMEM; disksize of a device of a pool: -ENOSPC (no
 *   room in the pool's capacity); writeback: -ENODEV, -EIO (above);
 *   writeback and recompress: -EIO when a page does not decode; compact,
 *   idle, writeback and recompress on an uninitialised device: -EINVAL,
 *   as zram's; reset of a device whose pages clones share: -ENOMEM or
 *   -EMLINK, as uzram_write.  A failed store changes nothing, with two
 *   exceptions that are long scans and say what a failure leaves:
 *   writeback (the pages before the one that failed are on the backing
 *   device; that page and every later one, in every range given, are in
 *   RAM as they were) and recompress (pages recompressed or regrouped
 *   before the failure stay so; they read back the same bytes).
 *   recompress_policy and writeback_policy change nothing when their
 *   thread cannot start (-EAGAIN, -ENOMEM).
 */
UZRAM_API int uzram_attr_show(struct uzram *dev, const char *name, char *buf, size_t size);
UZRAM_API int uzram_attr_store(struct uzram *dev, const char *name, const char *value, size_t len);

/* Attribute listing: the name of attribute i (0-based), or NULL past the
 * end.  *mode receives 0444, 0200 or 0644 as the sysfs file has it.  The
 * name is a static string: valid for the life of the process, never to be
 * freed or changed.  Cannot fail.  Thread-safe. */
UZRAM_API const char *uzram_attr_name(unsigned i, unsigned *mode);

/* Compact the allocator now (what storing "compact" does), then give the
 * malloc heap's free pages back to the operating system (malloc_trim; in
 * a process locked with uzram_lock_memory only the heap's top, since the
 * heap stays locked, and blocks of 128 KiB and more are unmapped when
 * freed anyway).  Returns the number of the allocator's pages freed.
 * Cannot fail.  Thread-safe. */
UZRAM_API uint64_t uzram_compact(struct uzram *dev);

/*
 * Pools: many devices, one store, and instant clones.
 *
 * A pool is one store that many devices keep their pages in: one
 * compression algorithm (and its streams), one allocator, one content
 * index (a page stored by one device is found by every other: identical
 * pages across devices are stored once), one memory limit, one
 * compaction, one pair of policies and one backing device.  A device of a
 * pool is a disk of its own (its own disksize, open count, data path,
 * io_stat and stat) whose pages are a range of the pool's store.  A
 * device made by uzram_create() is not in a pool (uzram_pool_of() is
 * NULL): it is a store of its own, exactly as before pools existed.
 *
 * Devices are numbered from 0, as zram's are: uzram_pool_add() takes the
 * lowest free number, as /sys/class/zram-control/hot_add does, and
 * uzram_pool_remove() frees it, as hot_remove does.
 *
 * A clone (uzram_clone()) is a new device of the source's pool with the
 * source's disksize whose every page is, at first, the source's: it reads
 * through to them, one link per 680 pages, and costs nothing until
 * written.  A whole page written to the clone is its own at once (the
 * clone's table page and the page's object).  Any other first change of
 * one of those runs of pages, on either device (part of a page, a
 * discard, a compressed group, a write to the source), gives the clone
 * the whole run as pages of its own: every object of it becomes one
 * shared object with a reference count (16 bytes of record), which both
 * devices refer to; no page is copied or recompressed (but the compressed
 * bytes of grouped pages are copied).  There are no parent chains: the
 * source, a clone, a clone of a clone can be reset or removed in any
 * order, and every other device keeps reading what it holds.  The
 * attributes that choose how pages are
 * stored (comp_algorithm, algorithm_params, recomp_algorithm,
 * group_pages, backing_dev, max_comp_streams, mem_limit, dedup, the
 * policies, auto_compact, writeback_compressed, forward_threshold,
 * writeback_limit and writeback_limit_enable) are the pool's: on a device
 * of a pool they show the pool's value, and a store of a different value
 * is -EBUSY, "NAME: a pool-wide setting: set it in DIR/ (the pool's own
 * attributes)" (a store of the pool's own value is accepted, so that a
 * zram set-up script that writes comp_algorithm before disksize works).
 * The first six are fixed when the pool is made; the others are set
 * through the pool (uzram_pool_attr_store: DIR/NAME of a pool mount),
 * never by one device for all, and none of them is per device (mem_limit
 * and writeback_limit bound the pool, not a device, unlike zram's).
 * compact compacts the pool and mem_used_max resets the pool's peak,
 * through any device; mm_stat's mem_used_total, mem_limit,
 * mem_used_max and pages_compacted are the pool's.  A device's own
 * figures (orig_data_size, compr_data_size, same_pages, huge_pages) count
 * what it holds; an object shared with other devices is counted in the
 * pool's shared figures (uzram_pool_get_stats), not in any one device's
 * compr_data_size.
 *
 * Thread-safety: every pool function may be called from any number of
 * threads at once, with each other and with the data path of the pool's
 * devices, except uzram_pool_destroy (no other call on the pool or its
 * devices may race it).  A device pointer from uzram_pool_add,
 * uzram_pool_get or uzram_clone stays valid until the device is removed;
 * uzram_pool_get / uzram_pool_put hold it so that uzram_pool_remove
 * refuses (-EBUSY) instead.
 */
struct uzram_pool;

/*
 * Make an empty pool.  cfg (NULL = every default) gives the store's
 * configuration, as for uzram_create(): algorithm, level, allocator,
 * mem_limit (the pool's), huge_threshold, streams, compact_bound,
 * group_pages, backing_dev and the other beyond-RAM fields, the
 * secondaries and policies, dedup.  cfg->disksize is the pool's capacity:
 * the most bytes all its devices may have at once (0 = 4 TiB, the most
 * is 8 TiB); it reserves address space only.  0 and the pool in *out;
 * errors as uzram_create's (-EINVAL, -ENOMEM, the backing device's);
 * nothing is made on error.  Thread-safe.
 */
UZRAM_API int uzram_pool_create(const struct uzram_config *cfg, struct uzram_pool **out);
/* Free an empty pool.  0, or -EBUSY if it still has devices (nothing
 * done).  NULL is accepted (0). */
UZRAM_API int uzram_pool_destroy(struct uzram_pool *pool);

/*
 * Add an uninitialised device (disksize 0) with the lowest free number,
 * as reading zram-control/hot_add does.  Store "disksize" to give it
 * room.  0 and the device in *out, or -ENOMEM, or -ENOSPC (the pool has
 * UZRAM_POOL_MAX_DEVICES devices).
 */
#define UZRAM_POOL_MAX_DEVICES 2048
UZRAM_API int uzram_pool_add(struct uzram_pool *pool, struct uzram **out);
/*
 * Remove device id and everything it holds, as writing N to
 * zram-control/hot_remove does.  0; -ENOENT (no such device); -EBUSY
 * while it is open (uzram_open) or held (uzram_pool_get); -ENOMEM (clones
 * that still share its pages could not be given their own: see
 * uzram_clone), -EMLINK (as uzram_write); nothing is done on error.
 * Pages it shared with other
 * devices stay theirs.  uzram_destroy() of a device of a pool removes it
 * the same way, whatever holds it.
 */
UZRAM_API int uzram_pool_remove(struct uzram_pool *pool, int id);
/* Device id of the pool, held (see above), or NULL if there is none.
 * Release it with uzram_pool_put(). */
UZRAM_API struct uzram *uzram_pool_get(struct uzram_pool *pool, int id);
UZRAM_API void uzram_pool_put(struct uzram *dev);
/* The lowest device number greater than id (-1 for the first), or -1:
 * for listing a pool's devices. */
UZRAM_API int uzram_pool_next(struct uzram_pool *pool, int id);
/* The pool a device is in, or NULL (a device made by uzram_create). */
UZRAM_API struct uzram_pool *uzram_pool_of(const struct uzram *dev);
/* A device's number in its pool (0 for a device not in a pool). */
UZRAM_API int uzram_device_id(const struct uzram *dev);

/*
 * uzram_clone - a new device of src's pool (the lowest free number) that
 * holds what src holds, copy on write (see above).  The source must be
 * initialised and in a pool.  The pool's I/O waits while the links are
 * made: one look per 680 pages of the source, microseconds for a
 * gigabyte.  0 and the clone in *out; -EINVAL (src is not in a pool or
 * not initialised), -ENOSPC (no device number, or no room in the pool's
 * capacity), -ENOMEM or -EMLINK (src is itself a clone with pages of its
 * own in a run it still reads from its source, and giving it the run
 * failed as a write would: see the data path); on error no device is made
 * and src is unchanged.  Later, a write to a run of 680 pages that a
 * clone and its source still share can fail with -ENOMEM (a record id,
 * or a copy of grouped pages over mem_limit) or -EMLINK (a shared page
 * has the most references a record holds), and so can reset and
 * uzram_pool_remove of a device whose pages clones still share; nothing
 * is changed then.
 */
UZRAM_API int uzram_clone(struct uzram *src, struct uzram **out);

/* A pool's figures.  Each is exact, not one atomic snapshot; the
 * devices' pages are recounted (a pass over their slot tables). */
struct uzram_pool_stats {
    uint64_t devices;          /* devices in the pool */
    uint64_t disksize;         /* the sum of their disk sizes */
    uint64_t capacity;         /* the most their disk sizes may sum to */
    uint64_t orig_data_size;   /* bytes of pages stored, uncompressed, over all
                                * devices (a shared page once per device page
                                * that holds it: the devices' sum) */
    uint64_t compr_data_size;  /* bytes of compressed objects, each once */
    uint64_t shared_bytes;     /* the part of compr_data_size in objects that
                                * more than one page refers to (shared records,
                                * and pages clones read through to), each once */
    uint64_t shared_pages;     /* device pages that refer to a shared object or
                                * read through a clone's link */
    uint64_t saved_bytes;      /* compressed bytes the content index's sharing
                                * saves (a clone saves all it reads through) */
    uint64_t same_pages;       /* over all devices */
    uint64_t huge_pages;
    uint64_t mem_used_total;   /* allocator pages in use, bytes */
    uint64_t mem_limit;        /* bytes, 0 = none */
    uint64_t mem_used_max;
    uint64_t footprint;        /* everything the pool and its devices hold */
    uint64_t bd_count;         /* blocks on the backing device */
};
/* Fill size bytes of *st (pass sizeof *st, as the macro does).  Cannot
 * fail.  Thread-safe. */
UZRAM_API void uzram_pool_get_stats_size(struct uzram_pool *pool, struct uzram_pool_stats *st,
                                         size_t size);
#define uzram_pool_get_stats(pool, st) uzram_pool_get_stats_size((pool), (st), sizeof *(st))

/*
 * The pool's own attributes, shown beside zram-control by the FUSE pool
 * mount: mem_limit, mem_used_max, compact, dedup, dedup_stat, mm_stat and
 * debug_stat (the store's, as a device's: mm_stat's sizes are the pool's
 * totals), the pool-wide settings a device shows but may not store
 * (auto_compact, writeback_limit, writeback_limit_enable,
 * writeback_compressed, forward_threshold, recompress_policy,
 * writeback_policy: see "Pools"), comp_algorithm (read only) and pool_stat
 * (one line: devices disksize capacity orig_data_size compr_data_size
 * shared_bytes shared_pages saved_bytes same_pages huge_pages
 * mem_used_total mem_limit mem_used_max footprint bd_count, as the
 * fields of struct uzram_pool_stats).  Returns and errors as
 * uzram_attr_show / uzram_attr_store.
 */
UZRAM_API int uzram_pool_attr_show(struct uzram_pool *pool, const char *name, char *buf,
                                   size_t size);
UZRAM_API int uzram_pool_attr_store(struct uzram_pool *pool, const char *name, const char *value,
                                    size_t len);
/* The name of pool attribute i, or NULL past the end; *mode and the
 * string's lifetime as uzram_attr_name's. */
UZRAM_API const char *uzram_pool_attr_name(unsigned i, unsigned *mode);

/* Names of the compression algorithms built in, i-th or NULL past the end
 * (static strings, as uzram_attr_name's). */
UZRAM_API const char *uzram_algorithm_name(unsigned i);

/* Readable text for a negative errno returned by uzram (0: "success";
 * an unknown value: "unknown error").  A static string: valid for the
 * life of the process, the same for every thread, never to be freed or
 * changed.  Cannot fail.  Thread-safe. */
UZRAM_API const char *uzram_strerror(int err);

/* The calling thread's last detailed error message, "" if none: set by
 * a failing call, cleared by the next call that can return an error (see
 * "Errors" at the top).  The string belongs to the calling thread: it
 * stays valid and unchanged until that thread's next call into the
 * library that can return an error, or until the thread exits; copy it to keep
 * it longer or to hand it to another thread.  Never to be freed.  Cannot
 * fail. */
UZRAM_API const char *uzram_last_error(void);

/* The library's version string, e.g. "0.2.0", and number (as
 * UZRAM_VERSION_NUMBER); may differ from the header's. */
UZRAM_API const char *uzram_version(void);
UZRAM_API unsigned uzram_version_number(void);

#ifdef __cplusplus
}
#endif
#endif /* UZRAM_H */
