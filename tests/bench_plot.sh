#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# bench_plot.sh - `uzram bench --plot`: on 8 MiB of a corpus page file
# (with kernel zram too when this machine has a free one), the SVG must
# parse as XML and carry every series, and the figures in the gnuplot
# script beside it must be the ones the same run printed with --json:
# the fill speeds, the footprint after the fill (round 0) and after the
# last churn round.  --plot without --churn is refused.
#
# Needs gnuplot (exits 77 without it).  Env: UZ_BUILD, UZ_CORPUS.
set -euo pipefail

UZ_BUILD=${UZ_BUILD:-build}
UZRAM=$(realpath "$UZ_BUILD/uzram")
CORPUS=${UZ_CORPUS:-../shared/corpus}
command -v gnuplot >/dev/null || { echo "SKIP: no gnuplot"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
[ -f "$CORPUS/perl.pages.zst" ] || { echo "SKIP: no corpus at $CORPUS"; exit 77; }
WORK=$(mktemp -d /tmp/uzram-plot.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

zstd -q -dc "$CORPUS/perl.pages.zst" > "$WORK/all.pages"
head -c $((8 << 20)) "$WORK/all.pages" > "$WORK/small.pages"

if "$UZRAM" bench --plot "$WORK/x.svg" "$WORK/small.pages" 2>"$WORK/err"; then
    echo "FAIL: --plot without --churn accepted" >&2; exit 1
fi
grep -q "needs --churn" "$WORK/err" || { cat "$WORK/err"; exit 1; }

KZ=
[ "$(id -u)" = 0 ] && [ -e /sys/class/zram-control/hot_add ] && KZ=--kernel-zram
"$UZRAM" bench --churn 4 $KZ --json --plot "$WORK/plot.svg" "$WORK/small.pages" > "$WORK/out.json"
cat "$WORK/out.json"
python3 - "$WORK" "$KZ" <<'PY'
import json, re, sys, xml.etree.ElementTree as ET
work, kz = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(work + "/out.json")]
ET.parse(work + "/plot.svg")                      # well-formed XML
svg = open(work + "/plot.svg").read()
gp = open(work + "/plot.gp").read()
series = ["uzram zsmalloc"] + (["kernel zram"] if kz else [])
for s in series:
    assert s in svg, "no '%s' in the SVG" % s
mem = re.search(r"\$mem0 << EOD\n(.*?)EOD", gp, re.S).group(1).split("\n")[:-1]
assert len(mem) == 5, mem                         # round 0 and 4 churn rounds
speed = dict((m.group(1), (float(m.group(2)), float(m.group(3)))) for m in
             re.finditer(r'^"([^"]+)" ([\d.]+) ([\d.]+)$', gp, re.M))
def row(alloc, phase):
    return [r for r in rows if r["allocator"] == alloc and r["phase"] == phase][0]
MiB = 1048576.0
for k, (s, alloc) in enumerate(zip(series, ["zsmalloc", "kernel-zram"])):
    fill, churn = row(alloc, "fill"), row(alloc, "churn")
    w, r = speed[s]
    assert abs(w - fill["write_mb_s"]) < 0.11 and abs(r - fill["read_mb_s"]) < 0.11, (s, w, r, fill)
    first, last = mem[0].split(), mem[-1].split()
    fp0, c0 = float(first[1 + 2 * k]), float(first[2 + 2 * k])
    fpN, cN = float(last[1 + 2 * k]), float(last[2 + 2 * k])
    key = "footprint_bytes"
    assert abs(fp0 - fill[key] / MiB) < 0.001 and abs(c0 - fill["compr_bytes"] / MiB) < 0.001, (s, first, fill)
    assert abs(fpN - churn[key] / MiB) < 0.001 and abs(cN - churn["compr_bytes"] / MiB) < 0.001, (s, last, churn)
print("ok: the plot's figures are the run's:", ", ".join(series))
PY
echo PASS
