#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# make_incompressible.sh - a page file of real compressed data, the worst
# case for a compressed RAM store: almost every page is stored raw.
#
#   bash bench/make_incompressible.sh OUT [MIB]
#
# Takes the compressed files already on the machine -- Debian packages in
# /var/cache/apt/archives (*.deb: ar archives of xz/zstd tarballs) and the
# gzip'd documentation and manual pages under /usr/share (*.gz) -- in
# sorted path order, concatenates them (cat) and keeps the first MIB MiB
# (default 128), cut to whole 4 KiB pages: the page-file format of
# `uzram capture` and the corpus (raw 4 KiB pages, nothing else), which
# `uzram bench` and the tests read.  The files are interleaved one .deb,
# then one .gz, ... so the small gzip blobs (with their short headers and
# trailers, which do compress a little) are spread through the file rather
# than gathered in one region.
#
# SOURCES (environment) replaces the file list with a shell glob of your
# own, e.g. SOURCES='/usr/lib/x86_64-linux-gnu/*.xz'.  The same machine
# and the same packages give the same file.  Exit 1 if the sources do not
# add up to MIB MiB.
set -euo pipefail

OUT=${1:?usage: make_incompressible.sh OUT [MIB]}
MIB=${2:-128}
BYTES=$((MIB << 20))

list() {
    if [ -n "${SOURCES:-}" ]; then
        # shellcheck disable=SC2086
        ls -1d $SOURCES 2>/dev/null | sort
        return
    fi
    # one .deb, one .gz, one .deb, ... (paste interleaves the two lists)
    paste -d '\n' \
        <(find /var/cache/apt/archives -maxdepth 1 -name '*.deb' -size +64k 2>/dev/null | sort) \
        <(find /usr/share/doc /usr/share/man -name '*.gz' -size +16k 2>/dev/null | sort) |
        grep -v '^$'
}

TMP=$(mktemp "${OUT}.XXXXXX")
trap 'rm -f "$TMP"' EXIT
# cat stops at the byte count: head closes the pipe, so the list is read
# only as far as needed
list | while IFS= read -r f; do cat -- "$f"; done 2>/dev/null | head -c "$BYTES" > "$TMP" || true
got=$(stat -c %s "$TMP")
if [ "$got" -lt "$BYTES" ]; then
    echo "make_incompressible.sh: only $got bytes of compressed files found, $BYTES wanted" >&2
    exit 1
fi
chmod 644 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
echo "$OUT: $((BYTES / 4096)) pages of real compressed data"
