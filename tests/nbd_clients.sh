#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# tests/nbd_clients.sh - the nbdkit plugin under real NBD clients.
#
# Starts nbdkit with build/nbdkit-uzram-plugin.so on unix sockets and drives
# it with nbdinfo, nbdcopy, qemu-io and qemu-img:
#   - capabilities and block sizes advertised (nbdinfo --can / --json)
#   - nbdcopy round trips of real page files (multi-conn), sha256 compared
#   - qemu-io patterns at aligned and unaligned offsets, FUA writes, flush
#   - qemu-img convert into the export and back, compared
#   - trim and write-zeroes read back as zeros, neighbours untouched
#   - extents (nbdinfo --map): holes for never-written, trimmed and
#     zero-filled ranges, data for written ones, runs coalesced
#   - mlock=true locks the server's memory, mlock=false does not
#   - control=DIR mounts the attribute files (if built with FUSE); lz4
#     with no level= is at level 4 (the plugin's default), a level given is kept
#   - recompress_policy= settles by itself (a short T), off is off
#   - bad parameters stop nbdkit at start with a clear message
#
# Run by ctest (label "system"); by hand:
#   UZ_BUILD=build UZ_CORPUS=../shared/corpus bash tests/nbd_clients.sh
# Exit 77 = skipped (a client tool or the plugin is missing).
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
UZ_CORPUS=${UZ_CORPUS:-}
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so

skip() { echo "SKIP: $*"; exit 77; }
for tool in nbdkit nbdinfo nbdcopy qemu-io qemu-img sha256sum cmp; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (packages nbdkit, libnbd-bin, qemu-utils)"
done
[ -f "$PLUGIN" ] || skip "$PLUGIN is not built (needs nbdkit-plugin-dev)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/uz-nbd.XXXXXX")
SERVERS=()          # names of servers started, for the cleanup trap

