"""The dependency monitor's gauge follows its probes (one label per dependency name)."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from orchestrator_grpckit import Dependency, DependencyMonitor


async def test_gauge_follows_the_probes() -> None:
    # A name no other monitor of this test process uses: the gauge is per process.
    name = f"dep-{uuid.uuid4().hex[:8]}"
    answers = [True]

    async def probe() -> None:
        if not answers[-1]:
            raise ConnectionError("refused")

    monitor = DependencyMonitor([Dependency(name, probe)], interval_s=0.05, timeout_s=1.0)

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("orch_dependency_up", {"dependency": name})

    assert gauge() == 1
    answers.append(False)
    assert await monitor.probe_all() is False
    assert (gauge(), monitor.down()) == (0, (name,))
    answers.append(True)
    assert await monitor.probe_all() is True
    assert (gauge(), monitor.down()) == (1, ())
