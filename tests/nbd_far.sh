#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# nbd_far.sh - far memory when the network is not kind: remotes restarted,
# TLS, injected faults (docs/far-memory.md).  16 MiB of pages (3584 of
# them go out on `writeback idle`; 512 are same-filled and stay), every
# page read back (caches dropped, O_DIRECT) and compared.
#
#   1. reconnection: the remote (`nbdkit file` on tmpfs, so its data
#      outlives its process) killed and started again between two
#      writebacks, on the same TCP port and on the same Unix socket: the
#      second writeback succeeds with no failed write (the writes whose
#      connection had died went again on a fresh one).  Killed with
#      SIGKILL in the middle of a writeback and started again: writeback
#      resumes (run again until every page is out), nothing lost or wrong.
#      A new server put on the socket's path while writes are in flight on
#      the old one, then the old one killed: the writeback does not fail
#      (the writes in flight go again on a fresh connection).
#   2. TLS: `nbdkit --tls=require --tls-psk=FILE`; nbds://USER@HOST:PORT/
#      ?tls-psk-file=, nbds://HOST... (the process's user as the PSK
#      identity), nbds+unix://USER@/?socket=&tls-psk-file=, two
#      connections; a plain nbd:// and a wrong key refused with a message;
#      the TLS server restarted between writebacks.
#   3. faults: nbdkit's error filter failing 1% of writes
#      (error-pwrite-rate) and then 1% of reads (error-pread-rate), behind
#      the delay filter (1 ms a request), compressed and raw writeback in
#      batches of 4 pages: writeback run until done, every failure leaving
#      its page in RAM; reads failing with EIO, counted, and read again:
#      zero wrong bytes, zero pages lost, the failures counted.
#   4. several batches in flight with the middle one failing (a server of
#      the test's own, nbdkit sh, failing one request once): the batches
#      before it out, the pages of it and of the batches after it (sent,
#      written at the server) in RAM, every page right; then the rest.
#   5. shared pages (dedup) in batches: each page four times in a row,
#      one block a distinct page, every page right.
#
# Needs root, /dev/fuse, nbdkit (memory, file and sh plugins, error and delay filters,
# TLS), python3; exits 77 otherwise.  Env: UZ_BUILD, UZ_CORPUS.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount nbdkit nbdinfo python3 timeout ss
for f in error delay log; do
    nbdkit --dump-plugin memory --filter="$f" >/dev/null 2>&1 || skip "no nbdkit $f filter"
done
nbdkit file --dump-plugin >/dev/null 2>&1 || skip "no nbdkit file plugin"
nbdkit sh --dump-plugin >/dev/null 2>&1 || skip "no nbdkit sh plugin"
nbdkit --dump-config | grep -q '^tls=yes' || skip "nbdkit built without TLS"

fuse_setup nbd-far
. "$(dirname "$0")/lib/far_common.sh"
FILEIMG=/dev/shm/uzram-nbd-far.$$
OUT=3584   # pages `writeback idle` moves out (not the same-filled)

# wb_until_done [MAX] : writeback idle again until it succeeds; prints the
# number of runs that failed
wb_until_done() {
    local runs=0 failed=0
    while [ "$runs" -lt "${1:-200}" ]; do
        runs=$((runs + 1))
        if echo idle > "$DIR/writeback" 2>/dev/null; then echo "$failed"; return 0; fi
        failed=$((failed + 1))
        echo all > "$DIR/idle"
    done
    fail "writeback never completed ($runs runs)"
}

