# storjnet: the two commands for a fresh Debian 12 machine are `make run` and `make test`.
JOBS        ?= 2
BUILD       ?= build
ASAN_BUILD  ?= build/asan
FUZZ_BUILD  ?= build/fuzz
FUZZ_SECONDS ?= 60
RUN_NODES   ?= 20

.PHONY: all deps build build-asan run test bench fuzz clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTORJNET_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Starts a local network and its API (see README).
run: build
	@scripts/run-local-network $(RUN_NODES)

# The whole suite, under AddressSanitizer and UBSan.
test: build-asan build
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1200

bench: build
	@scripts/run-benches

fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTORJNET_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/run-fuzzers $(FUZZ_BUILD)/bin $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD)
