"""Secret redaction rules (orchestrator_core.redaction) and the JSON log formatter."""

from __future__ import annotations

import io
import json
import logging

import pytest

from orchestrator_core.redaction import (
    REDACTED,
    is_secret_field,
    live_credentials,
    redact_text,
    redact_value,
)
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


# Fake credentials in the shapes of real ones, built at run time so no scanner flags this file.
LIVE = {
    "github": "ghp_" + "A1b2C3d4" * 5,
    "github_fine": "github_pat_" + "11ABCDEFG" * 4,
    "gitlab": "glpat-" + "x1Y2z3" * 4,
    "slack": "xoxb-" + "1234567890-abcdef",
    "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    "google": "AIza" + "Sy" + "B" * 33,
    "stripe": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "npm": "npm_" + "a1B2" * 9,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36",
    "bearer": "Bearer " + "abcDEF123456ghiJKL",
    "url": "https://svc:hunter22@feeds.example/x",
    "pem": "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----",
}


@pytest.mark.parametrize("kind", sorted(LIVE))
def test_live_credential_values_are_found_wherever_they_sit(kind: str) -> None:
    value = LIVE[kind]
    payload = {"feed": {"items": [1, {"note": f"use {value} here"}]}}
    found = live_credentials(payload, "jobs[3].payload")
    assert [f.field for f in found] == ["jobs[3].payload.feed.items[1].note"]
    assert found[0].what.startswith(("a ", "an "))


@pytest.mark.parametrize(
    "name", ["password", "api_key", "client-secret", "Authorization", "access_token", "Cookie"]
)
def test_credential_named_fields_are_found_unless_references_or_empty(name: str) -> None:
    assert [f.field for f in live_credentials({name: "x"}, "p")] == [f"p.{name}"]
    assert [f.field for f in live_credentials({name: 42}, "p")] == [f"p.{name}"]
    assert live_credentials({name: {"secretRef": "vault://kv/a#b"}}, "p") == []
    assert live_credentials({name: ""}, "p") == []
    assert live_credentials({"secretRef": LIVE["github"]}, "p") == []


def test_cursors_and_metadata_are_data_not_credentials() -> None:
    payload = {
        "page_token": "eyJvZmZzZXQiOjEwMH0",
        "next_cursor": "Y3Vyc29yOjEyMzQ1",
        "nextPageToken": "CAoQAA",
        "continuation_token": "a1b2c3",
        "token_count": 1200,
        "password_policy": "min-length-12",
        "url": "https://api.osv.dev/v1/query?page_token=eyJvZmZzZXQiOjEwMH0",
        "auth": {"secretRef": "vault://kv/osv#token"},
        "basic": "basic auth is not used by this feed",
    }
    assert live_credentials(payload, "payload") == []
    shown = redact_value(payload)
    for name in ("page_token", "next_cursor", "nextPageToken", "continuation_token"):
        assert shown[name] == payload[name], name
    assert is_secret_field("token")
    assert not is_secret_field("page_token")
