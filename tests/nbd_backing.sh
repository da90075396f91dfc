#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# nbd_backing.sh - far memory: a backing device that is an NBD export on
# real servers (docs/far-memory.md), every page checked.
#
#   1. remotes: `nbdkit memory` over loopback TCP and `nbdkit uzram` (this
#      build's plugin) over a Unix socket.  Through the mount: the memory
#      limit's forward, writeback idle, huge, huge_idle, incompressible,
#      page_index=, page_indexes=, raw and compressed; bd_stat counts;
#      every page reads back (caches dropped, O_DIRECT).
#   2. nbdkit's error filter, 1% of requests failing (EIO): writeback is
#      run until every page is out (each failure leaves its page in RAM),
#      reads that fail are -EIO (counted in io_stat's failed_reads and
#      debug_stat's bd_failed) and are read again: zero wrong bytes, zero
#      pages lost.
#   3. the delay filter: a remote slower than timeout=1 fails writeback
#      (the pages stay in RAM) and reads (-EIO) within the timeout; a
#      merely slow one (5 ms a request) works.
#   4. the remote (`nbdkit file` on tmpfs, whose data outlives its
#      process) killed with SIGKILL in the middle of a writeback and
#      started again: writeback fails, nothing is lost or wrong, the
#      connections are made again and a second writeback moves the rest.
#   5. a memory remote killed and started again empty: the pages it held
#      read as -EIO (each block's check), never as wrong bytes; the rest
#      read back.  With the remote gone: reset and unmount finish.
#   6. bad names refused with a message (backing_dev attribute), a remote
#      that refuses connections, and the plugin's backing_dev=URI.
#
# Needs root, /dev/fuse, nbdkit (memory, file, error and delay filters),
# nbdinfo, python3; exits 77 otherwise.  Env: UZ_BUILD, UZ_CORPUS.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount nbdkit nbdinfo nbdcopy python3 timeout ss
for f in error delay log; do
    nbdkit --dump-plugin memory --filter="$f" >/dev/null 2>&1 || skip "no nbdkit $f filter"
done
nbdkit file --dump-plugin >/dev/null 2>&1 || skip "no nbdkit file plugin"
PLUGIN=$(realpath "$UZ_BUILD/nbdkit-uzram-plugin.so" 2>/dev/null || true)

fuse_setup nbd-backing
. "$(dirname "$0")/lib/far_common.sh"

PORT=$(free_port)
TCP="nbd://127.0.0.1:$PORT/"

# ---------------------------------------------------------------- 1
step "1. nbdkit memory over TCP: the forward and every writeback mode"
serve mem -i 127.0.0.1 -p "$PORT" -- memory 64M
for comp in 0 1; do
    mount_with "$TCP" --mem-limit 4M
    echo "$comp" > "$DIR/writeback_compressed"
    fill
    fwd=$(dstat forwarded)
    echo "compressed=$comp: forwarded $fwd pages over the 4 MiB limit, bd_count $(field bd_stat 1)"
    [ "$fwd" -gt 0 ] || fail "nothing was forwarded over the memory limit"
    dropcache; verify
    echo 100 > "$DIR/mem_limit" 2>/dev/null || true
    echo 0 > "$DIR/mem_limit"
    before=$(field bd_stat 1)
    echo huge > "$DIR/writeback"
    echo incompressible > "$DIR/writeback"
    echo "page_index=5" > "$DIR/writeback"
    echo "page_indexes=100-199" > "$DIR/writeback"
    echo all > "$DIR/idle"
    echo huge_idle > "$DIR/writeback"
    echo idle > "$DIR/writeback"
    after=$(field bd_stat 1)
    echo "bd_count $before -> $after, bd_stat: $(cat "$DIR/bd_stat")"
    [ "$after" -gt "$before" ] || fail "writeback moved nothing"
    [ "$(field mm_stat 2)" -lt $((1 << 20)) ] || fail "compr_data_size $(field mm_stat 2) after writeback idle"
    [ "$(dstat writeback_failed)" = 0 ] || fail "writeback failures on a healthy remote"
    dropcache; verify
    [ "$(field bd_stat 2)" -gt 0 ] || fail "no backing read counted"
    [ "$(field io_stat 1)" = 0 ] || fail "failed reads on a healthy remote: $(cat "$DIR/io_stat")"
    umount_dev
done
kill_server mem

