#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# generator_nbd.sh - uzram.conf's writeback-device as an NBD URI (far
# memory, docs/far-memory.md): the generator takes nbd://, nbds:// and
# nbd+unix:// devices, writes their units after network-online.target and
# wanted by remote-fs.target (not swap.target or local-fs.target: the
# network is not up that early), and `systemd-analyze verify` passes them;
# malformed URIs get no unit and an error naming their line; a device
# with a local writeback file keeps its swap.target unit.  Then `uzram up`
# of the swap section, against a real `nbdkit memory`, comes up with the
# URI as its backing_dev, and `uzram down` takes it away; and `uzram
# swapon --backing-dev URI` (its swap header written back and read again).
#
# Needs root, /dev/fuse, loop devices, mkswap/swapon, nbdkit and
# systemd-analyze; exits 77 otherwise.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount systemd-analyze nbdkit losetup mkswap swapon swapoff ss
GEN=$(realpath "$UZ_BUILD/uzram-generator")
[ -x "$GEN" ] || fail "no $UZ_BUILD/uzram-generator"

WORK=$(mktemp -d /tmp/uzram-generator-nbd.XXXXXX)
export UZRAM_RUNDIR=$WORK/run UZRAM_CONF=$WORK/uzram.conf
cleanup() {
    local rc=$?
    set +e
    rundir_teardown
    [ -f "$WORK/far.pid" ] && kill "$(cat "$WORK/far.pid")"
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

while :; do
    PORT=$((30000 + RANDOM % 25000))
    ss -ltnH "sport = :$PORT" | grep -q . || break
done
truncate -s 64M "$WORK/local.img"
cat > "$UZRAM_CONF" <<CONF
# swap whose cold pages go to another host's memory
[farswap]
zram-size = 32
swap-priority = 50
writeback-device = nbd://127.0.0.1:$PORT/?timeout=5

[farfs]
zram-size = 64
fs-type = ext4
mount-point = $WORK/farfs
writeback-device = nbds://memhost.example.com/cold?tls-psk-file=/etc/uzram/psk

[unixswap]
zram-size = 16
writeback-device = nbd+unix:///cold?socket=/run/memserver.sock

[localswap]
zram-size = 16
writeback-device = $WORK/local.img
CONF

step "the generator with NBD writeback devices"
mkdir "$WORK/normal" "$WORK/early" "$WORK/late"
"$GEN" "$WORK/normal" "$WORK/early" "$WORK/late"
find "$WORK/normal" | sort
for u in farswap farfs unixswap; do
    [ -e "$WORK/normal/remote-fs.target.wants/uzram-$u.service" ] ||
        fail "uzram-$u.service is not wanted by remote-fs.target"
    grep -qx "After=systemd-modules-load.service network-online.target" "$WORK/normal/uzram-$u.service" ||
        fail "uzram-$u.service is not ordered after network-online.target"
    grep -qx "Wants=network-online.target" "$WORK/normal/uzram-$u.service" ||
        fail "uzram-$u.service does not want network-online.target"
done
[ -e "$WORK/normal/swap.target.wants/uzram-localswap.service" ] ||
    fail "the local writeback device's swap is not wanted by swap.target"
[ -e "$WORK/normal/swap.target.wants/uzram-farswap.service" ] &&
    fail "a swap on a remote writeback device is wanted by swap.target"
cat "$WORK/normal/uzram-farswap.service"

step "systemd-analyze verify"
MAN=--man=no
[ -f "$UZ_BUILD/man/man1/uzram.1" ] && { export MANPATH=$(realpath "$UZ_BUILD/man"); MAN=--man=yes; }
systemd-analyze verify $MAN "$WORK"/normal/uzram-*.service
echo "ok: verified"

step "malformed URIs: an error with the line, no unit"
cat > "$WORK/bad.conf" <<CONF
[nohost]
writeback-device = nbd:///export

[badport]
writeback-device = nbd://host:port/export

[nosocket]
writeback-device = nbd+unix:///export

[relsocket]
writeback-device = nbd+unix:///export?socket=run/x.sock

[good]
writeback-device = nbd://memhost/cold
CONF
mkdir "$WORK/bad"
rc=0
UZRAM_CONF=$WORK/bad.conf "$GEN" "$WORK/bad" "$WORK/early" "$WORK/late" 2>"$WORK/err" || rc=$?
cat "$WORK/err"
[ "$rc" = 1 ] || fail "the generator exited $rc on bad URIs, not 1"
for l in 2 5 8 11; do
    grep -q "bad.conf:$l: .*writeback-device" "$WORK/err" || fail "no error for line $l"
done
[ "$(find "$WORK/bad" -maxdepth 1 -name '*.service' -printf '%f\n' | sort | tr '\n' ' ')" = "uzram-good.service " ] ||
    fail "units: $(find "$WORK/bad" -name '*.service')"

step "uzram up farswap: a swap whose backing device is nbdkit memory"
nbdkit -i 127.0.0.1 -p "$PORT" -P "$WORK/far.pid" memory 64M
for _ in $(seq 100); do [ -s "$WORK/far.pid" ] && break; sleep 0.05; done
"$UZ_BUILD/uzram" up -- farswap
d=$UZRAM_RUNDIR/farswap
[ "$(cat "$d/backing_dev")" = "nbd://127.0.0.1:$PORT/?timeout=5" ] ||
    fail "backing_dev is '$(cat "$d/backing_dev")'"
loop=$(losetup -j "$d/disk" -O NAME -n)
grep -q "^$loop " /proc/swaps || fail "farswap is not an active swap"
"$UZ_BUILD/uzram" down -- farswap
grep -q " $d fuse.uzram " /proc/self/mounts && fail "farswap still mounted after down"

step "uzram swapon --backing-dev URI"
LOOP=$("$UZ_BUILD/uzram" swapon --size 16M --name far2 --backing-dev "nbd://127.0.0.1:$PORT/")
grep -q "^$LOOP " /proc/swaps || fail "$LOOP not in /proc/swaps"
[ "$(cat "$UZRAM_RUNDIR/far2/backing_dev")" = "nbd://127.0.0.1:$PORT/" ] ||
    fail "swapon's backing_dev is '$(cat "$UZRAM_RUNDIR/far2/backing_dev")'"
echo all > "$UZRAM_RUNDIR/far2/idle"
echo idle > "$UZRAM_RUNDIR/far2/writeback"
echo "bd_stat: $(cat "$UZRAM_RUNDIR/far2/bd_stat")"
[ "$(awk '{print $1}' "$UZRAM_RUNDIR/far2/bd_stat")" -ge 1 ] || fail "the swap header page did not go out"
blockdev --flushbufs "$LOOP"
dd if="$LOOP" of=/dev/null bs=4096 count=1 iflag=direct status=none
blkid -p "$LOOP" | grep -q 'TYPE="swap"' || fail "the swap signature does not read back from the remote"
[ "$(awk '{print $2}' "$UZRAM_RUNDIR/far2/bd_stat")" -ge 1 ] || fail "the header was not read from the remote"
"$UZ_BUILD/uzram" swapoff far2
echo "generator_nbd: ok"
