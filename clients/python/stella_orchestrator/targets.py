"""Multi-address gRPC targets: one channel that spreads its calls over several replicas.

gRPC balances on the client: a channel resolves its target to addresses, keeps a connection
to each, and its ``round_robin`` policy sends every new call (a worker's Work stream, a
gateway's unary call) to the next ready one, skipping replicas that are down. This module
turns the targets we accept into the names gRPC resolves, and switches the policy on:

* ``host:port``: one address (a name is resolved by DNS, every address it has is used).
* ``host1:port1,host2:port2,...``: a fixed list, e.g. ``127.0.0.1:50052,127.0.0.1:50062``
  (``make up REPLICAS=2``). IP addresses become gRPC's own ``ipv4:``/``ipv6:`` list; host
  names are resolved once when the channel opens.
* any gRPC name URI, passed through: ``dns:///leases.orch.svc:50052`` (a name that resolves
  to many addresses, re-resolved when a connection fails: a Kubernetes headless Service),
  ``ipv4:10.0.0.1:50052,10.0.0.2:50052``, ``unix:///run/leases.sock``.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["GRPC_SCHEMES", "ROUND_ROBIN_OPTION", "channel_options", "channel_target"]

GRPC_SCHEMES: Final = frozenset(
    {"dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock", "xds", "google-c2p"}
)
"""Target prefixes gRPC resolves itself (``scheme:``); such targets are passed through."""

ROUND_ROBIN_OPTION: Final = (
    "grpc.service_config",
    json.dumps({"loadBalancingConfig": [{"round_robin": {}}]}),
)
"""The channel option that makes gRPC spread calls over every resolved address (its default,
``pick_first``, would send every call to the first address that answers)."""


def channel_target(target: str) -> str:
    """The gRPC target for ``target`` (see the module docstring for the accepted forms).

    Args:
        target: ``host:port``, a comma-separated list of them, or a gRPC name URI.

    Returns:
        A target ``grpc.aio.insecure_channel`` / ``secure_channel`` accept.

    Raises:
        ValueError: Empty, an entry without a port, a name that does not resolve, or a list
            whose entries have no address family in common.
    """
    target = target.strip()
    if not target:
        raise ValueError("empty gRPC target")
    if target.split(":", 1)[0].lower() in GRPC_SCHEMES or "," not in target:
        return target
    per_entry = [_addresses(entry.strip()) for entry in target.split(",")]
    # gRPC's address lists are of one family: IPv4 when every entry has one, else IPv6.
    for family, prefix in ((socket.AF_INET, "ipv4:"), (socket.AF_INET6, "ipv6:")):
        if all(any(f == family for f, _ in entry) for entry in per_entry):
            chosen = [a for entry in per_entry for f, a in entry if f == family]
            return prefix + ",".join(dict.fromkeys(chosen))
    raise ValueError(f"gRPC target {target!r} mixes IPv4-only and IPv6-only entries")


def channel_options(options: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """``options`` plus :data:`ROUND_ROBIN_OPTION`, unless they choose a policy themselves."""
    chosen = {name for name, _ in options}
    if chosen & {"grpc.service_config", "grpc.lb_policy_name"}:
        return list(options)
    return [*options, ROUND_ROBIN_OPTION]


def _addresses(entry: str) -> list[tuple[socket.AddressFamily, str]]:
    host, sep, port = entry.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"gRPC target entry {entry!r} is not host:port")
    host = host.removeprefix("[").removesuffix("]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        return [(family, _join(family, str(ip), port))]
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"gRPC target entry {entry!r}: {exc.strerror}") from None
    return [
        (family, _join(family, str(sockaddr[0]), port))
        for family, _type, _proto, _name, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    ]


def _join(family: socket.AddressFamily, host: str, port: str) -> str:
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
