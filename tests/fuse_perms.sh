#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_perms.sh - no file of a mount that changes state can be used by a
# user other than root or the mount's owner (issue 19, finding 3), in a
# pool mount (allow_other, as root makes it) and in a single mount:
#
#   - modes: no file whose store or read changes state has a bit for
#     "other" users (stores 0200/0644, clone and hot_add 0400, disk 0600);
#   - as nobody: reading zramN/clone or hot_add is EACCES and makes no
#     device; writing any file (reset, disksize, hot_remove, mem_limit,
#     compact, idle, recompress, writeback, the pool's own ...) is EACCES
#     and changes nothing; the disk cannot be opened;
#   - the server checks the sender itself, beside the kernel's
#     default_permissions: a descriptor root opened, used by nobody, is
#     refused on the read that would create and on every store;
#   - what zram lets anyone read stays readable: mm_stat, io_stat, stat,
#     disksize, pool_stat, ... (0444 / 0644), and reading them creates
#     nothing;
#   - root still does all of it, and the known data reads back identical.
#
# Needs root, /dev/fuse, setpriv, the nobody user; exits 77 (skip)
# otherwise.  Env: UZ_BUILD (build dir, default ./build).
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount setpriv cmp
id nobody >/dev/null 2>&1 || skip "no user nobody"
NOGROUP=$(id -gn nobody)
AS_NOBODY=(setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups)
"${AS_NOBODY[@]}" true || skip "setpriv cannot switch to nobody"

SINGLE=
cleanup_extra() {
    exec 3<&- 4>&- 2>/dev/null || true
    if [ -n "$SINGLE" ] && grep -q " $SINGLE fuse.uzram " /proc/self/mounts; then
        "$UZRAM" umount "$SINGLE" || umount -l "$SINGLE"
    fi
    return 0
}
fuse_setup perms
chmod 755 "$WORK"            # nobody must reach the mount point
SINGLE=$WORK/single
mkdir -p "$SINGLE"

# A snapshot of the pool's state: its devices, each one's size and
# state, and every setting the pool and its devices show.
snapshot() {   # DIR
    local d f
    ls "$1"
    for d in "$1" "$1"/zram*; do
        for f in "$d"/*; do
            [ -f "$f" ] || continue
            case "${f##*/}" in
                disksize|initstate|comp_algorithm|algorithm_params|dedup|auto_compact|group_pages|\
                writeback_limit|writeback_limit_enable|forward_threshold|writeback_compressed|\
                recompress_policy|writeback_policy|max_comp_streams|backing_dev|recomp_algorithm)
                    echo "$f: $(cat "$f")";;
            esac
        done
    done
    awk '{print "pool_stat: devices", $1, "disksize", $2, "mem_limit", $12}' "$1/pool_stat"
}

# as_nobody_fails WHAT CMD...: CMD as nobody fails with "Permission denied"
as_nobody_fails() {
    local what=$1 out
    shift
    if out=$("${AS_NOBODY[@]}" "$@" 2>&1); then
        fail "as nobody, $what succeeded (printed '$out')"
    fi
    case "$out" in *"Permission denied"*) ;; *) fail "as nobody, $what: '$out', want EACCES";; esac
}

step "a pool of two 16M devices, served by root (allow_other), a known file on zram0"
"$UZRAM" pool "$DIR" --size 16M --devices 2 --pidfile "$PIDFILE"
grep " $DIR fuse.uzram " /proc/self/mounts | grep -q allow_other ||
    fail "root's pool mount is not allow_other: the test would not test the server"
head -c 4M /dev/urandom > "$WORK/known"
dd if="$WORK/known" of="$DIR/zram0/disk" bs=1M conv=notrunc status=none
snapshot "$DIR" > "$WORK/before"

step "modes: nothing that changes state has a bit for other users"
for f in "$DIR"/* "$DIR"/zram-control/* "$DIR"/zram1/*; do
    [ -f "$f" ] || continue
    m=$(stat -c %a "$f")
    o=${m: -1} g=${m: -2:1}
    case "${f##*/}" in
        clone|hot_add|hot_remove|disk) [ "$o$g" = 00 ] || fail "$f is mode $m";;
        *) [ "$o" = 0 ] || [ "$o" = 4 ] || fail "$f is mode $m: others may write it"
           [ "$g" = "$o" ] || fail "$f is mode $m";;
    esac
done
[ "$(stat -c %a "$DIR/zram1/clone")" = 400 ] || fail "clone is not 0400 as hot_add"
[ "$(stat -c %a "$DIR/zram-control/hot_add")" = 400 ] || fail "hot_add is not 0400"
[ "$(stat -c %a "$DIR/zram1/disk")" = 600 ] || fail "disk is not 0600"

step "as nobody: cat clone and hot_add are EACCES and make no device"
as_nobody_fails "cat zram1/clone" cat "$DIR/zram1/clone"
as_nobody_fails "cat zram0/clone" cat "$DIR/zram0/clone"
as_nobody_fails "cat hot_add" cat "$DIR/zram-control/hot_add"
[ ! -e "$DIR/zram2" ] || fail "nobody made zram2"

