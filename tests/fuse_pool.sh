#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_pool.sh - `uzram pool` end to end (issue 12 parts 2 and 4): a pool
# mount's zram-control behaves as /sys/class/zram-control (hot_add gives
# the lowest free number, hot_remove is EBUSY while the disk is open and
# removes the directory otherwise), its devices are disks of their own,
# `uzram clone` makes a copy-on-write clone that reads what its source
# held while writes to either stay their own, ext4 on a clone is fsck
# clean and holds the source's tree, also once the source is removed (and
# a clone of the clone once both sources are),
# `uzram stat` lists every device and the pool's totals, and `uzram
# umount` is refused while a device is open.
#
# Needs root, /dev/fuse, loop devices, mkfs.ext4; exits 77 (skip)
# otherwise.  Env: UZ_BUILD (build dir, default ./build).
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount losetup mkfs.ext4 fsck.ext4 python3 cmp diff
[ -e /dev/loop-control ] || skip "no loop devices"

MNT=
LOOPS=()
cleanup_extra() {
    [ -n "$MNT" ] && mountpoint -q "$MNT" && umount "$MNT"
    local l
    for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
    exec 3<&- 2>/dev/null
    return 0
}
fuse_setup pool
MNT=$WORK/mnt
mkdir -p "$MNT"

attach() {   # FILE -> the loop device, remembered for cleanup
    local l
    l=$(losetup --direct-io=on -f --show "$1")
    LOOPS+=("$l")
    echo "$l"
}
detach() {
    losetup -d "$1"
    local keep=() l
    for l in "${LOOPS[@]}"; do [ "$l" = "$1" ] || keep+=("$l"); done
    LOOPS=("${keep[@]}")
}
pool_json() {   # python expression over j (the --json output)
    "$UZRAM" stat --json --bytes "$DIR" | python3 -c "import json,sys; j=json.load(sys.stdin); $1"
}

step "a pool starts with zram0"
"$UZRAM" pool "$DIR" --mem-limit 1G --algorithm lz4 --pidfile "$PIDFILE"
grep -q "^uzram-pool $DIR fuse.uzram " /proc/self/mounts || fail "not in /proc/mounts"
DAEMON=$(cat "$PIDFILE")
kill -0 "$DAEMON" || fail "no daemon"
for f in zram-control zram-control/hot_add zram-control/hot_remove zram0 zram0/disk \
         zram0/disksize zram0/mm_stat zram0/clone mem_limit mm_stat pool_stat comp_algorithm; do
    [ -e "$DIR/$f" ] || fail "no $DIR/$f"
done
[ -e "$DIR/zram1" ] && fail "zram1 before any hot_add"
[ "$(stat -c %a "$DIR/zram-control/hot_add")" = 400 ] || fail "hot_add mode"
[ "$(stat -c %a "$DIR/zram-control/hot_remove")" = 200 ] || fail "hot_remove mode"
[ "$(cat "$DIR/zram0/disksize")" = 0 ] || fail "zram0 has a disksize before one is set"
[ "$(wc -w < "$DIR/pool_stat")" = 15 ] || fail "pool_stat: $(cat "$DIR/pool_stat")"
ls "$DIR"

step "hot_add twice gives 1 and 2"
[ "$(cat "$DIR/zram-control/hot_add")" = 1 ] || fail "first hot_add"
[ "$(cat "$DIR/zram-control/hot_add")" = 2 ] || fail "second hot_add"
[ -d "$DIR/zram1" ] && [ -d "$DIR/zram2" ] || fail "no zram1 / zram2 directories"
ls "$DIR" | grep -c '^zram[0-9]' | grep -qx 3 || fail "readdir: $(ls "$DIR")"

step "disksize on each; different data on zram0 and zram1"
for d in 0 1 2; do echo 64M > "$DIR/zram$d/disksize"; done
for d in 0 1 2; do
    [ "$(stat -c %s "$DIR/zram$d/disk")" = 67108864 ] || fail "zram$d disk size"
done
python3 - "$WORK" <<'EOF'
import os, random, sys
w = sys.argv[1]
for name, seed in (("a", 1), ("b", 2)):
    r = random.Random(seed)
    with open(f"{w}/{name}", "wb") as f:
        for i in range(64 * 256):
            if i % 3 == 0:
                f.write(r.randbytes(4096))
            else:
                f.write((b"%s page %08d " % (name.encode(), i)) * 256)   # 16 bytes * 256
EOF
dd if="$WORK/a" of="$DIR/zram0/disk" bs=1M conv=fsync status=none
dd if="$WORK/b" of="$DIR/zram1/disk" bs=1M conv=fsync status=none
cmp "$WORK/a" "$DIR/zram0/disk" || fail "zram0 does not read back"
cmp "$WORK/b" "$DIR/zram1/disk" || fail "zram1 does not read back"
read -r orig2 _ < "$DIR/zram2/mm_stat"
[ "$orig2" = 0 ] || fail "zram2 holds $orig2 bytes it was never given"

