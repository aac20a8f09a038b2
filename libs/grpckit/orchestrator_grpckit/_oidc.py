"""Tokens from an OIDC issuer, verified against its published JWKS (PyJWT's ``PyJWKClient``).

Operators who run an identity provider (Keycloak, Dex, Entra ID, ...) let it issue the
orchestrator's tokens instead of minting them with a static key. A token whose ``iss`` is the
configured issuer is verified with the key its ``kid`` names in the issuer's JWKS (fetched
and cached for ``JWKS_CACHE_S``; an unknown ``kid`` refetches, at most every
``refresh_cooldown_s``, which is how a key rotation at the issuer reaches us); every other
token goes to the static keys as before.

Claims: ``sub`` as usual; the tenants and scopes come from configurable claims (default
``tenants`` and ``scopes``), and a scope claim that is one space-separated string — the OAuth
``scope`` convention — is split.

The JWKS is fetched with a short timeout on the calling thread when the cache is cold or a
``kid`` is new (every ``JWKS_CACHE_S`` at most otherwise): an unreachable issuer answers
UNAVAILABLE (retryable), not UNAUTHENTICATED.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from orchestrator_core.errors import Unauthenticated, Unavailable
from orchestrator_grpckit._exceptions import ConfigError
from orchestrator_grpckit._jwt import decode_verified

JWKS_CACHE_S = 300
JWKS_TIMEOUT_S = 5
DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class OidcConfig:
    """Where an OIDC issuer's tokens are checked (``ORCH_AUTH_OIDC_*``).

    Attributes:
        issuer: The ``iss`` of the issuer's tokens (exact match).
        jwks_url: The issuer's JWKS document (``jwks_uri`` of its discovery document).
        audience: The ``aud`` the tokens must carry.
        algorithms: Signature algorithms accepted from the issuer (never HS*).
        tenants_claim: Claim holding the list of tenants.
        scopes_claim: Claim holding the scopes (a list, or one space-separated string).
    """

    issuer: str
    jwks_url: str
    audience: str = "stella-orchestrator"
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    tenants_claim: str = "tenants"
    scopes_claim: str = "scopes"
    # An unknown kid refetches the JWKS at most this often (a flood of made-up kids must not
    # become a flood of fetches); a rotated key is accepted at most this long after.
    refresh_cooldown_s: float = 30.0

    def __post_init__(self) -> None:
        if any(alg.upper().startswith("HS") for alg in self.algorithms):
            raise ConfigError("ORCH_AUTH_OIDC_ALGORITHMS: an issuer's tokens are never HS*")
        if not self.jwks_url.startswith(("https://", "http://")):
            raise ConfigError("ORCH_AUTH_OIDC_JWKS_URL must be an http(s) URL")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OidcConfig | None:
        """The configuration, or ``None`` when ``ORCH_AUTH_OIDC_ISSUER`` is unset.

        Raises:
            ConfigError: The issuer is set without its JWKS URL (or the reverse), or a value
                is unusable.
        """
        issuer = env.get("ORCH_AUTH_OIDC_ISSUER", "").strip()
        jwks_url = env.get("ORCH_AUTH_OIDC_JWKS_URL", "").strip()
        if not issuer and not jwks_url:
            return None
        if not issuer or not jwks_url:
            raise ConfigError(
                "set ORCH_AUTH_OIDC_ISSUER and ORCH_AUTH_OIDC_JWKS_URL together "
                "(the issuer's iss and its jwks_uri)"
            )
        algorithms = env.get("ORCH_AUTH_OIDC_ALGORITHMS", "").replace(",", " ").split()
        return cls(
            issuer=issuer,
            jwks_url=jwks_url,
            audience=env.get("ORCH_AUTH_OIDC_AUDIENCE", "").strip() or cls.audience,
            algorithms=tuple(algorithms) or DEFAULT_ALGORITHMS,
            tenants_claim=env.get("ORCH_AUTH_OIDC_TENANTS_CLAIM", "").strip() or "tenants",
            scopes_claim=env.get("ORCH_AUTH_OIDC_SCOPES_CLAIM", "").strip() or "scopes",
        )


class OidcVerifier:
    """Verifies one issuer's tokens and returns claims in the orchestrator's shape."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._jwks = jwt.PyJWKClient(
            config.jwks_url,
            cache_jwk_set=True,
            lifespan=JWKS_CACHE_S,
            timeout=JWKS_TIMEOUT_S,
            cooldown_duration=config.refresh_cooldown_s,
        )

    def issued(self, unverified_claims: Mapping[str, Any]) -> bool:
        """Whether a token claims to come from this issuer (then only this issuer's keys
        may verify it)."""
        return unverified_claims.get("iss") == self.config.issuer

    def decode(self, token: str, leeway_s: float) -> dict[str, Any]:
        """The verified claims with ``tenants`` and ``scopes`` as lists.

        Raises:
            Unauthenticated: Unknown key, bad signature, wrong audience, expired, ...
            Unavailable: The issuer's JWKS could not be fetched.
        """
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable(f"cannot fetch the token issuer's keys: {exc}") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise Unauthenticated(
                f"bearer token rejected: no key of the issuer verifies it ({exc})",
                reason="TOKEN_INVALID",
            ) from None
        claims = decode_verified(
            token,
            key,
            algorithms=self.config.algorithms,
            audience=self.config.audience,
            issuer=self.config.issuer,
            leeway_s=leeway_s,
        )
        scopes = claims.get(self.config.scopes_claim)
        if isinstance(scopes, str):
            scopes = scopes.split()
        return {
            **claims,
            "tenants": claims.get(self.config.tenants_claim),
            "scopes": scopes,
        }
