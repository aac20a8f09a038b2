"""``stella orchestrator kit export|import|verify``: configuration kits (``_kit.py``);
``kit seal|verify-install``: offline install kits (``_offlinekit.py``, ``make offline-kit``).

``export`` and ``import`` talk to the services over gRPC with a bearer token (``--token`` or
``STELLA_ORCH_TOKEN``): ``--scheduler`` (sources, schedules, quotas, webhooks),
``--ratelimit`` (buckets, blackouts) and, for ``--audit-from/--audit-to``, ``--audit``
(its signed bundle of that range goes into the kit as it is). ``verify`` reads the file and
a public key only. Exit codes: 0 ok, 1 a check or call failed, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc

from stella.orchestrator.v1 import audit_pb2, audit_pb2_grpc, common_pb2
from stella_orchestrator import _kitsync as sync
from stella_orchestrator import _offlinekit as offline
from stella_orchestrator._kit import KitVerdict, build_kit, verify_kit
from stella_orchestrator.signing import KeyFormatError, Signer, load_public_key
from stella_orchestrator.targets import channel_options, channel_target

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
BRIEF_CHARS = 60  # a changed value in the plan is cut to this many characters


class UsageError(Exception):
    """A file, key or argument the command cannot use (exit 2)."""


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _public_key(path: str) -> Any:
    try:
        return load_public_key(_read(path))
    except KeyFormatError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _signer(path: str) -> Signer:
    try:
        return Signer.from_pem(_read(path))
    except KeyFormatError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)") from None
    if value.tzinfo is None:
        raise UsageError(f"{text!r} has no time zone (add Z for UTC)")
    return value


@asynccontextmanager
async def _services(args: argparse.Namespace) -> AsyncIterator[sync.Services]:
    if not args.token:
        raise UsageError("no token: pass --token or set STELLA_ORCH_TOKEN")
    options = channel_options()
    async with (
        grpc.aio.insecure_channel(channel_target(args.scheduler), options=options) as sched,
        grpc.aio.insecure_channel(channel_target(args.ratelimit), options=options) as rl,
    ):
        yield sync.Services(sched, rl, args.token)


async def _audit_bundle(args: argparse.Namespace) -> tuple[bytes | None, dict[str, str] | None]:
    if not (args.audit_from or args.audit_to):
        return None, None
    if not (args.audit_from and args.audit_to and args.audit):
        raise UsageError("--audit-from, --audit-to and --audit go together")
    start, end = _time(args.audit_from), _time(args.audit_to)
    window = common_pb2.TimeWindow()
    window.start.FromDatetime(start)
    window.end.FromDatetime(end)
    chunks: list[bytes] = []
    async with grpc.aio.insecure_channel(channel_target(args.audit)) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        request = audit_pb2.ExportBundleRequest(time_range=window)
        metadata = (("authorization", f"Bearer {args.token}"),)
        async for response in stub.ExportBundle(request, metadata=metadata):
            chunks.append(response.chunk)
    range_doc = {"start": window.start.ToJsonString(), "end": window.end.ToJsonString()}
    return b"".join(chunks), range_doc


async def _export(args: argparse.Namespace) -> int:
    signer = _signer(args.signing_key)
    async with _services(args) as svc:
        config = sync.documents(await sync.read_config(svc))
    bundle, audit_range = await _audit_bundle(args)
    kit = build_kit(args.tenant, config, signer, audit_bundle=bundle, audit_range=audit_range)
    try:
        await asyncio.to_thread(Path(args.out).write_bytes, kit.archive)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    counts = ", ".join(f"{e['path']} {e['count']}" for e in kit.manifest["files"])
    print(f"wrote {args.out} (sha256 {kit.sha256}; {counts})")
    return EXIT_OK


def _report_problems(verdict: KitVerdict, path: str) -> int:
    for problem in verdict.problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    print(f"{path}: refused, {len(verdict.problems)} problem(s)", file=sys.stderr)
    return EXIT_FAILED


def _checked(args: argparse.Namespace) -> KitVerdict:
    return verify_kit(_read(args.kit), [_public_key(args.key)])


def _verify(args: argparse.Namespace) -> int:
    verdict = _checked(args)
    if not verdict.ok:
        return _report_problems(verdict, args.kit)
    counts = ", ".join(f"{kind} {len(records)}" for kind, records in verdict.config.items())
    print(f"OK: {args.kit}: signature, file hashes and schema verified ({counts})")
    return EXIT_OK


def _seal(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    manifest = offline.seal(root, args.version, _signer(args.signing_key))
    print(f"sealed {root}: {len(manifest['files'])} files, key {manifest['key_id']}")
    return EXIT_OK


def _verify_install(args: argparse.Namespace) -> int:
    problems = offline.verify_install_kit(Path(args.dir), [_public_key(args.key)])
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if problems:
        print(f"{args.dir}: refused, {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_FAILED
    print(f"OK: {args.dir}: signature and every file's sha256 verified")
    return EXIT_OK


def _show(change: sync.Change) -> str:
    if change.action == "extra":
        return f"  = {change.kind} {change.key}: only in the tenant (left alone)"
    if change.action == "create":
        return f"  + {change.kind} {change.key}: create"
    have = change.have.doc if change.have else {}
    want = change.want or {}
    detail = "; ".join(
        f"{name}: {_brief(have.get(name))} -> {_brief(want.get(name))}" for name in change.fields
    )
    return f"  ~ {change.kind} {change.key}: update ({detail})"


def _brief(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= BRIEF_CHARS else text[: BRIEF_CHARS - 3] + "..."


async def _import(args: argparse.Namespace) -> int:
    verdict = _checked(args)
    if not verdict.ok:
        return _report_problems(verdict, args.kit)
    async with _services(args) as svc:
        changes = sync.plan(verdict.config, await sync.read_config(svc))
        pending = [c for c in changes if c.action != "extra"]
        for change in changes:
            print(_show(change))
        if args.dry_run:
            print(f"dry run: {len(pending)} change(s) would be made, none made")
            return EXIT_OK
        made = await sync.apply(svc, changes, print)
    print(f"applied {made} change(s)" if made else "nothing to change")
    return EXIT_OK


def _run(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(
                asyncio.run(handler(args))
                if asyncio.iscoroutinefunction(handler)
                else handler(args)
            )
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (grpc.aio.AioRpcError, LookupError) as exc:
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else "error"
            print(f"error: {code}: {detail}", file=sys.stderr)
            return EXIT_FAILED

    return run


def _connection(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--scheduler",
        default=env("STELLA_ORCH_SCHEDULER", "127.0.0.1:50051"),
        help="scheduler gRPC target (env STELLA_ORCH_SCHEDULER)",
    )
    parser.add_argument(
        "--ratelimit",
        default=env("STELLA_ORCH_RATELIMIT", "127.0.0.1:50053"),
        help="ratelimit gRPC target (env STELLA_ORCH_RATELIMIT)",
    )
    parser.add_argument(
        "--token", default=env("STELLA_ORCH_TOKEN", ""), help="bearer token (env STELLA_ORCH_TOKEN)"
    )


def register(commands: Any) -> None:
    """Adds ``kit export|import|verify`` to ``stella orchestrator``."""
    kit = commands.add_parser(
        "kit", help="configuration kits for air-gapped sites", description=__doc__
    )
    sub = kit.add_subparsers(dest="kit_command", required=True, metavar="SUBCOMMAND")
    export = sub.add_parser("export", help="write a signed, deterministic kit of the configuration")
    _connection(export)
    export.add_argument("--tenant", required=True, help="the token's tenant (recorded in the kit)")
    export.add_argument("--signing-key", required=True, help="Ed25519 private key (PKCS#8 PEM)")
    export.add_argument("--out", required=True, help="kit file to write (.tar)")
    export.add_argument(
        "--audit",
        default=os.environ.get("STELLA_ORCH_AUDIT", "127.0.0.1:50054"),
        help="audit gRPC target (env STELLA_ORCH_AUDIT)",
    )
    export.add_argument("--audit-from", default="", help="include the audit bundle from this time")
    export.add_argument("--audit-to", default="", help="... to this time (exclusive)")
    export.set_defaults(handler=_run(_export))
    imp = sub.add_parser("import", help="verify a kit, show the changes, and apply them")
    _connection(imp)
    imp.add_argument("kit", help="kit file (.tar)")
    imp.add_argument("--key", required=True, help="the exporter's public key (PEM)")
    imp.add_argument("--dry-run", action="store_true", help="show the changes, make none")
    imp.set_defaults(handler=_run(_import))
    verify = sub.add_parser("verify", help="check a kit's signature, hashes and schema offline")
    verify.add_argument("kit", help="kit file (.tar)")
    verify.add_argument("--key", required=True, help="the exporter's public key (PEM)")
    verify.set_defaults(handler=_run(_verify))
    seal = sub.add_parser("seal", help="checksum and sign an offline install kit directory")
    seal.add_argument("dir", help="the kit directory (make offline-kit)")
    seal.add_argument("--signing-key", required=True, help="Ed25519 private key (PKCS#8 PEM)")
    seal.add_argument("--version", required=True, help="the release the kit installs")
    seal.set_defaults(handler=_run(_seal))
    check = sub.add_parser(
        "verify-install", help="check an offline install kit's signature and every file"
    )
    check.add_argument("dir", help="the unpacked kit directory")
    check.add_argument("--key", required=True, help="the release's public key (PEM)")
    check.set_defaults(handler=_run(_verify_install))
