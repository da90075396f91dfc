#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_uring.sh - the two FUSE transports, one after the other: the fuse
# module's enable_uring parameter off (the mount falls back to /dev/fuse
# and says why), then on (the mount serves over io_uring).  With each:
#
#   - DIR/.transport and `uzram stat --json` name the transport; over
#     io_uring the rings carry the requests (ring_requests grows with the
#     I/O, dev_requests does not), over /dev/fuse none do;
#   - ext4 on a loop device (direct I/O, 4 KiB sectors): mkfs, files of
#     real pages copied in, unmounted, fsck -f clean, mounted again and
#     every file compared;
#   - swap: a loop device on DIR/disk as the only swap of a memory cgroup
#     capped at a quarter of a workload that checks every page it reads;
#   - mmap: DIR/disk mapped shared, pages written through the mapping and
#     msync, read back with O_DIRECT and compared, and the reverse;
#   - a pool and a clone: zram0 filled with real pages, cloned, the clone
#     compared page for page, written, and zram0 unchanged.
#
# And the options: --io-uring on is refused while the parameter is off
# (nothing mounted), --io-uring off stays on /dev/fuse while it is on.
#
# The parameter is put back as it was on exit.  Needs root, /dev/fuse,
# loop devices, mkfs.ext4/e2fsck; skips where the kernel has no FUSE over
# io_uring (no /sys/module/fuse/parameters/enable_uring).  The swap part
# needs the cgroup v1 memory controller.  Env: UZ_BUILD, UZ_CORPUS.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount losetup mkfs.ext4 e2fsck mkswap swapon swapoff python3 cmp timeout
[ -e /dev/loop-control ] || skip "no loop devices"
[ -w "$URING_PARAM" ] || skip "this kernel has no FUSE over io_uring (no $URING_PARAM)"
CORPUS=${UZ_CORPUS:-../shared/corpus}
CGROOT=/sys/fs/cgroup/memory

LOOP=
FSMNT=
SWAPON=
CG=
POOL=
cleanup_extra() {
    [ -n "$FSMNT" ] && umount "$FSMNT" 2>/dev/null
    [ -n "$SWAPON" ] && swapoff "$LOOP" 2>/dev/null
    if [ -n "$CG" ] && [ -d "$CG" ]; then
        for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        for _ in $(seq 50); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
    fi
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
    [ -n "$POOL" ] && stop_uzram "$POOL" "$WORK/pool.pid"
    return 0
}
fuse_setup uring
POOL=$WORK/pool
mkdir -p "$POOL" "$WORK/fs"

# Real pages: the corpus, or made-up ones where it is not there.
PAGES=$WORK/pages
if [ -f "$CORPUS/sqlite.pages.zst" ]; then
    { zstd -q -dc "$CORPUS/sqlite.pages.zst" || true; } | head -c $((48 << 20)) > "$PAGES"
else
    python3 - "$PAGES" <<'EOF'
import os, sys
with open(sys.argv[1], "wb") as f:
    for i in range(12288):
        f.write((os.urandom(1024) + (b"page %d " % i) * 400)[:4096])
EOF
fi
[ "$(stat -c %s "$PAGES")" -ge $((32 << 20)) ] || fail "too few pages in $PAGES"

field() {   # FILE KEY: KEY=value on line 2 of .transport
    sed -n "s/.* *$2=\([0-9]*\).*/\1/p" "$1"
}

# Wait (at most 10 s) until DIR is served; a fresh mount answers at once.
wait_mounted() {
    for _ in $(seq 100); do [ -e "$1/.transport" ] && return 0; sleep 0.1; done
    fail "$1 is not served"
}

ext4_round() {
    step "$UZ_TRANSPORT: ext4 on a loop device (direct I/O, 4 KiB sectors)"
    LOOP=$(losetup --direct-io=on --sector-size 4096 -f --show "$DIR/disk")
    mkfs.ext4 -q -F "$LOOP"
    FSMNT=$WORK/fs
    mount "$LOOP" "$FSMNT"
    split -b 1M -d -a 3 "$PAGES" "$FSMNT/part."
    sync
    umount "$FSMNT"
    FSMNT=
    e2fsck -f -n "$LOOP" > "$WORK/fsck.log" 2>&1 || { cat "$WORK/fsck.log"; fail "fsck found errors"; }
    mount "$LOOP" "$WORK/fs"
    FSMNT=$WORK/fs
    # a fresh mount: the files' pages come from the device
    cat "$FSMNT"/part.* | cmp - "$PAGES" || fail "ext4 read back other bytes"
    umount "$FSMNT"
    FSMNT=
    losetup -d "$LOOP"
    LOOP=
    echo "ext4: $(($(stat -c %s "$PAGES") >> 20)) MiB written, fsck clean, every page read back"
}

