# SPDX-License-Identifier: BSD-2-Clause
# uzram top-level Makefile: the two commands a newcomer runs.
#
#   make demo    install what is missing, build, run the main job
#   make check   install what is missing, build, pass every test
#                (normal build, ASan+UBSan build, TSan build of the
#                concurrency tests)
#
# Other targets: build, bench, fuzz, stress, valgrind, clean.

DEBS = build-essential cmake pkg-config clang liblz4-dev liblzo2-dev libzstd-dev zlib1g-dev \
       libcmocka-dev libfuse3-dev fuse3 liburing-dev nbdkit nbdkit-plugin-dev libnbd-bin libnbd-dev qemu-utils \
       zstd e2fsprogs util-linux valgrind libclang-rt-14-dev libxxhash-dev gnuplot-nox man-db systemd \
       dpkg-dev debhelper lintian

JOBS ?= $(shell nproc)
CORPUS ?= ../shared/corpus

.PHONY: all deps build build-asan build-tsan demo check test bench clean

# Further targets (fuzz, stress, valgrind, ...) live in mk/*.mk; each may
# add a target name to CHECK_EXTRA for `make check` to run at its end.
CHECK_EXTRA :=
-include mk/*.mk

all: build

# Install the Debian packages that are missing (apt-get update once, only
# when something is missing; needs root).
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j$(JOBS)

build-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DUZ_SANITIZE=address >/dev/null
	cmake --build build-asan -j$(JOBS)

build-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DUZ_SANITIZE=thread >/dev/null
	cmake --build build-tsan -j$(JOBS)

test: build
	cd build && ctest --output-on-failure -j$(JOBS)

check: build build-asan build-tsan
	@echo "== tests (release build)"
	cd build && ctest --output-on-failure -j$(JOBS)
	@echo "== unit tests under AddressSanitizer + UBSan"
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS) -L "unit|concurrency"
	@echo "== concurrency tests under ThreadSanitizer"
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j$(JOBS) -L concurrency
	@for t in $(CHECK_EXTRA); do echo "== $$t"; $(MAKE) --no-print-directory $$t || exit 1; done
	@echo "make check: all passed"

demo: build
	bash tools/demo.sh

bench: build
	build/uzram bench --kernel-zram $(wildcard $(CORPUS)/*.pages.zst)

clean:
	rm -rf build build-asan build-tsan
