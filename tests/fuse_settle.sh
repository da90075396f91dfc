#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_settle.sh - a mounted device settles by itself: with the mount's
# defaults (settling on; its idle age shortened here to 1 s), real data
# written through DIR/disk is regrouped and recompressed with nobody
# asking, takes less memory, reads back identical, and the thread's CPU is
# counted.  Then settling turned off leaves a second write as it is, and
# `echo type=idle > recompress`, as zram users run it, settles it.
#
# Needs root, /dev/fuse; exits 77 (skip) otherwise.  Env: UZ_BUILD.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount cmp tar
fuse_setup settle

field() { sed -n "s/.*$1: \([0-9]*\).*/\1/p" "$DIR/debug_stat"; }
mem_used() { awk '{print $3}' "$DIR/mm_stat"; }

step "mount with the defaults"
"$UZRAM" mount "$DIR" --size 256M --pidfile "$PIDFILE"
grep -q "^settle idle_secs=120 algo=zstd " "$DIR/recompress_policy" ||
    fail "settling is not the default: $(cat "$DIR/recompress_policy")"
grep -q "^priority=1 algo=zstd level=6" "$DIR/algorithm_params" || fail "no default secondary"

step "real data: a tar of /usr/include and /usr/share/perl* (48 MiB)"
(tar cf - /usr/include /usr/share/perl* 2>/dev/null || true) | head -c $((48 << 20)) > "$WORK/data"
[ "$(stat -c %s "$WORK/data")" = $((48 << 20)) ] || skip "less than 48 MiB of /usr/include and perl"
echo "settle idle_secs=1 cpu=50" > "$DIR/recompress_policy"   # the bound is measured elsewhere (docs/settling.md)
dd if="$WORK/data" of="$DIR/disk" bs=1M oflag=direct conv=notrunc,fsync status=none || fail "write"
before=$(mem_used)

step "it settles by itself (30 s at most)"
want=$(( (48 << 20) / 4096 / 2 ))   # zero pages (tar padding) and repeats (shared, settled once per record) are not counted one by one
for i in $(seq 1 300); do
    [ "$(field settle_pages)" -ge "$want" ] && break
    sleep 0.1
done
[ "$(field settle_pages)" -ge "$want" ] || fail "settled $(field settle_pages) of $want pages in 30 s"
[ "$(field settle_groups)" -gt 0 ] || fail "no groups made"
# wait for the end-of-pass compaction: mem_used stops falling
prev=0
for i in $(seq 1 50); do m=$(mem_used); [ "$m" = "$prev" ] && break; prev=$m; sleep 0.2; done
after=$(mem_used)
echo "mem_used $before -> $after; settle_cpu_ms $(field settle_cpu_ms)"
[ "$after" -lt $(( before * 85 / 100 )) ] || fail "settling saved less than 15%: $before -> $after"
cmp <(head -c $((48 << 20)) "$DIR/disk") "$WORK/data" || fail "settled data differs"
[ "$(field settle_cpu_ms)" -gt 0 ] || fail "no CPU counted"

step "off: a second write stays as it is; type=idle settles it"
echo off > "$DIR/recompress_policy"
[ "$(cat "$DIR/recompress_policy")" = 0 ] || fail "policy not off"
dd if="$WORK/data" of="$DIR/disk" bs=1M seek=64 oflag=direct conv=notrunc,fsync status=none || fail "second write"
s0=$(field settle_pages)
echo all > "$DIR/idle"
echo type=idle > "$DIR/recompress"
[ "$(field settle_pages)" -gt $(( s0 + want / 2 )) ] || fail "type=idle settled $(( $(field settle_pages) - s0 )) pages"
cmp <(dd if="$DIR/disk" bs=1M skip=64 count=48 status=none) "$WORK/data" || fail "data differs"
cmp <(head -c $((48 << 20)) "$DIR/disk") "$WORK/data" || fail "first copy differs"
"$UZRAM" umount "$DIR"
echo "PASS"
