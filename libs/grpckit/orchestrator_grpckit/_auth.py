"""Bearer-token identity: verification, tenant selection and the per-call principal.

ADR 0001 "Identity": HS256 or EdDSA (Ed25519) JWTs with iss = aud = "stella-orchestrator";
the tenant of a call comes from the token (and ``x-stella-tenant`` when the token names
several), never from a request field.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestrator_core.errors import (
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
)
from orchestrator_grpckit._config import ServiceConfig
from orchestrator_grpckit._exceptions import ConfigError
from orchestrator_grpckit._jwt import decode_verified
from orchestrator_grpckit._oidc import OidcConfig, OidcVerifier

ISSUER = "stella-orchestrator"
AUDIENCE = "stella-orchestrator"
ANY_TENANT = "*"
TENANT_HEADER = "x-stella-tenant"
AUTHORIZATION_HEADER = "authorization"
TENANT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# Tokens longer than this are refused before any parsing: a bound on work per request.
_MAX_TOKEN_CHARS = 8192
_HS256 = "HS256"
_EDDSA = "EdDSA"

_PRINCIPAL: ContextVar[Principal] = ContextVar("orchestrator_grpckit.principal")

Metadata = Iterable[tuple[str, str | bytes]]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of the current RPC.

    Attributes:
        subject: Token ``sub`` (user, service or worker identity).
        tenant: The tenant this call acts for (selected per the ADR 0001 rules).
        tenants: Every tenant the token grants, as written in it (``("*",)`` for a
            platform-wide token).
        scopes: Granted scopes, e.g. ``{"orch:read", "orch:work"}``.
        job_types: Job types a worker token may serve (empty: not restricted by the token).
    """

    subject: str
    tenant: str
    tenants: tuple[str, ...]
    scopes: frozenset[str]
    job_types: tuple[str, ...] = ()

    @property
    def any_tenant(self) -> bool:
        """True for a platform-wide token (``tenants`` contains ``"*"``)."""
        return ANY_TENANT in self.tenants

    def has_scope(self, scope: str) -> bool:
        """Tell whether the token grants ``scope``.

        Args:
            scope: Scope name such as ``"orch:operate"``.

        Returns:
            True when granted.
        """
        return scope in self.scopes

    def require_scope(self, scope: str) -> None:
        """Refuse the call unless the token grants ``scope``.

        Args:
            scope: Scope name such as ``"orch:operate"``.

        Raises:
            PermissionDenied: The scope is missing (``required_scope`` names it).
        """
        if scope not in self.scopes:
            granted = ", ".join(sorted(self.scopes)) or "none"
            raise PermissionDenied(
                f"this call needs scope {scope!r}, which the token of {self.subject!r} "
                f"does not grant "
                f"(granted: {granted}); call again with a token that has {scope!r}",
                required_scope=scope,
            )


def current_principal() -> Principal:
    """Return the principal of the RPC being served.

    Set by the auth interceptor before the servicer runs.

    Returns:
        The principal.

    Raises:
        Unauthenticated: Called outside an authenticated RPC (e.g. from a health check
            or a background task).
    """
    principal = _PRINCIPAL.get(None)
    if principal is None:
        raise Unauthenticated("no authenticated caller in this context", reason="NO_PRINCIPAL")
    return principal


def _current_principal_or_none() -> Principal | None:
    return _PRINCIPAL.get(None)


def _set_principal(principal: Principal) -> None:
    # Never reset: grpc.aio runs every RPC in its own task, so the value dies with the task's
    # context; resetting from an async generator finalizer could run in another context.
    _PRINCIPAL.set(principal)


