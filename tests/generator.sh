#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# generator.sh - uzram-generator and the units it writes, for real.
#
# A two-device configuration (a swap device and a /tmp-like ext4 device,
# plus one whose host-memory-limit this machine exceeds) goes through the
# generator as systemd calls it (NORMAL_DIR EARLY_DIR LATE_DIR); what it
# wrote must pass `systemd-analyze verify` (which must fail a unit with a
# broken ExecStart, so the check can fail), and a bad configuration must
# make it fail and write nothing.  Bad sections among good ones (names
# that read as options or are no device's, the values `uzram up` refuses,
# a NUL byte, a long line) must each be reported with their line and get
# no unit while the good ones get theirs, `up -- NAME`, and pass verify;
# 10,000 sections give 10,000 units.  Then the units' own Environment= and
# ExecStart= lines are run as systemd would run them: the swap must be
# active with its priority, the filesystem mounted (ext4, mode 1777 for a
# /tmp) and hold a file written, dropped from the cache and read back;
# then ExecStop= must leave nothing behind (no swap, mount, loop device,
# daemon or directory).
#
# Needs root, /dev/fuse, loop devices, mkswap/swapon, mkfs.ext4 and
# systemd-analyze; exits 77 otherwise.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount losetup mkswap swapon swapoff mkfs.ext4 systemd-analyze sha256sum
[ -e /dev/loop-control ] || skip "no loop devices"
GEN=$(realpath "$UZ_BUILD/uzram-generator")
[ -x "$GEN" ] || fail "no $UZ_BUILD/uzram-generator"

