"""The producer's run builder: what it sends, and what it refuses before sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stella_orchestrator.producer import Retry, RunBuilder, job_spec


def test_then_and_after_become_depends_on_keys_in_the_order_added() -> None:
    run = RunBuilder("nightly", project="feeds", idempotency_key="n-1", labels={"team": "a"})
    fetch = run.job("fetch", "advisory.fetch", {"feed": "nvd"})
    fetch.then("parse", "advisory.parse").then("index", "advisory.index")
    run.job("notify", "advisory.notify").after("index", fetch).after("index")
    request = run.to_request()
    assert (request.name, request.project, request.idempotency_key) == ("nightly", "feeds", "n-1")
    assert dict(request.labels) == {"team": "a"}
    assert [(j.key, list(j.depends_on)) for j in request.jobs] == [
        ("fetch", []),
        ("parse", ["fetch"]),
        ("index", ["parse"]),
        ("notify", ["index", "fetch"]),
    ]
    assert dict(request.jobs[0].payload) == {"feed": "nvd"}
    assert run.keys == ["fetch", "parse", "index", "notify"]


def test_the_builder_refuses_what_the_server_would() -> None:
    run = RunBuilder("r")
    with pytest.raises(ValueError, match="has no job"):
        run.to_request()
    a = run.job("a", "t")
    with pytest.raises(ValueError, match="already in run"):
        run.job("a", "t")
    with pytest.raises(ValueError, match="no job 'b'"):
        a.after("b")
    with pytest.raises(ValueError, match="on itself"):
        a.after(a)
    with pytest.raises(ValueError, match="needs a key"):
        run.job("", "t")


def test_job_spec_carries_every_option() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    spec = job_spec(
        "advisory.ingest",
        {"n": 1},
        source_id="s1",
        priority=7,
        idempotency_key="k",
        retry=Retry(max_attempts=4, initial_backoff=timedelta(seconds=2), multiplier=3.0),
        not_before=start,
        window=(start, start + timedelta(hours=1)),
        depends_on_job_ids=("j1",),
    )
    assert (spec.source_id, spec.priority, spec.idempotency_key) == ("s1", 7, "k")
    assert spec.retry_policy.max_attempts == 4
    assert spec.retry_policy.initial_backoff.seconds == 2
    assert spec.retry_policy.backoff_multiplier == 3.0
    assert not spec.retry_policy.HasField("max_backoff")
    assert spec.not_before.ToDatetime(tzinfo=UTC) == start
    assert spec.event_time_window.end.ToDatetime(tzinfo=UTC) == start + timedelta(hours=1)
    assert list(spec.depends_on_job_ids) == ["j1"]


def test_the_blocking_client_mirrors_the_async_one() -> None:
    # _sync.py is written from _client.py's signatures; this catches a method added or
    # changed on one side only.
    import inspect

    from stella_orchestrator.producer import AsyncClient, Client

    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(fn)
            for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    async_methods, sync_methods = public(AsyncClient), public(Client)
    assert set(async_methods) == set(sync_methods)
    for name, signature in async_methods.items():
        assert list(signature.parameters) == list(sync_methods[name].parameters), name
        for param in signature.parameters.values():
            assert param.default == sync_methods[name].parameters[param.name].default, name
