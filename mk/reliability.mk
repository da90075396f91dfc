# SPDX-License-Identifier: BSD-2-Clause
# mk/reliability.mk - reliability targets (included by the top Makefile).
#
#   make fuzz FUZZ_SECONDS=N       build build-fuzz/fuzz_store (libFuzzer + ASan +
#                                  UBSan, clang, compiled straight from src/*.c so
#                                  the library is instrumented) and fuzz it for N
#                                  seconds (default 60) on a scratch copy of
#                                  tests/fuzz/corpus; prints the number of store
#                                  operations run; fails on any crash (the input
#                                  is kept in build-fuzz/artifacts/)
#   make stress STRESS_SECONDS=N   the ThreadSanitizer build (build-tsan) of
#                                  test_stress_threads, run for N seconds (default 30)
#   make valgrind                  the unit tests of build/ under valgrind memcheck
#                                  (--leak-check=full, any error fails)
#
# `make check` ends with fuzz-check: 120 seconds of fuzzing (over a million
# store operations, each batch followed by the store's invariant check).

# This file is included before the Makefile's first rule: keep `make` alone
# meaning `make all` by restoring the default goal at the end.
reliability_saved_goal := $(.DEFAULT_GOAL)

FUZZ_SECONDS ?= 120
STRESS_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_DIR := build-fuzz
FUZZ_SRCS = $(sort $(wildcard src/*.c))
FUZZ_DEFS = -DUZRAM_BUILD=1 \
            $(if $(wildcard src/xvmalloc.c),-DUZ_HAVE_XVMALLOC=1) \
            $(if $(wildcard src/mallocator.c),-DUZ_HAVE_MALLOCATOR=1)
# Extra flags for the fuzz build.  Both library bugs the fuzzer's
# workarounds were for (misaligned streams, the malloc allocator leaking on
# destroy) are fixed, so the workarounds are off: full UBSan, and
# FUZZ_MALLOC_LEAK_WORKAROUND=0 so LeakSanitizer watches every allocator.
FUZZ_WORKAROUNDS ?= -DFUZZ_MALLOC_LEAK_WORKAROUND=0
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(FUZZ_WORKAROUNDS) \
              -Iinclude -Isrc -I/usr/include/lzo
FUZZ_LIBS = -llz4 -lzstd -lz -llzo2 -lxxhash -lpthread -lm
FUZZ_FLAGS = -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=120 -max_len=4096 \
             -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/

.PHONY: fuzz fuzz-build fuzz-check fuzz-clean stress valgrind

$(FUZZ_DIR)/fuzz_store: tests/fuzz/fuzz_store.c $(FUZZ_SRCS) $(wildcard src/*.h include/*.h) \
                        mk/reliability.mk | deps
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_DEFS) $(FUZZ_SRCS) tests/fuzz/fuzz_store.c -o $@ $(FUZZ_LIBS)

fuzz-build: $(FUZZ_DIR)/fuzz_store

fuzz: $(FUZZ_DIR)/fuzz_store
	@rm -rf $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	@cp tests/fuzz/corpus/* $(FUZZ_DIR)/corpus/
	@echo "fuzz_store: fuzzing for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/fuzz.log)"
	@if $(FUZZ_DIR)/fuzz_store $(FUZZ_FLAGS) $(FUZZ_DIR)/corpus >$(FUZZ_DIR)/fuzz.log 2>&1; then \
	  grep -E '^(fuzz_store: [0-9]+ operations|stat::number_of_executed_units|Done )' $(FUZZ_DIR)/fuzz.log; \
	  echo "fuzz: no crash"; \
	else \
	  tail -n 80 $(FUZZ_DIR)/fuzz.log; \
	  echo "fuzz: FAILED; reproduce with: $(FUZZ_DIR)/fuzz_store $(FUZZ_DIR)/artifacts/<file>" >&2; \
	  exit 1; \
	fi

fuzz-clean:
	rm -rf $(FUZZ_DIR)

# what `make check` runs
fuzz-check:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

CHECK_EXTRA += fuzz-check

# STRESS_DIR / VALGRIND_DIR: the build to use (default the Makefile's
# build-tsan / build, made first; another directory is used as it is).
STRESS_DIR ?= build-tsan
VALGRIND_DIR ?= build

stress: $(if $(filter build-tsan,$(STRESS_DIR)),build-tsan)
	UZ_STRESS_SECONDS=$(STRESS_SECONDS) TSAN_OPTIONS=halt_on_error=1 \
	  $(STRESS_DIR)/tests/test_stress_threads

# Unit tests (not the threads/stress ones) under memcheck; a test's output
# goes to $(VALGRIND_DIR)/valgrind-NAME.log and is shown if it fails.
valgrind: $(if $(filter build,$(VALGRIND_DIR)),build)
	@fail=""; for t in $(VALGRIND_DIR)/tests/test_*; do \
	  [ -x "$$t" ] || continue; \
	  n=$$(basename $$t); \
	  case $$n in *threads*|*stress*) continue;; esac; \
	  printf '== valgrind %s ... ' $$n; start=$$(date +%s); \
	  if UZ_CORPUS=$(CURDIR)/../shared/corpus UZ_BUILD=$(CURDIR)/$(VALGRIND_DIR) UZ_SRC=$(CURDIR) \
	     valgrind -q --error-exitcode=1 --leak-check=full --suppressions=tests/valgrind.supp $$t >$(VALGRIND_DIR)/valgrind-$$n.log 2>&1; then \
	    echo "ok ($$(( $$(date +%s) - start )) s)"; \
	  else \
	    echo "FAILED"; tail -n 60 $(VALGRIND_DIR)/valgrind-$$n.log; fail="$$fail $$n"; \
	  fi; \
	done; \
	if [ -n "$$fail" ]; then echo "valgrind: failed:$$fail" >&2; exit 1; fi; \
	echo "valgrind: all passed"

.DEFAULT_GOAL := $(reliability_saved_goal)
