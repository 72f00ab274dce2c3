# cchc: the README's commands. One build profile (release) everywhere, so CI builds DataFusion
# once; the target folder is a persistent cache outside the clone (see .ci/run).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/cchc-target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/cchc

.PHONY: help demo test check fmt clippy bench bench-serve bench-scale build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the release binary
	$(CARGO) build --release --locked

demo: build ## generate a synthetic province-quarter and ingest every day of it (local warehouse in .cchc/)
	$(BIN) demo

test: ## run every test (release profile); installs what they need besides crates (.ci/setup)
	.ci/setup
	$(CARGO) test --release --locked

fmt: ## format the code
	$(CARGO) fmt --all

clippy: ## lint
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

check: ## format check + clippy + tests
	$(CARGO) fmt --all -- --check
	$(MAKE) clippy
	$(MAKE) test

bench: build ## province-year: ingest vs DuckDB loading the same files; marts and checks vs DuckDB on the same SQL; the daily run; target_results vs a reference; the year served
	bench/ingest.sh
	bench/marts.sh
	bench/daily.sh
	python3 -c 'import psycopg' 2>/dev/null || python3 -m pip install --quiet 'psycopg[binary]'
	CCHC_WAREHOUSE=bench/out/wh python3 bench/serve.py $(BIN) configs/local.yaml 10

bench-serve: build ## query mix through `cchc serve` vs `cchc sql` on the demo warehouse (run `make demo` first)
	python3 bench/serve.py $(BIN) configs/local.yaml 20

bench-scale: build ## the year's backfill at scales 1 and 10 (SCALES, MEMORY=1GiB): wall, peak RSS, spill, growth
	bench/scale.sh
