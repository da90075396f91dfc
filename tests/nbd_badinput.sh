#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# tests/nbd_badinput.sh - the nbdkit plugin against bad parameters, hostile
# export names and invalid clone requests (issue 19).
#
# Each case checks three things: a clear error (the message, the errno or
# NBD reply), a process that survives where it should (a running server
# keeps serving; a start that must fail ends, never hangs), and data
# already written reads back identical (nbdcopy + cmp, qemu-io patterns).
#   - start-up: malformed, negative and overflowing sizes, unknown keys,
#     non-numbers and overflowing numbers, bad dedup / group_pages /
#     algorithm / allocator / mlock / backing_dev, bad export= names and
#     sizes: nbdkit refuses to start, saying why, under --run (which waits
#     for ever if the server dies after its fork: timeouts catch a hang)
#   - control=DIR: missing (the hang of finding 4, and its "no such
#     attribute" for ENOENT), a file, a directory where `uzram mount` runs
#     or where another server's control mount is (finding 8: it would hide
#     their files): refused at start, the mount already there keeps its
#     data; a start that fails after the mount (a socket that cannot be
#     bound) leaves nothing mounted
#   - size=8T, the documented maximum (finding 8), serves; its last page
#     is written and read back; 8T + 4096 is refused with the limit
#   - hostile export names sent by a raw NBD client (NBD_OPT_GO with any
#     bytes): unknown, 300 and 4096 bytes long, over the protocol's 4096,
#     slashes, '.', '..', a NUL, a newline (log injection), invalid UTF-8,
#     malformed and invalid clone names, clones past max_clones: each is
#     refused, the log says why (names shown with '?' for control bytes),
#     the server survives, and the exports and a clone read back their data
#
# Run by ctest (label "system"); by hand:
#   UZ_BUILD=build bash tests/nbd_badinput.sh
# Exit 77 = skipped (a client tool or the plugin is missing).
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so
UZRAM=$UZ_BUILD/uzram

skip() { echo "SKIP: $*"; exit 77; }
for tool in nbdkit nbdinfo nbdcopy qemu-io cmp python3 timeout; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (packages nbdkit, libnbd-bin, qemu-utils, python3)"
done
[ -f "$PLUGIN" ] || skip "$PLUGIN is not built (needs nbdkit-plugin-dev)"
nbdkit "$PLUGIN" --dump-plugin 2>/dev/null | grep -q '^uzram_exports=yes' \
    || skip "$PLUGIN has no pool mode"
