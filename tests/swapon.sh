#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# swapon.sh - `uzram swapon` / `uzram swapoff` for real: a swap device
# comes up active (in /proc/swaps with its priority and size, mkswap's
# signature on the loop device, [SWAP] in `uzram stat`) and goes away with
# nothing left behind: no uzram mount, no loop device on it, no daemon, no
# directory.  A step that fails (a bad attribute; mkswap failing, through a
# mkswap on PATH that exits 1) leaves nothing behind either.
#
# Every device lives under a private UZRAM_RUNDIR, so `uzram swapoff`
# with no argument touches only this test's devices.
# Needs root, /dev/fuse, loop devices, mkswap/swapon; exits 77 otherwise.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount losetup mkswap swapon swapoff blkid
[ -e /dev/loop-control ] || skip "no loop devices"

WORK=$(mktemp -d /tmp/uzram-swapon.XXXXXX)
export UZRAM_RUNDIR=$WORK/run
cleanup() {
    local rc=$?
    set +e
    # anything of ours still up: take it down by hand
    rundir_teardown
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# nothing of this test's is up: no mount, loop device or daemon under RUNDIR
nothing_left() {
    if grep -q " $UZRAM_RUNDIR/" /proc/self/mounts; then fail "$1: a mount is left"; fi
    if losetup -a | grep -q "$UZRAM_RUNDIR/"; then fail "$1: a loop device is left"; fi
    if grep -q "$UZRAM_RUNDIR/" /proc/swaps; then fail "$1: a swap is left"; fi
    local t
    for t in $(seq 50); do pgrep -f "uzram mount $UZRAM_RUNDIR/" >/dev/null || break; sleep 0.1; done
    if pgrep -f "uzram mount $UZRAM_RUNDIR/" >/dev/null; then fail "$1: a daemon is left"; fi
    if [ -d "$UZRAM_RUNDIR" ] && [ -n "$(ls -A "$UZRAM_RUNDIR")" ]; then
        fail "$1: left in RUNDIR: $(ls "$UZRAM_RUNDIR")"
    fi
    echo "ok: $1: nothing left"
}

step "bad usage is refused"
set +e
"$UZRAM" swapon --size 256M --percent 10 2>/dev/null; [ $? = 2 ] || fail "--size with --percent accepted"
"$UZRAM" swapon --size junk 2>/dev/null; [ $? = 2 ] || fail "--size junk accepted"
"$UZRAM" swapon --priority -5 2>/dev/null; [ $? = 2 ] || fail "--priority -5 accepted"
"$UZRAM" swapon --attr novalue 2>/dev/null; [ $? = 2 ] || fail "--attr without = accepted"
out=$("$UZRAM" swapoff /dev/null 2>&1); [ $? = 1 ] || fail "swapoff /dev/null accepted"
set -e
echo "$out"

step "swapon --size 256M --priority 7"
LOOP=$("$UZRAM" swapon --size 256M --priority 7 --algorithm zstd)
echo "swap on $LOOP"
line=$(grep "^$LOOP " /proc/swaps) || fail "$LOOP not in /proc/swaps"
echo "$line"
[ "$(echo "$line" | awk '{print $5}')" = 7 ] || fail "priority is not 7"
kib=$(echo "$line" | awk '{print $3}')
# 256 MiB minus the swap header page
[ "$kib" -ge $((256 * 1024 - 8)) ] && [ "$kib" -le $((256 * 1024)) ] || fail "size $kib KiB"
[ "$(blkid -o value -s TYPE "$LOOP")" = swap ] || fail "no swap signature on $LOOP"
DIR=$UZRAM_RUNDIR/swap0
[ "$(cat /sys/block/${LOOP#/dev/}/loop/dio)" = 1 ] || fail "loop device without direct I/O"
grep -q "\[zstd\]" "$DIR/comp_algorithm" || fail "algorithm is not zstd"
"$UZRAM" stat "$DIR"   # this test's mount only: another process's may hang
"$UZRAM" stat "$DIR" | grep -q "\[SWAP\]$" || fail "uzram stat does not show [SWAP]"

step "a second one, and swapoff NAME"
LOOP2=$("$UZRAM" swapon --size 64M --name extra --attr "recomp_algorithm=algo=zstd priority=1")
grep -q "^$LOOP2 " /proc/swaps || fail "$LOOP2 not in /proc/swaps"
grep -q "#1: .*\[zstd\]" "$UZRAM_RUNDIR/extra/recomp_algorithm" || fail "recomp_algorithm not set"
"$UZRAM" swapoff extra
grep -q "^$LOOP2 " /proc/swaps && fail "$LOOP2 still swapping"
[ -d "$UZRAM_RUNDIR/extra" ] && fail "extra's directory is left"
grep -q "^$LOOP " /proc/swaps || fail "swapoff extra took $LOOP too"

step "swapoff (every uzram swap under RUNDIR)"
"$UZRAM" swapoff
nothing_left "swapoff"

step "a failing step is undone: bad attribute"
if "$UZRAM" swapon --size 64M --attr "recomp_algorithm=algo=nosuch" 2>"$WORK/err"; then
    fail "swapon with a bad attribute succeeded"
fi
cat "$WORK/err"
grep -q "recomp_algorithm" "$WORK/err" || fail "the error does not name the attribute"
nothing_left "bad attribute"

step "a failing step is undone: mkswap fails"
mkdir "$WORK/bin"
printf '#!/bin/sh\necho "mkswap: injected failure" >&2\nexit 1\n' > "$WORK/bin/mkswap"
chmod +x "$WORK/bin/mkswap"
if PATH=$WORK/bin:$PATH "$UZRAM" swapon --size 64M 2>"$WORK/err"; then
    fail "swapon with a failing mkswap succeeded"
fi
cat "$WORK/err"
grep -q "making swap" "$WORK/err" || fail "the error does not say which step failed"
nothing_left "mkswap fails"
echo "PASS"
