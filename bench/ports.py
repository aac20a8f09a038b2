"""Free TCP ports for the services a benchmark or a test starts as processes.

Ports come from below the kernel's ephemeral range (``ip_local_port_range``): a port there
is never handed out as some client connection's source port, so a server started on it a
moment later (or restarted on it) finds it free. Several ports a test needs at once come
from one block, so they are distinct from each other — picking ports one at a time (bind
to port 0, close) can return the same port twice before anything binds it, and any other
process on the machine can take an ephemeral port in between.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 21000
# Every port this process has handed out: never handed out twice, even if the first
# caller has not bound it yet.
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_block(size: int) -> int:
    """A base port B with B..B+size-1 free now, below the kernel's ephemeral ports and
    above the ranges the usual stacks use; never one this process handed out before (a
    random block: other processes picking at the same moment rarely meet it)."""
    rng = random.Random()
    high = max(_ephemeral_low() - size, LOWEST + 10)
    for _ in range(500):
        base = rng.randrange(LOWEST, high, 10)
        if _handed_out.intersection(range(base, base + size)):
            continue
        taken: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                taken.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in taken:
                s.close()
        _handed_out.update(range(base, base + size))
        return base
    raise RuntimeError("no free block of ports")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (one block)."""
    base = free_block(count)
    return list(range(base, base + count))


def free_port() -> int:
    """One free port."""
    return free_block(1)
