#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_heaps.sh UZRAM OUTDIR - page files of real process memory, made here:
# three programs in three languages each build a working set of their own,
# then `uzram capture` saves their resident writable private pages (what a
# swap device would be handed) and the programs are stopped.
#   node.pages    node: 300k small objects with strings and arrays
#   python.pages  python: a word index of /usr/include (dicts, lists, str)
#   java.pages    java: a HashMap<String,int[]> of 400k entries (the JVM heap)
# A program that is missing is skipped and said so.
set -euo pipefail
uz=${1:?usage: make_heaps.sh UZRAM OUTDIR}
out=${2:?usage: make_heaps.sh UZRAM OUTDIR}
mkdir -p "$out"
pids=()
work=$(mktemp -d /tmp/uzram-heaps.XXXXXX)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# run NAME CMD...: start CMD, wait (60 s at most) for it to print "ready",
# capture it into OUTDIR/NAME.pages, stop it
run() {
    local name=$1; shift
    if ! command -v "$1" >/dev/null; then echo "make_heaps: $1 not found: no $name.pages"; return; fi
    mkfifo "$work/$name.fifo"
    "$@" >"$work/$name.fifo" 2>&1 &
    local pid=$!
    pids+=("$pid")
    if ! timeout 60 grep -q -m1 ready "$work/$name.fifo"; then
        echo "make_heaps: $name did not get ready in 60 s" >&2; return 1
    fi
    rm -f "$out/$name.pages"
    "$uz" capture "$pid" "$out/$name.pages"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$name.pages: $(( $(stat -c %s "$out/$name.pages") / 4096 )) pages"
}

run node node -e '
const a = [];
for (let i = 0; i < 300000; i++)
  a.push({id: i, name: "user" + i, mail: "u" + (i * 7919 % 100003) + "@example.org",
          tags: ["t" + (i % 100), "g" + (i % 37)], score: Math.floor(Math.random() * 1000)});
console.log("ready"); setInterval(() => a.length, 1000);'

run python python3 -c '
import os, re, sys, time
index, lines = {}, []
for root, _, files in os.walk("/usr/include"):
    for f in files:
        try:
            with open(os.path.join(root, f), errors="replace") as fh:
                for n, line in enumerate(fh):
                    lines.append(line.rstrip())
                    for w in re.findall(r"[A-Za-z_]\w+", line):
                        index.setdefault(w, []).append((f, n))
        except OSError:
            pass
    if len(lines) > 1500000:
        break
print("ready", flush=True)
time.sleep(3600)'

if command -v java >/dev/null; then
    cat >"$work/Heap.java" <<'JAVA'
import java.util.*;
public class Heap {
    public static void main(String[] a) throws Exception {
        Map<String, int[]> m = new HashMap<>();
        Random r = new Random(1);
        for (int i = 0; i < 400000; i++)
            m.put("key-" + i + "-" + Integer.toHexString(r.nextInt()), new int[] {i, r.nextInt(100), i % 17});
        System.out.println("ready");
        Thread.sleep(3600_000);
        System.out.println(m.size());
    }
}
JAVA
fi
run java java -Xmx512m -Xms256m "$work/Heap.java"
