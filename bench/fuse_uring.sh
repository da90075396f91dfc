#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_uring.sh - FUSE over io_uring against /dev/fuse, side by side in one
# run, on real pages; and what the loop device adds on top of DIR/disk.
#
#   bash bench/fuse_uring.sh [transport|loop|all]    (as root; default all)
#
# Two mounts are up at once, each `uzram mount --size 768M --group-pages 1
# --dedup 0` (single pages, as swapon and up make them; no deduplication,
# as the pages repeat) and each filled with the same 512 MiB of real pages
# (the corpus page files, sqlite then perl, repeated; or PAGEFILE): one
# with --io-uring on (the fuse module's enable_uring parameter is turned on
# for the run and put back after), one with --io-uring off.  Every figure
# is fio's, 4 KiB random psync with O_DIRECT over those 512 MiB unless
# said, RUNTIME seconds (default 5) each, and each test is run ROUNDS
# times (default 5) with the two transports interleaved (ring, dev, ring,
# dev, ...), so that the load of the machine falls on both alike.  Each
# cell is the median of the rounds' figures with their range (min-max).
#
# transport:
#   disk randread/randwrite   DIR/disk: mean latency and median completion
#                             latency (µs, two rows of one fio run) and
#                             the server's CPU time per request (µs: the
#                             daemon's utime + stime over the run, divided
#                             by fio's request count)
#   randwrite, compressible   the same with fio's buffers refilled for each
#                             write and 60% compressible (fio's default
#                             buffers are random bytes: every page huge)
#   loop randread/randwrite   the same through a loop device on DIR/disk
#                             (LOSETUP, default --direct-io=on --sector-size
#                             4096, what uzram swapon and up attach)
#   floor                     the same over the last 256 MiB, never
#                             written: reads of empty pages and writes of
#                             zero pages (same-filled: no codec; from the second round reads find
#                             zero pages), the
#                             round trip alone
#   randread 4 jobs           DIR/disk and the loop device with four fio
#                             jobs at once: IOPS
#   seq read/write 1M         DIR/disk, 1 MiB sequential direct psync:
#                             MiB/s (and CPU per 1 MiB request)
# loop (on the io_uring mount): the loop device's settings, each a fresh
# attach: --direct-io=off; --direct-io=on; --direct-io=on --sector-size
# 4096; the latter with the queue's nr_requests at 16; and randread with 4
# jobs (IOPS) for each, a queue deeper than one.
#
# Environment: ROUNDS, RUNTIME, PAGEFILE, UZ_BUILD, UZ_CORPUS, LOSETUP.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
UZ_BUILD=${UZ_BUILD:-$ROOT/build}
UZRAM=$(realpath "$UZ_BUILD/uzram")
CORPUS=${UZ_CORPUS:-$ROOT/../shared/corpus}
ROUNDS=${ROUNDS:-5}
RUNTIME=${RUNTIME:-5}
LOSETUP=${LOSETUP:---direct-io=on --sector-size 4096}
WHAT=${1:-all}
PARAM=/sys/module/fuse/parameters/enable_uring

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v fio >/dev/null || { echo "needs fio (apt-get install fio)" >&2; exit 1; }
[ -w "$PARAM" ] || { echo "this kernel has no FUSE over io_uring ($PARAM)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/uzram-fuse-uring.XXXXXX)
SAVED=$(cat "$PARAM")
LOOPS=()
cleanup() {
    set +e
    for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
    for t in ring dev; do
        if grep -q " $WORK/$t fuse.uzram " /proc/self/mounts; then "$UZRAM" umount "$WORK/$t"; fi
    done
    echo "$SAVED" > "$PARAM"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The pages: PAGEFILE, or the corpus unpacked (kept in /tmp for next time).
if [ -z "${PAGEFILE:-}" ]; then
    PAGEFILE=$WORK/pages
    for c in sqlite perl; do
        out=/tmp/uzram-corpus-$c.pages
        if [ ! -f "$out" ]; then
            [ -f "$CORPUS/$c.pages.zst" ] || { echo "no $CORPUS/$c.pages.zst; set PAGEFILE=" >&2; exit 2; }
            zstd -q -dc "$CORPUS/$c.pages.zst" > "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
        fi
        cat "$out" >> "$PAGEFILE"
    done
fi
fill() {   # DISK: 512 MiB of PAGEFILE, repeated (the loop ends on SIGPIPE)
    ( set +o pipefail
      { while :; do cat "$PAGEFILE" || exit 0; done; } 2>/dev/null | head -c $((512 << 20)) |
          dd of="$1" bs=1M iflag=fullblock oflag=direct status=none )
}

echo Y > "$PARAM"
for t in ring dev; do
    mkdir -p "$WORK/$t"
    mode=on; [ $t = dev ] && mode=off
    "$UZRAM" mount "$WORK/$t" --size 768M --group-pages 1 --dedup 0 --io-uring $mode \
        --pidfile "$WORK/$t.pid"
    fill "$WORK/$t/disk"
done
[ "$(head -n 1 "$WORK/ring/.transport")" = io_uring ] || { cat "$WORK/ring/.transport" >&2; exit 1; }
[ "$(head -n 1 "$WORK/dev/.transport")" = dev_fuse ] || { cat "$WORK/dev/.transport" >&2; exit 1; }

cpu_ticks() {   # PID: utime + stime, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# One fio run: prints "VALUE CPU_US_PER_REQUEST" (VALUE: mean latency µs,
# then a second line with the median; or MiB/s for sequential runs, or
# IOPS with JOBS > 1).
run_fio() {   # TARGET RW BS PID [JOBS [FIO_ARGS...]]
    local target=$1 rw=$2 bs=$3 pid=$4 jobs=${5:-1} c0 c1
    shift 5 2>/dev/null || shift $#
    [ $# -gt 0 ] || set -- --offset=0 --size=512M
    c0=$(cpu_ticks "$pid")
    fio --name=b --filename="$target" --direct=1 --ioengine=psync --rw="$rw" --bs="$bs" \
        "$@" --runtime="$RUNTIME" --time_based --numjobs="$jobs" --group_reporting \
        --randrepeat=0 --output-format=json > "$WORK/fio.json"
    c1=$(cpu_ticks "$pid")
    python3 - "$WORK/fio.json" "$rw" "$((c1 - c0))" "$(getconf CLK_TCK)" "$jobs" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
k = "read" if "read" in sys.argv[2] else "write"
ios = j[k]["total_ios"]
cpu = int(sys.argv[3]) / int(sys.argv[4]) * 1e6 / max(ios, 1)
if sys.argv[2] in ("read", "write"):
    v = j[k]["bw_bytes"] / 1048576
elif int(sys.argv[5]) > 1:
    v = j[k]["iops"]
else:
    # latency: the mean, then the median (completion latency)
    v = j[k]["lat_ns"]["mean"] / 1e3
    print("%.2f %.2f" % (v, cpu))
    v = j[k]["clat_ns"]["percentile"]["50.000000"] / 1e3
print("%.2f %.2f" % (v, cpu))
EOF
}

# A latency run as two rows of FILE: "ROW mean µs" and "ROW median µs".
lat_rows() {   # FILE ROW KIND RUN_FIO_ARGS...
    local file=$1 row=$2 kind=$3 out
    shift 3
    out=$(run_fio "$@")
    printf "%s mean µs\t%s\t%s\n" "$row" "$kind" "$(echo "$out" | sed -n 1p | tr ' ' '\t')" >> "$file"
    printf "%s median µs\t%s\t%s\n" "$row" "$kind" "$(echo "$out" | sed -n 2p | tr ' ' '\t')" >> "$file"
}

# The table of a results file of lines "ROW<TAB>COLUMN<TAB>VALUE<TAB>CPU":
# each cell the median of its rounds, their range, and the median CPU
# per request.
report() {   # FILE
    python3 - "$1" <<'EOF'
import sys, statistics
res, rows, cols = {}, [], []
for line in open(sys.argv[1]):
    r, c, v, cpu = line.rstrip("\n").split("\t")
    if r not in rows:
        rows.append(r)
    if c not in cols:
        cols.append(c)
    res.setdefault((r, c), []).append((float(v), float(cpu)))
def cell(vals):
    xs = [v[0] for v in vals]
    fmt = "%.0f (%.0f-%.0f)" if statistics.median(xs) >= 1000 else "%.1f (%.1f-%.1f)"
    return (fmt % (statistics.median(xs), min(xs), max(xs)) +
            "; cpu %.1f" % statistics.median(v[1] for v in vals))
print("| | " + " | ".join(cols) + " |")
print("|---" * (1 + len(cols)) + "|")
for r in rows:
    print("| " + r + " | " + " | ".join(cell(res[(r, c)]) if (r, c) in res else "" for c in cols) + " |")
EOF
}

attach() {   # DISK ARGS...: a loop device
    local disk=$1 l
    shift
    l=$(losetup "$@" -f --show "$disk")
    LOOPS+=("$l")
    echo "$l"
}
detach() {
    losetup -d "$1"
    local keep=()
    for l in "${LOOPS[@]}"; do [ "$l" = "$1" ] || keep+=("$l"); done
    LOOPS=("${keep[@]}")
}

uname -r
echo "fuse.enable_uring=Y for the run; rounds $ROUNDS of $RUNTIME s; pages $(stat -c %s "$PAGEFILE") bytes from $PAGEFILE"
head -n 2 "$WORK/ring/.transport" | tr '\n' ' '; echo
RING_PID=$(cat "$WORK/ring.pid")
DEV_PID=$(cat "$WORK/dev.pid")

if [ "$WHAT" = all ] || [ "$WHAT" = transport ]; then
    : > "$WORK/transport.txt"
    # shellcheck disable=SC2086
    RLOOP=$(attach "$WORK/ring/disk" $LOSETUP)
    # shellcheck disable=SC2086
    DLOOP=$(attach "$WORK/dev/disk" $LOSETUP)
    for r in $(seq "$ROUNDS"); do
        for t in ring dev; do
            pid=$RING_PID; loop=$RLOOP; kind=io_uring
            [ $t = dev ] && pid=$DEV_PID && loop=$DLOOP && kind=dev_fuse
            for rw in randread randwrite; do
                lat_rows "$WORK/transport.txt" "disk $rw" $kind "$WORK/$t/disk" $rw 4k "$pid"
                lat_rows "$WORK/transport.txt" "loop $rw" $kind "$loop" $rw 4k "$pid"
            done
            # fio's own write buffers are random bytes (every page stored
            # huge); these are refilled for each write and 60% compressible
            lat_rows "$WORK/transport.txt" "disk randwrite, compressible" $kind "$WORK/$t/disk" randwrite 4k "$pid" 1 --offset=0 --size=512M --refill_buffers --buffer_compress_percentage=60
            lat_rows "$WORK/transport.txt" "loop randwrite, compressible" $kind "$loop" randwrite 4k "$pid" 1 --offset=0 --size=512M --refill_buffers --buffer_compress_percentage=60
            # the floor: pages never written (reads), zero pages (writes):
            # no decompression, no compression, only the round trip
            lat_rows "$WORK/transport.txt" "floor: disk randread of empty pages" $kind "$WORK/$t/disk" randread 4k "$pid" 1 --offset=512M --size=256M
            lat_rows "$WORK/transport.txt" "floor: disk randwrite of zero pages" $kind "$WORK/$t/disk" randwrite 4k "$pid" 1 --offset=512M --size=256M --zero_buffers
            printf "disk randread 4 jobs IOPS\t%s\t%s\n" $kind "$(run_fio "$WORK/$t/disk" randread 4k "$pid" 4 | tr ' ' '\t')" >> "$WORK/transport.txt"
            printf "loop randread 4 jobs IOPS\t%s\t%s\n" $kind "$(run_fio "$loop" randread 4k "$pid" 4 | tr ' ' '\t')" >> "$WORK/transport.txt"
            for rw in read write; do
                printf "disk seq %s 1M MiB/s\t%s\t%s\n" $rw $kind "$(run_fio "$WORK/$t/disk" $rw 1M "$pid" | tr ' ' '\t')" >> "$WORK/transport.txt"
            done
        done
        echo "round $r done" >&2
    done
    detach "$RLOOP"
    detach "$DLOOP"
    echo
    echo "transport (loop: losetup $LOSETUP)"
    report "$WORK/transport.txt"
fi

if [ "$WHAT" = all ] || [ "$WHAT" = loop ]; then
    : > "$WORK/loop.txt"
    settings=("--direct-io=off" "--direct-io=on" "--direct-io=on --sector-size 4096"
              "--direct-io=on --sector-size 4096 nr_requests=16")
    for r in $(seq "$ROUNDS"); do
        printf "DIR/disk, no loop\trandread µs\t%s\n" "$(run_fio "$WORK/ring/disk" randread 4k "$RING_PID" | sed -n 1p | tr ' ' '\t')" >> "$WORK/loop.txt"
        printf "DIR/disk, no loop\trandwrite µs\t%s\n" "$(run_fio "$WORK/ring/disk" randwrite 4k "$RING_PID" | sed -n 1p | tr ' ' '\t')" >> "$WORK/loop.txt"
        printf "DIR/disk, no loop\trandread 4 jobs IOPS\t%s\n" "$(run_fio "$WORK/ring/disk" randread 4k "$RING_PID" 4 | tr ' ' '\t')" >> "$WORK/loop.txt"
        for s in "${settings[@]}"; do
            args=${s% nr_requests=*}
            # shellcheck disable=SC2086
            l=$(attach "$WORK/ring/disk" $args)
            case "$s" in *nr_requests=*) echo "${s##*=}" > "/sys/block/${l#/dev/}/queue/nr_requests";; esac
            printf "loop %s\trandread µs\t%s\n" "$s" "$(run_fio "$l" randread 4k "$RING_PID" | sed -n 1p | tr ' ' '\t')" >> "$WORK/loop.txt"
            printf "loop %s\trandwrite µs\t%s\n" "$s" "$(run_fio "$l" randwrite 4k "$RING_PID" | sed -n 1p | tr ' ' '\t')" >> "$WORK/loop.txt"
            printf "loop %s\trandread 4 jobs IOPS\t%s\n" "$s" "$(run_fio "$l" randread 4k "$RING_PID" 4 | tr ' ' '\t')" >> "$WORK/loop.txt"
            detach "$l"
        done
        echo "loop round $r done" >&2
    done
    echo
    echo "the loop hop, on the io_uring mount (rows: losetup settings)"
    report "$WORK/loop.txt"
fi
