"""The committed Console build (services/gateway/orchestrator_gateway/console) is exactly
what services/gateway/console builds from package-lock.json: rebuild and compare bytes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "services" / "gateway" / "console"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_committed_console_build_is_fresh() -> None:
    if not (CONSOLE / "node_modules" / ".bin" / "esbuild").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=CONSOLE, check=True, timeout=300
        )
    result = subprocess.run(
        ["node", "build.mjs", "--check"],
        cwd=CONSOLE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "fresh" in result.stdout


def test_console_bundles_no_remote_urls() -> None:
    """No CDN: the page loads only its own assets."""
    built = CONSOLE.parent / "orchestrator_gateway" / "console"
    html = (built / "index.html").read_text()
    assert "http://" not in html
    assert "https://" not in html
    assert (built / "assets" / "app.js").stat().st_size > 10_000
