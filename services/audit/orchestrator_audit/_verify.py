"""Offline verification and replay of audit bundles (no service, no database).

:func:`verify_bundle` checks, and reports each failure by name:

1. the archive: a tar holding exactly the five bundle files, byte-identical to the
   deterministic archive of those files (so a flipped byte in a header or padding counts);
2. the DSSE envelope: payload type, an Ed25519 signature by the given key over the PAE of
   the payload, and an in-toto Statement v1 whose subject digests match the files;
3. the manifest: every file's sha256, size and record count;
4. the chain: each ``history.jsonl`` line's ``hash == sha256(prev_hash || event)``, lines in
   seq order, each line continuing the previous one when the scope is a time window, and
   the manifest's chain head equal to the last line.

:func:`replay_bundle` folds ``history.jsonl`` through the state machine of
``orchestrator_core`` and compares the result with ``jobs.jsonl`` record by record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator_audit._bundle import (
    ALL_FILES,
    DATA_FILES,
    ENVELOPE,
    HISTORY,
    JOBS,
    MANIFEST,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    job_record,
    pae,
    tar_bytes,
)
from orchestrator_audit._canonical import chain_hash
from orchestrator_audit._keys import key_id_of
from orchestrator_core import JobState, OrchestratorError, Reason, TransitionEvent, apply
from orchestrator_core.event_fold import JobModel


@dataclass
class Verdict:
    """Outcome of a check: ``problems`` is empty when everything holds."""

    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def read_archive(archive: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The files of a bundle archive and the problems found with the archive itself."""
    problems: list[str] = []
    files: dict[str, bytes] = {}
    regions: list[tuple[int, int, int, str]] = []  # header start, data start, data end, name
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            for member in tar.getmembers():
                regions.append(
                    (
                        member.offset,
                        member.offset_data,
                        member.offset_data + member.size,
                        member.name,
                    )
                )
                if not member.isreg():
                    problems.append(f"archive: member {member.name!r} is not a regular file")
                    continue
                if member.name in files:
                    problems.append(f"archive: member {member.name!r} appears twice")
                handle = tar.extractfile(member)
                files[member.name] = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, ValueError) as exc:
        return {}, [f"archive: not a readable tar file ({exc})"]
    for name in ALL_FILES:
        if name not in files:
            problems.append(f"archive: {name} is missing")
    for name in sorted(set(files) - set(ALL_FILES)):
        problems.append(f"archive: unexpected member {name!r}")
    if not problems and tar_bytes(files) != archive:
        diff = next(
            (i for i, (a, b) in enumerate(zip(tar_bytes(files), archive, strict=False)) if a != b),
            min(len(archive), len(tar_bytes(files))),
        )
        problems.append(
            f"archive: bytes differ from the deterministic archive of its files at offset "
            f"{diff}, {_region(regions, diff)}"
        )
    return files, problems


def _region(regions: list[tuple[int, int, int, str]], offset: int) -> str:
    for header, start, end, name in regions:
        if header <= offset < start:
            return f"in the tar header of {name}"
        if start <= offset < end:
            return f"in the data of {name}"
        if end <= offset < start + ((end - start + 511) // 512) * 512:
            return f"in the padding after {name}"
    return "in the end-of-archive blocks"


def _json(files: dict[str, bytes], name: str, problems: list[str]) -> Any:
    try:
        return json.loads(files[name])
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: not valid JSON ({exc})")
        return None


def _check_envelope(
    files: dict[str, bytes], keys: Sequence[Ed25519PublicKey] | None, problems: list[str]
) -> None:
    envelope = _json(files, ENVELOPE, problems)
    if not isinstance(envelope, dict):
        if envelope is not None:
            problems.append(f"{ENVELOPE}: not a DSSE envelope object")
        return
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        problems.append(
            f"{ENVELOPE}: payloadType is {envelope.get('payloadType')!r}, expected {PAYLOAD_TYPE!r}"
        )
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{ENVELOPE}: payload is not valid base64")
        return
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        problems.append(f"{ENVELOPE}: has no signatures")
    elif keys is not None:
        message = pae(str(envelope.get("payloadType")), payload)
        by_id = {key_id_of(key): key for key in keys}
        verified = False
        for entry in signatures:
            keyid = str(entry.get("keyid", "")) if isinstance(entry, dict) else ""
            key = by_id.get(keyid)
            if key is None:
                continue
            try:
                key.verify(base64.b64decode(str(entry.get("sig", "")), validate=True), message)
                verified = True
            except (InvalidSignature, binascii.Error, ValueError):
                problems.append(
                    f"{ENVELOPE}: signature by key {keyid} does not verify (the signature or "
                    "the signed statement was altered)"
                )
        if not verified and not any("does not verify" in p for p in problems):
            wanted = ", ".join(sorted(by_id))
            problems.append(f"{ENVELOPE}: no signature by the given key ({wanted})")
    try:
        stmt = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        problems.append(f"{ENVELOPE}: payload is not a JSON statement")
        return
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        problems.append(f"{ENVELOPE}: payload is not an in-toto Statement v1")
        return
    if stmt.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"{ENVELOPE}: predicateType is {stmt.get('predicateType')!r}")
    subjects = {
        s.get("name"): (s.get("digest") or {}).get("sha256")
        for s in stmt.get("subject") or []
        if isinstance(s, dict)
    }
    for name in (*DATA_FILES, MANIFEST):
        if name not in files:
            continue
        actual = hashlib.sha256(files[name]).hexdigest()
        if name not in subjects:
            problems.append(f"{ENVELOPE}: the signed statement does not cover {name}")
        elif subjects[name] != actual:
            problems.append(
                f"{name}: sha256 {actual} does not match the signed statement ({subjects[name]})"
            )


