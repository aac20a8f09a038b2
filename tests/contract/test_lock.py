"""The virtualenv holds exactly the locked versions: `make venv` installs requirements/dev.txt
with hashes and nothing else, so a new release on PyPI cannot change what CI runs."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
# Installed by venv itself, not by the lock; the project's two distributions (the server and
# the SDK in clients/python) are installed editable on top.
NOT_LOCKED = {"pip", "stella-orchestrator", "stella-orchestrator-sdk"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _installed() -> dict[str, str]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
        if canonicalize_name(dist.metadata["Name"]) not in NOT_LOCKED
    }


def test_every_pin_carries_a_hash():
    for lock in ("runtime.txt", "dev.txt", "build.txt"):
        text = (LOCKS / lock).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text)
        pinned = [e for e in entries if PIN.match(e)]
        assert pinned, f"{lock} pins nothing"
        for entry in pinned:
            assert "--hash=sha256:" in entry, f"{lock}: {entry.splitlines()[0]} has no hash"


def test_runtime_lock_agrees_with_dev_lock():
    dev, runtime = _pins(LOCKS / "dev.txt"), _pins(LOCKS / "runtime.txt")
    assert set(runtime) <= set(dev)
    assert {name: dev[name] for name in runtime} == runtime


def test_the_sdk_is_resolved_from_the_tree_and_left_out_of_the_locks():
    # pip cannot hash a directory: the SDK's dependencies are locked, the SDK is not.
    for lock in ("runtime.txt", "dev.txt", "build.txt"):
        assert "stella-orchestrator-sdk" not in _pins(LOCKS / lock), lock
    runtime = _pins(LOCKS / "runtime.txt")
    for dependency in ("grpcio", "protobuf", "googleapis-common-protos", "httpx", "rich"):
        assert dependency in runtime, dependency


def test_build_lock_agrees_with_dev_lock():
    # requirements/build.txt: what the image builds the project's wheel with (setuptools).
    dev, build = _pins(LOCKS / "dev.txt"), _pins(LOCKS / "build.txt")
    assert "setuptools" in build
    assert {name: dev[name] for name in build} == build


def test_tools_whose_output_ci_checks_are_pinned_exactly():
    dev = _pins(LOCKS / "dev.txt")
    for tool in ("grpcio-tools", "mypy-protobuf", "protobuf", "buf-bin", "ruff", "mypy"):
        assert tool in dev, f"{tool} is not in the lock"


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
    reason="checks the project's own .venv made by `make venv`",
)
def test_the_venv_holds_exactly_the_lock():
    assert _installed() == _pins(LOCKS / "dev.txt")