class TokenVerifier:
    """Verify bearer JWTs and turn them into a :class:`Principal`.

    Args:
        hs256_secret: Secret for HS256 tokens, or ``None`` to refuse HS256.
        ed25519_public_key_pem: PEM public key for EdDSA tokens, or ``None`` to refuse EdDSA.
        leeway_s: Clock skew tolerated on ``exp``/``iat``/``nbf``.
        oidc: An OIDC issuer whose tokens are verified against its JWKS (its ``iss`` picks
            that path; orchestrator_grpckit._oidc).

    Raises:
        ConfigError: Neither key is given, or the PEM is not an Ed25519 public key.
    """

    def __init__(
        self,
        hs256_secret: str | None,
        ed25519_public_key_pem: bytes | None,
        *,
        leeway_s: float = 0.0,
        oidc: OidcConfig | None = None,
    ) -> None:
        self._keys: dict[str, Any] = {}
        self._oidc = OidcVerifier(oidc) if oidc is not None else None
        if hs256_secret:
            self._keys[_HS256] = hs256_secret
        if ed25519_public_key_pem:
            try:
                key = serialization.load_pem_public_key(ed25519_public_key_pem)
            except ValueError as exc:
                raise ConfigError(
                    f"Ed25519 public key is not a valid PEM public key: {exc}"
                ) from exc
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"public key is {type(key).__name__}, expected an Ed25519 key")
            self._keys[_EDDSA] = key
        if not self._keys and self._oidc is None:
            raise ConfigError(
                "TokenVerifier needs an HS256 secret, an Ed25519 public key or an OIDC issuer"
            )
        self._leeway_s = leeway_s

    @classmethod
    def from_config(cls, config: ServiceConfig) -> TokenVerifier:
        """Build the verifier from ``ORCH_AUTH_*`` settings.

        Args:
            config: The service configuration.

        Returns:
            A verifier accepting HS256 and/or EdDSA tokens.

        Raises:
            ConfigError: No key configured or the key file is unreadable or wrong.
        """
        return cls(config.auth_hs256_secret, config.ed25519_public_key_pem(), oidc=config.oidc)

    @property
    def algorithms(self) -> tuple[str, ...]:
        """JWT ``alg`` values this verifier accepts."""
        return tuple(self._keys)

    def authenticate(self, metadata: Metadata | None, *, spans_tenants: bool = False) -> Principal:
        """Authenticate a call from its invocation metadata.

        Reads ``authorization: Bearer <jwt>`` and the optional ``x-stella-tenant``.

        Args:
            metadata: The call's invocation metadata.
            spans_tenants: The method acts across every tenant the token grants (a shared
                worker fleet's Work stream): a token naming several tenants, or ``*``, needs
                no ``x-stella-tenant``, and the principal's ``tenant`` is then ``""``.

        Returns:
            The principal, with its tenant selected.

        Raises:
            Unauthenticated: No, malformed, expired or wrongly signed token, or no tenant
                could be selected.
            PermissionDenied: ``x-stella-tenant`` names a tenant the token does not grant.
            InvalidArgument: ``x-stella-tenant`` is not a well-formed tenant id.
        """
        authorization: str | None = None
        tenant: str | None = None
        for key, value in metadata or ():
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            if key == AUTHORIZATION_HEADER:
                authorization = text
            elif key == TENANT_HEADER:
                tenant = text.strip()
        if authorization is None:
            raise Unauthenticated(
                "missing 'authorization' metadata; send 'authorization: Bearer <token>'",
                reason="TOKEN_MISSING",
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "'authorization' metadata must be 'Bearer <token>'", reason="TOKEN_MALFORMED"
            )
        return self.verify(token.strip(), tenant, spans_tenants=spans_tenants)

    def verify(
        self, token: str, requested_tenant: str | None = None, *, spans_tenants: bool = False
    ) -> Principal:
        """Verify one JWT and select the tenant.

        Args:
            token: The encoded JWT.
            requested_tenant: Value of ``x-stella-tenant``, if sent.

        Returns:
            The principal.

        Raises:
            Unauthenticated: The token is invalid or names several tenants and none was
                requested.
            PermissionDenied: The requested tenant is not granted by the token.
            InvalidArgument: The requested tenant id is malformed.
        """
        claims = self._decode(token)
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated(
                "token claim 'sub' must be a non-empty string", reason="TOKEN_INVALID"
            )
        tenants = _str_list(claims, "tenants", required=True)
        for tenant in tenants:
            if tenant != ANY_TENANT and not TENANT_ID_RE.match(tenant):
                raise Unauthenticated(
                    f"token names malformed tenant id {tenant!r} (expected {TENANT_ID_RE.pattern})",
                    reason="TOKEN_INVALID",
                )
        return Principal(
            subject=subject,
            tenant=_select_tenant(tenants, requested_tenant, spans_tenants=spans_tenants),
            tenants=tenants,
            scopes=frozenset(_str_list(claims, "scopes", required=True)),
            job_types=_str_list(claims, "job_types", required=False),
        )

    def _decode(self, token: str) -> dict[str, Any]:
        if len(token) > _MAX_TOKEN_CHARS:
            raise Unauthenticated("bearer token is too long", reason="TOKEN_MALFORMED")
        try:
            alg = jwt.get_unverified_header(token).get("alg")
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise Unauthenticated(
                "bearer token is not a well-formed JWT", reason="TOKEN_MALFORMED"
            ) from None
        if self._oidc is not None and self._oidc.issued(unverified):
            return self._oidc.decode(token, self._leeway_s)
        key = self._keys.get(alg) if isinstance(alg, str) else None
        if key is None or not isinstance(alg, str):
            # Choosing the key by the token's own alg header is safe only because each alg
            # has its own key and decode() is pinned to that single alg (no HS/EdDSA confusion).
            raise Unauthenticated(
                f"token algorithm {alg!r} is not accepted (accepted: {', '.join(self._keys)})",
                reason="TOKEN_INVALID",
            )
        return decode_verified(
            token,
            key,
            algorithms=[alg],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway_s=self._leeway_s,
        )


