#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# tests/capacity_2t.sh - a pool's default capacity is 4 TiB, as uzram.h,
# uzram(1) and nbdkit-uzram-plugin(1) say: a 2 TiB device fits without
# naming a capacity.
#   - `nbdkit uzram export=a:2T` serves a 2 TiB export (nbdinfo --size);
#     its first and last MiB are written and read back (qemu-io patterns),
#     the last MiB also copied out with nbdcopy through nbdkit's offset
#     filter and compared with what was written; a write past the end is
#     refused and the server survives it
#   - `uzram pool DIR --size 2T` makes DIR/zram0/disk of 2 TiB (stat); its
#     last MiB written with dd from a random file and read back identical;
#     DIR/zram0/disksize says so, and pool_stat's capacity is 4 TiB (to a
#     unit)
#   - a second device of 2 TiB + 4 KiB beside it does not fit: ENOSPC, and
#     the first keeps its bytes
#
# Run by ctest (label "system"); by hand:
#   UZ_BUILD=build bash tests/capacity_2t.sh
# Exit 77 = skipped (nbdkit, its offset filter, nbdinfo, nbdcopy, qemu-io or
# FUSE missing).
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so
UZRAM=$UZ_BUILD/uzram
T2=$((2 << 40))
T4=$((4 << 40))

skip() { echo "SKIP: $*"; exit 77; }
for tool in nbdkit nbdinfo nbdcopy qemu-io cmp dd timeout; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (packages nbdkit, libnbd-bin, qemu-utils)"
done
[ -f "$PLUGIN" ] || skip "$PLUGIN is not built (needs nbdkit-plugin-dev)"
nbdkit --dump-plugin "$PLUGIN" 2>/dev/null | grep -q '^uzram_exports=yes' || skip "$PLUGIN has no pool mode"
nbdkit --filter=offset null --dump-plugin >/dev/null 2>&1 || skip "nbdkit's offset filter is not installed"
[ "$(id -u)" = 0 ] || skip "needs root (FUSE mounts)"
[ -c /dev/fuse ] || skip "no /dev/fuse"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/uz-cap2t.XXXXXX")
SERVERS=()
DIR=$WORK/pool
cleanup() {
    set +e
    local name pid
    for name in "${SERVERS[@]}"; do
        pid=$(cat "$WORK/$name.pid" 2>/dev/null)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null
        fi
    done
    if grep -q " $DIR fuse.uzram" /proc/self/mounts; then
        timeout 10 "$UZRAM" umount "$DIR" || umount -l "$DIR"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SOCK=$WORK/a.sock
uri() { echo "nbd+unix:///$1?socket=$SOCK"; }
. "$(dirname "$0")/lib/nbd_common.sh"

# ------------------------------------------------------ nbdkit export=a:2T

SERVERS+=(a)
nbdkit -f -U "$SOCK" -P "$WORK/a.pid" "$PLUGIN" export=a:2T "${MLOCK[@]}" 2>"$WORK/a.err" &
deadline=$((SECONDS + 20))
until [ -s "$WORK/a.pid" ] && [ -S "$SOCK" ]; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 $! 2>/dev/null; then
        cat "$WORK/a.err"
        echo "FAIL - nbdkit export=a:2T is not serving"
        exit 1
    fi
    sleep 0.1
done
check "export=a:2T serves 2 TiB (nbdinfo --size)" test "$(timeout 30 nbdinfo --size "$(uri a)")" = "$T2"
check "export=a:2T: first and last MiB written and read back" \
    qio a "write -P 0x3c 0 1M" "write -P 0xa7 $((T2 - M)) 1M" \
    "read -P 0x3c 0 1M" "read -P 0xa7 $((T2 - M)) 1M" "read -P 0 $((T2 / 2)) 1M"
# nbdcopy of the last MiB, through nbdkit's offset filter over our export
printf '\xa7%.0s' $(seq 1 1024) > "$WORK/k"
for _ in $(seq 10); do cat "$WORK/k" "$WORK/k" > "$WORK/k2"; mv "$WORK/k2" "$WORK/k"; done
check "export=a:2T: nbdcopy reads the last MiB back identical" eval \
    "timeout 60 nbdcopy -- [ nbdkit --filter=offset nbd socket='$SOCK' export=a offset=$((T2 - M)) range=$M ] '$WORK/last' && cmp '$WORK/last' '$WORK/k'"
check "export=a:2T: a write past the end is refused" \
    eval "! qemu-io -f raw '$(uri a)' -c 'write -P 1 $T2 4096' 2>&1 | grep -q '^wrote'"
check "export=a:2T: the server survives it" kill -0 "$(cat "$WORK/a.pid")"
check "export=a:2T: the last MiB still holds its bytes" qio a "read -P 0xa7 $((T2 - M)) 1M"
stop_server a

# ------------------------------------------------------ uzram pool --size 2T

mkdir -p "$DIR"
if ! timeout 60 "$UZRAM" pool "$DIR" --size 2T --pidfile "$WORK/pool.pid" 2>"$WORK/pool.err"; then
    cat "$WORK/pool.err"
    echo "FAIL - uzram pool DIR --size 2T"
    exit 1
fi
check "uzram pool --size 2T: DIR/zram0/disk is 2 TiB" test "$(stat -c %s "$DIR/zram0/disk")" = "$T2"
check "uzram pool --size 2T: disksize says 2 TiB" test "$(cat "$DIR/zram0/disksize")" = "$T2"
# (4 TiB rounded up to whole units of 680 pages, src/store.h)
cap=$(awk '{ print $3 }' "$DIR/pool_stat")
check "uzram pool: pool_stat's capacity is 4 TiB (the default; $cap bytes)" \
    test "$cap" -ge "$T4" -a "$cap" -lt $((T4 + 680 * 4096))
dd if=/dev/urandom of="$WORK/rand" bs=1M count=1 status=none
check "uzram pool --size 2T: the last MiB written (dd)" \
    dd if="$WORK/rand" of="$DIR/zram0/disk" bs=1M seek=$((T2 / M - 1)) conv=notrunc,fsync status=none
check "uzram pool --size 2T: the last MiB reads back identical" eval \
    "dd if='$DIR/zram0/disk' bs=1M skip=$((T2 / M - 1)) count=1 status=none | cmp - '$WORK/rand'"
check "uzram pool --size 2T: the first MiB reads zeros" eval \
    "dd if='$DIR/zram0/disk' bs=1M count=1 status=none | cmp - <(head -c $M /dev/zero)"
# a second device of 2 TiB + 1 page does not fit beside the first
n=$(cat "$DIR/zram-control/hot_add")
if err=$( (printf '%s\n' $((T2 + 4096)) > "$DIR/zram$n/disksize") 2>&1 ); then
    fail "a second device of 2 TiB + 4 KiB beside a 2 TiB one was sized past the capacity"
else
    case "$err" in
        *"No space left"*) pass "a second device of 2 TiB + 4 KiB is refused (ENOSPC)" ;;
        *) fail "a second device past the capacity: '$err', want ENOSPC" ;;
    esac
fi
check "the 2 TiB device still holds its last MiB" eval \
    "dd if='$DIR/zram0/disk' bs=1M skip=$((T2 / M - 1)) count=1 status=none | cmp - '$WORK/rand'"

[ "$FAILED" = 0 ] || { echo "capacity_2t: $FAILED check(s) failed"; exit 1; }
echo "capacity_2t: 2 TiB exports and pool devices in the default 4 TiB capacity"
