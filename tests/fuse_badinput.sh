#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_badinput.sh - bad input through a FUSE mount (issue 19): every case
# checks a clear error (the errno the writer gets and, for a store, the
# library's message the server logs on stderr), a server that survives
# (its pid alive, the mount answering), and a known file written to the
# disk first that reads back identical (cmp).
#
#   attribute files of `uzram mount DIR` and of `uzram pool DIR`: garbage,
#   a 1 MiB string, NULs, overflowing numbers, blanks and signs around
#   numbers (hot_remove " 1"), partial writes, stores in EBUSY states
#   (disksize, comp_algorithm, ... on an initialised device, reset while
#   the disk is open), group_pages 3 (the message says "auto"),
#   algorithm_params level=3 alone (the primary's, as zram), pool-wide
#   settings through a device (EBUSY, set in DIR/ instead);
#   DIR/disk: unaligned and beyond-the-end I/O, O_DIRECT with misaligned
#   buffers and offsets, fallocate in every mode, truncate, mmap past EOF.
#
# The mounts run in the foreground (-f) so that their stderr is this
# test's log.  Needs root, /dev/fuse, python3; exits 77 (skip) otherwise.
# Env: UZ_BUILD (build dir, default ./build).
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount python3 cmp timeout

SERVER=
cleanup_extra() {
    exec 7<&- 2>/dev/null || true
    if [ -n "${POOL:-}" ] && grep -q " $POOL fuse.uzram " /proc/self/mounts; then
        "$UZRAM" umount "$POOL" || umount -l "$POOL"
    fi
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    return 0
}
fuse_setup badinput
LOG=$WORK/server.log
POOL=$WORK/pool
mkdir -p "$POOL"

# start_fg LOGFILE uzram-args...: a foreground server; SERVER its pid,
# once its mount answers (or fail)
start_fg() {
    local log=$1 mnt=$3
    shift
    "$UZRAM" "$@" -f 2>"$log" &
    SERVER=$!
    local i
    for i in $(seq 100); do
        grep -q " $mnt fuse.uzram " /proc/self/mounts && [ -e "$mnt/mm_stat" ] && return 0
        kill -0 "$SERVER" 2>/dev/null || fail "the server for $mnt exited: $(cat "$log")"
        sleep 0.1
    done
    fail "$mnt not mounted after 10 s"
}

# alive MOUNT: the server runs and answers
alive() {
    kill -0 "$SERVER" 2>/dev/null || fail "the server died"
    timeout 10 cat "$1/mm_stat" >/dev/null || fail "$1 does not answer"
}

# known MOUNT DISK: the known file reads back identical
known() {
    cmp -n "$(stat -c %s "$WORK/known")" "$WORK/known" "$2" || fail "$2 lost the known data"
    alive "$1"
}

