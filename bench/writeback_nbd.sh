#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# writeback_nbd.sh - far memory measured: writeback to an NBD remote on
# loopback TCP beside writeback to a local file on tmpfs, and the latency
# of reading back a page held remotely beside one NBD round trip.
#
#     bench/writeback_nbd.sh            (REPEAT=5 rounds by default)
#
# Knobs: REPEAT=N, BATCH=writeback_batch_size, NBD_QUERY='connections=2',
# NBDKIT_THREADS=N (the server's -t), CORPORA='perl sqlite', CAPTURE=0|1,
# PIN=split (the uzram daemon on CPU 0, the server on CPU 1: as if the
# server were another host) or PIN=same (both on CPU 0: one CPU pays for
# both sides).
#
# Pages: the two corpus files (../shared/corpus, unpacked to /tmp) and a
# capture made here: a python process holding a dict of 200k entries is
# captured with `uzram capture PID` (tools/capture.c) and stopped.
#
# Throughput.  For each page file, REPEAT rounds; in each round, the two
# back ends one after the other, in alternating order:
#     file  uzram mount DIR --backing-dev /dev/shm/FILE   (tmpfs)
#     nbd   uzram mount DIR --backing-dev nbd://127.0.0.1:PORT/
#           with the remote `nbdkit memory` on loopback TCP
# The pages are written to DIR/disk (dd oflag=direct), `idle all`, and
# `echo idle > DIR/writeback` is timed: MiB/s of pages moved out (bd_stat
# count x 4 KiB over the time).  Both raw (writeback_compressed=0) and
# compressed (=1) writeback.  Then every page is read back (caches
# dropped) and compared with the file: a difference fails the bench.
# Printed: min / median / max per back end, and nbd/file as the ratio of
# the medians with the range of the paired rounds' ratios; and where the
# time goes: the CPU time (utime + stime, /proc/PID/stat) the uzram
# daemon and the nbdkit server spent during the writeback, medians in ms.
# Before the rounds, one writeback of each back end is run and not counted
# (the server's and the tmpfs file's pages are touched for the first time
# there, which costs either side a page fault per block).
#
# Latency.  On the last nbd mount, 2000 single 4 KiB O_DIRECT reads of
# random written-back pages of DIR/disk (python, time.perf_counter_ns per
# read), beside the same on the file mount and on pages still in RAM (the
# FUSE path's own cost); and the floor: one NBD round trip, 2000 single
# 4 KiB reads from nbdkit memory, each timed (bench/nbd_rtt.c, built here).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
UZ_BUILD=${UZ_BUILD:-$ROOT/build}
UZ_CORPUS=${UZ_CORPUS:-$ROOT/../shared/corpus}
UZRAM=$UZ_BUILD/uzram
REPEAT=${REPEAT:-5}
PORT=${PORT:-$((20000 + $$ % 20000))}
for tool in nbdkit python3 zstd cmp awk cc; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
[ -x "$UZRAM" ] || { echo "$UZRAM not built" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (FUSE mount, drop_caches)" >&2; exit 2; }

WORK=$(mktemp -d /dev/shm/uz-wbnbd.XXXXXX)
DIR=$WORK/dev
mkdir "$DIR"
SERVER_PID= HOLDER=
cleanup() {
    set +e
    grep -q " $DIR fuse.uzram " /proc/self/mounts && "$UZRAM" umount "$DIR"
    [ -n "$HOLDER" ] && kill -9 "$HOLDER" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

cc -std=c11 -O2 -Wall -Wextra -Werror "$ROOT/bench/nbd_rtt.c" -o "$WORK/nbd_rtt" \
    $(pkg-config --cflags --libs libnbd)

FILES=
for c in ${CORPORA-perl sqlite}; do
    out=/tmp/uzram-corpus-$c.pages
    if [ ! -s "$out" ]; then
        zstd -q -dc "$UZ_CORPUS/$c.pages.zst" >"$out.tmp.$$" && mv "$out.tmp.$$" "$out"
    fi
    FILES="$FILES $out"
done
# a capture of our own (CAPTURE=0: none)
if [ "${CAPTURE:-1}" = 1 ]; then
    python3 -c '
import sys, time, random
r = random.Random(5)
d = {("key%d" % i): [i, str(i * 7), r.random(), "v" * (i % 50)] for i in range(200000)}
print("ready", flush=True)
time.sleep(600)' > "$WORK/holder.out" &
    HOLDER=$!
    for _ in $(seq 300); do grep -q ready "$WORK/holder.out" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$WORK/holder.out" || { echo "the python holder did not start" >&2; exit 1; }
    kill -STOP "$HOLDER"
    "$UZRAM" capture "$HOLDER" "$WORK/capture.pages" >/dev/null
    kill -9 "$HOLDER"; wait "$HOLDER" 2>/dev/null || true; HOLDER=
    FILES="$FILES $WORK/capture.pages"
fi

UZ_PIN= SRV_PIN=
case ${PIN:-} in
split) UZ_PIN="taskset -c 0" SRV_PIN="taskset -c 1" ;;
same) UZ_PIN="taskset -c 0" SRV_PIN="taskset -c 0" ;;
'') ;;
*) echo "PIN=split or PIN=same" >&2; exit 2 ;;
esac
$SRV_PIN nbdkit -f ${NBDKIT_THREADS:+-t $NBDKIT_THREADS} -i 127.0.0.1 -p "$PORT" memory 2G &
SERVER_PID=$!
for _ in $(seq 100); do nbdinfo --size "nbd://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
URI="nbd://127.0.0.1:$PORT/${NBD_QUERY:+?$NBD_QUERY}"
truncate -s 2G "$WORK/backing.img"

