# The two commands: `make dev` and `make test`. Everything else here is what they need.
# Tools go to user-level or project-local folders and come only from the package registries.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

TOOLS       ?= $(HOME)/.cache/edge-gateway
NODE_DIR    := miniflare-tests/node_modules
NODE_BIN    := $(CURDIR)/$(NODE_DIR)/.bin
WORKER_BUILD_VERSION := 0.8.7
# worker-build runs the wasm-bindgen CLI of exactly the version Cargo.lock pins.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)

export PATH := $(NODE_BIN):$(TOOLS)/bin:$(HOME)/.cargo/bin:$(PATH)
export WASM_BINDGEN_BIN := $(TOOLS)/bin/wasm-bindgen
export WASM_OPT_BIN := $(NODE_BIN)/wasm-opt
export ESBUILD_BIN := $(NODE_BIN)/esbuild
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false

DEV_UPSTREAM_PORT ?= 8788
DEV_PORT ?= 8787
WORKER_SOURCES := $(shell find src -type f) Cargo.toml Cargo.lock routes.json

.PHONY: help setup dev test test-host test-worker worker validate gatewayctl bench bench-instructions lint clean

help:
	@echo "make dev       build, seed local KV from routes.json, start a demo upstream and wrangler dev"
	@echo "make test      host tests (cargo test) and worker tests in workerd (miniflare-tests/)"
	@echo "make validate  check a routes file with the gateway's own validator: make validate ROUTES=path"
	@echo "make gatewayctl  build the control-plane command line: target/release/gatewayctl"
	@echo "make bench     throughput, latency and cold starts of the gateway vs JS workers, in workerd"
	@echo "make bench-instructions  instructions per request of the main bench scenarios, under valgrind"
	@echo "make lint      cargo fmt --check and clippy (host and wasm32)"

# ---- set-up -------------------------------------------------------------------------------

setup: $(TOOLS)/.rust-target $(TOOLS)/bin/worker-build $(TOOLS)/.wasm-bindgen-$(WASM_BINDGEN_VERSION) $(NODE_DIR)/.installed

$(TOOLS)/.rust-target:
	@echo "==> adding the wasm32-unknown-unknown Rust target"
	@mkdir -p $(TOOLS)
	rustup target add wasm32-unknown-unknown
	@touch $@

$(TOOLS)/bin/worker-build:
	@echo "==> installing worker-build $(WORKER_BUILD_VERSION) from crates.io (a few minutes, once)"
	cargo install --quiet --root $(TOOLS) worker-build --version $(WORKER_BUILD_VERSION)

# Not --locked: one of the CLI's locked dependency versions is no longer on crates.io.
$(TOOLS)/.wasm-bindgen-$(WASM_BINDGEN_VERSION):
	@echo "==> installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) from crates.io (a few minutes, once)"
	cargo install --quiet --force --root $(TOOLS) wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	@touch $@

$(NODE_DIR)/.installed: miniflare-tests/package.json miniflare-tests/package-lock.json
	@echo "==> installing Node 22, wrangler, miniflare, jose, wasm-opt and esbuild from npm"
	cd miniflare-tests && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# ---- build ---------------------------------------------------------------------------------

worker: build/index.js

# Unminified, so that lean-entry.mjs can recognise the shim it replaces (the size that counts
# is the Wasm module's).
build/index.js: $(WORKER_SOURCES)
	@echo "==> building the worker (worker-build --release)"
	NO_MINIFY=1 worker-build --release
	node src/platform/lean-entry.mjs build/index.js
	node src/platform/strip-names.mjs build/index_bg.wasm
	@touch $@

# ---- the two commands ----------------------------------------------------------------------

dev: setup worker
	@echo "==> seeding local KV (CONFIG/routes) from routes.json"
	wrangler kv key put --local --binding CONFIG routes --path routes.json
	@echo "==> starting the demo upstream on 127.0.0.1:$(DEV_UPSTREAM_PORT) and wrangler dev on :$(DEV_PORT)"
	@node miniflare-tests/demo-upstream.mjs $(DEV_UPSTREAM_PORT) & upstream=$$!; \
	  trap 'kill $$upstream 2>/dev/null' EXIT INT TERM; \
	  wrangler dev --local --port $(DEV_PORT) --ip 127.0.0.1 --var ADMIN_TOKEN:dev-admin-token-of-thirty-two-bytes

test: setup worker test-host test-worker

test-host:
	@echo "==> host tests (cargo test)"
	cargo test --quiet 2>&1 | tail -n 30

test-worker: worker
	@echo "==> worker tests in workerd (node --test miniflare-tests/*.test.mjs)"
	cd miniflare-tests && node --test --test-concurrency=1 --test-reporter=spec *.test.mjs 2>&1 | tail -n 60

# ---- the rest ------------------------------------------------------------------------------

ROUTES ?= routes.json
validate:
	cargo run --quiet --bin validate-routes -- $(ROUTES)

gatewayctl:
	cargo build --quiet --release --bin gatewayctl
	@echo "target/release/gatewayctl"

bench: setup worker
	cd miniflare-tests && node bench/run.mjs && node bench/startup.mjs

# Counted by callgrind: comparable across runs even on a busy machine (needs valgrind).
bench-instructions: setup worker
	cd miniflare-tests && node bench/instructions.mjs

lint:
	cargo fmt --check
	cargo clippy --quiet --all-targets -- -D warnings
	cargo clippy --quiet --target wasm32-unknown-unknown -- -D warnings

clean:
	rm -rf build target .wrangler
