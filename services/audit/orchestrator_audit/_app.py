"""Builds the audit GrpcService from configuration (used by __main__ and tests)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from orchestrator_audit._chainer import Chainer
from orchestrator_audit._keys import Signer
from orchestrator_audit._servicer import METHOD_SCOPES, SERVICE_NAME, AuditServicer
from orchestrator_core import Clock
from orchestrator_grpckit import ConfigError, Dependency, GrpcService, ServiceConfig
from orchestrator_pg import AuditLedger, Database
from stella.orchestrator.v1 import audit_pb2_grpc

SIGNING_KEY_FILE_ENV = "ORCH_AUDIT_SIGNING_KEY_FILE"
_log = logging.getLogger("orchestrator.audit")


def signer_from_env() -> Signer:
    """The signing key named by ``ORCH_AUDIT_SIGNING_KEY_FILE`` (PKCS#8 PEM Ed25519), or the
    fixed development key (with a warning) when unset; a service bound beyond loopback
    refuses that key unless ``ORCH_INSECURE_DEV=1``.

    Raises:
        ConfigError: The file is unreadable or not an Ed25519 private key.
    """
    path = os.environ.get(SIGNING_KEY_FILE_ENV, "")
    if not path:
        _log.warning(
            "no %s: signing audit bundles with the fixed DEVELOPMENT key", SIGNING_KEY_FILE_ENV
        )
        return Signer.development()
    try:
        return Signer.from_pem(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{SIGNING_KEY_FILE_ENV}={path}: {exc}") from exc


@asynccontextmanager
async def build_service(
    config: ServiceConfig, *, clock: Clock | None = None, signer: Signer | None = None
) -> AsyncIterator[GrpcService]:
    """The audit service (servicer + chainer) with an open pool; the pool closes on exit."""
    signer = signer or signer_from_env()
    db = Database(config.database_url, clock=clock, max_size=config.db_pool_max)
    # Injected (tests) or else PostgreSQL's: every component reads the same clock.
    clock = db.clock
    await db.open()
    try:
        ledger = AuditLedger(db)
        chainer = Chainer(ledger, config.database_url, clock=clock)
        servicer = AuditServicer(ledger, signer)
        service = GrpcService(
            config,
            [(audit_pb2_grpc.add_AuditServiceServicer_to_server, servicer, SERVICE_NAME)],
            dependencies=[Dependency("postgresql", db.ping)],
            background=[("chainer", chainer.run_forever)],
            method_scopes=METHOD_SCOPES,
            # Public in the source: beyond loopback the service refuses it (GrpcService).
            dev_defaults=[SIGNING_KEY_FILE_ENV] if signer.is_development else [],
        )
        service.chainer = chainer  # type: ignore[attr-defined]
        yield service
    finally:
        await db.close()
