# SPDX-License-Identifier: BSD-2-Clause
# fuse_common.sh - sourced by the tests/fuse_*.sh system tests: what every
# one of them needs before it starts, and the unmount its cleanup does.
#
#   UZ_BUILD    the build directory (default build), UZRAM its uzram binary
#   skip MSG    exit 77, which ctest reports as skipped, saying why
#   fail MSG    exit 1 with MSG on stderr
#   step MSG    a section header
#   expect_write_error FILE VALUE MESSAGE   writing VALUE to FILE fails, with
#                             MESSAGE (strerror) in what the shell says
#   need_fuse_mount TOOL...   root, /dev/fuse, a FUSE-enabled uzram, TOOLs
#   stop_uzram DIR PIDFILE    unmount DIR if mounted, kill the daemon
#   fuse_setup NAME           WORK=/tmp/uzram-NAME.XXXXXX with DIR=$WORK/dev
#                             (the mount point) and PIDFILE, and traps that on
#                             any exit run the test's cleanup_extra (if it
#                             defines one), stop the daemon, remove WORK and
#                             keep the exit status
#   uring_select              (fuse_setup calls it) the transport the test's
#                             mounts get: UZ_IO_URING=auto (default) turns
#                             the fuse module's enable_uring parameter on
#                             where the kernel has it, so mounts serve over
#                             io_uring, =off turns it off (/dev/fuse); the
#                             old value is put back on exit.  Sets
#                             UZ_TRANSPORT (io_uring or dev_fuse), what the
#                             mounts must report.
#   check_transport DIR       DIR/.transport says UZ_TRANSPORT, and over
#                             io_uring its rings carried requests

UZ_BUILD=${UZ_BUILD:-build}
UZRAM=$(realpath "$UZ_BUILD/uzram" 2>/dev/null || true)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_write_error() {   # FILE VALUE MESSAGE
    local out
    if out=$( (printf '%s\n' "$2" > "$1") 2>&1 ); then
        fail "writing '$2' to $1 succeeded"
    fi
    case "$out" in *"$3"*) ;; *) fail "writing '$2' to $1: got '$out', want '$3'";; esac
}
step() { echo "== $*"; }

need_fuse_mount() {
    [ "$(id -u)" = 0 ] || skip "needs root"
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    [ -x "$UZRAM" ] || skip "no $UZ_BUILD/uzram"
    "$UZRAM" mount --help >/dev/null 2>&1 || skip "uzram built without FUSE"
    local t
    for t in "$@"; do command -v "$t" >/dev/null || skip "no $t"; done
}

stop_uzram() {
    if grep -q " $1 fuse.uzram " /proc/self/mounts; then
        "$UZRAM" umount "$1" || umount -l "$1"
    fi
    if [ -f "$2" ]; then kill "$(cat "$2")" 2>/dev/null; fi
    return 0
}

URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_SAVED=

uring_select() {
    local want=${UZ_IO_URING:-auto}
    UZ_TRANSPORT=dev_fuse
    [ -w "$URING_PARAM" ] || return 0        # no FUSE over io_uring here: /dev/fuse
    [ -n "$URING_SAVED" ] || URING_SAVED=$(cat "$URING_PARAM")
    if [ "$want" = off ]; then
        echo N > "$URING_PARAM"
    else
        echo Y > "$URING_PARAM"
        UZ_TRANSPORT=io_uring
    fi
}

uring_restore() {
    if [ -n "$URING_SAVED" ]; then echo "$URING_SAVED" > "$URING_PARAM"; fi
    URING_SAVED=
}

check_transport() {   # DIR
    local t rr
    t=$(head -n 1 "$1/.transport") || fail "$1/.transport cannot be read"
    [ "$t" = "$UZ_TRANSPORT" ] || fail "$1 serves over $t, not $UZ_TRANSPORT: $(tail -n +2 "$1/.transport")"
    rr=$(sed -n 's/.*ring_requests=\([0-9]*\).*/\1/p' "$1/.transport")
    if [ "$t" = io_uring ] && [ "${rr:-0}" -eq 0 ]; then
        fail "$1: no request came through the rings"
    fi
    echo "transport of $1: $t, $(sed -n 2p "$1/.transport")"
}

fuse_setup() {
    WORK=$(mktemp -d "/tmp/uzram-$1.XXXXXX")
    DIR=$WORK/dev
    PIDFILE=$WORK/daemon.pid
    mkdir -p "$DIR"
    trap fuse_cleanup EXIT
    trap 'exit 130' INT TERM
    uring_select
}

fuse_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
    stop_uzram "$DIR" "$PIDFILE"
    uring_restore
    rm -rf "$WORK"
    exit $rc
}

# Take down by hand whatever of this test's is still up under
# $UZRAM_RUNDIR (uzram swapon/up devices): swap, file systems on their loop
# devices, the loop devices, the mounts.  For cleanup traps.
rundir_teardown() {
    local d l m
    for d in "$UZRAM_RUNDIR"/*; do
        [ -d "$d" ] || continue
        for l in $(losetup -j "$d/disk" -O NAME -n 2>/dev/null); do
            swapoff "$l" 2>/dev/null
            for m in $(findmnt -n -o TARGET -S "$l"); do umount "$m"; done
            losetup -d "$l"
        done
        grep -q " $d fuse.uzram " /proc/self/mounts && { "$UZRAM" umount "$d" || umount -l "$d"; }
    done
}
