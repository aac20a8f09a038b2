"""docs/metrics.md lists every metric the services define, with its labels (so the
cardinality of each one is documented where operators look)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "metrics.md"
_KINDS = {"Counter", "Gauge", "Histogram", "GaugeMetricFamily"}


def _labels(call: ast.Call) -> list[str]:
    given = call.args[2] if len(call.args) > 2 else None
    for keyword in call.keywords:
        if keyword.arg in ("labelnames", "labels"):
            given = keyword.value
    if isinstance(given, ast.Tuple | ast.List):
        return [e.value for e in given.elts if isinstance(e, ast.Constant)]
    return []


def definitions() -> dict[str, list[str]]:
    """``{exported name: labels}`` of every metric constructed in libs/ and services/."""
    found = {}
    paths = [*ROOT.glob("libs/*/orchestrator_*/*.py"), *ROOT.glob("services/*/orchestrator_*/*.py")]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in _KINDS or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            name = first.value
            if node.func.id == "Counter" and not name.endswith("_total"):
                name += "_total"
            found[name] = _labels(node)
    return found


def documented() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`[a-z_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def test_every_metric_is_documented_with_its_labels() -> None:
    defined = definitions()
    assert len(defined) > 20  # the pattern still finds the definitions
    rows = documented()
    assert sorted(set(defined) - set(rows)) == []
    for name, labels in defined.items():
        for label in labels:
            assert f"`{label}`" in rows[name], f"{name}: label {label} not documented"


def test_every_documented_metric_exists() -> None:
    # label rows of the bounds table are not metrics
    metrics = {n for n in documented() if n.startswith(("orch_", "grpc_server_", "orchestrator_"))}
    assert sorted(metrics - set(definitions())) == []


SDK_METRICS = (
    ROOT / "clients" / "python" / "stella_orchestrator" / "worker" / "_metrics.py",
    ROOT / "clients" / "go" / "worker" / "metrics.go",
    ROOT / "clients" / "rust" / "src" / "metrics.rs",
)


def test_the_three_sdks_export_the_documented_worker_metrics() -> None:
    """Python, Go and Rust define the same names (Python's counters without ``_total``,
    which prometheus_client appends), and docs/metrics.md lists exactly those."""

    def bare(names: set[str]) -> set[str]:
        return {n.removesuffix("_total") for n in names}

    documented_names = bare({n for n in documented() if n.startswith("stella_worker_")})
    assert len(documented_names) == 6
    for path in SDK_METRICS:
        defined = bare(set(re.findall(r'"(stella_worker_[a-z_]+)"', path.read_text())))
        assert defined == documented_names, path.name
