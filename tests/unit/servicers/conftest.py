"""The servicers of the scheduler, leases, ratelimit and audit services (every servicer their
``_app.py`` registers), each built on :class:`Untouched` storage and served by
:class:`~tests.unit.servicers._chain.Chain` behind the service's real interceptors and
method scopes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from envoy.service.ratelimit.v3 import rls_pb2
from google.protobuf import descriptor as pb_descriptor

from orchestrator_audit._servicer import METHOD_SCOPES as AUDIT_SCOPES
from orchestrator_audit._servicer import AuditServicer
from orchestrator_leases._servicer import METHOD_SCOPES as LEASE_SCOPES
from orchestrator_leases._servicer import LeaseServicer
from orchestrator_leases._settings import LeaseSettings
from orchestrator_ratelimit._app import ALL_METHOD_SCOPES as RATELIMIT_SCOPES
from orchestrator_ratelimit._envoy import EnvoyRateLimitServicer
from orchestrator_ratelimit._servicer import RateLimitServicer
from orchestrator_ratelimit._settings import RatelimitSettings
from orchestrator_scheduler._events import EVENTS_METHOD_SCOPES, EventStreamServicer
from orchestrator_scheduler._servicer import METHOD_SCOPES as SCHEDULER_SCOPES
from orchestrator_scheduler._servicer import SchedulerServicer
from stella.orchestrator.v1 import audit_pb2, events_pb2, leases_pb2, ratelimit_pb2, scheduler_pb2
from tests.unit.servicers._chain import Chain
from tests.unit.servicers._untouched import Untouched


@dataclass(frozen=True)
class Service:
    """One registered servicer: how to build it on fake storage, and how it is served."""

    descriptor: pb_descriptor.ServiceDescriptor
    build: Callable[[Untouched], Any]
    # The method scopes its server enforces; None: served with no interceptor at all
    # (the token-less Envoy listener, which maps its own errors).
    scopes: Mapping[str, str] | None


def _scheduler(stores: Untouched) -> Any:
    # Every named store (`stores.quotas`, `stores.runs`, ...) is an attribute of the same fake.
    return SchedulerServicer(stores, bucket_store=stores.buckets)


SERVICES: dict[str, Service] = {
    "scheduler": Service(
        scheduler_pb2.DESCRIPTOR.services_by_name["SchedulerService"],
        _scheduler,
        SCHEDULER_SCOPES,
    ),
    "events": Service(
        events_pb2.DESCRIPTOR.services_by_name["EventStreamService"],
        lambda s: EventStreamServicer(s.events, s.horizon, keepalive_s=1),
        EVENTS_METHOD_SCOPES,
    ),
    "leases": Service(
        leases_pb2.DESCRIPTOR.services_by_name["LeaseService"],
        lambda s: LeaseServicer(s.ledger, s.completer, s.dispatcher, s.listener, LeaseSettings()),
        LEASE_SCOPES,
    ),
    "ratelimit": Service(
        ratelimit_pb2.DESCRIPTOR.services_by_name["RateLimitService"],
        lambda s: RateLimitServicer(s.limiter, s.repo, RatelimitSettings()),
        RATELIMIT_SCOPES,
    ),
    "envoy": Service(
        rls_pb2.DESCRIPTOR.services_by_name["RateLimitService"],
        lambda s: EnvoyRateLimitServicer(s.limiter, authenticated=True),
        RATELIMIT_SCOPES,
    ),
    "envoy-listener": Service(
        rls_pb2.DESCRIPTOR.services_by_name["RateLimitService"],
        lambda s: EnvoyRateLimitServicer(s.limiter, authenticated=False),
        None,
    ),
    "audit": Service(
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
        lambda s: AuditServicer(s.audit, s.signer),
        AUDIT_SCOPES,
    ),
}


@dataclass
class Served:
    """A served servicer and the storage fake it was built on."""

    chain: Chain
    stores: Untouched


Serve = Callable[..., Served]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(name, raises=None, build=None)``: the named servicer on a ``grpc_testing``
    server; its storage records every call and raises ``raises`` (an AssertionError when
    None). ``build`` replaces the servicer's constructor (same storage fake)."""
    opened: list[Chain] = []

    def make(
        name: str,
        raises: BaseException | None = None,
        build: Callable[[Untouched], Any] | None = None,
    ) -> Served:
        service = SERVICES[name]
        stores = Untouched("stores")
        servicer = (build or service.build)(stores)
        stores.arm(raises)
        chain = Chain(servicer, service.descriptor, service.scopes)
        opened.append(chain)
        return Served(chain, stores)

    yield make
    for chain in opened:
        chain.close()
