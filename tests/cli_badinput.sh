#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# cli_badinput.sh - the command line under bad input: unknown commands
# and options, missing arguments, malformed sizes (abc, -1, 1e99, 2^64,
# 100 KB of digits), bad algorithm and allocator names, nonexistent or
# wrong directories, names that read as options, `uzram stat` and `uzram
# umount` of what is not a uzram mount, `uzram umount` of another user's
# mount, bad uzram.conf sections for `uzram up`, the generator's own
# arguments.
#
# A live mount holds 4 MiB of random data throughout.  Each case must
# exit with its status (2 for bad usage, 1 for a failure; never a signal
# or a hang), say what is wrong on stderr, and leave the mount up with its
# data reading back identical (read with O_DIRECT, from the server, not
# the page cache).
#
# Needs root, /dev/fuse and setpriv; exits 77 otherwise.  Env: UZ_BUILD.
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount sha256sum setpriv timeout
GEN=$(realpath "$UZ_BUILD/uzram-generator")
fuse_setup cli-badinput
E=$WORK/empty                     # a directory a bad mount must not take
cleanup_extra() { stop_uzram "$E" /dev/null; }
mkdir "$E" "$WORK/run"
touch "$WORK/file"

"$UZRAM" mount "$DIR" --size 16M --pidfile "$PIDFILE"
head -c $((4 << 20)) /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$DIR/disk" bs=1M oflag=direct conv=notrunc status=none
SUM=$(sha256sum < "$WORK/data")
LONG=$(head -c 100000 /dev/zero | tr '\0' a)   # near the kernel's limit for one argument

check_mount() {
    grep -q " $DIR fuse.uzram " /proc/self/mounts || fail "after '$1': the mount is gone"
    local now
    now=$(dd if="$DIR/disk" bs=1M count=4 iflag=direct status=none | sha256sum)
    [ "$now" = "$SUM" ] || fail "after '$1': the data read back differs"
    grep -q " $E fuse.uzram " /proc/self/mounts && fail "after '$1': $E was mounted"
    return 0
}

# bad STATUS MESSAGE CMD...: CMD exits with STATUS, its stderr holds
# MESSAGE, and the mount is intact.
N=0
bad() {
    local want=$1 msg=$2 rc=0 what
    shift 2
    what=$(printf '%s ' "$@" | cut -c1-100)
    timeout 60 "$@" > "$WORK/out" 2> "$WORK/err" < /dev/null || rc=$?
    [ $rc -ne 124 ] || fail "'$what' hung"
    [ $rc -lt 128 ] || fail "'$what' died of signal $((rc - 128))"
    [ $rc -eq "$want" ] || fail "'$what' exited $rc, not $want: $(head -c 400 "$WORK/err")"
    grep -qF -- "$msg" "$WORK/err" ||
        fail "'$what': stderr lacks '$msg': $(head -c 400 "$WORK/err")"
    check_mount "$what"
    N=$((N + 1))
}

step "commands and options"
bad 2 "usage: uzram COMMAND" "$UZRAM"
bad 2 "unknown command 'bogus'" "$UZRAM" bogus
bad 2 "unknown command '--bogus'" "$UZRAM" --bogus
bad 2 "unrecognized option '--bogus'" "$UZRAM" mount "$E" --bogus
bad 2 "usage: uzram mount DIR" "$UZRAM" mount
bad 2 "usage: uzram mount DIR" "$UZRAM" mount "$E" "$WORK/run"
bad 2 "option '--size' requires an argument" "$UZRAM" mount "$E" --size
bad 2 "option '--algorithm' requires an argument" "$UZRAM" mount "$E" --algorithm
bad 2 "unrecognized option '--bogus'" "$UZRAM" pool "$E" --bogus
bad 2 "unrecognized option '--bogus'" "$UZRAM" stat --bogus
bad 2 "unrecognized option '--bogus'" "$UZRAM" swapon --bogus

step "sizes"
for s in abc -1 1e99 99999999999999999999999 18446744073709551616 16E "" " 1G" 1G1 12Q "1$LONG"; do
    bad 2 "--size: '$(printf %s "$s" | cut -c1-40)" "$UZRAM" mount "$E" --size "$s"
done
bad 2 "--mem-limit: mem_limit: 'xyz' is not a size" "$UZRAM" mount "$E" --mem-limit xyz
bad 2 "--capacity: '-5' is not a size" "$UZRAM" pool "$E" --capacity -5
bad 2 "--size: 'abc' is not a size" "$UZRAM" swapon --size abc
bad 1 "disksize: at most" "$UZRAM" mount "$E" --size 9T

step "names and numbers"
bad 2 "--algorithm: comp_algorithm: unknown algorithm 'bogus'" "$UZRAM" mount "$E" --size 16M --algorithm bogus
bad 2 "--algorithm: comp_algorithm: value too long" "$UZRAM" mount "$E" --size 16M --algorithm "$LONG"
bad 2 "--allocator: allocator: unknown allocator 'bogus'" "$UZRAM" mount "$E" --size 16M --allocator bogus
bad 2 "--level: algorithm_params: bad level 'abc'" "$UZRAM" mount "$E" --level abc
bad 2 "--group-pages: group_pages: 'abc': write 1 (off), 2, 4, 8 or auto" "$UZRAM" mount "$E" --group-pages abc
bad 2 "--group-pages: group_pages: '3': write 1 (off), 2, 4, 8 or auto" "$UZRAM" mount "$E" --size 16M --group-pages 3
bad 2 "--threads: give 1 to" "$UZRAM" mount "$E" --threads 0
bad 2 "--threads: give 1 to" "$UZRAM" mount "$E" --threads 99999999999999999999
bad 2 "--dedup: dedup: 'maybe': give 0 (off), 1 (on) or auto" "$UZRAM" mount "$E" --dedup maybe
bad 2 "--devices: give 0 to" "$UZRAM" pool "$E" --devices 99999
bad 2 "--devices: give 0 to" "$UZRAM" pool "$E" --devices abc
bad 2 "unknown column: BOGUS" "$UZRAM" stat --output BOGUS "$DIR"