# ---------------------------------------------------------------- 1
step "1a. the remote stopped and started again between writebacks (TCP, Unix socket)"
truncate -s 64M "$FILEIMG"
PORT=$(free_port)
SOCK=$WORK/far.sock
for uri in "nbd://127.0.0.1:$PORT/?timeout=5" "nbd+unix:///?socket=$SOCK&timeout=5"; do
    addr=(-i 127.0.0.1 -p "$PORT"); [[ $uri == nbd+unix* ]] && addr=(-U "$SOCK")
    serve f1 "${addr[@]}" -- file "$FILEIMG"
    mount_with "$uri"
    fill
    echo "page_indexes=0-1023" > "$DIR/writeback"
    first=$(field bd_stat 1)
    [ "$first" -gt 900 ] || fail "page_indexes=0-1023 moved $first pages"
    kill_server f1 KILL   # (nbdkit 1.32 waits on SIGTERM until its clients hang up)
    rm -f "$SOCK"   # the dead server's socket file
    serve f2 "${addr[@]}" -- file "$FILEIMG"
    echo "page_indexes=1024-3071" > "$DIR/writeback" ||
        fail "$uri: writeback after the remote restarted failed (writes not tried again)"
    second=$(field bd_stat 1)
    echo "$uri: $first pages out, remote restarted, then $second out;" \
         "writeback_failed $(dstat writeback_failed), bd_failed $(dstat bd_failed)"
    [ "$(dstat writeback_failed)" = 0 ] || fail "writes failed across the restart"
    [ "$second" -gt $((first + 1800)) ] || fail "the second writeback moved too little"
    dropcache; verify
    umount_dev
    kill_server f2
done

step "1b. the remote killed (SIGKILL) in the middle of a writeback, started again: writeback resumes"
PORT=$(free_port)
serve k1 -i 127.0.0.1 -p "$PORT" -- --filter=log --filter=delay file "$FILEIMG" delay-write=20ms \
    logfile="$WORK/k1.log"
mount_with "nbd://127.0.0.1:$PORT/?timeout=5"
echo 8 > "$DIR/writeback_batch_size"
fill
echo all > "$DIR/idle"
( echo idle > "$DIR/writeback" ) 2>"$WORK/wb.err" &
wb=$!
# the server's log says how far the writeback is (not the mount's
# attributes: the kill must not wait on the mount)
writes_seen() { grep -c ' Write ' "$1" 2>/dev/null || true; }
over() { [ "$(writes_seen "$1")" -gt "$2" ]; }
wait_for 30 over "$WORK/k1.log" 20 || fail "writeback did not start"
at_kill=$(writes_seen "$WORK/k1.log")
kill -0 "$wb" 2>/dev/null || fail "the writeback ended before the kill ($at_kill write requests): $(cat "$WORK/wb.err")"
kill_server k1 KILL
serve k2 -i 127.0.0.1 -p "$PORT" -- --filter=delay file "$FILEIMG" delay-write=1ms
if wait "$wb"; then first="succeeded (retried across the restart)"; else first="failed: $(cat "$WORK/wb.err")"; fi
failed=$(wb_until_done 20)
n=$(field bd_stat 1)
echo "killed after $at_kill write requests; that writeback $first; then $failed failed runs, $n pages out;" \
     "writeback_failed $(dstat writeback_failed), bd_failed $(dstat bd_failed)"
[ "$n" = "$OUT" ] || fail "$n pages out after the restart, not $OUT"
dropcache; verify
umount_dev
kill_server k2

step "1c. the remote replaced under writes in flight: they go again on a fresh connection"
# a new server takes the socket's path (rename) before the old one is
# killed, so the writes in flight on the old one die with their
# connection while a server is there to take them again
rm -f "$SOCK"
serve u1 -U "$SOCK" -- --filter=log --filter=delay file "$FILEIMG" delay-write=20ms \
    logfile="$WORK/u1.log"
