"""The overlays render (kustomize) and every object is what a cluster would accept: built-in
kinds against Kubernetes' OpenAPI schemas, custom resources against their CRDs' published
schemas. Then the production shape: replicas, autoscaling, disruption budgets, restricted
security contexts, monitors, NetworkPolicies, ServiceAccounts, Secrets, migrations first.
Each check is also run on a deliberately broken copy, where it must fail."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from orchestrator_grpckit import LIVENESS_SERVICE
from tests.k8s._tools import (
    K8S,
    ROOT,
    Obj,
    RenderError,
    Tools,
    by_kind,
    copy_tree,
    load_crds,
    named,
    render,
    validate_builtin,
    validate_custom,
    workloads,
)

STATELESS = ("scheduler", "leases", "ratelimit", "audit", "gateway", "envoy")


@pytest.fixture(scope="session")
def crds(tools: Tools) -> dict:
    schemas = load_crds(tools.crd_dirs)
    assert ("postgresql.cnpg.io", "v1", "Cluster") in schemas
    assert ("monitoring.coreos.com", "v1", "ServiceMonitor") in schemas
    return schemas


def _pods(objs: list[Obj]) -> list[tuple[Obj, Obj]]:
    return [(w, w["spec"]["template"]["spec"]) for w in workloads(objs)]


def _edit(path: Path, change) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        change(doc)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


# ------------------------------------------------------------------------ render + schemas


def test_every_overlay_renders(rendered: dict[str, list[Obj]]) -> None:
    for objs in rendered.values():
        kinds = {o["kind"] for o in objs}
        assert {"Deployment", "StatefulSet", "Service", "Cluster", "NetworkPolicy"} <= kinds
        assert all(
            o["metadata"].get("namespace") == "stella-orchestrator"
            for o in objs
            if o["kind"] != "Namespace"
        )


def test_a_broken_overlay_does_not_render(tools: Tools, tmp_path: Path) -> None:
    tree = copy_tree(tmp_path / "k8s")
    kustomization = tree / "base" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("- redis.yaml", "- rediss.yaml"))
    with pytest.raises(RenderError, match=r"rediss\.yaml"):
        render(tools, tree / "overlays" / "prod")
    # and the secrets are required: an overlay without its key files does not render
    tree2 = copy_tree(tmp_path / "k8s2")
    (tree2 / "overlays" / "dev" / "secrets" / "signing-key.pem").unlink()
    with pytest.raises(RenderError, match=r"signing-key\.pem"):
        render(tools, tree2 / "overlays" / "dev")


def test_builtin_objects_validate_against_kubernetes_schemas(overlay: list[Obj]) -> None:
    assert validate_builtin(overlay) == []


def test_schema_validation_fails_on_a_broken_copy(tools: Tools, tmp_path: Path) -> None:
    tree = copy_tree(tmp_path / "k8s")

    def typo(doc: Obj) -> None:
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"

    def wrong_type(doc: Obj) -> None:
        if doc["kind"] == "Service":
            doc["spec"]["ports"][0]["port"] = "fifty"

    _edit(tree / "base" / "scheduler.yaml", typo)
    _edit(tree / "base" / "audit.yaml", wrong_type)
    problems = validate_builtin(render(tools, tree / "overlays" / "prod"))
    assert any("orchestrator-scheduler" in p and "imagePullPolicyy" in p for p in problems)
    assert any("Service/orchestrator-audit" in p for p in problems)


def test_custom_resources_validate_against_their_crds(overlay: list[Obj], crds: dict) -> None:
    custom = {o["kind"] for o in overlay if "." in o["apiVersion"].rpartition("/")[0]}
    assert {"Cluster", "ServiceMonitor", "PodMonitor", "PrometheusRule"} <= custom
    assert validate_custom(overlay, crds) == []


def test_crd_validation_fails_on_a_broken_copy(tools: Tools, tmp_path: Path, crds: dict) -> None:
    tree = copy_tree(tmp_path / "k8s")

    def break_cluster(doc: Obj) -> None:
        if doc["kind"] == "Cluster":
            doc["spec"]["instancez"] = 3
            doc["spec"]["storage"]["size"] = {"gi": 50}

    def break_monitor(doc: Obj) -> None:
        if doc["kind"] == "PodMonitor":
            doc["spec"]["podMetricsEndpoints"][0]["interval"] = "thirty seconds"

    _edit(tree / "base" / "postgres.yaml", break_cluster)
    _edit(tree / "base" / "envoy.yaml", break_monitor)
    problems = validate_custom(render(tools, tree / "overlays" / "prod"), crds)
    assert any("Cluster/orchestrator-pg" in p and "instancez" in p for p in problems)
    assert any("Cluster/orchestrator-pg" in p and "size" in p for p in problems)
    assert any("PodMonitor/orchestrator-envoy" in p and "interval" in p for p in problems)
    # a kind that no CRD defines is refused too
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validate_custom([unknown], crds) == ["Widget/w: no CRD serves example.com/v1 Widget"]


# ------------------------------------------------------------------------ production shape


def test_dev_runs_one_replica_of_everything(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["dev"]
    assert {w["metadata"]["name"]: w["spec"]["replicas"] for w in workloads(objs)} == {
        f"orchestrator-{n}": 1 for n in (*STATELESS, "redis")
    }
    assert named(objs, "Cluster", "orchestrator-pg")["spec"]["instances"] == 1
    assert by_kind(objs, "HorizontalPodAutoscaler") == []
    assert by_kind(objs, "PodDisruptionBudget") == []


def test_prod_runs_every_stateless_service_twice_or_more_under_hpa_and_pdb(
    rendered: dict[str, list[Obj]],
) -> None:
    objs = rendered["prod"]
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]
        for h in by_kind(objs, "HorizontalPodAutoscaler")
    }
    pdbs = by_kind(objs, "PodDisruptionBudget")
    deployments = by_kind(objs, "Deployment")
    assert {d["metadata"]["name"] for d in deployments} == {f"orchestrator-{n}" for n in STATELESS}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        # the HPA owns the count: a replicas field would reset it on every apply
        assert "replicas" not in deployment["spec"], name
        assert hpas[name]["minReplicas"] >= 2, name
        assert hpas[name]["maxReplicas"] > hpas[name]["minReplicas"], name
        assert hpas[name]["scaleTargetRef"]["kind"] == "Deployment"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budgets = [
            p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(budgets) == 1, name
        assert budgets[0]["spec"]["minAvailable"] == 1
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
        }
        for constraint in spread:
            assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    cluster = named(objs, "Cluster", "orchestrator-pg")
    assert cluster["spec"]["instances"] == 3


# Sessions a process holds beside its pool: the LISTEN connections and the leader loops'
# advisory-lock sessions (postgres.yaml). The scheduler's: the event horizon's LISTEN and the
# schedule firing, event partition and incident leaders.
SESSIONS_BESIDE_POOL = 3
SESSIONS_BESIDE_POOL_OF = {"orchestrator-scheduler": 4}
DB_CLIENTS = {
    "orchestrator-scheduler": "ORCH_DB_POOL_MAX",
    "orchestrator-leases": "ORCH_DB_POOL_MAX",
    "orchestrator-ratelimit": "ORCH_DB_POOL_MAX",
    "orchestrator-audit": "ORCH_DB_POOL_MAX",
    "orchestrator-gateway": "ORCH_GATEWAY_DB_POOL_MAX",
}


def connections_at_full_scale_out(objs: list[Obj]) -> tuple[int, int]:
    """(connections every database client may open at its HPA's maximum, the cluster's
    max_connections less the superuser reserve)."""
    from orchestrator_gateway._settings import DEFAULT_DB_POOL_MAX as GATEWAY_POOL
    from orchestrator_grpckit._config import DEFAULT_DB_POOL_MAX as SERVICE_POOL

    config = named(objs, "ConfigMap", "orchestrator-config")["data"]
    defaults = {"ORCH_DB_POOL_MAX": SERVICE_POOL, "ORCH_GATEWAY_DB_POOL_MAX": GATEWAY_POOL}
    most = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in by_kind(objs, "HorizontalPodAutoscaler")
    }
    total = 0
    for name, variable in DB_CLIENTS.items():
        pool = int(config.get(variable, defaults[variable]))
        total += most[name] * (pool + SESSIONS_BESIDE_POOL_OF.get(name, SESSIONS_BESIDE_POOL))
    params = named(objs, "Cluster", "orchestrator-pg")["spec"]["postgresql"]["parameters"]
    reserved = int(params.get("superuser_reserved_connections", 3))
    return total, int(params["max_connections"]) - reserved


def test_connections_fit_the_database_at_full_scale_out(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["prod"]
    needed, allowed = connections_at_full_scale_out(objs)
    assert needed <= allowed, (needed, allowed)
    # The check bites: the code's default pool (20) at the same scale-out does not fit.
    config = named(objs, "ConfigMap", "orchestrator-config")["data"]
    broken = {**config}
    broken.pop("ORCH_DB_POOL_MAX")
    copy = [
        {**o, "data": broken} if o["kind"] == "ConfigMap" and o["data"] is config else o
        for o in objs
    ]
    needed, allowed = connections_at_full_scale_out(copy)
    assert needed > allowed, (needed, allowed)


def test_every_pod_is_restricted_with_requests_and_limits(overlay: list[Obj]) -> None:
    for workload, pod in _pods(overlay):
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["runAsNonRoot"] is True, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for part in ("requests", "limits"):
                assert set(container["resources"][part]) == {"cpu", "memory"}, where
        for container in pod["containers"]:
            assert container["readinessProbe"], name
            assert container["livenessProbe"], name
    namespace = named(overlay, "Namespace", "stella-orchestrator")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_grpc_services_are_probed_over_grpc_health(overlay: list[Obj]) -> None:
    for name in ("scheduler", "leases", "ratelimit", "audit"):
        pod = named(overlay, "Deployment", f"orchestrator-{name}")["spec"]["template"]["spec"]
        main = pod["containers"][0]
        port = next(p["containerPort"] for p in main["ports"] if p["name"] == "grpc")
        # readiness follows the dependencies (health ""); liveness only the process
        assert main["readinessProbe"]["grpc"] == {"port": port}
        assert main["livenessProbe"]["grpc"] == {"port": port, "service": LIVENESS_SERVICE}
    gateway = named(overlay, "Deployment", "orchestrator-gateway")["spec"]["template"]["spec"]
    assert gateway["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_component_has_its_own_service_account(overlay: list[Obj]) -> None:
    accounts = {a["metadata"]["name"]: a for a in by_kind(overlay, "ServiceAccount")}
    used = set()
    for workload, pod in _pods(overlay):
        account = pod["serviceAccountName"]
        assert account == workload["metadata"]["name"], "one ServiceAccount per component"
        assert accounts[account]["automountServiceAccountToken"] is False
        used.add(account)
    assert used == set(accounts)


def test_images_are_pinned(overlay: list[Obj], tools: Tools) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    images = {
        c["image"]
        for _, pod in _pods(overlay)
        for c in [*pod.get("initContainers", []), *pod["containers"]]
    }
    for image in images:
        tag = image.rpartition(":")[2]
        assert ":" in image, image
        assert tag != "latest", image
        assert re.search(r"\d+\.\d+\.\d+", tag), image
    assert f"localhost/stella-orchestrator:{version}" in images
    # the Envoy the tests run is the Envoy the cluster runs
    assert f"envoyproxy/envoy:v{tools.envoy_version}" in images
    cluster = named(overlay, "Cluster", "orchestrator-pg")
    assert re.search(r":\d+\.\d+$", cluster["spec"]["imageName"])


def test_migrations_run_before_every_database_client(overlay: list[Obj]) -> None:
    for workload, pod in _pods(overlay):
        env = {e["name"]: e for c in pod["containers"] for e in c.get("env", [])}
        if "ORCH_DATABASE_URL" not in env:
            continue
        name = workload["metadata"]["name"]
        init = pod.get("initContainers", [])
        assert [c["name"] for c in init] == ["migrate"], name
        assert init[0]["command"] == ["stella", "orchestrator", "migrate"]
        assert init[0]["image"] == pod["containers"][0]["image"], "same release migrates"
        assert init[0]["env"] == [env["ORCH_DATABASE_URL"]]


def test_database_connections_are_direct_to_the_primary(overlay: list[Obj]) -> None:
    """LISTEN/NOTIFY and session advisory locks need session connections: the URL is the
    CloudNativePG app secret's, which names the `-rw` Service; no transaction pooler."""
    cluster = named(overlay, "Cluster", "orchestrator-pg")
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == "orchestrator"
    for _, pod in _pods(overlay):
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            for env in container.get("env", []):
                if env["name"] == "ORCH_DATABASE_URL":
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert ref == {"name": "orchestrator-pg-app", "key": "uri"}
    for pooler in by_kind(overlay, "Pooler"):
        assert pooler["spec"]["pgbouncer"]["poolMode"] == "session"
    monitors = [
        m
        for m in by_kind(overlay, "PodMonitor")
        if m["spec"]["selector"]["matchLabels"] == {"cnpg.io/cluster": "orchestrator-pg"}
    ]
    assert len(monitors) == 1, "CloudNativePG's metrics (9187) are scraped"


