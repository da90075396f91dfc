# SPDX-License-Identifier: BSD-2-Clause
# far_common.sh - helpers of the far-memory tests (nbd_backing.sh,
# nbd_far.sh), sourced after fuse_common.sh and fuse_setup:
#
#   serve NAME ADDR-ARGS... -- NBDKIT-ARGS...   an nbdkit daemon, waited for
#                                               (pid in WORK/NAME.pid; killed
#                                               by cleanup_extra)
#   kill_server NAME [SIGNAL]                   and waited for
#   free_port                                   a free TCP port on 127.0.0.1
#   wait_for SECONDS COMMAND...                 until it succeeds
#   field FILE N, dstat KEY                     a field of DIR/FILE, of debug_stat
#   verify [--allow-lost]                       every page of DIR/disk against
#                                               WORK/data (PAGES pages, SIZE)
#   mount_with URI [ARGS...], fill, umount_dev, dropcache
SERVERS=()
cleanup_extra() {
    local s
    for s in "${SERVERS[@]}"; do
        [ -f "$WORK/$s.pid" ] && kill -9 "$(cat "$WORK/$s.pid")" 2>/dev/null
    done
    [ -z "${FILEIMG:-}" ] || rm -f "$FILEIMG"   # a remote's file on tmpfs
    return 0
}

# a free TCP port on 127.0.0.1
free_port() {
    local p
    while :; do
        p=$((30000 + RANDOM % 25000))
        ss -ltnH "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# serve NAME ADDR-ARGS... -- NBDKIT-ARGS... : a daemon, waited for
serve() {
    local name=$1; shift
    local addr=()
    while [ "$1" != -- ]; do addr+=("$1"); shift; done
    shift
    SERVERS+=("$name")
    rm -f "$WORK/$name.pid"
    nbdkit "${addr[@]}" -P "$WORK/$name.pid" "$@" 2>"$WORK/$name.err" ||
        { cat "$WORK/$name.err"; fail "nbdkit $* did not start"; }
    local deadline=$((SECONDS + 20))
    until [ -s "$WORK/$name.pid" ] && kill -0 "$(cat "$WORK/$name.pid")" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "nbdkit $name did not start"
        sleep 0.05
    done
}
kill_server() {   # NAME [SIGNAL]: the process gone
    local pid
    pid=$(cat "$WORK/$1.pid")
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    fail "nbdkit $1 (pid $pid) did not exit"
}
wait_for() {   # SECONDS COMMAND... : until it succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

field() { awk -v n="$2" '{print $n}' "$DIR/$1"; }
dstat() { tr ' ' '\n' < "$DIR/debug_stat" | awk -v k="$1:" '$0 == k { getline; print; exit }'; }

# 16 MiB of pages: 12 MiB of real ones (the corpus, else text-like),
# 2 MiB random (huge), 2 MiB of zeros and same-filled
python3 - "$WORK/data" "${UZ_CORPUS:-}" <<'PY'
import os, random, subprocess, sys
r = random.Random(23)
out, corpus = sys.argv[1], sys.argv[2]
real = b""
src = os.path.join(corpus, "perl.pages.zst") if corpus else ""
if src and os.path.exists(src):
    try:
        real = subprocess.run(["zstd", "-dc", src], capture_output=True).stdout[4096 * 2000:][:12 << 20]
    except OSError:
        real = b""
if len(real) < 12 << 20:
    pages = []
    for i in range(3072):
        words = b" ".join(b"w%d" % r.randrange(500) for _ in range(300))
        pages.append((b"page %d " % i + words)[:4096].ljust(4096, b"."))
    real = b"".join(pages)
rand = r.randbytes(2 << 20)
same = b"".join(bytes([i % 3]) * 4096 for i in range(512))
with open(out, "wb") as f:
    f.write(real + rand + same)
PY
PAGES=4096
SIZE=16M

# verify [--allow-lost] : every page of DIR/disk against WORK/data, each
# failed read (EIO) read again up to 30 times; prints the counts and fails
# on any wrong byte, or on a lost page unless allowed
verify() {
    python3 - "$DIR/disk" "$WORK/data" "${1:-}" <<'PY'
import errno, mmap, os, sys
disk, data, allow = sys.argv[1], sys.argv[2], sys.argv[3] == "--allow-lost"
want = open(data, "rb").read()
fd = os.open(disk, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
wrong = wrong_bytes = lost = eio = 0
for i in range(len(want) // 4096):
    for attempt in range(30):
        try:
            n = os.preadv(fd, [buf], i * 4096)
            break
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            eio += 1
            n = -1
    if n < 0:
        lost += 1
        continue
    got, exp = buf[:4096], want[i * 4096:(i + 1) * 4096]
    if got != exp:
        wrong += 1
        wrong_bytes += sum(a != b for a, b in zip(got, exp))
print("verify: pages=%d wrong=%d wrong_bytes=%d lost=%d eio_reads=%d"
      % (len(want) // 4096, wrong, wrong_bytes, lost, eio))
if wrong or (lost and not allow):
    sys.exit(1)
PY
}

mount_with() {   # URI [MOUNT-ARGS...]
    local uri=$1; shift
    "$UZRAM" mount "$DIR" --size "$SIZE" --backing-dev "$uri" --pidfile "$PIDFILE" "$@"
    [ "$(cat "$DIR/backing_dev")" = "$uri" ] || fail "backing_dev shows '$(cat "$DIR/backing_dev")', not $uri"
}
fill() { dd if="$WORK/data" of="$DIR/disk" bs=1M oflag=direct conv=notrunc status=none; }
umount_dev() { timeout 60 "$UZRAM" umount "$DIR" || fail "umount did not finish"; }
dropcache() { echo 3 > /proc/sys/vm/drop_caches; }