step "1b. nbdkit uzram (this build's plugin) over a Unix socket"
if [ -f "$PLUGIN" ]; then
    serve uz -U "$WORK/uz.sock" -- "$PLUGIN" size=64M mlock=false
    mount_with "nbd+unix:///?socket=$WORK/uz.sock"
    fill
    echo all > "$DIR/idle"
    echo idle > "$DIR/writeback"
    echo huge > "$DIR/writeback" 2>/dev/null || true
    echo "bd_stat: $(cat "$DIR/bd_stat")"
    [ "$(field bd_stat 1)" -gt 3000 ] || fail "only $(field bd_stat 1) pages went to nbdkit uzram"
    dropcache; verify
    umount_dev
    kill_server uz
else
    echo "(no plugin built: nbdkit uzram skipped)"
fi

# ---------------------------------------------------------------- 2
step "2. 1% of remote requests fail (error filter)"
PORT=$(free_port); TCP="nbd://127.0.0.1:$PORT/"
serve err -i 127.0.0.1 -p "$PORT" -- --filter=error memory 64M error=EIO error-rate=1%
mount_with "$TCP"
echo 4 > "$DIR/writeback_batch_size"   # many requests, so that some fail
fill
echo all > "$DIR/idle"
runs=0 failed_runs=0
while [ "$runs" -lt 200 ]; do
    runs=$((runs + 1))
    if echo idle > "$DIR/writeback" 2>/dev/null; then break; fi
    failed_runs=$((failed_runs + 1))
done
echo "writeback idle: $runs runs, $failed_runs failed; writeback_failed $(dstat writeback_failed), bd_failed $(dstat bd_failed)"
[ "$failed_runs" -gt 0 ] || fail "no writeback failed with error-rate=1%"
[ "$runs" -lt 200 ] || fail "writeback never completed"
verify
dropcache; verify
fr=$(field io_stat 1)
echo "failed_reads $fr, bd_failed $(dstat bd_failed)"
[ "$fr" -gt 0 ] || fail "no read failed with error-rate=1% (failed_reads 0)"
umount_dev
kill_server err

# ---------------------------------------------------------------- 3
step "3. a remote slower than timeout=1 (delay filter)"
PORT=$(free_port)
serve slow -i 127.0.0.1 -p "$PORT" -- --filter=delay memory 64M delay-write=3 delay-read=3
mount_with "nbd://127.0.0.1:$PORT/?timeout=1"
fill
echo all > "$DIR/idle"
t0=$SECONDS
if echo idle > "$DIR/writeback" 2>/dev/null; then fail "writeback to a remote 3 s late succeeded"; fi
echo "writeback failed after $((SECONDS - t0)) s; bd_count $(field bd_stat 1)"
[ $((SECONDS - t0)) -le 10 ] || fail "writeback took $((SECONDS - t0)) s with timeout=1"
[ "$(field bd_stat 1)" = 0 ] || fail "$(field bd_stat 1) pages counted out after timed-out writes"
dropcache; verify
umount_dev
kill_server slow
serve slow2 -i 127.0.0.1 -p "$PORT" -- --filter=delay memory 64M delay-write=5ms delay-read=5ms
mount_with "nbd://127.0.0.1:$PORT/?timeout=1"
fill
echo all > "$DIR/idle"
echo idle > "$DIR/writeback"
[ "$(field bd_stat 1)" -gt 3000 ] || fail "slow remote: only $(field bd_stat 1) pages out"
dropcache; verify
umount_dev
step "3b. reads of the pages during their writeback (slow remote, batches in flight)"
mount_with "nbd://127.0.0.1:$PORT/?timeout=5&connections=2"
fill
echo all > "$DIR/idle"
( timeout 120 sh -c "echo idle > '$DIR/writeback'" ) &
wb=$!
timeout 120 bash -c "$(declare -f verify); DIR='$DIR' WORK='$WORK' verify" || fail "reads during writeback: wrong bytes, or no end"
wait "$wb" || fail "writeback during reads failed or did not end"
echo "bd_count $(field bd_stat 1) after a writeback with reads beside it"
dropcache; verify
umount_dev
kill_server slow2

# ---------------------------------------------------------------- 4
step "4. the remote killed in the middle of a writeback, then started again"
PORT=$(free_port); TCP="nbd://127.0.0.1:$PORT/?timeout=5"
truncate -s 64M /dev/shm/uzram-nbd-backing.$$
FILEIMG=/dev/shm/uzram-nbd-backing.$$
serve fs -i 127.0.0.1 -p "$PORT" -- --filter=log --filter=delay file "$FILEIMG" delay-write=20ms \
    logfile="$WORK/fs.log"
