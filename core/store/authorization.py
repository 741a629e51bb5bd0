"""What lets a write touch a protected environment: an approved change request,
or the operator's audited break-glass. Nothing else.

Every service that writes what a tenant sees (overrides, enablements, version
pins, upgrades) calls :func:`require_change_request` before it writes, so no
interface (GraphQL, the console, the CLI) can bypass protection: an interface can
only hand the service an :class:`Authorization`, and only
:class:`~core.store.changes.ChangeRequestService` (applying an approved request)
and :meth:`Authorization.break_glass` make one. The service calls
:meth:`Authorization.record` first thing in its write transaction: a change
request is marked applied in the very transaction that applies it (so it is
applied exactly once, whichever worker tries), a break-glass write leaves its
``break_glass`` audit entry (and so its change-feed row) beside the change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from core.model.auth import Principal, Role
from core.model.clock import utcnow
from core.model.errors import ChangedSinceError, ChangeRequestRequiredError, InvalidInputError
from core.store.feed import changed_after
from core.store.models import AuditEntry, ChangeRequestRow, Environment, aware
from core.store.tenants import TenantRef

#: audit action of the break-glass path (it is on the change feed)
BREAK_GLASS = "break_glass"
MAX_REASON = 1000
#: an apply this much after its applyAt is reported late
LATE_AFTER = timedelta(seconds=1)


class ChangeState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"


class AlreadyApplied(Exception):
    """Another worker applied (or finished) this change request first: the write
    that tried again is rolled back, nothing changes."""


def require_change_request(
    ref: TenantRef, environment: str | None, authorization: Authorization | None, what: str
) -> None:
    """Refuse a direct write where ``environment`` is protected (``None``: the
    tenant-wide scope, protected while any environment is)."""
    if authorization is None and ref.protects(environment):
        raise ChangeRequestRequiredError(ref.slug, environment, what)


async def locked_protection(session: AsyncSession, ref: TenantRef) -> TenantRef:
    """``ref`` with its protection as this write transaction sees it, the
    tenant's environments locked until it ends (``FOR SHARE`` on PostgreSQL;
    SQLite serializes writers already): a protection changed meanwhile waits for
    this write to commit, and a write never slips past one that committed."""
    rows = (
        await session.execute(
            select(Environment.name, Environment.protected, Environment.approvals)
            .where(Environment.tenant_id == ref.id)
            .with_for_update(read=True)
        )
    ).all()
    return replace(ref, protected={name: int(n) for name, on, n in rows if on})


def checked_reason(reason: str | None, field: str = "reason") -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInputError(field, "required: say why (it is kept in the audit log)")
    if len(text) > MAX_REASON:
        raise InvalidInputError(field, f"at most {MAX_REASON} characters")
    return text


@dataclass(frozen=True)
class Unchanged:
    """A revert's condition: ``key`` (an audit key, ``customization:NAME``) of the
    tenant written has changed by none of ``actions`` since feed ``sequence`` (the
    change it reverts), checked in the write's transaction."""

    sequence: int
    key: str
    actions: tuple[str, ...]
    #: what to do about it, said in the Conflict
    hint: str = "revert the later change, or propose the change you want directly"

    async def check(self, session: AsyncSession, tenant_id: int) -> None:
        later = await changed_after(session, self.sequence, tenant_id, self.key, self.actions)
        if later is not None:
            raise ChangedSinceError(self.key, self.sequence, later, self.hint)


@dataclass(frozen=True)
class Authorization:
    """Why a write may touch a protected environment."""

    #: who is applying it (audited)
    actor: str
    #: the approved change request being applied
    request_id: int | None = None
    #: the break-glass reason (operators only)
    break_glass_reason: str | None = None
    #: a revert's condition (the change request reverts a change)
    unchanged: Unchanged | None = None

    @classmethod
    def break_glass(cls, principal: Principal, reason: str | None) -> Authorization:
        """The one emergency path past a protected environment: an admin operator
        (the CLI's ``--break-glass --reason``), audited as ``break_glass``."""
        principal.require_role(Role.ADMIN, action="breaking glass")
        try:
            text = checked_reason(reason)
        except InvalidInputError:
            raise InvalidInputError(
                "reason", '--break-glass needs --reason "..." saying why (it is audited)'
            ) from None
        return cls(principal.name, break_glass_reason=text)

    @classmethod
    def applying(
        cls, request_id: int, actor: str, unchanged: Unchanged | None = None
    ) -> Authorization:
        return cls(actor, request_id=request_id, unchanged=unchanged)

    async def record(
        self,
        session: AsyncSession,
        tenant_id: int,
        environment: str | None,
        key: str | None,
        *,
        protected: bool = True,
    ) -> None:
        """Inside the write's transaction, before it writes. ``protected``: whether
        the write needed this (break-glass where nothing is protected is a plain
        write, and leaves no break-glass entry)."""
        if self.break_glass_reason is not None:
            if not protected:
                return
            session.add(
                AuditEntry(
                    actor=self.actor,
                    action=BREAK_GLASS,
                    tenant_id=tenant_id,
                    environment=environment,
                    key=key,
                    reason=self.break_glass_reason,
                )
            )
            return
        assert self.request_id is not None
        if self.unchanged is not None:
            await self.unchanged.check(session, tenant_id)
        now = utcnow()
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(ChangeRequestRow)
                .where(
                    ChangeRequestRow.id == self.request_id,
                    ChangeRequestRow.state == ChangeState.APPROVED,
                )
                .values(state=ChangeState.APPLIED, applied_at=now, claimed_until=None)
                .returning(ChangeRequestRow.apply_at)
            ),
        )
        found = result.first()
        if found is None:
            raise AlreadyApplied(self.request_id)
        apply_at = aware(found[0])
        outcome = "applied"
        if apply_at is not None and now - apply_at > LATE_AFTER:
            late = (now - apply_at).total_seconds()
            outcome = f"applied {late:.1f} s after its applyAt ({apply_at.isoformat()}): late"
        await session.execute(
            update(ChangeRequestRow)
            .where(ChangeRequestRow.id == self.request_id)
            .values(outcome=outcome)
        )
        session.add(
            AuditEntry(
                actor=self.actor,
                action="apply_change",
                tenant_id=tenant_id,
                environment=environment,
                key=f"change:{self.request_id}",
                new={"state": ChangeState.APPLIED.value, "outcome": outcome},
            )
        )