step "hot_remove: EBUSY while open, then gone"
exec 3<"$DIR/zram2/disk"
expect_write_error "$DIR/zram-control/hot_remove" 2 "Device or resource busy"
[ -d "$DIR/zram2" ] || fail "a refused hot_remove removed zram2"
exec 3<&-
echo 2 > "$DIR/zram-control/hot_remove"
[ -e "$DIR/zram2" ] && fail "zram2 is still there"
ls "$DIR" | grep -qx zram2 && fail "readdir still lists zram2"
expect_write_error "$DIR/zram-control/hot_remove" 2 "No such file or directory"
expect_write_error "$DIR/zram-control/hot_remove" junk "Invalid argument"
[ "$(cat "$DIR/zram-control/hot_add")" = 2 ] || fail "hot_add after hot_remove is not 2"
[ "$(cat "$DIR/zram2/disksize")" = 0 ] || fail "a new zram2 kept the old one's disksize"
echo 2 > "$DIR/zram-control/hot_remove"

step "a clone of zram0 reads what zram0 holds; writes stay their own"
C=$("$UZRAM" clone "$DIR/zram0")
[ "$C" = "$DIR/zram2" ] || fail "uzram clone printed '$C', want $DIR/zram2"
[ "$(stat -c %s "$C/disk")" = 67108864 ] || fail "clone disk size"
cmp "$WORK/a" "$C/disk" || fail "the clone does not read zram0's data"
# uzram.h: every object of the source now has two pages referring to it
# (shared_bytes, counting those a clone reads through to), and the pool's
# orig_data_size counts a shared page once per reference
pool_json 'p=j["pool"]; d=sum(r["data"] for r in p["devices"]); assert p["orig_bytes"] == d, ("pool orig_bytes is not its devices data summed", p["orig_bytes"], d); assert p["shared_bytes"] > 0, ("no shared_bytes right after a clone", p); assert len(p["devices"]) == 3, p["devices"]; assert all(k in p for k in ("footprint_bytes","orig_bytes","compr_bytes","shared_bytes","mem_limit")), p; assert p["mem_limit"] == 1 << 30, p; print("pool:", {k: p[k] for k in ("footprint_bytes","orig_bytes","compr_bytes","shared_bytes","mem_limit")})'
head -c 3M /dev/urandom > "$WORK/new"
dd if="$WORK/new" of="$C/disk" bs=1M seek=5 conv=notrunc,fsync status=none
cmp "$WORK/a" "$DIR/zram0/disk" || fail "writing the clone changed zram0"
cmp -n 3145728 "$WORK/new" <(tail -c +$((5 * 1048576 + 1)) "$C/disk") || fail "the clone lost its write"
cmp -n 5242880 "$WORK/a" "$C/disk" || fail "the clone's unwritten start changed"
dd if="$WORK/b" of="$DIR/zram0/disk" bs=1M count=2 conv=notrunc,fsync status=none
cmp -n 2097152 "$WORK/a" "$C/disk" || fail "writing zram0 changed the clone"
pool_json 'p=j["pool"]; assert p["shared_bytes"] > 0, ("no shared_bytes once the clone is written", p); d=sum(r["data"] for r in p["devices"]); assert p["orig_bytes"] == d, (p["orig_bytes"], d)'
expect_write_error "$DIR/zram1/comp_algorithm" zstd "Device or resource busy"

step "uzram stat: every device and the pool"
"$UZRAM" stat "$DIR" | tee "$WORK/stat"
for d in 0 1 2; do grep -q "^$DIR/zram$d " "$WORK/stat" || fail "no row for zram$d"; done
grep -q "^$DIR .*\[POOL\]" "$WORK/stat" || fail "no pool row"
"$UZRAM" stat --json "$DIR" > /dev/null

step "the pool's attributes; a device shows the pool's"
echo 2G > "$DIR/mem_limit"
read -r _ _ _ lim _ < "$DIR/mm_stat"      # mem_limit is write-only, as zram's
[ "$lim" = 2147483648 ] || fail "the pool's mm_stat mem_limit is $lim"
pool_json 'assert j["pool"]["mem_limit"] == 2 << 30, j["pool"]'
read -r _ _ _ lim _ < "$DIR/zram1/mm_stat"
[ "$lim" = 2147483648 ] || fail "zram1's mm_stat mem_limit $lim is not the pool's"
echo 1 > "$DIR/compact"
N=$(cat "$DIR/zram-control/hot_add")
if "$UZRAM" clone "$DIR/zram$N" 2>/dev/null; then fail "cloned an uninitialised device"; fi
if "$UZRAM" clone "$WORK" 2>/dev/null; then fail "cloned a directory that is no device"; fi
echo "$N" > "$DIR/zram-control/hot_remove"

