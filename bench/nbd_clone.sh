#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/nbd_clone.sh - what a clone costs over NBD: the plugin's pool mode
# (export=, max_clones=), one golden export of real pages and clones of it
# made by name (golden@cN), as a host serving VM disks would.
#
# Exact command (from the repository root, after building into build/):
#
#     bash bench/nbd_clone.sh
#
# Environment (all optional):
#     UZ_BUILD=build                  where nbdkit-uzram-plugin.so is
#     UZ_CORPUS=../shared/corpus      sqlite.pages.zst (golden) and
#                                     perl.pages.zst (what clones write)
#     MIB=96                          MiB of golden's pages (and export size)
#     CLONES=7                        clones made of golden
#     UZ_PARAMS="algorithm=zstd"      the plugin's other parameters
#     OUTDIR=/dev/shm                 where page files are staged (tmpfs)
#
# One server, one pass (no repeats: each step is one measurement):
#     nbdkit -f -U SOCK PLUGIN export=golden:MIB max_clones=CLONES UZ_PARAMS &
#     nbdcopy golden.pages golden            fill; VmRSS of the server
#     nbdinfo --size golden                  a plain open, timed (3 times)
#     nbdinfo --size golden@c1               the open that makes the clone,
#                                            timed; VmRSS after
#     nbdcopy 10% of perl's pages -> golden@c1   VmRSS after
#     nbdcopy golden -> file; cmp            the source is unchanged
#     golden@c2 .. golden@cCLONES            VmRSS with every clone made
# The clone time is the timed open minus the median plain open (the
# connection's own cost).  VmRSS (the server is mlocked: all it holds is
# resident) stands for the pool's footprint, which NBD does not show; it
# includes nbdkit's own buffers and threads.  The pool's own figures,
# without NBD: `uzram bench-pool`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
UZ_BUILD=${UZ_BUILD:-$ROOT/build}
UZ_CORPUS=${UZ_CORPUS:-$ROOT/../shared/corpus}
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so
MIB=${MIB:-96}
CLONES=${CLONES:-7}
read -r -a PARAMS <<<"${UZ_PARAMS:-algorithm=zstd}"
OUTDIR=${OUTDIR:-/dev/shm}

for tool in nbdkit nbdinfo nbdcopy zstd cmp; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
[ -f "$PLUGIN" ] || { echo "$PLUGIN is not built" >&2; exit 1; }

WORK=$(mktemp -d "$OUTDIR/uz-nbdclone.XXXXXX")
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID"; wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

M=$((1024 * 1024))
zstd -dc "$UZ_CORPUS/sqlite.pages.zst" | head -c $((MIB * M)) >"$WORK/golden.img" || true
zstd -dc "$UZ_CORPUS/perl.pages.zst" | head -c $((MIB * M / 10 / 4096 * 4096)) >"$WORK/write.img" || true
[ "$(stat -c %s "$WORK/golden.img")" -eq $((MIB * M)) ] ||
    { echo "sqlite.pages.zst has fewer than $MIB MiB" >&2; exit 1; }

SOCK=$WORK/pool.sock
uri() { echo "nbd+unix:///$1?socket=$SOCK"; }
nbdkit -f -U "$SOCK" "$PLUGIN" export=golden:${MIB}M max_clones="$CLONES" "${PARAMS[@]}" &
PID=$!
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }   # KiB
us() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(((t1 - t0) / 1000)); }  # µs

rss_idle=$(rss)
nbdcopy "$WORK/golden.img" "$(uri golden)"
rss_fill=$(rss)
plain=()
for _ in 1 2 3; do plain+=("$(us nbdinfo --size "$(uri golden)")"); done
plain_med=$(printf '%s\n' "${plain[@]}" | sort -n | sed -n 2p)
open_clone=$(us nbdinfo --size "$(uri golden@c1)")
rss_clone=$(rss)
nbdcopy "$WORK/write.img" "$(uri golden@c1)"
rss_write=$(rss)
write_kib=$(($(stat -c %s "$WORK/write.img") / 1024))
nbdcopy "$(uri golden)" "$WORK/back.img"
cmp -s "$WORK/back.img" "$WORK/golden.img" && same=yes || same=NO
rm -f "$WORK/back.img"
for i in $(seq 2 "$CLONES"); do nbdinfo --size "$(uri golden@c$i)" >/dev/null; done
rss_all=$(rss)

fill=$((rss_fill - rss_idle))
printf 'golden: %d MiB of sqlite pages, %s\n' "$MIB" "${PARAMS[*]}"
printf '%-44s %10s\n' "server VmRSS idle" "$rss_idle KiB"
printf '%-44s %10s\n' "after filling golden (+fill)" "$rss_fill KiB (+$fill)"
printf '%-44s %10s\n' "plain open (median of 3)" "$plain_med us"
printf '%-44s %10s\n' "open that makes golden@c1" "$open_clone us"
printf '%-44s %10s\n' "  the clone itself (difference)" "$((open_clone - plain_med)) us"
printf '%-44s %10s\n' "after the clone (+ / fill)" \
    "$rss_clone KiB (+$((rss_clone - rss_fill)), $(awk "BEGIN {printf \"%.2f%%\", 100 * ($rss_clone - $rss_fill) / $fill}"))"
printf '%-44s %10s\n' "after writing 10% of the clone (+)" "$rss_write KiB (+$((rss_write - rss_clone)))"
printf '%-44s %10s\n' "  bytes written (perl pages)" "$write_kib KiB"
printf '%-44s %10s\n' "golden unchanged (cmp)" "$same"
printf '%-44s %10s\n' "with $CLONES clones (/ fill)" \
    "$rss_all KiB ($(awk "BEGIN {printf \"%.3f\", ($rss_all - $rss_idle) / $fill}") x)"
