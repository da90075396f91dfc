#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# stat_output.sh - `uzram stat` with zramctl's options on two live mounts:
# --output NAME,ALGORITHM,DISKSIZE --noheadings prints one line per
# device; --output-all --bytes --json gives every column, each checked
# against the attribute files it comes from (mm_stat, debug_stat,
# disksize, comp_algorithm) and COMP-RATIO against DATA / TOTAL;
# human-readable sizes, --raw, +COLUMNS, and an unknown column refused.
#
# Needs root and /dev/fuse (exits 77 otherwise).  Env: UZ_BUILD, UZ_CORPUS.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount python3 zstd
CORPUS=${UZ_CORPUS:-../shared/corpus}
[ -f "$CORPUS/perl.pages.zst" ] || skip "no corpus at $CORPUS"

cleanup_extra() { stop_uzram "$DIR2" "$WORK/daemon2.pid"; stop_uzram "$DIR3" "$WORK/daemon3.pid"; }
fuse_setup stat
DIR2=$WORK/dev2
DIR3=$WORK/dev3
mkdir "$DIR2" "$DIR3"
"$UZRAM" mount "$DIR" --size 64M --algorithm lz4 --pidfile "$PIDFILE"
"$UZRAM" mount "$DIR2" --size 32M --algorithm zstd --pidfile "$WORK/daemon2.pid"
zstd -q -dc "$CORPUS/perl.pages.zst" > "$WORK/perl.pages"
dd if="$WORK/perl.pages" of="$DIR/disk" bs=1M count=16 conv=notrunc status=none
head -c $((4 << 20)) /dev/zero | dd of="$DIR2/disk" bs=1M conv=notrunc status=none

step "--output NAME,ALGORITHM,DISKSIZE --noheadings"
out=$("$UZRAM" stat --output NAME,ALGORITHM,DISKSIZE --noheadings "$DIR" "$DIR2")
echo "$out"
[ "$(echo "$out" | wc -l)" = 2 ] || fail "not one line per device"
echo "$out" | grep -qx "$DIR  *lz4  *64M" || fail "line of $DIR: $out"
echo "$out" | grep -qx "$DIR2  *zstd  *32M" || fail "line of $DIR2: $out"
# without DIR: every uzram on the machine, ours among them
all=$("$UZRAM" stat -o NAME -n)
echo "$all" | grep -qx "$DIR" && echo "$all" | grep -qx "$DIR2" || fail "no-DIR listing lacks ours"

step "--output-all --bytes --json against the attribute files"
"$UZRAM" stat --output-all --bytes --json "$DIR" "$DIR2" > "$WORK/out.json"
cat "$WORK/out.json"
python3 - "$WORK/out.json" "$DIR" "$DIR2" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["zramctl"]
assert len(rows) == 2, rows
for row, d in zip(rows, sys.argv[2:]):
    mm = [int(x) for x in open(d + "/mm_stat").read().split()]
    dbg = open(d + "/debug_stat").read().split()
    footprint = int(dbg[dbg.index("footprint:") + 1])
    dd = [int(x) for x in open(d + "/dedup_stat").readline().split()]
    alg = open(d + "/comp_algorithm").read().split("[")[1].split("]")[0]
    want = {"name": d, "disksize": int(open(d + "/disksize").read()), "data": mm[0],
            "compr": mm[1], "algorithm": alg, "zero-pages": mm[5], "total": mm[2],
            "mem-limit": mm[3], "mem-used": mm[4], "migrated": mm[6], "mountpoint": None,
            "footprint": footprint,
            "dedup-pages": dd[0], "dedup-saved": dd[1], "dedup-index": dd[2],
            "dedup-hits": dd[3], "dedup-refused": dd[4],
            "streams": int(open(d + "/max_comp_streams").read())}
    for k, v in want.items():
        assert row[k] == v, (d, k, row[k], v)
    assert abs(row["comp-ratio"] - (mm[0] / mm[2] if mm[2] else 0)) < 1e-3, (row["comp-ratio"], mm)
    assert row["transport"] == open(d + "/.transport").readline().strip(), row["transport"]
    assert row["transport"] in ("io_uring", "dev_fuse"), row["transport"]
    assert isinstance(row["ring-requests"], int), row["ring-requests"]
    assert (row["transport-note"] is None) == (row["transport"] == "io_uring"), row
    assert len(row) == 22, sorted(row)
assert rows[0]["data"] == 16 << 20 and rows[1]["zero-pages"] == 1024, rows
print("ok: every column matches its attribute")
PY

step "human sizes, --raw, +COLUMNS"
line=$("$UZRAM" stat -o DISKSIZE,DATA -n "$DIR")
echo "$line"
echo "$line" | grep -qx " *64M  *16M" || fail "human sizes: '$line'"
raw=$("$UZRAM" stat --raw --output NAME,ALGORITHM,DISKSIZE "$DIR")
echo "$raw"
[ "$raw" = "NAME ALGORITHM DISKSIZE
$DIR lz4 64M" ] || fail "--raw: '$raw'"
head=$("$UZRAM" stat -o +FOOTPRINT "$DIR" | sed -n 1p)
echo "$head" | grep -q "^NAME .*MOUNTPOINT FOOTPRINT$" || fail "+FOOTPRINT: '$head'"

step "a dead mount (its server killed) beside live ones"
"$UZRAM" mount "$DIR3" --size 16M --pidfile "$WORK/daemon3.pid"
pid3=$(cat "$WORK/daemon3.pid")
kill -KILL "$pid3"
while kill -0 "$pid3" 2>/dev/null; do sleep 0.05; done   # waits for the exit itself, not a time
grep -q " $DIR3 fuse.uzram " /proc/self/mounts || fail "the dead mount is not in /proc/self/mounts"
# listing every mount: the live ones are listed and the status is 0; the dead one is named on stderr
all=$("$UZRAM" stat -o NAME -n 2>"$WORK/err") || fail "listing fails because of a dead mount: $(cat "$WORK/err")"
echo "$all" | grep -qx "$DIR" && echo "$all" | grep -qx "$DIR2" || fail "listing with a dead mount lacks the live ones: $all"
echo "$all" | grep -qx "$DIR3" && fail "the dead mount is listed as a device"
grep -q "$DIR3: .*server is gone" "$WORK/err" || fail "the dead mount is not named on stderr: $(cat "$WORK/err")"
# named on the command line, it fails
if "$UZRAM" stat "$DIR3" 2>"$WORK/err"; then fail "stat of a dead mount succeeds"; fi
grep -q "server is gone" "$WORK/err" || fail "stat DIR3: $(cat "$WORK/err")"
"$UZRAM" umount "$DIR3" || fail "umount of a dead mount"
grep -q " $DIR3 fuse.uzram " /proc/self/mounts && fail "the dead mount is still mounted"

step "bad input"
if "$UZRAM" stat --output NAME,NOSUCH "$DIR" 2>"$WORK/err"; then fail "unknown column accepted"; fi
grep -q "unknown column: NOSUCH" "$WORK/err" || fail "error does not name the column"
echo "PASS"