WORK=$(mktemp -d /tmp/uzram-generator.XXXXXX)
export UZRAM_RUNDIR=$WORK/run UZRAM_CONF=$WORK/uzram.conf
cleanup() {
    local rc=$?
    set +e
    rundir_teardown
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$UZRAM_CONF" <<CONF
# swap and a compressed /tmp, the two things zram-generator users make
[swap]
zram-size = min(ram / 16, 192)
compression-algorithm = lz4 zstd(level=5)
swap-priority = 77
recompress-policy = idle_secs=3600

[tmp]
zram-size = 160
fs-type = ext4
mount-point = $WORK/tmp
options = discard,noatime

[big]
zram-size = 64
host-memory-limit = 1
CONF

step "the generator, as systemd calls it"
mkdir "$WORK/normal" "$WORK/early" "$WORK/late"
"$GEN" "$WORK/normal" "$WORK/early" "$WORK/late"
find "$WORK/normal" | sort
for u in swap tmp; do [ -f "$WORK/normal/uzram-$u.service" ] || fail "no uzram-$u.service"; done
[ -e "$WORK/normal/uzram-big.service" ] && fail "a unit for [big] despite host-memory-limit"
[ "$(readlink "$WORK/normal/swap.target.wants/uzram-swap.service")" = ../uzram-swap.service ] ||
    fail "uzram-swap.service is not wanted by swap.target"
[ -e "$WORK/normal/local-fs.target.wants/uzram-tmp.service" ] ||
    fail "uzram-tmp.service is not wanted by local-fs.target"
[ -z "$(find "$WORK/early" "$WORK/late" -mindepth 1)" ] || fail "wrote into EARLY_DIR or LATE_DIR"
cat "$WORK/normal/uzram-swap.service"

step "systemd-analyze verify"
MAN=--man=no
[ -f "$UZ_BUILD/man/man1/uzram.1" ] && { export MANPATH=$(realpath "$UZ_BUILD/man"); MAN=--man=yes; }
systemd-analyze verify $MAN "$WORK/normal/uzram-swap.service" "$WORK/normal/uzram-tmp.service"
mkdir "$WORK/broken"
sed 's|^ExecStart=.*|ExecStart=/nonexistent/uzram up swap|' "$WORK/normal/uzram-swap.service" \
    > "$WORK/broken/uzram-swap.service"
if systemd-analyze verify --man=no "$WORK/broken/uzram-swap.service" 2>/dev/null; then
    fail "systemd-analyze verify passed a unit whose ExecStart does not exist"
fi
echo "ok: verified (and a broken unit is caught)"

step "a bad configuration: generator fails, writes nothing"
printf '[swap]\nzram-size = ram /\n' > "$WORK/bad.conf"
mkdir "$WORK/bad"
if UZRAM_CONF=$WORK/bad.conf "$GEN" "$WORK/bad" 2>"$WORK/err"; then fail "bad config accepted"; fi
cat "$WORK/err"
grep -q "bad.conf:2:" "$WORK/err" || fail "the error does not name the line"
[ -z "$(ls -A "$WORK/bad")" ] || fail "wrote units for a bad configuration"

# gen_bad CONF DIR: the generator on CONF into DIR must fail (exit 1, not a
# signal), its errors in $WORK/err
gen_bad() {
    local rc=0
    mkdir "$2"
    UZRAM_CONF=$1 "$GEN" "$2" "$WORK/early" "$WORK/late" 2> "$WORK/err" || rc=$?
    cat "$WORK/err"
    [ $rc -eq 1 ] || fail "the generator exited $rc on $1, not 1"
}
# units DIR: the service units written there, by name
units() { find "$1" -maxdepth 1 -name '*.service' -printf '%f\n' | sort | tr '\n' ' '; }
expect_err() { grep -qF -- "$1" "$WORK/err" || fail "the generator did not say '$1'"; }

step "bad sections: no unit for them, units for the good ones around them"
# the values uzram up refuses, names that read as options or are no
# device's, a NUL byte, long lines; each section bad in one way only
B=$WORK/sections.conf
{
    printf '[good1]\nzram-size = 64\n'                                    # 1-2
    printf '[-rf]\nzram-size = 64\n'                                      # 3
    printf '[--help]\nzram-size = 64\n'                                   # 5
    printf '[neg]\nzram-size = -5\n'                                      # 7-8
    printf '[zero]\nzram-size = 0\n'                                      # 9-10
    printf '[huge]\nzram-size = 99999999999999999999999\n'                # 11-12
    printf '[ram5]\nzram-size = ram*ram*ram*ram*ram\n'                    # 13-14
    printf '[algo]\ncompression-algorithm = bogus\n'                      # 15-16
    printf '[level]\ncompression-algorithm = zstd(level=abc)\n'           # 17-18
    printf '[compact]\nauto-compact = -1\n'                               # 19-20
    printf '#%01500d\n' 0                                                  # 21: a long comment
    printf '[long]\noptions = %01500d\n' 0                                 # 22-23
    printf '[nul]\nzram-size = 6\0\n'                                      # 24-25
    printf '[a/b]\n["q"]\n[$x]\n[%%n]\n[a b]\n[..]\n[-]\n'                    # 26-32
    printf 'zram-size = 7\n'                                              # 33: under [-]
    printf '[good2]\nzram-size = 32\nfs-type = ext4\nmount-point = %s\n' "$WORK/g2"   # 34-37
} > "$B"
gen_bad "$B" "$WORK/sections"
[ "$(units "$WORK/sections")" = "uzram-good1.service uzram-good2.service " ] ||
    fail "units written: $(units "$WORK/sections")"
expect_err "sections.conf:3: '-rf' cannot be a device name: a leading '-'"
expect_err "sections.conf:5: '--help' cannot be a device name: a leading '-'"
expect_err "sections.conf:8: [neg] zram-size: '-5' gives -5 MiB"
expect_err "sections.conf:10: [zero] zram-size: '0' gives 0 MiB"
expect_err "sections.conf:12: [huge] zram-size: '99999999999999999999999' gives 1e+23 MiB: too large"
expect_err "sections.conf:14: [ram5] zram-size: 'ram*ram*ram*ram*ram' gives"
expect_err "sections.conf:16: [algo] compression-algorithm: comp_algorithm: unknown algorithm 'bogus'"
expect_err "sections.conf:18: [level] compression-algorithm: algorithm_params: bad level 'abc'"
expect_err "sections.conf:20: [compact] auto-compact: auto_compact: '-1' is not a number"
expect_err "sections.conf:23: [long] line too long (1510 bytes, at most 1023)"
expect_err "sections.conf:25: [nul] NUL byte"
for n in 26:a/b '27:"q"' '28:$x' 29:%n '30:a b' 31:.. 32:-; do
    expect_err "sections.conf:${n%%:*}: '${n#*:}' cannot be a device name"
done
grep -q "sections.conf:21" "$WORK/err" && fail "the long comment was reported"
grep -q "sections.conf:33" "$WORK/err" && fail "a key under a refused header was read"
expect_err "[long] (line 22) has 1 error: no unit written"
grep -q '^ExecStart="[^"]*/uzram" up -- good1$' "$WORK/sections/uzram-good1.service" ||
    fail "ExecStart is not 'uzram up -- good1': $(grep ExecStart "$WORK/sections/uzram-good1.service")"
grep -q '^ExecStop="[^"]*/uzram" down -- good1$' "$WORK/sections/uzram-good1.service" ||
    fail "ExecStop is not 'uzram down -- good1'"
[ -L "$WORK/sections/swap.target.wants/uzram-good1.service" ] || fail "good1 is not wanted"
[ -L "$WORK/sections/local-fs.target.wants/uzram-good2.service" ] || fail "good2 is not wanted"
[ "$(find "$WORK/sections" -path '*.wants/*' | wc -l)" = 2 ] || fail "links for bad sections"
systemd-analyze verify $MAN "$WORK/sections/uzram-good1.service" "$WORK/sections/uzram-good2.service"
echo "ok: 18 bad sections refused with their lines, good1 and good2 verified"

step "10,000 sections"
for i in $(seq 10000); do printf '[s%d]\nzram-size = %d\n' $i $((i % 512 + 1)); done > "$WORK/many.conf"
mkdir "$WORK/many"
UZRAM_CONF=$WORK/many.conf "$GEN" "$WORK/many" "$WORK/early" "$WORK/late" ||
    fail "the generator failed on 10,000 good sections"
[ "$(find "$WORK/many" -maxdepth 1 -name 'uzram-s*.service' | wc -l)" = 10000 ] ||
    fail "not 10,000 units"
[ "$(find "$WORK/many/swap.target.wants" -name '*.service' | wc -l)" = 10000 ] ||
    fail "not 10,000 links"
systemd-analyze verify $MAN "$WORK/many/uzram-s1.service" "$WORK/many/uzram-s10000.service"
rm -rf "$WORK/many"
echo "ok: 10,000 units"

# run_unit UNIT KEY: the unit's KEY= command lines with its Environment=,
# as systemd runs them (their quoting is the shell's for these units)
run_unit() {
    local unit=$1 key=$2 line
    (
        while IFS= read -r line; do
            case $line in Environment=*) eval "export ${line#Environment=}" ;; esac
        done < "$unit"
        grep "^$key=" "$unit" | while IFS= read -r line; do
            echo "+ ${line#$key=}"
            eval "${line#$key=}"
        done
    )
}