mount_with "$TCP"
echo 8 > "$DIR/writeback_batch_size"
fill
echo all > "$DIR/idle"
( echo idle > "$DIR/writeback" ) 2>"$WORK/wb.err" &
wb=$!
# how far it is, from the server's log (not from the mount's attributes)
writes_over() { [ "$(grep -c ' Write ' "$WORK/fs.log" 2>/dev/null || true)" -gt "$1" ]; }
wait_for 30 writes_over 25 || fail "writeback did not start"
kill -0 "$wb" 2>/dev/null || fail "the writeback ended before the kill: $(cat "$WORK/wb.err")"
kill_server fs KILL
if wait "$wb"; then fail "writeback succeeded although the remote was killed"; fi
out=$(field bd_stat 1)
echo "killed with $out pages out; writeback: $(cat "$WORK/wb.err")"
[ "$out" -lt 3000 ] || fail "the kill came too late ($out pages out already)"
serve fs2 -i 127.0.0.1 -p "$PORT" -- file "$FILEIMG"
dropcache; verify
echo all > "$DIR/idle"   # the reads made every page young again
echo idle > "$DIR/writeback"
echo "after the restart: bd_count $(field bd_stat 1)"
[ "$(field bd_stat 1)" -gt 3000 ] || fail "the second writeback moved too little: $(field bd_stat 1)"
dropcache; verify
umount_dev
kill_server fs2

# ---------------------------------------------------------------- 5
step "5. a memory remote restarted empty, then gone"
PORT=$(free_port); TCP="nbd://127.0.0.1:$PORT/?timeout=2"
serve m1 -i 127.0.0.1 -p "$PORT" -- memory 64M
mount_with "$TCP"
fill
echo "page_indexes=0-1023" > "$DIR/writeback"
[ "$(field bd_stat 1)" -gt 900 ] || fail "page_indexes=0-1023 moved $(field bd_stat 1) pages"
kill_server m1 KILL
serve m2 -i 127.0.0.1 -p "$PORT" -- memory 64M
dropcache
out=$(verify --allow-lost) || { echo "$out"; fail "wrong bytes from a remote that restarted empty"; }
echo "$out"
lost=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' <<<"$out")
[ "$lost" -gt 900 ] || fail "only $lost pages unreadable after the remote lost them"
[ "$(field io_stat 1)" -gt 0 ] || fail "failed_reads not counted"
kill_server m2 KILL
t0=$SECONDS
echo 1 > "$DIR/reset"
timeout 60 "$UZRAM" umount "$DIR" || fail "umount with the remote gone did not finish"
echo "reset and unmount with the remote gone: $((SECONDS - t0)) s"

# ---------------------------------------------------------------- 6
step "6. bad names and refused connections"
"$UZRAM" mount "$DIR" --size "$SIZE" --pidfile "$PIDFILE"
echo 1 > "$DIR/reset"   # backing_dev is set while uninitialised
expect_write_error "$DIR/backing_dev" "nbd://" "Invalid argument"
expect_write_error "$DIR/backing_dev" "nbd://host:port/x" "Invalid argument"
expect_write_error "$DIR/backing_dev" "nbd+unix:///x" "Invalid argument"
expect_write_error "$DIR/backing_dev" "relative/path" "Invalid argument"
PORT=$(free_port)
expect_write_error "$DIR/backing_dev" "nbd://127.0.0.1:$PORT/?timeout=2" "Connection refused"
expect_write_error "$DIR/backing_dev" "nbd://127.0.0.1:$PORT/?timeout=0" "Invalid argument"
[ "$(cat "$DIR/backing_dev")" = none ] || fail "backing_dev is '$(cat "$DIR/backing_dev")' after a refused connection"
echo 16M > "$DIR/disksize"
fill
dropcache; verify
umount_dev

if [ -f "$PLUGIN" ]; then
    step "6b. the plugin's backing_dev=URI: nbdkit uzram on top of nbdkit memory"
    PORT=$(free_port)
    serve far -i 127.0.0.1 -p "$PORT" -- memory 64M
    serve near -U "$WORK/near.sock" -- "$PLUGIN" size=16M mem_limit=2M mlock=false \
        "backing_dev=nbd://127.0.0.1:$PORT/"
    nbdcopy "$WORK/data" "nbd+unix:///?socket=$WORK/near.sock"
    nbdcopy "nbd+unix:///?socket=$WORK/near.sock" "$WORK/back"
    cmp "$WORK/data" "$WORK/back" || fail "pages through nbdkit uzram backed by NBD differ"
    far=$(nbdinfo --map --totals "nbd://127.0.0.1:$PORT/" | awk '$3 == 0 { print $1 }')
    echo "plugin: 16 MiB through a 2 MiB limit, ${far:-0} bytes on the far server: identical"
    [ "${far:-0}" -gt $((4 << 20)) ] || fail "the far server holds ${far:-0} bytes: nothing was forwarded"
    kill_server near
    kill_server far
fi
echo "nbd_backing: ok"
