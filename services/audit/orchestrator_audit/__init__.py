"""The audit service of Stella Orchestrator: hash chain, signed bundles, offline checks.

Design note
-----------
* :class:`Chainer` appends every event of the ledger to its tenant's chain,
  ``hash = sha256(prev_hash || canonical_json(event))`` (RFC 8785), once and in seq order:
  it only goes up to the seq the ledger reports settled, and moves its cursor in the same
  transaction as the links, so a crash or restart neither skips nor repeats an event. Each
  batch also anchors every touched tenant's newest link (``audit_anchors``), which event
  retention respects.
* :func:`build_bundle` turns the rows of a scope into a deterministic tar signed with DSSE
  (Ed25519 over an in-toto Statement v1); :func:`verify_archive` and :func:`replay_archive`
  check one with nothing but the bytes and a public key (``stella orchestrator audit
  verify|replay``).
* The servicer only translates; the tenant always comes from the caller's token.
"""

from orchestrator_audit._app import build_service, signer_from_env
from orchestrator_audit._bundle import Bundle, build_bundle, tar_bytes
from orchestrator_audit._canonical import GENESIS_HASH, canonical, chain_hash, event_document
from orchestrator_audit._chainer import Chainer
from orchestrator_audit._keys import Signer, generate_private_pem, load_public_key
from orchestrator_audit._servicer import METHOD_SCOPES, SERVICE_NAME, AuditServicer
from orchestrator_audit._verify import Verdict, replay_archive, verify_archive

__all__ = [
    "GENESIS_HASH",
    "METHOD_SCOPES",
    "SERVICE_NAME",
    "AuditServicer",
    "Bundle",
    "Chainer",
    "Signer",
    "Verdict",
    "build_bundle",
    "build_service",
    "canonical",
    "chain_hash",
    "event_document",
    "generate_private_pem",
    "load_public_key",
    "replay_archive",
    "signer_from_env",
    "tar_bytes",
    "verify_archive",
]
