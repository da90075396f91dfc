#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# packages.sh - the Debian packages (debian/), built, installed, used and
# purged for real.
#
# The tree is copied to a scratch directory (its files as git lists them,
# or the whole checkout without build*/ when it is not a git checkout), so
# build/ is not touched, and built there with `dpkg-buildpackage -us -uc
# -b` (nocheck: `make check` runs the unit tests itself; noautodbgsym;
# parallel=nproc).  Then:
#   - lintian on the four packages: no error, no warning;
#   - each package holds what debian/control says it does (the soname and
#     the symbols file, the header, the .so link and uzram.pc, the command,
#     the generator, the conffile, the plugin in nbdkit's plugindir, the
#     four manual pages);
#   - `apt-get install ./*.deb`; the installed /etc/uzram.conf names no
#     device (the generator writes nothing from it);
#   - `uzram swapon` / `uzram swapoff` with the installed command;
#   - `nbdkit uzram size=64M` (the installed plugin, found by name): nbdinfo
#     reads its size, and 64 MiB written with nbdcopy read back identical;
#   - a ten-line program built with `pkg-config --cflags --libs uzram`
#     runs against the installed libuzram.so.0 and reads back its page;
#   - /etc/uzram.conf with one device: the installed generator writes its
#     unit, `systemd-analyze verify` passes it (and fails a broken copy),
#     and `uzram up`/`down` bring that device up and down;
#   - `apt-get purge`: no file dpkg -L listed is left (but the directories
#     that were there before), nor the conffile, the generator, the plugin
#     or the library in ld.so's cache.
#
# Refuses to run (fails) if any of the four packages is installed already:
# its cleanup purges them.  The trap purges whatever of them is installed
# and puts back an /etc/uzram.conf that existed before.
# Needs root, /dev/fuse and loop devices (exits 77 otherwise), and
# dpkg-dev, debhelper, lintian (the Makefile's package list).
set -euo pipefail

SRC=${UZ_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PKGS=(libuzram0 libuzram-dev uzram nbdkit-plugin-uzram)
CONF=/etc/uzram.conf
GEN=/usr/lib/systemd/system-generators/uzram-generator

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (installs and purges packages)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
for t in dpkg-buildpackage dh lintian apt-get pkg-config cc nbdkit nbdinfo nbdcopy \
         systemd-analyze losetup mkswap swapon swapoff blkid man; do
    command -v "$t" >/dev/null || fail "no $t (make deps installs what the tests need)"
done
[ -f "$SRC/debian/control" ] || fail "no $SRC/debian/control"

status() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true; }
for p in "${PKGS[@]}"; do
    s=$(status "$p")
    case $s in ""|not-installed) ;;
        *) fail "$p is on this machine already ($s): this test installs and purges it; purge it first";;
    esac
done

WORK=$(mktemp -d /tmp/uzram-deb.XXXXXX)
export UZRAM_RUNDIR=$WORK/run
unset UZRAM_CONF
HAD_CONF=0
NBD_PID=