now_ns() { date +%s%N; }
cpu_ms() { awk '{ print ($14 + $15) * 10 }' "/proc/$1/stat"; }   # USER_HZ 100
field() { awk -v n="$2" '{print $n}' "$DIR/$1"; }

# run BACKEND FILE COMPRESSED : mount, fill, time the writeback; prints MiB/s
run() {
    local be=$1 file=$2 comp=$3 pages size
    pages=$(( $(stat -c %s "$file") / 4096 ))
    size=$(( (pages * 4096 + (1 << 20) - 1) >> 20 ))M
    local dev=$WORK/backing.img
    [ "$be" = nbd ] && dev=$URI
    $UZ_PIN "$UZRAM" mount "$DIR" --size "$size" --backing-dev "$dev" --pidfile "$WORK/d.pid"
    echo "$comp" > "$DIR/writeback_compressed"
    [ -z "${BATCH:-}" ] || echo "$BATCH" > "$DIR/writeback_batch_size"
    dd if="$file" of="$DIR/disk" bs=1M oflag=direct conv=notrunc status=none
    echo all > "$DIR/idle"
    local t0 t1 n u0 u1 s0 s1 upid
    upid=$(cat "$WORK/d.pid")
    u0=$(cpu_ms "$upid"); s0=$(cpu_ms "$SERVER_PID")
    t0=$(now_ns)
    echo idle > "$DIR/writeback"
    t1=$(now_ns)
    u1=$(cpu_ms "$upid"); s1=$(cpu_ms "$SERVER_PID")
    n=$(field bd_stat 1)
    echo 3 > /proc/sys/vm/drop_caches
    cmp -n "$((pages * 4096))" "$file" "$DIR/disk" >&2 || { echo "$be: pages differ" >&2; exit 1; }
    [ "$(field io_stat 1)" = 0 ] || { echo "$be: failed reads: $(cat "$DIR/io_stat")" >&2; exit 1; }
    "$UZRAM" umount "$DIR"
    awk -v n="$n" -v t=$((t1 - t0)) -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
        'BEGIN { printf "%.1f %d %d\n", n * 4096 / 1048576 / (t / 1e9), u, s }'
}

