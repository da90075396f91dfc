#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_tree_pages.sh OUT [SRC] [SIZE] - a page file of real disk blocks
# with duplicate pages: an ext4 file system of SIZE (default: room for
# two copies and a quarter more) holding
# two copies of the tree SRC (default /usr/include), made on a loop device
# and saved block for block.  Each copied file's data blocks are the
# same 4 KiB pages as the original's: what a disk of two containers or
# VMs made from one image holds.  Needs root (losetup, mount).
set -euo pipefail
out=${1:?usage: make_tree_pages.sh OUT [SRC] [SIZE]}
src=${2:-/usr/include}
size=${3:-$(( ($(du -sk "$src" | cut -f1) * 5 / 2 + 65536) / 1024 ))M}
work=$(mktemp -d /tmp/uzram-tree.XXXXXX)
loop=""
cleanup() {
    mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
truncate -s "$size" "$work/img"
mkfs.ext4 -q -F -b 4096 "$work/img"
mkdir "$work/mnt"
loop=$(losetup -f --show "$work/img")
mount "$loop" "$work/mnt"
cp -a "$src" "$work/mnt/a"
cp -a "$src" "$work/mnt/b"
umount "$work/mnt"
losetup -d "$loop"
loop=""
mv "$work/img" "$out"
echo "$out: $(( $(stat -c %s "$out") / 4096 )) pages, two copies of $src ($(du -sh "$src" | cut -f1))"
