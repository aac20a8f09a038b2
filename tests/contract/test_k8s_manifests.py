"""Offline validation of deploy/k8s: every kustomization resolves, every manifest parses and
holds what production needs (probes, resources, non-root, graceful stop)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base_objects() -> list[dict]:
    base = K8S / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    return [doc for res in kustomization["resources"] for doc in _docs(base / res)]


def test_kustomizations_exist_and_reference_existing_files():
    assert KUSTOMIZATIONS, "deploy/k8s has no kustomization.yaml"
    for path in KUSTOMIZATIONS:
        data = yaml.safe_load(path.read_text())
        assert data["kind"] == "Kustomization", path
        for res in data.get("resources", []):
            assert (path.parent / res).exists(), f"{path}: resource {res} does not exist"


def test_every_object_has_kind_api_version_and_name():
    for obj in _base_objects():
        assert obj.get("apiVersion"), obj
        assert obj.get("kind"), obj
        assert obj["metadata"]["name"], obj


@pytest.mark.parametrize(
    "deployment",
    [o for o in _base_objects() if o["kind"] == "Deployment"],
    ids=lambda o: o["metadata"]["name"],
)
def test_deployments_are_production_shaped(deployment):
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] >= 20
    for container in pod["containers"]:
        assert container["readinessProbe"]
        assert container["livenessProbe"]
        if container["image"] == "stella-orchestrator":
            # our gRPC services answer grpc.health.v1: the kubelet probes it directly; the
            # gateway is HTTP and answers GET /healthz
            kind = "httpGet" if container["name"] == "gateway" else "grpc"
            assert kind in container["readinessProbe"], f"{kind} health probe expected"
            assert kind in container["livenessProbe"]
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    names = {o["metadata"]["name"] for o in _base_objects() if o["kind"] == "PodDisruptionBudget"}
    assert deployment["metadata"]["name"] in names, "each Deployment needs a PodDisruptionBudget"


def test_services_speak_h2c_to_their_grpc_port():
    services = [o for o in _base_objects() if o["kind"] == "Service"]
    assert services
    for svc in services:
        if svc["metadata"]["name"] == "orchestrator-gateway":  # HTTP only
            continue
        grpc_ports = [p for p in svc["spec"]["ports"] if p["name"] == "grpc"]
        assert grpc_ports
        assert grpc_ports[0]["appProtocol"] == "kubernetes.io/h2c"


def test_alert_rules_use_only_metrics_the_services_export():
    import re

    root = K8S.parents[1]
    exported = set()
    for path in [
        *root.glob("libs/*/orchestrator_*/*.py"),
        *root.glob("services/*/orchestrator_*/*.py"),
    ]:
        exported |= set(re.findall(r'"(orch_[a-z_]+)"', path.read_text()))
    rules = [o for o in _base_objects() if o["kind"] == "PrometheusRule"]
    assert rules
    used = set()
    for group in rules[0]["spec"]["groups"]:
        for rule in group["rules"]:
            used |= set(re.findall(r"\b(orch_[a-z_]+)", rule["expr"]))
    assert used
    suffixes = ("_total", "_bucket", "_count", "_sum")
    for metric in sorted(used):
        base = next((metric[: -len(s)] for s in suffixes if metric.endswith(s)), metric)
        assert metric in exported or base in exported, f"{metric} is not exported by any service"
