#!/usr/bin/env bash
# Builds the offline install kit (scripts/offline.mk, docs/offline.md). Env: PY, KUSTOMIZE,
# OFFLINE_KIT_KEY (required), IMAGE_ARCHIVE, OFFLINE_KIT_DIR, OFFLINE_WHEELS.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)
PY=${PY:-.venv/bin/python}
KUSTOMIZE=${KUSTOMIZE:-.cache/bin/kustomize}
KIT=${OFFLINE_KIT_DIR:-dist/offline-kit}
IMAGE=${IMAGE:-localhost/stella-orchestrator:$VERSION}
IMAGE_ARCHIVE=${IMAGE_ARCHIVE:-.cache/image/stella-orchestrator-$VERSION.tar}
: "${OFFLINE_KIT_KEY:?set OFFLINE_KIT_KEY to the Ed25519 private key of the release, see docs/offline.md}"
log() { echo "offline-kit: $*" >&2; }

if [ ! -f "$IMAGE_ARCHIVE" ]; then
  log "no $IMAGE_ARCHIVE: building the image (make image; a cold build takes ~10 min)"
  bash scripts/image.sh build
  mkdir -p "$(dirname "$IMAGE_ARCHIVE")"
  podman save --format oci-archive -o "$IMAGE_ARCHIVE" "$IMAGE"
fi

rm -rf "$KIT"
mkdir -p "$KIT/image" "$KIT/wheels" "$KIT/manifests" "$KIT/tools"
cp "$IMAGE_ARCHIVE" "$KIT/image/stella-orchestrator-$VERSION.tar"

cp requirements/runtime.txt requirements/otel-proto.txt "$KIT/wheels/"
if [ -n "${OFFLINE_WHEELS:-}" ]; then
  log "wheels from $OFFLINE_WHEELS"
  cp "$OFFLINE_WHEELS"/*.whl "$KIT/wheels/"
else
  log "wheelhouse of requirements/runtime.txt (CPython 3.11, manylinux x86_64)"
  # pip matches --platform tags exactly (no older manylinux implied): name every glibc
  # level the image's Debian bookworm (glibc 2.36) runs, down to manylinux2014.
  platforms=()
  for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  platforms+=(--platform manylinux2014_x86_64)
  "$PY" -m pip download -q --disable-pip-version-check --require-hashes --no-deps \
    --only-binary=:all: "${platforms[@]}" --python-version 3.11 \
    --implementation cp -r requirements/runtime.txt -d "$KIT/wheels"
  "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$KIT/wheels" clients/python .
fi

log "manifests: kustomize build deploy/k8s/base, the kustomize sources and binary"
"$KUSTOMIZE" build deploy/k8s/base >"$KIT/manifests/base.yaml"
# committed files only: never a site's keys from overlays/*/secrets/
git ls-files deploy/k8s | while read -r f; do
  mkdir -p "$KIT/$(dirname "$f")" && cp "$f" "$KIT/$f"
done
cp "$KUSTOMIZE" "$KIT/tools/kustomize"
cp docs/offline.md "$KIT/README.md"

"$PY" -m stella_orchestrator orchestrator kit seal "$KIT" --signing-key "$OFFLINE_KIT_KEY" \
  --version "$VERSION"
out="$(dirname "$KIT")/stella-orchestrator-offline-$VERSION.tar"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rw,go+r \
  -cf "$out" -C "$(dirname "$KIT")" "$(basename "$KIT")"
log "wrote $out ($(du -h "$out" | cut -f1)); sha256 $(sha256sum "$out" | cut -d' ' -f1)"