def _check_manifest(files: dict[str, bytes], manifest: dict[str, Any], problems: list[str]) -> None:
    listed = {
        entry.get("path"): entry for entry in manifest.get("files") or [] if isinstance(entry, dict)
    }
    for name in DATA_FILES:
        if name not in files:
            continue
        entry = listed.get(name)
        if entry is None:
            problems.append(f"{MANIFEST}: does not list {name}")
            continue
        data = files[name]
        actual = hashlib.sha256(data).hexdigest()
        if entry.get("sha256") != actual:
            problems.append(
                f"{name}: sha256 {actual} does not match the manifest ({entry.get('sha256')})"
            )
        if entry.get("size_bytes") != len(data):
            problems.append(
                f"{name}: size {len(data)} bytes does not match the manifest "
                f"({entry.get('size_bytes')})"
            )
        lines = data.count(b"\n")
        if entry.get("count") != lines or (manifest.get("counts") or {}).get(name) != lines:
            problems.append(f"{name}: {lines} records, the manifest says {entry.get('count')}")


def _check_chain(files: dict[str, bytes], manifest: dict[str, Any], problems: list[str]) -> None:
    chain = manifest.get("chain") or {}
    contiguous = bool(chain.get("contiguous"))
    tenant = manifest.get("tenant")
    previous: dict[str, Any] | None = None
    for number, raw in enumerate(files[HISTORY].splitlines(), start=1):
        try:
            line = json.loads(raw)
            event, prev_hash, link = line["event"], line["prev_hash"], line["hash"]
            seq = int(event["seq"])
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{HISTORY} line {number}: not a chained event ({exc})")
            return
        where = f"{HISTORY} line {number} (seq {seq})"
        if event.get("tenant") != tenant:
            problems.append(f"{where}: belongs to tenant {event.get('tenant')!r}, not {tenant!r}")
        try:
            expected = chain_hash(prev_hash, event)
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: cannot hash ({exc})")
            return
        if expected != link:
            problems.append(
                f"{where}: hash {link} is not sha256(prev_hash || event) = {expected} "
                "(the event or its link was altered)"
            )
        if previous is not None:
            if seq <= previous["seq"]:
                problems.append(f"{where}: seq is not after line {number - 1}'s {previous['seq']}")
            if contiguous and prev_hash != previous["hash"]:
                problems.append(
                    f"{where}: prev_hash {prev_hash} does not continue the chain from line "
                    f"{number - 1} ({previous['hash']}): an event is missing or was inserted"
                )
        previous = {"seq": seq, "hash": link}
    head = chain.get("head")
    if previous is None:
        if head is not None:
            problems.append(f"{MANIFEST}: chain head {head} but {HISTORY} is empty")
    elif (
        not isinstance(head, dict)
        or head.get("seq") != previous["seq"]
        or head.get("hash") != previous["hash"]
    ):
        problems.append(
            f"{MANIFEST}: chain head {head} is not the last link of {HISTORY} "
            f"(seq {previous['seq']}, hash {previous['hash']})"
        )