# bad FILE VALUE ERRNO_TEXT LOG_TEXT: writing VALUE (printf %b) fails
# with ERRNO_TEXT, the server logs LOG_TEXT, it survives, data is intact
bad() {
    local f=$1 v=$2 want=$3 logwant=$4 out n
    n=$(wc -l < "$LOG")
    if out=$(python3 -c '
import os, sys
v = sys.argv[2]
if v.startswith("@"):
    b = open(v[1:], "rb").read()
else:
    b = v.encode("latin-1").decode("unicode_escape").encode("latin-1")
try:
    fd = os.open(sys.argv[1], os.O_WRONLY)
    os.write(fd, b)
except OSError as e:
    print(os.strerror(e.errno)); sys.exit(1)
' "$f" "$v" 2>&1); then
        fail "writing '$v' to $f succeeded"
    fi
    [ "$out" = "$want" ] || fail "writing '$v' to $f: got '$out', want '$want'"
    if [ -n "$logwant" ]; then
        tail -n +"$((n + 1))" "$LOG" | grep -qF -- "$logwant" ||
            fail "writing '$v' to $f: the log has no '$logwant': $(tail -n +"$((n + 1))" "$LOG")"
    fi
    [ -n "${NODATA:-}" ] && alive "$MNT" || known "$MNT" "$DISK"
}

# =========================================================== uzram mount
MNT=$DIR
DISK=$DIR/disk
step "a mount of 16M with a known file on its disk"
start_fg "$LOG" mount "$DIR" --size 16M --algorithm lz4
head -c 4M /dev/urandom > "$WORK/known"
dd if="$WORK/known" of="$DISK" bs=1M conv=notrunc status=none
known "$MNT" "$DISK"

step "garbage, NULs, 1 MiB, overflow, blanks and signs"
INVAL="Invalid argument"
bad "$DIR/disksize" 'garbage' "$INVAL" "disksize: 'garbage' is not a size"
bad "$DIR/disksize" '1\x00M' "$INVAL" "disksize: value has an embedded NUL"
bad "$DIR/disksize" '99999999999999999999999' "$INVAL" "is not a size"
bad "$DIR/disksize" '16E' "$INVAL" "is not a size"
bad "$DIR/disksize" ' 16M' "$INVAL" "is not a size"
bad "$DIR/mem_limit" '-1' "$INVAL" "mem_limit: '-1' is not a size"
bad "$DIR/mem_limit" '1M\n\n' "$INVAL" "embedded NUL or newline"
bad "$DIR/writeback_limit" '18446744073709551616' "$INVAL" "writeback_limit: write a number"
bad "$DIR/writeback_limit" '+5' "$INVAL" "writeback_limit: write a number"
bad "$DIR/max_comp_streams" ' 4' "$INVAL" "max_comp_streams: write a number"
bad "$DIR/forward_threshold" '4097' "$INVAL" "forward_threshold: bytes 0..4096"
bad "$DIR/auto_compact" '1.0005' "$INVAL" "auto_compact: '1.0005' is not a number"
bad "$DIR/idle" '1048576' "$INVAL" "idle: at most"
bad "$DIR/recompress_policy" 'idle_secs=+5' "$INVAL" "recompress_policy: idle_secs=+5 is not a number"
bad "$DIR/writeback" 'page_index=+1' "$INVAL" "writeback: 'page_index=+1' is not an index"
bad "$DIR/dedup" 'maybe' "$INVAL" "dedup: 'maybe'"
bad "$DIR/reset" 'x' "$INVAL" "reset: write a non-zero number"
head -c 1048576 /dev/zero | tr '\0' 7 > "$WORK/big"      # 1 MiB of digits
bad "$DIR/writeback_limit" "@$WORK/big" "$INVAL" "writeback_limit: value too long"
bad "$DIR/disksize" "@$WORK/big" "$INVAL" "disksize: value too long"
bad "$DIR/mm_stat" '1' "Permission denied" ""    # read-only: refused at open
[ "$(cat "$DIR/writeback_limit")" = 0 ] || fail "a refused store changed writeback_limit"
[ "$(cat "$DIR/forward_threshold")" = 0 ] || fail "a refused store changed forward_threshold"

step "a partial write is a store of its own: 'lz' then '4' are two stores"
out=$(python3 - "$DIR/comp_algorithm" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for part in (b"lz", b"4"):
    try:
        os.write(fd, part)
        print("ok")
    except OSError as e:
        print(os.strerror(e.errno))
EOF
)
[ "$out" = "Invalid argument
Invalid argument" ] || fail "partial writes of comp_algorithm: $out"
grep -qF "comp_algorithm: unknown algorithm 'lz'" "$LOG" || fail "no message for 'lz'"
known "$MNT" "$DISK"

step "EBUSY on an initialised device, as zram"
BUSY="Device or resource busy"
bad "$DIR/disksize" '32M' "$BUSY" "disksize: device is initialised"
bad "$DIR/comp_algorithm" 'zstd' "$BUSY" "comp_algorithm: device is initialised"
bad "$DIR/algorithm_params" 'level=1' "$BUSY" "algorithm_params: device is initialised"
bad "$DIR/group_pages" '2' "$BUSY" "group_pages: device is initialised"
bad "$DIR/recomp_algorithm" 'algo=zstd' "$BUSY" "recomp_algorithm: device is initialised"
bad "$DIR/backing_dev" "$WORK/known" "$BUSY" "backing_dev: device is initialised"
bad "$DIR/group_pages" '3' "$INVAL" "group_pages: '3': write 1 (off), 2, 4, 8 or auto"
exec 7<"$DISK"      # the disk open: reset is EBUSY as on an open /dev/zramN
bad "$DIR/reset" '1' "$BUSY" "reset"
exec 7<&-
[ "$(cat "$DIR/disksize")" = 16777216 ] || fail "disksize changed"
grep -q '\[lz4\]' "$DIR/comp_algorithm" || fail "comp_algorithm changed"

step "reset, then algorithm_params level=3 alone is the primary's (zram's default priority)"
echo 1 > "$DIR/reset"
[ "$(cat "$DIR/initstate")" = 0 ] || fail "reset did not reset"
echo zstd > "$DIR/comp_algorithm"
echo level=3 > "$DIR/algorithm_params"
grep -qx "priority=0 algo=zstd level=3" "$DIR/algorithm_params" ||
    fail "level=3: $(cat "$DIR/algorithm_params")"
echo 'level=7' > "$DIR/algorithm_params"
grep -qx "priority=0 algo=zstd level=7" "$DIR/algorithm_params" || fail "level=7 not the primary's"
NODATA=1      # (no disk while uninitialised)
bad "$DIR/algorithm_params" 'level=+3' "$INVAL" "algorithm_params: bad level '+3'"
bad "$DIR/algorithm_params" 'level=99' "$INVAL" "algorithm_params: level 99 is outside zstd's"
bad "$DIR/algorithm_params" '\n' "$INVAL" "algorithm_params: give level=L"
NODATA=
grep -qx "priority=0 algo=zstd level=7" "$DIR/algorithm_params" || fail "a refused level changed it"
echo 16M > "$DIR/disksize"
dd if="$WORK/known" of="$DISK" bs=1M conv=notrunc status=none
known "$MNT" "$DISK"

step "DIR/disk: unaligned, beyond the end, O_DIRECT misaligned, fallocate, truncate, mmap past EOF"
python3 - "$DISK" "$WORK/known" "$WORK/model" <<'EOF'
import ctypes, errno, mmap, os, signal, sys
disk, known, model_path = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
size = os.stat(disk).st_size
model = bytearray(size)
k = open(known, "rb").read()
model[:len(k)] = k
fails = []

def expect(name, want, f):
    """want: an errno name, or None for success; returns f's result"""
    try:
        r = f()
        got = None
    except OSError as e:
        r, got = None, errno.errorcode.get(e.errno, str(e.errno))
    if got != want:
        fails.append("%s: got %s, want %s" % (name, got or "success", want or "success"))
    return r

fd = os.open(disk, os.O_RDWR)
# unaligned inside: a write that starts and ends mid-page, read back
data = os.urandom(10000)
off = 4 * 1024 * 1024 + 1234
expect("unaligned pwrite", None, lambda: os.pwrite(fd, data, off))
model[off:off + len(data)] = data
r = expect("unaligned pread", None, lambda: os.pread(fd, 10001, off - 1))
if r != bytes(model[off - 1:off + 10000]):
    fails.append("unaligned pread: wrong bytes")
# beyond the end: writes at or past it ENOSPC, one that crosses it is cut
expect("pwrite at the end", "ENOSPC", lambda: os.pwrite(fd, b"x", size))
expect("pwrite far past the end", "ENOSPC", lambda: os.pwrite(fd, b"x", 1 << 62))
n = expect("pwrite across the end", None, lambda: os.pwrite(fd, b"y" * 8192, size - 100))
if n != 100:
    fails.append("pwrite across the end wrote %r bytes, want 100" % n)
model[size - 100:] = b"y" * 100
if expect("pread at the end", None, lambda: os.pread(fd, 10, size)) != b"":
    fails.append("pread at the end is not EOF")
if expect("pread far past the end", None, lambda: os.pread(fd, 10, 1 << 62)) != b"":
    fails.append("pread far past the end is not EOF")
r = expect("pread across the end", None, lambda: os.pread(fd, 8192, size - 100))
if r != bytes(model[size - 100:]):
    fails.append("pread across the end: %r bytes" % (len(r) if r else r))
expect("pwrite at a negative offset", "EINVAL", lambda: os.pwrite(fd, b"x", -1))
# O_DIRECT: misaligned offsets and buffers are served (the disk is direct_io)
dfd = os.open(disk, os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 3 * 4096)
mis = memoryview(buf)[1:1 + 5000]
mis[:] = os.urandom(5000)
off = 5 * 1024 * 1024 + 3
expect("O_DIRECT pwritev misaligned", None, lambda: os.pwritev(dfd, [mis], off))
model[off:off + 5000] = mis.tobytes()
back = memoryview(buf)[7:7 + 5000]
expect("O_DIRECT preadv misaligned", None, lambda: os.preadv(dfd, [back], off))
if back.tobytes() != bytes(model[off:off + 5000]):
    fails.append("O_DIRECT misaligned: wrong bytes back")
expect("O_DIRECT pwrite at the end", "ENOSPC", lambda: os.pwrite(dfd, b"z" * 4096, size))
os.close(dfd)
# fallocate
def fa(mode, off, ln):
    if libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(ln)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
KEEP, PUNCH, COLLAPSE, ZERO, INSERT = 1, 2, 8, 16, 32
expect("fallocate inside", None, lambda: fa(0, 0, 4096))
expect("fallocate past the end", "ENOSPC", lambda: fa(0, size - 10, 4096))
expect("fallocate negative length", "EINVAL", lambda: fa(0, 0, -1))
NOTSUP = errno.errorcode[errno.EOPNOTSUPP]
expect("punch hole without KEEP_SIZE", NOTSUP, lambda: fa(PUNCH, 0, 4096))
expect("collapse range", NOTSUP, lambda: fa(COLLAPSE, 0, 4096))
expect("insert range", NOTSUP, lambda: fa(INSERT, 0, 4096))
expect("zero range past the end", "ENOSPC", lambda: fa(ZERO, size - 4096, 8192))
po = 6 * 1024 * 1024
os.pwrite(fd, b"\x55" * 12288, po)
model[po:po + 12288] = b"\x55" * 12288
expect("punch hole", None, lambda: fa(PUNCH | KEEP, po, 4096))
model[po:po + 4096] = bytes(4096)
expect("zero range", None, lambda: fa(ZERO, po + 4096, 4096))
model[po + 4096:po + 8192] = bytes(4096)
expect("zero range across the end, KEEP_SIZE", None, lambda: fa(ZERO | KEEP, size - 4096, 8192))
model[size - 4096:] = bytes(4096)
# truncate: the disk's size changes only through disksize
expect("ftruncate smaller", "EPERM", lambda: os.ftruncate(fd, 4096))
expect("ftruncate larger", "EPERM", lambda: os.ftruncate(fd, 2 * size))
expect("truncate to 0", "EPERM", lambda: os.truncate(disk, 0))
expect("ftruncate to its size", None, lambda: os.ftruncate(fd, size))
if os.fstat(fd).st_size != size:
    fails.append("the disk's size changed")
# mmap past EOF: the page past the end is SIGBUS in the toucher only
pid = os.fork()
if pid == 0:
    os.close(1)
    p = libc.mmap(None, size + 8192, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if p in (None, ctypes.c_void_p(-1).value):
        os._exit(3 if ctypes.get_errno() == errno.ENODEV else 4)
    ctypes.string_at(p + size - 1, 1)            # the last byte: fine
    ctypes.string_at(p + size + 4096, 1)         # past EOF: SIGBUS
    os._exit(0)
_, st = os.waitpid(pid, 0)
if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 3:
    print("SKIP (kernel): no shared mmap of a direct_io FUSE file (before Linux 6.6)")
elif not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGBUS):
    fails.append("mmap past EOF: status %r, want SIGBUS" % st)
os.close(fd)
open(model_path, "wb").write(model)
if fails:
    print("\n".join(fails))
    sys.exit(1)
EOF
cmp "$WORK/model" "$DISK" || fail "the disk differs from the model"
known "$MNT" "$DISK"

step "the mount's server survived all of it; unmount"
alive "$MNT"
"$UZRAM" umount "$DIR"
wait "$SERVER" || fail "the server exited with $?"
SERVER=

step "group_pages 3 on the command line: the message says auto"
if out=$(timeout 20 "$UZRAM" mount "$DIR" --size 16M --group-pages 3 -f 2>&1); then
    fail "--group-pages 3 mounted"
fi
case "$out" in *"or auto"*) ;; *) fail "--group-pages 3: $out";; esac
case "$out" in *UZRAM_GROUP_AUTO*) fail "--group-pages 3 names the C constant: $out";; esac
grep -q " $DIR fuse.uzram " /proc/self/mounts && fail "--group-pages 3 left a mount"

