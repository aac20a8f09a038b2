"""`make offline-kit` (scripts/offline_kit.sh): the packing, checksums, signature and
verification of the offline install kit, with a small stand-in for the image archive and for
the wheelhouse (a real image build takes ~10 min and the wheelhouse needs the network)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests._signing import write_key_pairs
from tests.k8s._tools import ROOT, Tools

SCRIPT_TIMEOUT_S = 300


def _stella(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stella_orchestrator", "orchestrator", "kit", *args],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_key_pairs(tmp_path_factory.mktemp("offline-keys"), "release", "other")


def _build(tools: Tools, keys: dict[str, Path], work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    image = work / "image.tar"
    image.write_bytes(b"stand-in image archive\n" * 100)
    wheels = work / "wheels"
    wheels.mkdir(exist_ok=True)
    (wheels / "standin-1.0-py3-none-any.whl").write_bytes(b"stand-in wheel")
    env = {
        **os.environ,
        "PY": sys.executable,
        "KUSTOMIZE": str(tools.kustomize),
        "OFFLINE_KIT_DIR": str(work / "out" / "offline-kit"),
        "IMAGE_ARCHIVE": str(image),
        "OFFLINE_WHEELS": str(wheels),
        "OFFLINE_KIT_KEY": str(keys["release"]),
    }
    done = subprocess.run(
        ["bash", "scripts/offline_kit.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    (archive,) = (work / "out").glob("stella-orchestrator-offline-*.tar")
    return archive


def test_the_kit_packs_everything_and_is_deterministic(tools: Tools, keys, tmp_path) -> None:
    first = _build(tools, keys, tmp_path / "one")
    second = _build(tools, keys, tmp_path / "two")
    assert first.read_bytes() == second.read_bytes(), "two packs of the same inputs differ"
    with tarfile.open(first) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
    assert {(m.mtime, m.uid, m.gid) for m in members.values()} == {(0, 0, 0)}
    names = set(members)
    version = next(n for n in names if n.startswith("offline-kit/image/")).split("-")[-1]
    for expected in (
        f"offline-kit/image/stella-orchestrator-{version}",
        "offline-kit/wheels/runtime.txt",
        "offline-kit/wheels/otel-proto.txt",
        "offline-kit/wheels/standin-1.0-py3-none-any.whl",
        "offline-kit/manifests/base.yaml",
        "offline-kit/deploy/k8s/base/kustomization.yaml",
        "offline-kit/tools/kustomize",
        "offline-kit/README.md",
        "offline-kit/SHA256SUMS",
        "offline-kit/kit-manifest.json",
        "offline-kit/kit-manifest.dsse.json",
    ):
        assert expected in names, expected
    secrets = {n.rsplit("/", 1)[-1] for n in names if "/secrets/" in n}
    assert secrets == {"README.md", ".gitignore"}, secrets  # committed files only, no keys
    kit = tmp_path / "one" / "out" / "offline-kit"
    assert b"kind: Deployment" in (kit / "manifests" / "base.yaml").read_bytes()
    sums = subprocess.run(
        ["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=kit, capture_output=True
    )
    assert sums.returncode == 0, sums.stdout
    ok = _stella("verify-install", str(kit), "--key", str(keys["release.pub"]))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK:")


def test_verify_install_names_what_was_altered(tools: Tools, keys, tmp_path) -> None:
    _build(tools, keys, tmp_path)
    kit = tmp_path / "out" / "offline-kit"
    wrong_key = _stella("verify-install", str(kit), "--key", str(keys["other.pub"]))
    assert wrong_key.returncode == 1
    assert "kit-manifest.dsse.json: no signature by the given key" in wrong_key.stderr

    wheel = kit / "wheels" / "standin-1.0-py3-none-any.whl"
    wheel.write_bytes(b"stand-in wheel, altered")
    (kit / "wheels" / "planted-1.0-py3-none-any.whl").write_bytes(b"planted")
    (kit / "manifests" / "base.yaml").unlink()
    got = _stella("verify-install", str(kit), "--key", str(keys["release.pub"]))
    assert got.returncode == 1
    altered = hashlib.sha256(b"stand-in wheel, altered").hexdigest()
    assert f"wheels/standin-1.0-py3-none-any.whl: sha256 {altered}" in got.stderr
    assert "wheels/planted-1.0-py3-none-any.whl is not in the signed manifest" in got.stderr
    assert "manifests/base.yaml is missing" in got.stderr

    sums = kit / "SHA256SUMS"
    sums.write_bytes(sums.read_bytes().replace(b"  manifests/", b"  manifest/"))
    resealed = _stella("verify-install", str(kit), "--key", str(keys["release.pub"]))
    assert "SHA256SUMS: sha256" in resealed.stderr
    assert "does not match the signed statement" in resealed.stderr
