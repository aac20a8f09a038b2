"""Secret redaction rules (orchestrator_core.redaction) and the JSON log formatter."""

from __future__ import annotations

import io
import json
import logging

import pytest

from orchestrator_core.redaction import REDACTED, is_secret_field, redact_text, redact_value
from orchestrator_grpckit import configure_logging

SECRET = "s3cr3t-V4lue-9f8e7d"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {SECRET}",
        f"authorization=Basic {SECRET}",
        f"GET https://svc:{SECRET}@feeds.example/x",
        f"password={SECRET}&user=a",
        f'{{"api_key": "{SECRET}"}}',
        f"client_secret:{SECRET}",
        f'{{"token":"{SECRET}"}}',
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXMzY3IzdA was rejected",
        f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----",
    ],
)
def test_redact_text_removes_credentials(text: str) -> None:
    out = redact_text(text)
    assert SECRET not in out
    assert "c2lnbmF0dXJlLXMzY3IzdA" not in out
    assert REDACTED in out


def test_redact_text_keeps_ordinary_text() -> None:
    for text in ("upstream 503 after 3 tries", "token bucket empty", "TOKEN_EXPIRED", ""):
        assert redact_text(text) == text


def test_secret_fields_but_not_references() -> None:
    for name in ("Authorization", "password", "api-key", "access_token", "clientSecret", "PWD"):
        assert is_secret_field(name), name
    for name in ("secretRef", "secret_ref", "token_count", "name", "payload", "max_tokens_id"):
        assert not is_secret_field(name), name


def test_redact_value_walks_payloads() -> None:
    payload = {
        "headers": {"Authorization": f"Bearer {SECRET}", "Accept": "json"},
        "auth": {"password": {"nested": SECRET}, "secretRef": "vault://kv/nvd"},
        "urls": [f"https://u:{SECRET}@h/x", "https://h/y"],
        "retries": 3,
    }
    out = redact_value(payload)
    assert SECRET not in json.dumps(out)
    assert out["auth"]["secretRef"] == "vault://kv/nvd"
    assert out["headers"]["Accept"] == "json"
    assert out["urls"][1] == "https://h/y"
    assert out["retries"] == 3
    assert payload["headers"]["Authorization"].endswith(SECRET), "the input is not changed"


def test_json_log_lines_are_redacted() -> None:
    stream = io.StringIO()
    configure_logging("INFO", service="t", stream=stream)
    try:
        log = logging.getLogger("secrets.test")
        log.info("calling with Authorization: Bearer %s", SECRET, extra={"password": SECRET})
        try:
            raise ValueError(f"row (token={SECRET})")
        except ValueError:
            log.exception("failed")
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if type(h).__name__ == "_JsonHandler"]:
            root.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert text.count(REDACTED) >= 3
    assert all(json.loads(line) for line in text.splitlines())
