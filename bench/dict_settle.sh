#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/dict_settle.sh - does a zstd dictionary pay for settling?  For
# each page file: `uzram bench --settle` (the default settling: groups of
# up to 8 pages) and `--settle-with 'type=idle group=1'` (zram's per-page
# recompression), each with no dictionary, with one trained on the same
# file (`uzram train`, the easy case) and with one trained on another
# file (the next one in the list, cyclically: the honest case).  Prints
# one line per file and mode: mem_used and footprint after settling, in
# MiB, and the median / p99 4 KiB random read of settled data, in us.
#
#     bench/dict_settle.sh build/uzram A.pages B.pages [C.pages ...]
#
# Dictionaries are written to $TMPDIR (default /tmp) and removed after.
set -euo pipefail
UZRAM=${1:?usage: dict_settle.sh UZRAM PAGEFILE PAGEFILE...}
shift
[ $# -ge 2 ] || { echo "give two page files or more (one trains for the other)" >&2; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dict_settle.XXXXXX")
trap 'rm -rf "$T"' EXIT
files=("$@")
for i in "${!files[@]}"; do
    "$UZRAM" train "${files[$i]}" -o "$T/$i.dict" >/dev/null
done
# JSON field of the settled line
field() { tr ',' '\n' | sed -n "s/^\"$1\":\([0-9.]*\)$/\1/p" | tail -1; }
one() {   # file mode dictpath|"" -> "mem foot med p99"
    local f=$1 mode=$2 d=$3 args=(--json)
    [ "$mode" = page ] && args+=(--settle-with "type=idle group=1") || args+=(--settle)
    [ -n "$d" ] && args+=(--algorithm-params "priority=1 dict=$d")
    local j
    j=$("$UZRAM" bench "${args[@]}" "$f" 2>/dev/null | grep '"phase":"settled"')
    printf "%.2f %.2f %.1f %.1f" "$(echo "$j" | field mem_used_bytes | awk '{print $1/1048576}')" \
        "$(echo "$j" | field settled_footprint_bytes | awk '{print $1/1048576}')" \
        "$(echo "$j" | field cold_read_us)" "$(echo "$j" | field cold_read_p99_us)"
}
printf "%-14s %-6s | %-25s | %-25s | %-25s\n" file mode "no dict: mem foot med p99" \
    "own dict" "other's dict"
n=${#files[@]}
for i in "${!files[@]}"; do
    o=$(( (i + 1) % n ))
    for mode in group page; do
        printf "%-14s %-6s | %-25s | %-25s | %-25s\n" "$(basename "${files[$i]}")" "$mode" \
            "$(one "${files[$i]}" $mode "")" "$(one "${files[$i]}" $mode "$T/$i.dict")" \
            "$(one "${files[$i]}" $mode "$T/$o.dict")"
    done
done
