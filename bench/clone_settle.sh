#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# clone_settle.sh PAGEFILE - what settling does in a pool of one device and
# seven clones: the pool's mem_used_total (pool_stat) with the device alone
# settled, with the clones made first and the source settled after (its
# units then keep their layout: recompressed page by page, not regrouped),
# and with the source settled first and cloned after.  Every device of
# every pool is compared with the page file (cmp).  Needs root and FUSE.
#   UZ=build/uzram bash bench/clone_settle.sh /tmp/perl.pages

set -e
UZ=${UZ:-build/uzram}
F=$1
run() {  # run MODE: single | clone-then-settle | settle-then-clone
  D=$(mktemp -d /tmp/pcl.XXXX); trap "$UZ umount $D 2>/dev/null; rmdir $D 2>/dev/null" EXIT INT TERM; $UZ pool $D --size 512M >/dev/null
  dd if=$F of=$D/zram0/disk bs=1M oflag=direct status=none
  case $1 in
    single) echo settle > $D/zram0/recompress ;;
    clone-then-settle) for i in 1 2 3 4 5 6 7; do cat $D/zram0/clone >/dev/null; done; echo settle > $D/zram0/recompress ;;
    settle-then-clone) echo settle > $D/zram0/recompress; for i in 1 2 3 4 5 6 7; do cat $D/zram0/clone >/dev/null; done ;;
  esac
  echo 1 > $D/compact
  n=$(ls -d $D/zram[0-9]* | wc -l)
  for z in $D/zram[0-9]*; do cmp -n $(stat -c %s $F) $z/disk $F || { echo "FAIL: $z differs from $F"; exit 1; }; done
  echo "$1: devices $n mem_used_total $(awk '{print $11}' $D/pool_stat)"
  $UZ umount $D; rmdir $D
}
run single; run clone-then-settle; run settle-then-clone
