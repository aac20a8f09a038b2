"""Bearer-token authentication and tenant selection, over real channels and directly."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import grpc
import jwt
import pytest

from orchestrator_core.errors import InvalidArgument, PermissionDenied, Unauthenticated
from orchestrator_grpckit import (
    ConfigError,
    GrpcService,
    Principal,
    TokenVerifier,
    current_principal,
    error_details,
    generate_ed25519_keypair,
    mint_dev_token,
    mint_token_ed25519,
)

Meta = Callable[..., tuple[tuple[str, str], ...]]


async def _echo(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        await channel.unary_unary("/test.v1.Probe/Echo")(b"", metadata=metadata)
    )
    return body


async def _fail(
    channel: grpc.aio.Channel, metadata: Any, method: str = "Echo"
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await channel.unary_unary(f"/test.v1.Probe/{method}")(b"", metadata=metadata)
    return info.value


@pytest.mark.asyncio
async def test_missing_token_is_unauthenticated(channel: grpc.aio.Channel) -> None:
    error = await _fail(channel, None)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization" in (error.details() or "")
    assert error_details(error)["ErrorInfo"].reason == "TOKEN_MISSING"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic dXNlcjpwdw==", "TOKEN_MALFORMED"),
        ("Bearer not-a-jwt", "TOKEN_MALFORMED"),
        ("Bearer ", "TOKEN_MALFORMED"),
    ],
)
async def test_malformed_authorization_is_unauthenticated(
    channel: grpc.aio.Channel, header: str, reason: str
) -> None:
    error = await _fail(channel, (("authorization", header),))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(error)["ErrorInfo"].reason == reason


@pytest.mark.asyncio
async def test_token_signed_with_another_secret_is_rejected(
    channel: grpc.aio.Channel, auth: Meta
) -> None:
    forged = mint_dev_token(
        "another-secret-that-is-long-enough-0123", "mallory", ["acme"], ["orch:admin"]
    )
    error = await _fail(channel, auth(forged))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(error)["ErrorInfo"].reason == "TOKEN_INVALID"


@pytest.mark.asyncio
async def test_expired_token_is_rejected(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    expired = mint(ttl_s=60, now=time.time() - 3600)
    error = await _fail(channel, auth(expired))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (error.details() or "")
    assert error_details(error)["ErrorInfo"].reason == "TOKEN_EXPIRED"


@pytest.mark.asyncio
async def test_wrong_audience_or_missing_exp_is_rejected(
    channel: grpc.aio.Channel, secret: str, auth: Meta
) -> None:
    now = int(time.time())
    base = {
        "iss": "stella-orchestrator",
        "sub": "a",
        "tenants": ["acme"],
        "scopes": [],
        "exp": now + 60,
    }
    for claims in (
        {**base, "aud": "someone-else"},
        {k: v for k, v in base.items() if k != "exp"} | {"aud": "stella-orchestrator"},
    ):
        error = await _fail(channel, auth(jwt.encode(claims, secret, algorithm="HS256")))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.asyncio
async def test_single_tenant_token_selects_its_tenant(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    body = await _echo(
        channel, auth(mint(tenants=["acme"], scopes=["orch:read", "orch:work"], job_types=["http"]))
    )
    assert body == {
        "subject": "alice",
        "tenant": "acme",
        "tenants": ["acme"],
        "scopes": ["orch:read", "orch:work"],
        "job_types": ["http"],
        "request_id": body["request_id"],
    }
    # Naming the same tenant explicitly is fine; naming another is not.
    assert (await _echo(channel, auth(mint(), ("x-stella-tenant", "acme"))))["tenant"] == "acme"
    error = await _fail(channel, auth(mint(), ("x-stella-tenant", "globex")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(error)["ErrorInfo"].reason == "TENANT_NOT_GRANTED"


@pytest.mark.asyncio
async def test_multi_tenant_token_needs_x_stella_tenant(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    multi = mint(tenants=["acme", "globex"])
    error = await _fail(channel, auth(multi))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "x-stella-tenant" in (error.details() or "")
    assert error_details(error)["ErrorInfo"].reason == "TENANT_REQUIRED"

    assert (await _echo(channel, auth(multi, ("x-stella-tenant", "globex"))))["tenant"] == "globex"

    error = await _fail(channel, auth(multi, ("x-stella-tenant", "initech")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "initech" in (error.details() or "")


@pytest.mark.asyncio
async def test_wildcard_token_takes_any_well_formed_tenant(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    fleet = mint(tenants=["*"], scopes=["orch:work"])
    error = await _fail(channel, auth(fleet))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "any tenant" in (error.details() or "")

    body = await _echo(channel, auth(fleet, ("x-stella-tenant", "tenant-7")))
    assert (body["tenant"], body["tenants"]) == ("tenant-7", ["*"])

    error = await _fail(channel, auth(fleet, ("x-stella-tenant", "Not_A_Tenant")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = error_details(error)["BadRequest"].field_violations
    assert violation.field == "x-stella-tenant"


@pytest.mark.asyncio
async def test_missing_scope_is_permission_denied(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    # Checked by the servicer with current_principal().require_scope(...)
    error = await _fail(channel, auth(mint(scopes=["orch:read"])), method="Operate")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "orch:operate" in (error.details() or "")
    info = error_details(error)["ErrorInfo"]
    assert (info.reason, dict(info.metadata)) == (
        "PERMISSION_DENIED",
        {"required_scope": "orch:operate"},
    )
    ok = await channel.unary_unary("/test.v1.Probe/Operate")(
        b"", metadata=auth(mint(scopes=["orch:operate"]))
    )
    assert ok == b"operated"

    # Checked by the interceptor from method_scopes.
    error = await _fail(channel, auth(mint(scopes=["orch:read"])), method="AdminOnly")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(error_details(error)["ErrorInfo"].metadata) == {"required_scope": "orch:admin"}
    assert (await _echo(channel, auth(mint(scopes=["orch:admin"]))))["scopes"] == ["orch:admin"]


@pytest.mark.asyncio
async def test_ed25519_tokens_verify(
    make_service: Callable[..., Any], probe_config: Callable[..., Any], auth: Meta, tmp_path: Any
) -> None:
    private_pem, public_pem = generate_ed25519_keypair()
    key_file = tmp_path / "orch-ed25519.pub.pem"
    key_file.write_bytes(public_pem)
    service: GrpcService = await make_service(
        config=probe_config(auth_hs256_secret=None, auth_ed25519_public_key_file=key_file)
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        token = mint_token_ed25519(
            private_pem, "worker-1", ["acme"], ["orch:work"], job_types=["http"]
        )
        body = await _echo(channel, auth(token))
        assert (body["subject"], body["tenant"], body["job_types"]) == (
            "worker-1",
            "acme",
            ["http"],
        )

        other_private, _ = generate_ed25519_keypair()
        error = await _fail(channel, auth(mint_token_ed25519(other_private, "w", ["acme"], [])))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

        # HS256 is not configured on this service, so an HS256 token is refused by algorithm.
        hs = mint_dev_token("some-hs256-secret-long-enough-0123456789", "w", ["acme"], [])
        error = await _fail(channel, auth(hs))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "HS256" in (error.details() or "")


def test_verifier_rejects_hs256_signed_with_the_public_key() -> None:
    # Classic alg confusion: HMAC-sign with the (public) Ed25519 PEM as the secret and hope the
    # verifier feeds its public key to HS256. Forged by hand because PyJWT refuses to do it.
    _, public_pem = generate_ed25519_keypair()
    verifier = TokenVerifier(None, public_pem)
    now = int(time.time())
    claims = {
        "iss": "stella-orchestrator",
        "aud": "stella-orchestrator",
        "sub": "x",
        "exp": now + 60,
        "tenants": ["acme"],
        "scopes": ["orch:admin"],
    }

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + b64(signature)).decode()
    with pytest.raises(Unauthenticated, match="not accepted"):
        verifier.verify(forged)
    assert verifier.algorithms == ("EdDSA",)


@pytest.mark.parametrize("tenants", [["acme", "globex"], ["*"]], ids=["two", "any"])
def test_a_tenant_spanning_method_needs_no_tenant_header(secret: str, tenants: list[str]) -> None:
    verifier = TokenVerifier(secret, None)
    token = mint_dev_token(secret, "fleet", tenants, ["orch:work"])
    spanning = verifier.verify(token, spans_tenants=True)
    assert spanning.tenant == ""  # acts for every granted tenant, none in particular
    assert spanning.tenants == tuple(tenants)
    # a header still selects (and is still checked against the grant)
    assert verifier.verify(token, "globex", spans_tenants=True).tenant == "globex"
    with pytest.raises(InvalidArgument):
        verifier.verify(token, "-bad", spans_tenants=True)
    if tenants != ["*"]:
        with pytest.raises(PermissionDenied):
            verifier.verify(token, "initech", spans_tenants=True)
    # a single-tenant token keeps its tenant; other methods still ask which tenant
    one = mint_dev_token(secret, "worker", ["acme"], ["orch:work"])
    assert verifier.verify(one, spans_tenants=True).tenant == "acme"
    with pytest.raises(Unauthenticated, match="x-stella-tenant"):
        verifier.verify(token)


def test_verifier_direct_rules(secret: str) -> None:
    verifier = TokenVerifier(secret, None)
    token = mint_dev_token(secret, "bob", ["acme", "globex"], ["orch:read"])
    assert verifier.verify(token, "globex").tenant == "globex"
    with pytest.raises(Unauthenticated):
        verifier.verify(token)
    with pytest.raises(PermissionDenied):
        verifier.verify(token, "initech")
    with pytest.raises(InvalidArgument):
        verifier.verify(token, "-bad")
    bad_tenant = mint_dev_token(secret, "bob", ["ACME"], [])
    with pytest.raises(Unauthenticated, match="malformed tenant"):
        verifier.verify(bad_tenant)
    with pytest.raises(TypeError):
        mint_dev_token(secret, "bob", "acme", [])


def test_verifier_needs_a_key() -> None:
    with pytest.raises(ConfigError):
        TokenVerifier(None, None)
    with pytest.raises(ConfigError):
        TokenVerifier(None, b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def test_principal_scopes() -> None:
    principal = Principal("alice", "acme", ("acme",), frozenset({"orch:read"}))
    assert principal.has_scope("orch:read")
    assert not principal.has_scope("orch:quota")
    principal.require_scope("orch:read")
    with pytest.raises(PermissionDenied) as info:
        principal.require_scope("orch:quota")
    assert info.value.required_scope == "orch:quota"
    assert "orch:quota" in info.value.message
    assert "token" in info.value.message
    assert not principal.any_tenant


def test_current_principal_outside_an_rpc() -> None:
    with pytest.raises(Unauthenticated):
        current_principal()
