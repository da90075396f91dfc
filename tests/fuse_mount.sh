#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_mount.sh - `uzram mount` end to end: the attribute files behave like
# /sys/block/zramN, DIR/disk is a correct byte-addressable disk (unaligned
# I/O, hole punching, a random model check), and a loop device on it
# carries an ext4 that survives unmount, fsck and a cold re-read.
#
# Needs root, /dev/fuse, a free loop device, mkfs.ext4; exits 77 (skip)
# otherwise.  Env: UZ_BUILD (build dir, default ./build).
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount losetup mkfs.ext4 fsck.ext4 fallocate python3 cmp diff
[ -e /dev/loop-control ] || skip "no loop devices"

MNT=
LOOP=
cleanup_extra() {
    mountpoint -q "$MNT" && umount "$MNT"
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
}
fuse_setup test
MNT=$WORK/mnt
mkdir -p "$MNT"


step "mount"
"$UZRAM" mount "$DIR" --size 512M --algorithm lz4 --pidfile "$PIDFILE"
grep -q "^uzram $DIR fuse.uzram " /proc/self/mounts || fail "not in /proc/mounts as fuse.uzram"
DAEMON=$(cat "$PIDFILE")
kill -0 "$DAEMON" || fail "daemon $DAEMON not running"
grep -q "VmLck:" /proc/$DAEMON/status
echo "daemon $DAEMON: $(grep -E 'VmRSS|VmLck' /proc/$DAEMON/status | tr -s ' \n' ' ')"

step "attribute files behave like sysfs"
for a in disk disksize initstate reset comp_algorithm mm_stat io_stat compact mem_limit; do
    [ -e "$DIR/$a" ] || fail "no $DIR/$a"
done
ls "$DIR" > "$WORK/ls"
grep -qx disk "$WORK/ls" && grep -qx mm_stat "$WORK/ls" || fail "readdir: $(cat "$WORK/ls")"
[ "$(cat "$DIR/disksize")" = 536870912 ] || fail "disksize is $(cat "$DIR/disksize")"
[ "$(cat "$DIR/initstate")" = 1 ] || fail "initstate"
grep -q '\[lz4\]' "$DIR/comp_algorithm" || fail "comp_algorithm: $(cat "$DIR/comp_algorithm")"
[ "$(stat -c %s "$DIR/disk")" = 536870912 ] || fail "disk size"
[ "$(stat -c %a "$DIR/mm_stat")" = 444 ] || fail "mm_stat mode"
[ "$(stat -c %a "$DIR/reset")" = 200 ] || fail "reset mode"
[ "$(wc -w < "$DIR/mm_stat")" = 9 ] || fail "mm_stat has not 9 fields"
expect_write_error "$DIR/disksize" junk "Invalid argument"
expect_write_error "$DIR/disksize" 1G "Device or resource busy"
expect_write_error "$DIR/comp_algorithm" zstd "Device or resource busy"
expect_write_error "$DIR/reset" 0 "Invalid argument"
expect_write_error "$DIR/mm_stat" 1 "Permission denied"
if cat "$DIR/reset" 2>/dev/null; then fail "reading write-only reset succeeded"; fi
[ "$(cat "$DIR/disksize")" = 536870912 ] || fail "a failed store changed disksize"
echo 1 > "$DIR/compact"
if touch "$DIR/newfile" 2>/dev/null; then fail "created a file"; fi

step "reset, algorithm and disksize; the disk's size follows"
exec 3<"$DIR/disk"
expect_write_error "$DIR/reset" 1 "Device or resource busy"   # open, as zram
exec 3<&-
echo 1 > "$DIR/reset"
[ "$(cat "$DIR/initstate")" = 0 ] || fail "reset left initstate"
[ "$(stat -c %s "$DIR/disk")" = 0 ] || fail "disk size after reset: $(stat -c %s "$DIR/disk")"
echo zstd > "$DIR/comp_algorithm"
grep -q '\[zstd\]' "$DIR/comp_algorithm" || fail "comp_algorithm after store"
echo 64M > "$DIR/disksize"
[ "$(stat -c %s "$DIR/disk")" = 67108864 ] || fail "disk size after disksize"
echo 1 > "$DIR/reset"
echo lz4 > "$DIR/comp_algorithm"
echo 512M > "$DIR/disksize"
[ "$(stat -c %s "$DIR/disk")" = 536870912 ] || fail "disk size back to 512M"