HAVE_FUSE=false
if nbdkit "$PLUGIN" --dump-plugin 2>/dev/null | grep -q '^uzram_control=yes' &&
   [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
    HAVE_FUSE=true
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/uz-nbdbad.XXXXXX")
SERVERS=()          # names of servers started, for the cleanup trap
MOUNTS=()           # directories that may hold a mount of ours

cleanup() {
    local name pid d
    set +e
    for name in "${SERVERS[@]}"; do
        pid=$(cat "$WORK/$name.pid" 2>/dev/null)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null
        fi
    done
    for d in "${MOUNTS[@]}"; do
        if grep -q " $d " /proc/self/mounts; then
            timeout 10 "$UZRAM" umount "$d" 2>/dev/null ||
                timeout 10 fusermount3 -u -z "$d" 2>/dev/null || timeout 10 umount -l "$d"
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SOCK=$WORK/pool.sock
uri() { echo "nbd+unix:///$1?socket=$SOCK"; }      # uri EXPORT ("" = default)
. "$(dirname "$0")/lib/nbd_common.sh"

# start_server NAME PARAM... : nbdkit with the plugin in the foreground (in
# this script's background; --log=stderr keeps its messages in
# $WORK/NAME.err) on $WORK/NAME.sock; waits until it serves.
start_server() {
    local name=$1; shift
    SERVERS+=("$name")
    nbdkit -f -v -D nbdkit.backend.datapath=0 --log=stderr -U "$WORK/$name.sock" \
        -P "$WORK/$name.pid" "$PLUGIN" "$@" 2>"$WORK/$name.err" &
    local deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ -s "$WORK/$name.pid" ] && [ -S "$WORK/$name.sock" ] && return 0
        kill -0 $! 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/$name.err"
    echo "FAIL - nbdkit $* is not serving"
    exit 1
}

alive() { kill -0 "$(cat "$WORK/$1.pid")" 2>/dev/null; }   # alive NAME

# bad_start PATTERN PARAM... : nbdkit must refuse to start, saying PATTERN
# (grep -E), within 30 s: run captive (--run), so a server that died after
# its fork would leave nbdinfo waiting and the timeout would say so.
bad_start() {
    local pattern=$1; shift
    local rc=0
    timeout 30 nbdkit -f -U - "$PLUGIN" mlock=false "$@" \
        --run 'timeout 10 nbdinfo --size "$uri"; echo "RUN: the command ran (rc $?)"' \
        >"$WORK/bad.err" 2>&1 || rc=$?
    if [ "$rc" -eq 124 ] || grep -q '^RUN: .*(rc 124)' "$WORK/bad.err"; then
        fail "nbdkit $* hung (a client waited for a server that was gone):"; cat "$WORK/bad.err"
    elif [ "$rc" -ne 0 ] && ! grep -q '^RUN:' "$WORK/bad.err" &&
         grep -qE "$pattern" "$WORK/bad.err"; then
        pass "refused at start: $* ($(grep -m1 -E "$pattern" "$WORK/bad.err"))"
    else
        fail "nbdkit $* should fail at start saying /$pattern/ (rc $rc):"; cat "$WORK/bad.err"
    fi
}

# ---------------------------------------------------------------- page files

python3 - "$WORK/pages.img" <<'PY'
import random, struct, sys
rnd = random.Random(19)
words = b"alpha beta gamma delta select insert from where index table value key".split()
with open(sys.argv[1], "wb") as f:
    for i in range(4096):                       # 16 MiB of mixed pages
        k = i % 8
        if k == 0:
            p = bytes(4096)
        elif k == 1:
            p = struct.pack("<Q", (i * 2654435761) & (2**64 - 1)) * 512
        elif k == 6:
            p = rnd.randbytes(4096)
        else:
            b = bytearray()
            while len(b) < 4096:
                b += rnd.choice(words) + b" "
            p = bytes(b[:4096])
        f.write(p)
PY

# ------------------------------------------------------------ start-up errors

long256=$(printf 'n%.0s' $(seq 256))
bad_start "size=abc: disksize: 'abc' is not a size"  size=abc
bad_start "size=-1: disksize: '-1' is not a size"   size=-1
bad_start "disksize: '99999999999999999999' is not a size" size=99999999999999999999
bad_start "size=1Mx: disksize: '1Mx' is not a size" size=1Mx
bad_start 'size=0: disksize: must be more than 0' size=0
bad_start 'at most 8796093022208 bytes'          size=8796093026304
bad_start 'must give the disk size'              algorithm=lz4
bad_start "unknown parameter 'foo'"              size=1M foo=bar
bad_start "level=abc: algorithm_params: bad level 'abc'" size=1M level=abc
bad_start "level=1e3: algorithm_params: bad level '1e3'" size=1M level=1e3
bad_start "level=99999999999: algorithm_params: bad level" size=1M level=99999999999
bad_start "level -5 is outside"                  size=1M level=-5
bad_start "group_pages=3: group_pages: '3': write 1 \(off\), 2, 4, 8 or auto" size=1M group_pages=3
bad_start "group_pages=-1: group_pages: '-1': write 1 \(off\), 2, 4, 8 or auto" size=1M group_pages=-1
bad_start 'group_pages=4294967304: group_pages: .* or auto' size=1M group_pages=4294967304
bad_start 'group_pages=abc: group_pages: .* or auto' size=1M group_pages=abc
bad_start "dedup=2: dedup: '2': give 0 \(off\), 1 \(on\) or auto" size=1M dedup=2
bad_start "dedup=: dedup: '': give 0 \(off\), 1 \(on\) or auto" size=1M dedup=
bad_start "unknown algorithm 'bogus'"            size=1M algorithm=bogus
bad_start "unknown algorithm 'zstd\(level=abc\)'" size=1M 'algorithm=zstd(level=abc)'
bad_start "unknown allocator 'bogus'"            size=1M allocator=bogus
bad_start "mem_limit=abc: mem_limit: 'abc' is not a size" size=1M mem_limit=abc
bad_start "mem_limit=-1: mem_limit: '-1' is not a size" size=1M mem_limit=-1
bad_start 'nonexistent: No such file'            size=1M backing_dev=/nonexistent
bad_start 'boolean'                              size=1M mlock=maybe
bad_start 'max_clones=abc: not a whole number'   export=a:1M max_clones=abc
bad_start 'max_clones.*range'                    export=a:1M max_clones=4294967296
bad_start 'max_clones needs a pool'              size=1M max_clones=1
bad_start "not '.' or '..'"                      export=..:1M
bad_start "not '.' or '..'"                      export=.:1M
bad_start 'the name must be'                     export=a/b:1M
bad_start 'the name must be'                     "export=a b:1M"
bad_start 'the name must be'                     "export=$long256:1M"
bad_start "'@' is for clones"                    export=a@b:1M
bad_start 'the name must be'                     export=:1M
bad_start 'negative'                             export=a:-1
bad_start 'exceeds maximum'                      export=a:99999999999999999999
bad_start 'export of that name'                  export=a:1M export=a:2M
bad_start 'more than a pool'                     export=a:5T export=b:5T
bad_start 'has no size'                          export=a

# ------------------------------------------------------------ control=DIR

if $HAVE_FUSE; then
    # finding 4: a missing DIR hung nbdkit --run, saying "no such attribute"
    bad_start 'control=/nonexistent: No such file or directory' size=1M control=/nonexistent
    check "... and never 'no such attribute'" eval "! grep -q 'no such attribute' '$WORK/bad.err'"
    bad_start 'control=/nonexistent: No such file or directory' export=a:1M control=/nonexistent
    : >"$WORK/file"
    bad_start "control=$WORK/file: not a directory" size=1M control="$WORK/file"

    # finding 8: a DIR where `uzram mount` serves a disk is refused, and
    # that disk keeps its data
    if [ "$(id -u)" = 0 ] && [ -x "$UZRAM" ] && "$UZRAM" mount --help >/dev/null 2>&1; then
        mkdir "$WORK/m"
        MOUNTS+=("$WORK/m")
        timeout 30 "$UZRAM" mount "$WORK/m" --size 16M
        timeout 60 dd if="$WORK/pages.img" of="$WORK/m/disk" bs=1M conv=notrunc status=none
        bad_start "control=$WORK/m: a uzram is already mounted there" size=1M control="$WORK/m"
        bad_start "control=$WORK/m: a uzram is already mounted there" export=a:1M control="$WORK/m"
        check "... the uzram mount is still there" grep -q " $WORK/m fuse.uzram " /proc/self/mounts
        check "... and its disk reads back identical (cmp)" timeout 60 cmp "$WORK/pages.img" "$WORK/m/disk"
        timeout 30 "$UZRAM" umount "$WORK/m"
    else
        echo "skip - control=DIR over a uzram mount: needs root and uzram with FUSE"
    fi

    # a DIR where another server's control mount is: refused, and that
    # server still serves its files and its data
    mkdir "$WORK/ctl"
    MOUNTS+=("$WORK/ctl")
    start_server first size=16M control="$WORK/ctl" "${MLOCK[@]}"
    SOCK=$WORK/first.sock
    timeout 60 nbdcopy "$WORK/pages.img" "$(uri "")"
    bad_start "control=$WORK/ctl: a uzram is already mounted there" size=1M control="$WORK/ctl"
    check "... the first server is alive" alive first
    check "... its control files still answer (disksize)" \
        test "$(timeout 10 cat "$WORK/ctl/disksize")" = $((16 * M))
    rm -f "$WORK/first.out"
    timeout 60 nbdcopy "$(uri "")" "$WORK/first.out"
    check "... its export reads back identical (cmp)" cmp "$WORK/first.out" "$WORK/pages.img"
    stop_server first
    for _ in $(seq 100); do grep -q " $WORK/ctl " /proc/self/mounts || break; sleep 0.1; done
    check "... and its mount is gone once it exits" eval "! grep -q ' $WORK/ctl ' /proc/self/mounts"

    # a failure after the mount (get_ready) and before serving: the
    # socket's directory does not exist.  nbdkit exits, nothing stays mounted.
    rc=0
    timeout 30 nbdkit -f -U "$WORK/nodir/s.sock" "$PLUGIN" size=1M mlock=false \
        control="$WORK/ctl" >"$WORK/gap.err" 2>&1 || rc=$?
    check "a socket that cannot be bound ends nbdkit (rc $rc, not a hang)" \
        eval "[ $rc -ne 0 ] && [ $rc -ne 124 ]"
    for _ in $(seq 100); do grep -q " $WORK/ctl " /proc/self/mounts || break; sleep 0.1; done
    check "... and leaves control=DIR unmounted" eval "! grep -q ' $WORK/ctl ' /proc/self/mounts"
    check "... DIR is an empty directory again" test -z "$(timeout 10 ls -A "$WORK/ctl")"

    # a good control=DIR under --run: its files answer while the command runs
    rc=0
    timeout 30 nbdkit -f -U - "$PLUGIN" size=3M mlock=false control="$WORK/ctl" \
        --run "timeout 10 nbdinfo --size \"\$uri\" && timeout 10 cat '$WORK/ctl/disksize'" \
        >"$WORK/run.out" 2>&1 || rc=$?
    check "control=DIR under --run serves (rc $rc): $(tr '\n' ' ' <"$WORK/run.out")" \
        test "$rc" = 0 -a "$(sort -u "$WORK/run.out")" = $((3 * M))
else
    echo "skip - control=DIR cases: no FUSE (plugin built without it, no /dev/fuse or no fusermount3)"
fi

# ------------------------------------------------------------ size=8T

start_server big size=8T "${MLOCK[@]}"
SOCK=$WORK/big.sock
check "size=8T serves: nbdinfo --size 8796093022208" test "$(timeout 30 nbdinfo --size "$(uri "")")" = 8796093022208
T=8796093022208
check "size=8T: the last page written and read back (qemu-io)" \
    qio "" "write -P 0x5a $((T - 4096)) 4096" "read -P 0x5a $((T - 4096)) 4096" "read -P 0 0 4096"
check "size=8T: a write past the end is refused" \
    eval "! qemu-io -f raw '$(uri "")' -c 'write -P 1 $T 4096' 2>&1 | grep -q '^wrote'"
check "size=8T: the server survives it" alive big
check "size=8T: the last page still holds its bytes" qio "" "read -P 0x5a $((T - 4096)) 4096"
stop_server big

# ------------------------------------------------------------ hostile names

# raw_go NAME_PY : NBD_OPT_GO for the export named by the Python bytes
# expression NAME_PY, from a client of our own (any bytes, any length).
# Prints "ok" or "error 0x8000000N: message"; exit 0 when the server
# answered at all (it may also drop a connection that breaks the protocol:
# "closed").
cat >"$WORK/raw_go.py" <<'PY'
import socket, struct, sys
sock_path, name = sys.argv[1], eval(sys.argv[2])
IHAVEOPT = 0x49484156454F5054
REPLY = 0x3e889045565a9
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sock_path)
def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
try:
    magic, opt, flags = struct.unpack(">QQH", recv(18))
    assert magic == 0x4e42444d41474943 and opt == IHAVEOPT
    s.sendall(struct.pack(">I", 3))                 # fixed newstyle, no zeroes
    data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, len(data)) + data)   # NBD_OPT_GO
    while True:
        m, o, t, l = struct.unpack(">QIII", recv(20))
        body = recv(l)
        if t == 1:                                  # NBD_REP_ACK
            print("ok"); break
        if t & 0x80000000:
            print("error 0x%x: %s" % (t, body.decode("utf-8", "replace"))); break
    s.sendall(struct.pack(">QII", IHAVEOPT, 2, 0))  # NBD_OPT_ABORT
