"""Free ports for service processes (bench/ports.py): distinct within a process, free when
handed out, below the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

from bench.ports import free_port, free_ports


def test_ports_handed_out_are_distinct_free_and_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(200)] + free_ports(13) + free_ports(13)
    assert len(set(ports)) == len(ports)
    assert all(port < low for port in ports)
    block = free_ports(13)
    assert block == list(range(block[0], block[0] + 13))
    for port in block:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free