step "unaligned writes and reads (dd, cmp)"
head -c 300000 /dev/urandom > "$WORK/rand"
for off in 0 1 4095 4097 12345 1048575 536000000; do
    for len in 1 511 4096 4097 100000 300000; do
        [ $((off + len)) -le 536870912 ] || continue
        dd if="$WORK/rand" of="$DIR/disk" bs=64k count="$len" seek="$off" \
           iflag=count_bytes oflag=seek_bytes conv=notrunc status=none
        dd if="$DIR/disk" of="$WORK/back" bs=64k count="$len" skip="$off" \
           iflag=skip_bytes,count_bytes status=none
        head -c "$len" "$WORK/rand" | cmp -s - "$WORK/back" || fail "mismatch at $off+$len"
    done
done
# never written: zeros
dd if="$DIR/disk" bs=4096 skip=$((300 * 1024 * 1024 / 4096)) count=16 status=none |
    cmp -s - <(head -c 65536 /dev/zero) || fail "unwritten range is not zeros"
# the end of the disk: reads stop there, writes past it fail (ENOSPC)
[ "$(dd if="$DIR/disk" bs=4096 skip=$((536870912 / 4096 - 1)) count=4 status=none | wc -c)" = 4096 ] ||
    fail "read past the end"
if dd if="$WORK/rand" of="$DIR/disk" bs=4096 count=2 seek=$((536870912 / 4096 - 1)) \
      conv=notrunc status=none 2>"$WORK/err"; then fail "write past the end succeeded"; fi
grep -q "No space left" "$WORK/err" || fail "write past the end: $(cat "$WORK/err")"

step "fallocate: punch-hole and zero-range read back as zeros"
dd if="$WORK/rand" of="$DIR/disk" bs=4096 count=64 seek=1000 conv=notrunc status=none
fallocate --punch-hole --keep-size --offset $((1000 * 4096 + 100)) --length 20000 "$DIR/disk"
dd if="$DIR/disk" of="$WORK/back" bs=4096 count=64 skip=1000 status=none
python3 - "$WORK/rand" "$WORK/back" <<'EOF'
import sys
want = bytearray(open(sys.argv[1], 'rb').read()[:64 * 4096])
want[100:20100] = bytes(20000)
got = open(sys.argv[2], 'rb').read()
sys.exit(0 if got == want else "punch-hole: content differs")
EOF
fallocate --zero-range --keep-size --offset $((1000 * 4096)) --length $((64 * 4096)) "$DIR/disk"
cmp -s <(dd if="$DIR/disk" bs=4096 count=64 skip=1000 status=none) <(head -c $((64 * 4096)) /dev/zero) ||
    fail "zero-range did not zero"

