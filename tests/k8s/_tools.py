"""The real tools the manifest tests run, and the checks themselves as plain functions.

Every check returns a list of problems (empty = passes), so a test can run it on the real
manifests and on a deliberately broken copy and see it fail there. The tools come from
`make k8s-tools` (scripts/k8s.mk): kustomize, the operators' CRDs and Envoy at pinned
versions under .cache/, promtool from Debian.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# The Kubernetes releases whose OpenAPI schemas the objects must satisfy (kubernetes-validate):
# the oldest we support (matchLabelKeys in topology spread needs 1.27+; 1.30 is the oldest
# release still maintained by the big providers) and the newest the package knows.
K8S_VERSIONS = ("1.30.0", "1.37.0")

Obj = dict[str, Any]


def _pinned(name: str) -> str:
    match = re.search(rf"^{name} := (\S+)$", (ROOT / "scripts" / "k8s.mk").read_text(), re.M)
    assert match, f"{name} not found in scripts/k8s.mk"
    return match.group(1)


@dataclass(frozen=True)
class Tools:
    kustomize: Path
    envoy: Path
    crd_dirs: tuple[Path, ...]
    promtool: str | None
    envoy_version: str


def install_tools() -> Tools:
    """Run `make k8s-tools` (idempotent: stamps make a second run a no-op) and locate them."""
    done = subprocess.run(
        ["make", "-s", "k8s-tools", "K8S_VENV_DEP=", f"PY={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if done.returncode != 0:
        raise RuntimeError(f"make k8s-tools failed:\n{done.stdout}\n{done.stderr}")
    if done.stderr.strip():
        print(done.stderr, file=sys.stderr)  # the loud promtool warning, if any
    cache = ROOT / ".cache"
    envoy_version = _pinned("ENVOY_VERSION")
    return Tools(
        kustomize=cache / "bin" / "kustomize",
        envoy=cache / "bin" / f"envoy-{envoy_version}",
        crd_dirs=(
            cache / "k8s" / "crds" / f"cnpg-{_pinned('CNPG_VERSION')}",
            cache
            / "k8s"
            / "crds"
            / f"prometheus-operator-{_pinned('PROMETHEUS_OPERATOR_VERSION')}",
        ),
        promtool=shutil.which("promtool"),
        envoy_version=envoy_version,
    )


# ----------------------------------------------------------------------------- the tree


def write_throwaway_keys(tree: Path) -> None:
    """The key files each overlay's secretGenerator reads (never committed), made fresh."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for overlay in OVERLAYS:
        secrets = tree / "overlays" / overlay / "secrets"
        key = Ed25519PrivateKey.generate()
        (secrets / "signing-key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        write_throwaway_tls(secrets / "tls.crt", secrets / "tls.key")
        (secrets / "token-public.pem").write_bytes(
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def write_throwaway_tls(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for the API host names and localhost (what the edge-TLS
    Secret of an overlay, or a cert-manager Certificate, would hold)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orchestrator.example.com")])
    now = dt.datetime.now(dt.UTC)
    hosts = ["orchestrator.example.com", "orchestrator.dev.example.com", "localhost"]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def copy_tree(dest: Path) -> Path:
    """A copy of deploy/k8s with throwaway keys, to render (and to break on purpose)."""
    shutil.copytree(K8S, dest, ignore=shutil.ignore_patterns("*.pem", "*.crt", "*.key"))
    write_throwaway_keys(dest)
    return dest


def render(tools: Tools, overlay: Path) -> list[Obj]:
    """`kustomize build` of one overlay (what `kubectl kustomize` runs), parsed."""
    done = subprocess.run(
        [str(tools.kustomize), "build", str(overlay)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RenderError(done.stderr.strip())
    return [d for d in yaml.safe_load_all(done.stdout) if d]


class RenderError(Exception):
    """kustomize refused the overlay."""


def by_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: Iterable[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def workloads(objs: Iterable[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]


def envoy_bootstrap(objs: Iterable[Obj]) -> Obj:
    """Envoy's bootstrap as the Deployment mounts it (the generated ConfigMap it names)."""
    deployment = named(objs, "Deployment", "orchestrator-envoy")
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
    )
    config_map = named(objs, "ConfigMap", volume["configMap"]["name"])
    return yaml.safe_load(config_map["data"]["envoy.yaml"])


# ------------------------------------------------------------------ schema validation


def validate_builtin(objs: Iterable[Obj]) -> list[str]:
    """Every object of a built-in kind against Kubernetes' OpenAPI schema, strictly (unknown
    fields are errors), as `kubernetes-validate --strict` does; custom kinds are left to
    :func:`validate_custom`."""
    import kubernetes_validate

    problems = []
    for obj in objs:
        if is_custom(obj):
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{_name(obj)} ({version}): {exc.message} at {list(exc.path)}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(f"{_name(obj)} ({version}): no Kubernetes schema ({exc})")
    return problems


# API groups with a dot in their name that Kubernetes itself serves.
BUILTIN_DOTTED_GROUPS = (
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "certificates.k8s.io",
)


def is_custom(obj: Obj) -> bool:
    """True for a kind some CRD defines (its API group has a dot and is not Kubernetes')."""
    group = obj["apiVersion"].rpartition("/")[0]
    return "." in group and group not in BUILTIN_DOTTED_GROUPS


class _CrdLoader(yaml.CSafeLoader):
    """YAML 1.1 reads a bare `=` (an enum value in the relabelling CRDs) as the obsolete
    `!!value` tag, which PyYAML cannot build; YAML 1.2, which Kubernetes speaks, reads a
    string."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def load_crds(dirs: Iterable[Path]) -> dict[tuple[str, str, str], Obj]:
    """{(group, version, kind): openAPIV3Schema} of every served version of every CRD."""
    schemas = {}
    for directory in dirs:
        for path in sorted(directory.glob("*.yaml")):
            for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    if version.get("served"):
                        key = (spec["group"], version["name"], spec["names"]["kind"])
                        schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 structural schema as JSON Schema draft 4, with the API server's strict
    field validation: an object that lists its properties and does not preserve unknown
    fields admits no others; `nullable` admits null."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    return out


def validate_custom(objs: Iterable[Obj], crds: dict[tuple[str, str, str], Obj]) -> list[str]:
    """Every custom resource against its CRD's published schema (unknown fields are errors).
    A kind no CRD defines is an error too. (CEL rules, x-kubernetes-validations, are the API
    server's to check; they are not evaluated here.)"""
    import jsonschema

    problems = []
    for obj in objs:
        if not is_custom(obj):
            continue
        group, _, version = obj["apiVersion"].rpartition("/")
        schema = crds.get((group, version, obj["kind"]))
        if schema is None:
            problems.append(f"{_name(obj)}: no CRD serves {obj['apiVersion']} {obj['kind']}")
            continue
        instance = copy.deepcopy(obj)
        instance["metadata"] = {"name": obj["metadata"]["name"]}  # ObjectMeta is not in it
        validator = jsonschema.Draft4Validator(_strict(schema))
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path)):
            problems.append(f"{_name(obj)}: {error.message} at {list(error.absolute_path)}")
    return problems


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


# ------------------------------------------------------------------------------ Envoy


def parse_bootstrap(bootstrap: Obj) -> list[str]:
    """Envoy's config into the v3 Bootstrap proto, every typed_config included; an unknown
    field or a wrong type is a problem."""
    # Importing the modules registers the typed_config types the Any fields name.
    from envoy.config.bootstrap.v3 import bootstrap_pb2
    from envoy.extensions.filters.http.ratelimit.v3 import rate_limit_pb2  # noqa: F401
    from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
    from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
        http_connection_manager_pb2,
    )
    from envoy.extensions.resource_monitors.downstream_connections.v3 import (  # noqa: F401
        downstream_connections_pb2,
    )
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
    from google.protobuf import json_format

    try:
        json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        return [str(exc)]
    return []


def with_tls_files(bootstrap: Obj, cert: Path, key: Path) -> Obj:
    """A copy of the bootstrap whose TLS certificate and key are read from ``cert`` and ``key``
    instead of the Secret's mount (which exists only in a pod)."""
    out = copy.deepcopy(bootstrap)
    for listener in out["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            socket = chain.get("transport_socket")
            if socket is None:
                continue
            for certificate in socket["typed_config"]["common_tls_context"]["tls_certificates"]:
                certificate["certificate_chain"] = {"filename": str(cert)}
                certificate["private_key"] = {"filename": str(key)}
    return out


def envoy_validate(tools: Tools, bootstrap: Obj, workdir: Path) -> list[str]:
    """Envoy itself checks the config (`--mode validate`: every extension, every cluster;
    the TLS certificate is a throwaway one, the Secret exists only in a cluster)."""
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    write_throwaway_tls(cert, key)
    path = workdir / "envoy-validate.yaml"
    path.write_text(yaml.safe_dump(with_tls_files(bootstrap, cert, key)))
    done = subprocess.run(
        [str(tools.envoy), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return [] if done.returncode == 0 else [done.stdout[-2000:] + done.stderr[-2000:]]


def upstream_problems(objs: list[Obj], bootstrap: Obj) -> list[str]:
    """Each upstream cluster must resolve to pods: STRICT_DNS on a headless Service of this
    namespace whose port is the one Envoy dials and whose selector picks a workload's pods
    that expose that port. (A ClusterIP name resolves to one virtual IP: one endpoint.)"""
    problems = []
    services = {s["metadata"]["name"]: s for s in by_kind(objs, "Service")}
    for cluster in bootstrap["static_resources"]["clusters"]:
        name = cluster["name"]
        if cluster.get("type") == "STATIC" and name == "admin":
            continue  # Envoy's own admin listener on loopback
        if cluster.get("type") != "STRICT_DNS":
            problems.append(f"cluster {name}: type {cluster.get('type')}, not STRICT_DNS")
        for address in _cluster_addresses(cluster):
            host, port = address["address"], address["port_value"]
            service = services.get(host.split(".")[0])
            if service is None:
                problems.append(f"cluster {name}: {host} is not a Service of the overlay")
                continue
            if service["spec"].get("clusterIP") != "None":
                problems.append(f"cluster {name}: Service {host} is not headless")
            ports = [p for p in service["spec"]["ports"] if p["port"] == port]
            if not ports:
                problems.append(f"cluster {name}: Service {host} has no port {port}")
                continue
            pods = [
                w
                for w in workloads(objs)
                if service["spec"]["selector"].items()
                <= w["spec"]["template"]["metadata"]["labels"].items()
            ]
            if not pods:
                problems.append(f"cluster {name}: Service {host} selects no workload's pods")
            target = ports[0]["targetPort"]
            for workload in pods:
                exposed = [
                    p
                    for c in workload["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports", [])
                    if target in (p.get("name"), p["containerPort"])
                ]
                if not any(p["containerPort"] == port for p in exposed):
                    problems.append(f"cluster {name}: {_name(workload)} serves no port {port}")
    return problems


def _cluster_addresses(cluster: Obj) -> Iterator[Obj]:
    for group in cluster["load_assignment"]["endpoints"]:
        for endpoint in group["lb_endpoints"]:
            yield endpoint["endpoint"]["address"]["socket_address"]


# ---------------------------------------------------------------------------- promtool


def prometheus_rules(objs: Iterable[Obj]) -> Obj:
    """The PrometheusRule's groups as a Prometheus rule file."""
    rules = by_kind(objs, "PrometheusRule")
    assert len(rules) == 1
    return {"groups": rules[0]["spec"]["groups"]}


def promtool_test(promtool: str, rules: Obj, test_file: Path, workdir: Path) -> list[str]:
    """`promtool check rules` and `promtool test rules` of the rule file with its tests."""
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(test_file, workdir / "alerts_test.yaml")
    problems = []
    for args in (["check", "rules", "rules.yaml"], ["test", "rules", "alerts_test.yaml"]):
        done = subprocess.run(
            [promtool, *args],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "NO_COLOR": "1"},
        )
        if done.returncode != 0:
            problems.append(f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}")
    return problems