serve u2 -U "$SOCK.new" -- file "$FILEIMG"   # ready before the writeback starts
mount_with "nbd+unix:///?socket=$SOCK&timeout=5"
fill
echo all > "$DIR/idle"
( echo idle > "$DIR/writeback" ) 2>"$WORK/wb.err" &
wb=$!
wait_for 30 over "$WORK/u1.log" 10 || fail "writeback did not start"
mv -f "$SOCK.new" "$SOCK"
at_kill=$(writes_seen "$WORK/u1.log")
kill -0 "$wb" 2>/dev/null || fail "the writeback ended before the kill ($at_kill write requests): $(cat "$WORK/wb.err")"
kill_server u1 KILL
wait "$wb" || fail "writeback failed when its server was replaced: $(cat "$WORK/wb.err")"
n=$(field bd_stat 1)
echo "server replaced after $at_kill write requests; the writeback went on: $n pages out," \
     "writeback_failed $(dstat writeback_failed)"
[ "$n" = "$OUT" ] && [ "$(dstat writeback_failed)" = 0 ] || fail "writes failed across the replacement"
dropcache; verify
umount_dev
kill_server u2

# ---------------------------------------------------------------- 2
step "2. TLS: nbdkit --tls=require --tls-psk"
PSK=$WORK/keys.psk WRONG=$WORK/wrong.psk
me=$(id -un)
key() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
k=$(key)
printf 'alice:%s\n%s:%s\n' "$k" "$me" "$(key)" > "$PSK"
printf 'alice:%s\n' "$(key)" > "$WRONG"
chmod 600 "$PSK" "$WRONG"
PORT=$(free_port)
TSOCK=$WORK/tls.sock
serve t1 -i 127.0.0.1 -p "$PORT" -- --tls=require --tls-psk="$PSK" memory 64M
serve t2 -U "$TSOCK" -- --tls=require --tls-psk="$PSK" memory 64M
for uri in "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$PSK" \
           "nbds://127.0.0.1:$PORT/?tls-psk-file=$PSK&connections=2" \
           "nbds+unix://alice@/?socket=$TSOCK&tls-psk-file=$PSK"; do
    mount_with "$uri"
    fill
    echo all > "$DIR/idle"
    echo idle > "$DIR/writeback"
    [ "$(field bd_stat 1)" = "$OUT" ] || fail "$uri: $(field bd_stat 1) pages out, not $OUT"
    dropcache; verify
    echo "$uri: $OUT pages out and back"
    umount_dev
done
expect_refused() {   # URI TEXT
    if "$UZRAM" mount "$DIR" --size "$SIZE" --backing-dev "$1" --pidfile "$PIDFILE" 2>"$WORK/m.err"; then
        umount_dev; fail "$1 was accepted"
    fi
    grep -q "$2" "$WORK/m.err" || { cat "$WORK/m.err"; fail "$1: no '$2' in the message"; }
    echo "refused: $1: $(grep -o "$2.*" "$WORK/m.err" | head -1)"
}
expect_refused "nbd://127.0.0.1:$PORT/" "requires TLS"
expect_refused "nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$WRONG" "backing_dev: nbds://alice@"
expect_refused "nbds://bob@127.0.0.1:$PORT/?tls-psk-file=$PSK" "bob was not found"
# the TLS server stopped and started again between writebacks: the new
# connections are made with TLS again
uri="nbds://alice@127.0.0.1:$PORT/?tls-psk-file=$PSK"
kill_server t1 KILL
serve t3 -i 127.0.0.1 -p "$PORT" -- --tls=require --tls-psk="$PSK" file "$FILEIMG"
mount_with "$uri"
fill
echo "page_indexes=0-1023" > "$DIR/writeback"
kill_server t3 KILL
serve t4 -i 127.0.0.1 -p "$PORT" -- --tls=require --tls-psk="$PSK" file "$FILEIMG"
echo "page_indexes=1024-4095" > "$DIR/writeback" || fail "TLS: writeback after a restart failed"
[ "$(dstat writeback_failed)" = 0 ] || fail "TLS: writes failed across the restart"
dropcache; verify
echo "TLS remote restarted between writebacks: $(field bd_stat 1) pages out, none failed"
umount_dev
kill_server t4
kill_server t2

