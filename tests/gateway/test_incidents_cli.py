"""Incidents over REST and the CLI on a running stack whose scheduler opens them from real
failures: list, one with its timeline, acknowledge (who and why, audited). The Console's
incident view: test_console_browser.py."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.gateway._helpers import cli, make_incident, wait_for_incident

ALL = ("orch:read", "orch:operate")

pytestmark = pytest.mark.integration


def _seed(stack) -> tuple[dict, dict]:
    async def run():
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(ALL)) as c:
            made = await make_incident(c, stack)
            return made, await wait_for_incident(c, made["job_type"])

    return asyncio.run(run())


def _cli(stack, capsys, *argv: str, subject: str = "tester") -> tuple[int, str, str]:
    return cli(stack, capsys, *argv, token=stack.token(ALL, subject=subject))


def test_rest_and_cli_list_show_and_acknowledge(stack, capsys) -> None:
    made, incident = _seed(stack)
    assert incident["state"] == "open"
    assert incident["error_class"] == "http_5xx"
    assert incident["failure_count"] == 5
    assert sorted(incident["sample_job_ids"]) == sorted(made["job_ids"])
    assert incident["source_id"] == made["source"]["id"]

    code, out, _ = _cli(stack, capsys, "incidents", "list", "--state", "open", "-o", "json")
    assert code == 0
    assert incident["id"] in [i["id"] for i in json.loads(out)["items"]]
    code, out, _ = _cli(stack, capsys, "incidents", "show", incident["id"])
    assert code == 0
    assert "incident.opened" in out
    assert incident["reason_code"] in out

    async def refused() -> httpx.Response:
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(ALL)) as c:
            return await c.post(f"/incidents/{incident['id']}/acknowledge")  # no reason

    assert asyncio.run(refused()).status_code == 400
    code, out, _ = _cli(
        stack,
        capsys,
        "incidents",
        "ack",
        incident["id"],
        "--reason",
        "looking into the upstream",
        "--ticket",
        "OPS-7",
        subject="carol",
    )
    assert code == 0, out
    assert "as carol" in out
    code, out, _ = _cli(stack, capsys, "incidents", "show", incident["id"], "-o", "json")
    shown = json.loads(out)
    assert shown["incident"]["acknowledged_by"] == "carol"
    assert shown["incident"]["acknowledge_reason"] == "looking into the upstream"
    assert [e["type"] for e in shown["timeline"]] == ["incident.opened", "incident.acknowledged"]
    # a second acknowledgement is refused (409: failed precondition), exit 1
    code, _, err = _cli(
        stack, capsys, "incidents", "ack", incident["id"], "--reason", "again", subject="dave"
    )
    assert code == 1
    assert "acknowledged by carol" in " ".join(err.split())  # rich wraps lines

    async def audited() -> list[dict]:
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(ALL)) as c:
            resp = await c.get("/audit", params={"action": "incident.acknowledge"})
            assert resp.status_code == 200, resp.text
            return resp.json()["items"]

    entries = [e for e in asyncio.run(audited()) if e["target"] == f"incidents/{incident['id']}"]
    assert [(e["actor"]["subject"], e["reason"], e["ticket"]) for e in entries] == [
        ("carol", "looking into the upstream", "OPS-7")
    ]
