"""Actor: who writes on leases (from the bearer token) and which tenants it may touch."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator_grpckit import Principal
from orchestrator_pg import TxContext


@dataclass(frozen=True)
class Actor:
    """The identity a batch of writes is made for; hashable, so writes group by it.

    Attributes:
        tenant: tenant selected for the call (recorded as the transaction's tenant).
        subject: token subject (recorded as the events' actor).
        scopes: token scopes (recorded on the events).
        tenants: tenants whose jobs the worker may lease and write, or None for every
            tenant (a platform-wide ``*`` token).
    """

    tenant: str
    subject: str
    scopes: tuple[str, ...]
    tenants: tuple[str, ...] | None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        """The actor of an authenticated call."""
        tenants = None if principal.any_tenant else tuple(sorted(principal.tenants))
        return cls(principal.tenant, principal.subject, tuple(sorted(principal.scopes)), tenants)

    def ctx(self) -> TxContext:
        """The transaction context of this actor's writes."""
        return TxContext(tenant=self.tenant, actor_subject=self.subject, actor_scopes=self.scopes)