stats() {   # values... -> "min / median / max"
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.0f / %.0f / %.0f", v[1], m, v[NR] }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "writeback throughput, MiB/s of pages moved out: min / median / max over $REPEAT rounds"
echo "$(nproc) CPUs, $(uname -r), nbdkit $(nbdkit --version | awk '{print $2}'), remote $URI (nbdkit memory${NBDKIT_THREADS:+, -t $NBDKIT_THREADS})${PIN:+, PIN=$PIN}"
# warm-up, not counted: first touch of the server's and the file's blocks
first=$(echo $FILES | awk '{print $1}')
run file "$first" 0 >/dev/null; run nbd "$first" 0 >/dev/null
printf '%-16s %-4s %-7s %-20s %-20s %-24s %s\n' pages comp pages file nbd "nbd/file (paired range)" \
    "cpu ms: file uz | nbd uz + server"
for file in $FILES; do
    name=$(basename "$file" .pages)
    for comp in 0 1; do
        F=() N=() R=() FU=() NU=() NS=()
        for r in $(seq "$REPEAT"); do
            if [ $((r % 2)) = 1 ]; then
                fo=$(run file "$file" "$comp"); no=$(run nbd "$file" "$comp")
            else
                no=$(run nbd "$file" "$comp"); fo=$(run file "$file" "$comp")
            fi
            read -r f fu _ <<<"$fo"; read -r n nu ns <<<"$no"
            F+=("$f"); N+=("$n"); FU+=("$fu"); NU+=("$nu"); NS+=("$ns")
            R+=("$(awk -v a="$n" -v b="$f" 'BEGIN { printf "%.2f", a / b }')")
        done
        rmin=$(printf '%s\n' "${R[@]}" | sort -g | head -1)
        rmax=$(printf '%s\n' "${R[@]}" | sort -g | tail -1)
        ratio=$(awk -v a="$(median "${N[@]}")" -v b="$(median "${F[@]}")" 'BEGIN { printf "%.2f", a / b }')
        printf '%-16s %-4s %-7s %-20s %-20s %-24s %s | %s + %s\n' "$name" "$comp" \
            "$(( $(stat -c %s "$file") / 4096 ))" "$(stats "${F[@]}")" "$(stats "${N[@]}")" \
            "$ratio ($rmin..$rmax)" "$(median "${FU[@]}")" "$(median "${NU[@]}")" "$(median "${NS[@]}")"
    done
done

# latency: single 4 KiB O_DIRECT reads of DIR/disk at random pages
lat() {   # PAGES -> "median p99 (us)"
    python3 - "$DIR/disk" "$1" <<'PY'
import mmap, os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
n = int(sys.argv[2]); buf = mmap.mmap(-1, 4096)
r = random.Random(3); t = []
for i in range(2000):
    off = r.randrange(n) * 4096
    a = time.perf_counter_ns(); os.preadv(fd, [buf], off); b = time.perf_counter_ns()
    t.append(b - a)
t.sort()
print("%.1f %.1f" % (t[len(t) // 2] / 1000, t[len(t) * 99 // 100] / 1000))
PY
}
file=$(echo $FILES | awk '{print $1}')
pages=$(( $(stat -c %s "$file") / 4096 ))
size=$(( (pages * 4096 + (1 << 20) - 1) >> 20 ))M
echo
echo "4 KiB read latency, us (median, p99 of 2000 random single reads, O_DIRECT, depth 1)"
for be in ram file nbd; do
    dev=$WORK/backing.img; [ "$be" = nbd ] && dev=$URI
    "$UZRAM" mount "$DIR" --size "$size" --backing-dev "$dev" --pidfile "$WORK/d.pid"
    dd if="$file" of="$DIR/disk" bs=1M oflag=direct conv=notrunc status=none
    if [ "$be" != ram ]; then echo all > "$DIR/idle"; echo idle > "$DIR/writeback"; fi
    printf '%-40s %s\n' "uzram page $( [ $be = ram ] && echo "in RAM" || echo "on $be") (FUSE)" "$(lat "$pages")"
    "$UZRAM" umount "$DIR"
done
# the floor: one NBD round trip of 4 KiB to nbdkit memory (the pages the
# last mount wrote there), timed the same way
"$WORK/nbd_rtt" "$URI" "$pages" 2000 | awk '{ split($2, m, "="); split($3, p, "=");
    printf "%-40s %s %s\n", "NBD round trip, nbdkit memory (floor)", m[2], p[2] }'
