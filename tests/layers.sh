#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# layers.sh - the structure src/README.md states, checked: no include
# and no call (the objects' undefined symbols) points up the layers (but
# the one named edge), frontends use the public
# API only, the store's content counters are written in slot.c alone, and
# frontends/fuse.c stays a server (at most 900 lines), and every source,
# script and build file names its license (an SPDX line in its first 3).
set -euo pipefail
src=${UZ_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src"

declare -A layer=(
  [error]=0 [mem]=0 [hash]=0 [hash_avx2]=0 [dynlib]=0 [parse]=0 [varray]=0 [sparsebits]=0 [codec]=0 [streams]=0
  [alloc]=0 [zsmalloc]=0 [zspack]=0 [prefault]=0 [xvmalloc]=0 [mallocator]=0 [backing]=0
  [backing_file]=0 [backing_nbd]=0
  [store]=0 [uzram]=0
  [slot]=1 [shared]=1 [page]=2 [dedup]=2 [group]=3 [writeback]=3 [recompress]=3 [train]=3
  [clone]=1 [store_life]=4 [device]=4 [io]=4 [iostat]=4 [pool]=4 [policy]=5 [attr]=6
)
allowed_up="store_life.c:policy.h"
fail=0

for f in src/*.c src/*.h; do
  base=$(basename "$f"); name=${base%.*}
  own=${layer[$name]:-}
  if [ -z "$own" ]; then
    echo "layers: $f is in no layer: add it to src/README.md and tests/layers.sh" >&2
    fail=1; continue
  fi
  while read -r inc; do
    iname=${inc%.h}
    il=${layer[$iname]:-}
    [ -z "$il" ] && { echo "layers: $f includes \"$inc\", which is in no layer" >&2; fail=1; continue; }
    if [ "$il" -gt "$own" ] && [ "$base:$inc" != "$allowed_up" ]; then
      echo "layers: $f (layer $own) includes $inc (layer $il): an edge up the layers" >&2
      fail=1
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | sed 's|.*/||')
done

# calls, not only includes: every undefined symbol of a library object
# file (nm -u on build/'s objects) is defined by an object of its own
# layer or a lower one (but the one named edge); an inline in a header
# is the header's layer, checked above.  A self-test first: a layer-1
# object that calls a layer-4 function must be caught.
build=${UZ_BUILD:-$src/build}
objdir=$build/CMakeFiles/uzram_obj.dir/src
if ! ls "$objdir"/*.c.o >/dev/null 2>&1; then
  echo "layers: no object files in $objdir: build first (cmake --build build)" >&2
  fail=1
else
  declare -A defined_by=()
  while read -r obj sym; do
    defined_by[$sym]=$obj
  done < <(for o in "$objdir"/*.c.o; do
             n=$(basename "$o" .c.o)
             nm --defined-only -g "$o" | awk -v n="$n" 'NF == 3 { print n, $3 }'
           done)
  # check_calls NAME OBJECT: the calls of OBJECT (as file NAME.c) up the layers
  check_calls() {
    local name=$1 obj=$2 own=${layer[$1]:-} bad=0
    while read -r sym; do
      local to=${defined_by[$sym]:-}
      [ -z "$to" ] && continue          # libc, libraries: not ours
      local tl=${layer[$to]:-}
      [ -z "$tl" ] && continue
      if [ "$tl" -gt "$own" ] && [ "$name.c:$to.h" != "$allowed_up" ]; then
        echo "layers: $name.c (layer $own) calls $sym in $to.c (layer $tl): a call up the layers" >&2
        bad=1
      fi
    done < <(nm -u "$obj" | awk '{ print $2 }')
    return "$bad"
  }
  for o in "$objdir"/*.c.o; do
    n=$(basename "$o" .c.o)
    [ -n "${layer[$n]:-}" ] || continue   # reported above
    check_calls "$n" "$o" || fail=1
  done
  # the self-test: an object of layer 1 that calls uz_dev_init (layer 4)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  printf 'int uz_dev_init(void *d, unsigned long n);\nint probe(void *d) { return uz_dev_init(d, 1); }\n' > "$tmp/slot.c"
  cc -c -o "$tmp/slot.c.o" "$tmp/slot.c"
  if check_calls slot "$tmp/slot.c.o" 2>/dev/null; then
    echo "layers: the call check let a layer-1 call to uz_dev_init (layer 4) through" >&2
    fail=1
  fi
fi

# frontends: uzram.h, their own headers, system and library headers only
for f in frontends/*.c frontends/*.h; do
  while read -r inc; do
    case "$inc" in
      uzram.h|fuse.h|exports.h|fuse_kabi.h|fuse_uring.h) ;;
      *) echo "layers: $f includes \"$inc\": frontends use the public API only" >&2; fail=1 ;;
    esac
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done

# the content counters (struct uz_tally) are slot.c's alone
if grep -n 'tally\.' src/*.c | grep -vE '^src/slot\.c:' ; then
  echo "layers: the lines above touch the tally outside slot.c (use uz_slot_commit / uz_tally_read)" >&2
  fail=1
fi
# and nobody but uz_slot_commit changes a slot's handle, state or live count
if grep -nE 'slot_set_handle\(|uz_varray_live\(|uz_slot_set_state\(' src/*.c | grep -vE '^src/(slot|varray)\.c:'; then
  echo "layers: the lines above change a slot's content outside slot.c" >&2
  fail=1
fi

n=$(wc -l < frontends/fuse.c)
if [ "$n" -gt 900 ]; then
  echo "layers: frontends/fuse.c has $n lines (at most 900: the command line belongs in tools/)" >&2
  fail=1
fi

# every source, script and build file carries the LICENSE's SPDX line
for f in src/* include/* tools/* frontends/* tests/*.c tests/*.sh tests/*.h tests/lib/* \
         tests/deb/* tests/fuzz/*.c bench/* mk/* CMakeLists.txt Makefile; do
  [ -f "$f" ] || continue
  case $f in *.md|*.txt|*.svg|*.gp|*.zst|*.supp|*.pages) continue ;; esac
  if ! head -3 "$f" | grep -q 'SPDX-License-Identifier: BSD-2-Clause'; then
    echo "layers: $f has no 'SPDX-License-Identifier: BSD-2-Clause' line in its first 3" >&2
    fail=1
  fi
done

[ "$fail" = 0 ] && echo "layers: every include and every call runs down the layers; frontends on uzram.h; counters in slot.c; SPDX lines"
exit "$fail"
