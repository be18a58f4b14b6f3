# Thin wrapper around CMake: `make demo` and `make test` do all set-up on a
# fresh Debian machine (see README.md).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 60
PYTHON     ?= /usr/bin/python3
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps build build-asan build-fuzz test unit integration interop test-asan demo bench fuzz fuzz-replay package clean

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DHERALD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

integration: build
	HERALD_BIN=$(CURDIR)/$(BUILD)/bin $(PYTHON) t/run-integration

# interop: herald and Debian's Postfix exchange mail both ways over
# STARTTLS on loopback (t/interop/test_postfix.py). As root it installs
# postfix when missing and purges it again afterwards (herald's package
# conflicts with it, so test_package.py would skip), unless
# KEEP_POSTFIX=1; not root and no postfix: skipped with the reason.
# Postfix runs as a private instance under /tmp, never as the system's
# service. Not part of `make test`.
KEEP_POSTFIX ?=
interop: build
	HERALD_KEEP_POSTFIX=$(KEEP_POSTFIX) HERALD_BIN=$(CURDIR)/$(BUILD)/bin \
		$(PYTHON) -m pytest -p no:cacheprovider -ra -o console_output_style=classic t/interop

# build-fuzz: the tree as `make fuzz` builds it (clang, libFuzzer + ASan +
# UBSan), so a clang-only error cannot hide until someone fuzzes
build-fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DHERALD_FUZZ=ON $(CMAKE_ARGS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# fuzz-replay: each libFuzzer target once over its seed corpus
fuzz-replay: build-fuzz
	$(PYTHON) t/fuzz/run $(FUZZ_BUILD) --replay

# test: everything, then everything again under ASan + UBSan, then the
# clang fuzz build and its seed replay
test: build build-asan build-fuzz
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	HERALD_BIN=$(CURDIR)/$(BUILD)/bin $(PYTHON) t/run-integration
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)
	HERALD_SANITIZED=1 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		HERALD_BIN=$(CURDIR)/$(ASAN_BUILD)/bin $(PYTHON) t/run-integration
	$(PYTHON) t/fuzz/run $(FUZZ_BUILD) --replay

demo: build
	HERALD_BIN=$(CURDIR)/$(BUILD)/bin $(PYTHON) scripts/demo.py

# package: the Debian package, into build-deb/ (debhelper; see README)
package:
	@scripts/deps.sh
	scripts/package.sh $(CURDIR)/build-deb

# fuzz: every libFuzzer target of t/fuzz for FUZZ_TIME seconds (clang)
fuzz: build-fuzz
	$(PYTHON) t/fuzz/run $(FUZZ_BUILD) --time $(FUZZ_TIME)

# bench: herald side by side with Postfix and Dovecot: bench/run with its
# default workloads (SMTP, POP3, the IMAP ones of bench/mailbench.py and
# the relay ones of bench/relay.py),
# driven by bench/mailload, which is built first. As root bench/run
# installs the peers it needs (see there). Options go in BENCH_ARGS, e.g.
# BENCH_ARGS="--herald-only --quick" or "--keep-packages". Long and noisy:
# never a dependency of test.
BENCH_ARGS ?=
bench: build
	$(MAKE) -C bench mailload
	HERALD_BIN=$(CURDIR)/$(BUILD)/bin $(PYTHON) bench/run $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