except (EOFError, ConnectionError):
    print("closed")
PY
raw_go() { timeout 30 python3 "$WORK/raw_go.py" "$SOCK" "$1"; }

# refused_raw WHAT NAME_PY [LOG_PATTERN] : the raw client is refused, the
# server lives, and the log says LOG_PATTERN (grep -E) when given.
refused_raw() {
    local what=$1 name=$2 pattern=${3:-} out
    out=$(raw_go "$name" 2>&1) || out="client failed: $out"
    if [[ "$out" != error* && "$out" != closed ]]; then
        fail "name $what: not refused ($out)"; return
    fi
    if ! alive pool; then fail "name $what: the server died"; return; fi
    if [ -n "$pattern" ] && ! grep -qE "$pattern" "$WORK/pool.err"; then
        fail "name $what: refused ($out) but the log does not say /$pattern/"; return
    fi
    pass "name $what: refused (${out:0:60}), the server lives"
}

start_server pool export=a:16M export=b:1M max_clones=2 "${MLOCK[@]}"
SOCK=$WORK/pool.sock
timeout 60 nbdcopy "$WORK/pages.img" "$(uri a)"
check "qemu-io: 4 KiB of 0x42 into export b" qio b "write -P 0x42 0 4096"
check "the raw client reaches export a" test "$(raw_go "b'a'")" = ok

