"""Every RPC of every servicer the scheduler, leases, ratelimit and audit services register
refuses malformed requests with INVALID_ARGUMENT — several shapes per RPC — through the
services' real error and auth interceptors on a ``grpc_testing`` server (``_chain.py``):

* the status is INVALID_ARGUMENT and ``grpc-status-details-bin`` decodes (``rpc_status.
  from_call``, which also checks code and message agree) to an ``ErrorInfo`` of the
  orchestrator's domain and a ``BadRequest`` naming the offending field;
* no storage was touched: every store, ledger, limiter or signer is an ``Untouched`` that
  records and fails any call, so the refusal came before any storage call.

The table is checked against the service descriptors: an RPC added to a service without an
entry here fails :func:`test_every_rpc_has_invalid_requests`.
"""

from __future__ import annotations

import grpc
import pytest

from orchestrator_grpckit._status import ERROR_DOMAIN
from tests.unit.servicers._bad import Bad
from tests.unit.servicers._bad_audit import AUDIT
from tests.unit.servicers._bad_ratelimit import ENVOY, ENVOY_LISTENER, RATELIMIT
from tests.unit.servicers._bad_scheduler_controls import SCHEDULER_CONTROLS
from tests.unit.servicers._bad_scheduler_resources import SCHEDULER_RESOURCES
from tests.unit.servicers._bad_streams import EVENTS, LEASES
from tests.unit.servicers.conftest import SERVICES, Serve

SCHEDULER: dict[str, list[Bad]] = {**SCHEDULER_RESOURCES, **SCHEDULER_CONTROLS}

TABLES: dict[str, dict[str, list[Bad]]] = {
    "scheduler": SCHEDULER,
    "events": EVENTS,
    "leases": LEASES,
    "ratelimit": RATELIMIT,
    "envoy": ENVOY,
    "envoy-listener": ENVOY_LISTENER,
    "audit": AUDIT,
}

# RPCs with nothing a caller can get wrong, each with the reason.
NOTHING_TO_REFUSE: dict[str, dict[str, str]] = {
    "audit": {
        "GetPublicKey": "any key id is a lookup: an unknown one is NOT_FOUND (tested in "
        "test_error_mapping.py), never malformed",
        "VerifyBundle": "any bytes are a bundle to judge: a bad one is ok=false with problems",
        "GetChainHead": "takes no arguments",
    },
}

CASES = [
    pytest.param(service, method, bad, id=f"{service}.{method}.{bad.label}")
    for service, table in TABLES.items()
    for method, bads in table.items()
    for bad in bads
]


def test_every_rpc_has_invalid_requests() -> None:
    assert set(TABLES) == set(SERVICES)
    for name, service in SERVICES.items():
        listed = set(TABLES[name])
        exempt = set(NOTHING_TO_REFUSE.get(name, {}))
        assert not listed & exempt, name
        assert listed | exempt == set(service.descriptor.methods_by_name), name
        assert all(TABLES[name][m] for m in listed), f"{name}: an RPC with no invalid request"


def test_labels_are_unique_per_rpc() -> None:
    for table in TABLES.values():
        for method, bads in table.items():
            labels = [b.label for b in bads]
            assert len(labels) == len(set(labels)), method


@pytest.mark.parametrize(("service", "method", "bad"), CASES)
def test_malformed_request_is_invalid_argument_before_any_storage(
    serve: Serve, service: str, method: str, bad: Bad
) -> None:
    served = serve(service)
    # the token-less Envoy listener is called without a token, as Envoy calls it
    metadata = () if SERVICES[service].scopes is None else None
    outcome = served.chain.call(method, bad.request, metadata=metadata)

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (outcome.code, outcome.details)
    assert outcome.status is not None, "no grpc-status-details-bin trailer"
    assert outcome.error_info is not None
    assert outcome.error_info.reason == "INVALID_ARGUMENT"
    assert outcome.error_info.domain == ERROR_DOMAIN
    assert outcome.bad_request is not None, outcome.details
    assert bad.field in outcome.fields, (bad.field, outcome.fields, outcome.details)
    assert all(v.description for v in outcome.bad_request.field_violations)
    assert outcome.details  # a message a person can act on
    assert outcome.responses == []  # nothing was streamed before the refusal
    assert served.stores.touched == []
