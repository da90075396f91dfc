#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_swap.sh - uzram as swap: a loop device on DIR/disk is the swap
# device, and a workload in a memory cgroup capped at 1/4 of its working
# set must get every page back intact.  The server (locked in memory,
# PR_SET_IO_FLUSHER, outside the cgroup) must not deadlock while the kernel
# swaps through it.
#
# The workload writes WORKLOAD_MB of somewhat compressible pages (derived
# from the page index: random bytes, a repeated pattern, some same-filled
# pages, and one page in sixteen drawn from a set of 64, so that the
# device, mounted with --dedup 1, stores swapped duplicates once), then
# reads and checks every page.  It runs once uncapped (no
# swapping) and once capped; both times are printed.  While it runs,
# mm_stat is sampled: orig_data_size must pass 100 MiB.
#
# Needs root, /dev/fuse, loop devices, mkswap/swapon and the cgroup v1
# memory controller; exits 77 (skip) otherwise.  Env: UZ_BUILD.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
WORKLOAD_MB=${WORKLOAD_MB:-512}
LIMIT_MB=$((WORKLOAD_MB / 4))
CGROOT=/sys/fs/cgroup/memory

need_fuse_mount losetup mkswap swapon swapoff python3 timeout
[ -e /dev/loop-control ] || skip "no loop devices"
[ -f $CGROOT/memory.limit_in_bytes ] || skip "no cgroup v1 memory controller at $CGROOT"
avail_mb=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
[ "$avail_mb" -gt $((WORKLOAD_MB * 3)) ] || skip "only ${avail_mb} MiB available"

CG=$CGROOT/uzram-test-$$
LOOP=
SWAPON=
WL_PID=
SAMPLER=

cleanup_extra() {
    [ -n "$WL_PID" ] && kill -KILL "$WL_PID" 2>/dev/null && wait "$WL_PID" 2>/dev/null
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
    if [ -d "$CG" ]; then
        for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        sleep 0.2
        rmdir "$CG"
    fi
    [ -n "$SWAPON" ] && swapoff "$LOOP"
    [ -n "$LOOP" ] && losetup -d "$LOOP"
}
fuse_setup swap

cat > "$WORK/workload.py" <<'EOF'
# Fill MB MiB with pages derived from their index, then check them all.
import random, sys, time
pages = int(sys.argv[1]) * 256
def page(i):
    if i % 16 == 5:                        # same-filled
        return bytes([i & 0xff]) * 4096
    if i % 16 == 9:                        # one of 64 pages met again and again
        i = i % 1024
    rnd = random.Random(i).randbytes(1536)  # incompressible part
    pat = (b"page %09d " % i) * 171          # compressible part
    return (rnd + pat)[:4096]
t0 = time.monotonic()
buf = bytearray(pages * 4096)
for i in range(pages):
    buf[i * 4096:(i + 1) * 4096] = page(i)
t1 = time.monotonic()
bad = 0
for i in range(pages):
    if buf[i * 4096:(i + 1) * 4096] != page(i):
        bad += 1
        if bad < 5:
            print("page %d differs" % i, file=sys.stderr)
t2 = time.monotonic()
print("workload: fill %.1f s, check %.1f s, %d bad pages" % (t1 - t0, t2 - t1, bad))
sys.exit(1 if bad else 0)
EOF

step "uncapped run (${WORKLOAD_MB} MiB, no swapping)"
t0=$(date +%s.%N)
timeout -s KILL 300 python3 "$WORK/workload.py" "$WORKLOAD_MB"
T_FREE=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")

step "mount uzram, loop device, swap"
cat /proc/swaps
"$UZRAM" mount "$DIR" --size 2G --algorithm lz4 --dedup 1 --pidfile "$PIDFILE"
DAEMON=$(cat "$PIDFILE")
LOOP=$(losetup --direct-io=on -f --show "$DIR/disk" 2>/dev/null || losetup -f --show "$DIR/disk")
mkswap "$LOOP" >/dev/null
swapon -p 32000 "$LOOP"
SWAPON=1
grep "^$LOOP " /proc/swaps

step "capped run: memory cgroup v1 limit ${LIMIT_MB} MiB"
mkdir "$CG"
echo $((LIMIT_MB << 20)) > "$CG/memory.limit_in_bytes"
[ -f "$CG/memory.swappiness" ] && echo 100 > "$CG/memory.swappiness"
# sample orig_data_size and swap use while the workload runs
echo "0 0" > "$WORK/peak"
(
    max=0; maxswap=0
    while :; do
        o=$(awk '{print $1}' "$DIR/mm_stat")
        s=$(awk -v d="$LOOP" '$1 == d {print $4}' /proc/swaps)
        [ "$o" -gt "$max" ] && max=$o
        [ "${s:-0}" -gt "$maxswap" ] && maxswap=${s:-0}
        # whole or not at all: the sampler is killed at any point
        echo "$max $maxswap" > "$WORK/peak.new" && mv "$WORK/peak.new" "$WORK/peak"
        sleep 0.25
    done
) &
SAMPLER=$!
t0=$(date +%s.%N)
bash -c 'echo $$ > "$1/cgroup.procs"; exec timeout -s KILL 300 python3 "$2" "$3"' \
    _ "$CG" "$WORK/workload.py" "$WORKLOAD_MB" &
WL_PID=$!
wl_rc=0
wait "$WL_PID" || wl_rc=$?
WL_PID=
T_CAP=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true
SAMPLER=
read -r PEAK PEAKSWAP < "$WORK/peak"
echo "peak orig_data_size $((PEAK >> 20)) MiB, peak swap used $((PEAKSWAP >> 10)) MiB"
echo "mm_stat: $(cat "$DIR/mm_stat")"
echo "io_stat: $(cat "$DIR/io_stat")"
echo "cgroup: max usage $(( $(cat "$CG/memory.max_usage_in_bytes") >> 20 )) MiB, failcnt $(cat "$CG/memory.failcnt")"
"$UZRAM" stat "$DIR"
[ "$wl_rc" = 0 ] || fail "workload failed under swap (exit $wl_rc)"
[ "$PEAK" -gt $((100 << 20)) ] || fail "orig_data_size peaked at $PEAK: the workload did not swap to uzram"
read -r failed_reads failed_writes _ < "$DIR/io_stat"
[ "$failed_reads" = 0 ] && [ "$failed_writes" = 0 ] || fail "io_stat: failed I/O"
kill -0 "$DAEMON" || fail "daemon died"
echo "dedup_stat: $(head -1 "$DIR/dedup_stat")"
read -r _ _ _ dedup_hits _ < "$DIR/dedup_stat"
[ "$dedup_hits" -gt 0 ] || fail "dedup 1: no swapped page was found stored already"
echo "workload time: uncapped ${T_FREE} s, capped at ${LIMIT_MB} MiB on uzram swap ${T_CAP} s"

step "cleanup: swapoff, detach, umount"
rmdir "$CG"
swapoff "$LOOP"
SWAPON=
check_transport "$DIR"
losetup -d "$LOOP"
LOOP=
"$UZRAM" umount "$DIR"
cat /proc/swaps
echo "PASS"
