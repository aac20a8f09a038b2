"""One JWT check for every key source (static keys, an OIDC issuer's JWKS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt

from orchestrator_core.errors import Unauthenticated


def decode_verified(
    token: str,
    key: Any,
    *,
    algorithms: Sequence[str],
    audience: str,
    issuer: str,
    leeway_s: float,
) -> dict[str, Any]:
    """The token's claims once signature, ``exp``, ``iss`` and ``aud`` hold.

    Raises:
        Unauthenticated: ``TOKEN_EXPIRED``, or ``TOKEN_INVALID`` naming the failed check.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=audience,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated(
            "bearer token has expired; get a new one", reason="TOKEN_EXPIRED"
        ) from None
    except jwt.InvalidTokenError as exc:
        # PyJWT messages name the failed check ("Invalid audience", "Signature verification
        # failed") and never echo the token, so they are safe to return.
        raise Unauthenticated(f"bearer token rejected: {exc}", reason="TOKEN_INVALID") from None
    return claims
