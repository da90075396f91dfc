#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/nbd_vs_memory.sh - the uzram nbdkit plugin against nbdkit's own
# compressed RAM disk (nbdkit-memory-plugin allocator=zstd), same page
# files, large sequential I/O (nbdcopy) and random 4 KiB I/O (nbd_randio,
# real pages), every byte read back and compared.
#
# Exact command (from the repository root, after building into build/):
#
#     bash bench/nbd_vs_memory.sh
#
# Environment (all optional):
#     UZ_BUILD=build                  where nbdkit-uzram-plugin.so is
#     UZ_CORPUS=../shared/corpus      page files are unpacked from here ...
#     FILES="a.pages b.pages"         ... unless given explicitly
#     REPEAT=5                        runs per server and setting; the runs
#                                     of the two servers are interleaved
#                                     (uzram first in odd runs, memory first
#                                     in even ones), each on a fresh server
#     OUTDIR=/dev/shm                 where the page files are staged and
#                                     reads land (tmpfs: no disk I/O in the
#                                     measured copies)
#     THREADS="default"               nbdkit -t values ("default" = none)
#     NBDCOPY_OPTS=""                 extra nbdcopy options for every copy
#     UZ_PARAMS="algorithm=zstd"      the uzram plugin's parameters (every
#                                     other one at its default); UZ_PARAMS=""
#                                     gives none: the plugin's defaults
#     RANDOM_IO=1                     0: the nbdcopy half only
#     DEPTH=1                         requests in flight in the random half
#     SETTLE=self                     how uzram is settled before RSS_settled
#                                     is taken (memory's at the same point):
#                                     self: by itself, as in production, with
#                                     recompress_policy="settle idle_secs=T"
#                                     (T=SETTLE_T, default 2 s, instead of the
#                                     default 120 s: only when changes, not
#                                     what; the CPU bound stays 5%); the bench
#                                     waits T, then until the server has used
#                                     no CPU for 3 s (at most SETTLE_MAX s)
#                                     and no control mount is there to cost
#                                     memory of its own (libfuse, its threads);
#                                     1: uzram gets control=DIR (a FUSE mount of
#                                     its attributes); after the sequential
#                                     read it is told `echo settle >
#                                     DIR/recompress` and `echo 1 >
#                                     DIR/compact`, then RSS_settled is
#                                     taken, with uzram's mem_used_total
#                                     (the mount costs about 0.6 MiB of RSS);
#                                     0: none
#     SETTLE_T=2  SETTLE_MAX=300
#
# For each page file, each nbdkit thread setting, each run and server:
#     nbdkit -f -U SOCK PLUGIN ... &          a fresh server
#     nbdcopy FILE nbd+unix://...             sequential write (file -> nbd)
#     VmRSS of the server                     memory after the write
#     nbdcopy nbd+unix://... OUT; cmp         sequential read, compared
#     (SETTLE) settled (above); VmRSS         memory settled
#     nbd_randio URI FILE read                random 4 KiB reads of every
#                                             page, in a seeded order, each
#                                             compared (what the copy wrote)
#     nbd_randio URI FILE write --shift n/2   random 4 KiB overwrites of every
#                                             page with another real page
#     nbd_randio URI FILE read --shift n/2    random reads again, compared
# The servers are:
#     uzram   nbdkit PLUGIN size=SIZE algorithm=zstd       (UZ_PARAMS)
#     memory  nbdkit memory SIZE allocator=zstd
# Each figure is given as min / median / max over the runs, and the ratio
# uzram / memory as the ratio of the medians and the range of the ratios
# of paired runs (run i of one against run i of the other).  Throughput:
# higher is better for uzram; RSS: lower is.
#
# nbd_randio (bench/nbd_randio.c) is built here with cc and libnbd's
# headers (libnbd-dev); without them the random half is skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
UZ_BUILD=${UZ_BUILD:-$ROOT/build}
UZ_CORPUS=${UZ_CORPUS:-$ROOT/../shared/corpus}
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so
REPEAT=${REPEAT:-5}
THREADS=${THREADS:-default}
RANDOM_IO=${RANDOM_IO:-1}
DEPTH=${DEPTH:-1}
SETTLE=${SETTLE:-self}
SETTLE_T=${SETTLE_T:-2}
SETTLE_MAX=${SETTLE_MAX:-300}
read -r -a COPY_OPTS <<<"${NBDCOPY_OPTS:-}"
read -r -a UZ_ARGS <<<"${UZ_PARAMS-algorithm=zstd}"