def verify_archive(archive: bytes, keys: Sequence[Ed25519PublicKey] | None) -> Verdict:
    """Checks a bundle archive; ``keys=None`` skips the signature check (not the rest).

    Returns:
        The verdict, with one precise message per failed check.
    """
    files, problems = read_archive(archive)
    verdict = Verdict(problems)
    if not files:
        return verdict
    if ENVELOPE in files:
        _check_envelope(files, keys, problems)
    if MANIFEST in files:
        manifest = _json(files, MANIFEST, problems)
        if isinstance(manifest, dict):
            verdict.manifest = manifest
            _check_manifest(files, manifest, problems)
            if HISTORY in files:
                _check_chain(files, manifest, problems)
        elif manifest is not None:
            problems.append(f"{MANIFEST}: not a JSON object")
    return verdict


def _event(doc: dict[str, Any]) -> TransitionEvent:
    data = doc.get("data") or {}
    return TransitionEvent(
        type=doc["type"],
        to_state=JobState(doc["to_state"]),
        reason=Reason(doc["reason"]),
        attempt=int(doc["attempt"]),
        occurred_at=datetime.fromisoformat(doc["occurred_at"]),
        lease_id=doc.get("lease_id"),
        job_id=doc["job_id"],
        max_attempts=data.get("max_attempts") if doc["type"] == "job.created" else None,
    )


def replay_records(history: bytes) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Folds the job events of ``history.jsonl``; returns ``{job id: record}`` and the
    problems (illegal or inconsistent events)."""
    problems: list[str] = []
    models: dict[str, JobModel] = {}
    created: dict[str, dict[str, Any]] = {}
    broken: set[str] = set()
    for number, raw in enumerate(history.splitlines(), start=1):
        try:
            doc = json.loads(raw)["event"]
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{HISTORY} line {number}: not a chained event ({exc})")
            continue
        if not str(doc.get("type", "")).startswith("job.") or not doc.get("job_id"):
            continue
        job_id = doc["job_id"]
        if job_id in broken:
            continue
        try:
            if doc["type"] == "job.created":
                created[job_id] = doc
            models[job_id] = apply(models.get(job_id), _event(doc))
        except (OrchestratorError, ValueError, KeyError, TypeError) as exc:
            broken.add(job_id)
            problems.append(f"{HISTORY} line {number} (seq {doc.get('seq')}), job {job_id}: {exc}")
    records: dict[str, dict[str, Any]] = {}
    for job_id, model in models.items():
        origin = created.get(job_id)
        if origin is None or job_id in broken:
            continue
        data = origin.get("data") or {}
        records[job_id] = job_record(
            job_id=job_id,
            tenant=origin["tenant"],
            job_type=origin.get("job_type"),
            run_id=origin.get("run_id"),
            source_id=origin.get("source_id"),
            state=model.state.value,
            reason=model.reason.value,
            attempt=model.attempt,
            max_attempts=model.max_attempts,
            lease_id=model.lease_id,
            payload_digest=data.get("payload_digest"),
        )
    return records, problems


def replay_archive(archive: bytes) -> Verdict:
    """Rebuilds ``jobs.jsonl`` from ``history.jsonl`` and reports every difference."""
    files, problems = read_archive(archive)
    verdict = Verdict(problems)
    if JOBS not in files or HISTORY not in files:
        return verdict
    rebuilt, fold_problems = replay_records(files[HISTORY])
    problems.extend(fold_problems)
    seen: set[str] = set()
    for number, raw in enumerate(files[JOBS].splitlines(), start=1):
        try:
            record = json.loads(raw)
            job_id = str(record["id"])
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{JOBS} line {number}: not a job record ({exc})")
            continue
        seen.add(job_id)
        replayed = rebuilt.get(job_id)
        if replayed is None:
            problems.append(
                f"{JOBS} line {number}: job {job_id} has no complete history in {HISTORY} "
                "(no job.created event, or an event that does not fold)"
            )
            continue
        for key in sorted(set(record) | set(replayed)):
            if record.get(key) != replayed.get(key):
                problems.append(
                    f"{JOBS} line {number}: job {job_id} {key} is {record.get(key)!r}, "
                    f"replaying {HISTORY} gives {replayed.get(key)!r}"
                )
    return verdict
