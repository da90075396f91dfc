#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_sparse.sh - a 1 TiB uzram costs memory only where it is written:
# mount --size 1T, write 1000 scattered 4 KiB blocks with dd, and check that
# the daemon's resident memory (VmRSS) rose by less than 8 MiB over its idle
# value; read the blocks back and compare.
#
# Needs root and /dev/fuse; exits 77 (skip) otherwise.  Env: UZ_BUILD.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
NBLOCKS=1000
LIMIT_KB=$((8 * 1024))

need_fuse_mount shuf python3 cmp dd

fuse_setup sparse

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON/status"; }
# The daemon's VmRSS once it has settled (the same in three samples 50 ms
# apart: the prefault helper fills its window after a write), or fail
# after 10 s.
settled_rss() {
    local last="" same=0 r i
    for i in $(seq 200); do
        r=$(rss_kb)
        if [ "$r" = "$last" ]; then same=$((same + 1)); else same=0; last=$r; fi
        [ "$same" -ge 2 ] && { echo "$r"; return 0; }
        sleep 0.05
    done
    fail "the daemon's VmRSS did not settle in 10 s (last $r kB)"
}

step "mount a 1 TiB device"
"$UZRAM" mount "$DIR" --size 1T --pidfile "$PIDFILE"
DAEMON=$(cat "$PIDFILE")
[ "$(cat "$DIR/disksize")" = $((1 << 40)) ] || fail "disksize $(cat "$DIR/disksize")"
[ "$(stat -c %s "$DIR/disk")" = $((1 << 40)) ] || fail "disk size"

# Blocks that compress like ordinary data: text naming the block, then
# bytes derived from its number (different for every block).
python3 - "$WORK/blocks" "$NBLOCKS" <<'EOF'
import sys
with open(sys.argv[1], 'wb') as f:
    for i in range(int(sys.argv[2])):
        head = (b"uzram sparse test block %06d\n" % i) * 40
        tail = bytes((i * 7 + j * j) & 0xff for j in range(4096 - len(head)))
        f.write(head + tail)
EOF
# Distinct random block numbers spread over the whole disk.
shuf -i 0-$(((1 << 40) / 4096 - 1)) -n $NBLOCKS > "$WORK/where"

# Warm up: one small write and read so every lazily touched buffer of the
# server is in; then the idle RSS.
dd if="$WORK/blocks" of="$DIR/disk" bs=4096 count=1 conv=notrunc status=none
dd if="$DIR/disk" of=/dev/null bs=4096 count=1 status=none
cat "$DIR/mm_stat" >/dev/null
IDLE=$(settled_rss)
echo "idle: VmRSS ${IDLE} kB"

step "write $NBLOCKS scattered 4 KiB blocks with dd"
i=0
while read -r blk; do
    dd if="$WORK/blocks" of="$DIR/disk" bs=4096 skip=$i seek="$blk" count=1 \
       conv=notrunc status=none
    i=$((i + 1))
done < "$WORK/where"
AFTER=$(settled_rss)
DELTA=$((AFTER - IDLE))
echo "after: VmRSS ${AFTER} kB (+${DELTA} kB); mm_stat: $(cat "$DIR/mm_stat")"
grep 'footprint' "$DIR/debug_stat" || true
"$UZRAM" stat "$DIR"
[ "$DELTA" -lt "$LIMIT_KB" ] || fail "RSS rose by ${DELTA} kB (limit ${LIMIT_KB} kB)"

step "read them back"
: > "$WORK/back"
while read -r blk; do
    dd if="$DIR/disk" bs=4096 skip="$blk" count=1 status=none >> "$WORK/back"
done < "$WORK/where"
cmp "$WORK/blocks" "$WORK/back" || fail "blocks read back differ"
orig=$(awk '{print $1}' "$DIR/mm_stat")
[ "$orig" -le $(((NBLOCKS + 1) * 4096)) ] || fail "orig_data_size $orig"
echo "all $NBLOCKS blocks verified; RSS delta ${DELTA} kB for ${NBLOCKS} x 4 KiB over 1 TiB"

check_transport "$DIR"
step "umount"
"$UZRAM" umount "$DIR"
for _ in $(seq 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$DAEMON" 2>/dev/null || fail "daemon still running"
echo "PASS"