for tool in nbdkit nbdcopy nbdinfo cmp awk; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
[ -f "$PLUGIN" ] || { echo "$PLUGIN not built" >&2; exit 2; }

OUTDIR=${OUTDIR:-$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")}
WORK=$(mktemp -d "$OUTDIR/uz-bench-nbd.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if mountpoint -q "$WORK/ctl" 2>/dev/null; then
        fusermount3 -u "$WORK/ctl" 2>/dev/null || umount -l "$WORK/ctl" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

RANDIO=
if [ "$RANDOM_IO" = 1 ]; then
    if pkg-config --exists libnbd 2>/dev/null &&
       cc -std=c11 -O2 -Wall -Wextra -Werror "$ROOT/bench/nbd_randio.c" -o "$WORK/nbd_randio" \
          $(pkg-config --cflags --libs libnbd); then
        RANDIO=$WORK/nbd_randio
    else
        echo "(libnbd-dev is not installed: random I/O skipped)" >&2
    fi
fi

# The page files: FILES, or both corpus files unpacked to /tmp (kept there
# for the next run).
if [ -z "${FILES:-}" ]; then
    FILES=
    for c in sqlite perl; do
        out=/tmp/uzram-corpus-$c.pages
        if [ ! -s "$out" ]; then
            [ -f "$UZ_CORPUS/$c.pages.zst" ] || { echo "no $UZ_CORPUS/$c.pages.zst; set FILES=" >&2; exit 2; }
            zstd -q -dc "$UZ_CORPUS/$c.pages.zst" >"$out.tmp.$$" && mv "$out.tmp.$$" "$out"
        fi
        FILES="$FILES $out"
    done
fi

# Stage the page files in WORK (tmpfs by default) for the measured copies:
# on a disk, nbdcopy would read them back from the device in runs whose
# pages left the page cache, for both servers alike, and measure the disk.
STAGED=
for file in $FILES; do
    name=$(basename "$file")
    cp "$file" "$WORK/$name"
    STAGED="$STAGED $WORK/$name"
done

now() { date +%s.%N; }
# cpu_s PID : user+system CPU seconds the process has used so far
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
# self_s PID : CPU seconds of shell PID and its finished children (nbdcopy)
self_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"; }
# busy_s : CPU seconds all CPUs have spent busy (not idle or iowait)
busy_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
# rate BYTES T0 T1 : MB/s (10^6 bytes) over the interval
rate() { awk -v b="$1" -v a="$2" -v z="$3" 'BEGIN { printf "%.0f", b / (z - a) / 1e6 }'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# randio URI FILE MODE [ARGS] : the IOPS of one random pass (exits on a
# difference: the tool names the page)
randio() {
    local out
    out=$("$RANDIO" "$@" --depth "$DEPTH") || { echo "FAIL: nbd_randio $*" >&2; exit 1; }
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^iops=/) { sub(/iops=/, "", $i); print $i } }' <<<"$out"
}

# run_once KIND THREADS FILE : one fresh server, the whole sequence.
# Prints "seq_wr_MBps seq_rd_MBps rss_KiB rr1_iops rw_iops rr2_iops
# rss_end_KiB wr_MB_per_cpu_s other_cpus" (random fields 0 without
# nbd_randio; wr_MB_per_cpu_s: bytes written per second of the server's
# own CPU time; other_cpus: CPUs that processes other than this benchmark
# kept busy on average during the sequential write).
run_once() {
    local kind=$1 threads=$2 file=$3
    local bytes size pages sock=$WORK/sock uri targs=()
    bytes=$(stat -c %s "$file")
    size=$(( (bytes + 4095) / 4096 * 4096 ))
    pages=$(( bytes / 4096 ))
    uri="nbd+unix:///?socket=$sock"
    [ "$threads" = default ] || targs=(-t "$threads")
    rm -f "$sock"
    local cargs=()
    if [ "$SETTLE" = 1 ] && [ "$kind" = uzram ]; then
        mkdir -p "$WORK/ctl"
        cargs=(control="$WORK/ctl")
    elif [ "$SETTLE" = self ] && [ "$kind" = uzram ] && [[ " ${UZ_ARGS[*]} " != *" recompress_policy="* ]]; then
        cargs=("recompress_policy=settle idle_secs=$SETTLE_T")
    fi
    case $kind in
    uzram)  nbdkit -f -U "$sock" "${targs[@]}" "$PLUGIN" size="$size" "${UZ_ARGS[@]}" "${cargs[@]}" & ;;
    memory) nbdkit -f -U "$sock" "${targs[@]}" memory "$size" allocator=zstd & ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    nbdinfo --can connect "$uri" 2>/dev/null || sleep 0.5

    local t0 t1 t2 t3 c0 c1 b0 b1 rss rss_end rr1=0 rw=0 rr2=0 k0 k1 rss_settled used=0
    local me=$BASHPID
    c0=$(cpu_s "$SERVER_PID"); k0=$(self_s "$me"); b0=$(busy_s); t0=$(now)
    nbdcopy "${COPY_OPTS[@]}" "$file" "$uri"
    t1=$(now); b1=$(busy_s); c1=$(cpu_s "$SERVER_PID")
    k1=$(self_s "$me")
    rss=$(rss_kib "$SERVER_PID")
    rm -f "$WORK/out"
    t2=$(now)
    nbdcopy "${COPY_OPTS[@]}" "$uri" "$WORK/out"
    t3=$(now)
    if ! cmp -s -n "$bytes" "$WORK/out" "$file"; then
        echo "FAIL: $kind ($threads threads): data read back differs from $file" >&2
        exit 1
    fi
    rm -f "$WORK/out"
    if [ "$SETTLE" = 1 ] && [ "$kind" = uzram ]; then
        for _ in $(seq 100); do [ -e "$WORK/ctl/recompress" ] && break; sleep 0.05; done
        echo settle >"$WORK/ctl/recompress"
        echo 1 >"$WORK/ctl/compact"
        used=$(awk '{ print int($3 / 1024) }' "$WORK/ctl/mm_stat")
    fi
    if [ "$SETTLE" = self ] && [ "$kind" = uzram ]; then
        # settled by itself: T, then until 3 s pass without server CPU
        local c_prev c_now quiet=0 waited=0
        sleep "$SETTLE_T"
        c_prev=$(cpu_s "$SERVER_PID")
        while [ "$quiet" -lt 3 ] && [ "$waited" -lt "$SETTLE_MAX" ]; do
            sleep 1; waited=$((waited + 1))
            c_now=$(cpu_s "$SERVER_PID")
            if [ "$c_now" = "$c_prev" ]; then quiet=$((quiet + 1)); else quiet=0; fi
            c_prev=$c_now
        done
        [ "$quiet" -ge 3 ] || echo "warning: uzram still busy after ${SETTLE_MAX} s of settling" >&2
    fi
    rss_settled=$(rss_kib "$SERVER_PID")
    if [ -n "$RANDIO" ]; then
        rr1=$(randio "$uri" "$file" read --seed 1)
        rw=$(randio "$uri" "$file" write --shift $(( pages / 2 )) --seed 2)
        rr2=$(randio "$uri" "$file" read --shift $(( pages / 2 )) --seed 3)
    fi
    rss_end=$(rss_kib "$SERVER_PID")
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    # other CPUs: busy time not spent by the server or this shell's children
    local other
    other=$(awk -v a="$t0" -v b="$t1" -v bb="$(awk -v x="$b0" -v y="$b1" 'BEGIN { print y - x }')" \
                -v s="$(awk -v x="$c0" -v y="$c1" 'BEGIN { print y - x }')" \
                -v k="$(awk -v x="$k0" -v y="$k1" 'BEGIN { print y - x }')" \
                'BEGIN { o = (bb - s - k) / (b - a); printf "%.2f", o < 0 ? 0 : o }')
    echo "$(rate "$bytes" "$t0" "$t1") $(rate "$bytes" "$t2" "$t3") $rss $rr1 $rw $rr2 $rss_end" \
         "$(rate "$bytes" "$c0" "$c1") $other $rss_settled $used"
}