step "directories"
bad 2 "--backing-dev /nonexistent/bd: No such file or directory" \
    "$UZRAM" mount "$E" --backing-dev /nonexistent/bd
bad 1 "uzram mount: /nonexistent/dir: No such file or directory" "$UZRAM" mount /nonexistent/dir
bad 1 "uzram mount: $WORK/file: not a directory" "$UZRAM" mount "$WORK/file"
bad 1 "File name too long" "$UZRAM" mount "$LONG"
bad 1 "uzram mount: $DIR: a uzram is already mounted there" "$UZRAM" mount "$DIR" --size 1M
bad 1 "uzram pool: $DIR: a uzram is already mounted there" "$UZRAM" pool "$DIR"
bad 1 "uzram stat: $E: not a uzram mount" "$UZRAM" stat "$E"
bad 1 "uzram stat: /tmp: not a uzram mount" "$UZRAM" stat /tmp
bad 1 "uzram stat: $DIR/disk: not a uzram mount" "$UZRAM" stat "$DIR/disk"
bad 1 "uzram stat: /nonexistent/dir: No such file or directory" "$UZRAM" stat /nonexistent/dir
bad 1 "File name too long" "$UZRAM" stat "$LONG"
bad 2 "usage: uzram umount DIR" "$UZRAM" umount
bad 1 "uzram umount: /nonexistent/dir: not a uzram mount" "$UZRAM" umount /nonexistent/dir
bad 1 "uzram umount: $E: not a uzram mount" "$UZRAM" umount "$E"
bad 1 "uzram umount: /tmp: not a uzram mount" "$UZRAM" umount /tmp
bad 1 "not a uzram mount" "$UZRAM" umount "$LONG"
bad 2 "usage: uzram clone DIR/zramN" "$UZRAM" clone
bad 1 "uzram clone: $DIR: not a device of a uzram pool" "$UZRAM" clone "$DIR"
bad 1 "uzram clone: /nonexistent/dir: No such file or directory" "$UZRAM" clone /nonexistent/dir

step "another user"
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
bad 1 "uzram umount: $DIR: mounted by another user (uid 0)" "${NOBODY[@]}" "$UZRAM" umount "$DIR"
bad 1 "uzram umount: $E: not a uzram mount" "${NOBODY[@]}" "$UZRAM" umount "$E"

step "uzram up and down"
export UZRAM_RUNDIR=$WORK/run UZRAM_CONF=$WORK/uzram.conf
printf '[swap]\nzram-size = -5\n[-rf]\nzram-size = 64\n[ok]\nzram-size = 64\ncompression-algorithm = zstd(level=abc)\n' \
    > "$UZRAM_CONF"
bad 2 "usage: uzram up [--] NAME" "$UZRAM" up
bad 2 "usage: uzram up [--] NAME" "$UZRAM" up -rf
bad 2 "usage: uzram up [--] NAME" "$UZRAM" up -- a b
bad 2 "usage: uzram down [--] NAME" "$UZRAM" down
bad 2 "usage: uzram down [--] NAME" "$UZRAM" down --help-me
bad 1 "$UZRAM_CONF:2: [swap] zram-size: '-5' gives -5 MiB" "$UZRAM" up swap
bad 1 "$UZRAM_CONF:2: [swap] zram-size: '-5' gives -5 MiB" "$UZRAM" up -- swap
bad 1 "$UZRAM_CONF:7: [ok] compression-algorithm: algorithm_params: bad level 'abc'" \
    "$UZRAM" up -- ok
bad 1 "has no device [-rf]" "$UZRAM" up -- -rf
bad 1 "$UZRAM_CONF:3: '-rf' cannot be a device name: a leading '-'" "$UZRAM" up -- -rf
bad 1 "has no device [nosuch]" "$UZRAM" up -- nosuch
bad 1 "$WORK/run/nosuch: no uzram device is mounted there" "$UZRAM" down -- nosuch
UZRAM_CONF=$E bad 1 "uzram up: $E: Is a directory" "$UZRAM" up -- swap
UZRAM_CONF=$E bad 1 "uzram-generator: $E: Is a directory" "$GEN" "$WORK/run"
[ -z "$(ls -A "$WORK/run")" ] || fail "a refused 'up' left $(ls "$WORK/run") in RUNDIR"
unset UZRAM_RUNDIR UZRAM_CONF

step "the generator's arguments"
bad 2 "usage: uzram-generator NORMAL_DIR" "$GEN"
bad 2 "usage: uzram-generator NORMAL_DIR" "$GEN" "$E" "$E"
bad 1 "uzram-generator: $WORK/file: not a directory" "$GEN" "$WORK/file"
bad 1 "uzram-generator: /nonexistent/dir: not a directory" "$GEN" /nonexistent/dir
[ -z "$(ls -A "$E")" ] || fail "the generator wrote into $E"

echo "ok: $N bad commands refused with their message; the mount's 4 MiB read back identical"
echo PASS
