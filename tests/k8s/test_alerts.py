"""The alert rules (deploy/k8s/base/alerts.yaml) as Prometheus runs them: `promtool check
rules` and `promtool test rules` with series that make each alert fire and series that must
not (alerts_test.yaml). A rule changed so that it no longer fires makes the test fail.
promtool is Debian's `prometheus` package (`make k8s-tools` installs it as root); without apt
the test skips, saying so."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from tests.k8s._tools import ROOT, Obj, Tools, prometheus_rules, promtool_test

TESTS = Path(__file__).with_name("alerts_test.yaml")


@pytest.fixture
def promtool(tools: Tools) -> str:
    if tools.promtool is None:
        # Fail, not skip: alert rules that are never evaluated are what the issue was about.
        pytest.fail(
            "promtool NOT INSTALLED: apt-get is unavailable here (not root?); install Debian's "
            "`prometheus` package (`apt-get install prometheus`, or `make k8s-tools` as root) "
            "to run the alert rule tests"
        )
    return tools.promtool


def test_alert_rules_pass_their_unit_tests(
    promtool: str, overlay: list[Obj], tmp_path: Path
) -> None:
    assert promtool_test(promtool, prometheus_rules(overlay), TESTS, tmp_path) == []


def test_every_alert_is_tested_firing_and_not_firing(rendered: dict[str, list[Obj]]) -> None:
    alerts = {
        rule["alert"]
        for group in prometheus_rules(rendered["prod"])["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fires, quiet = set(), set()
    for case in yaml.safe_load(TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alerts == fires == quiet


@pytest.mark.parametrize(
    ("alert", "old", "new"),
    [
        ("OrchestratorLeasesExpiring", "> 0.5", "> 5"),
        ("OrchestratorNoLeader", "== 0", "== 1"),
        ("OrchestratorStartLatencyBurnFast", "> 14.4 * 0.01", "> 14.4 * 0.1"),
        ("OrchestratorJobFailureBurnSlow", "> 6 * 0.05", "> 6 * 0.5"),
        ("OrchestratorCircuitOpen", ">= 1", ">= 2"),
        ("OrchestratorQueueGrowing", "> 100", "> 1000"),
    ],
)
def test_promtool_fails_on_a_broken_rule(
    promtool: str, rendered: dict[str, list[Obj]], tmp_path: Path, alert: str, old: str, new: str
) -> None:
    rules = copy.deepcopy(prometheus_rules(rendered["prod"]))
    rule = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert)
    assert old in rule["expr"]
    rule["expr"] = rule["expr"].replace(old, new)
    problems = promtool_test(promtool, rules, TESTS, tmp_path)
    assert len(problems) == 1
    assert alert in problems[0]


def test_alert_rules_use_only_metrics_the_services_export(rendered: dict[str, list[Obj]]) -> None:
    exported = set()
    for path in [
        *ROOT.glob("libs/*/orchestrator_*/*.py"),
        *ROOT.glob("services/*/orchestrator_*/*.py"),
    ]:
        exported |= set(re.findall(r'"(orch_[a-z_]+)"', path.read_text()))
    used = {
        metric
        for group in prometheus_rules(rendered["prod"])["groups"]
        for rule in group["rules"]
        for metric in re.findall(r"\b(orch_[a-z_]+)", rule["expr"])
    }
    assert used
    suffixes = ("_total", "_bucket", "_count", "_sum")
    for metric in sorted(used):
        base = next((metric[: -len(s)] for s in suffixes if metric.endswith(s)), metric)
        assert metric in exported or base in exported, f"{metric} is not exported by any service"
