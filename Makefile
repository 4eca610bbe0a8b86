# Thin wrapper over CMake. The commands a new user runs:
#   make demo   build and run the demo
#   make test   build and run every test (installs missing test tools)
# Also: make memcheck, make asan, make bench (then make bench-table), make bugbench,
# make fuzz-smoke, make install.
MAKEFLAGS  += --no-print-directory
BUILD      ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD?= build-bench
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE      ?= cmake
PREFIX     ?= /usr/local

.PHONY: all build demo test memcheck asan bench bench-table bugbench sched-vs-seeds fuzz-smoke fuzz-planted fuzz-long install clean deps-test deps-bench kv-sweep kv-sweep-bug kv-shrink

all: build

# Each target configures the one build dir with what it needs and builds
# only that: the demo and install need no test tools (no libcmocka-dev);
# `make build` / `make test` build everything, tests included.
build:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_BUILD_TESTS=ON -DREEL_BUILD_EXAMPLES=ON >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)

demo:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_BUILD_TESTS=OFF -DREEL_BUILD_EXAMPLES=ON >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS) --target demo reel-trace
	@./$(BUILD)/demo

deps-test:
	@tools/ensure-deps test

deps-bench:
	@tools/ensure-deps bench

test: deps-test build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

memcheck: deps-test build
	@tools/memcheck $(BUILD)

asan: deps-test
	@$(CMAKE) -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_SANITIZE=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

bench: deps-bench
	@$(CMAKE) -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DREEL_BUILD_BENCH=ON -DREEL_BUILD_TESTS=OFF >/dev/null
	@$(CMAKE) --build $(BENCH_BUILD) -j $(JOBS)
	@bash -c 'set -o pipefail; { tools/run-bench "$$1" && bench/kv_vs_redis.sh "$$1"; } 2>&1 | tee "$$1/bench.txt"' \
		bench $(BENCH_BUILD)
	@echo "make bench: output saved in $(BENCH_BUILD)/bench.txt; the README table: make bench-table"

# The README's Performance table from the last `make bench` (its saved
# output); `tools/bench-table --update-readme $(BENCH_BUILD)/bench.txt`
# rewrites it in README.md.
bench-table:
	@tools/bench-table $(BENCH_BUILD)/bench.txt

# How the default swarm finds the planted bugs (tests/bugs/): each bug and
# its fixed variant over seeds 1..BUGBENCH_SEEDS; prints a table.
BUGBENCH_SEEDS ?= 2000
bugbench: deps-test build
	@tools/bugbench $(BUILD) $(BUGBENCH_SEEDS) $(JOBS)

# Schedule fuzzing against random seeds on the planted bugs: executions
# to the first failure, TRIALS trials from random starting seeds, beside
# 1/p from a seed sweep (tools/sched-vs-seeds says how; long: about 2-5
# minutes per bug on a free core). WORLD=swarm (the bugs' own world) or
# WORLD=short (a 1 s fault phase for every bug, each trial capped at CAP
# executions, default 3000) or WORLD=sparse (the short world with the
# swarm's rates scaled by 0.05: every bug rare for seeds); METHODS picks the fuzzers (lf-ids: decisions
# addressed by identity).
WORLD   ?= swarm
METHODS ?= lf-state lf-ids
sched-vs-seeds:
	@tools/ensure-deps fuzz
	@WORLD=$(WORLD) METHODS="$(METHODS)" tools/sched-vs-seeds

# Fuzz each fuzz/fuzz_*.c harness for FUZZ_SECONDS (libFuzzer, and AFL++
# when it can be installed); fails on any crash or hang.
FUZZ_SECONDS ?= 60
fuzz-smoke:
	@tools/ensure-deps fuzz || echo "fuzz-smoke: could not install AFL++; libFuzzer only"
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz-smoke

# The planted defects of fuzz/planted/ must each be found within
# PLANTED_SECONDS (default 60) by libFuzzer through the fuzz kit.
PLANTED_SECONDS ?= 60
fuzz-planted:
	@tools/ensure-deps fuzz || true
	@PLANTED_SECONDS=$(PLANTED_SECONDS) tools/fuzz-planted

# The long run: each parser harness (tools/fuzz-long) fuzzed LONG_SECONDS
# (default 600) on one core with libFuzzer; one summary line each.
LONG_SECONDS ?= 600
fuzz-long:
	@LONG_SECONDS=$(LONG_SECONDS) tools/fuzz-long


# reel-kv's simulated cluster under faults over many seeds (ctest runs 8):
# KV_SEEDS seeds must show 0 violations; kv-sweep-bug builds a planted bug
# (KV_BUG=promote_stale or wait_counts_sent) and must find it; kv-shrink
# finds it, shrinks its fault schedule (tools/reel-shrink) and reruns the
# failing run from the shrunk schedule (tools/kv-shrink).
KV_SEEDS ?= 1000
KV_BUG   ?= promote_stale
kv-sweep: build
	@KV_CLUSTER_SEEDS=$(KV_SEEDS) ./$(BUILD)/test_kv_cluster
kv-sweep-bug:
	@$(CMAKE) -S . -B build-kv-bug -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_KV_BUG=$(KV_BUG) >/dev/null
	@$(CMAKE) --build build-kv-bug -j $(JOBS) --target test_kv_cluster
	@if KV_CLUSTER_SEEDS=$(KV_SEEDS) ./build-kv-bug/test_kv_cluster; then \
		echo "kv-sweep-bug: the planted bug $(KV_BUG) was NOT found in $(KV_SEEDS) seeds"; exit 1; \
	else echo "kv-sweep-bug: planted bug $(KV_BUG) found (rerun a seed: REEL_SEED=N build-kv-bug/test_kv_cluster)"; fi
kv-shrink:
	@$(CMAKE) -S . -B build-kv-bug -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_KV_BUG=$(KV_BUG) >/dev/null
	@$(CMAKE) --build build-kv-bug -j $(JOBS) --target test_kv_cluster
	@tools/kv-shrink --seeds $(KV_SEEDS) --out build-kv-bug/kv-$(KV_BUG).shrunk.sched ./build-kv-bug/test_kv_cluster

install:
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_BUILD_TESTS=OFF -DREEL_BUILD_EXAMPLES=OFF >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS)
	@$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD) build-kv-bug
