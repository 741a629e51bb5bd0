"""The audit log: who changed what, when, from which value to which."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal
from core.model.errors import InvalidInputError, NotFoundError
from core.store.models import AuditEntry, Tenant

MAX_LIMIT = 500


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    tenant: str | None
    environment: str | None
    key: str | None
    old: Any
    new: Any
    revision: int | None
    reason: str | None
    #: the HTTP request that made the change (None: the CLI, or before 0018)
    request_id: str | None


class AuditService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list_all(
        self,
        principal: Principal,
        tenant: str | None = None,
        key: str | None = None,
        limit: int = 100,
        before: int | None = None,
        request_id: str | None = None,
    ) -> list[AuditRecord]:
        """Newest first. ``before`` pages back from an entry id; ``request_id``
        keeps the entries one HTTP request made (the id its log lines carry)."""
        principal.require_read_audit(tenant)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInputError("limit", f"must be between 1 and {MAX_LIMIT}")
        query = (
            select(AuditEntry, Tenant.slug)
            .outerjoin(Tenant, Tenant.id == AuditEntry.tenant_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            if tenant is not None:
                tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
                if tenant_id is None:
                    raise NotFoundError("tenant", tenant)
                query = query.where(AuditEntry.tenant_id == tenant_id)
            if key is not None:
                query = query.where(AuditEntry.key == key)
            if before is not None:
                query = query.where(AuditEntry.id < before)
            if request_id is not None:
                query = query.where(AuditEntry.request_id == request_id)
            rows = (await session.execute(query)).all()
        return [
            AuditRecord(
                e.id,
                e.at,
                e.actor,
                e.action,
                slug,
                e.environment,
                e.key,
                e.old,
                e.new,
                e.revision,
                e.reason,
                e.request_id,
            )
            for e, slug in rows
        ]
