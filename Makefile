# Stella Orchestrator — developer entry points (docs/architecture.md §8).
#   make demo    the whole stack on embedded defaults plus a demo workload
#   make test    every test tier (static checks, unit, contract, integration, migration, acceptance)
#   make up/down the stack in the background, for scripts
#   make bench   benchmarks, one figure per line: `name value unit`
#   make chaos   kill/restart/cut off replicas and dependencies during a burn-down (docs/chaos.md)
#   make image   the container image (podman); make image-test runs the demo against it

SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

include scripts/proto.mk
include scripts/sdk.mk
include scripts/k8s.mk
include scripts/image.mk
include scripts/offline.mk

.DEFAULT_GOAL := help
.PHONY: help venv lock console services migrate up down status demo test lint typecheck fmt \
        test-unit test-integration bench chaos clean

## help: list the targets
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## venv: create .venv with exactly the locked versions (requirements/dev.txt, hashed) and the project
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml requirements/dev.txt requirements/otel-proto.txt
	@# A fresh venv each time the lock changes: nothing outside the lock survives an update.
	rm -rf $(VENV)
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
	@# xds-protos ships an old copy of opentelemetry/proto/* at the paths of opentelemetry-proto
	@# (the OTLP exporter needs the real one); install order decides which survives, so the
	@# real one is installed again, last (requirements/otel-proto.txt, written by `make lock`).
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall \
	    --require-hashes -r requirements/otel-proto.txt
	@# The two distributions, editable: the SDK (clients/python: generated code, worker SDK,
	@# producer client) and the server, which depends on it.
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
	    -e clients/python -e .
	touch $@

## lock: recompile requirements/{runtime,dev,build}.txt from pyproject.toml (UPGRADE=1 takes newer versions)
# The SDK distribution comes from the tree (pyproject's [tool.uv.sources]): its dependencies
# are locked, the package itself is left out (pip cannot hash a directory).
LOCK_FLAGS = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
             --no-header --quiet --no-emit-package stella-orchestrator-sdk $(if $(UPGRADE),--upgrade,)
lock: venv
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements/runtime.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) \
	    -c requirements/runtime.txt -o requirements/dev.txt
	awk '/^opentelemetry-proto==/ {p = 1; print; next} /^[a-z]/ {p = 0} p' \
	    requirements/runtime.txt > requirements/otel-proto.txt
	@# The image builds the project's wheel with exactly this (pyproject's build-system.requires).
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires']))" \
	    | $(VENV)/bin/uv pip compile - $(LOCK_FLAGS) -c requirements/dev.txt -o requirements/build.txt

## console: rebuild the Console bundle the gateway serves (npm ci, then esbuild; deterministic)
CONSOLE_DIR := services/gateway/console
console:
	cd $(CONSOLE_DIR) && npm ci --no-audit --no-fund --loglevel=error && node build.mjs
	@echo "Console built into services/gateway/orchestrator_gateway/console (commit it with the sources)"

## services: install (Debian packages) and start PostgreSQL and Redis on loopback
services:
	bash scripts/services.sh start

## migrate: apply the ledger's migrations (idempotent)
migrate: venv services
	$(VENV)/bin/stella orchestrator migrate

## up: start every service in the background (REPLICAS=N processes each); returns once all report SERVING
REPLICAS ?= 1
up: venv
	$(PY) scripts/stack.py up --replicas $(REPLICAS)

## down: stop the services started by `make up`
down:
	@if [ -x $(PY) ]; then $(PY) scripts/stack.py down; fi

## status: table of every service replica: port, pid and health
status: venv
	$(PY) scripts/stack.py status

## demo: start the stack and submit the demo workload (ARGS=--exit to stop when done)
demo: venv
	$(PY) -m demo $(ARGS)

## lint: ruff, mypy, import layering, buf lint/format/breaking, generated code freshness
lint: venv proto-lint proto-check proto-breaking
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## fmt: format Python code
fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## test: every test tier against real PostgreSQL (and Redis where used)
test: venv services lint
	$(PY) -m pytest $(PYTEST_ARGS)

## test-unit: the fast tier only (no I/O)
test-unit: venv
	$(PY) -m pytest tests/unit tests/contract $(PYTEST_ARGS)

## test-integration: integration, migration and acceptance tiers
test-integration: venv services
	$(PY) -m pytest tests/integration tests/migration tests/acceptance $(PYTEST_ARGS)

## bench: benchmarks (figures as `name value unit`)
bench: venv services
	$(PY) -m bench $(ARGS)

## chaos: soak run under faults, checks the ledger's invariants (CHAOS_JOBS, CHAOS_SECONDS, CHAOS_STANDBY=1...)
chaos: venv services
	$(PY) -m bench.chaos $(ARGS)

## clean: remove the virtualenv and run state
clean: down
	rm -rf $(VENV) .run
