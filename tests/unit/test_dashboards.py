"""The committed Grafana dashboards (deploy/k8s/base/grafana-dashboards) are what
scripts/dashboards.py writes, and every metric a panel queries is one the services or SDKs
export (docs/metrics.md) or a recording rule of deploy/k8s/base/alerts.yaml. Whether each
query returns data is tests/crosslang/test_dashboards_prometheus.py's job."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DIR = ROOT / "deploy" / "k8s" / "base" / "grafana-dashboards"
# Built into Prometheus: scrape health and the alerts' own series.
BUILTIN = {"up", "ALERTS"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "rate", "abs", "histogram_quantile", "bool",
    "or", "and", "vector", "le", "deriv", "on", "without", "ignoring",
}  # fmt: skip


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("dashboards", ROOT / "scripts" / "dashboards.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_committed_dashboards_are_what_the_script_writes() -> None:
    committed = {p.name: p.read_text() for p in DIR.glob("*.json")}
    assert committed == _generator().render(), "run: .venv/bin/python scripts/dashboards.py"


def test_every_panel_queries_something_and_ids_are_unique() -> None:
    uids = set()
    for path in DIR.glob("*.json"):
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["targets"]
            assert all(t["expr"].strip() for t in panel["targets"])
            assert panel["datasource"]["uid"] == "${datasource}"
    assert len(uids) == 6


def test_every_queried_metric_is_exported_or_recorded() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_:]+)` \|", doc, re.M))
    rules = yaml.safe_load((ROOT / "deploy" / "k8s" / "base" / "alerts.yaml").read_text())
    recorded = {r["record"] for g in rules["spec"]["groups"] for r in g["rules"] if "record" in r}
    suffixes = ("_bucket", "_count", "_sum")
    for path in DIR.glob("*.json"):
        for expr in _exprs(json.loads(path.read_text())):
            # drop grouping clauses, label matchers, strings and ranges; names remain
            bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
            bare = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^]]*\]', " ", bare)
            for name in re.findall(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", bare):
                if name in PROMQL_WORDS or name in BUILTIN:
                    continue
                base = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
                assert {name, base} & (documented | recorded), (
                    f"{path.name}: {name} is neither documented in docs/metrics.md nor recorded"
                )


def test_variables_default_to_all_and_match_by_regex() -> None:
    for path in DIR.glob("*.json"):
        board = json.loads(path.read_text())
        names = [v["name"] for v in board["templating"]["list"] if v["type"] == "query"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["allValue"] == ".*"
                assert variable["includeAll"]
        for expr in _exprs(board):
            for name in names:
                # a templated label is always matched by regex (multi-value and All)
                assert f'="${name}"' not in expr, expr
