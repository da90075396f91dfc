#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# tests/nbd_pool.sh - the nbdkit plugin's pool mode under real NBD clients.
#
# One nbdkit process serves several exports of one pool (export=NAME[:SIZE])
# and clones made on demand (max_clones=N, export name SRC@NAME):
#   - nbdinfo --list lists the exports with their sizes and descriptions
#   - two exports get different real pages (nbdcopy, multi-conn) and each
#     reads back its own, compared with cmp; the third reads as zeros
#   - the default export (empty name) is the first
#   - an unknown name is refused (nbdinfo, qemu-io), the log says why
#   - a clone (made by its first open, nbdinfo NAME) reads the source's
#     data and costs little memory; writing 10% of it (qemu-io write -P,
#     aligned and unaligned) leaves the source unchanged; qemu-img compare
#     and nbdcopy + cmp against the expected bytes; later writes to the
#     source do not show in the clone; a clone of a clone
#   - a clone is not made while its source has a client (refused after
#     the wait), and is made once the client is gone
#   - several clients asking for one new clone at once get one clone
#   - clones asked for while the source's clients come and go each hold
#     one client's whole writes, never half of them
#   - max_clones is a limit; malformed names are refused
#   - dedup=1: pages written to two exports are stored once (RSS)
#   - control=DIR on a pool: the pool's mount (zram-control, pool_stat,
#     zramN per device, no disks): figures after a copy, hot_remove of an
#     export's device EBUSY, a clone appears, hot_add makes no export
#   - bad pool parameters stop nbdkit at start with a clear message
#   - without export=, any export name still reaches the one device
#
# Run by ctest (label "system"); by hand:
#   UZ_BUILD=build UZ_CORPUS=../shared/corpus bash tests/nbd_pool.sh
# Exit 77 = skipped (a client tool or the plugin is missing).
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
UZ_CORPUS=${UZ_CORPUS:-}
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so

skip() { echo "SKIP: $*"; exit 77; }
for tool in nbdkit nbdinfo nbdcopy qemu-io qemu-img cmp python3; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (packages nbdkit, libnbd-bin, qemu-utils, python3)"
done
[ -f "$PLUGIN" ] || skip "$PLUGIN is not built (needs nbdkit-plugin-dev)"
nbdkit "$PLUGIN" --dump-plugin 2>/dev/null | grep -q '^uzram_exports=yes' \
    || skip "$PLUGIN has no pool mode"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/uz-nbdpool.XXXXXX")
SERVERS=()          # names of servers started, for the cleanup trap
QIO_PID=

