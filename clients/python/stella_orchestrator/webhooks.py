"""Webhook signatures per the Standard Webhooks specification (standardwebhooks.com).

The orchestrator signs every delivery and receivers verify it with :func:`verify_webhook`;
this one module does both (the scheduler's dispatcher imports :func:`sign_webhook` from
here), so the signer and the verifier can never drift apart.

A delivery carries three headers:

* ``webhook-id``: the message id, the same for every attempt of one delivery (receivers
  deduplicate on it);
* ``webhook-timestamp``: seconds since the epoch when the attempt was signed;
* ``webhook-signature``: space-separated ``v1,<base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))>``,
  one per valid secret (two while a rotated secret is still honoured).

Secrets look like ``whsec_<base64 of 24..64 random bytes>``; the HMAC key is the decoded
bytes. Example (a receiver)::

    from stella_orchestrator.webhooks import verify_webhook
    event = verify_webhook(secret, request.body, request.headers)  # raises WebhookError
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SECRET_PREFIX",
    "WebhookError",
    "generate_secret",
    "sign_webhook",
    "verify_webhook",
]

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# The spec's recommended replay window: a message signed longer ago (or ahead) is refused.
DEFAULT_TOLERANCE_S = 300


class WebhookError(Exception):
    """A delivery that does not verify: a header missing or malformed, a timestamp outside
    the tolerance, or no signature made with the secret."""


def generate_secret() -> str:
    """A new random secret, ``whsec_`` + base64 of 32 bytes (shown to its owner once)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookError(f"the secret is not {SECRET_PREFIX}<base64>: {exc}") from None
    if not key:
        raise WebhookError("the secret is empty")
    return key


def _signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return (
        "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()
    )


def sign_webhook(
    valid_secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt.

    Args:
        valid_secrets: every secret valid now (the current one first; the previous one too while
            a rotation lets it live): one signature each.
        msg_id: the message id (the delivery's, stable across attempts).
        timestamp: seconds since the epoch.
        body: the exact bytes sent.

    Returns:
        ``{"webhook-id", "webhook-timestamp", "webhook-signature"}``.

    Raises:
        WebhookError: no secret, or a secret that is not ``whsec_`` + base64.
    """
    if not valid_secrets:
        raise WebhookError("signing needs at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            _signature(s, msg_id, timestamp, body) for s in valid_secrets
        ),
    }


def verify_webhook(
    secret: str,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> Any:
    """Checks a delivery's signature and returns its parsed JSON body.

    Args:
        secret: the subscription's secret (``whsec_...``), as shown when it was created or
            rotated.
        body: the raw request body, exactly as received (a str is taken as UTF-8).
        headers: the request headers (any case).
        tolerance_s: how far the timestamp may be from ``now`` (replay protection).
        now: the current time in seconds (tests); the wall clock when None.

    Returns:
        The JSON-decoded body.

    Raises:
        WebhookError: a header is missing or malformed, the timestamp is outside the
            tolerance, or no ``v1`` signature matches.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise WebhookError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookError(f"webhook-timestamp is not an integer: {stamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookError(
            f"webhook-timestamp {timestamp} is more than {tolerance_s} s from now ({current:.0f})"
        )
    expected = _signature(secret, msg_id, timestamp, raw).encode()
    if not any(hmac.compare_digest(expected, given.encode()) for given in signatures.split(" ")):
        raise WebhookError("no webhook-signature matches the secret")
    return json.loads(raw)