step "as nobody: every store is EACCES and changes nothing"
n=0
for f in "$DIR"/* "$DIR"/zram-control/* "$DIR"/zram1/* "$DIR"/zram0/*; do
    [ -f "$f" ] || continue
    case "${f##*/}" in disk) continue;; esac
    for v in 1 0 16M all idle; do
        as_nobody_fails "writing $v to $f" sh -c "printf '%s\n' '$v' > '$f'"
    done
    n=$((n + 1))
done
[ "$n" -gt 40 ] || fail "only $n files tried"
as_nobody_fails "reading zram0/disk" dd if="$DIR/zram0/disk" of=/dev/null count=1 status=none
as_nobody_fails "writing zram1/disk" dd if=/dev/zero of="$DIR/zram1/disk" count=1 conv=notrunc status=none
snapshot "$DIR" > "$WORK/after"
diff "$WORK/before" "$WORK/after" || fail "nobody's refused stores changed the pool"

step "the server's own check: descriptors root opened, used by nobody"
exec 3<"$DIR/zram1/clone"
as_nobody_fails "reading a clone descriptor" cat <&3
exec 3<&-
exec 3<"$DIR/zram-control/hot_add"
as_nobody_fails "reading a hot_add descriptor" cat <&3
exec 3<&-
[ ! -e "$DIR/zram2" ] || fail "nobody made zram2 through root's descriptor"
for f in zram-control/hot_remove zram1/reset zram1/disksize zram1/compact zram1/idle \
         zram1/mem_limit zram1/writeback zram1/recompress zram0/reset mem_limit dedup compact; do
    exec 4>"$DIR/$f"
    out=$(printf '1\n' | "${AS_NOBODY[@]}" dd status=none 2>&1 >&4) &&
        fail "nobody wrote $f through root's descriptor"
    case "$out" in *"Permission denied"*) ;; *) fail "nobody writing $f through a descriptor: $out";; esac
    exec 4>&-
done
snapshot "$DIR" > "$WORK/after"
diff "$WORK/before" "$WORK/after" || fail "nobody changed the pool through root's descriptors"

step "as nobody: the statistics stay readable, and reading them creates nothing"
for f in mm_stat pool_stat dedup_stat debug_stat comp_algorithm dedup zram0/mm_stat zram0/io_stat \
         zram0/stat zram0/disksize zram0/initstate zram0/bd_stat zram1/comp_algorithm; do
    "${AS_NOBODY[@]}" cat "$DIR/$f" >/dev/null || fail "nobody cannot read $f"
done
"${AS_NOBODY[@]}" ls "$DIR" "$DIR/zram1" >/dev/null || fail "nobody cannot list the pool"
snapshot "$DIR" > "$WORK/after"
diff "$WORK/before" "$WORK/after" || fail "reading the statistics changed the pool"
cmp -n 4194304 "$WORK/known" "$DIR/zram0/disk" || fail "zram0 lost the known data"

step "root still may: clone, hot_add, hot_remove"
[ "$(cat "$DIR/zram0/clone")" = 2 ] || fail "root's clone"
cmp -n 4194304 "$WORK/known" "$DIR/zram2/disk" || fail "the clone does not hold the known data"
[ "$(cat "$DIR/zram-control/hot_add")" = 3 ] || fail "root's hot_add"
echo 3 > "$DIR/zram-control/hot_remove"
echo 2 > "$DIR/zram-control/hot_remove"
[ ! -e "$DIR/zram2" ] && [ ! -e "$DIR/zram3" ] || fail "root's hot_remove"
kill -0 "$(cat "$PIDFILE")" || fail "the pool's server died"

step "a single mount: nobody reads the statistics only"
"$UZRAM" mount "$SINGLE" --size 16M
dd if="$WORK/known" of="$SINGLE/disk" bs=1M conv=notrunc status=none
for f in reset disksize mem_limit compact idle writeback recompress comp_algorithm dedup; do
    as_nobody_fails "writing $f" sh -c "echo 1 > '$SINGLE/$f'"
    exec 4>"$SINGLE/$f"
    out=$(printf '1\n' | "${AS_NOBODY[@]}" dd status=none 2>&1 >&4) &&
        fail "nobody wrote $f through root's descriptor"
    exec 4>&-
done
as_nobody_fails "reading the disk" cat "$SINGLE/disk"
"${AS_NOBODY[@]}" cat "$SINGLE/mm_stat" "$SINGLE/io_stat" "$SINGLE/disksize" >/dev/null ||
    fail "nobody cannot read a single mount's statistics"
[ "$(cat "$SINGLE/initstate")" = 1 ] && [ "$(cat "$SINGLE/disksize")" = 16777216 ] ||
    fail "nobody changed the single mount"
cmp -n 4194304 "$WORK/known" "$SINGLE/disk" || fail "the single mount lost the known data"
"$UZRAM" umount "$SINGLE"
echo PASS