refused_raw "'nope'"              "b'nope'"                "no export 'nope'"
refused_raw "300 bytes"           "b'x' * 300"             "no export 'x{64}\.\.\.'"
refused_raw "4096 bytes"          "b'y' * 4096"            "no export 'y{64}\.\.\.'"
refused_raw "5000 bytes (over NBD's 4096)" "b'z' * 5000"
refused_raw "'a/b'"               "b'a/b'"                 "no export 'a/b'"
refused_raw "'/a'"                "b'/a'"                  "no export '/a'"
refused_raw "'../a'"              "b'../a'"                "no export '\.\./a'"
refused_raw "'..'"                "b'..'"                  "no export '\.\.'"
refused_raw "'.'"                 "b'.'"                   "no export '\.'"
refused_raw "'a@..' (a clone named ..)" "b'a@..'"          "no export 'a@\.\.'"
refused_raw "'a@.'"               "b'a@.'"                 "no export 'a@\.'"
refused_raw "'a', a NUL, 'b'"     "b'a\\x00b'"
refused_raw "a newline (log injection)" \
    "b'a\\nuzram: export a@evil made: device 9'"           "no export 'a\?uzram: export a@evil"
# (nbdkit's own -v debug lines quote the name raw: those are nbdkit's)
check "... the plugin's message keeps it on one line, the newline shown as '?'" \
    grep -q "error: uzram: no export 'a?uzram: export a@evil made: device 9'\$" "$WORK/pool.err"
