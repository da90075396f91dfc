#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_dup_pages.sh OUT [N] - a page file of real memory with duplicate
# pages: the resident pages of N (default 2) instances of one program
# (python3 importing a set of standard modules and building the same
# data), captured with `uzram capture` one after the other into OUT.  The
# instances share their code and most of their heap's contents, as two
# VMs or containers running one image do; what differs (addresses,
# hashes seeded per process, allocator state) differs on real pages.
set -euo pipefail
out=${1:?usage: make_dup_pages.sh OUT [N]}
n=${2:-2}
uzram=${UZRAM:-$(dirname "$0")/../build/uzram}
py=$(command -v python3)
work=$(mktemp -d /tmp/uzram-dup.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cat >"$work/prog.py" <<'PY'
import sys, os, json, email, email.parser, sqlite3, decimal, collections, re, textwrap, csv, io
import xml.dom.minidom, argparse, logging, http.client, unittest, difflib, pickle
rows = [{"id": i, "name": "user%05d" % i, "score": (i * 7919) % 1000 / 10.0,
         "tags": ["t%d" % (i % 17), "g%d" % (i % 5)]} for i in range(60000)]
text = json.dumps(rows)
back = json.loads(text)
db = sqlite3.connect(":memory:")
db.execute("create table t (id integer primary key, name text, score real)")
db.executemany("insert into t values (?, ?, ?)", [(r["id"], r["name"], r["score"]) for r in rows])
db.commit()
words = collections.Counter(re.findall(r"[a-z]+", textwrap.dedent(open(json.__file__).read())))
print("ready", flush=True)
sys.stdin.read()
PY
for i in $(seq "$n"); do
    mkfifo "$work/in$i"
    "$py" "$work/prog.py" <"$work/in$i" >"$work/out$i" &
    pids+=($!)
    exec {fd}>"$work/in$i"   # keep stdin open: the program waits on it
done
for i in $(seq "$n"); do
    for _ in $(seq 600); do grep -q ready "$work/out$i" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$work/out$i" || { echo "instance $i did not start" >&2; exit 1; }
done
rm -f "$out"
for p in "${pids[@]}"; do
    kill -STOP "$p"
    "$uzram" capture "$p" "$out"
done
echo "$out: $(( $(stat -c %s "$out") / 4096 )) pages from $n instances of python3"
