#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# stat_attr.sh - DIR/stat, the block layer's stat file, counts the I/O a
# real client does through the FUSE mount: 8 MiB of O_DIRECT writes, 4 MiB
# of O_DIRECT reads, a 1 MiB punched hole (discard) and an fsync, each in
# its own fields; 17 fields, as the kernel's /sys/block/zramN/stat has.
# Needs root and /dev/fuse (exits 77 otherwise).  Env: UZ_BUILD.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount dd fallocate python3
fuse_setup statattr
"$UZRAM" mount "$DIR" --size 64M --pidfile "$PIDFILE"

read -ra f < "$DIR/stat"
[ "${#f[@]}" = 17 ] || fail "stat has ${#f[@]} fields, not 17"
if [ -r /sys/block/zram0/stat ]; then
    k=$(wc -w < /sys/block/zram0/stat)
    [ "$k" = 17 ] || fail "the kernel's zram stat has $k fields"
fi
[ "$(tr -s ' \n' '+' < "$DIR/stat")" = "+0+0+0+0+0+0+0+0+0+0+0+0+0+0+0+0+0+" ] ||
    fail "a fresh mount's stat is not all zeros: $(cat "$DIR/stat")"

dd if=/dev/urandom of="$DIR/disk" bs=1M count=8 oflag=direct conv=notrunc status=none
dd if="$DIR/disk" of=/dev/null bs=1M count=4 iflag=direct status=none
fallocate -p -o $((16 << 20)) -l $((1 << 20)) "$DIR/disk"
read -ra before < "$DIR/stat"    # (the kernel may fsync around fallocate itself)
python3 -c "import os; fd = os.open('$DIR/disk', os.O_RDWR); os.fsync(fd); os.close(fd)"
cat "$DIR/stat"
read -ra f < "$DIR/stat"
# reads: 4 MiB = 8192 sectors in >= 1 request; writes: 8 MiB = 16384
[ "${f[0]}" -ge 1 ] && [ "${f[2]}" = 8192 ] || fail "reads: ${f[0]} ios, ${f[2]} sectors"
[ "${f[4]}" -ge 1 ] && [ "${f[6]}" = 16384 ] || fail "writes: ${f[4]} ios, ${f[6]} sectors"
[ "${f[1]}" = 0 ] && [ "${f[5]}" = 0 ] || fail "merges are not 0"
[ "${f[8]}" = 0 ] || fail "${f[8]} requests in flight when idle"
[ "${f[11]}" = 1 ] && [ "${f[13]}" = 2048 ] || fail "discards: ${f[11]} ios, ${f[13]} sectors"
[ $((f[15] - before[15])) = 1 ] ||
    fail "$((f[15] - before[15])) flushes counted for one fsync and close (a close is no flush)"
[ "${f[10]}" -ge $((f[3] + f[7])) ] || fail "time_in_queue below the read and write ticks"
echo PASS
