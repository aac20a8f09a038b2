# The offline install kit (docs/offline.md). Included from the root Makefile.
#   make offline-kit OFFLINE_KIT_KEY=release.pem
#       builds dist/offline-kit/ and packs it into dist/stella-orchestrator-offline-<version>.tar
#       (deterministic: sorted, mtime 0, owner 0:0): the image archive (built with `make image`
#       and saved with podman when IMAGE_ARCHIVE does not exist yet), a wheelhouse of
#       requirements/runtime.txt plus the project's wheel, the rendered base manifests with the
#       kustomize sources and binary, then SHA256SUMS and a signed manifest
#       (`stella orchestrator kit seal`). Verify with `stella orchestrator kit verify-install`.
# Knobs: IMAGE_ARCHIVE (default .cache/image/stella-orchestrator-<version>.tar),
# OFFLINE_KIT_DIR (default dist/offline-kit), OFFLINE_WHEELS (a directory of wheels to copy
# instead of downloading them: a mirror, or the tests' stand-ins).

.PHONY: offline-kit

## offline-kit: image archive + wheelhouse + manifests, checksummed and signed (OFFLINE_KIT_KEY=Ed25519 PEM)
offline-kit: venv k8s-kustomize
	PY="$(PY)" KUSTOMIZE="$(K8S_BIN)/kustomize" bash scripts/offline_kit.sh
