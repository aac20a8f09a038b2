"""Secure by default in the manifests: every service pod starts under the rule the services
enforce themselves (docs/configuration.md, "Secure by default") — bound to 0.0.0.0, so with
key material of its own and never the insecure development switch."""

from __future__ import annotations

from orchestrator_gateway import GatewaySettings
from orchestrator_grpckit import ConfigError, ServiceConfig
from tests.k8s._tools import Obj, envoy_bootstrap, named

SERVICES = ("scheduler", "leases", "ratelimit", "audit", "gateway")
SECRET_VALUE = "<from a Secret>"


def container_env(objs: list[Obj], service: str) -> dict[str, str]:
    """The environment the service's container starts with: its ConfigMaps, then its own
    ``env`` (values from Secrets stand in as a placeholder)."""
    deployment = named(objs, "Deployment", f"orchestrator-{service}")
    [container] = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == service
    ]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env.update(named(objs, "ConfigMap", name)["data"])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", SECRET_VALUE)
    return env


def refusal(env: dict[str, str], service: str) -> str | None:
    """What the service would say at startup with ``env``, or None when it starts."""
    try:
        if service == "gateway":
            GatewaySettings.from_env(env).refuse_exposed_dev_defaults()
        else:
            config = ServiceConfig.from_env(service, environ=env)
            dev = [] if env.get("ORCH_AUDIT_SIGNING_KEY_FILE") else ["ORCH_AUDIT_SIGNING_KEY_FILE"]
            config.refuse_exposed_dev_defaults(*(dev if service == "audit" else []))
    except ConfigError as exc:
        return str(exc)
    return None


def test_every_service_starts_with_keys_of_its_own(overlay: list[Obj]) -> None:
    for service in SERVICES:
        env = container_env(overlay, service)
        assert env.get("ORCH_BIND_HOST") == "0.0.0.0", service
        assert env.get("ORCH_INSECURE_DEV", "0") == "0", service
        assert refusal(env, service) is None, service


def test_the_check_fails_without_the_keys(overlay: list[Obj]) -> None:
    # The broken copies: the development secret back (the variable unset), no signing key.
    env = container_env(overlay, "leases")
    del env["ORCH_AUTH_HS256_SECRET"]
    assert "Set ORCH_AUTH_HS256_SECRET" in (refusal(env, "leases") or "")
    env = container_env(overlay, "audit")
    del env["ORCH_AUDIT_SIGNING_KEY_FILE"]
    assert "Set ORCH_AUDIT_SIGNING_KEY_FILE" in (refusal(env, "audit") or "")


def test_envoy_and_the_ingress_terminate_tls_from_the_edge_secret(overlay: list[Obj]) -> None:
    bootstrap = envoy_bootstrap(overlay)
    [grpc] = [x for x in bootstrap["static_resources"]["listeners"] if x["name"] == "grpc"]
    [chain] = grpc["filter_chains"]
    tls = chain["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("tls.v3.DownstreamTlsContext")
    context = tls["common_tls_context"]
    assert context["alpn_protocols"] == ["h2"]
    [certificate] = context["tls_certificates"]
    files = {certificate["certificate_chain"]["filename"], certificate["private_key"]["filename"]}
    # The files are the kubernetes.io/tls Secret's keys, where the Deployment mounts it.
    deployment = named(overlay, "Deployment", "orchestrator-envoy")
    pod = deployment["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    secret = named(overlay, "Secret", volume["secret"]["secretName"])
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"].startswith("orchestrator-edge-tls-")
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert files == {f"{mount['mountPath']}/tls.crt", f"{mount['mountPath']}/tls.key"}
    ingress = named(overlay, "Ingress", "orchestrator-gateway")
    [ingress_tls] = ingress["spec"]["tls"]
    assert ingress_tls["secretName"] == secret["metadata"]["name"]
    assert ingress_tls["hosts"] == [r["host"] for r in ingress["spec"]["rules"]]
