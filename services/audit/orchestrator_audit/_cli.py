"""``stella orchestrator audit verify|replay|keygen``: offline bundle checks.

Neither ``verify`` nor ``replay`` talks to a service or a database: they read the bundle
file (and a public key) only. Exit codes: 0 ok, 1 a check failed, 2 usage (unreadable file
or key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator_audit._keys import KeyFormatError, generate_private_pem, load_public_key
from orchestrator_audit._verify import Verdict, replay_archive, verify_archive

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None


def _report(verdict: Verdict, what: str, bundle: str) -> int:
    if verdict.ok:
        print(f"OK: {bundle}: {what}")
        return EXIT_OK
    for problem in verdict.problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    print(f"{bundle}: {len(verdict.problems)} problem(s)", file=sys.stderr)
    return EXIT_FAILED


def _verify(args: argparse.Namespace) -> int:
    archive = _read(args.bundle)
    pem = _read(args.key)
    if archive is None or pem is None:
        return EXIT_USAGE
    try:
        key = load_public_key(pem)
    except KeyFormatError as exc:
        print(f"error: {args.key}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    verdict = verify_archive(archive, [key])
    counts = (verdict.manifest or {}).get("counts", {})
    summary = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    return _report(verdict, f"signature, file hashes and chain verified ({summary})", args.bundle)


def _replay(args: argparse.Namespace) -> int:
    archive = _read(args.bundle)
    if archive is None:
        return EXIT_USAGE
    verdict = replay_archive(archive)
    return _report(verdict, "history.jsonl replays to jobs.jsonl exactly", args.bundle)


def _keygen(args: argparse.Namespace) -> int:
    pem = generate_private_pem()
    try:
        Path(args.out).write_bytes(pem)
        Path(args.out).chmod(0o600)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {args.out} (Ed25519, PKCS#8 PEM); set ORCH_AUDIT_SIGNING_KEY_FILE to it")
    return EXIT_OK


def register(commands: Any) -> None:
    """Adds ``audit verify|replay|keygen`` to ``stella orchestrator``."""
    # `audit` is shared with the REST CLI's `audit list`, which may have registered it first.
    audit = commands.choices.get("audit") or commands.add_parser(
        "audit", help="the audit log and bundles", description="Audit entries and bundles."
    )
    sub = next(
        (a for a in audit._actions if isinstance(a, argparse._SubParsersAction)), None
    ) or audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = sub.add_parser("verify", help="check a bundle's signature, file hashes and hash chain")
    verify.add_argument("bundle", help="bundle archive (.tar) from ExportBundle")
    verify.add_argument("--key", required=True, help="PEM public key (GetPublicKey)")
    verify.set_defaults(handler=_verify)
    replay = sub.add_parser(
        "replay", help="fold history.jsonl through the state machine and compare with jobs.jsonl"
    )
    replay.add_argument("bundle", help="bundle archive (.tar) from ExportBundle")
    replay.set_defaults(handler=_replay)
    keygen = sub.add_parser("keygen", help="write a new Ed25519 signing key (PKCS#8 PEM)")
    keygen.add_argument("out", help="file to write (mode 0600)")
    keygen.set_defaults(handler=_keygen)