# ---------------------------------------------------------------- 3
step "3. 1% of remote writes, then of reads, failing (error filter), 1 ms a request (delay filter)"
PORT=$(free_port)
for comp in 1 0; do
    serve e1 -i 127.0.0.1 -p "$PORT" -- --filter=error --filter=delay memory 64M \
        delay-write=1ms delay-read=1ms error=EIO error-pwrite-rate=1%
    mount_with "nbd://127.0.0.1:$PORT/"
    echo "$comp" > "$DIR/writeback_compressed"
    # batches of 4 pages: 896 write requests a run (a batch of 32 is one
    # request of 128 KiB: 112 a run, none failing in a third of the runs)
    echo 4 > "$DIR/writeback_batch_size"
    fill
    echo all > "$DIR/idle"
    failed=$(wb_until_done 300)
    n=$(field bd_stat 1)
    echo "comp=$comp, 1% of writes failing: $failed writeback runs failed, then $n pages out;" \
         "writeback_failed $(dstat writeback_failed), bd_failed $(dstat bd_failed)"
    [ "$failed" -gt 0 ] || fail "no writeback failed with error-pwrite-rate=1%"
    [ "$n" = "$OUT" ] || fail "$n pages out, not $OUT"
    out=$(verify) || { echo "$out"; fail "wrong bytes or pages lost, 1% of writes failing"; }
    echo "$out"
    umount_dev
    kill_server e1
    # the same blocks, now with reads failing: the far pages are served
    # again by a server that keeps them (nbdkit file)
done
truncate -s 0 "$FILEIMG"; truncate -s 64M "$FILEIMG"
serve e2 -i 127.0.0.1 -p "$PORT" -- file "$FILEIMG"
mount_with "nbd://127.0.0.1:$PORT/"
fill
echo all > "$DIR/idle"
echo idle > "$DIR/writeback"
kill_server e2 KILL
serve e3 -i 127.0.0.1 -p "$PORT" -- --filter=error --filter=delay file "$FILEIMG" \
    delay-read=1ms error=EIO error-pread-rate=1%
fails0=$(field io_stat 1)
for pass in 1 2 3; do
    dropcache
    out=$(verify) || { echo "$out"; fail "wrong bytes or pages lost, 1% of reads failing"; }
    echo "pass $pass: $out"
done
fr=$(field io_stat 1)
echo "1% of reads failing: failed_reads $fr, bd_failed $(dstat bd_failed), 0 wrong, 0 lost"
[ "$fr" -gt "$fails0" ] || fail "no read failure counted with error-pread-rate=1%"
umount_dev
kill_server e3

# ---------------------------------------------------------------- 4
step "4. several batches in flight, the middle one failing: the pages after it stay in RAM"
# A server of our own (nbdkit sh, 40 ms a write) that fails one request,
# the 6th batch's (blocks 40..47, batches of 8 pages), once; it logs every
# write it is sent.  The batches after it are at the server, or on their
# way, when it fails: their writes land, but their pages must stay in RAM
# (results committed in slot order up to the first failure).
truncate -s 0 "$FILEIMG"; truncate -s 64M "$FILEIMG"
FAILOFF=$((40 * 4096))
touch "$WORK/fail.once"
cat > "$WORK/one_fails.sh" <<SH
#!/bin/bash
case "\$1" in
get_size) echo 67108864 ;;
can_write|can_multi_conn) exit 0 ;;
can_flush|can_trim|can_zero|can_extents) exit 3 ;;
thread_model) echo parallel ;;
pread) exec dd if="$FILEIMG" skip="\$4" count="\$3" iflag=skip_bytes,count_bytes status=none ;;
pwrite)
    echo "\$4 \$3" >> "$WORK/writes.log"
    sleep 0.04
    if [ "\$4" = $FAILOFF ] && rm "$WORK/fail.once" 2>/dev/null; then
        echo "EIO injected at \$4" >&2; exit 1
    fi
    exec dd of="$FILEIMG" seek="\$4" oflag=seek_bytes conv=notrunc bs=64K iflag=fullblock status=none ;;
