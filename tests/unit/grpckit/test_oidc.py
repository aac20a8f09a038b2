"""Tokens of an OIDC issuer, verified against its JWKS served over real HTTP on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from orchestrator_core.errors import Unauthenticated, Unavailable
from orchestrator_grpckit import (
    DEV_HS256_SECRET,
    ConfigError,
    OidcConfig,
    ServiceConfig,
    TokenVerifier,
    mint_dev_token,
)

ISSUER = "https://idp.example/realms/ops"


class Issuer:
    """An identity provider's JWKS endpoint; ``keys`` is what it publishes right now."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                jwks = {
                    "keys": [
                        {
                            **json.loads(
                                jwt.algorithms.get_default_algorithms()[alg].to_jwk(
                                    key.public_key()
                                )
                            ),
                            "kid": kid,
                            "alg": alg,
                            "use": "sig",
                        }
                        for kid, (alg, key) in issuer.keys.items()
                    ]
                }
                body = json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/protocol/openid-connect/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self, kid: str, alg: str = "RS256") -> None:
        if alg == "RS256":
            self.keys[kid] = (alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        else:
            self.keys[kid] = (alg, ec.generate_private_key(ec.SECP256R1()))

    def token(self, kid: str, **claims: Any) -> str:
        alg, key = self.keys[kid]
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": "stella-orchestrator",
            "sub": "alice@example.org",
            "iat": now,
            "exp": now + 300,
            "tenants": ["acme"],
            "scope": "openid orch:read orch:operate",
            **claims,
        }
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    idp = Issuer()
    idp.add_key("k1")
    yield idp
    idp.server.shutdown()
    idp.server.server_close()


def _verifier(issuer: Issuer, **overrides: Any) -> TokenVerifier:
    config = OidcConfig(
        issuer=ISSUER,
        jwks_url=issuer.url,
        scopes_claim="scope",
        refresh_cooldown_s=0.0,
        **overrides,
    )
    return TokenVerifier(None, None, oidc=config)


def test_an_issuer_token_becomes_a_principal(issuer: Issuer) -> None:
    principal = _verifier(issuer).verify(issuer.token("k1"))
    assert principal.subject == "alice@example.org"
    assert principal.tenant == "acme"
    assert principal.scopes == {"openid", "orch:read", "orch:operate"}


def test_a_rotated_key_is_fetched_and_the_cache_serves_the_rest(issuer: Issuer) -> None:
    verifier = _verifier(issuer)
    verifier.verify(issuer.token("k1"))
    verifier.verify(issuer.token("k1"))
    assert issuer.fetches == 1  # cached
    issuer.add_key("k2", "ES256")  # the issuer rotates to a new key
    assert verifier.verify(issuer.token("k2")).tenant == "acme"
    assert issuer.fetches == 2


@pytest.mark.parametrize(
    ("claims", "kid", "message"),
    [
        ({"aud": "someone-else"}, "k1", "(?i)audience"),
        ({"exp": int(time.time()) - 600}, "k1", "expired"),
        ({}, "unknown", "no key of the issuer"),
        ({"tenants": "acme"}, "k1", "'tenants' must be a list"),
    ],
)
def test_bad_issuer_tokens_are_refused_naming_why(
    issuer: Issuer, claims: dict[str, Any], kid: str, message: str
) -> None:
    if kid == "unknown":
        token = issuer.token("k1", **claims)
        forged = Issuer()
        forged.add_key("k1")  # the same kid, another key: the signature cannot verify
        token = forged.token("k1")
        forged.server.shutdown()
        forged.server.server_close()
        with pytest.raises(Unauthenticated, match="Signature verification failed"):
            _verifier(issuer).verify(token)
        issuer.add_key("k3")
        token = issuer.token("k3")
        del issuer.keys["k3"]  # signed with a key the issuer no longer publishes
    else:
        token = issuer.token(kid, **claims)
    with pytest.raises(Unauthenticated, match=message):
        _verifier(issuer).verify(token)


def test_an_hs256_token_claiming_the_issuer_is_refused(issuer: Issuer) -> None:
    """alg confusion: a token naming the issuer is only ever checked with the issuer's keys
    and algorithms, never with the static HS256 secret."""
    verifier = TokenVerifier(
        DEV_HS256_SECRET, None, oidc=OidcConfig(issuer=ISSUER, jwks_url=issuer.url)
    )
    forged = jwt.encode(
        {
            "iss": ISSUER,
            "aud": "stella-orchestrator",
            "sub": "mallory",
            "exp": 2**33,
            "tenants": ["acme"],
            "scopes": ["orch:admin"],
        },
        DEV_HS256_SECRET,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)
    # The static keys still verify the orchestrator's own tokens next to the issuer's.
    own = mint_dev_token(DEV_HS256_SECRET, "svc", ["acme"], ["orch:read"])
    assert verifier.verify(own).subject == "svc"


def test_an_unreachable_issuer_is_unavailable_not_unauthenticated() -> None:
    idp = Issuer()
    idp.add_key("k1")
    token = idp.token("k1")
    url = idp.url
    idp.server.shutdown()
    idp.server.server_close()
    verifier = TokenVerifier(None, None, oidc=OidcConfig(issuer=ISSUER, jwks_url=url))
    with pytest.raises(Unavailable, match="cannot fetch the token issuer's keys"):
        verifier.verify(token)


def test_the_services_read_the_issuer_from_the_environment(issuer: Issuer) -> None:
    env = {
        "ORCH_AUTH_HS256_SECRET": "",
        "ORCH_AUTH_OIDC_ISSUER": ISSUER,
        "ORCH_AUTH_OIDC_JWKS_URL": issuer.url,
        "ORCH_AUTH_OIDC_SCOPES_CLAIM": "scope",
    }
    config = ServiceConfig.from_env("scheduler", environ=env)
    assert config.oidc is not None
    assert TokenVerifier.from_config(config).verify(issuer.token("k1")).tenant == "acme"
    with pytest.raises(ConfigError, match="together"):
        ServiceConfig.from_env("scheduler", environ={"ORCH_AUTH_OIDC_ISSUER": ISSUER})
    with pytest.raises(ConfigError, match="never HS"):
        OidcConfig.from_env({**env, "ORCH_AUTH_OIDC_ALGORITHMS": "RS256,HS256"})
