"""``stella orchestrator sources|runs|jobs|quotas|schedules|throttle|backfill|watermarks|
deadletter|incidents|insights|events|audit|webhooks|overview|artifacts|whoami|tenants``: the
operator CLI over the gateway's REST API (the API the Console uses), one command per REST
operation.

Every command takes ``--api-url``, ``--token``, ``--tenant`` (or ``STELLA_ORCH_API_URL``,
``STELLA_ORCH_TOKEN``, ``STELLA_ORCH_TENANT``) and ``-o table|json|yaml``
(``STELLA_ORCH_OUTPUT``). Lists page with ``--page-size``/``--page-token`` or follow every
page with ``--all``. Control actions need ``--reason`` (audited) and accept ``--ticket``.
Exit codes: :mod:`stella_orchestrator._cli_base`; the reference is docs/cli.md.

A family per module (``_restcli_<family>.py``), each with ``register(commands)``; what they
share is in ``_cli_base`` (options, exit codes, lists, progress) and ``_cli_output`` (-o).
"""

from __future__ import annotations

from typing import Any

from stella_orchestrator import (
    _restcli_backfill,
    _restcli_events,
    _restcli_insights,
    _restcli_jobs,
    _restcli_limits,
    _restcli_ops,
    _restcli_runs,
    _restcli_sources,
    _restcli_webhooks,
)
from stella_orchestrator._cli_base import Commands

FAMILIES = (
    _restcli_sources,
    _restcli_runs,
    _restcli_jobs,
    _restcli_limits,
    _restcli_backfill,
    _restcli_ops,
    _restcli_events,
    _restcli_insights,
    _restcli_webhooks,
)


def register(commands: Any) -> None:
    """Adds the REST command families to ``stella orchestrator``."""
    builder = Commands(commands)
    for family in FAMILIES:
        family.register(builder)
