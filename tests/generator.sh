#!/bin/bash
# generator.sh - uzram-generator and the units it writes, for real.
#
# A two-device configuration (a swap device and a /tmp-like ext4 device,
# plus one whose host-memory-limit this machine exceeds) goes through the
# generator as systemd calls it (NORMAL_DIR EARLY_DIR LATE_DIR); what it
# wrote must pass `systemd-analyze verify` (which must fail a unit with a
# broken ExecStart, so the check can fail), and a bad configuration must
# make it fail and write nothing.  Then the units' own Environment= and
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
"$UZRAM" stat
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
"$UZRAM" stat --json | grep -q "\"mountpoint\": \"$WORK/tmp\"" || fail "stat lacks the mount"
"$UZRAM" stat | grep -q "swap .*\[SWAP\]" || fail "stat lacks [SWAP]"

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
