"""Property-based contract test: schemathesis generates requests from the gateway's own
OpenAPI document and checks every answer against it (no 5xx, status codes, content types,
headers and bodies as documented), over real HTTP against the real services.

Excluded: the SSE stream (an endless response).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from orchestrator_gateway import GatewaySettings, create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

schema = schemathesis.openapi.from_dict(create_app(GatewaySettings()).openapi()).exclude(
    path="/api/v1/orchestrator/events/stream"
)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
ALL_SCOPES = ("orch:read", "orch:operate", "orch:quota", "orch:backfill")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_openapi_document(case, stack) -> None:
    headers = {"Authorization": f"Bearer {stack.token(ALL_SCOPES)}"}
    if case.headers and "Authorization" in case.headers:
        case.headers.pop("Authorization")
    response = case.call(base_url=stack.base_url, headers=headers, timeout=30)
    case.validate_response(response, checks=CHECKS)
