#!/usr/bin/env bash
# The container image, built daemonlessly with podman (make image; docs/deploy.md "Image").
#
# No container registry is reachable from the machines this project builds on, so the base
# is made here: debootstrap (variant minbase) of Debian bookworm from the Debian archive apt
# already uses, trimmed, kept as a tarball under .cache/image/ and imported into podman.
# Every later build starts from that local base; the Containerfile does the rest.
#
#   scripts/image.sh tools   install podman, buildah, debootstrap and runc when missing (root)
#   scripts/image.sh base    make (or re-import from .cache/image/) the local Debian base image
#   scripts/image.sh build   base + `podman build`; prints the image's size and the build time
#   scripts/image.sh name    print the image reference (IMAGE, default stella-orchestrator:VERSION)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Podman's runtime settings for these hosts live in the repository (runc, no default ulimits).
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/deploy/image/containers.conf}"
SUITE=bookworm
BASE_IMAGE="${BASE_IMAGE:-localhost/stella-orchestrator-base:$SUITE-minbase}"
CACHE_DIR="$ROOT/.cache/image"
BASE_TAR="$CACHE_DIR/debian-$SUITE-minbase.tar"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)
IMAGE="${IMAGE:-localhost/stella-orchestrator:$VERSION}"

log() { printf '[image] %s\n' "$*" >&2; }

tools() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v runc >/dev/null || missing+=(runc)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (sudo apt-get install -y ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]} from Debian packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The archive apt uses on this host (deb822 `URIs:` or a one-line `deb` entry), so the base
# comes from the same mirror as the host's own packages; DEBIAN_MIRROR overrides it.
mirror() {
  local uri=""
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*\(\S*\/debian\)\/\?$/\1/p' | head -1)
  [ -z "$uri" ] && uri=$(cat /etc/apt/sources.list 2>/dev/null | sed -n 's/^deb[[:space:]]\+\(\S*\/debian\)\/\?[[:space:]].*/\1/p' | head -1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# In a subshell, so the EXIT trap removes the half-made root filesystem whatever happens.
make_base_tar() (
  local rootfs mirror_uri
  mirror_uri=$(mirror)
  [ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }
  mkdir -p "$CACHE_DIR"
  rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap --variant=minbase $SUITE from $mirror_uri (about a minute)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror_uri" >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  # Security and point-release updates come in when the Containerfile runs apt-get upgrade.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror_uri $SUITE main
deb $mirror_uri $SUITE-updates main
deb ${mirror_uri%/debian}/debian-security $SUITE-security main
EOF
  # A service image needs no manuals, translations or package caches: keep them out of the
  # base and of every package installed on top (copyright files stay, for the licences).
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-stella-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/01-stella" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  tar --numeric-owner -C "$rootfs" -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
)

base() {
  tools
  if podman image exists "$BASE_IMAGE"; then
    log "base $BASE_IMAGE present"
    return 0
  fi
  if [ ! -f "$BASE_TAR" ]; then
    local started=$SECONDS
    make_base_tar
    echo "image_base_time $((SECONDS - started)) s (debootstrap, cached as $BASE_TAR)"
  fi
  log "importing $BASE_TAR as $BASE_IMAGE"
  # `podman import` sets no PATH: the Containerfile's RUN steps need one.
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$BASE_TAR" "$BASE_IMAGE" >/dev/null
}

build() {
  local started revision created size_bytes
  started=$SECONDS
  base
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  # An image built from uncommitted changes (new files included) must not claim to be that commit.
  if [ "$revision" != unknown ] && [ -n "$(git status --porcelain)" ]; then
    revision="$revision-dirty"
  fi
  # pip in the build stage fetches the locked wheels from PyPI. Where egress goes through a
  # proxy that re-signs TLS, only the host trusts its CA: lend the host's bundle to the build
  # (a bind mount while RUN steps execute; it never becomes part of a layer).
  local ca_args=() bundle
  for bundle in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$bundle" ] && [ -s "$bundle" ]; then
      ca_args=(--volume "$(readlink -f "$bundle"):/run/host-ca/ca.crt:ro")
      break
    fi
  done
  created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  log "podman build $IMAGE (revision $revision)"
  # The labels also go in as --label: buildah 1.28 (Debian 12) reuses a cached LABEL step
  # whose ARG values changed, so a rebuild after a commit kept the old revision and date.
  podman build --layers --pull=never -f Containerfile "${ca_args[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg VERSION="$VERSION" \
    --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" \
    --label org.opencontainers.image.version="$VERSION" \
    --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.created="$created" \
    -t "$IMAGE" .
  size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
  echo "image $IMAGE size $((size_bytes / 1000000)) MB (uncompressed; base $((
    $(podman image inspect --format '{{.Size}}' "$BASE_IMAGE") / 1000000)) MB)"
  echo "image_build_time $((SECONDS - started)) s"
}

case "${1:-build}" in
  tools) tools ;;
  base) base ;;
  build) build ;;
  name) echo "$IMAGE" ;;
  *) echo "usage: $0 tools|base|build|name" >&2; exit 2 ;;
esac