refused_raw "invalid UTF-8"       "b'\\xff\\xfe\\x80'"
refused_raw "'a b' (a blank)"     "b'a b'"                 "no export 'a b'"
refused_raw "'a@'"                "b'a@'"                  "no export 'a@'"
refused_raw "'@a'"                "b'@a'"                  "no export '@a'"
refused_raw "'a@@x'"              "b'a@@x'"                "no export 'a@@x'"
refused_raw "'zz@x' (no source)"  "b'zz@x'"                "no export 'zz@x', and no export 'zz' to clone"
refused_raw "'a@' + 256 bytes (a part too long)" "b'a@' + b'q' * 256" "no export 'a@q{62}\.\.\.'"
refused_raw "'a@x/y'"             "b'a@x/y'"               "no export 'a@x/y'"

# clones: two may be made (max_clones=2), the third is refused
check "clone a@c1 made (raw client: ok)" test "$(raw_go "b'a@c1'")" = ok
check "clone a@c1@d made (a clone of a clone)" test "$(raw_go "b'a@c1@d'")" = ok
refused_raw "'a@c3' past max_clones=2" "b'a@c3'"           "no more clones \(max_clones=2"
refused_raw "'b@c4' past max_clones=2" "b'b@c4'"           "no more clones \(max_clones=2"
check "a clone made already is still served (a@c1)" test "$(raw_go "b'a@c1'")" = ok

# what was written reads back, through every surviving path
rm -f "$WORK/a.out" "$WORK/c1.out"
timeout 60 nbdcopy "$(uri a)" "$WORK/a.out"
check "export a reads back identical after every refusal (cmp)" cmp "$WORK/a.out" "$WORK/pages.img"
timeout 60 nbdcopy "$(uri a@c1)" "$WORK/c1.out"
check "clone a@c1 holds a's pages (cmp)" cmp "$WORK/c1.out" "$WORK/pages.img"
check "export b still holds its 0x42 page (qemu-io)" qio b "read -P 0x42 0 4096" "read -P 0 4096 4096"
check "nbdinfo --list still answers, a, b and the 2 clones" \
    test "$(timeout 30 nbdinfo --list --json "$(uri "")" | grep -c '"export-name"')" = 4
stop_server pool

# single-device mode: any name reaches the one device (documented), and
# hostile ones do not hurt it
start_server one size=4M "${MLOCK[@]}"
SOCK=$WORK/one.sock
check "single device: qemu-io writes 0x24" qio "" "write -P 0x24 0 65536"
for n in "b'..'" "b'a\\x00b'" "b'x' * 4096" "b'z' * 5000" "b'\\xff'"; do
    out=$(raw_go "$n" 2>&1) || out="client failed: $out"
    check "single device: name $n answered ($out), the server lives" alive one
done
check "single device: the data reads back (qemu-io)" qio "" "read -P 0x24 0 65536"
stop_server one

echo
if [ "$FAILED" -ne 0 ]; then
    echo "$FAILED check(s) failed"
    exit 1
fi
echo "all NBD bad-input checks passed"
