# SPDX-License-Identifier: BSD-2-Clause
# nbd_common.sh - sourced by the tests/nbd_*.sh system tests after they set
# WORK (their scratch directory), SERVERS=() and uri() (a server's URI by
# NAME): what both need besides their own start_server.
#
#   pass MSG / fail MSG       one check's result; fail counts into FAILED
#   check MSG COMMAND...      pass if the command succeeds, else fail
#   M                         a MiB, in bytes
#   MLOCK                     (mlock=false) when the servers may not lock memory
#   stop_server NAME          SIGTERM, then wait until the process is gone
#   qio NAME COMMAND...       qemu-io commands on uri NAME; fails on a non-zero
#                             exit or any reported error or pattern mismatch

FAILED=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=$((FAILED + 1)); }
check() {   # check DESCRIPTION COMMAND... : pass if the command succeeds
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

M=$((1024 * 1024))

# Locking memory needs privilege; unprivileged runs test without it.
MLOCK=()
if [ "$(id -u)" != 0 ] && [ "$(ulimit -l)" != unlimited ]; then
    MLOCK=(mlock=false)
    echo "note: not root: servers run with mlock=false"
fi

stop_server() {
    local pid
    pid=$(cat "$WORK/$1.pid")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    fail "nbdkit ($1) did not exit on SIGTERM"
    kill -9 "$pid" 2>/dev/null || true
}

qio() {
    local name=$1; shift
    local args=() c out
    for c in "$@"; do args+=(-c "$c"); done
    if ! out=$(qemu-io -f raw "$(uri "$name")" "${args[@]}" 2>&1); then
        echo "$out"; return 1
    fi
    if grep -qiE 'fail|error|mismatch' <<<"$out"; then
        echo "$out"; return 1
    fi
}
