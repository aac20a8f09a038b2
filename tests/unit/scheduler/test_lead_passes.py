"""orchestrator_pg.lead_passes: the one loop of the leader-only passes (incidents, webhooks)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from orchestrator_pg import LeaderLoop, lead_passes


class FakeLeadership:
    """Leads from the second check on, loses it at the fifth."""

    loop = LeaderLoop.INCIDENTS

    def __init__(self) -> None:
        self.checks = 0

    async def __aenter__(self) -> FakeLeadership:
        return self

    async def __aexit__(self, *_: Any) -> None:
        return None

    async def ensure(self) -> bool:
        self.checks += 1
        return self.checks not in (1, 5)


async def test_passes_run_while_leading_again_when_busy_and_back_off_on_errors() -> None:
    leadership = FakeLeadership()
    log: list[str] = []
    outcomes: list[Any] = [True, RuntimeError("database went away"), False, False]
    done = asyncio.Event()

    async def run_pass() -> bool:
        log.append("pass")
        if not outcomes:  # the last pass: stay in it until the test cancels the loop
            done.set()
            await asyncio.Event().wait()
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return bool(outcome)

    async def wait() -> None:
        log.append("wait")

    loop = asyncio.create_task(
        lead_passes(
            leadership,  # type: ignore[arg-type]
            run_pass,
            wait,
            rng=random.Random(1),
            on_not_leading=lambda: log.append("withdraw"),
            retry_s=0.01,
            error_backoff_s=0.01,
        )
    )
    await asyncio.wait_for(done.wait(), 10)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    # not leading at first; a busy pass runs again at once; a failed pass withdraws and
    # backs off; an idle pass waits; leadership lost at the fifth check withdraws; and the
    # loop withdraws when it ends.
    assert log == [
        "withdraw",
        "pass",
        "pass",
        "withdraw",
        "pass",
        "wait",
        "withdraw",
        "pass",
        "wait",
        "pass",
        "withdraw",
    ], log