step "ExecStart of both units"
run_unit "$WORK/normal/uzram-swap.service" ExecStart
run_unit "$WORK/normal/uzram-tmp.service" ExecStart
# this test's mounts only: a listing of every mount would wait on other
# processes' servers (a hung one keeps `uzram stat` from exiting)
MINE=("$UZRAM_RUNDIR/swap" "$UZRAM_RUNDIR/tmp")
"$UZRAM" stat "${MINE[@]}"
SWAPDEV=$(losetup -j "$UZRAM_RUNDIR/swap/disk" -O NAME -n)
TMPDEV=$(losetup -j "$UZRAM_RUNDIR/tmp/disk" -O NAME -n)
[ -n "$SWAPDEV" ] && [ -n "$TMPDEV" ] || fail "no loop devices on the uzram disks"
line=$(grep "^$SWAPDEV " /proc/swaps) || fail "$SWAPDEV is not swapping"
[ "$(echo "$line" | awk '{print $5}')" = 77 ] || fail "swap priority is not 77: $line"
grep -q "#1: .*\[zstd\]" "$UZRAM_RUNDIR/swap/recomp_algorithm" || fail "secondary algorithm not set"
grep -q "priority=1 algo=zstd level=5" "$UZRAM_RUNDIR/swap/algorithm_params" ||
    fail "secondary level not set"
grep -q "idle_secs=3600" "$UZRAM_RUNDIR/swap/recompress_policy" || fail "recompress-policy not set"
[ "$(findmnt -n -o FSTYPE "$WORK/tmp")" = ext4 ] || fail "$WORK/tmp is not an ext4 mount"
[ "$(findmnt -n -o SOURCE "$WORK/tmp")" = "$TMPDEV" ] || fail "$WORK/tmp is not on $TMPDEV"
findmnt -n -o OPTIONS "$WORK/tmp" | grep -q noatime || fail "options not applied"
[ "$(stat -c %a "$WORK/tmp")" = 1777 ] || fail "a /tmp is not mode 1777"
"$UZRAM" stat --json "${MINE[@]}" | grep -q "\"mountpoint\": \"$WORK/tmp\"" || fail "stat lacks the mount"
"$UZRAM" stat "${MINE[@]}" | grep -q "swap .*\[SWAP\]" || fail "stat lacks [SWAP]"

step "the filesystem works"
head -c $((24 << 20)) /dev/urandom > "$WORK/data"
cp "$WORK/data" "$WORK/tmp/data"
sync
echo 3 > /proc/sys/vm/drop_caches
cmp "$WORK/data" "$WORK/tmp/data" || fail "file read back differs"
read -r orig _ < "$UZRAM_RUNDIR/tmp/mm_stat"
[ "$orig" -ge $((24 << 20)) ] || fail "the device holds $orig bytes, less than the file"
echo "ok: 24 MiB written and read back through $TMPDEV (orig_data_size $orig)"

step "ExecStop of both units"
run_unit "$WORK/normal/uzram-tmp.service" ExecStop
run_unit "$WORK/normal/uzram-swap.service" ExecStop
grep -q " $UZRAM_RUNDIR/" /proc/self/mounts && fail "a uzram mount is left"
findmnt "$WORK/tmp" >/dev/null && fail "$WORK/tmp is still mounted"
losetup -a | grep -q "$UZRAM_RUNDIR/" && fail "a loop device is left"
grep -q "^$SWAPDEV " /proc/swaps && fail "swap is left"
for t in $(seq 50); do pgrep -f "uzram mount $UZRAM_RUNDIR/" >/dev/null || break; sleep 0.1; done
pgrep -f "uzram mount $UZRAM_RUNDIR/" && fail "a daemon is left"
[ -z "$(ls -A "$UZRAM_RUNDIR")" ] || fail "left in RUNDIR: $(ls "$UZRAM_RUNDIR")"
echo "PASS"
