#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_backing.sh - the backing device through the mount: `uzram mount
# --backing-dev FILE --mem-limit SIZE` takes more data than the limit
# (the compcache forward sends the rest to FILE), every byte reads back;
# then `idle all` + `writeback idle` through the attribute files moves the
# rest out, bd_stat counts it, mm_stat shows the memory gone, and every
# byte still reads back.
#
# Needs root and /dev/fuse; exits 77 (skip) otherwise.  Env: UZ_BUILD.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"

need_fuse_mount python3 cmp dd truncate

fuse_setup backing

field() { awk -v n="$2" '{print $n}' "$DIR/$1"; }

# 48 MiB of data that compresses about 2:1, different in every page
python3 - "$WORK/data" <<'PY'
import sys, random
r = random.Random(7)
with open(sys.argv[1], 'wb') as f:
    for i in range(48 * 256):
        words = b" ".join(b"w%d" % r.randrange(400) for _ in range(400))
        page = (b"page %08d " % i + words)[:2048] + r.randbytes(2048)
        f.write(page.ljust(4096, b"."))
PY
truncate -s 128M "$WORK/backing.img"

step "mount 64 MiB with a 8 MiB memory limit and a backing file"
"$UZRAM" mount "$DIR" --size 64M --mem-limit 8M --backing-dev "$WORK/backing.img" --pidfile "$PIDFILE"
[ "$(cat "$DIR/backing_dev")" = "$(realpath "$WORK/backing.img")" ] || fail "backing_dev shows '$(cat "$DIR/backing_dev")'"

step "write 48 MiB: more than the limit, so the rest is forwarded"
dd if="$WORK/data" of="$DIR/disk" bs=1M oflag=direct conv=notrunc status=none
mem=$(field mm_stat 3)
bd=$(field bd_stat 1)
echo "mem_used_total $mem, bd_count $bd"
[ "$mem" -le $((8 << 20)) ] || fail "mem_used_total $mem is over the 8 MiB limit"
[ "$bd" -gt 0 ] || fail "nothing went to the backing file"
[ "$(field io_stat 2)" = 0 ] || fail "failed writes: $(cat "$DIR/io_stat")"
cmp -n $((48 << 20)) "$WORK/data" "$DIR/disk" || fail "data differs after the forward"

step "idle all + writeback idle moves the rest out"
echo all > "$DIR/idle"
echo idle > "$DIR/writeback"
mem2=$(field mm_stat 3)
bd2=$(field bd_stat 1)
echo "mem_used_total $mem2, bd_count $bd2"
[ "$bd2" -gt "$bd" ] || fail "writeback moved nothing ($bd -> $bd2)"
[ "$mem2" -lt "$mem" ] || fail "memory did not fall ($mem -> $mem2)"
cmp -n $((48 << 20)) "$WORK/data" "$DIR/disk" || fail "data differs after writeback"

step "malformed writeback mode refused like sysfs"
if echo bogus > "$DIR/writeback" 2>/dev/null; then fail "writeback accepted 'bogus'"; fi

step "discard frees backing blocks"
python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
if libc.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 48 << 20) != 0:
    sys.exit('fallocate: errno %d' % ctypes.get_errno())
" "$DIR/disk"
[ "$(field bd_stat 1)" = 0 ] || fail "bd_count $(field bd_stat 1) after discarding everything"
echo "fuse_backing: ok"