def _str_list(claims: dict[str, Any], name: str, *, required: bool) -> tuple[str, ...]:
    value = claims.get(name)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Unauthenticated(
            f"token claim {name!r} must be a list of strings", reason="TOKEN_INVALID"
        )
    if required and name == "tenants" and not value:
        raise Unauthenticated("token claim 'tenants' is empty", reason="TOKEN_INVALID")
    return tuple(value)


def _select_tenant(
    tenants: tuple[str, ...], requested: str | None, *, spans_tenants: bool = False
) -> str:
    wildcard = ANY_TENANT in tenants
    if requested is None or requested == "":
        if not wildcard and len(tenants) == 1:
            return tenants[0]
        if spans_tenants:
            return ""  # the call acts for every granted tenant, none in particular
        granted = "any tenant ('*')" if wildcard else "tenants " + ", ".join(tenants)
        raise Unauthenticated(
            f"the token grants {granted}; name the tenant of this call with "
            f"'{TENANT_HEADER}' metadata",
            reason="TENANT_REQUIRED",
        )
    if not TENANT_ID_RE.match(requested):
        raise InvalidArgument(
            f"'{TENANT_HEADER}' metadata {requested!r} is not a tenant id",
            [FieldViolation(TENANT_HEADER, f"must match {TENANT_ID_RE.pattern}")],
        )
    if wildcard or requested in tenants:
        return requested
    error = PermissionDenied(
        f"the token does not grant tenant {requested!r} (it grants {', '.join(tenants)})"
    )
    error.reason = "TENANT_NOT_GRANTED"
    raise error


def _claims(
    subject: str,
    tenants: Sequence[str],
    scopes: Iterable[str],
    job_types: Sequence[str],
    ttl_s: float,
    now: float | None,
) -> dict[str, Any]:
    if isinstance(tenants, str) or isinstance(scopes, str) or isinstance(job_types, str):
        # A bare string would silently become a list of characters.
        raise TypeError("tenants, scopes and job_types must be sequences of strings, not a string")
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": int(issued),
        "exp": int(issued + ttl_s),
        "tenants": list(tenants),
        "scopes": sorted(scopes),
    }
    if job_types:
        claims["job_types"] = list(job_types)
    return claims


def mint_dev_token(
    secret: str,
    subject: str,
    tenants: Sequence[str],
    scopes: Iterable[str],
    job_types: Sequence[str] = (),
    ttl_s: float = 3600,
    now: float | None = None,
) -> str:
    """Mint an HS256 token for local development and tests.

    Args:
        secret: The HS256 secret (``ORCH_AUTH_HS256_SECRET``).
        subject: ``sub`` claim.
        tenants: Tenant ids, or ``["*"]`` for a platform-wide token.
        scopes: Scopes such as ``["orch:read"]``.
        job_types: Job types a worker may serve (omitted when empty).
        ttl_s: Lifetime in seconds.
        now: Issue time as Unix seconds (default: the current time).

    Returns:
        The encoded JWT.
    """
    return jwt.encode(
        _claims(subject, tenants, scopes, job_types, ttl_s, now), secret, algorithm=_HS256
    )


def mint_token_ed25519(
    private_key_pem: bytes,
    subject: str,
    tenants: Sequence[str],
    scopes: Iterable[str],
    job_types: Sequence[str] = (),
    ttl_s: float = 3600,
    now: float | None = None,
) -> str:
    """Mint an EdDSA (Ed25519) token.

    Args:
        private_key_pem: PKCS#8 PEM Ed25519 private key.
        subject: ``sub`` claim.
        tenants: Tenant ids, or ``["*"]``.
        scopes: Scopes.
        job_types: Job types a worker may serve (omitted when empty).
        ttl_s: Lifetime in seconds.
        now: Issue time as Unix seconds (default: the current time).

    Returns:
        The encoded JWT.

    Raises:
        ValueError: The PEM is not an unencrypted Ed25519 private key.
    """
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"private key is {type(key).__name__}, expected an Ed25519 key")
    return jwt.encode(
        _claims(subject, tenants, scopes, job_types, ttl_s, now), key, algorithm=_EDDSA
    )


def generate_ed25519_keypair() -> tuple[bytes, bytes]:
    """Generate an Ed25519 key pair for development and tests.

    Returns:
        ``(private_key_pem, public_key_pem)``: PKCS#8 and SubjectPublicKeyInfo PEM.
    """
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def method_scopes(service: str, scopes: Mapping[str, str]) -> dict[str, str]:
    """The scope each RPC of a service requires, keyed by full method path
    (``/package.Service/Method``) as :class:`AuthInterceptor` looks it up.

    Args:
        service: The full service name, e.g. ``stella.orchestrator.v1.LeaseService``.
        scopes: The scope of each method, by method name.
    """
    return {f"/{service}/{method}": scope for method, scope in scopes.items()}
