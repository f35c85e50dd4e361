# dnsdoc: the two README commands are `sudo make demo` and `sudo make test`.
# Every target installs what it needs (idempotently) first.

CARGO ?= cargo
# Set DNSDOC_REQUIRE_BPF=1 to make BPF tests fail (not skip) without root; .ci/run does.
export DNSDOC_REQUIRE_BPF

.PHONY: deps build release demo demo-watch test test-kernels lint bench clean

deps:
	scripts/install-deps.sh all

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

## A self-contained game day: dnsmasq on loopback with a small CPU budget, a dns-flood
## with --verify (PASS/FAIL per paired rule), the doctor report, cleanup. Needs root.
demo: release
	scripts/gameday.sh target/release/dnsdoc

## dnsdoc watch over a bounded mix of queries to a local dnsmasq. Needs root.
demo-watch: release
	scripts/demo.sh target/release/dnsdoc

## The whole test suite: unit tests, CLI tests and the live BPF tests (root).
## Each live test that skips (not root) adds a line to SKIPPED_LOG; the count is the
## last line printed. cargo test's exit status is kept.
SKIPPED_LOG = $(or $(CARGO_TARGET_DIR),target)/skipped-live-tests
test: deps
	@mkdir -p $(dir $(SKIPPED_LOG)) && : > $(SKIPPED_LOG)
	@echo "$(CARGO) test --no-fail-fast"
	@$(CARGO) test --no-fail-fast; status=$$?; \
	n=$$(wc -l < $(SKIPPED_LOG)); s=s; [ "$$n" -ne 1 ] || s=; \
	[ "$$n" -eq 0 ] || echo "dnsdoc: $$n live test$$s skipped: run as root (or set DNSDOC_REQUIRE_BPF=1 to make skips fail); list in $(SKIPPED_LOG)"; \
	exit $$status

## The test binaries as root on Debian's 5.10, 6.1 and 6.12 kernels, each booted under qemu
## (TCG, slow); the host's kernel is the one `make test` covers. Needs root.
## One kernel: make test-kernels KERNELS=6.1; one binary: TEST_KERNELS_ARGS="--only watch_live".
test-kernels: deps
	scripts/test-kernels.sh $(foreach k,$(KERNELS),--kernel $(k)) $(TEST_KERNELS_ARGS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Overhead and accuracy benchmark, root, about 11 minutes: dnsperf against dnsmasq at fixed
## rates with and without dnsdoc (overhead), then dnsmasq and unbound at saturation, rounds
## of baseline / tcpdump / dnsdoc interleaved (saturation), then a one-query-at-a-time
## client's latency with and without dnsdoc (latency), then dns-flood --intensity high with
## --verify against dnsmasq (chaos_flood: lookups/s on the wire), then the analysis's
## instructions and cache misses per query under callgrind (analysis_cost: counted, not
## timed, so it repeats within 2 % on a noisy machine; capture file and live, about
## 4 minutes). Knobs:
## DNSDOC_BENCH_SECONDS, DNSDOC_BENCH_RATES, DNSDOC_BENCH_ROUNDS, DNSDOC_BENCH_SERVERS,
## DNSDOC_BENCH_LOOKUPS, DNSDOC_BENCH_COST_QUERIES.
bench: deps
	$(CARGO) bench --bench overhead
	$(CARGO) bench --bench saturation
	$(CARGO) bench --bench latency
	$(CARGO) bench --bench chaos_flood
	$(CARGO) bench --bench analysis_cost

clean:
	$(CARGO) clean
