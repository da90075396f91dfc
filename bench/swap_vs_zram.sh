#!/bin/bash
# swap_vs_zram.sh - the same memory-capped workload swapping to uzram and to
# kernel zram (both lz4): how much time does each add over a run with no
# cap?
#
#   bash bench/swap_vs_zram.sh            (as root; UZ_BUILD=build by default)
#
# The workload (C, built here) fills WORKLOAD_MB (default 512) of pages
# derived from their index -- 3/8 random bytes, the rest a repeated text,
# every 16th page same-filled -- then reads every page back and checks it,
# exiting non-zero on any difference.  It runs REPEAT times (default 3) in
# each of three settings, interleaved: no cap; in a cgroup v1 memory group
# capped at 1/4 of the working set with uzram swap (FUSE mount + loop
# device, --direct-io) as the only swap; the same with kernel zram
# (/dev/zram0) as the only swap.  Prints every time, the medians, and
#
#     ratio = (uzram median - uncapped median) / (zram median - uncapped median)
#
# UZ_MOUNT_OPTS adds options to `uzram mount` (e.g. "--threads 4").
#
# Existing swap devices are left alone but given no work: the test's swap
# device gets the highest priority.  Everything is torn down on exit.
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-build}
UZRAM=$(realpath "$UZ_BUILD/uzram")
WORKLOAD_MB=${WORKLOAD_MB:-512}
REPEAT=${REPEAT:-3}
LIMIT_MB=$((WORKLOAD_MB / 4))
CGROOT=/sys/fs/cgroup/memory
ZRAM=/sys/block/zram0

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -f $CGROOT/memory.limit_in_bytes ] || { echo "no cgroup v1 memory controller" >&2; exit 1; }
[ -d $ZRAM ] || { echo "no kernel zram here" >&2; exit 1; }
[ "$(cat $ZRAM/initstate)" = 0 ] || { echo "zram0 is in use; not touching it" >&2; exit 1; }

WORK=$(mktemp -d /tmp/uzram-swapbench.XXXXXX)
DIR=$WORK/dev
CG=$CGROOT/uzram-swapbench-$$
LOOP=
ACTIVE=
mkdir -p "$DIR" "$CG"
echo $((LIMIT_MB << 20)) > "$CG/memory.limit_in_bytes"
[ -f "$CG/memory.swappiness" ] && echo 100 > "$CG/memory.swappiness"

cleanup() {
    set +e
    [ -n "$ACTIVE" ] && swapoff "$ACTIVE"
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    grep -q " $DIR fuse.uzram " /proc/self/mounts && "$UZRAM" umount "$DIR"
    [ "$(cat $ZRAM/initstate)" = 1 ] && echo 1 > $ZRAM/reset
    rmdir "$CG" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$WORK/wl.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void page(uint8_t *p, uint64_t i)
{
    if (i % 16 == 5) { memset(p, (int)(i & 0xff), 4096); return; }
    uint64_t s = i * 0x9e3779b97f4a7c15ull + 1;
    for (int k = 0; k < 1536; k += 8) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        memcpy(p + k, &s, 8);
    }
    char t[32];
    int n = snprintf(t, sizeof t, "page %09llu ", (unsigned long long)i);
    for (int k = 1536; k < 4096; k++) p[k] = (uint8_t)t[(k - 1536) % n];
}
int main(int argc, char **argv)
{
    uint64_t pages = strtoull(argv[1], 0, 10) * 256;
    uint8_t *buf = malloc(pages * 4096), want[4096];
    for (uint64_t i = 0; i < pages; i++) page(buf + i * 4096, i);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < pages; i++) {
        page(want, i);
        if (memcmp(buf + i * 4096, want, 4096)) bad++;
    }
    if (bad) fprintf(stderr, "workload: %llu pages differ\n", (unsigned long long)bad);
    return bad != 0;
}
EOF
cc -O2 -o "$WORK/wl" "$WORK/wl.c"

now() { date +%s.%N; }
run_free() { local t=$(now); "$WORK/wl" "$WORKLOAD_MB"; python3 -c "print(round($(now) - $t, 2))"; }
run_capped() {
    local t=$(now)
    bash -c 'echo $$ > "$1/cgroup.procs"; exec "$2" "$3"' _ "$CG" "$WORK/wl" "$WORKLOAD_MB"
    python3 -c "print(round($(now) - $t, 2))"
}

uzram_on() {
    "$UZRAM" mount "$DIR" --size 2G --algorithm lz4 ${UZ_MOUNT_OPTS:-}
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
    mkswap /dev/zram0 >/dev/null
    swapon -p 32767 /dev/zram0
    ACTIVE=/dev/zram0
}
zram_off() {
    swapoff /dev/zram0; ACTIVE=
    echo 1 > $ZRAM/reset
}

free_t=(); uz_t=(); kz_t=()
for r in $(seq "$REPEAT"); do
    free_t+=("$(run_free)")
    uzram_on; uz_t+=("$(run_capped)"); uzram_off
    zram_on; kz_t+=("$(run_capped)"); zram_off
    echo "round $r: uncapped ${free_t[-1]} s, uzram swap ${uz_t[-1]} s, kernel zram swap ${kz_t[-1]} s"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
F=$(median "${free_t[@]}"); U=$(median "${uz_t[@]}"); K=$(median "${kz_t[@]}")
echo "workload ${WORKLOAD_MB} MiB, cap ${LIMIT_MB} MiB, medians of $REPEAT:"
echo "  uncapped ${F} s, uzram swap ${U} s, kernel zram swap ${K} s"
python3 -c "
f, u, k = $F, $U, $K
print('  time added: uzram %.2f s, kernel zram %.2f s, ratio %.2f' % (u - f, k - f, (u - f) / (k - f)))"
