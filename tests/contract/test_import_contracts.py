"""The import-linter contract "drivers only in adapters" bites (issue 17 item 3).

A copy of every root package goes to a temporary directory, where a service module that
imports a driver is planted; lint-imports, run against the copy with the project's own
contracts, must fail and name each planted import. The unplanted tree passes in
``make lint``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = "drivers-in-adapters"
PLANTS = {
    "orchestrator_ratelimit": "import psycopg\n",
    "orchestrator_leases": "import redis.asyncio\n",
    "orchestrator_scheduler": "from psycopg_pool import AsyncConnectionPool\n",
    "orchestrator_audit": "import psycopg\n",
    "orchestrator_gateway": "import redis\n",
}


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None, name
    assert spec.submodule_search_locations, name
    return Path(next(iter(spec.submodule_search_locations)))


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("lint-imports")),
            "--config",
            str(tree / "pyproject.toml"),
            "--contract",
            CONTRACT,
            "--no-cache",
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name in config["tool"]["importlinter"]["root_packages"]:
        shutil.copytree(
            _package_dir(name),
            tmp_path / name,
            ignore=shutil.ignore_patterns("__pycache__", "console", "node_modules"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_copy_without_plants_keeps_the_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_a_service_importing_a_driver_breaks_the_contract(tree: Path) -> None:
    for package, line in PLANTS.items():
        (tree / package / "_planted_driver.py").write_text(line)
    result = _lint(tree)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    for package, line in PLANTS.items():
        driver = line.split()[1].split(".")[0]
        assert f"{package}._planted_driver -> {driver}" in result.stdout, (package, result.stdout)
