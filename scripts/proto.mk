# Protobuf contract targets. Included from the root Makefile: `include scripts/proto.mk`.
# Override PROTO_PYTHON / BUF to use other binaries.

PROTO_PYTHON ?= .venv/bin/python
BUF ?= .venv/bin/buf
PROTO_BREAKING_BRANCH ?= main

.PHONY: proto-gen proto-check proto-lint proto-breaking

## proto-gen: regenerate gen/python from protos/ (deletes stale generated files)
proto-gen:
	$(PROTO_PYTHON) scripts/gen_protos.py

## proto-check: fail if gen/python is not what protos/ generates
proto-check:
	$(PROTO_PYTHON) scripts/gen_protos.py --check

## proto-lint: buf lint (STANDARD + COMMENTS) and buf format check
proto-lint:
	$(BUF) lint
	$(BUF) format -d --exit-code

## proto-breaking: buf breaking (FILE) against the main branch; skipped while main has no protos
proto-breaking:
	@if git rev-parse --verify --quiet '$(PROTO_BREAKING_BRANCH)^{commit}' >/dev/null \
	  && [ -n "$$(git log -n 1 --format=%H '$(PROTO_BREAKING_BRANCH)' -- protos/ 2>/dev/null)" ]; then \
	  echo "$(BUF) breaking --against '.git#branch=$(PROTO_BREAKING_BRANCH)'"; \
	  $(BUF) breaking --against '.git#branch=$(PROTO_BREAKING_BRANCH)'; \
	else \
	  echo "proto-breaking: skipped (branch $(PROTO_BREAKING_BRANCH) has no commit containing protos/)"; \
	fi
