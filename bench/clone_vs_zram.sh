#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# clone_vs_zram.sh - eight disks holding one golden image: a uzram pool of
# a device and seven clones, against eight kernel zram devices each given
# a copy (kernel zram has no clone: the copy is dd, device to device).
#
#   bash bench/clone_vs_zram.sh          (as root; UZ_BUILD=build by default)
#
# The image: SIZE_MB (default 1024) of real pages, the corpus's pages in
# turn (sqlite + perl, unpacked), each round's copy of a page marked in its
# last 8 bytes with the round number so that no page repeats another
# (repeats would be deduplicated by uzram, not by zram: not what this
# measures).  Both sides get the same bytes.
#
#   uzram   `uzram bench-pool IMAGE --clones 7`: clone times and the pool's
#           footprint for 1 and for 8 devices, every page of every device
#           read back and compared (it exits 1 otherwise)
#   zram    a device of our own (hot_add, lz4) filled with dd (O_DIRECT),
#           then seven more, each filled by dd from the first (timed:
#           what making a copy costs there); mem_used_total summed; the
#           last copy compared with the image (cmp)
#
# Prints both sides' figures and the ratios.  Devices are removed on exit,
# also on failure.  Environment: SIZE_MB, CORPUS (default ../shared/corpus).
set -euo pipefail

UZ_BUILD=$(realpath "${UZ_BUILD:-build}")
SIZE_MB=${SIZE_MB:-1024}
CORPUS=${CORPUS:-$(dirname "$0")/../../shared/corpus}
[ "$(id -u)" = 0 ] || { echo "run as root (kernel zram devices)" >&2; exit 1; }
[ -e /sys/class/zram-control/hot_add ] || modprobe zram num_devices=1
WORK=$(mktemp -d /tmp/uzram-clone.XXXXXX)
ZDEVS=()
cleanup() {
    for z in "${ZDEVS[@]}"; do
        echo 1 > /sys/block/zram$z/reset 2>/dev/null || true
        echo "$z" > /sys/class/zram-control/hot_remove 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# the image
python3 - "$CORPUS" "$WORK/image.pages" "$SIZE_MB" <<'PY'
import struct, subprocess, sys
corpus, out, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
pages = b"".join(subprocess.run(["zstd", "-dc", f"{corpus}/{n}.pages.zst"], check=True,
                                capture_output=True).stdout for n in ("sqlite", "perl"))
n = len(pages) // 4096
want = size_mb * 256
with open(out, "wb") as f:
    for i in range(want):
        p = bytearray(pages[(i % n) * 4096:(i % n + 1) * 4096])
        if i >= n:
            p[4088:4096] = struct.pack("<Q", i // n)
        f.write(p)
PY
echo "image: $SIZE_MB MiB of real pages ($(( SIZE_MB * 256 )) pages)"

# uzram: a device and seven clones in one pool
"$UZ_BUILD/uzram" bench-pool --size ${SIZE_MB}M --clones 7 "$WORK/image.pages" > "$WORK/uzram.json"
python3 - "$WORK/uzram.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"uzram: clone {d['clone_ms']:.3f} ms (the longest of 7: {d['clone_max_ms']:.3f} ms); "
      f"1 device {d['one_footprint_bytes'] / 2**20:.1f} MiB, 8 devices {d['all_footprint_bytes'] / 2**20:.1f} MiB "
      f"({d['all_over_one']:.4f} x); pages differing {d['pages_differing']}")
PY

# kernel zram: eight devices, seven of them dd copies of the first
mm_used() { awk '{print $3}' /sys/block/zram$1/mm_stat; }
# a new device, its number in Z (not in a subshell: cleanup must see ZDEVS)
new_zram() {
    Z=$(cat /sys/class/zram-control/hot_add)
    ZDEVS+=("$Z")
    echo lz4 > /sys/block/zram$Z/comp_algorithm
    echo ${SIZE_MB}M > /sys/block/zram$Z/disksize
}
new_zram
Z0=$Z
dd if="$WORK/image.pages" of=/dev/zram$Z0 bs=1M oflag=direct status=none
one=$(mm_used "$Z0")
total=$one
copy_ms=()
for k in 1 2 3 4 5 6 7; do
    new_zram
    z=$Z
    t0=$(date +%s%N)
    dd if=/dev/zram$Z0 of=/dev/zram$z bs=1M iflag=direct oflag=direct status=none
    t1=$(date +%s%N)
    copy_ms+=("$(( (t1 - t0) / 1000000 ))")
    total=$(( total + $(mm_used "$z") ))
    last=$z
done
cmp "$WORK/image.pages" /dev/zram$last || { echo "FAIL: zram$last differs from the image" >&2; exit 1; }
echo "kernel zram: copy ${copy_ms[*]} ms; 1 device $(( one / 1048576 )) MiB, 8 devices $(( total / 1048576 )) MiB" \
     "($(python3 -c "print(f'{$total / $one:.4f}')") x); the last copy compared: same"
python3 - "$WORK/uzram.json" "$one" "$total" "${copy_ms[@]}" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
one, total = int(sys.argv[2]), int(sys.argv[3])
copies = [int(x) for x in sys.argv[4:]]
print(f"uzram / zram: 8 devices' memory {d['all_footprint_bytes'] / total:.3f}; "
      f"making a copy {d['clone_ms'] / statistics.median(copies):.6f} (median zram copy {statistics.median(copies)} ms)")
PY
