/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuse_kabi.h - the parts of the kernel's FUSE interface that the
 * installed <linux/fuse.h> (protocol 7.38 on Debian 12) lacks, written
 * from the kernel's include/uapi/linux/fuse.h and
 * Documentation/filesystems/fuse-io-uring.rst.  The one place the server
 * defines kernel structures; each definition is skipped where the system
 * header already has it.
 *
 * INIT flags past bit 31 travel in flags2 of fuse_init_in / fuse_init_out
 * (when FUSE_INIT_EXT is set): bit N of the 64-bit flags is bit N - 32 of
 * flags2.
 *
 * FUSE over io_uring (protocol 7.42, Linux 6.14 on): the server registers
 * ring entries on the /dev/fuse descriptor with IORING_OP_URING_CMD SQEs
 * (which need IORING_SETUP_SQE128: the command, struct fuse_uring_cmd_req,
 * lives in the SQE's 80-byte command area).  An entry is two buffers, an
 * iovec pair given at FUSE_IO_URING_CMD_REGISTER: a struct
 * fuse_uring_req_header, and a payload of at least the connection's
 * largest request (max(8 KiB, max_write, max_pages pages)).  A request
 * arrives as the completion of the entry's command:
 *
 *     in_out    its struct fuse_in_header
 *     op_in     its first argument, the opcode's own header (fuse_read_in,
 *               fuse_write_in, ...; empty for LOOKUP and the like)
 *     payload   the other arguments, one after the other (a write's data,
 *               a name), ring_ent_in_out.payload_sz bytes
 *
 * and is answered by FUSE_IO_URING_CMD_COMMIT_AND_FETCH with the same
 * commit_id: its struct fuse_out_header in in_out, every reply argument
 * in the payload (payload_sz set), and the entry waits for the next
 * request.  The kernel queues a request on the queue of the CPU its
 * sender runs on (qid = CPU), and uses the rings only once every possible
 * CPU's queue has an entry; INIT, FORGET, INTERRUPT and notifications
 * stay on /dev/fuse.
 */
#ifndef UZRAM_FUSE_KABI_H
#define UZRAM_FUSE_KABI_H

#include <stdint.h>
#include <linux/fuse.h>

/* FUSE_DIRECT_IO_ALLOW_MMAP (7.39): bit 36, shared mmap of direct_io
 * files (called FUSE_DIRECT_IO_RELAX in Linux 6.6). */
#define UZ_KFUSE_DIRECT_IO_ALLOW_MMAP_HI (1u << (36 - 32))
/* FUSE_OVER_IO_URING (7.42): bit 41, offered by the kernel when its
 * fuse.enable_uring parameter is on, accepted by a server that will
 * register ring entries. */
#define UZ_KFUSE_OVER_IO_URING_HI (1u << (41 - 32))

#ifndef FUSE_URING_IN_OUT_HEADER_SZ
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128

/* The entry's bookkeeping, written by the kernel with a request and by
 * the server with its answer. */
struct fuse_uring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id;     /* the request's unique: echo it in the commit */
    uint32_t payload_sz;    /* bytes used in the payload buffer */
    uint32_t padding;
    uint64_t reserved;
};

/* iov[0] of a registered entry. */
struct fuse_uring_req_header {
    char in_out[FUSE_URING_IN_OUT_HEADER_SZ];   /* fuse_in_header / fuse_out_header */
    char op_in[FUSE_URING_OP_IN_OUT_SZ];        /* the opcode's header */
    struct fuse_uring_ent_in_out ring_ent_in_out;
};

/* io_uring_sqe.cmd_op of a command on /dev/fuse. */
enum fuse_uring_cmd {
    FUSE_IO_URING_CMD_INVALID = 0,
    FUSE_IO_URING_CMD_REGISTER = 1,          /* iov pair in sqe->addr, sqe->len = 2 */
    FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,
};

/* In the SQE's command area. */
struct fuse_uring_cmd_req {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};
#endif

_Static_assert(sizeof(struct fuse_uring_ent_in_out) == 32, "the kernel's layout");
_Static_assert(sizeof(struct fuse_uring_req_header) == 288, "the kernel's layout");
_Static_assert(sizeof(struct fuse_uring_cmd_req) == 24, "the kernel's layout");

#endif
