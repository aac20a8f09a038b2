"""A leader-only snapshot that is slow to take (a grouped count over a million unfinished jobs
takes ~1.1 s) waits longer before the next one: snapshots keep the database busy for at most
``MAX_DUTY`` of the time, whatever the configured interval."""

from __future__ import annotations

import asyncio
import random

import pytest

from orchestrator_pg import LeaderLoop, LeaderSnapshot
from orchestrator_pg._snapshots import MAX_DUTY, pause_after
from tests.conftest import eventually

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("interval_s", "took_s", "pause_s"),
    [
        (15.0, 0.01, 15.0),  # a quick snapshot keeps the interval
        (15.0, 1.1, 1.1 * (1 / MAX_DUTY - 1)),  # a slow one stretches the pause
        (0.5, 0.0, 0.5),
    ],
)
def test_the_pause_bounds_the_share_of_time_spent_snapshotting(
    interval_s: float, took_s: float, pause_s: float
) -> None:
    pause = pause_after(interval_s, took_s)
    assert pause == pytest.approx(pause_s)
    assert took_s / (took_s + pause) <= MAX_DUTY + 1e-9 or pause == interval_s


async def test_a_slow_snapshot_is_taken_less_often(database_url: str) -> None:
    take_s = random.uniform(0.15, 0.3)  # the slow count, varied
    taken: list[float] = []

    async def slow_take() -> int:
        await asyncio.sleep(take_s)
        taken.append(asyncio.get_running_loop().time())
        return len(taken)

    # An interval far below the snapshot's duration: without the bound it would snapshot
    # back to back (~95 % of the time busy); with it the second waits 19 x take_s.
    loop = LeaderSnapshot(
        database_url,
        LeaderLoop.QUEUE_METRICS,
        slow_take,
        interval_s=0.01,
        lock_key=random.randrange(1 << 40, 1 << 41),
    )
    task = asyncio.create_task(loop.run())
    try:

        async def published() -> bool:
            return loop.latest is not None

        await eventually(published, "the first snapshot")
        first = taken[0]
        # Watch for as long as the bound's pause minus a margin: no second snapshot yet.
        await asyncio.sleep(take_s * (1 / MAX_DUTY - 1) * 0.8)
        assert [t for t in taken if t > first] == []
        assert loop.latest is not None  # still published between snapshots, not withdrawn
        assert loop.latest[0] == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
