#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# swap_vs_zram.sh - the same memory-capped workloads swapping to uzram, to
# uzram's raw RAM mode (the floor) and to kernel zram (lz4): how much time
# does each add over a run with no cap?
#
#   bash bench/swap_vs_zram.sh            (as root; UZ_BUILD=build by default)
#
# Two workloads (C, built here), each verifying every page it reads:
#
#   scan    fills WORKLOAD_MB (default 512) of pages derived from their
#           index -- 3/8 random bytes, the rest a repeated text, every 16th
#           page same-filled -- then reads every page back and checks it.
#   random  real page contents: page i of the working set starts as page
#           i mod N of PAGEFILE (default: the corpus, sqlite + perl
#           unpacked); then TOUCHES x pages touches (default 2) in seeded
#           random order (xorshift, SEED): each checks the page against
#           the page file page it should hold (pread, exact compare), and
#           every other touch rewrites it with another page of the file.
#           Finally every page is checked once more.  What a program that
#           swaps does: random access, faults both ways.
#
# The page file is read once by this script before any run (outside the
# capped group), so its page-cache pages are not charged to the workload.
#
# Each workload runs REPEAT times (default 3) in each of four settings,
# interleaved in one round: no cap; in a cgroup v1 memory group capped at
# 1/4 of the working set with, as the only swap,
#   uzram   `uzram mount DIR --algorithm lz4` + loop device (--direct-io)
#   floor   the same server and loop device over `--algorithm none`: the
#           raw RAM mode, no compression, every page kept raw
#   zram    a kernel zram device of our own (hot_add, lz4; hot_remove after)
# and prints every time, the medians, and the ratios of time added:
#
#     uzram/zram  = (uzram - uncapped) / (zram - uncapped)
#     uzram/floor = (uzram - uncapped) / (floor - uncapped)
#
# Environment: WORKLOAD_MB, REPEAT, WORKLOADS ("scan random"), PAGEFILE,
# TOUCHES, SEED, UZ_MOUNT_OPTS (added to both uzram mounts, e.g.
# "--threads 4"), PAGE_CLUSTER (vm.page-cluster for the runs: swap
# readahead of 2^N pages through the loop device; kernel zram, a
# synchronous device, does no readahead; restored on exit).  Existing swap devices are left alone but given no work:
# the test's swap device gets the highest priority.  Everything is torn
# down on exit.  Runs OOM-killed in the capped group are retried and
# reported (see run_capped).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
UZ_BUILD=${UZ_BUILD:-$ROOT/build}
UZRAM=$(realpath "$UZ_BUILD/uzram")
WORKLOAD_MB=${WORKLOAD_MB:-512}
REPEAT=${REPEAT:-3}
WORKLOADS=${WORKLOADS:-scan random}
TOUCHES=${TOUCHES:-2}
SEED=${SEED:-1}
CORPUS=${UZ_CORPUS:-$ROOT/../shared/corpus}
LIMIT_MB=$((WORKLOAD_MB / 4))
CGROOT=/sys/fs/cgroup/memory

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -f $CGROOT/memory.limit_in_bytes ] || { echo "no cgroup v1 memory controller" >&2; exit 1; }
[ -e /sys/class/zram-control/hot_add ] || { echo "no kernel zram here" >&2; exit 1; }

WORK=$(mktemp -d /tmp/uzram-swapbench.XXXXXX)
DIR=$WORK/dev
CG=$CGROOT/uzram-swapbench-$$
LOOP=
ACTIVE=
ZID=
mkdir -p "$DIR" "$CG"
echo $((LIMIT_MB << 20)) > "$CG/memory.limit_in_bytes"
[ -f "$CG/memory.swappiness" ] && echo 100 > "$CG/memory.swappiness"

OLD_PC=$(cat /proc/sys/vm/page-cluster)
cleanup() {
    set +e
    echo "$OLD_PC" > /proc/sys/vm/page-cluster
    [ -n "$ACTIVE" ] && swapoff "$ACTIVE"
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    grep -q " $DIR fuse.uzram " /proc/self/mounts && "$UZRAM" umount "$DIR"
    if [ -n "$ZID" ]; then
        echo 1 > /sys/block/zram$ZID/reset
        echo "$ZID" > /sys/class/zram-control/hot_remove
    fi
    rmdir "$CG" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -n "${PAGE_CLUSTER:-}" ] && echo "$PAGE_CLUSTER" > /proc/sys/vm/page-cluster