# stats N FILE : "min med max" of column N
stats() {
    awk -v n="$1" '{ print $n }' "$2" | sort -n |
        awk '{ v[NR] = $1 } END { printf "%s %s %s", v[1], v[int((NR + 1) / 2)], v[NR] }'
}
# pair N UZFILE MEMFILE : "min med max" of the per-run ratios of column N
pair() {
    paste -d' ' <(awk -v n="$1" '{ print $n }' "$2") <(awk -v n="$1" '{ print $n }' "$3") |
        awk '{ printf "%.3f\n", ($2 > 0 ? $1 / $2 : 0) }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", v[1], v[int((NR + 1) / 2)], v[NR] }'
}

read -r load1 _ </proc/loadavg
echo "load average before the run: $load1 (other CPU load makes every figure noisy)"
echo "nbdkit $(nbdkit --version | awk '{print $2}'), nbdcopy $(nbdcopy --version | awk 'NR==1 {print $2}'), $(nproc) CPUs, $REPEAT interleaved runs per server${NBDCOPY_OPTS:+, nbdcopy $NBDCOPY_OPTS}"
echo "uzram: ${UZ_ARGS[*]} (every other parameter at its default)   memory: allocator=zstd"
echo "seq: nbdcopy, MB/s (10^6 B/s); RSS: server VmRSS after the sequential write, MiB;"
echo "rand: 4 KiB requests of real pages, depth $DEPTH, IOPS (rd1: random reads of the copy,"
echo "wr: random overwrites of every page, rd2: random reads after them); every byte compared"
echo "figures: min / median / max;  x: uzram / memory, ratio of medians [paired runs min..max]"
fmt='%-14s %-7s %-8s | %-20s | %-20s | %5s [%s]\n'
printf "$fmt" file threads figure "uzram" "memory" "x" "paired"
names=(seq_wr seq_rd RSS rand_rd1 rand_wr rand_rd2 RSS_end "" "" RSS_settled)
for file in $STAGED; do
    for threads in $THREADS; do
        : >"$WORK/runs.uzram"; : >"$WORK/runs.memory"
        for r in $(seq "$REPEAT"); do
            if [ $(( r % 2 )) = 1 ]; then order="uzram memory"; else order="memory uzram"; fi
            for kind in $order; do
                run_once "$kind" "$threads" "$file" >>"$WORK/runs.$kind"
            done
        done
        name=$(basename "$file"); name=${name#uzram-corpus-}; name=${name%.pages}
        label="$name ($(( $(stat -c %s "$file") >> 20 ))M)"
        for i in 0 1 2 9 3 4 5 6; do
            [ -z "$RANDIO" ] && [ "$i" -ge 3 ] && [ "$i" -le 5 ] && continue
            [ "$SETTLE" != 0 ] || [ "$i" != 9 ] || continue
            n=$((i + 1))
            read -r umin umed umax <<<"$(stats "$n" "$WORK/runs.uzram")"
            read -r mmin mmed mmax <<<"$(stats "$n" "$WORK/runs.memory")"
            if [ "${names[$i]}" = RSS ] || [ "${names[$i]}" = RSS_end ] || [ "${names[$i]}" = RSS_settled ]; then
                mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
                umin=$(mib "$umin"); umed=$(mib "$umed"); umax=$(mib "$umax")
                mmin=$(mib "$mmin"); mmed=$(mib "$mmed"); mmax=$(mib "$mmax")
            fi
            printf "$fmt" "$label" "$threads" "${names[$i]}" "$umin / $umed / $umax" \
                "$mmin / $mmed / $mmax" "$(awk -v a="$umed" -v b="$mmed" 'BEGIN { printf "%.2f", a / b }')" \
                "$(pair "$n" "$WORK/runs.uzram" "$WORK/runs.memory" | awk '{ print $1 ".." $3 }')"
        done
        if [ "$SETTLE" = 1 ]; then
            echo "  uzram settled: mem_used_total $(stats 11 "$WORK/runs.uzram" | awk '{ printf "%.1f", $2 / 1024 }') MiB (median), RSS beyond it $(paste -d' ' <(awk '{ print $10 }' "$WORK/runs.uzram") <(awk '{ print $11 }' "$WORK/runs.uzram") | awk '{ print $1 - $2 }' | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1024 }') MiB"
        fi
        cw_u=$(stats 8 "$WORK/runs.uzram" | awk '{ print $2 }')
        cw_m=$(stats 8 "$WORK/runs.memory" | awk '{ print $2 }')
        echo "  write: MB per second of server CPU, medians: uzram $cw_u, memory $cw_m"
        other=$(cat "$WORK/runs.uzram" "$WORK/runs.memory" | awk '$9 > m { m = $9 } END { printf "%.2f", m }')
        if awk -v o="$other" 'BEGIN { exit !(o > 0.15) }'; then
            echo "  (warning: other processes kept up to $other CPUs busy during some of these writes)"
        fi
    done
done
