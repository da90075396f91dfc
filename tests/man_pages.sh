#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# man_pages.sh - the manual: each page renders with `man -l` without a
# warning, is installed by `cmake --install` (into a DESTDIR) where man
# finds it by name, and covers the programs it documents:
#   uzram(1)               every command `uzram --help` lists has its
#                          subsection, and every option the command's
#                          --help prints is in that subsection
#   nbdkit-uzram-plugin(1) every parameter `nbdkit PLUGIN --help` prints
#   uzram.conf(5)          every key `uzram-generator --help` lists
#   libuzram(3)            every function include/uzram.h exports
# and each page (as built into UZ_BUILD/man and as installed) gives the
# version `uzram --version` prints, which the build put in place of the
# sources' @PROJECT_VERSION@.
# Needs man (man-db) and python3; exits 77 without them.  Env: UZ_BUILD, UZ_SRC.
set -euo pipefail

UZ_BUILD=$(realpath "${UZ_BUILD:-build}")
UZ_SRC=$(realpath "${UZ_SRC:-.}")
command -v man >/dev/null || { echo "SKIP: no man"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
WORK=$(mktemp -d /tmp/uzram-man.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

PAGES="man1/uzram.1 man1/nbdkit-uzram-plugin.1 man3/libuzram.3 man5/uzram.conf.5"
version=$("$UZ_BUILD/uzram" --version | sed -n 's/^uzram \([0-9][0-9.]*\)$/\1/p')
[ -n "$version" ] || fail "uzram --version printed no version: $("$UZ_BUILD/uzram" --version)"
# the page's version: the fourth field of its .TH line
th_version() { sed -n 's/^\.TH [^"]*"[^"]*" "uzram \([^"]*\)".*/\1/p' "$1"; }
for p in $PAGES; do
    grep -q '^\.TH .*"uzram @PROJECT_VERSION@"' "$UZ_SRC/man/$p" ||
        fail "man/$p does not take its version from the build (@PROJECT_VERSION@ in .TH)"
    [ -f "$UZ_BUILD/man/$p" ] || fail "the build did not write $UZ_BUILD/man/$p"
    v=$(th_version "$UZ_BUILD/man/$p")
    [ "$v" = "$version" ] || fail "$p says version '$v', uzram --version '$version'"
done
echo "ok: the four pages say version $version, as uzram --version"
for p in $PAGES; do
    out=$WORK/$(basename "$p").txt
    LC_ALL=C MANWIDTH=100 man --warnings -l "$UZ_BUILD/man/$p" > "$out" 2> "$WORK/warn" ||
        fail "man -l $p failed"
    [ ! -s "$WORK/warn" ] || { cat "$WORK/warn"; fail "$p renders with warnings"; }
    grep -q "^NAME" "$out" && grep -q "^SEE ALSO" "$out" || fail "$p lacks NAME or SEE ALSO"
    echo "ok: $p renders ($(wc -l < "$out") lines)"
done

# uzram(1): commands and their options
"$UZ_BUILD/uzram" --help > "$WORK/help.txt"
for cmd in $(sed -n 's/^usage: uzram \([a-z][a-z-]*\).*/\1/p' "$WORK/help.txt" | sort -u); do
    "$UZ_BUILD/uzram" "$cmd" --help > "$WORK/help-$cmd.txt" 2>&1 || true
done
python3 - "$WORK" <<'PY'
import glob, re, sys
work = sys.argv[1]
text = open(work + "/uzram.1.txt").read()
# subsections render as "   uzram CMD" lines
parts = re.split(r"^   uzram ([a-z-]+)\s*$", text, flags=re.M)
sections = dict(zip(parts[1::2], parts[2::2]))
opt = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
missing = []
for f in sorted(glob.glob(work + "/help-*.txt")):
    cmd = f[len(work) + 6:-4]
    if cmd not in sections:
        missing.append("no subsection for 'uzram %s'" % cmd)
        continue
    opts = set(opt.findall(open(f).read())) - {"-h", "--help"}
    for o in sorted(opts):
        if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", sections[cmd]):
            missing.append("uzram %s: %s" % (cmd, o))
    print("uzram %-12s %2d options documented" % (cmd, len(opts)))
if missing:
    sys.exit("FAIL: not in uzram(1): " + ", ".join(missing))
PY

# nbdkit-uzram-plugin(1): the plugin's parameters
if command -v nbdkit >/dev/null && [ -f "$UZ_BUILD/nbdkit-uzram-plugin.so" ]; then
    nbdkit "$UZ_BUILD/nbdkit-uzram-plugin.so" --help > "$WORK/plugin-help.txt" 2>&1 || true
    keys=$(sed -n 's/^\([a-z_]*\)=<.*/\1/p' "$WORK/plugin-help.txt")
    [ -n "$keys" ] || fail "nbdkit --help printed no parameters"
    for k in $keys; do
        grep -q "^       $k=" "$WORK/nbdkit-uzram-plugin.1.txt" || fail "nbdkit-uzram-plugin(1) lacks $k="
    done
    echo "ok: nbdkit-uzram-plugin(1) documents $(echo $keys | wc -w) parameters"
else
    echo "note: no nbdkit or plugin: its parameters not checked"
fi

# uzram.conf(5): the generator's keys
keys=$("$UZ_BUILD/uzram-generator" --help | sed -n 's/^    \([a-z-]*\)$/\1/p')
[ "$(echo "$keys" | wc -w)" -ge 10 ] || fail "uzram-generator --help lists no keys"
for k in $keys; do
    grep -q "^       $k=" "$WORK/uzram.conf.5.txt" || fail "uzram.conf(5) lacks $k"
done
echo "ok: uzram.conf(5) documents $(echo $keys | wc -w) keys"

# libuzram(3): the exported functions
funcs=$(sed -n 's/^UZRAM_API [^(]*[ *]\(uzram_[a-z_]*\)(.*/\1/p' "$UZ_SRC/include/uzram.h")
[ "$(echo "$funcs" | wc -w)" -ge 15 ] || fail "found no functions in uzram.h"
for f in $funcs; do
    grep -q "$f(" "$WORK/libuzram.3.txt" || fail "libuzram(3) lacks $f"
done
echo "ok: libuzram(3) documents $(echo $funcs | wc -w) functions"

# installed where man finds them
DESTDIR=$WORK/dest cmake --install "$UZ_BUILD" > "$WORK/install.log"
mandir=$(find "$WORK/dest" -type d -name man -path "*/share/man" | head -1)
[ -n "$mandir" ] || fail "cmake --install installed no manual"
for name in "1 uzram" "1 nbdkit-uzram-plugin" "3 libuzram" "5 uzram.conf"; do
    set -- $name
    path=$(man -M "$mandir" -w "$1" "$2") || fail "man -M ... $1 $2 finds nothing"
    case $path in "$mandir"/man$1/"$2".$1*) ;; *) fail "man found $path for $2($1)" ;; esac
    v=$(th_version "$path")
    [ "$v" = "$version" ] || fail "installed $path says version '$v', not $version"
done
echo "ok: cmake --install puts the four pages where man finds them"
echo PASS
