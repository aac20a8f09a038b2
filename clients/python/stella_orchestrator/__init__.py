"""Stella Orchestrator Python SDK (distribution ``stella-orchestrator-sdk``).

* :mod:`stella_orchestrator.worker` — run job handlers against the leases service;
* :mod:`stella_orchestrator.producer` — submit and follow work (sources, runs, jobs, events,
  dead letters, quotas, schedules, backfills), sync and asyncio;
* :mod:`stella_orchestrator.webhooks` — verify the signature of a webhook delivery;
* :mod:`stella_orchestrator.errors` — the exceptions both share;
* the ``stella orchestrator …`` CLI (its REST commands need the ``[cli]`` extra); server-side
  commands (``migrate``, ``token``, ``audit``) are plugged in through the
  ``stella_orchestrator.commands`` entry point group by the server distribution.

Depends on the generated protobuf code (``stella.orchestrator.v1``), grpcio, protobuf and
googleapis-common-protos only; tracing and worker metrics use opentelemetry and
prometheus-client when installed (extras ``[tracing]``, ``[metrics]``).
"""