# Kill every server and client this script started, remove the work
# directory.  Runs on every exit, failure or not.
cleanup() {
    local name pid
    if [ -n "$QIO_PID" ]; then kill "$QIO_PID" 2>/dev/null || true; fi
    for name in "${SERVERS[@]}"; do
        pid=$(cat "$WORK/$name.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    # a mount left by a dead server answers stat with ENOTCONN: detach it
    if grep -q " $WORK/ctl " /proc/self/mounts; then
        timeout 10 fusermount3 -u -z "$WORK/ctl" 2>/dev/null \
            || timeout 10 umount -l "$WORK/ctl" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

SOCK=$WORK/pool.sock
uri() { echo "nbd+unix:///$1?socket=$SOCK"; }      # uri EXPORT ("" = default)
. "$(dirname "$0")/lib/nbd_common.sh"

# start_server NAME PARAM... : nbdkit with the plugin in the foreground (in
# the background of this script, so that --log=stderr keeps its messages
# in $WORK/NAME.err) on $WORK/NAME.sock; waits until it serves.  -v for
# the plugin's debug messages (which say when a clone is made), without
# one line per request.
start_server() {
    local name=$1; shift
    SERVERS+=("$name")
    nbdkit -f -v -D nbdkit.backend.datapath=0 --log=stderr -U "$WORK/$name.sock" -P "$WORK/$name.pid" "$PLUGIN" "$@" \
        2>"$WORK/$name.err" &
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

# compare FILE URI : qemu-img compare, quiet unless they differ
compare() {
    local out
    out=$(qemu-img compare -f raw -F raw "$1" "$2" 2>&1) || { echo "$out"; return 1; }
}

# get EXPORT FILE : the whole export into FILE (nbdcopy, several connections)
get() { rm -f "$2"; timeout 120 nbdcopy "$(uri "$1")" "$2"; }

# size EXPORT : its size as nbdinfo reports it (opens it: NBD_OPT_INFO)
size() { nbdinfo --size "$(uri "$1")"; }

# refused EXPORT : a client asking for EXPORT is refused
refused() {
    ! timeout 30 nbdinfo "$(uri "$1")" >"$WORK/refused.out" 2>&1 &&
        ! timeout 30 qemu-io -f raw "$(uri "$1")" -c 'read 0 4096' >>"$WORK/refused.out" 2>&1 &&
        grep -qi 'not available\|No such\|busy\|space\|error' "$WORK/refused.out"
}

# logged PATTERN : the pool server's log says PATTERN (grep -E)
logged() { grep -qE "$1" "$WORK/pool.err"; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$(cat "$WORK/pool.pid")/status"; }

# ---------------------------------------------------------------- page files

# 64 MiB of real pages from a corpus file, or generated pages of the same
# kinds (zero, same-filled, text-like, random) when the corpus is absent.
make_pages() {   # make_pages OUT CORPUS_NAME SEED
    local out=$1 src=$UZ_CORPUS/$2.pages.zst
    if [ -n "$UZ_CORPUS" ] && [ -f "$src" ] && command -v zstd >/dev/null; then
        { zstd -dc "$src" || true; } | head -c $((64 * M)) >"$out"
    else
        python3 - "$out" "$3" <<'PY'
import random, struct, sys
out, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
words = b"alpha beta gamma delta select insert from where index table value key".split()
with open(out, "wb") as f:
    for i in range(16384):
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
                b += rnd.choice(words) + (struct.pack("<I", i) if rnd.random() < .3 else b" ")
            p = bytes(b[:4096])
            if k == 7:
                p = p[:2048] + bytes(2048)
        f.write(p)
PY
    fi
    [ "$(stat -c %s "$out")" -eq $((64 * M)) ] || { echo "FAIL - could not make $out"; exit 1; }
}
make_pages "$WORK/sqlite.img" sqlite 1
make_pages "$WORK/perl.img" perl 2
[ -n "$UZ_CORPUS" ] && [ -f "$UZ_CORPUS/sqlite.pages.zst" ] \
    && echo "page files: first 64 MiB of $UZ_CORPUS/{sqlite,perl}.pages.zst" \
    || echo "page files: generated (no corpus)"

# ---------------------------------------------------------------- the pool

# a: 64M, b: 96M, c: size= (32M); clones on demand, at most 4
start_server pool export=a:64M export=b:96M export=c size=32M algorithm=zstd max_clones=4 \
    "${MLOCK[@]}"

# list_exports : nbdinfo --list --json as "NAME<tab>SIZE<tab>DESCRIPTION" lines
list_exports() {
    nbdinfo --list --json "$(uri "")" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["exports"]:
    print("%s\t%d\t%s" % (e["export-name"], e["export-size"], e.get("description", "")))'
}
list_exports >"$WORK/list.txt"
printf 'a\t%s\tuzram device 0 of the pool\n' $((64 * M)) >"$WORK/list.want"
printf 'b\t%s\tuzram device 1 of the pool\n' $((96 * M)) >>"$WORK/list.want"
printf 'c\t%s\tuzram device 2 of the pool\n' $((32 * M)) >>"$WORK/list.want"
if cmp -s "$WORK/list.txt" "$WORK/list.want"; then
    pass "nbdinfo --list: a 64M, b 96M, c 32M (size=), devices 0-2"
else
    fail "nbdinfo --list: got / want:"; paste "$WORK/list.txt" "$WORK/list.want"
fi

# two exports, different data, each reads back its own
timeout 120 nbdcopy "$WORK/sqlite.img" "$(uri a)"
timeout 120 nbdcopy "$WORK/perl.img" "$(uri b)"
get a "$WORK/a.out"
check "export a reads back its own pages (cmp with the sqlite pages)" cmp "$WORK/a.out" "$WORK/sqlite.img"
get b "$WORK/b.out"
check "export b reads back its own pages (cmp with the perl pages)" \
    cmp <(head -c $((64 * M)) "$WORK/b.out") "$WORK/perl.img"
check "export b: the rest (32M) reads as zeros" \
    cmp <(tail -c +$((64 * M + 1)) "$WORK/b.out") <(head -c $((32 * M)) /dev/zero)
get c "$WORK/c.out"
check "export c, never written, reads as zeros" cmp "$WORK/c.out" <(head -c $((32 * M)) /dev/zero)
check "the two page files differ (the test means something)" \
    eval "! cmp -s '$WORK/sqlite.img' '$WORK/perl.img'"
check "qemu-img compare: export a = the sqlite pages" \
    compare "$WORK/sqlite.img" "$(uri a)"
rm -f "$WORK/b.out" "$WORK/c.out"

# the default export is the first
check "the default export has a's size" test "$(size "")" = $((64 * M))
get "" "$WORK/def.out"
check "the default export reads a's pages" cmp "$WORK/def.out" "$WORK/sqlite.img"
rm -f "$WORK/def.out"

# unknown names
check "unknown export 'nope' refused (nbdinfo, qemu-io)" refused nope
check "... with 'not available' for the client" grep -qi 'not available' "$WORK/refused.out"
check "... and \"no export 'nope'\" in the server's log" logged "no export 'nope'"
check "unknown export 'A' refused (names are exact)" refused A

# ---------------------------------------------------------------- clones

# a@c1: made by its first open (nbdinfo asks for its size)
rss0=$(rss_kib)
check "clone a@c1: first open makes it, size 64M" test "$(size a@c1)" = $((64 * M))
rss1=$(rss_kib)
check "clone a@c1 cost $((rss1 - rss0)) KiB of server RSS (< 4096)" test $((rss1 - rss0)) -lt 4096
check "the log says a@c1 is a clone of a" logged "export a@c1 made: device 3, a clone of a"
list_exports >"$WORK/list.txt"
check "nbdinfo --list: a@c1 listed, described as a clone of a" \
    grep -qxF "$(printf 'a@c1\t%s\tuzram device 3 of the pool, a clone of a' $((64 * M)))" "$WORK/list.txt"
get a@c1 "$WORK/c1.out"
check "clone a@c1 reads the source's pages (cmp)" cmp "$WORK/c1.out" "$WORK/sqlite.img"

# Write 10% of the clone: 16 runs of 100 pages (6.25 MiB of 64), every
# fourth one unaligned, with pattern 0x5a; the expected image is the source
# with the same bytes patched in.
cp "$WORK/sqlite.img" "$WORK/expect.img"
cmds=()
for i in $(seq 0 15); do
    off=$((i * 4 * M + (i % 4 == 3 ? 12345 : 0))); len=$((100 * 4096))
    cmds+=("write -P 0x5a $off $len")
    head -c "$len" /dev/zero | tr '\0' '\132' |
        dd of="$WORK/expect.img" bs=64K seek="$off" oflag=seek_bytes conv=notrunc status=none
done
check "qemu-io: 16 writes (10% of the clone's pages) with pattern 0x5a" qio a@c1 "${cmds[@]}"
check "qemu-io: the clone reads the pattern back" qio a@c1 "read -P 0x5a 0 409600" \
    "read -P 0x5a $((15 * 4 * M + 12345)) 409600"
check "qemu-img compare: clone a@c1 = source + the writes" \
    compare "$WORK/expect.img" "$(uri a@c1)"
get a@c1 "$WORK/c1.out"
check "nbdcopy: clone a@c1 = source + the writes (cmp)" cmp "$WORK/c1.out" "$WORK/expect.img"
get a "$WORK/a.out"
check "the source a is unchanged by the clone's writes (cmp)" cmp "$WORK/a.out" "$WORK/sqlite.img"
check "qemu-img compare: source a = the sqlite pages" \
    compare "$WORK/sqlite.img" "$(uri a)"

# writes to the source after the clone do not reach it
check "qemu-io: 1M of 0x77 into the source a at 40M" qio a "write -P 0x77 $((40 * M)) $M"
check "the clone still reads what it held (qemu-img compare)" \
    compare "$WORK/expect.img" "$(uri a@c1)"
check "the source reads its new bytes" qio a "read -P 0x77 $((40 * M)) $M"

# a clone of a clone holds the clone's bytes
check "clone of a clone a@c1@d: same bytes as a@c1" \
    compare "$WORK/expect.img" "$(uri a@c1@d)"
check "writing a@c1@d leaves a@c1 as it was" \
    eval "qio a@c1@d 'write -P 0x33 0 65536' && qio a@c1 'read -P 0x5a 0 65536'"
rm -f "$WORK/a.out" "$WORK/c1.out"

# no clone while the source has a client: a qemu-io session stays
# connected to b, fed through a fifo
mkfifo "$WORK/qio.in"
qemu-io -f raw "$(uri b)" <"$WORK/qio.in" >"$WORK/qio.out" 2>&1 &
QIO_PID=$!
exec 7>"$WORK/qio.in"
echo "write -P 0x44 $((80 * M)) 65536" >&7
for _ in $(seq 100); do grep -q 'wrote' "$WORK/qio.out" && break; sleep 0.1; done
t0=$SECONDS
check "clone b@busy refused while a client is connected to b" \
    eval "! timeout 30 nbdinfo '$(uri b@busy)' >'$WORK/refused.out' 2>&1"
check "... after waiting for it ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -ge 4
check "... and the log says b has a connection" logged "export 'b@busy': its source 'b' has 1 connection"
check "... and b@busy is not listed" eval "! list_exports | grep -q '^b@busy'"
echo "quit" >&7
exec 7>&-
wait "$QIO_PID" || true
QIO_PID=
check "the client's write to b went through" grep -q 'wrote 65536/65536' "$WORK/qio.out"
check "clone b@busy made once b's client is gone: it has b's new bytes" \
    qio b@busy "read -P 0x44 $((80 * M)) 65536"
get b@busy "$WORK/busy.out"
check "clone b@busy: the perl pages" cmp <(head -c $((64 * M)) "$WORK/busy.out") "$WORK/perl.img"
rm -f "$WORK/busy.out"

# four clients ask for one new clone at once: one clone, all served
pids=()
for i in 1 2 3 4; do
    nbdinfo --size "$(uri c@par)" >"$WORK/par.$i" 2>&1 & pids+=($!)
done
ok=0
for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
check "4 clients asking for c@par at once: all served ($ok)" test "$ok" = 4
check "... and c@par is one export" test "$(list_exports | cut -f1 | grep -cx 'c@par')" = 1

# max_clones=4 (a@c1, a@c1@d, b@busy, c@par): no fifth
check "a fifth clone a@c5 is refused (max_clones=4)" refused a@c5
check "... the log says so" logged "no more clones \(max_clones=4"
check "the clones made are still served" test "$(size a@c1)" = $((64 * M))

# malformed clone names
check "'a@' refused" refused 'a@'
check "'@x' refused" refused '@x'
check "'zz@x' refused (no source zz)" refused 'zz@x'
check "... the log names the missing source" logged "no export 'zz@x', and no export 'zz' to clone"
check "'a@b%2Fc' refused (a '/' in the name)" refused 'a@b%2Fc'
check "'a@b c' refused (a space)" refused 'a@b%20c'
check "the pool still serves a" qio a "read -P 0x77 $((40 * M)) $M"
stop_server pool

# Clones asked for while the source's clients come and go: a writer
# connects to s 24 times, each time writing one pattern over the whole
# 1 MiB (two requests 100 ms apart) and disconnecting, while clones of s are asked for
# at the same time.  Each clone made must hold one pattern throughout: a
# state between two clients, never one with a client's writes half done.
start_server race export=s:1M max_clones=12 "${MLOCK[@]}"
SOCK=$WORK/race.sock
qio s "write -P 1 0 1M" >/dev/null
(
    for k in $(seq 2 25); do
        qemu-io -f raw "$(uri s)" -c "write -P $k 0 512k" -c "sleep 100" \
            -c "write -P $k 512k 512k" >/dev/null 2>&1
    done
) &
WRITER=$!
made=0
for i in $(seq 1 12); do
    timeout 30 nbdinfo --size "$(uri s@r$i)" >/dev/null 2>&1 && made=$((made + 1))
    sleep 0.0$((RANDOM % 10))
done
wait "$WRITER"
torn=0
for i in $(seq 1 12); do
    rm -f "$WORK/r.out"
    timeout 60 nbdcopy "$(uri s@r$i)" "$WORK/r.out" 2>/dev/null || continue
    first=$(od -An -tu1 -N1 "$WORK/r.out" | tr -d ' ')
    if ! cmp -s "$WORK/r.out" <(head -c $M /dev/zero | tr '\0' "\\$(printf %o "$first")"); then
        torn=$((torn + 1)); echo "  clone s@r$i is torn (first byte $first)"
    fi
done
rm -f "$WORK/r.out"
check "clones asked for during 24 writer sessions: $made of 12 made" test "$made" -ge 1
check "... each holds one writer's whole state ($torn torn)" test "$torn" = 0
stop_server race
SOCK=$WORK/pool.sock

# one content index for the pool: with dedup=1 the same pages written to
# a second export are stored once (the server's RSS hardly grows), and
# both read back
start_server dd export=x:64M export=y:64M dedup=1 algorithm=lz4 "${MLOCK[@]}"
SOCK=$WORK/dd.sock
ddrss() { awk '/^VmRSS:/ {print $2}' "/proc/$(cat "$WORK/dd.pid")/status"; }
r0=$(ddrss)
timeout 120 nbdcopy "$WORK/sqlite.img" "$(uri x)"
r1=$(ddrss)
timeout 120 nbdcopy "$WORK/sqlite.img" "$(uri y)"
r2=$(ddrss)
# (RSS counts nbdkit's request buffers too: a few MiB whatever is stored)
check "dedup=1 across exports: y's copy grew the server by $((r2 - r1)) KiB, x's by $((r1 - r0))" \
    test $((2 * (r2 - r1))) -lt $((r1 - r0))
check "... x reads back" compare "$WORK/sqlite.img" "$(uri x)"
check "... y reads back" compare "$WORK/sqlite.img" "$(uri y)"
stop_server dd
SOCK=$WORK/pool.sock

# control=DIR on a pool: the pool's mount, without disks
if nbdkit "$PLUGIN" --dump-plugin 2>/dev/null | grep -q '^uzram_control=yes' &&
   [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
    mkdir "$WORK/ctl"
    start_server pctl export=a:16M export=b:8M max_clones=1 control="$WORK/ctl" "${MLOCK[@]}"
    SOCK=$WORK/pctl.sock
    tcat() { timeout 10 cat "$WORK/ctl/$1"; }
    check "control on a pool: zram-control, pool_stat, zram0 and zram1" \
        timeout 10 test -d "$WORK/ctl/zram-control" -a -f "$WORK/ctl/pool_stat" \
                       -a -d "$WORK/ctl/zram0" -a -d "$WORK/ctl/zram1" -a ! -e "$WORK/ctl/zram2"
    check "control: zram0 is a (16M), zram1 is b (8M)" \
        test "$(tcat zram0/disksize) $(tcat zram1/disksize)" = "$((16 * M)) $((8 * M))"
    check "control: no disk files (the disks are the exports)" timeout 10 test ! -e "$WORK/ctl/zram0/disk"
    timeout 60 nbdcopy <(head -c $((16 * M)) "$WORK/sqlite.img") "$(uri a)"
    read -r orig _ < <(tcat zram0/mm_stat || echo 0)
    check "control: zram0/mm_stat orig_data_size $orig after a copy to a" test "$orig" -gt 0
    read -r _ _ _ porig _ < <(tcat pool_stat || echo 0 0 0 0)
    check "control: pool_stat orig_data_size $porig" test "$porig" = "$orig"
    remove_busy() {
        ! timeout 10 bash -c "echo 0 >'$WORK/ctl/zram-control/hot_remove'" 2>"$WORK/busy.err" &&
            grep -qi busy "$WORK/busy.err"
    }
    check "control: hot_remove of an export's device is EBUSY" remove_busy
    check "control: a clone made over NBD (a@x) is zram2" \
        eval "nbdinfo --size '$(uri a@x)' >/dev/null && test \"\$(timeout 10 cat '$WORK/ctl/zram2/disksize')\" = $((16 * M))"
    check "control: hot_add makes zram3 (no export)" test "$(tcat zram-control/hot_add)" = 3
    check "... which is not listed" eval "! list_exports | cut -f1 | grep -q zram3"
    check "... and hot_remove removes it" timeout 10 sh -c "echo 3 >'$WORK/ctl/zram-control/hot_remove'"
    timeout 10 cat "$WORK/ctl/zram-control/hot_add" >/dev/null   # zram3 again, left for unload
    stop_server pctl
    check "control: DIR unmounted when nbdkit exits" eval "! grep -q ' $WORK/ctl ' /proc/self/mounts"
    check "control: nbdkit exited cleanly with a device no export holds" \
        eval "! grep -qiE 'removing|destroying|error' '$WORK/pctl.err'"
    SOCK=$WORK/pool.sock
else
    echo "skip - control=DIR on a pool: no FUSE"
fi

# clones off by default
start_server off export=a:1M "${MLOCK[@]}"
SOCK=$WORK/off.sock
check "max_clones=0 (default): a@x refused" refused a@x
check "... the log says clones are off" grep -q "clones are off" "$WORK/off.err"
stop_server off

# without export=, every name reaches the one device, as before
start_server one size=8M "${MLOCK[@]}"
SOCK=$WORK/one.sock
check "single device: qemu-io on export 'whatever' writes" qio whatever "write -P 0x21 0 4096"
check "single device: the default export reads it" qio "" "read -P 0x21 0 4096"
check "single device: nbdinfo --list lists the one default export" \
    test "$(list_exports | cut -f1,2)" = "$(printf '\t%s' $((8 * M)))"
stop_server one

# ------------------------------------------------------------ bad parameters

# bad_start PATTERN PARAM... : nbdkit must refuse to start, saying PATTERN.
bad_start() {
    local pattern=$1; shift
    local rc=0
    timeout 20 nbdkit -f -U "$WORK/bad.sock" "$PLUGIN" mlock=false "$@" >"$WORK/bad.err" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qiE "$pattern" "$WORK/bad.err"; then
        pass "refused: $* ($(head -1 "$WORK/bad.err"))"
    else
        fail "nbdkit $* should fail saying /$pattern/ (rc $rc):"; cat "$WORK/bad.err"
    fi
}
bad_start 'export of that name'     export=a:1M export=a:2M
bad_start "'@' is for clones"       export=a@b:1M
bad_start 'the name must be'        export=:1M
bad_start 'the name must be'        'export=a/b:1M'
bad_start 'has no size'             export=a
bad_start 'greater than 0'          export=a:0
bad_start 'xyz'                     export=a:xyz
bad_start 'max_clones needs a pool' size=1M max_clones=2
bad_start 'max_clones'              export=a:1M max_clones=-1
bad_start 'more than a pool'        export=a:5T export=b:5T
bad_start 'nope'                    export=a:1M algorithm=nope

echo
if [ "$FAILED" -ne 0 ]; then
    echo "$FAILED check(s) failed"
    exit 1
fi
echo "all NBD pool checks passed"
