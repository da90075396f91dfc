#!/usr/bin/env bash
# bench/nbd_vs_memory.sh - the uzram nbdkit plugin against nbdkit's own
# compressed RAM disk (nbdkit-memory-plugin allocator=zstd), same page files.
#
# Exact command (from the repository root, after building into build/):
#
#     bash bench/nbd_vs_memory.sh
#
# Environment (all optional):
#     UZ_BUILD=build                  where nbdkit-uzram-plugin.so is
#     UZ_CORPUS=../shared/corpus      page files are unpacked from here ...
#     FILES="a.pages b.pages"         ... unless given explicitly
#     REPEAT=5                        fresh servers per configuration; the
#                                     median run is reported
#     OUTDIR=/dev/shm                 where the page files are staged and
#                                     reads land (tmpfs: no disk I/O in the
#                                     measured copies; writing the copy
#                                     costs the same for both servers)
#     THREADS="default 2"             nbdkit -t values ("default" = none)
#     NBDCOPY_OPTS=""                 extra nbdcopy options for every copy
#     UZ_PARAMS="algorithm=zstd level=3"   the uzram plugin's parameters
#
# For each page file, each nbdkit thread setting and each server:
#     nbdkit -f -U SOCK PLUGIN ... &      a fresh server
#     nbdcopy FILE nbd+unix://...         write throughput (file -> nbd)
#     VmRSS of the server                 memory after the write
#     nbdcopy nbd+unix://... OUT          read throughput (nbd -> file)
#     cmp OUT FILE                        any difference fails the run
# The servers are:
#     uzram   nbdkit PLUGIN size=SIZE algorithm=zstd level=3   (UZ_PARAMS)
#     memory  nbdkit memory SIZE allocator=zstd
# and the table gives MB/s (10^6 bytes/s), RSS in MiB, and uzram/memory
# ratios (throughput: higher is better for uzram; RSS: lower is better).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
UZ_BUILD=${UZ_BUILD:-$ROOT/build}
UZ_CORPUS=${UZ_CORPUS:-$ROOT/../shared/corpus}
PLUGIN=$UZ_BUILD/nbdkit-uzram-plugin.so
REPEAT=${REPEAT:-5}
THREADS=${THREADS:-"default 2"}
read -r -a COPY_OPTS <<<"${NBDCOPY_OPTS:-}"
read -r -a UZ_ARGS <<<"${UZ_PARAMS:-algorithm=zstd level=3}"

for tool in nbdkit nbdcopy cmp awk; do
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
    rm -rf "$WORK"
}
trap cleanup EXIT

# The page files: FILES, or both corpus files unpacked to /tmp (kept there
# for the next run).
if [ -z "${FILES:-}" ]; then
    FILES=
    for c in sqlite perl; do
        out=/tmp/uzram-corpus-$c.pages
        if [ ! -s "$out" ]; then
            [ -f "$UZ_CORPUS/$c.pages.zst" ] || { echo "no $UZ_CORPUS/$c.pages.zst; set FILES=" >&2; exit 2; }
            zstd -q -dc "$UZ_CORPUS/$c.pages.zst" >"$out.tmp" && mv "$out.tmp" "$out"
        fi
        FILES="$FILES $out"
    done
fi

# Stage the page files in WORK (tmpfs by default) for the measured copies.
# On a disk, nbdcopy reads them back from the device in every run whose
# pages left the page cache (it evicts the pages it read in itself, and
# the kernel's proactive reclaim takes idle ones): the writes then wait on
# the disk, for both servers alike, and measure the disk instead.
STAGED=
for file in $FILES; do
    name=$(basename "$file")
    cp "$file" "$WORK/$name"
    STAGED="$STAGED $WORK/$name"
done

now() { date +%s.%N; }
# cpu_s PID : user+system CPU seconds the process has used so far
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
# child_s PID : CPU seconds of shell PID's finished children (nbdcopy ...)
child_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($16 + $17) / hz }' "/proc/$1/stat"; }
# busy_s : CPU seconds all CPUs have spent busy (not idle or iowait)
busy_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
# rate BYTES T0 T1 : MB/s (10^6 bytes) over the interval
rate() { awk -v b="$1" -v a="$2" -v z="$3" 'BEGIN { printf "%.0f", b / (z - a) / 1e6 }'; }

