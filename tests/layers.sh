#!/usr/bin/env bash
# layers.sh - the structure src/README.md states, checked: no include
# points up the layers (but the one named edge), frontends use the public
# API only, the store's content counters are written in slot.c alone, and
# frontends/fuse.c stays a server (at most 900 lines).
set -euo pipefail
src=${UZ_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src"

declare -A layer=(
  [error]=0 [mem]=0 [dynlib]=0 [parse]=0 [varray]=0 [sparsebits]=0 [codec]=0 [streams]=0
  [alloc]=0 [zsmalloc]=0 [zspack]=0 [prefault]=0 [xvmalloc]=0 [mallocator]=0 [backing]=0
  [store]=0 [uzram]=0
  [slot]=1 [shared]=1 [page]=2 [dedup]=2 [group]=3 [writeback]=3 [recompress]=3
  [device]=4 [io]=4 [iostat]=4 [pool]=4 [policy]=5 [attr]=6
)
allowed_up="device.c:policy.h"
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

# frontends: uzram.h, their own headers, system and library headers only
for f in frontends/*.c frontends/*.h; do
  while read -r inc; do
    case "$inc" in
      uzram.h|fuse.h|fuse_kabi.h|fuse_uring.h) ;;
      *) echo "layers: $f includes \"$inc\": frontends use the public API only" >&2; fail=1 ;;
    esac
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done

# the content counters (struct uz_tally) are slot.c's alone
if grep -n 'tally\.' src/*.c | grep -vE '^src/(slot|shared)\.c:' ; then
  echo "layers: the lines above touch dev->tally outside slot.c and shared.c (use uz_slot_commit / uz_tally_read)" >&2
  fail=1
fi
# and nobody but uz_slot_commit changes a slot's handle, state or live count
if grep -nE 'slot_set_handle\(|uz_varray_live\(|uz_slot_set_state\(' src/*.c | grep -vE '^src/(slot|shared|varray)\.c:'; then
  echo "layers: the lines above change a slot's content outside slot.c" >&2
  fail=1
fi

n=$(wc -l < frontends/fuse.c)
if [ "$n" -gt 900 ]; then
  echo "layers: frontends/fuse.c has $n lines (at most 900: the command line belongs in tools/)" >&2
  fail=1
fi

[ "$fail" = 0 ] && echo "layers: every include runs down the layers; frontends on uzram.h; counters in slot.c"
exit "$fail"
