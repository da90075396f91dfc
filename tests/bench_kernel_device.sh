#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# tests/bench_kernel_device.sh - `uzram bench --kernel-device zramN` never
# resets a kernel zram device that holds data (issue 19, finding 1).
#
#   - a device of our own (hot_add), initialised with 16 MiB of random
#     data written by dd: bench refuses it before running anything (exit 1,
#     a message naming the device and saying it is initialised), and the
#     device keeps initstate 1, its disksize and every byte (cmp)
#   - a device that does not exist: refused, exit 1, "no such"
#   - an uninitialised device of our own: bench uses it (a kernel-zram row,
#     exit 0) and leaves it as it found it (initstate 0: the reset is the
#     one of the run that initialised it)
#
# Touches only kernel zram devices it makes with
# /sys/class/zram-control/hot_add, removed (hot_remove) by the trap.
# Needs root and kernel zram with zram-control; exits 77 otherwise.
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
UZRAM=$UZ_BUILD/uzram

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (kernel zram devices)"
[ -x "$UZRAM" ] || skip "$UZRAM is not built"
[ -r /sys/class/zram-control/hot_add ] || skip "the kernel has no zram-control (no zram module)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/uz-benchkdev.XXXXXX")
DEVS=()             # numbers of the kernel devices this test made
cleanup() {
    local n
    set +e
    for n in "${DEVS[@]}"; do
        # ours: reset (the data is ours too) and remove
        echo 1 >"/sys/block/zram$n/reset" 2>/dev/null
        echo "$n" >/sys/class/zram-control/hot_remove 2>/dev/null ||
            echo "warning: could not hot_remove zram$n"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=$((FAILED + 1)); }

# hot_add : a new kernel zram device of ours; its number in $NEW
hot_add() {
    NEW=$(cat /sys/class/zram-control/hot_add)
    DEVS+=("$NEW")
    for _ in $(seq 100); do [ -b "/dev/zram$NEW" ] && return 0; sleep 0.05; done
    echo "FAIL - /dev/zram$NEW did not appear"; exit 1
}

# a small page file: 1 MiB of text-like and random pages
python3 - "$WORK/pages" <<'PY' 2>/dev/null || head -c $((1024 * 1024)) /dev/urandom >"$WORK/pages"
import random, sys
r = random.Random(7)
with open(sys.argv[1], "wb") as f:
    for i in range(256):
        p = (b"page %d of the test " % i) * 300 if i % 2 else r.randbytes(4096)
        f.write(p[:4096])
PY

# ------------------------------------------------ an initialised device
hot_add; D=$NEW
echo 16M >"/sys/block/zram$D/disksize"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$WORK/data"
dd if="$WORK/data" of="/dev/zram$D" bs=1M oflag=direct status=none
rc=0
timeout 120 "$UZRAM" bench --kernel-device "zram$D" "$WORK/pages" >"$WORK/out" 2>"$WORK/err" || rc=$?
cat "$WORK/err"
if [ "$rc" -eq 1 ]; then pass "bench --kernel-device zram$D (initialised): exit 1"
else fail "bench --kernel-device zram$D (initialised): exit $rc, want 1"; fi
if grep -q "zram$D" "$WORK/err" && grep -q "initialised" "$WORK/err" &&
   grep -q "initstate 1" "$WORK/err"; then
    pass "... the message names zram$D and says it is initialised"
else
    fail "... the message does not name the device and why"
fi
if grep -q "kernel-zram\|fill" "$WORK/out"; then fail "... but it benchmarked something first"
else pass "... refused before running anything"; fi
if [ "$(cat "/sys/block/zram$D/initstate")" = 1 ] &&
   [ "$(cat "/sys/block/zram$D/disksize")" = $((16 * 1024 * 1024)) ]; then
    pass "... zram$D still has initstate 1 and disksize 16M"
else
    fail "... zram$D was reset (initstate $(cat "/sys/block/zram$D/initstate"))"
fi
if cmp "$WORK/data" "/dev/zram$D"; then pass "... and its 16 MiB read back identical (cmp)"
else fail "... and its data changed"; fi

# ------------------------------------------------ no such device
rc=0
timeout 60 "$UZRAM" bench --kernel-device zram99999 "$WORK/pages" >/dev/null 2>"$WORK/err" || rc=$?
cat "$WORK/err"
if [ "$rc" -eq 1 ] && grep -q "zram99999: no such kernel zram device" "$WORK/err"; then
    pass "bench --kernel-device zram99999: exit 1, no such device"
else
    fail "bench --kernel-device zram99999: exit $rc"
fi

# ------------------------------------------------ an unused device of ours
if grep -qw lz4 "/sys/block/zram$D/comp_algorithm"; then
    hot_add; U=$NEW
    rc=0
    timeout 300 "$UZRAM" bench --kernel-device "zram$U" "$WORK/pages" >"$WORK/out" 2>"$WORK/err" || rc=$?
    cat "$WORK/out" "$WORK/err"
    if [ "$rc" -eq 0 ] && grep -q "kernel-zram" "$WORK/out"; then
        pass "bench --kernel-device zram$U (not initialised): runs the kernel side, exit 0"
    else
        fail "bench --kernel-device zram$U (not initialised): exit $rc, no kernel-zram row"
    fi
    if [ "$(cat "/sys/block/zram$U/initstate")" = 0 ]; then
        pass "... and leaves zram$U uninitialised, as it found it"
    else
        fail "... zram$U is left initialised"
    fi
else
    echo "skip - the kernel's zram has no lz4: the run on an unused device is not tried"
fi
if cmp -s "$WORK/data" "/dev/zram$D"; then pass "zram$D still holds its data at the end"
else fail "zram$D lost its data"; fi

echo
if [ "$FAILED" -ne 0 ]; then
    echo "$FAILED check(s) failed"
    exit 1
fi
echo "all bench --kernel-device checks passed"