# ============================================================ uzram pool
MNT=$POOL
DISK=$POOL/zram0/disk
LOG=$WORK/pool.log
step "a pool of two 16M devices, the known file on zram0"
start_fg "$LOG" pool "$POOL" --size 16M --devices 2 --algorithm lz4
dd if="$WORK/known" of="$DISK" bs=1M conv=notrunc status=none
known "$MNT" "$DISK"

step "hot_remove takes digits and one newline only"
for v in ' 1' '+1' '1 ' '1\n\n' '-1' '0x1' '\n' '1\x00' '99999999999'; do
    bad "$POOL/zram-control/hot_remove" "$v" "$INVAL" "hot_remove: Invalid argument"
done
[ -d "$POOL/zram1" ] || fail "a refused hot_remove removed zram1"
bad "$POOL/zram-control/hot_remove" '7' "No such file or directory" "no device zram7"
exec 7<"$DISK"
bad "$POOL/zram-control/hot_remove" '0' "$BUSY" "hot_remove: zram0 is open"
exec 7<&-

step "pool-wide settings through a device are EBUSY; in DIR/ they are set"
for kv in mem_limit=64M dedup=0 auto_compact=2 writeback_limit=5 writeback_limit_enable=1 \
          forward_threshold=3000 writeback_compressed=1; do
    k=${kv%%=*} v=${kv#*=}
    bad "$POOL/zram1/$k" "$v" "$BUSY" "$k: a pool-wide setting: set it in DIR/ (the pool's own attributes)"
    [ "$k" = mem_limit ] || [ "$(cat "$POOL/zram1/$k")" != "$v" ] || fail "$k changed through zram1"
    echo "$v" > "$POOL/$k"
    [ "$k" = mem_limit ] || [ "$(cat "$POOL/zram0/$k")" = "$(cat "$POOL/$k")" ] ||
        fail "$k: zram0 does not show the pool's value"
done
[ "$(awk '{print $12}' "$POOL/pool_stat")" = 67108864 ] || fail "the pool's mem_limit: $(cat "$POOL/pool_stat")"
echo 64M > "$POOL/zram1/mem_limit"        # the pool's own value: accepted
bad "$POOL/zram1/comp_algorithm" 'zstd' "$BUSY" "set it when the pool is made"
bad "$POOL/zram0/disksize" '32M' "$BUSY" "disksize: device is initialised"
bad "$POOL/zram0/disksize" "@$WORK/big" "$INVAL" "disksize: value too long"
bad "$POOL/zram0/disksize" '1\x00' "$INVAL" "embedded NUL"

step "the pool's server survived; unmount"
alive "$MNT"
known "$MNT" "$DISK"
"$UZRAM" umount "$POOL"
wait "$SERVER" || fail "the pool's server exited with $?"
SERVER=
echo "PASS"