cleanup() {
    local rc=$? p l d ours=()
    set +e
    trap - EXIT
    if [ -n "$NBD_PID" ] && kill -0 "$NBD_PID" 2>/dev/null; then
        kill "$NBD_PID"
        for _ in $(seq 50); do kill -0 "$NBD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$NBD_PID" 2>/dev/null
    fi
    # a swap of ours still up: swap off, detach its loop device, unmount
    for d in "$UZRAM_RUNDIR"/*; do
        [ -d "$d" ] || continue
        for l in $(losetup -j "$d/disk" -O NAME -n 2>/dev/null); do
            swapoff "$l" 2>/dev/null
            losetup -d "$l"
        done
        grep -q " $d fuse.uzram " /proc/self/mounts && { fusermount3 -u -z "$d" || umount -l "$d"; }
    done
    for p in "${PKGS[@]}"; do
        case $(status "$p") in ""|not-installed) ;; *) ours+=("$p");; esac
    done
    if [ ${#ours[@]} -gt 0 ]; then
        echo "cleanup: purging ${ours[*]}"
        dpkg --purge "${ours[@]}" >/dev/null
    fi
    rm -f "$CONF"
    [ "$HAD_CONF" = 1 ] && cp -a "$WORK/saved.conf" "$CONF"
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# An /etc/uzram.conf of the machine's own is kept aside (in WORK, so a
# killed test leaves it there) and put back by the trap: the package's
# conffile would otherwise meet a file dpkg does not know.
if [ -e "$CONF" ] || [ -L "$CONF" ]; then
    cp -a "$CONF" "$WORK/saved.conf"
    HAD_CONF=1
    rm -f "$CONF"
    echo "note: $CONF kept aside, put back at the end"
fi

step "copy of the tree"
mkdir "$WORK/src"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked and untracked files, not the ignored ones (build*/)
    (cd "$SRC" && git ls-files -z -c -o --exclude-standard |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -x -C "$WORK/src"
else
    (cd "$SRC" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -x -C "$WORK/src"
fi
[ -f "$WORK/src/debian/rules" ] || fail "the copy has no debian/rules"
[ -e "$WORK/src/build" ] && fail "the copy holds build/"

step "dpkg-buildpackage -us -uc -b"
start=$(date +%s)
if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$(nproc)" \
        dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1); then
    tail -n 60 "$WORK/build.log"
    fail "dpkg-buildpackage failed"
fi
echo "built in $(( $(date +%s) - start )) s"
ver=$(cd "$WORK/src" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
for p in "${PKGS[@]}"; do
    [ -f "$WORK/${p}_${ver}_${arch}.deb" ] || fail "no ${p}_${ver}_${arch}.deb"
done
n=$(find "$WORK" -maxdepth 1 -name '*.deb' | wc -l)
[ "$n" = ${#PKGS[@]} ] || fail "$n .deb files, not ${#PKGS[@]}: $(ls "$WORK"/*.deb)"
(cd "$WORK" && ls -l ./*.deb)

step "lintian"
lrc=0
lintian --fail-on error,warning "$WORK"/*.changes >"$WORK/lintian.log" 2>&1 || lrc=$?
grep -v '^running with root' "$WORK/lintian.log" || true
[ "$lrc" = 0 ] || fail "lintian reports errors or warnings (exit $lrc)"
if grep -qE '^[EW]: ' "$WORK/lintian.log"; then fail "lintian reports errors or warnings"; fi
echo "ok: no lintian error or warning"

step "what each package holds"
plugindir=$(pkg-config --variable=plugindir nbdkit)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# a package's paths as dpkg -L prints them: /usr/bin, not ./usr/bin/
contents() {
    dpkg-deb -c "$WORK/${1}_${ver}_${arch}.deb" | awk '{print $6}' |
        sed -e 's|^\./|/|' -e 's|\(.\)/$|\1|'
}
holds() {   # PACKAGE PATH...
    local p=$1 f; shift
    for f in "$@"; do contents "$p" | grep -qx "$f" || fail "$p does not hold $f"; done
}
holds libuzram0 "/usr/lib/$multiarch/libuzram.so.0.2.0" "/usr/lib/$multiarch/libuzram.so.0"
dpkg-deb -I "$WORK/libuzram0_${ver}_${arch}.deb" symbols | grep -q '^libuzram.so.0 libuzram0 ' ||
    fail "libuzram0 has no symbols file for libuzram.so.0"
mkdir "$WORK/x"
dpkg-deb -x "$WORK/libuzram0_${ver}_${arch}.deb" "$WORK/x"
so=$(objdump -p "$WORK/x/usr/lib/$multiarch/libuzram.so.0.2.0" | awk '$1 == "SONAME" {print $2}')
[ "$so" = libuzram.so.0 ] || fail "soname is '$so', not libuzram.so.0"
holds libuzram-dev /usr/include/uzram.h "/usr/lib/$multiarch/libuzram.so" \
    "/usr/lib/$multiarch/pkgconfig/uzram.pc" /usr/share/man/man3/libuzram.3.gz
holds uzram /usr/bin/uzram "$GEN" "$CONF" /usr/share/man/man1/uzram.1.gz \
    /usr/share/man/man5/uzram.conf.5.gz
[ "$(dpkg-deb -I "$WORK/uzram_${ver}_${arch}.deb" conffiles)" = "$CONF" ] ||
    fail "$CONF is not uzram's one conffile"
holds nbdkit-plugin-uzram "$plugindir/nbdkit-uzram-plugin.so" \
    /usr/share/man/man1/nbdkit-uzram-plugin.1.gz
echo "ok: the files are where they belong"

# the paths that exist before the install (shared directories such as
# /usr/lib/systemd/system-generators) may stay after the purge
for p in "${PKGS[@]}"; do contents "$p"; done | grep -vx / | sort -u > "$WORK/paths"
while read -r f; do
    if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
done < "$WORK/paths" > "$WORK/before"

step "apt-get install ./*.deb"
(cd "$WORK" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
    ./*.deb >"$WORK/install.log" 2>&1) || { cat "$WORK/install.log"; fail "apt-get install failed"; }
for p in "${PKGS[@]}"; do
    [ "$(status "$p")" = installed ] || fail "$p is not installed: $(status "$p")"
done
for p in "${PKGS[@]}"; do dpkg -L "$p"; done | grep -vx '/\.' | sort -u > "$WORK/listed"
diff "$WORK/paths" "$WORK/listed" || fail "dpkg -L differs from the packages' contents"
[ "$(command -v uzram)" = /usr/bin/uzram ] || fail "uzram on PATH is $(command -v uzram)"
uzram --version
grep -q '^\[' "$CONF" && fail "the installed $CONF names a device"
mkdir -p "$WORK/gen0"/{normal,early,late}
env -u UZRAM_RUNDIR "$GEN" "$WORK/gen0/normal" "$WORK/gen0/early" "$WORK/gen0/late" || fail "generator fails on the installed $CONF"
[ -z "$(find "$WORK/gen0" -mindepth 2)" ] || fail "the installed $CONF gives units: $(find "$WORK/gen0" -mindepth 2)"
for page in 1/uzram 5/uzram.conf 3/libuzram 1/nbdkit-uzram-plugin; do
    f=$(env -u MANPATH man -w "${page%%/*}" "${page#*/}" 2>/dev/null) || fail "man ${page#*/}: no page"
    [ "$f" = "/usr/share/man/man${page%%/*}/${page#*/}.${page%%/*}.gz" ] || fail "man ${page#*/} is $f"
done
echo "ok: installed; $CONF names no device; man pages found"

step "uzram swapon / swapoff"
LOOP=$(uzram swapon --size 64M --priority 5)
echo "swap on $LOOP"
grep -q "^$LOOP " /proc/swaps || fail "$LOOP is not in /proc/swaps"
[ "$(blkid -o value -s TYPE "$LOOP")" = swap ] || fail "no swap signature on $LOOP"
[ "$(grep "^$LOOP " /proc/swaps | awk '{print $5}')" = 5 ] || fail "priority is not 5"
uzram swapoff
grep -q "^$LOOP " /proc/swaps && fail "$LOOP still swapping after swapoff"
losetup -a | grep -q "$UZRAM_RUNDIR/" && fail "a loop device is left"
grep -q " $UZRAM_RUNDIR/" /proc/self/mounts && fail "a uzram mount is left"
echo "ok: swap on and off, nothing left"

step "nbdkit uzram size=64M"
dump=$(nbdkit --dump-plugin uzram) || fail "nbdkit does not find the uzram plugin"
grep -qx "path=$plugindir/nbdkit-uzram-plugin.so" <<<"$dump" || fail "plugin path: $(grep ^path= <<<"$dump")"
# in the foreground, in the background: the pid file is written once it listens
nbdkit -f -U "$WORK/nbd.sock" -P "$WORK/nbd.pid" uzram size=64M &
NBD_PID=$!
for _ in $(seq 100); do [ -s "$WORK/nbd.pid" ] && break; kill -0 "$NBD_PID" || break; sleep 0.1; done
[ -s "$WORK/nbd.pid" ] || fail "nbdkit uzram size=64M did not start"
URI="nbd+unix:///?socket=$WORK/nbd.sock"
size=$(nbdinfo --size "$URI")
[ "$size" = $((64 << 20)) ] || fail "nbdinfo --size: $size, not $((64 << 20))"
nbdinfo "$URI" > "$WORK/nbdinfo.txt"
grep -E 'export-size|uri:' "$WORK/nbdinfo.txt"
# 64 MiB: random pages, text, zero pages
{ head -c 16M /dev/urandom; { yes "uzram package test line" || true; } | head -c 24M; head -c 24M /dev/zero; } > "$WORK/in"
nbdcopy "$WORK/in" "$URI"
nbdcopy "$URI" "$WORK/out"
cmp "$WORK/in" "$WORK/out" || fail "64 MiB through nbdkit uzram read back different"
nbdinfo --map "$URI" > "$WORK/map.txt"
cat "$WORK/map.txt"
# the random and text pages are data, the zero pages a hole
grep -qE '^ +0 +41943040 +0 +data$' "$WORK/map.txt" || fail "nbdinfo --map: the first 40 MiB are not data"
grep -qE '^ +41943040 +25165824 +3 +hole,zero$' "$WORK/map.txt" || fail "nbdinfo --map: the zero pages are not a hole"
kill "$NBD_PID"
for _ in $(seq 100); do kill -0 "$NBD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$NBD_PID" 2>/dev/null && fail "nbdkit did not exit on SIGTERM"
NBD_PID=
echo "ok: nbdinfo size $size; 64 MiB read back identical"

step "a program built with pkg-config --cflags --libs uzram"
cat > "$WORK/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <uzram.h>
int main(void) {
    struct uzram_config cfg; struct uzram *dev; char page[4096], back[4096];
    uzram_config_init(&cfg); cfg.disksize = 1 << 20;
    if (uzram_create(&cfg, &dev) != 0) { fprintf(stderr, "%s\n", uzram_last_error()); return 1; }
    for (int i = 0; i < 4096; i++) page[i] = (char)("packaged "[i % 9] + i / 1024);
    if (uzram_write(dev, page, 4096, 8192) || uzram_read(dev, back, 4096, 8192) || memcmp(page, back, 4096)) return 1;
    printf("%s ok\n", uzram_version()); uzram_destroy(dev); return 0;
}
C
[ "$(wc -l < "$WORK/prog.c")" -le 12 ] || fail "the program is not ten lines"
# shellcheck disable=SC2046
(unset PKG_CONFIG_PATH; cc -std=c11 -Wall -Werror -o "$WORK/prog" "$WORK/prog.c" $(pkg-config --cflags --libs uzram)) ||
    fail "the program does not build with pkg-config --cflags --libs uzram"
# (/lib is /usr/lib on a merged-/usr system: compare the files)
lib=$(ldd "$WORK/prog" | awk '$1 == "libuzram.so.0" {print $3}')
if [ -z "$lib" ] || [ "$(readlink -f "$lib")" != "/usr/lib/$multiarch/libuzram.so.0.2.0" ]; then
    fail "the program does not use the installed library: $(ldd "$WORK/prog" | grep uzram)"
fi
out=$("$WORK/prog") || fail "the program failed: $out"
[ "$out" = "$(pkg-config --modversion uzram) ok" ] || fail "the program says '$out'"
# one version: uzram.h's (the library, uzram.pc, uzram --version) and debian/changelog's
[ "$out" = "$ver ok" ] || fail "the library is ${out% ok}, debian/changelog says $ver"
[ "$(uzram --version)" = "uzram $ver" ] || fail "uzram --version: $(uzram --version), not uzram $ver"
echo "ok: $out"

step "the installed generator, $CONF with one device"
cat > "$CONF" <<'CONFEOF'
# written by tests/deb/packages.sh
[pkgswap]
zram-size = 64
compression-algorithm = lz4 zstd
swap-priority = 9
CONFEOF
mkdir -p "$WORK/gen"/{normal,early,late}
env -u UZRAM_RUNDIR "$GEN" "$WORK/gen/normal" "$WORK/gen/early" "$WORK/gen/late" || fail "the generator failed"
find "$WORK/gen" -mindepth 1 | sort
UNIT=$WORK/gen/normal/uzram-pkgswap.service
[ -f "$UNIT" ] || fail "no uzram-pkgswap.service"
[ "$(readlink "$WORK/gen/normal/swap.target.wants/uzram-pkgswap.service")" = ../uzram-pkgswap.service ] ||
    fail "uzram-pkgswap.service is not wanted by swap.target"
grep -qxE 'ExecStart="?/usr/bin/uzram"? up -- pkgswap' "$UNIT" || fail "ExecStart: $(grep ^ExecStart "$UNIT")"
grep -q 'UZRAM_' "$UNIT" && fail "the unit carries this test's environment: $(grep UZRAM_ "$UNIT")"
cat "$UNIT"
systemd-analyze verify --man=yes "$UNIT" || fail "systemd-analyze verify fails the unit"
mkdir "$WORK/broken"
sed 's|^ExecStart=.*|ExecStart=/nonexistent/uzram up -- pkgswap|' "$UNIT" > "$WORK/broken/uzram-pkgswap.service"
systemd-analyze verify --man=yes "$WORK/broken/uzram-pkgswap.service" >/dev/null 2>&1 &&
    fail "systemd-analyze verify passes a unit whose command does not exist"
uzram up -- pkgswap
LOOP=$(losetup -j "$UZRAM_RUNDIR/pkgswap/disk" -O NAME -n)
[ -n "$LOOP" ] || fail "uzram up: no loop device on $UZRAM_RUNDIR/pkgswap/disk"
[ "$(grep "^$LOOP " /proc/swaps | awk '{print $5}')" = 9 ] || fail "uzram up: $LOOP is not swap with priority 9"
uzram down -- pkgswap
grep -q "^$LOOP " /proc/swaps && fail "uzram down: $LOOP still swapping"
echo "ok: unit written and verified; up and down from $CONF"

step "apt-get purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 "${PKGS[@]}" \
    >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "apt-get purge failed"; }
for p in "${PKGS[@]}"; do
    case $(status "$p") in ""|not-installed) ;; *) fail "$p is left: $(status "$p")";; esac
done
leftover=0
while read -r f; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        grep -qxF "$f" "$WORK/before" || { echo "left: $f" >&2; leftover=1; }
    fi
done < "$WORK/listed"
[ "$leftover" = 0 ] || fail "files of the packages are left after the purge"
[ -e "$CONF" ] && fail "$CONF is left after the purge"
[ -e "$GEN" ] && fail "$GEN is left after the purge"
[ -e "$plugindir/nbdkit-uzram-plugin.so" ] && fail "the plugin is left after the purge"
ldconfig -p | grep -q libuzram && fail "libuzram is still in ld.so's cache"
nbdkit --dump-plugin uzram >/dev/null 2>&1 && fail "nbdkit still finds a uzram plugin"
echo "ok: purged: of the $(wc -l < "$WORK/listed") paths dpkg -L listed, none is left but the $(wc -l < "$WORK/before") directories there before"
echo "PASS"