swap_round() {
    step "$UZ_TRANSPORT: swap in a memory cgroup"
    if [ ! -f $CGROOT/memory.limit_in_bytes ]; then
        echo "swap part skipped: no cgroup v1 memory controller at $CGROOT"
        return 0
    fi
    LOOP=$(losetup --direct-io=on --sector-size 4096 -f --show "$DIR/disk")
    mkswap "$LOOP" >/dev/null
    swapon -p 32767 "$LOOP"
    SWAPON=1
    CG=$CGROOT/uzram-uring-$$
    mkdir "$CG"
    echo $((64 << 20)) > "$CG/memory.limit_in_bytes"
    # anonymous pages first (as tests/fuse_swap.sh): with the default 60
    # the cgroup's reclaim also works the page file's cache, and under a
    # loaded machine it can give up and kill before the swap absorbs it
    [ -f "$CG/memory.swappiness" ] && echo 100 > "$CG/memory.swappiness"
    local w0 w1
    w0=$(awk '{print $7}' "$DIR/stat")
    # 192 MiB of pages from the page file (each also tagged with its
    # index), every one checked when read back, in a shuffled order
    # 192 MiB of anonymous pages under a 64 MiB limit: at least 128 MiB
    # go through the swap, whose 512 MiB leave room for the slots the
    # kernel keeps for pages read back into the swap cache.
    timeout 300 bash -c 'echo $$ > "$1/cgroup.procs"; exec python3 - "$2"' _ "$CG" "$PAGES" <<'EOF' ||
import mmap, random, sys
# the page file mapped, not read: its pages are clean file cache the
# cgroup drops at will, so the anonymous memory alone is what swaps
f = open(sys.argv[1], "rb")
src = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
n = 192 * 256
np = len(src) // 4096
mem = bytearray(n * 4096)
def page(i):
    p = bytearray(src[(i % np) * 4096:(i % np + 1) * 4096])
    p[0:8] = i.to_bytes(8, "little")
    return p
for i in range(n):
    mem[i * 4096:(i + 1) * 4096] = page(i)
order = list(range(n))
random.Random(1).shuffle(order)
for i in order:
    if mem[i * 4096:(i + 1) * 4096] != page(i):
        sys.exit("page %d differs" % i)
print("swap: %d pages written and read back" % n)
EOF
        fail "the workload failed under swap: failcnt $(cat "$CG/memory.failcnt"), $(grep -E '^(oom_kill|under_oom)' "$CG/memory.oom_control" | tr '\n' ' ')swap: $(grep "^$LOOP " /proc/swaps)"
    w1=$(awk '{print $7}' "$DIR/stat")
    echo "swap: $(((w1 - w0) / 2048)) MiB written to the device"
    [ $((w1 - w0)) -gt $((64 << 11)) ] || fail "the workload swapped only $(((w1 - w0) / 2)) KiB out"
    rmdir "$CG"
    CG=
    swapoff "$LOOP"
    SWAPON=
    losetup -d "$LOOP"
    LOOP=
}

mmap_round() {
    step "$UZ_TRANSPORT: DIR/disk mapped shared"
    python3 - "$DIR/disk" "$PAGES" <<'EOF'
import mmap, os, sys
disk, pages = sys.argv[1], sys.argv[2]
data = open(pages, "rb").read(16 << 20)
n = len(data)
fd = os.open(disk, os.O_RDWR)
m = mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[:] = data
m.flush()
m.close()
# read back with O_DIRECT: the device's bytes, not the page cache's
dfd = os.open(disk, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 1 << 20)
for off in range(0, n, 1 << 20):
    got = os.preadv(dfd, [buf], off)
    if got != 1 << 20 or buf[:] != data[off:off + (1 << 20)]:
        sys.exit("mmap write: O_DIRECT read of %d differs" % off)
# the reverse: written with O_DIRECT at 32 MiB, read through a mapping
wfd = os.open(disk, os.O_WRONLY | os.O_DIRECT)
for off in range(0, n, 1 << 20):
    buf[:] = data[n - off - (1 << 20):n - off]
    os.pwritev(wfd, [buf], (32 << 20) + off)
m = mmap.mmap(fd, n, mmap.MAP_SHARED, mmap.PROT_READ, offset=32 << 20)
for off in range(0, n, 1 << 20):
    if m[off:off + (1 << 20)] != data[n - off - (1 << 20):n - off]:
        sys.exit("O_DIRECT write: mapped read of %d differs" % off)
print("mmap: %d MiB each way, every page compared" % (n >> 20))
EOF
}