ZID=$(cat /sys/class/zram-control/hot_add)
ZRAM=/sys/block/zram$ZID

# the page file of the random workload
if [ -z "${PAGEFILE:-}" ]; then
    PAGEFILE=$WORK/real.pages
    for f in sqlite perl; do
        [ -f "$CORPUS/$f.pages.zst" ] && zstd -dc "$CORPUS/$f.pages.zst" >> "$PAGEFILE"
    done
    [ -s "$PAGEFILE" ] || { echo "no corpus in $CORPUS: set PAGEFILE" >&2; exit 1; }
fi
cat "$PAGEFILE" > /dev/null   # into the page cache, charged outside the group

cat > "$WORK/wl.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define P 4096
static void page(uint8_t *p, uint64_t i)
{
    if (i % 16 == 5) { memset(p, (int)(i & 0xff), P); return; }
    uint64_t s = i * 0x9e3779b97f4a7c15ull + 1;
    for (int k = 0; k < 1536; k += 8) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        memcpy(p + k, &s, 8);
    }
    char t[32];
    int n = snprintf(t, sizeof t, "page %09llu ", (unsigned long long)i);
    for (int k = 1536; k < P; k++) p[k] = (uint8_t)t[(k - 1536) % n];
}
static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s; x ^= x << 13; x ^= x >> 7; x ^= x << 17; return *s = x;
}
static int fd;
static void src(uint8_t *p, uint32_t k)
{
    if (pread(fd, p, P, (off_t)k * P) != P) { perror("workload: page file"); exit(2); }
}
int main(int argc, char **argv)
{
    uint64_t pages = strtoull(argv[2], 0, 10) * 256, bad = 0;
    uint8_t *buf = malloc(pages * P), want[P];
    if (!strcmp(argv[1], "scan")) {
        for (uint64_t i = 0; i < pages; i++) page(buf + i * P, i);
        for (uint64_t i = 0; i < pages; i++) {
            page(want, i);
            if (memcmp(buf + i * P, want, P)) bad++;
        }
    } else {
        /* random PAGEFILE TOUCHES SEED */
        fd = open(argv[3], O_RDONLY);
        if (fd < 0) { perror(argv[3]); return 2; }
        uint32_t n = (uint32_t)(lseek(fd, 0, SEEK_END) / P);
        uint64_t touches = strtoull(argv[4], 0, 10) * pages, seed = strtoull(argv[5], 0, 10) | 1;
        uint32_t *exp = malloc(pages * sizeof *exp);
        for (uint64_t i = 0; i < pages; i++) {
            exp[i] = (uint32_t)(i % n);
            src(buf + i * P, exp[i]);
        }
        for (uint64_t t = 0; t < touches; t++) {
            uint64_t i = xs(&seed) % pages;
            src(want, exp[i]);
            if (memcmp(buf + i * P, want, P)) bad++;
            if (t & 1) {
                exp[i] = (uint32_t)(xs(&seed) % n);
                src(buf + i * P, exp[i]);
            }
        }
        for (uint64_t i = 0; i < pages; i++) {
            src(want, exp[i]);
            if (memcmp(buf + i * P, want, P)) bad++;
        }
    }
    if (bad) fprintf(stderr, "workload: %llu pages differ\n", (unsigned long long)bad);
    return bad != 0;
}
EOF
cc -O2 -o "$WORK/wl" "$WORK/wl.c"