def test_redis_keeps_nothing_on_disk(overlay: list[Obj]) -> None:
    redis = named(overlay, "StatefulSet", "orchestrator-redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--appendonly") + 1] == "no"
    assert "volumeClaimTemplates" not in redis["spec"]
    config = named(
        overlay,
        "ConfigMap",
        next(
            c["metadata"]["name"]
            for c in by_kind(overlay, "ConfigMap")
            if c["metadata"]["name"].startswith("orchestrator-config")
        ),
    )
    assert config["data"]["ORCH_REDIS_URL"] == "redis://orchestrator-redis:6379/0"
    assert named(overlay, "Service", "orchestrator-redis")["spec"]["ports"][0]["port"] == 6379


def test_every_workload_is_scraped(overlay: list[Obj]) -> None:
    services = by_kind(overlay, "Service")
    scraped: dict[str, set[str]] = {}
    for monitor in by_kind(overlay, "ServiceMonitor"):
        for service in services:
            if (
                monitor["spec"]["selector"]["matchLabels"].items()
                <= service["metadata"].get("labels", {}).items()
            ):
                for endpoint in monitor["spec"]["endpoints"]:
                    port = next(
                        p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]
                    )
                    for workload in workloads(overlay):
                        labels = workload["spec"]["template"]["metadata"]["labels"]
                        if service["spec"]["selector"].items() <= labels.items():
                            scraped.setdefault(workload["metadata"]["name"], set()).add(
                                str(port["targetPort"])
                            )
    for monitor in by_kind(overlay, "PodMonitor"):
        for workload in workloads(overlay):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            if monitor["spec"]["selector"]["matchLabels"].items() <= labels.items():
                scraped.setdefault(workload["metadata"]["name"], set()).update(
                    e["port"] for e in monitor["spec"]["podMetricsEndpoints"]
                )
    assert set(scraped) == {w["metadata"]["name"] for w in workloads(overlay)}
    for workload, pod in _pods(overlay):
        names = {p["name"] for c in pod["containers"] for p in c.get("ports", [])}
        assert scraped[workload["metadata"]["name"]] <= names, workload["metadata"]["name"]