pool_round() {
    step "$UZ_TRANSPORT: a pool and a clone"
    "$UZRAM" pool "$POOL" --size 64M --pidfile "$WORK/pool.pid"
    wait_mounted "$POOL"
    check_transport "$POOL"
    dd if="$PAGES" of="$POOL/zram0/disk" bs=1M count=32 oflag=direct status=none
    local id
    id=$(cat "$POOL/zram0/clone")
    [ "$id" = 1 ] || fail "clone gave '$id', not 1"
    cmp -n $((32 << 20)) "$PAGES" "$POOL/zram1/disk" || fail "the clone differs from its source"
    dd if=/dev/zero of="$POOL/zram1/disk" bs=1M count=4 seek=8 oflag=direct conv=notrunc status=none
    cmp -n $((32 << 20)) "$PAGES" "$POOL/zram0/disk" || fail "writing the clone changed its source"
    cmp -n $((4 << 20)) /dev/zero <(dd if="$POOL/zram1/disk" bs=1M skip=8 count=4 iflag=direct status=none) ||
        fail "the clone's write did not read back"
    cmp -n $((8 << 20)) "$PAGES" "$POOL/zram1/disk" || fail "the clone's first pages changed"
    local before after
    before=$(field "$POOL/.transport" ring_requests)
    cat "$POOL/zram1/disk" > /dev/null
    after=$(field "$POOL/.transport" ring_requests)
    if [ "$UZ_TRANSPORT" = io_uring ]; then
        [ "$after" -gt "$before" ] || fail "reading the clone went around the rings ($before, $after)"
    else
        [ "$after" = 0 ] || fail "ring_requests $after on /dev/fuse"
    fi
    "$UZRAM" umount "$POOL"
    echo "pool: 32 MiB cloned, compared, the clone written, its source intact"
}

# One whole round on a new mount, with the parameter as uring_select set it.
round() {
    "$UZRAM" mount "$DIR" --size 512M --pidfile "$PIDFILE" 2> "$WORK/mount.err"
    wait_mounted "$DIR"
    cat "$WORK/mount.err"
    check_transport "$DIR"
    if [ "$UZ_TRANSPORT" = dev_fuse ]; then
        # said once, on stderr and in the file and the stat
        [ "$(grep -c 'serving over /dev/fuse' "$WORK/mount.err")" = 1 ] ||
            fail "the fallback was not stated once: $(cat "$WORK/mount.err")"
        grep -q "enable_uring parameter is off" "$WORK/mount.err" || fail "the fallback does not say why"
        "$UZRAM" stat --json "$DIR" | python3 -c 'import json,sys; r=json.load(sys.stdin)["zramctl"][0]; assert r["transport"] == "dev_fuse" and "enable_uring" in r["transport-note"] and r["ring-requests"] == 0, r'
    else
        [ ! -s "$WORK/mount.err" ] || fail "a mount over io_uring said: $(cat "$WORK/mount.err")"
        "$UZRAM" stat --json "$DIR" | python3 -c 'import json,sys; r=json.load(sys.stdin)["zramctl"][0]; assert r["transport"] == "io_uring" and r["transport-note"] is None, r'
    fi
    local r0 d0 r1 d1
    r0=$(field "$DIR/.transport" ring_requests)
    d0=$(field "$DIR/.transport" dev_requests)
    ext4_round
    swap_round
    mmap_round
    r1=$(field "$DIR/.transport" ring_requests)
    d1=$(field "$DIR/.transport" dev_requests)
    echo "requests: rings $r0 -> $r1, /dev/fuse $d0 -> $d1"
    if [ "$UZ_TRANSPORT" = io_uring ]; then
        [ $((r1 - r0)) -gt 10000 ] || fail "the rings carried only $((r1 - r0)) requests"
        # /dev/fuse keeps what it must: forgets, interrupts
        [ $((d1 - d0)) -lt $(((r1 - r0) / 100 + 10)) ] || fail "/dev/fuse carried $((d1 - d0)) requests"
    else
        [ "$r1" = 0 ] || fail "ring_requests $r1 on /dev/fuse"
        [ $((d1 - d0)) -gt 10000 ] || fail "/dev/fuse carried only $((d1 - d0)) requests"
    fi
    "$UZRAM" umount "$DIR"
    pool_round
}

step "enable_uring off"
UZ_IO_URING=off uring_select
if "$UZRAM" mount "$DIR" --size 16M --io-uring on -f 2> "$WORK/on.err"; then
    fail "--io-uring on mounted with the parameter off"
fi
cat "$WORK/on.err"
grep -q "io-uring on: the fuse module's enable_uring parameter is off" "$WORK/on.err" ||
    fail "--io-uring on: no clear refusal"
! grep -q " $DIR fuse.uzram " /proc/self/mounts || fail "--io-uring on left a mount"
round

step "enable_uring on"
UZ_IO_URING=auto uring_select
[ "$UZ_TRANSPORT" = io_uring ] || fail "enable_uring did not turn on"
round

step "--io-uring off with the parameter on"
"$UZRAM" mount "$DIR" --size 16M --io-uring off --pidfile "$PIDFILE"
wait_mounted "$DIR"
UZ_TRANSPORT=dev_fuse check_transport "$DIR"
grep -qx -- "--io-uring off" "$DIR/.transport" || fail "the note does not say --io-uring off"
dd if="$PAGES" of="$DIR/disk" bs=1M count=16 oflag=direct status=none
cmp -n $((16 << 20)) "$PAGES" "$DIR/disk" || fail "/dev/fuse read back other bytes"
"$UZRAM" umount "$DIR"
echo "PASS"