*) exit 2 ;;
esac
SH
chmod +x "$WORK/one_fails.sh"
PORT=$(free_port)
serve m1 -i 127.0.0.1 -p "$PORT" -- sh "$WORK/one_fails.sh"
mount_with "nbd://127.0.0.1:$PORT/?timeout=10"
echo 8 > "$DIR/writeback_batch_size"
fill
echo all > "$DIR/idle"
if (echo idle > "$DIR/writeback") 2>"$WORK/wb.err"; then fail "writeback succeeded with a batch failing"; fi
[ ! -e "$WORK/fail.once" ] || fail "the failing request was never sent"
n=$(field bd_stat 1)
after=$(awk -v f="$FAILOFF" '$1 > f' "$WORK/writes.log" | wc -l)
echo "writeback failed ($(grep -o 'Input/output error' "$WORK/wb.err")); $n pages out (the 5 batches before the failure)," \
     "writeback_failed $(dstat writeback_failed); $after write requests after the failing one" \
     "reached the server, their pages kept in RAM"
[ "$n" = 40 ] || fail "$n pages out, not 40 (the batches before the failing one)"
[ "$after" -ge 1 ] || fail "no batch was in flight after the failing one (writes.log: $(tr '\n' ' ' < "$WORK/writes.log"))"
[ "$(dstat writeback_failed)" -ge 8 ] || fail "the failed batch's pages were not counted in writeback_failed"
dropcache
out=$(verify) || { echo "$out"; fail "wrong bytes or pages lost after a failure in the middle"; }
echo "$out"
# the rest, through a quick server on the same blocks (the sh one forks a
# shell a request): the connections are made again
kill_server m1 KILL
serve m2 -i 127.0.0.1 -p "$PORT" -- file "$FILEIMG"
echo all > "$DIR/idle"   # (the reads made them hot)
echo idle > "$DIR/writeback" || fail "the second writeback failed: $(cat "$DIR/debug_stat")"
n=$(field bd_stat 1)
[ "$n" = "$OUT" ] || fail "$n pages out after the second writeback, not $OUT"
dropcache
out=$(verify) || { echo "$out"; fail "wrong bytes or pages lost after the second writeback"; }
echo "second writeback: $n pages out; $out"
umount_dev
kill_server m2

# ---------------------------------------------------------------- 5
step "5. shared (deduplicated) pages in the batches"
# each page four times in a row: a batch holds a record's slots together
# (the first one sends it, the others find it going out already)
python3 - "$WORK/data" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
pages = [d[i * 4096:(i + 1) * 4096] for i in range(1024)]
out = b"".join(pages[k // 4] for k in range(4096))
open(sys.argv[1], "wb").write(out)
distinct = {p for p in pages if p != p[:8] * 512}
print(len(distinct), file=open(sys.argv[1] + ".distinct", "w"))
PY
PORT=$(free_port)
serve d1 -i 127.0.0.1 -p "$PORT" -- memory 64M
mount_with "nbd://127.0.0.1:$PORT/"
echo 1 > "$DIR/dedup"
echo 8 > "$DIR/writeback_batch_size"
fill
echo all > "$DIR/idle"
echo idle > "$DIR/writeback" || fail "writeback of shared pages failed"
n=$(field bd_stat 1)
want=$(cat "$WORK/data.distinct")
echo "4096 pages, $want distinct: $n blocks written back; dedup_stat: $(cat "$DIR/dedup_stat" | head -1)"
[ "$n" = "$want" ] || fail "$n blocks out, not $want (one a shared page)"
[ "$(field bd_stat 3)" = "$want" ] || fail "$(field bd_stat 3) blocks written, not $want (a shared page sent twice)"
[ "$(dstat writeback_failed)" = 0 ] || fail "writes failed"
dropcache
out=$(verify) || { echo "$out"; fail "wrong bytes or pages lost with shared pages written back"; }
echo "$out"
umount_dev
kill_server d1

echo "nbd_far: ok"