def test_grafana_dashboards_ship_as_one_labelled_configmap(overlay: list[Obj]) -> None:
    """Every committed dashboard, byte for byte, in one ConfigMap Grafana's sidecar loads
    (label grafana_dashboard); a fixed name, so an update replaces it in place."""
    committed = {
        p.name: p.read_text() for p in (K8S / "base" / "grafana-dashboards").glob("*.json")
    }
    assert len(committed) == 6
    config = named(overlay, "ConfigMap", "orchestrator-grafana-dashboards")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"]["grafana_folder"] == "Stella Orchestrator"
    assert config["data"] == committed
    uids = {json.loads(text)["uid"] for text in config["data"].values()}
    assert len(uids) == len(committed)
    # ConfigMaps hold at most 1 MiB; leave room to grow.
    assert sum(len(text.encode()) for text in committed.values()) < 512 * 1024


def test_network_policies_deny_by_default_and_open_only_what_each_needs(overlay: list[Obj]) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(overlay, "NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for workload, _ in _pods(overlay):
        name = workload["metadata"]["name"]
        assert set(policies[name]["policyTypes"]) == {"Ingress", "Egress"}, name
    # the token-less rate-limit port is open to Envoy only
    ratelimit = policies["orchestrator-ratelimit"]["ingress"]
    rls = [rule for rule in ratelimit if {"port": 8081} in rule.get("ports", [])]
    assert rls == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "orchestrator-envoy"}}}
            ],
            "ports": [{"port": 8081}],
        }
    ]
    # PostgreSQL and Redis are reachable from the services that use them, not from the edge
    pg_from = {
        peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in policies["orchestrator-pg"]["ingress"]
        for peer in rule["from"]
    }
    assert "orchestrator-envoy" not in pg_from
    assert {"orchestrator-scheduler", "orchestrator-leases", "orchestrator-audit"} <= pg_from