step "ext4 on zram0, then on its clone; the clone survives its source"
echo 2 > "$DIR/zram-control/hot_remove"
echo 1 > "$DIR/zram0/reset"
echo 256M > "$DIR/zram0/disksize"
SRC=/usr/lib/python3.11
[ -d "$SRC" ] || SRC=/usr/share/doc
L=$(attach "$DIR/zram0/disk")
mkfs.ext4 -q -F "$L"
mount "$L" "$MNT"
cp -a "$SRC" "$MNT/tree"
umount "$MNT"
detach "$L"
C=$("$UZRAM" clone "$DIR/zram0")
L=$(attach "$C/disk")
fsck.ext4 -fn "$L" > "$WORK/fsck" 2>&1 || { cat "$WORK/fsck"; fail "fsck of the clone"; }
mount "$L" "$MNT"
diff -r --no-dereference "$SRC" "$MNT/tree" > /dev/null || fail "the clone's tree differs"
umount "$MNT"
detach "$L"
pool_json 'p=j["pool"]; assert p["shared_bytes"] > 0, p; print("after the ext4 clone: shared", p["shared_bytes"], "of", p["compr_bytes"])'
echo 0 > "$DIR/zram-control/hot_remove"
[ -e "$DIR/zram0" ] && fail "zram0 still there"
L=$(attach "$C/disk")
fsck.ext4 -fn "$L" > "$WORK/fsck" 2>&1 || { cat "$WORK/fsck"; fail "fsck of the clone after its source went"; }
mount -o ro "$L" "$MNT"
diff -r --no-dereference "$SRC" "$MNT/tree" > /dev/null || fail "the clone's tree differs without its source"
umount "$MNT"
detach "$L"
C2=$("$UZRAM" clone "$C")
echo "${C##*/zram}" > "$DIR/zram-control/hot_remove"
L=$(attach "$C2/disk")
fsck.ext4 -fn "$L" > "$WORK/fsck" 2>&1 || { cat "$WORK/fsck"; fail "fsck of a clone of the clone once both sources went"; }
detach "$L"

step "a 1 TiB device and a clone of it: open, write, stat and the counters answer (issue 19)"
# Each call below took time in proportion to disksize, superlinearly (a
# 32 GiB device: 2 s; 1 TiB: never done); now each is O(1).  The limits
# are there so that a regression fails rather than hangs.
B=$(cat "$DIR/zram-control/hot_add")
echo 1T > "$DIR/zram$B/disksize"
head -c $((8 << 20)) "$WORK/a" > "$WORK/eight"
timeout 60 dd if="$WORK/eight" of="$DIR/zram$B/disk" bs=1M seek=$(((1 << 20) - 8)) oflag=direct \
    status=none || fail "8 MiB at the end of a 1 TiB device"
timeout 60 cat "$DIR/zram$B/mm_stat" > "$WORK/mm" || fail "mm_stat of a 1 TiB device"
[ "$(awk '{print $1}' "$WORK/mm")" = $((8 << 20)) ] || fail "orig_data_size $(cat "$WORK/mm")"
BC=$(timeout 60 cat "$DIR/zram$B/clone") || fail "a clone of a 1 TiB device"
timeout 60 stat "$DIR/zram$BC/disk" > /dev/null || fail "stat of the clone's disk"
[ "$(awk '{print $1}' "$DIR/zram$BC/mm_stat")" = $((8 << 20)) ] || fail "the clone's orig_data_size"
timeout 60 cat "$DIR/pool_stat" > /dev/null || fail "pool_stat"
timeout 60 "$UZRAM" stat "$DIR" > /dev/null || fail "uzram stat of the pool"
timeout 60 dd if="$DIR/zram$BC/disk" bs=1M skip=$(((1 << 20) - 8)) iflag=direct status=none \
    | cmp - "$WORK/eight" || fail "the clone reads another 8 MiB"
echo "$BC" > "$DIR/zram-control/hot_remove"
echo "$B" > "$DIR/zram-control/hot_remove"

check_transport "$DIR"
step "umount is refused while a device is open"
exec 3<"$DIR/zram1/disk"
if "$UZRAM" umount "$DIR" 2>/dev/null; then fail "umount with zram1 open succeeded"; fi
grep -q " $DIR fuse.uzram " /proc/self/mounts || fail "the pool went away"
exec 3<&-
"$UZRAM" umount "$DIR"
grep -q " $DIR fuse.uzram " /proc/self/mounts && fail "still mounted"
state=$(sed 's/.*) //' "/proc/$DAEMON/stat" 2>/dev/null | cut -c1)
case "${state:-gone}" in gone|Z|X) ;; *) fail "the daemon $DAEMON is still running ($state)";; esac
echo "PASS"
