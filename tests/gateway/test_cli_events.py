"""``stella orchestrator events list|tail`` against the real stack: the history, the live
SSE feed followed as it happens, and a follower whose connection is cut mid-stream (through a
TCP proxy that drops it, as a gateway restart or a network failure would) resuming from its
last seq with nothing lost or repeated."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest

from tests.gateway._helpers import CLI_SCOPES, cli, create_run, create_source, seed, unique

pytestmark = pytest.mark.integration


class CuttingProxy:
    """A TCP proxy to the gateway whose open connections the test can cut; it records what
    clients sent (the requests, with their headers)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sent: list[bytes] = []
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open += [client, upstream]
            for src, dst, record in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(src, dst, record), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if record:
                    self.sent.append(data)
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def close(self) -> None:
        self.server.close()
        self.cut()


class Follower:
    """``events tail --follow`` of one source's events as a subprocess (JSON lines); a thread
    reads its stdout line by line as it comes."""

    def __init__(self, stack, api_url: str, source_id: str, limit: int) -> None:
        argv = [
            sys.executable,
            "-m",
            "stella_orchestrator",
            "orchestrator",
            "events",
            "tail",
            "--follow",
            "--source",
            source_id,
            "--limit",
            str(limit),
            "-o",
            "json",
            "--api-url",
            api_url,
            "--token",
            stack.token(CLI_SCOPES),
        ]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def wait_first(self, stack, source_id: str, job_type: str) -> dict:
        """Creates runs of the source until an event reaches the follower (it starts from
        the head: what happened before it connected is not its); returns that event."""
        for _ in range(120):
            seed(stack, lambda c: create_run(c, source_id, job_type))
            self._reader.join(0.5)
            if self.events or not self._reader.is_alive():
                break
        assert self.events, "no event reached the follower"
        return self.events[0]

    def finish(self) -> tuple[int, str]:
        """Waits for the follower to stop by itself (its --limit); exit code and stderr."""
        code = self.proc.wait(timeout=90)
        self._reader.join(30)
        return code, self.proc.stderr.read()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def test_events_list_and_tail_replay_the_same_events(stack, capsys) -> None:
    async def make(c):
        source = await create_source(c)
        return await create_run(c, source["id"], unique("jt"))

    run = seed(stack, make)["run"]
    code, out, _ = cli(stack, capsys, "events", "list", "--run", run["id"], "-o", "json")
    listed = json.loads(out)["items"]
    assert len(listed) >= 4  # run.created and three job.created
    code, out, err = cli(
        stack, capsys, "events", "tail", "--run", run["id"], "--after-seq", "0", "-o", "json"
    )
    assert code == 0, err
    tailed = [json.loads(line) for line in out.splitlines()]
    assert [e["seq"] for e in tailed] == [e["seq"] for e in listed]  # caught up, then stopped
    assert f"resume with --after-seq {listed[-1]['seq']}" in err
    code, out, err = cli(stack, capsys, "events", "tail", "--run", run["id"], "--after-seq", "0")
    assert code == 0
    assert err.startswith("SEQ")  # the header on stderr, rows on stdout
    rows = [line.split() for line in out.splitlines()]
    assert [(int(r[0]), r[2]) for r in rows] == [(e["seq"], e["type"]) for e in listed]


def test_events_tail_follows_the_live_feed(stack) -> None:
    source = seed(stack, create_source)
    job_type = unique("jt")
    follower = Follower(stack, stack.base_url, source["id"], limit=4)
    try:
        follower.wait_first(stack, source["id"], job_type)
        seed(stack, lambda c: create_run(c, source["id"], job_type))  # three job events more
        code, err = follower.finish()
    finally:
        follower.close()
    assert code == 0, err
    assert len(follower.events) == 4
    assert all(e["source_id"] == source["id"] for e in follower.events)
    seqs = [e["seq"] for e in follower.events]
    assert seqs == sorted(set(seqs))  # in order, each once


def test_events_tail_resumes_after_its_connection_is_cut(stack, capsys) -> None:
    source = seed(stack, create_source)
    job_type = unique("jt")
    proxy = CuttingProxy(urlsplit(stack.base_url).port)
    follower = Follower(stack, f"http://127.0.0.1:{proxy.port}", source["id"], limit=6)
    try:
        first = follower.wait_first(stack, source["id"], job_type)
        proxy.cut()
        # Created while the follower is cut off: it must get these on its reconnect.
        seed(stack, lambda c: create_run(c, source["id"], job_type))
        code, err = follower.finish()
    finally:
        follower.close()
        proxy.close()
    assert code == 0, err
    assert "resuming after seq" in err
    # Exactly what the history holds for the source from the first seq on: no gap, no repeat.
    _, out, _ = cli(
        stack,
        capsys,
        "events",
        "list",
        "--source",
        source["id"],
        "--after-seq",
        str(first["seq"] - 1),
        "--page-size",
        "6",
        "-o",
        "json",
    )
    assert [e["seq"] for e in follower.events] == [e["seq"] for e in json.loads(out)["items"]]
    resumed = [r for r in proxy.sent if b"last-event-id: " in r.lower()]
    assert resumed, "the reconnect did not send Last-Event-ID"