def test_gateway_has_no_session_affinity_and_an_ingress(overlay: list[Obj]) -> None:
    service = named(overlay, "Service", "orchestrator-gateway")
    assert service["spec"].get("sessionAffinity", "None") == "None"
    ingress = named(overlay, "Ingress", "orchestrator-gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "orchestrator-gateway", "port": {"name": "http"}}
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"


def test_secrets_come_from_generators_and_none_is_committed(overlay: list[Obj]) -> None:
    generated = {s["metadata"]["name"] for s in by_kind(overlay, "Secret")}
    assert all(
        re.fullmatch(r"orchestrator-(token-keys|audit-signing-key|edge-tls)-[a-z0-9]{10}", n)
        for n in generated
    )
    referenced = set()
    for _, pod in _pods(overlay):
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            for env in container.get("env", []):
                if "secretKeyRef" in env.get("valueFrom", {}):
                    referenced.add(env["valueFrom"]["secretKeyRef"]["name"])
    # the generated names (with their content hash) or CloudNativePG's own app secret
    assert referenced == generated | {"orchestrator-pg-app"}
    tracked = subprocess.run(
        ["git", "ls-files", str(K8S)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [f for f in tracked if f.endswith((".pem", ".key", ".env"))]
    assert not [
        f for f in tracked if "/secrets/" in f and not f.endswith(("README.md", ".gitignore"))
    ]