step "random model check: pwrite/pread/punch against a shadow copy"
python3 - "$DIR/disk" <<'EOF'
import ctypes, os, random, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
PUNCH, KEEP = 0x02, 0x01
BASE, SPAN = 64 << 20, 8 << 20            # a region of the disk
rng = random.Random(7)
fd = os.open(sys.argv[1], os.O_RDWR)
shadow = bytearray(os.pread(fd, SPAN, BASE))
for i in range(3000):
    off = rng.randrange(SPAN - 1)
    ln = min(rng.choice([1, 17, 512, 4096, 5000, 65536, 200000]), SPAN - off)
    op = rng.random()
    if op < 0.45:
        data = rng.randbytes(ln // 2) + bytes([i & 255]) * (ln - ln // 2)
        assert os.pwrite(fd, data, BASE + off) == ln
        shadow[off:off + ln] = data
    elif op < 0.55:
        if libc.fallocate(fd, PUNCH | KEEP, BASE + off, ln) != 0:
            sys.exit("fallocate: errno %d" % ctypes.get_errno())
        shadow[off:off + ln] = bytes(ln)
    else:
        got = os.pread(fd, ln, BASE + off)
        if got != shadow[off:off + ln]:
            sys.exit("model check: read %d+%d differs at op %d" % (off, ln, i))
if os.pread(fd, SPAN, BASE) != shadow:
    sys.exit("model check: final read differs")
os.close(fd)
print("3000 random operations agree with the model")
EOF

step "loop device, mkfs.ext4, copy a tree"
LOOP=$(losetup --direct-io=on -f --show "$DIR/disk" 2>/dev/null || losetup -f --show "$DIR/disk")
echo "loop: $LOOP (direct-io $(cat /sys/block/${LOOP#/dev/}/loop/dio 2>/dev/null || echo ?))"
mkfs.ext4 -q -F "$LOOP"
mount "$LOOP" "$MNT"
SRC=/usr/lib/python3.11
[ -d "$SRC" ] || SRC=/usr/include
cp -a "$SRC" "$MNT/tree"
sync
echo "copied $(du -sh "$MNT/tree" | cut -f1) of $SRC; mm_stat: $(cat "$DIR/mm_stat")"
"$UZRAM" stat "$DIR"
"$UZRAM" stat --json --bytes "$DIR" | python3 -c 'import json,sys; r=json.load(sys.stdin)["zramctl"]; assert r[0]["data"] > 0 and r[0]["algorithm"] == "lz4", r'
check_transport "$DIR"
"$UZRAM" stat --json --bytes "$DIR" | python3 -c 'import json,sys; r=json.load(sys.stdin)["zramctl"][0]; assert r["transport"] == sys.argv[1] and (r["ring-requests"] > 0) == (sys.argv[1] == "io_uring"), r' "$UZ_TRANSPORT"
if "$UZRAM" umount "$DIR" 2>/dev/null; then fail "umount of a busy mount succeeded"; fi
# zram's open-device rule, in the library: the loop device holds DIR/disk
# open, so reshaping stores are EBUSY and ext4 keeps its data (the fsck and
# the diff below read it all back)
expect_write_error "$DIR/reset" 1 "Device or resource busy"
expect_write_error "$DIR/disksize" 1G "Device or resource busy"
expect_write_error "$DIR/comp_algorithm" zstd "Device or resource busy"
expect_write_error "$DIR/algorithm_params" "algo=lz4 level=1" "Device or resource busy"
[ "$(cat "$DIR/initstate")" = 1 ] || fail "a refused reset changed initstate"

step "fsck, remount, cold read, diff"
umount "$MNT"
fsck.ext4 -fn "$LOOP"
mount "$LOOP" "$MNT"
echo 3 > /proc/sys/vm/drop_caches
diff -r --no-dereference "$SRC" "$MNT/tree"
echo "tree identical after remount"

step "discard: deleting and fstrim frees memory"
before=$(awk '{print $1}' "$DIR/mm_stat")
rm -rf "$MNT/tree"
sync    # freed blocks become trimmable once the journal commits
fstrim -v "$MNT"
after=$(awk '{print $1}' "$DIR/mm_stat")
echo "orig_data_size: $before -> $after"
[ "$after" -lt $((before / 2)) ] || fail "fstrim did not free memory"
umount "$MNT"
losetup -d "$LOOP"
LOOP=

step "umount: the daemon destroys the device and exits"
"$UZRAM" umount "$DIR"
! grep -q " $DIR fuse.uzram " /proc/self/mounts || fail "still mounted"
for _ in $(seq 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$DAEMON" 2>/dev/null || fail "daemon still running"
[ ! -e "$PIDFILE" ] || fail "pidfile left behind"

step "errors: a bad option fails the mount, nothing stays mounted"
if "$UZRAM" mount "$DIR" --size 64M --algorithm nosuch 2>"$WORK/err"; then fail "bad algorithm mounted"; fi
cat "$WORK/err"
! grep -q " $DIR fuse.uzram " /proc/self/mounts || fail "mounted after an error"

step "SIGTERM stops a daemon cleanly"
"$UZRAM" mount "$DIR" --size 64M --pidfile "$PIDFILE"
DAEMON=$(cat "$PIDFILE")
echo hello > "$WORK/h"; dd if="$WORK/h" of="$DIR/disk" conv=notrunc status=none
kill -TERM "$DAEMON"
for _ in $(seq 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$DAEMON" 2>/dev/null || fail "daemon ignored SIGTERM"
! grep -q " $DIR fuse.uzram " /proc/self/mounts || fail "still mounted after SIGTERM"

echo "PASS"
