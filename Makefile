# zkpow — every setup step lives here; .ci/run only calls `make test`.

CARGO ?= cargo
export ZKPOW_TEST_PARAMS_DIR ?= $(CURDIR)/target/zkpow-params

include mk/evm.mk
include mk/dashboards.mk

.PHONY: services all build test test-rust run bench bench-prove bench-dispatch bench-throughput bench-soak fmt lint clean fixtures setup-test-keys

all: build

build:
	$(CARGO) build --all-targets

## Everything the test suite needs, installed by this Makefile, then the tests.
test: tools contracts-check check-dashboards forge-test test-rust

## PostgreSQL for the tests that run on both database backends (the
## machine's own cluster, trust auth on 127.0.0.1:5432).
services:
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi
	@pg_isready -h 127.0.0.1 -p 5432

## --benches: every benchmark runs one tiny iteration and checks that it
## completes (a bench binary run without cargo bench's --bench does that):
## prove and dispatch in seconds, throughput's --smoke in about two minutes
## with the test build of the zkpow binary (no release build needed).
test-rust: tools services
	ANVIL=$(ANVIL) $(CARGO) test --lib --bins --tests --benches

## The main job: a local network with real proofs (two anvil chains, two
## rollups, two miners; README.md, "make run"). Ctrl-C stops it; the next run
## resumes. Extra options: make run DEVNET_ARGS="--fresh --block-time 0.5".
DEVNET_ARGS ?=
run: tools
	$(CARGO) run --release -- devnet $(DEVNET_ARGS)

## Proving/verification benchmark (and prover scaling), the dispatcher
## benchmark, the gas table, the on-chain throughput benchmark and the soak
## run (docs/BENCHMARKS.md).
bench: bench-prove bench-dispatch forge-gas bench-throughput bench-soak

## Circuit versions side by side (v1, v2, v3), backend overhead and prover
## scaling (30 to 60 minutes, most of it key generation the first time). One
## part only, e.g.: ZKPOW_BENCH_PARTS=versions make bench-prove
## (ZKPOW_BENCH_VERSIONS="1;3" compares two versions only)
bench-prove:
	$(CARGO) bench --bench prove

## The dispatcher with simulated provers over real HTTP: round trips per
## second, utilisation against the ideal schedule, dispatch latency (a few
## minutes; tables in target/bench-dispatch.md). Options, e.g.:
## make bench-dispatch BENCH_DISPATCH_ARGS="--runs 3 --parts a"
BENCH_DISPATCH_ARGS ?=
bench-dispatch:
	$(CARGO) bench --bench dispatch -- $(BENCH_DISPATCH_ARGS)

## On-chain throughput: the pipelined sender against the one-window rule,
## two networks side by side (about 42 minutes; tables in
## target/bench-throughput.md). Options, e.g.:
## make bench-throughput BENCH_THROUGHPUT_ARGS="--smoke"   (about two minutes)
## make bench-throughput BENCH_THROUGHPUT_ARGS="--minutes 2 --rates 10,3"
BENCH_THROUGHPUT_ARGS ?=
bench-throughput: tools
	$(CARGO) build --release --bin zkpow
	ANVIL=$(ANVIL) $(CARGO) bench --bench throughput -- $(BENCH_THROUGHPUT_ARGS)

## Soak run: 2,000 sequences through the real aggregator, chain and
## contracts with a benchmark-only trapdoor prover; the aggregator's RSS,
## database size and in-memory task count every 250 verified sequences
## (tables in target/bench-soak.md). Options, e.g.:
## make bench-soak BENCH_SOAK_ARGS="--sequences 500 --every 100"
## make bench-soak BENCH_SOAK_ARGS="--smoke"   (10 sequences, about a minute)
BENCH_SOAK_ARGS ?=
bench-soak: tools
	$(CARGO) build --release --bin zkpow
	ANVIL=$(ANVIL) $(CARGO) bench --bench soak -- $(BENCH_SOAK_ARGS)

## Regenerates the real-proof fixture the forge tests read.
fixtures:
	$(CARGO) run --release -- fixtures --out contracts/test/fixtures/proofs.json --keys $(ZKPOW_TEST_PARAMS_DIR)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
