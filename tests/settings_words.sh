#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# tests/settings_words.sh - every frontend takes the same words for a
# setting, because every one parses it with the attribute table
# (uzram_config_set, src/attr.c): for group_pages, dedup and the
# algorithm, the attribute file of a mount (the library's own parser),
# `uzram mount --OPTION`, the nbdkit plugin's KEY=, `uzram bench --OPTION`
# and uzram.conf (group-pages, read by the generator) accept exactly the
# words the attribute accepts and refuse the others, each refusal naming
# the attribute.  A word a frontend takes is also seen through it: the
# mount's attribute shows it, the plugin serves, bench verifies its pages.
#
# Run by ctest (label "system"); by hand:
#   UZ_BUILD=build bash tests/settings_words.sh
# Exit 77 = skipped (FUSE, nbdkit or nbdinfo missing).
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
UZRAM=$UZ_BUILD/uzram
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so
GEN=$UZ_BUILD/uzram-generator
. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount nbdkit nbdinfo timeout
[ -f "$PLUGIN" ] || skip "no $PLUGIN (nbdkit's plugin headers missing at build time)"

fuse_setup settings-words
ATTR=$WORK/attr             # a mount whose attribute files are the reference
mkdir -p "$ATTR"
cleanup_extra() { stop_uzram "$ATTR" "$WORK/attr.pid"; }
"$UZRAM" mount "$ATTR" --pidfile "$WORK/attr.pid"
dd if=/dev/urandom of="$WORK/pages" bs=4096 count=16 status=none

# attribute NAME WORD: 0 if the attribute file takes it (on a fresh,
# uninitialised device: reset first)
attribute() {
    printf '1\n' > "$ATTR/reset"
    ( printf '%s\n' "$2" > "$ATTR/$1" ) 2>"$WORK/attr.err"
}

# The frontends, each: 0 if it takes WORD for the setting, else not 0 with
# its message in $WORK/err.  OPT is the command line's name, KEY the
# plugin's, NAME the attribute's.
via_mount() {   # OPT WORD NAME
    local d=$WORK/m rc=0
    mkdir -p "$d"
    timeout 30 "$UZRAM" mount "$d" --size 16M "--$1" "$2" --pidfile "$WORK/m.pid" \
        >/dev/null 2>"$WORK/err" || rc=$?
    if [ "$rc" = 0 ]; then
        [ -r "$d/$3" ] || { stop_uzram "$d" "$WORK/m.pid"; fail "mount --$1 $2: no $d/$3"; }
        stop_uzram "$d" "$WORK/m.pid"
    fi
    return "$rc"
}
via_plugin() {   # KEY WORD
    timeout 60 nbdkit -U - "$PLUGIN" size=1M "$1=$2" --run 'nbdinfo --size "$uri"' \
        >"$WORK/out" 2>"$WORK/err" || return 1
    [ "$(cat "$WORK/out")" = 1048576 ] || fail "plugin $1=$2 serves $(cat "$WORK/out") bytes"
}
via_bench() {   # OPT WORD
    timeout 120 "$UZRAM" bench "--$1" "$2" "$WORK/pages" >"$WORK/out" 2>"$WORK/err" || return 1
    grep -q ' yes$' "$WORK/out" || fail "bench --$1 $2 did not verify its pages: $(cat "$WORK/out")"
}
via_conf() {   # KEY WORD
    printf '[zram0]\nzram-size = 64\n%s = %s\n' "$1" "$2" > "$WORK/uzram.conf"
    rm -rf "$WORK/gen"; mkdir -p "$WORK/gen"
    UZRAM_RUNDIR=$WORK/run UZRAM_CONF=$WORK/uzram.conf "$GEN" "$WORK/gen" "$WORK/gen" "$WORK/gen" \
        2>"$WORK/err"
}

# check NAME WORD FRONTEND...: each frontend does what the attribute does
# with WORD; a refusal names the attribute, as the attribute's own does.
check() {
    local name=$1 word=$2; shift 2
    local want=0
    attribute "$name" "$word" || want=1
    local f got
    for f in "$@"; do
        got=0
        eval "$f" '"$word"' "$name" || got=1
        if [ "$got" != "$want" ]; then
            fail "$name '$word': the attribute $([ $want = 0 ] && echo takes || echo refuses) it," \
                 "$f $([ $got = 0 ] && echo takes || echo refuses) it: $(cat "$WORK/err")"
        fi
        if [ "$want" = 1 ] && ! grep -q "$name" "$WORK/err"; then
            fail "$name '$word': $f refuses it without naming $name: $(cat "$WORK/err")"
        fi
    done
    echo "ok - $name '$word': $([ $want = 0 ] && echo taken || echo refused) by the attribute and $*"
}

step "group_pages"
for w in 1 2 4 8 auto 0 3 16 x on ''; do
    check group_pages "$w" "via_mount group-pages" "via_plugin group_pages" \
        "via_bench group-pages" "via_conf group-pages"
done
step "dedup"
for w in 0 1 on off auto 2 yes ''; do
    check dedup "$w" "via_mount dedup" "via_plugin dedup" "via_bench dedup"
done
step "comp_algorithm"
for w in lz4 zstd bogus; do
    check comp_algorithm "$w" "via_mount algorithm" "via_plugin algorithm" "via_bench algorithm"
done
echo "settings_words: every frontend takes the attributes' words, and only those"
