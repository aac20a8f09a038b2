"""Secrets: refused at submit when they look live, redacted where data leaves for display.

Inputs are never altered: a job's payload, labels and a run's labels are stored and handed to
the worker exactly as submitted. Jobs reference secrets by ``{"secretRef": "<uri>"}``, e.g.
``{"auth": {"secretRef": "vault://kv/feeds/nvd#token"}}``, resolved by the worker.

* :func:`live_credentials` finds values that look like a live credential — a well-known token
  format (GitHub, GitLab, Slack, AWS, Google, Stripe, npm, PyPI), a JWT, a PEM private key, a
  ``Bearer``/``Basic`` header value, a password in a URL — or any value under a field whose
  name only ever holds one (``password``, ``api_key``, ``client_secret``, ``access_token``,
  ``authorization``, …). Submit refuses them with INVALID_ARGUMENT naming the field.
  Cursors such as ``page_token`` or ``next_cursor`` are data, not secrets.

Where a person or a file reads (logs, the Console, REST and gRPC listings, audit bundles),
anything that still looks like a credential is replaced by :data:`REDACTED`:

* :func:`redact_value` walks JSON-like values (payloads, labels): the value of every field
  whose name says it holds a credential (``authorization``, ``password``, ``token``,
  ``api_key``, ``client_secret``, ``cookie``, …; never ``secretRef``) is replaced, and every
  string is passed through :func:`redact_text`;
* :func:`redact_text` rewrites free text (error and progress messages, log lines): bearer and
  basic credentials, ``password=…``-style pairs, passwords in URLs, JWTs and PEM private keys.

The SQL function ``orchestrator.redact_text`` (migration 0006) applies the same text rules in
the database to worker messages; tests keep the two in agreement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "REDACTED",
    "SECRET_REF_FIELD",
    "Credential",
    "is_secret_field",
    "live_credentials",
    "redact_text",
    "redact_value",
]

REDACTED: Final = "[REDACTED]"

_SECRET_WORDS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "credentials",
)
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "accesskey", "privatekey")
# Field names that carry references or metadata about secrets, not their values.
_SAFE_SUFFIXES = ("ref", "refs", "id", "ids", "name", "type", "count", "expiresat", "ttl")
# Pagination cursors are named like tokens (OSV's ``page_token``) but are data: a name ending
# in "token" or "cursor" with one of these words in it (not ``next_auth_secret``).
_CURSOR_WORDS = ("page", "cursor", "continuation", "next", "resume", "sync", "offset")

SECRET_REF_FIELD: Final = "secretRef"
# Normalised field names that only ever hold a credential: their value is refused at submit.
_CREDENTIAL_FIELDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "clientsecret",
        "apikey",
        "xapikey",
        "secretkey",
        "secretaccesskey",
        "awssecretaccesskey",
        "privatekey",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "bearertoken",
        "authtoken",
        "sessiontoken",
    }
)
# Values that are a credential whatever field holds them: (what it is, pattern).
_CREDENTIAL_VALUES: Final = (
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    (
        "a JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}"),
    ),
    (
        "a Bearer or Basic credential",
        re.compile(r"\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{12,}", re.I),
    ),
    ("a password in a URL", re.compile(r"://[^/\s:@]+:[^/\s@]+@")),
    (
        "a GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("an AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Stripe secret key", re.compile(r"\b[rs]k_live_[0-9A-Za-z]{16,}")),
    ("an npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("a PyPI token", re.compile(r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}")),
)

_TEXT_RULES: Final = (
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
        ),
        REDACTED,
    ),
    (re.compile(r"(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), r"\1\2" + REDACTED),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(
            r"((authorization|cookie|password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
            r"|private[_-]?key|client[_-]?secret)[\"']?\s*[:=]\s*[\"']?)(bearer\s+|basic\s+)?"
            r"(\[REDACTED\]|[^\s\"',;&}]+)",
            re.IGNORECASE,
        ),
        r"\1\3" + REDACTED,
    ),
)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_secret_field(name: str) -> bool:
    """Tell whether a field of this name holds a credential (``secretRef`` does not).

    Args:
        name: Field or header name, any case and separator style.

    Returns:
        True for names like ``Authorization``, ``password``, ``api-key``, ``access_token``.
    """
    key = _normalise(name)
    cursor = key.endswith(("token", "cursor")) and any(w in key for w in _CURSOR_WORDS)
    if not key or key.endswith(_SAFE_SUFFIXES) or cursor:
        return False
    return key in _SECRET_WORDS or key.endswith(_SECRET_SUFFIXES)


@dataclass(frozen=True)
class Credential:
    """A value that looks like a live credential.

    Attributes:
        field: dotted path of the value, e.g. ``payload.headers.Authorization``.
        what: what it looks like, e.g. ``a GitHub token``.
    """

    field: str
    what: str


def live_credentials(value: Any, field: str) -> list[Credential]:
    """The places in a JSON-like value that hold what looks like a live credential.

    A ``{"secretRef": ...}`` object is a reference and never reported; an empty value under a
    credential-named field neither (there is nothing to leak).

    Args:
        value: ``dict``/``list``/``str``/scalar, as decoded from JSON.
        field: the dotted path of ``value`` in the request, used in the report.

    Returns:
        One entry per offending value, in document order; empty when the value is clean.
    """
    found: list[Credential] = []
    _scan(value, field, found)
    return found


def _scan(value: Any, field: str, found: list[Credential]) -> None:
    if isinstance(value, str):
        for what, pattern in _CREDENTIAL_VALUES:
            if pattern.search(value):
                found.append(Credential(field, what))
                return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{field}.{key}"
            if key == SECRET_REF_FIELD:
                continue
            if (
                isinstance(key, str)
                and _normalise(key) in _CREDENTIAL_FIELDS
                and item not in (None, "", {}, [])
                and not (isinstance(item, Mapping) and SECRET_REF_FIELD in item)
            ):
                found.append(Credential(path, f"a value under '{key}'"))
                continue
            _scan(item, path, found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _scan(item, f"{field}[{index}]", found)


def redact_text(text: str) -> str:
    """``text`` with credentials replaced by :data:`REDACTED`.

    Args:
        text: Free text (a message, a log line, a URL).

    Returns:
        The redacted text (the same object when nothing matched).
    """
    if not text:
        return text
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value with credentials redacted.

    Mappings keep their keys; the value of a secret-named field becomes :data:`REDACTED`
    (whatever its type), strings pass through :func:`redact_text`, lists are walked.

    Args:
        value: ``dict``/``list``/``str``/scalar, as decoded from JSON.

    Returns:
        The redacted copy.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: (REDACTED if isinstance(key, str) and is_secret_field(key) else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value
