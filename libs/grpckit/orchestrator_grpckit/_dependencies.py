"""Health that tells the truth about what a service needs: its required dependencies.

A service whose database is down cannot do anything useful, yet its process stays up (the
pool reconnects by itself once the database is back). Reporting SERVING meanwhile makes load
balancers and Kubernetes keep sending it traffic that can only fail; exiting would turn a
short database restart into a crash loop of every replica. So the policy is:

* each service names the dependencies it cannot serve without (:class:`Dependency`: a name
  and a probe that raises when the dependency does not answer);
* :class:`DependencyMonitor` probes them every ``interval_s`` (each probe bounded by
  ``timeout_s``); while any is down, the overall health (``""``) and every application
  service are NOT_SERVING, and they turn SERVING again on the first probe that succeeds;
* each dependency's state is the gauge ``orch_dependency_up{dependency}`` and a change is
  logged once (not every probe).

The process never exits because of a dependency: readiness follows it, liveness does not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Gauge

__all__ = ["DEPENDENCY_UP", "Dependency", "DependencyMonitor"]

DEPENDENCY_UP = Gauge(
    "orch_dependency_up",
    "1 while the named required dependency answers its health probe, 0 while it does not.",
    ["dependency"],
)

_log = logging.getLogger("orchestrator_grpckit.dependencies")


@dataclass(frozen=True, slots=True)
class Dependency:
    """A dependency the service cannot serve without.

    Attributes:
        name: What operators call it (``postgresql``, ``redis``); the gauge's label.
        probe: Returns when the dependency answers; raises (anything) when it does not.
    """

    name: str
    probe: Callable[[], Awaitable[object]]


class DependencyMonitor:
    """Probes required dependencies and reports whether all of them answer.

    Args:
        dependencies: The required dependencies (names must be unique).
        interval_s: Time between two probe rounds.
        timeout_s: Longest a probe may take before it counts as down.
    """

    def __init__(
        self,
        dependencies: Sequence[Dependency],
        *,
        interval_s: float = 2.0,
        timeout_s: float = 2.0,
    ) -> None:
        names = [d.name for d in dependencies]
        if len(set(names)) != len(names):
            raise ValueError(f"dependency names must be unique, got {names}")
        self.dependencies = tuple(dependencies)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._up = {name: True for name in names}
        for name in names:
            DEPENDENCY_UP.labels(name).set(1)

    @property
    def all_up(self) -> bool:
        """Whether every dependency answered its last probe."""
        return all(self._up.values())

    def down(self) -> tuple[str, ...]:
        """The dependencies that did not answer their last probe."""
        return tuple(name for name, up in self._up.items() if not up)

    async def probe_all(self) -> bool:
        """Probe every dependency once (concurrently); returns :attr:`all_up`."""
        results = await asyncio.gather(*(self._probe(d) for d in self.dependencies))
        for dependency, (up, error) in zip(self.dependencies, results, strict=True):
            self._record(dependency.name, up, error)
        return self.all_up

    async def _probe(self, dependency: Dependency) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(self.timeout_s):
                await dependency.probe()
        except TimeoutError:
            return False, f"no answer within {self.timeout_s:g} s"
        except Exception as exc:  # any failure means "down"; the reason goes to the log
            return False, f"{type(exc).__name__}: {exc}"
        return True, ""

    def _record(self, name: str, up: bool, error: str) -> None:
        if up != self._up[name]:
            if up:
                _log.info("dependency %s answers again", name, extra={"dependency": name})
            else:
                _log.error(
                    "dependency %s does not answer (%s); reporting NOT_SERVING until it does",
                    name,
                    error,
                    extra={"dependency": name},
                )
        self._up[name] = up
        DEPENDENCY_UP.labels(name).set(1 if up else 0)

    async def watch(self, on_change: Callable[[bool], Awaitable[None]]) -> None:
        """Probe forever; ``on_change(all_up)`` after every round whose verdict changed."""
        previous = self.all_up
        while True:
            await asyncio.sleep(self.interval_s)
            now = await self.probe_all()
            if now != previous:
                await on_change(now)
                previous = now
