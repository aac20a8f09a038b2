"""``/webhooks`` over real HTTP against a real scheduler (WebhookService) and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.gateway._helpers import REASON, cli

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=20) as c:
        yield c


async def test_webhooks_crud_rotate_and_deliveries(stack, client: httpx.AsyncClient) -> None:
    body = {"url": "https://siem.example/hook", "event_types": ["job.dead", "run.finished"]}
    denied = await client.post("/webhooks", json=body, headers=stack.headers(("orch:read",)))
    assert denied.status_code == 403
    bad = await client.post("/webhooks", json={**body, "url": "ftp://x"})
    assert bad.status_code == 400, bad.text

    created = await client.post("/webhooks", json=body)
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    webhook = created.json()["webhook"]
    assert secret.startswith("whsec_")
    assert webhook["event_types"] == body["event_types"]
    assert webhook["enabled"] is True

    got = (await client.get(f"/webhooks/{webhook['id']}")).json()
    assert "secret" not in got
    listed = (await client.get("/webhooks")).json()
    assert webhook["id"] in [w["id"] for w in listed["items"]]

    patched = await client.patch(
        f"/webhooks/{webhook['id']}", json={"description": "SIEM", "enabled": False}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "SIEM"
    assert patched.json()["enabled"] is False

    rotated = await client.post(f"/webhooks/{webhook['id']}/rotate-secret", headers=REASON)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] not in ("", secret)
    assert rotated.json()["webhook"]["rotating"] is True

    deliveries = await client.get(f"/webhooks/{webhook['id']}/deliveries")
    assert deliveries.status_code == 200, deliveries.text
    assert deliveries.json()["items"] == []

    gone = await client.delete(f"/webhooks/{webhook['id']}", headers=REASON)
    assert gone.status_code == 204, gone.text
    assert (await client.get(f"/webhooks/{webhook['id']}")).status_code == 404


def test_cli_creates_lists_updates_rotates_and_deletes(stack, capsys) -> None:
    token = stack.token(("orch:read", "orch:operate"))
    code, out, _ = cli(
        stack,
        capsys,
        "webhooks",
        "create",
        "--url",
        "https://siem.example/cli",
        "--event",
        "job.dead",
        "--event",
        "run.finished",
        "-o",
        "json",
        token=token,
    )
    assert code == 0
    created = json.loads(out)
    webhook_id = created["webhook"]["id"]
    assert created["secret"].startswith("whsec_")
    code, out, _ = cli(stack, capsys, "webhooks", "list", "-o", "json", token=token)
    assert code == 0
    assert webhook_id in [w["id"] for w in json.loads(out)["items"]]
    code, out, _ = cli(
        stack,
        capsys,
        "webhooks",
        "update",
        webhook_id,
        "--enabled",
        "false",
        "-o",
        "json",
        token=token,
    )
    assert code == 0
    assert json.loads(out)["enabled"] is False
    code, out, _ = cli(
        stack, capsys, "webhooks", "rotate-secret", webhook_id, "--reason", "leaked", token=token
    )
    assert code == 0
    assert "shown once" in out
    code, out, _ = cli(stack, capsys, "webhooks", "deliveries", webhook_id, token=token)
    assert code == 0
    code, _, _ = cli(
        stack, capsys, "webhooks", "delete", webhook_id, "--reason", "gone", token=token
    )
    assert code == 0
    code, out, err = cli(stack, capsys, "webhooks", "show", webhook_id, token=token)
    assert code != 0
    assert "404" in out + err
