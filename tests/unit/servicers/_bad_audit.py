"""Invalid requests for the audit service."""

from __future__ import annotations

from stella.orchestrator.v1 import audit_pb2 as A
from stella.orchestrator.v1 import common_pb2 as C
from tests.unit.servicers._bad import (
    ALMOST_UUID,
    FOREIGN_TOKEN,
    GARBAGE_TOKEN,
    NOT_UUID,
    Bad,
    ts,
    window,
)

AUDIT: dict[str, list[Bad]] = {
    "ExportBundle": [
        Bad("no-scope", A.ExportBundleRequest(), "scope"),
        Bad("run-id", A.ExportBundleRequest(run_id=NOT_UUID), "run_id"),
        Bad("empty-run-id", A.ExportBundleRequest(run_id=""), "run_id"),
        Bad("source-id", A.ExportBundleRequest(source_id=ALMOST_UUID), "source_id"),
        Bad(
            "open-range",
            A.ExportBundleRequest(time_range=C.TimeWindow(start=ts(1000))),
            "time_range",
        ),
        Bad(
            "reversed-range", A.ExportBundleRequest(time_range=window(2000, 1000)), "time_range.end"
        ),
    ],
    "ListAuditEntries": [
        Bad("negative-size", A.ListAuditEntriesRequest(page_size=-1), "page_size"),
        Bad("long-actor", A.ListAuditEntriesRequest(actor="a" * 257), "actor"),
        Bad("long-action", A.ListAuditEntriesRequest(action="a" * 257), "action"),
        Bad(
            "reversed-range",
            A.ListAuditEntriesRequest(time_range=window(2000, 2000)),
            "time_range.end",
        ),
        Bad("garbage-token", A.ListAuditEntriesRequest(page_token=GARBAGE_TOKEN), "page_token"),
        Bad("foreign-token", A.ListAuditEntriesRequest(page_token=FOREIGN_TOKEN), "page_token"),
    ],
}
