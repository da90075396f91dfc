#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fuse_mmap.sh - a shared mapping of DIR/disk (issue 13 part 4; LTP's
# zram03 maps the device shared and writes through the mapping): a
# pattern written through mmap(MAP_SHARED), msync'd and unmapped reads
# back byte for byte through pread, and what pwrite stores is seen by a
# new mapping.  The disk stays direct_io; the server accepts the kernel's
# FUSE_DIRECT_IO_ALLOW_MMAP at INIT.  Skips where the kernel lacks it
# (before 6.6: mmap gives ENODEV).
#
# Needs root, /dev/fuse, python3.  Env: UZ_BUILD (build dir, default ./build).
set -euo pipefail

. "$(dirname "$0")/lib/fuse_common.sh"
need_fuse_mount python3
fuse_setup mmap

MIB=256
step "mount, disksize ${MIB}M"
"$UZRAM" mount "$DIR" --size 0 --pidfile "$PIDFILE"
echo "${MIB}M" > "$DIR/disksize"
[ "$(stat -c %s "$DIR/disk")" = $((MIB << 20)) ] || fail "disk size $(stat -c %s "$DIR/disk")"

step "write ${MIB} MiB through a shared mapping, msync, munmap; pread every byte back"
rc=0
python3 - "$DIR/disk" "$MIB" <<'EOF' || rc=$?
import hashlib, mmap, os, sys
path, mib = sys.argv[1], int(sys.argv[2])
size, PAGE = mib << 20, 4096

def page(p, salt=b""):
    """Page p's content: every 16th incompressible, the rest a 20-byte period."""
    if p % 16 == 5:
        return hashlib.shake_128(salt + p.to_bytes(8, "little")).digest(PAGE)
    unit = p.to_bytes(8, "little") + ((p * 0x9E3779B97F4A7C15) & (2**64 - 1)).to_bytes(8, "little") + salt[:4].ljust(4, b"m")
    return (unit * (PAGE // len(unit) + 1))[:PAGE]

def chunk(c, salt=b""):
    first = c * 256
    return b"".join(page(p, salt) for p in range(first, first + 256))

fd = os.open(path, os.O_RDWR)
try:
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
except OSError as e:
    import errno
    if e.errno == errno.ENODEV:
        print("SKIP: mmap(MAP_SHARED) of a direct_io FUSE file: ENODEV (kernel without FUSE_DIRECT_IO_ALLOW_MMAP?)")
        sys.exit(77)
    raise
for c in range(mib):
    mm[c << 20:(c + 1) << 20] = chunk(c)
mm.flush()          # msync(MS_SYNC)
mm.close()          # munmap
os.close(fd)

fd = os.open(path, os.O_RDONLY)
for c in range(mib):
    got = os.pread(fd, 1 << 20, c << 20)
    if got != chunk(c):
        bad = next(i for i in range(len(got)) if i >= len(got) or got[i] != chunk(c)[i])
        sys.exit(f"FAIL: byte {(c << 20) + bad} differs after msync/munmap")
os.close(fd)

# pwrite, then a new mapping sees it: three regions, one crossing a MiB
fd = os.open(path, os.O_RDWR)
regions = [(0, 8), (100, 3), (mib - 1, 1)]
for first, n in regions:
    for c in range(first, first + n):
        os.pwrite(fd, chunk(c, b"pwrite"), c << 20)
os.pwrite(fd, b"X" * 10000, (50 << 20) - 5000)
mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
for c in range(mib):
    want = chunk(c, b"pwrite") if any(f <= c < f + n for f, n in regions) else chunk(c)
    if c == 49:
        want = want[:-5000] + b"X" * 5000
    elif c == 50:
        want = b"X" * 5000 + want[5000:]
    if mm[c << 20:(c + 1) << 20] != want:
        sys.exit(f"FAIL: MiB {c} of a new mapping is not what pwrite stored")
mm.close()
os.close(fd)
print(f"{mib} MiB through mmap read back by pread; pwrite seen by a new mapping")
EOF
[ "$rc" = 77 ] && skip "no shared mappings of direct_io FUSE files on this kernel"
[ "$rc" = 0 ] || fail "the mapping check failed"

step "the data is the device's"
read -r orig compr _ < "$DIR/mm_stat"
[ "$orig" -gt $(((MIB - 1) << 20)) ] || fail "orig_data_size $orig after writing ${MIB} MiB"
[ "$compr" -lt "$orig" ] || fail "compr_data_size $compr not below orig $orig"
echo "mm_stat: orig $orig compr $compr"

step "direct I/O still goes straight to the device"
python3 - "$DIR/disk" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 1 << 20)
buf.write(b"D" * (1 << 20))
assert os.pwritev(fd, [buf], 7 << 20) == 1 << 20
os.close(fd)
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.pread(fd, 1 << 20, 7 << 20) == b"D" * (1 << 20), "O_DIRECT write not read back"
os.close(fd)
EOF

check_transport "$DIR"
step "umount"
"$UZRAM" umount "$DIR"
echo "PASS"
