#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_dict.sh - zstd dictionaries on a mount: `uzram train` on the
# mount's own pages (and on a page file), `algorithm_params priority=1
# dict=FILE` set between a reset and disksize as zram takes it, real
# pages written through DIR/disk, settled with the dictionary, and every
# page checked with cmp.  Every bad dict= (a missing file, a directory, a
# file that is not a dictionary, an empty one, a codec that takes none,
# any change while pages are stored) is refused with its errno, and what
# is stored reads back identical after each.
#
# Needs root, /dev/fuse, the corpus (UZ_CORPUS); exits 77 (skip)
# otherwise.  Env: UZ_BUILD, UZ_CORPUS.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount cmp zstd
CORPUS=${UZ_CORPUS:-$(dirname "$0")/../../shared/corpus}
[ -f "$CORPUS/sqlite.pages.zst" ] || skip "no $CORPUS/sqlite.pages.zst"
fuse_setup dict

field() { sed -n "s/.*$1: \([0-9]*\).*/\1/p" "$DIR/debug_stat"; }
check_data() {   # every page of the data, read back through the disk
    cmp <(head -c "$(stat -c %s "$WORK/data")" "$DIR/disk") "$WORK/data" || fail "$1: data differs"
}

step "real pages: 32 MiB of the sqlite heap"
(zstd -q -d -c "$CORPUS/sqlite.pages.zst" || true) | head -c $((32 << 20)) > "$WORK/data"
[ "$(stat -c %s "$WORK/data")" = $((32 << 20)) ] || skip "the sqlite heap is under 32 MiB"

step "mount with the defaults, write, train on the mount's own pages"
"$UZRAM" mount "$DIR" --size 64M --pidfile "$PIDFILE"
echo off > "$DIR/recompress_policy"    # settled below, when asked
dd if="$WORK/data" of="$DIR/disk" bs=1M oflag=direct conv=notrunc,fsync status=none || fail "write"
echo all > "$DIR/idle"
"$UZRAM" train "$DIR" -o "$WORK/mount.dict" --size 64K | grep -q "dictionary ID [1-9]" ||
    fail "uzram train DIR printed no dictionary ID"
[ -s "$WORK/mount.dict" ] && [ "$(stat -c %s "$WORK/mount.dict")" -le 65536 ] ||
    fail "mount.dict: $(stat -c %s "$WORK/mount.dict" 2>&1)"
# the pages stayed idle: type=idle still finds them
s0=$(field settle_pages)
echo type=idle > "$DIR/recompress"
[ "$(field settle_pages)" -gt $(( s0 + 4096 )) ] || fail "training made the idle pages hot"
check_data "after training"

step "a dictionary cannot change while pages use it (EBUSY), data intact"
expect_write_error "$DIR/algorithm_params" "priority=1 dict=$WORK/mount.dict" "busy"
check_data "after EBUSY"

step "train on a page file (the benchmarks' way), relative -o"
(cd "$WORK" && "$UZRAM" train "$WORK/data" -o file.dict) | grep -q "dictionary ID [1-9]" ||
    fail "uzram train PAGEFILE"
[ -s "$WORK/file.dict" ] || fail "file.dict not written"

step "uzram train: bad input is a clear error, exit status non-zero"
out=$("$UZRAM" train "$WORK/data" 2>&1) && fail "train without -o succeeded"
case "$out" in *"usage: uzram train"*) ;; *) fail "train without -o: $out";; esac
out=$("$UZRAM" train "$WORK/none.pages" -o "$WORK/x.dict" 2>&1) && fail "train of a missing file"
case "$out" in *"No such file"*) ;; *) fail "train of a missing file: $out";; esac
out=$("$UZRAM" train "$WORK" -o "$WORK/x.dict" 2>&1) && fail "train of a directory that is no mount"
case "$out" in *"not a uzram mount"*) ;; *) fail "train of a plain directory: $out";; esac
out=$("$UZRAM" train "$DIR" -o "$WORK/x.dict" --size 1K 2>&1) && fail "train --size 1K"
case "$out" in *"--size takes 4K to 1M"*) ;; *) fail "train --size 1K: $out";; esac
out=$("$UZRAM" train "$DIR" -o /nonexistent/x.dict 2>&1) && fail "train into a missing directory"
case "$out" in *"No such file"*) ;; *) fail "train -o /nonexistent/x.dict: $out";; esac
[ ! -e "$WORK/x.dict" ] || fail "a failed train left x.dict"
check_data "after bad train requests"

step "bad input, with the device reset (nothing stored)"
echo 1 > "$DIR/reset"
mkdir "$WORK/adir"
head -c 8192 "$WORK/data" > "$WORK/junk"
: > "$WORK/empty"
expect_write_error "$DIR/algorithm_params" "priority=1 dict=$WORK/missing.dict" \
    "No such file or directory"
expect_write_error "$DIR/algorithm_params" "priority=1 dict=$WORK/adir" "Invalid argument"
expect_write_error "$DIR/algorithm_params" "priority=1 dict=$WORK/junk" "Invalid argument"
expect_write_error "$DIR/algorithm_params" "priority=1 dict=$WORK/empty" "Invalid argument"
expect_write_error "$DIR/algorithm_params" "dict=$WORK/mount.dict" "Invalid argument"  # lz4
expect_write_error "$DIR/algorithm_params" "priority=2 dict=$WORK/mount.dict" "Invalid argument"
expect_write_error "$DIR/train_dict" "relative.dict" "Invalid argument"
! grep -q "dict=" "$DIR/algorithm_params" || fail "a bad dict= took: $(cat "$DIR/algorithm_params")"

step "the secondary with the mount's dictionary: write, settle, cmp"
echo "priority=1 dict=$WORK/mount.dict" > "$DIR/algorithm_params"
grep -q "^priority=1 algo=zstd level=6 dict=$WORK/mount.dict dict_id=[1-9]" "$DIR/algorithm_params" ||
    fail "algorithm_params: $(cat "$DIR/algorithm_params")"
echo 64M > "$DIR/disksize"
dd if="$WORK/data" of="$DIR/disk" bs=1M oflag=direct conv=notrunc,fsync status=none || fail "write"
g0=$(field settle_groups)
echo settle > "$DIR/recompress"
[ "$(field settle_groups)" -gt "$g0" ] || fail "nothing settled"
check_data "settled with the dictionary"
# random 4 KiB reads of settled pages, each against the data
for i in $(seq 1 64); do
    p=$(( (i * 2654435761) % 8192 ))
    cmp <(dd if="$DIR/disk" bs=4096 skip=$p count=1 iflag=direct status=none) \
        <(dd if="$WORK/data" bs=4096 skip=$p count=1 status=none) || fail "page $p differs"
done

step "bad input with pages stored: refused, data intact"
expect_write_error "$DIR/algorithm_params" "priority=1 dict=$WORK/junk" "busy"
expect_write_error "$DIR/algorithm_params" "priority=1 dict=" "busy"
mv "$WORK/mount.dict" "$WORK/moved.dict"    # the device holds its own copy
check_data "after the bad input"
"$UZRAM" umount "$DIR"
echo "PASS"