# run_once KIND THREADS FILE : one fresh server, one write, one read.
# Prints "write_MBps read_MBps rss_KiB write_MB_per_cpu_s read_MB_per_cpu_s
# other_cpus" (MB per cpu s: bytes moved per second of the server's own CPU
# time; other_cpus: the CPUs that processes other than the server and
# nbdcopy kept busy on average during the write and the read, the larger of
# the two: another job on the machine makes that run's figures unreliable).
run_once() {
    local kind=$1 threads=$2 file=$3
    local bytes size sock=$WORK/sock uri targs=()
    bytes=$(stat -c %s "$file")
    size=$(( (bytes + 4095) / 4096 * 4096 ))
    uri="nbd+unix:///?socket=$sock"
    [ "$threads" = default ] || targs=(-t "$threads")
    rm -f "$sock"
    case $kind in
    uzram)  nbdkit -f -U "$sock" "${targs[@]}" "$PLUGIN" size="$size" "${UZ_ARGS[@]}" & ;;
    memory) nbdkit -f -U "$sock" "${targs[@]}" memory "$size" allocator=zstd & ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    nbdinfo --can connect "$uri" 2>/dev/null || sleep 0.5

    local t0 t1 t2 t3 c0 c1 c2 rss b0 b1 b2 b3 k0 k1 k2 k3 me=$BASHPID
    c0=$(cpu_s "$SERVER_PID"); k0=$(child_s "$me"); b0=$(busy_s); t0=$(now)
    nbdcopy "${COPY_OPTS[@]}" "$file" "$uri"
    t1=$(now); b1=$(busy_s); k1=$(child_s "$me"); c1=$(cpu_s "$SERVER_PID")
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
    rm -f "$WORK/out"
    k2=$(child_s "$me"); b2=$(busy_s); t2=$(now)
    nbdcopy "${COPY_OPTS[@]}" "$uri" "$WORK/out"
    t3=$(now); b3=$(busy_s); k3=$(child_s "$me"); c2=$(cpu_s "$SERVER_PID")
    if ! cmp -s -n "$bytes" "$WORK/out" "$file"; then
        echo "FAIL: $kind ($threads threads): data read back differs from $file" >&2
        exit 1
    fi
    rm -f "$WORK/out"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    echo "$(rate "$bytes" "$t0" "$t1") $(rate "$bytes" "$t2" "$t3") $rss" \
         "$(rate "$bytes" "$c0" "$c1") $(rate "$bytes" "$c1" "$c2")" \
         "$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" \
                -v bw="$(awk -v x="$b0" -v y="$b1" 'BEGIN { print y - x }')" \
                -v br="$(awk -v x="$b2" -v y="$b3" 'BEGIN { print y - x }')" \
                -v sw="$(awk -v x="$c0" -v y="$c1" 'BEGIN { print y - x }')" \
                -v sr="$(awk -v x="$c1" -v y="$c2" 'BEGIN { print y - x }')" \
                -v kw="$(awk -v x="$k0" -v y="$k1" 'BEGIN { print y - x }')" \
                -v kr="$(awk -v x="$k2" -v y="$k3" 'BEGIN { print y - x }')" \
                'BEGIN { ow = (bw - sw - kw) / (b - a); orr = (br - sr - kr) / (d - c);
                         o = ow > orr ? ow : orr; printf "%.2f", o < 0 ? 0 : o }')"
}

# col N : the median of column N of $WORK/runs.KIND lines on stdin
col() { awk -v n="$1" '{ print $n }' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

read -r load1 _ </proc/loadavg
echo "load average before the run: $load1 (other CPU load makes every figure noisy)"
echo "nbdkit $(nbdkit --version | awk '{print $2}'), nbdcopy $(nbdcopy --version | awk 'NR==1 {print $2}'), $(nproc) CPUs, median of $REPEAT runs${NBDCOPY_OPTS:+, nbdcopy $NBDCOPY_OPTS}"
echo "uzram: ${UZ_ARGS[*]}   memory: allocator=zstd"
echo "wr/rd: MB/s (10^6 B/s) through nbdcopy; RSS: server VmRSS after the write, MiB;"
echo "cpu wr/rd: MB moved per second of the server's CPU time; x: uzram / memory"
fmt='%-16s %-7s | %5s %5s %6s %6s %6s | %5s %5s %6s %6s %6s | %5s %5s %5s %5s %5s\n'
printf "$fmt" file threads "uz wr" rd RSS "cpu wr" rd "mem wr" rd RSS "cpu wr" rd "x wr" rd RSS "cpu wr" rd
for file in $STAGED; do
    for threads in $THREADS; do
        for kind in uzram memory; do
            : >"$WORK/runs.$kind"
            for _ in $(seq "$REPEAT"); do
                run_once "$kind" "$threads" "$file" >>"$WORK/runs.$kind"
            done
        done
        u=(); m=()
        for n in 1 2 3 4 5; do
            u+=("$(col "$n" <"$WORK/runs.uzram")")
            m+=("$(col "$n" <"$WORK/runs.memory")")
        done
        name=$(basename "$file"); name=${name#uzram-corpus-}; name=${name%.pages}
        printf "$fmt" "$name ($(( $(stat -c %s "$file") >> 20 ))M)" "$threads" \
            "${u[0]}" "${u[1]}" "$(awk -v k="${u[2]}" 'BEGIN { printf "%.1f", k / 1024 }')" "${u[3]}" "${u[4]}" \
            "${m[0]}" "${m[1]}" "$(awk -v k="${m[2]}" 'BEGIN { printf "%.1f", k / 1024 }')" "${m[3]}" "${m[4]}" \
            "$(ratio "${u[0]}" "${m[0]}")" "$(ratio "${u[1]}" "${m[1]}")" "$(ratio "${u[2]}" "${m[2]}")" \
            "$(ratio "${u[3]}" "${m[3]}")" "$(ratio "${u[4]}" "${m[4]}")"
        # the busiest run: col gives medians, so take the maximum here
        other=$(cat "$WORK/runs.uzram" "$WORK/runs.memory" | awk '$6 > m { m = $6 } END { printf "%.2f", m }')
        if awk -v o="$other" 'BEGIN { exit !(o > 0.15) }'; then
            echo "  (warning: other processes kept up to $other CPUs busy during some of these runs)"
        fi
    done
done
