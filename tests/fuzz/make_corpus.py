#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""make_corpus.py - write the seed inputs of fuzz_store into tests/fuzz/corpus/.

The input format is described at the top of fuzz_store.c; this script speaks
it so that each seed starts the fuzzer from a meaningful sequence (every
allocator, several codecs, partial writes, limits, resets, faults, bad input)
instead of from nothing.  Deterministic: the same files every run.

    python3 tests/fuzz/make_corpus.py [OUTDIR]
"""
import os
import random
import struct
import sys

# op byte & 15 -> op, as op_table[] in fuzz_store.c
WRITE, READ, DISCARD, ZEROES, BADIO, COMPACT, RESET, LIMIT, BADATTR, SHOW, FAULT, CHECK = (
    0, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
GEN_ZERO, GEN_SAME, GEN_TEXT, GEN_RANDOM, GEN_MIXED, GEN_HEAD = range(6)


def u16(v): return struct.pack('<H', v & 0xffff)
def u24(v): return struct.pack('<I', v & 0xffffff)[:3]
def u32(v): return struct.pack('<I', v & 0xffffffff)


class Seed:
    def __init__(self, allocator, codec, pages, flags=0, huge=None):
        self.b = bytearray([allocator, codec, pages - 1, flags])
        if flags & 4:
            self.b.append(huge or 0)

    # ranges: pick_range() modes
    def pages(self, first, n): return bytes([0, first, n - 1])
    def any(self, off, length): return bytes([1]) + u24(off) + u24(length)
    def small(self, off, length): return bytes([2]) + u24(off) + u16(length - 1)
    def cross(self, page, back, length): return bytes([3, page, back - 1]) + u16(length - 1)

    def write(self, rng, kind, seed): self.b += bytes([WRITE]) + rng + bytes([kind]) + u32(seed)
    def read(self, rng): self.b += bytes([READ]) + rng
    def discard(self, rng): self.b += bytes([DISCARD]) + rng
    def zeroes(self, rng): self.b += bytes([ZEROES]) + rng
    def badio(self, mode, which, *args): self.b += bytes([BADIO, mode]) + b''.join(args) + bytes([which])
    def compact(self, api=0): self.b += bytes([COMPACT, api])
    def reset(self, flags, pages, algo): self.b += bytes([RESET, flags, pages - 1, algo])
    def limit(self, mode, v): self.b += bytes([LIMIT, mode]) + u16(v)
    def badattr(self, name, value, raw=True):
        self.b += bytes([BADATTR, name, len(value), 1 if raw else 0]) + value
    def show(self, name, size): self.b += bytes([SHOW, name, size])
    def fault(self, n): self.b += bytes([FAULT, n - 1])
    def check(self): self.b += bytes([CHECK])


def seeds():
    r = random.Random(5)
    out = {}

    # zsmalloc + lz4: every generator, aligned and not, then churn and compact
    s = Seed(0, 2, 64)
    for i in range(24):
        s.write(s.pages(i * 2 % 64, 1 + i % 3), i % 6, r.getrandbits(32))
    for i in range(8):
        s.write(s.any(r.randrange(60 * 4096), r.randrange(3 * 4096)), GEN_HEAD, r.getrandbits(32))
    s.discard(s.pages(4, 4))
    s.zeroes(s.cross(10, 100, 300))
    s.compact(0)
    s.read(s.any(0, 64 * 4096))
    s.check()
    out['basic-zsmalloc-lz4'] = s

    # xvmalloc + zstd: partial writes inside and across pages
    s = Seed(1, 4, 32, flags=8)
    for i in range(30):
        s.write(s.small(r.randrange(32 * 4096), 1 + r.randrange(4096)), r.randrange(6), r.getrandbits(32))
        s.write(s.cross(r.randrange(31), 1 + r.randrange(256), 1 + r.randrange(8192)), GEN_MIXED,
                r.getrandbits(32))
    s.discard(s.any(1000, 20000))
    s.compact(1)
    s.check()
    out['partial-xvmalloc-zstd'] = s

    # malloc allocator + deflate, an odd disksize: bad I/O and bad attributes
    s = Seed(2, 5, 16, flags=1 | (3 << 4))
    s.write(s.pages(0, 4), GEN_TEXT, 7)
    s.badio(0, 0, u16(5), u16(100))
    s.badio(1, 1, u24(4096), u16(0))
    s.badio(2, 2, u16(0), u16(0))
    s.badio(4, 3, u24(0), u16(0))
    s.badio(5, 4, bytes([3]))
    s.badattr(0, b'1Q\n', raw=True)       # disksize
    s.badattr(2, b'0', raw=True)          # reset 0
    s.badattr(5, b'-5', raw=True)         # mem_limit
    s.badattr(3, b'lz5', raw=True)        # comp_algorithm
    s.badattr(4, b'level=99 algo=x', raw=True)
    s.show(8, 10)
    s.show(8, 200)
    s.check()
    out['badinput-malloc-deflate'] = s

    # small memory limit: writes fail, some pages old, some new
    s = Seed(0, 1, 64, flags=2 | (15 << 4))
    for i in range(20):
        s.write(s.pages(r.randrange(60), 4), GEN_RANDOM, r.getrandbits(32))
    s.limit(1, 20)
    for i in range(10):
        s.write(s.any(r.randrange(50 * 4096), 4 * 4096 + 17), GEN_MIXED, r.getrandbits(32))
    s.limit(0, 0)
    s.write(s.pages(0, 4), GEN_RANDOM, 1)
    s.check()
    out['memlimit-zsmalloc-lzo'] = s

    # reset with a new algorithm and level, uninitialised I/O, re-set disksize
    s = Seed(1, 0, 8)
    s.write(s.pages(0, 4), GEN_TEXT, 3)
    s.reset(1 | 2 | 4 | 16, 20, 4 << 2 | 3)
    s.write(s.pages(2, 3), GEN_HEAD, 1234)
    s.reset(2 | 8 | (5 << 4), 3, 5)
    s.write(s.any(0, 9000), GEN_SAME, 0x77)
    s.check()
    out['reset-xvmalloc'] = s

    # injected allocation failures in the middle of writes, discards, compaction
    s = Seed(0, 4, 48, flags=8)
    for i in range(12):
        s.write(s.pages(r.randrange(44), 4), r.randrange(6), r.getrandbits(32))
    for n in (1, 2, 3, 5, 8):
        s.fault(n)
        s.write(s.any(r.randrange(40 * 4096), 5 * 4096), GEN_MIXED, r.getrandbits(32))
        s.zeroes(s.cross(r.randrange(40), 33, 5000))
    s.fault(1)
    s.compact(0)
    s.fault(2)
    s.reset(2, 10, 4)
    s.check()
    out['faults-zsmalloc-zstd'] = s

    # every allocator/codec pair, a short random tail
    for a in range(3):
        for c in range(6):
            s = Seed(a, c, 1 + r.randrange(64), flags=r.randrange(256), huge=r.randrange(256))
            s.b += bytes(r.getrandbits(8) for _ in range(200))
            out['random-a%d-c%d' % (a, c)] = s
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
    os.makedirs(outdir, exist_ok=True)
    for name, s in sorted(seeds().items()):
        with open(os.path.join(outdir, name), 'wb') as f:
            f.write(bytes(s.b))
    print('wrote %d seeds to %s' % (len(seeds()), outdir))


if __name__ == '__main__':
    main()
