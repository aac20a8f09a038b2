"""A simulated upstream: NVD, OSV, GHSA and a vendor CSAF server behind one local HTTP port.

Each host allows ``rate`` requests per second (a token bucket, burst = rate); beyond that it
answers 429 with ``Retry-After``. A small share of requests get a transient 503. Some
windows are broken for good — the server answers 500 every time (the worker retries, then
the job is dead-lettered with ``http_5xx``) or returns malformed JSON (dead-lettered at once
with ``parse_error``). Paths: ``/{host}/advisories?window=N`` and ``/{host}/vex?window=N``.

Deterministic per (host, window) so a demo is repeatable; the transient 503s use a seeded
random generator.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Real per-host limits, below what the demo's workers could send (2 processes x 24 slots), and
# never told to the orchestrator: it starts from the default configuration and learns them
# (docs/ratelimits.md). The final table compares what each feed achieved with these.
DEFAULT_RATES = {
    "services.nvd.nist.gov": 5.0,
    "api.osv.dev": 20.0,
    "api.github.com": 10.0,
    "csaf.vendor.example": 2.0,
}
TRANSIENT_503_SHARE = 0.02
BROKEN_SHARE = 0.03  # of (host, window) pairs: always 500
MALFORMED_SHARE = 0.02  # of (host, window) pairs: invalid JSON


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class _Bucket:
    rate: float
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """0 when a request may go now, else seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Upstream:
    """The simulated feeds; ``start()`` serves them on 127.0.0.1:``port`` in a thread."""

    def __init__(self, port: int = 0, rates: dict[str, float] | None = None, seed: int = 7):
        self.rates = dict(rates or DEFAULT_RATES)
        self._buckets = {h: _Bucket(r, r) for h, r in self.rates.items()}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.stats: dict[str, dict[int, int]] = {h: {} for h in self.rates}
        # Set by repair(): the broken and malformed windows are fixed (the vendor re-published
        # them), so a resumed run's re-runs succeed.
        self.repaired = False
        # Monotonic times of the first and last 200 answer per host (the achieved rate).
        self.ok_span: dict[str, tuple[float, float]] = {}
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, body, headers = upstream.answer(self.path)
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> Upstream:
        self._thread.start()
        return self

    def repair(self) -> None:
        """Fix every broken and malformed window from now on."""
        self.repaired = True

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) != 2 or segments[0] not in self.rates:
            return 404, b'{"error":"unknown feed"}', {"Content-Type": "application/json"}
        host, kind = segments
        window = parse_qs(parts.query).get("window", ["0"])[0]
        with self._lock:
            wait = self._buckets[host].take()
            transient = self._rng.random() < TRANSIENT_503_SHARE
        code, body, headers = self._respond(host, kind, window, wait, transient)
        with self._lock:
            self.stats[host][code] = self.stats[host].get(code, 0) + 1
            if code == 200:
                now = time.monotonic()
                first = self.ok_span.get(host, (now, now))[0]
                self.ok_span[host] = (first, now)
        return code, body, headers

    def achieved_per_s(self, host: str) -> float:
        """Successful answers per second between the host's first and last one."""
        first, last = self.ok_span.get(host, (0.0, 0.0))
        ok = self.stats[host].get(200, 0)
        return (ok - 1) / (last - first) if ok > 1 and last > first else 0.0

    def share_429(self, host: str) -> float:
        """429 answers among all the host's answers."""
        calls = sum(self.stats[host].values())
        return self.stats[host].get(429, 0) / calls if calls else 0.0

    def _respond(
        self, host: str, kind: str, window: str, wait: float, transient: bool
    ) -> tuple[int, bytes, dict[str, str]]:
        json_type = {"Content-Type": "application/json"}
        if wait > 0:
            retry_after = max(1, round(wait + 0.5))
            return 429, b'{"error":"rate limited"}', {**json_type, "Retry-After": str(retry_after)}
        if not self.repaired and _fraction(host, kind, window, "broken") < BROKEN_SHARE:
            return 500, b'{"error":"internal error"}', json_type
        if transient:
            return 503, b'{"error":"try again"}', {**json_type, "Retry-After": "1"}
        if not self.repaired and _fraction(host, kind, window, "malformed") < MALFORMED_SHARE:
            return 200, b'{"items": [ {"id": "CVE-', json_type
        count = 5 + int(_fraction(host, kind, window, "n") * 20)
        items = [{"id": f"{kind}-{host}-{window}-{i}", "severity": "high"} for i in range(count)]
        return 200, json.dumps({"window": window, "items": items}).encode(), json_type