now() { date +%s.%N; }
wl_args() {
    if [ "$1" = scan ]; then echo "scan $WORKLOAD_MB"
    else echo "random $WORKLOAD_MB $PAGEFILE $TOUCHES $SEED"; fi
}
run_free() {
    local t=$(now)
    # shellcheck disable=SC2046
    "$WORK/wl" $(wl_args "$1") || { echo "workload failed (uncapped)" >&2; exit 1; }
    python3 -c "print(round($(now) - $t, 2))"
}
# A run the memory cgroup's OOM killer ends (exit 137: reclaim found only
# pages still being written to a slow swap device; cgroup v1 does not wait
# for them) is retried, at most twice, and counted in $WORK/oom; any other
# failure (a page that differs) ends the benchmark.
run_capped() {   # run_capped WORKLOAD SETTING
    local t rc
    for _ in 1 2 3; do
        t=$(now)
        rc=0
        # shellcheck disable=SC2046
        bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$CG" "$WORK/wl" $(wl_args "$1") || rc=$?
        if [ $rc = 0 ]; then
            python3 -c "print(round($(now) - $t, 2))"
            return
        fi
        [ $rc = 137 ] || { echo "workload failed (capped, $2): exit $rc" >&2; exit 1; }
        echo "$1 $2" >> "$WORK/oom"
        echo "  ($1 on $2: OOM-killed in the memory cgroup; retried)" >&2
    done
    echo "workload OOM-killed three times ($2)" >&2
    exit 1
}

uzram_on() {   # uzram_on ALGORITHM
    # shellcheck disable=SC2086
    "$UZRAM" mount "$DIR" --size 2G --algorithm "$1" ${UZ_MOUNT_OPTS:-}
    LOOP=$(losetup --direct-io=on -f --show "$DIR/disk")
    mkswap "$LOOP" >/dev/null
    swapon -p 32767 "$LOOP"
    ACTIVE=$LOOP
}
uzram_off() {
    swapoff "$LOOP"; ACTIVE=
    losetup -d "$LOOP"; LOOP=
    "$UZRAM" umount "$DIR"
}
zram_on() {
    echo lz4 > $ZRAM/comp_algorithm
    echo 2G > $ZRAM/disksize
    mkswap /dev/zram$ZID >/dev/null
    swapon -p 32767 /dev/zram$ZID
    ACTIVE=/dev/zram$ZID
}
zram_off() {
    swapoff /dev/zram$ZID; ACTIVE=
    echo 1 > $ZRAM/reset
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
spread() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%s/%s/%s", a[1], a[int((NR + 1) / 2)], a[NR]}'; }

for w in $WORKLOADS; do
    free_t=(); uz_t=(); fl_t=(); kz_t=()
    for r in $(seq "$REPEAT"); do
        free_t+=("$(run_free "$w")")
        uzram_on lz4; uz_t+=("$(run_capped "$w" uzram)"); uzram_off
        uzram_on none; fl_t+=("$(run_capped "$w" floor)"); uzram_off
        zram_on; kz_t+=("$(run_capped "$w" zram)"); zram_off
        echo "$w round $r: uncapped ${free_t[-1]} s, uzram ${uz_t[-1]} s, floor ${fl_t[-1]} s, kernel zram ${kz_t[-1]} s"
    done
    F=$(median "${free_t[@]}"); U=$(median "${uz_t[@]}"); L=$(median "${fl_t[@]}"); K=$(median "${kz_t[@]}")
    echo "$w: workload ${WORKLOAD_MB} MiB, cap ${LIMIT_MB} MiB, page-cluster $(cat /proc/sys/vm/page-cluster), min/median/max of $REPEAT (s):"
    echo "  uncapped $(spread "${free_t[@]}"), uzram $(spread "${uz_t[@]}"), floor $(spread "${fl_t[@]}"), kernel zram $(spread "${kz_t[@]}")"
    python3 -c "
f, u, l, k = $F, $U, $L, $K
print('  time added (medians): uzram %.2f s, floor %.2f s, kernel zram %.2f s; uzram/zram %.2f, uzram/floor %.2f, floor/zram %.2f'
      % (u - f, l - f, k - f, (u - f) / (k - f), (u - f) / (l - f), (l - f) / (k - f)))"
done
if [ -s "$WORK/oom" ]; then
    echo "runs OOM-killed in the memory cgroup and retried: $(sort "$WORK/oom" | uniq -c | awk '{printf "%s %s x%s; ", $2, $3, $1}')"
fi