# Kill every server this script started, unmount what they left, remove
# the work directory.  Runs on every exit, failure or not.
cleanup() {
    local name pid
    for name in "${SERVERS[@]}"; do
        pid=$(cat "$WORK/$name.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
    # A mount left by a dead server answers stat with ENOTCONN, so do not
    # ask mountpoint(1): detach whatever is there.
    if grep -q " $WORK/ctl " /proc/self/mounts; then
        timeout 10 fusermount3 -u -z "$WORK/ctl" 2>/dev/null \
            || timeout 10 umount -l "$WORK/ctl" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

uri() { echo "nbd+unix:///?socket=$WORK/$1.sock"; }
. "$(dirname "$0")/lib/nbd_common.sh"

# start_server NAME PARAM... : start a daemonised nbdkit with the plugin on
# $WORK/NAME.sock and wait for its pid file.
start_server() {
    local name=$1; shift
    SERVERS+=("$name")
    nbdkit -U "$WORK/$name.sock" -P "$WORK/$name.pid" "$PLUGIN" "$@" 2>"$WORK/$name.err" \
        || { cat "$WORK/$name.err"; echo "FAIL - nbdkit $* did not start"; exit 1; }
    local deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ -s "$WORK/$name.pid" ] && timeout 5 nbdinfo --can connect "$(uri "$name")" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$WORK/$name.err"
    echo "FAIL - nbdkit $* is not serving"
    exit 1
}

# ---------------------------------------------------------------- page files

# 64 MiB of real pages from each corpus file, or generated pages of the same
# kinds (zero, same-filled, text-like, random) when the corpus is absent.
make_pages() {   # make_pages OUT CORPUS_NAME SEED
    local out=$1 src=$UZ_CORPUS/$2.pages.zst
    if [ -n "$UZ_CORPUS" ] && [ -f "$src" ] && command -v zstd >/dev/null; then
        { zstd -dc "$src" || true; } | head -c $((64 * M)) >"$out"
    else
        perl -e '
            srand($ARGV[0]);
            my @w = qw(alpha beta gamma delta select insert from where index
                       table value key hash array scalar 0 1 42 1024 NULL);
            for my $i (0 .. 16383) {
                my $k = $i % 8; my $p;
                if ($k == 0)    { $p = "\0" x 4096 }
                elsif ($k == 1) { $p = pack("Q", $i * 2654435761) x 512 }
                elsif ($k == 6) { $p = pack("C*", map { int rand 256 } 1 .. 4096) }
                else {
                    $p = "";
                    $p .= $w[int rand @w] . (rand() < .3 ? pack("V", $i) : " ")
                        while length($p) < 4096;
                    $p = substr($p, 0, 4096);
                    substr($p, 2048) = "\0" x 2048 if $k == 7;
                }
                print $p;
            }' "$3" >"$out"
    fi
    [ "$(stat -c %s "$out")" -eq $((64 * M)) ] || { echo "FAIL - could not make $out"; exit 1; }
}
make_pages "$WORK/sqlite.img" sqlite 1
make_pages "$WORK/perl.img" perl 2
[ -n "$UZ_CORPUS" ] && [ -f "$UZ_CORPUS/sqlite.pages.zst" ] \
    && echo "page files: first 64 MiB of $UZ_CORPUS/{sqlite,perl}.pages.zst" \
    || echo "page files: generated (no corpus)"

# ------------------------------------------------------------- capabilities

start_server main size=256M algorithm=zstd "${MLOCK[@]}"
U=$(uri main)

for cap in read write flush trim zero fast-zero fua multi-conn cache structured-reply; do
    check "nbdinfo --can $cap" nbdinfo --can "$cap" "$U"
done
check "not rotational" eval "! nbdinfo --is rotational '$U'"
nbdinfo --json "$U" >"$WORK/info.json"
jfield() { sed -n "s/^[[:space:]]*\"$1\": *\([^,]*\),*$/\1/p" "$WORK/info.json" | head -1; }
check "can_extents (base:allocation context)" grep -q '"base:allocation"' "$WORK/info.json"
for f in can_trim can_zero can_fast_zero can_fua can_multi_conn can_cache can_flush; do
    check "json $f true" test "$(jfield "$f")" = true
done
check "export-size 256M" test "$(jfield export-size)" = $((256 * M))
check "block_size_minimum 1" test "$(jfield block_size_minimum)" = 1
check "block_size_preferred 4096" test "$(jfield block_size_preferred)" = 4096
check "block_size_maximum 32M" test "$(jfield block_size_maximum)" = $((32 * M))

# ------------------------------------------------------------ nbdcopy

# round_trip FILE : nbdcopy FILE into the export (several connections),
# read the whole export back, compare checksums; the rest must be zeros
# (or what the previous round left there, which is smaller: 64 MiB too).
round_trip() {
    local f=$1 name; name=$(basename "$f")
    nbdcopy "$f" "$U"
    rm -f "$WORK/back.img"
    nbdcopy "$U" "$WORK/back.img"
    local want got
    want=$(sha256sum <"$f" | cut -d' ' -f1)
    got=$(head -c $((64 * M)) "$WORK/back.img" | sha256sum | cut -d' ' -f1)
    check "nbdcopy round trip $name (sha256 $want)" test "$want" = "$got"
    check "nbdcopy: rest of the export reads as zeros" \
        cmp -s <(tail -c +$((64 * M + 1)) "$WORK/back.img") <(head -c $((192 * M)) /dev/zero)
}
round_trip "$WORK/sqlite.img"
round_trip "$WORK/perl.img"          # overwrites every page of the first
rm -f "$WORK/back.img"
nbdcopy -C 1 --synchronous "$WORK/sqlite.img" "$U"
nbdcopy -C 1 --synchronous "$U" "$WORK/back.img"
check "nbdcopy single connection, synchronous" \
    cmp -s <(head -c $((64 * M)) "$WORK/back.img") "$WORK/sqlite.img"

# ------------------------------------------------------------ qemu-io

A=$((128 * M)); B=$((160 * M)); C=$((192 * M))
check "qemu-io aligned write/read 0x11 at 128M+64k" \
    qio main "write -P 0x11 $A 65536" "read -P 0x11 $A 65536" "read -P 0 $((A + 65536)) 4096"
check "qemu-io unaligned write/read 0xab at +12345 len 6789" \
    qio main "write -P 0xab $((B + 12345)) 6789" "read -P 0xab $((B + 12345)) 6789" \
             "read -P 0 $B 12345" "read -P 0 $((B + 12345 + 6789)) 8192"
check "qemu-io overlapping unaligned rewrite" \
    qio main "write -P 0xcd $((B + 12000)) 1000" "read -P 0xcd $((B + 12000)) 1000" \
             "read -P 0xab $((B + 13000)) $((12345 + 6789 - 13000))" "read -P 0 $B 12000"
check "qemu-io single bytes across a page boundary" \
    qio main "write -P 0x01 $((B + 4095)) 2" "read -P 0x01 $((B + 4095)) 2" \
             "read -P 0 $((B + 4094)) 1" "read -P 0 $((B + 4097)) 1"
check "qemu-io FUA write and flush" \
    qio main "write -f -P 0x77 $((A + M)) 131072" "flush" "read -P 0x77 $((A + M)) 131072"
check "qemu-io write at the last byte" \
    qio main "write -P 0x42 $((256 * M - 1)) 1" "read -P 0x42 $((256 * M - 1)) 1"
check "qemu-io write past the end is refused" \
    eval "! qio main 'write -P 0x42 $((256 * M - 1)) 2' >/dev/null"

# ------------------------------------------------------------ trim and zero

check "trim: aligned discard reads as zeros, neighbours kept" \
    qio main "write -P 0x5a $C $M" "discard $((C + 65536)) 131072" \
             "read -P 0 $((C + 65536)) 131072" "read -P 0x5a $C 65536" \
             "read -P 0x5a $((C + 196608)) $((M - 196608))"
check "trim: unaligned discard reads as zeros, neighbours kept" \
    qio main "write -P 0x5b $C $M" "discard $((C + 1000)) 300000" \
             "read -P 0 $((C + 1000)) 300000" "read -P 0x5b $C 1000" \
             "read -P 0x5b $((C + 301000)) $((M - 301000))"
check "zero: unaligned write-zeroes (with and without unmap)" \
    qio main "write -P 0x5c $C $M" "write -z $((C + 777)) 5000" "write -z -u $((C + 9000)) 70000" \
             "read -P 0x5c $C 777" "read -P 0 $((C + 777)) 5000" "read -P 0x5c $((C + 5777)) 3223" \
             "read -P 0 $((C + 9000)) 70000" "read -P 0x5c $((C + 79000)) $((M - 79000))"

# ------------------------------------------------------------ qemu-img

check "qemu-img convert file -> export" \
    qemu-img convert -n -f raw -O raw "$WORK/sqlite.img" "$U"
# the export's first 64 MiB, as qemu sees them
FIRST64='json:{"driver":"raw","size":'$((64 * M))',"file":{"driver":"nbd","path":"'$WORK/main.sock'"}}'
check "qemu-img compare file with the export" \
    eval "qemu-img compare -f raw '$WORK/sqlite.img' '$FIRST64' >/dev/null"
rm -f "$WORK/back.img"
qemu-img convert -f raw -O raw "$U" "$WORK/back.img"
check "qemu-img convert export -> file, compared" \
    cmp -s <(head -c $((64 * M)) "$WORK/back.img") "$WORK/sqlite.img"

# ------------------------------------------------------------ memory lock

pid=$(cat "$WORK/main.pid")
lck=$(awk '/^VmLck:/ {print $2}' "/proc/$pid/status")
if [ ${#MLOCK[@]} -eq 0 ]; then
    check "mlock=true (default): VmLck ${lck} kB > 0" test "$lck" -gt 0
fi
stop_server main

# ------------------------------------------------------------ extents

# A fresh 64 MiB export with a known layout:
#   8M +1M data; 20M +64k written as zeros (a zero page is a hole);
#   30M +1M data with [30M+256k, +256k) trimmed; 63M+100 +1 data (a byte).
start_server ext size=64M mlock=false
qio ext "write -P 0x5a $((8 * M)) $M" "write -P 0 $((20 * M)) 65536" \
        "write -P 0x6b $((30 * M)) $M" "discard $((30 * M + 262144)) 262144" \
        "write -P 0x01 $((63 * M + 100)) 1"
nbdinfo --map "$(uri ext)" | awk '{print $1, $2, $3}' >"$WORK/map.txt"
cat >"$WORK/map.want" <<EOF
0 $((8 * M)) 3
$((8 * M)) $M 0
$((9 * M)) $((21 * M)) 3
$((30 * M)) 262144 0
$((30 * M + 262144)) 262144 3
$((30 * M + 524288)) 524288 0
$((31 * M)) $((32 * M)) 3
$((63 * M)) 4096 0
$((63 * M + 4096)) $((M - 4096)) 3
EOF
if cmp -s "$WORK/map.txt" "$WORK/map.want"; then
    pass "nbdinfo --map: holes for never-written, zero-written and trimmed ranges, data elsewhere"
else
    fail "nbdinfo --map: got / want:"; paste "$WORK/map.txt" "$WORK/map.want"
fi
nbdinfo --map --totals "$(uri ext)" >"$WORK/totals.txt"
if [ "$(awk '$3 == 0 {print $1}' "$WORK/totals.txt")" = $((M + 786432 + 4096)) ]; then
    pass "nbdinfo --map --totals: data is 1M+768k+4k"
else
    fail "nbdinfo --map --totals: data should be 1M+768k+4k:"; cat "$WORK/totals.txt"
fi
pid=$(cat "$WORK/ext.pid")
check "mlock=false: VmLck 0" test "$(awk '/^VmLck:/ {print $2}' "/proc/$pid/status")" = 0
stop_server ext

# A disk larger than one block-status request (4 GiB): a run of holes
# longer than the request must be clipped, not sent whole (nbdkit 1.32
# aborts on an extent longer than the request).
G=$((1024 * M))
start_server big size=16G mlock=false
qio big "write -P 0x33 $((5 * G + 100)) 10000"
nbdinfo --map "$(uri big)" | awk '{print $1, $2, $3}' >"$WORK/map.txt"
printf '%s\n' "0 $((5 * G)) 3" "$((5 * G)) 12288 0" "$((5 * G + 12288)) $((11 * G - 12288)) 3" >"$WORK/map.want"
if cmp -s "$WORK/map.txt" "$WORK/map.want"; then
    pass "nbdinfo --map on a 16G export: holes longer than a request"
else
    fail "nbdinfo --map on a 16G export: got / want:"; paste "$WORK/map.txt" "$WORK/map.want"
fi
stop_server big

# ------------------------------------------------------------ control=DIR

if nbdkit "$PLUGIN" --dump-plugin 2>/dev/null | grep -q '^uzram_control=yes'; then
    if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
        mkdir "$WORK/ctl"
        start_server ctl size=128M algorithm=lz4 control="$WORK/ctl" "${MLOCK[@]}"
        # every look at the mount is bounded: a hung server must fail the
        # test, not hang it
        tcat() { timeout 10 cat "$WORK/ctl/$1"; }
        check "control: DIR is mounted" timeout 10 mountpoint -q "$WORK/ctl"
        check "control: disksize reads 134217728" test "$(tcat disksize)" = 134217728
        check "control: comp_algorithm shows [lz4]" grep -q '\[lz4\]' <(tcat comp_algorithm)
        check "control: lz4 with no level= is at the plugin's default, level 4" \
            grep -q '^priority=0 algo=lz4 level=4$' <(tcat algorithm_params)
        timeout 120 nbdcopy "$WORK/sqlite.img" "$(uri ctl)"
        read -r orig compr _ < <(tcat mm_stat || echo 0 0)
        check "control: mm_stat orig_data_size $orig > 0 after writes" test "$orig" -gt 0
        check "control: mm_stat compr_data_size $compr < orig" test "$compr" -lt "$orig"
        check "control: no disk file in DIR (attributes only)" timeout 10 test ! -e "$WORK/ctl/disk"
        check "control: compact is writable" timeout 10 sh -c "echo 1 >'$WORK/ctl/compact'"

        # zram's open-device rule: while an NBD client is connected, reset,
        # disksize and comp_algorithm are EBUSY and the client keeps its
        # data; once it is gone, reset works.  A qemu-io session stays
        # connected, fed commands through a fifo.
        mkfifo "$WORK/qio.in"
        qemu-io -f raw "$(uri ctl)" <"$WORK/qio.in" >"$WORK/qio.out" 2>&1 &
        QIO_PID=$!
        exec 7>"$WORK/qio.in"
        echo "write -P 0x5c 1M 1M" >&7
        for _ in $(seq 100); do grep -q 'wrote' "$WORK/qio.out" && break; sleep 0.1; done
        busy() {   # busy ATTR VALUE: the store fails with EBUSY
            ! timeout 10 bash -c "echo '$2' >'$WORK/ctl/$1'" 2>"$WORK/busy.err" &&
                grep -qi 'busy' "$WORK/busy.err"
        }
        check "control: reset is EBUSY while a client is connected" busy reset 1
        check "control: disksize is EBUSY while a client is connected" busy disksize 64M
        check "control: comp_algorithm is EBUSY while a client is connected" busy comp_algorithm zstd
        check "control: initstate still 1" test "$(tcat initstate)" = 1
        echo "read -P 0x5c 1M 1M" >&7
        echo "quit" >&7
        exec 7>&-
        wait "$QIO_PID" || true
        check "control: the connected client reads its data back after the refused reset" \
            eval "grep -q 'read 1048576/1048576' '$WORK/qio.out' && ! grep -qiE 'mismatch|error' '$WORK/qio.out'"
        for _ in $(seq 50); do
            timeout 10 sh -c "echo 1 >'$WORK/ctl/reset'" 2>/dev/null && break; sleep 0.1
        done
        check "control: reset works once the client is gone" test "$(tcat initstate)" = 0
        stop_server ctl
        check "control: DIR unmounted when nbdkit exits" eval "! timeout 10 mountpoint -q '$WORK/ctl'"

        # dedup=1: the same real pages written twice (two offsets, as two
        # VMs from one image) are stored once, and both copies read back
        mkdir "$WORK/ctl2"
        start_server dd size=256M algorithm=lz4 level=2 dedup=1 control="$WORK/ctl2" "${MLOCK[@]}"
        check "control: level=2 given is the level" \
            grep -q '^priority=0 algo=lz4 level=2$' <(timeout 10 cat "$WORK/ctl2/algorithm_params")
        timeout 120 nbdcopy "$WORK/sqlite.img" "$(uri dd)"
        timeout 120 qemu-img convert -n -f raw -O raw "$WORK/sqlite.img" \
            "json:{\"file.driver\":\"nbd\",\"file.path\":\"$WORK/dd.sock\",\"driver\":\"raw\",\"offset\":$((128 * M))}"
        nbdcopy "$(uri dd)" "$WORK/dd.img"
        check "dedup=1: the first copy reads back" cmp -s <(head -c $((64 * M)) "$WORK/dd.img") "$WORK/sqlite.img"
        check "dedup=1: the second copy reads back" \
            cmp -s <(tail -c +$((128 * M + 1)) "$WORK/dd.img" | head -c $((64 * M))) "$WORK/sqlite.img"
        read -r dpages dsaved _ < <(timeout 10 cat "$WORK/ctl2/dedup_stat")
        check "dedup=1: $dpages pages stored as references ($dsaved bytes saved)" \
            test "$dpages" -ge $((60 * M / 4096))
        check "dedup: the attribute reads 1" test "$(timeout 10 cat "$WORK/ctl2/dedup")" = 1
        stop_server dd
        rm -f "$WORK/dd.img"

        # recompress_policy=: the default is settling; a shorter T makes the
        # device settle by itself (no recompress written), and every page
        # reads back afterwards; off is shown as off
        mkdir "$WORK/ctl3"
        start_server st size=128M "recompress_policy=settle idle_secs=1 cpu=50" \
            control="$WORK/ctl3" "${MLOCK[@]}"
        check "recompress_policy: the attribute shows the setting" \
            grep -q '^settle idle_secs=1 .*cpu=50$' <(timeout 10 cat "$WORK/ctl3/recompress_policy")
        timeout 120 nbdcopy "$WORK/sqlite.img" "$(uri st)"
        read -r _ _ used0 _ < <(timeout 10 cat "$WORK/ctl3/mm_stat")
        settled=0
        for _ in $(seq 600); do     # up to 60 s; it takes a few at cpu=50
            settled=$(timeout 10 cat "$WORK/ctl3/debug_stat" | awk '{ for (i = 1; i < NF; i++) if ($i == "settle_pages:") print $(i + 1) }')
            [ "${settled:-0}" -ge $((60 * M / 4096)) ] && break
            sleep 0.1
        done
        read -r _ _ used1 _ < <(timeout 10 cat "$WORK/ctl3/mm_stat")
        check "recompress_policy: $settled pages settled by themselves" test "${settled:-0}" -ge $((60 * M / 4096))
        check "recompress_policy: mem_used $used0 -> $used1 bytes, less" test "$used1" -lt "$used0"
        nbdcopy "$(uri st)" "$WORK/st.img"
        check "recompress_policy: the settled pages read back" \
            cmp -s <(head -c $((64 * M)) "$WORK/st.img") "$WORK/sqlite.img"
        stop_server st
        rm -f "$WORK/st.img"
        mkdir "$WORK/ctl4"
        start_server off size=16M recompress_policy=off control="$WORK/ctl4" "${MLOCK[@]}"
        check "recompress_policy=off: the attribute shows off" \
            grep -qxE '0|off' <(timeout 10 cat "$WORK/ctl4/recompress_policy")
        stop_server off
    else
        echo "skip - control=DIR: /dev/fuse or fusermount3 missing"
    fi
else
    echo "skip - control=DIR: plugin built without FUSE"
    check "control=DIR refused without FUSE" \
        eval "! timeout 20 nbdkit -f -U '$WORK/bad.sock' '$PLUGIN' size=1M control='$WORK' 2>/dev/null"
fi

# ------------------------------------------------------------ bad parameters

# bad_start PATTERN PARAM... : nbdkit must refuse to start, saying PATTERN.
bad_start() {
    local pattern=$1; shift
    local rc=0
    timeout 20 nbdkit -f -U "$WORK/bad.sock" "$PLUGIN" "$@" >"$WORK/bad.err" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qiE "$pattern" "$WORK/bad.err"; then
        pass "refused: $* ($(head -1 "$WORK/bad.err"))"
    else
        fail "nbdkit $* should fail saying /$pattern/ (rc $rc):"; cat "$WORK/bad.err"
    fi
}
bad_start 'abc'                 size=abc
bad_start 'size'                algorithm=lz4
bad_start 'nope'                size=1G algorithm=nope
bad_start 'allocator|nope'      size=1G allocator=nope
bad_start 'level'               size=1G level=abc
bad_start 'mlock|maybe'         size=1G mlock=maybe
bad_start 'mem_limit|xyz'       size=1G mem_limit=xyz
bad_start 'recompress_policy'   size=1G recompress_policy=bogus
bad_start 'huge_threshold'      size=1G huge_threshold=lots
bad_start 'frobnicate'          size=1G frobnicate=1
bad_start 'size'                size=0
if nbdkit "$PLUGIN" --dump-plugin 2>/dev/null | grep -q '^uzram_control=yes'; then
    bad_start 'control.*nonexistent' size=1G mlock=false control="$WORK/nonexistent"
fi

echo
if [ "$FAILED" -ne 0 ]; then
    echo "$FAILED check(s) failed"
    exit 1
fi
echo "all NBD client checks passed"
