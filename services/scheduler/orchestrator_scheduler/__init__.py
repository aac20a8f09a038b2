"""The scheduler service: sources, runs with their DAG, and jobs.

Design note
-----------
``__main__`` is the composition root: config from the environment, a PostgreSQL pool, the
stores (:class:`~orchestrator_pg.Stores`, one per table family), the servicer, and the
shared gRPC bootstrap (health, reflection, auth, error mapping, metrics) of
:mod:`orchestrator_grpckit`. The servicer only translates: requests are validated in
``_validate``, rows become messages in ``_convert``, and every rule about states lives in
the stores and the core.
"""

from orchestrator_scheduler._app import build_service
from orchestrator_scheduler._servicer import METHOD_SCOPES, SERVICE_NAME, SchedulerServicer

__all__ = ["METHOD_SCOPES", "SERVICE_NAME", "SchedulerServicer", "build_service"]
