#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/pool_scale.sh - what a pool device's open, stat and counters cost
# at the sizes users give: a device of SIZE (default 1T) in a pool, 8 MiB
# of real pages written to it, and CLONES (default 1024) clones of a
# 64 MiB device beside it.  Beside it, the same on a 1 GiB device.
#
#   bench/pool_scale.sh [SIZE [CLONES]]      (root: FUSE; build/ built)
#
# Prints, for each size, the median and the spread (min-max) over 15
# runs of: the 8 MiB dd (its open included), stat of the disk, open() and
# close() of the disk, cat mm_stat, cat pool_stat, `uzram stat` of the
# device and of the whole pool (a row per device: six attribute files
# each), beside `uzram --version`, the program's start-up alone.
# Every page written is read back and compared.  Pages: the corpus
# (../shared/corpus) if it is there, else generated text-like pages.
set -euo pipefail
cd "$(dirname "$0")/.."
UZRAM=${UZRAM:-build/uzram}
SIZE=${1:-1T}
CLONES=${2:-1024}
CORPUS=${CORPUS:-../shared/corpus}
WORK=$(mktemp -d /tmp/uzram-scale.XXXXXX)
DIRS=()
cleanup() {
    for d in "${DIRS[@]}"; do "$UZRAM" umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# 8 MiB of real pages
if ls "$CORPUS"/*.pages.zst > /dev/null 2>&1; then
    { zstd -dc "$(ls "$CORPUS"/*.pages.zst | head -1)" || true; } | head -c $((8 << 20)) > "$WORK/pages"
else
    python3 - "$WORK/pages" <<'PY'
import random, sys
r = random.Random(7)
words = [bytes(r.choice(b"abcdefghijklmnop") for _ in range(r.randint(2, 9))) for _ in range(500)]
out = bytearray()
while len(out) < 8 << 20:
    out += b" ".join(r.choice(words) for _ in range(40)) + b"\n"
open(sys.argv[1], "wb").write(out[:8 << 20])
PY
fi

run() {   # run LABEL DISKSIZE CAPACITY
    local label=$1 size=$2 cap=$3
    local dir="$WORK/$label"
    mkdir -p "$dir"
    "$UZRAM" pool "$dir" --capacity "$cap" --devices 0
    DIRS+=("$dir")
    local d; d=$(cat "$dir/zram-control/hot_add")
    echo "$size" > "$dir/zram$d/disksize"
    local s; s=$(cat "$dir/zram-control/hot_add")
    echo 64M > "$dir/zram$s/disksize"
    dd if="$WORK/pages" of="$dir/zram$s/disk" bs=1M oflag=direct status=none
    local i
    for ((i = 0; i < CLONES; i++)); do cat "$dir/zram$s/clone" > /dev/null; done
    python3 - "$label" "$size" "$dir" "$d" "$s" "$CLONES" "$WORK/pages" "$UZRAM" <<'PY'
import os, statistics, subprocess, sys, time
label, size, d, dev, src, clones, pages, uzram = sys.argv[1:]
disk = f"{d}/zram{dev}/disk"
data = open(pages, "rb").read()
def timed(fn, n=15):
    t = []
    for _ in range(n):
        a = time.perf_counter(); fn(); t.append((time.perf_counter() - a) * 1000)
    return t
def dd():
    subprocess.run(["dd", f"if={pages}", f"of={disk}", "bs=1M", "oflag=direct", "status=none"], check=True)
def opn():
    os.close(os.open(disk, os.O_RDONLY))
def cat(p):
    return lambda: open(p).read()
def stat_dir():
    subprocess.run([uzram, "stat", d], check=True, stdout=subprocess.DEVNULL)
def stat_dev():
    subprocess.run([uzram, "stat", f"{d}/zram{dev}"], check=True, stdout=subprocess.DEVNULL)
def nothing():
    subprocess.run([uzram, "--version"], check=True, stdout=subprocess.DEVNULL)
rows = [("dd 8 MiB (open included)", timed(dd, 7)),
        ("stat disk", timed(lambda: os.stat(disk))),
        ("open+close disk", timed(opn)),
        ("mm_stat", timed(cat(f"{d}/zram{dev}/mm_stat"))),
        ("pool_stat", timed(cat(f"{d}/pool_stat"))),
        ("uzram --version (start-up)", timed(nothing)),
        ("uzram stat DIR/zramN", timed(stat_dev)),
        (f"uzram stat DIR ({int(clones) + 2} devices)", timed(stat_dir, 5))]
# every page written reads back identical, on the device and on a clone
with open(disk, "rb") as f:
    assert f.read(len(data)) == data, "the device's pages differ"
with open(f"{d}/zram{int(src) + int(clones)}/disk", "rb") as f:
    assert f.read(len(data)) == data, "the last clone's pages differ"
mm = open(f"{d}/zram{dev}/mm_stat").read().split()
assert int(mm[0]) == len(data), mm
print(f"{label}: a {size} device with 8 MiB, {clones} clones of a 64 MiB device")
for name, t in rows:
    print(f"  {name:28s} median {statistics.median(t):8.2f} ms   spread {min(t):.2f}-{max(t):.2f} ms")
PY
    "$UZRAM" umount "$dir"
    DIRS=()
}

run small 1G 128G
run big "$SIZE" 8T
