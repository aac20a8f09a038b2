# Go and Rust worker SDKs (clients/go, clients/rust). Included from the root Makefile.
#   make sdk-gen     regenerate clients/go/gen and clients/rust/src/gen with buf (local plugins)
#   make sdk-check   fail when the generated Go/Rust code is stale (regenerate + diff)
#   make sdk-lint    gofmt, go vet, cargo fmt --check, cargo clippy -D warnings
#   make sdk-test    go test -race, cargo test (the shared vectors in tests/vectors included)
#   make grpcurl     install the pinned grpcurl into .cache/bin
# Build caches live in .cache/ (git-ignored) so repeated runs and CI stay incremental.
# go and cargo are required: a missing toolchain fails, it is never skipped.

SDK_CACHE := $(CURDIR)/.cache
SDK_BIN := $(SDK_CACHE)/bin
SDK_BUF ?= $(CURDIR)/.venv/bin/buf
# Pinned generator and tool versions (go install of exact versions).
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.3
RUST_PLUGIN := $(SDK_CACHE)/cargo-target/debug/protoc-gen-stella-rust

SDK_ENV := PATH="$(SDK_BIN):$(HOME)/.cargo/bin:/usr/local/go/bin:$$PATH" \
	GOBIN="$(SDK_BIN)" GOCACHE="$(SDK_CACHE)/go-build" GOFLAGS=-buildvcs=false \
	CARGO_TARGET_DIR="$(SDK_CACHE)/cargo-target"

.PHONY: sdk-toolchains sdk-tools sdk-gen sdk-check sdk-lint sdk-test grpcurl

# Hook the SDK targets into the project's lint and test.
lint: sdk-check sdk-lint
test: sdk-test

sdk-toolchains:
	@$(SDK_ENV) bash -c 'for t in go cargo; do command -v $$t >/dev/null || { echo "sdk: $$t is not installed (needed by clients/go, clients/rust)" >&2; exit 1; }; done'

## sdk-tools: pinned protoc-gen-go / protoc-gen-go-grpc and the Rust buf plugin
sdk-tools: sdk-toolchains venv
	@mkdir -p $(SDK_BIN)
	@$(SDK_ENV) bash -c '\
	  [ "$$(protoc-gen-go --version 2>/dev/null)" = "protoc-gen-go $(PROTOC_GEN_GO_VERSION)" ] \
	    || go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION); \
	  [ "$$(protoc-gen-go-grpc --version 2>/dev/null)" = "protoc-gen-go-grpc $(PROTOC_GEN_GO_GRPC_VERSION:v%=%)" ] \
	    || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)'
	@echo 'sdk-tools: protoc-gen-stella-rust (clients/rust/codegen)'
	@$(SDK_ENV) cargo build -q --locked --manifest-path clients/rust/codegen/Cargo.toml

## sdk-gen: regenerate the Go and Rust code from protos/ (buf generate, local plugins only)
sdk-gen: sdk-tools
	@echo 'sdk-gen: buf generate --template buf.gen.go.yaml && buf generate --template buf.gen.rust.yaml'
	@$(SDK_ENV) $(SDK_BUF) generate --template buf.gen.go.yaml
	@$(SDK_ENV) $(SDK_BUF) generate --template buf.gen.rust.yaml

## sdk-check: fail if clients/go/gen or clients/rust/src/gen is not what protos/ generates
sdk-check: sdk-tools
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(SDK_ENV) $(SDK_BUF) generate --template buf.gen.go.yaml -o "$$tmp" && \
	$(SDK_ENV) $(SDK_BUF) generate --template buf.gen.rust.yaml -o "$$tmp" && \
	if diff -r "$$tmp/clients/go/gen" clients/go/gen >/dev/null \
	  && diff -r "$$tmp/clients/rust/src/gen" clients/rust/src/gen >/dev/null; then \
	  echo "sdk-check: Go and Rust generated code is fresh"; \
	else \
	  diff -ru "$$tmp/clients/go/gen" clients/go/gen | head -40; \
	  diff -ru "$$tmp/clients/rust/src/gen" clients/rust/src/gen | head -40; \
	  echo "sdk-check: generated code is stale; run 'make sdk-gen' and commit" >&2; exit 1; \
	fi

## sdk-lint: gofmt, go vet, cargo fmt --check, cargo clippy -D warnings
sdk-lint: sdk-toolchains
	@cd clients/go && out=$$($(SDK_ENV) gofmt -l worker producer stellarpc examples) && \
	  { [ -z "$$out" ] || { echo "gofmt: $$out" >&2; exit 1; }; }
	@echo 'sdk-lint: go vet ./...'
	@cd clients/go && $(SDK_ENV) go vet ./...
	@echo 'sdk-lint: cargo fmt --check'
	@cd clients/rust && $(SDK_ENV) cargo fmt --check
	@cd clients/rust/codegen && $(SDK_ENV) cargo fmt --check
	@echo 'sdk-lint: cargo clippy --all-targets -- -D warnings'
	@cd clients/rust && $(SDK_ENV) cargo clippy -q --locked --all-targets -- -D warnings

## sdk-test: go test -race and cargo test (unit + shared vectors); the cross-language e2e runs in pytest
sdk-test: sdk-toolchains
	@echo 'sdk-test: go test -race ./...'
	@cd clients/go && $(SDK_ENV) go test -race -count=1 ./...
	@echo 'sdk-test: cargo test'
	@cd clients/rust && $(SDK_ENV) cargo test -q --locked

## grpcurl: install the pinned grpcurl into .cache/bin
# (go install leaves no version in the binary, so a stamp file records which one is there.)
grpcurl: sdk-toolchains
	@mkdir -p $(SDK_BIN)
	@[ -x "$(SDK_BIN)/grpcurl" ] && [ -f "$(SDK_BIN)/.grpcurl-$(GRPCURL_VERSION)" ] || { \
	  $(SDK_ENV) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION) \
	  && rm -f $(SDK_BIN)/.grpcurl-* && touch "$(SDK_BIN)/.grpcurl-$(GRPCURL_VERSION)"; }
