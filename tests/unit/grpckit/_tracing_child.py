"""Run by test_tracing.py in a process of its own (a tracer provider is installed once per
process) with the OTEL_* variables the test chose: sets tracing up as a service does,
serves the probe servicer, calls it under a span, cancels a stream, logs, and prints one
JSON line with the ids it saw.

    python -m tests.unit.grpckit._tracing_child
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from orchestrator_grpckit import GrpcService, configure_logging, tracing
from tests.unit.grpckit.conftest import PROBE, _mint, _probe_config, add_probe


async def _calls(port: int) -> dict[str, str]:
    tracer = trace.get_tracer("tests.tracing_child")
    token = _mint()
    seen: dict[str, str] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        echo = channel.unary_unary(f"/{PROBE}/Echo")
        chat = channel.stream_stream(f"/{PROBE}/Chat")
        with tracer.start_as_current_span("caller") as caller:
            ctx = caller.get_span_context()
            seen["trace_id"] = f"{ctx.trace_id:032x}"
            seen["caller_span_id"] = f"{ctx.span_id:016x}"
            logging.getLogger("tests.tracing_child").info("inside the caller span")
            headers: dict[str, str] = {}
            propagate.inject(headers)
            metadata = (("authorization", f"Bearer {token}"), *headers.items())
            await echo(b"", metadata=metadata)
            # A client span with a parent is kept; an orphan one is dropped by the sampler.
            with tracer.start_as_current_span("child-client", kind=SpanKind.CLIENT):
                pass
            # A stream the client abandons mid-way: no error may be logged for it.
            call = chat(metadata=metadata)
            await call.write(b"hello")
            assert await call.read() == b"HELLO"
            call.cancel()
        with tracer.start_as_current_span("orphan-client", kind=SpanKind.CLIENT):
            pass
    return seen


async def _main() -> None:
    configure_logging("INFO", service="probe", stream=sys.stdout)
    with tracing("probe", drivers=False) as handle:
        service = GrpcService(_probe_config(), [(add_probe, None, PROBE)])
        await service.start()
        try:
            seen = await _calls(service.port)
        finally:
            await service.stop()
        seen["installed"] = str(handle is not None)
    print("RESULT " + json.dumps(seen), flush=True)


if __name__ == "__main__":
    asyncio.run(_main())
