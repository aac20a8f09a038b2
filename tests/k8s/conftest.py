"""Fixtures of the manifest tests: the tools (installed by `make k8s-tools`), a copy of
deploy/k8s with throwaway keys, and each overlay rendered from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.k8s._tools import OVERLAYS, Obj, Tools, copy_tree, install_tools, render


@pytest.fixture(scope="session")
def tools() -> Tools:
    try:
        return install_tools()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("k8s") / "k8s")


@pytest.fixture(scope="session")
def rendered(tools: Tools, tree: Path) -> dict[str, list[Obj]]:
    return {overlay: render(tools, tree / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, list[Obj]]) -> list[Obj]:
    """The rendered objects of each overlay in turn."""
    return rendered[request.param]
