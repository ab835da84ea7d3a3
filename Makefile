# storjnet: the two commands for a fresh Debian 12 machine are `make run` and `make test`.
JOBS        ?= 2
BUILD       ?= build
ASAN_BUILD  ?= build/asan
FUZZ_BUILD  ?= build/fuzz
FUZZ_SECONDS ?= 60
RUN_NODES   ?= 20
# Layout of `make netlab` (scripts/netlab up flags), e.g. NETLAB_ARGS="--public 4 --symmetric 8".
NETLAB_ARGS ?=

.PHONY: all deps build build-asan run test bench fuzz netlab clean python

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

# The netlab test on the release build (root; docs/netlab.md): brings a lab of network namespaces and NAT
# routers up with one storjnetd per host, checks what works, prints RESULT_JSON lines, takes it down.
# `scripts/netlab up --storjnetd build/bin/storjnetd` keeps a lab up to play with.
netlab: build
	@python3 tests/netlab/netlab_test.py $(BUILD)/bin/storjnetd $(NETLAB_ARGS)

# The Python package in build/python (docs/python.md): PYTHONPATH=build/python python3 -c 'import storjnet'
python: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target python storjnetd

# Then the charts of build/bench-results.jsonl in build/plots/ (scripts/plot; bench/README.md, "Charts").
bench: build
	@scripts/run-benches; status=$$?; scripts/plot --out $(BUILD)/plots $(BUILD)/bench-results.jsonl; exit $$status

fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTORJNET_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/run-fuzzers $(FUZZ_BUILD)/bin $(FUZZ_SECONDS)

# The Debian package of the release build (packaging/, README "Install as a Debian package"):
# build/storjnet_<version>_amd64.deb.
.PHONY: deb
deb: build
	@cd $(BUILD) && cpack -G DEB >/dev/null && ls "$$PWD"/storjnet_*_amd64.deb

clean:
	rm -rf $(BUILD)
