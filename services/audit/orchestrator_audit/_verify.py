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

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator_audit._bundle import (
    ALL_FILES,
    DATA_FILES,
    ENVELOPE,
    HISTORY,
    JOBS,
    MANIFEST,
    PREDICATE_TYPE,
    job_record,
)
from orchestrator_audit._canonical import chain_hash
from orchestrator_core import JobState, OrchestratorError, Reason, TransitionEvent, apply
from orchestrator_core.event_fold import JobModel
from stella_orchestrator.signing import check_statement, read_tar, verify_envelope


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
    return read_tar(archive, ALL_FILES)


def _json(files: dict[str, bytes], name: str, problems: list[str]) -> Any:
    try:
        return json.loads(files[name])
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: not valid JSON ({exc})")
        return None


def _check_envelope(
    files: dict[str, bytes], keys: Sequence[Ed25519PublicKey] | None, problems: list[str]
) -> None:
    stmt = verify_envelope(files[ENVELOPE], keys, problems, name=ENVELOPE)
    if stmt is None:
        return
    check_statement(stmt, files, (*DATA_FILES, MANIFEST), PREDICATE_TYPE, problems, name=ENVELOPE)


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
