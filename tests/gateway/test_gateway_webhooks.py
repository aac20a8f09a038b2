"""``/webhooks`` over real HTTP against a real scheduler (WebhookService) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.gateway._helpers import REASON

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
