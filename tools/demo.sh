#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# demo.sh - the `make demo` main job: a compressed RAM disk in user space,
# end to end.
#
#   1. mount a 1 GiB uzram at a temporary directory (FUSE)
#   2. put a loop device on DIR/disk and an ext4 file system on that
#   3. copy /usr/include into it and show what it costs in RAM
#   4. drop every cache, remount, and compare the copy with the original
#      (so every byte comes back out of uzram, decompressed)
#   5. tear everything down, even on failure
#
# Run from the repository root as root, after building build/ (make demo
# does both).  UZ_BUILD=DIR picks another build directory.
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-build}
UZRAM=$(realpath "$UZ_BUILD/uzram" 2>/dev/null || echo "$UZ_BUILD/uzram")
SRC=${DEMO_SRC:-/usr/include}

if [ -t 1 ]; then
    section() { printf '\n\033[1m==== %s\033[0m\n' "$*"; }
else
    section() { printf '\n==== %s\n' "$*"; }
fi
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (mount, losetup and mkfs need it)"
[ -x "$UZRAM" ] || die "$UZ_BUILD/uzram not found: build first (make build)"
"$UZRAM" mount --help >/dev/null 2>&1 || die "uzram was built without FUSE (install libfuse3-dev)"
[ -c /dev/fuse ] || die "no /dev/fuse (modprobe fuse)"
for t in losetup mkfs.ext4 diff; do command -v $t >/dev/null || die "$t is missing"; done

WORK=$(mktemp -d /tmp/uzram-demo.XXXXXX)
DIR=$WORK/uzram      # the uzram mount: disk + attribute files
MNT=$WORK/ext4       # the ext4 on top of it
LOOP=
mkdir -p "$DIR" "$MNT"

teardown() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    section "teardown"
    if mountpoint -q "$MNT"; then echo "umount $MNT"; umount "$MNT"; fi
    if [ -n "$LOOP" ]; then echo "losetup -d $LOOP"; losetup -d "$LOOP"; fi
    if grep -q " $DIR fuse.uzram " /proc/self/mounts; then
        echo "uzram umount $DIR"
        "$UZRAM" umount "$DIR" || umount -l "$DIR"
    fi
    rm -rf "$WORK"
    if [ $rc = 0 ]; then echo "demo finished: everything verified and released"
    else echo "demo FAILED (exit $rc); everything released" >&2; fi
    exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

section "1. mount a 1 GiB uzram at $DIR"
echo "\$ uzram mount $DIR --size 1G --algorithm lz4"
"$UZRAM" mount "$DIR" --size 1G --algorithm lz4
grep " $DIR " /proc/self/mounts
echo "\$ ls $DIR"
ls "$DIR"
echo "disksize:       $(cat "$DIR/disksize")"
echo "comp_algorithm: $(cat "$DIR/comp_algorithm")"

section "2. loop device + ext4 on $DIR/disk"
if LOOP=$(losetup --direct-io=on -f --show "$DIR/disk" 2>/dev/null); then
    echo "\$ losetup --direct-io=on -f --show $DIR/disk  ->  $LOOP"
else
    LOOP=$(losetup -f --show "$DIR/disk")
    echo "\$ losetup -f --show $DIR/disk  ->  $LOOP  (direct I/O unavailable)"
fi
echo "\$ mkfs.ext4 -q $LOOP"
mkfs.ext4 -q "$LOOP"
mount "$LOOP" "$MNT"
df -h "$MNT"

section "3. copy $SRC into it"
start=$(date +%s.%N)
cp -a "$SRC" "$MNT/"
sync
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "copied $(du -sh "$MNT/$(basename "$SRC")" | cut -f1) in $(find "$MNT" -type f | wc -l) files (${secs} s)"
echo
echo "\$ uzram stat"
"$UZRAM" stat "$DIR"
echo
read -r orig compr used limit used_max same compacted huge huge_since < "$DIR/mm_stat"
echo "\$ cat $DIR/mm_stat"
cat "$DIR/mm_stat"
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
field() { printf '  %-16s %14s   %s\n' "$1" "$2" "$3"; }
field orig_data_size "$(mib "$orig")" "bytes stored, uncompressed (file data + ext4 metadata)"
field compr_data_size "$(mib "$compr")" "the same, compressed"
field mem_used_total "$(mib "$used")" "RAM the allocator holds for them"
field mem_limit "$limit" "cap on mem_used_total (0 = none)"
field mem_used_max "$(mib "$used_max")" "peak of mem_used_total"
field same_pages "$same" "pages of one repeated word: kept in the slot, no RAM"
field pages_compacted "$compacted" "allocator pages freed by compaction"
field huge_pages "$huge" "pages that did not compress, stored raw"
awk -v o="$orig" -v c="$compr" -v u="$used" 'BEGIN {
    if (c > 0) printf "  => compression ratio %.2fx; RAM per stored byte %.2f\n", o / c, u / o }'

section "4. drop caches, remount, verify every byte"
umount "$MNT"
echo 3 > /proc/sys/vm/drop_caches
mount "$LOOP" "$MNT"
reads_before=$(awk '{print $1}' /sys/block/"${LOOP#/dev/}"/stat)
echo "\$ diff -r --no-dereference $SRC $MNT/$(basename "$SRC")"
diff -r --no-dereference "$SRC" "$MNT/$(basename "$SRC")"
reads_after=$(awk '{print $1}' /sys/block/"${LOOP#/dev/}"/stat)
echo "identical: $((reads_after - reads_before)) reads went to $LOOP, each one served by uzram"
"$UZRAM" stat "$DIR"
