"""Triage stored: decisions on readiness findings, and kept readiness runs.

:class:`TriageService` records decisions (audited; what they mean, and the
finding ids they are taken on, are in :mod:`core.analysis.triage`), keeps readiness
runs and reads them back: :meth:`TriageService.triaged` loads a readiness report,
the decisions on its findings and the previous kept run of the same target, and
hands them to :func:`core.analysis.triage.triage_report`; with ``keep``, it keeps
this run for the next comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.analysis.readiness.vocabulary import Code, Severity
from core.analysis.triage import (
    SEVERITY_ORDER,
    CheckedDecision,
    Decision,
    PreviousRun,
    RunInfo,
    TriagedReport,
    TriageRecord,
    check_decision,
    finding_id,
    finding_rows,
    parse_finding_id,
    triage_report,
)
from core.model import config
from core.model.auth import Principal
from core.model.clock import utcnow
from core.model.errors import InvalidInputError, NotFoundError
from core.store.db import MAX_IN_LIST
from core.store.gcpause import gc_paused
from core.store.models import AuditEntry, FindingTriage, ReadinessRun, Tenant, aware
from core.store.readiness_service import ReadinessService


def _record(row: FindingTriage, audit_id: int = 0) -> TriageRecord:
    return TriageRecord(
        finding=row.finding,
        decision=Decision(row.decision),
        reason=row.reason,
        owner=row.owner,
        until=row.until,
        decided_by=row.decided_by,
        decided_at=aware(row.decided_at) or row.decided_at,
        audit_id=audit_id,
    )


RUN_RETENTION_ENV = "TAILOR_RUN_RETENTION_DAYS"
#: days a kept readiness run is kept (the newest run of each target always is)
DEFAULT_RUN_RETENTION_DAYS = 180


def run_retention_days() -> int:
    """``TAILOR_RUN_RETENTION_DAYS``, else :data:`DEFAULT_RUN_RETENTION_DAYS`."""
    return config.retention_days(RUN_RETENTION_ENV, DEFAULT_RUN_RETENTION_DAYS)


class TriageService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], readiness: ReadinessService
    ) -> None:
        self._sessions = sessions
        self.readiness = readiness

    async def decide(
        self,
        principal: Principal,
        finding: str,
        decision: str,
        reason: str | None = None,
        owner: str | None = None,
        until: date | str | None = None,
        today: date | None = None,
    ) -> TriageRecord:
        """Record a decision on ``finding`` (audited). Nothing changes on bad input."""
        principal.require_triage()
        code, subject, detail, tenant = parse_finding_id(finding)
        principal.require_tenant(tenant, action="triaging findings")
        checked = check_decision(decision, reason, owner, until, today or _today())
        fid = finding_id(code.value, subject, detail, tenant)
        try:
            return await self._store(principal, fid, code, subject, detail, tenant, checked)
        except IntegrityError:
            # a first decision on the same finding committed meanwhile: decide over it
            return await self._store(principal, fid, code, subject, detail, tenant, checked)

    async def _store(
        self,
        principal: Principal,
        fid: str,
        code: Code,
        subject: str,
        detail: str,
        tenant: str,
        checked: CheckedDecision,
    ) -> TriageRecord:
        state, reason = checked.state, checked.reason
        async with self._sessions.begin() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
            if tenant_id is None:
                raise NotFoundError("tenant", tenant, "list tenants with 'tenants'")
            row = await session.scalar(select(FindingTriage).where(FindingTriage.finding == fid))
            old = _record(row).to_dict() if row is not None else None
            if state is Decision.REOPENED:
                if row is not None:
                    await session.delete(row)
                row = FindingTriage(
                    finding=fid, code=code.value, subject=subject, detail=detail, tenant=tenant
                )
            elif row is None:
                row = FindingTriage(
                    finding=fid, code=code.value, subject=subject, detail=detail, tenant=tenant
                )
                session.add(row)
            row.decision = state.value
            row.reason = reason
            row.owner = checked.owner
            row.until = checked.until
            row.decided_by = principal.name
            row.decided_at = utcnow()
            record = _record(row)
            entry = AuditEntry(
                actor=principal.name,
                action="triage_finding",
                tenant_id=tenant_id,
                old=old,
                new=record.to_dict(),
                reason=reason,
            )
            session.add(entry)
            await session.flush()
            return _record(row, entry.id)

    async def decisions(self, tenants: Sequence[str] | None = None) -> dict[str, TriageRecord]:
        """Decisions on findings of ``tenants`` (None: all): one statement."""
        query = select(FindingTriage)
        wanted = None if tenants is None else set(tenants)
        if wanted is not None and len(wanted) <= MAX_IN_LIST:
            query = query.where(FindingTriage.tenant.in_(sorted(wanted)))
        # beyond MAX_IN_LIST tenants: every decision, filtered here (no statement
        # binds a parameter per tenant: PostgreSQL refuses more than 32,767)
        async with self._sessions() as session:
            rows = list(await session.scalars(query))
        return {r.finding: _record(r) for r in rows if wanted is None or r.tenant in wanted}

    async def triaged(
        self,
        principal: Principal,
        target: str,
        tenants: Sequence[str] | None = None,
        *,
        keep: bool = False,
        minimum: Severity | str = Severity.INFO,
        today: date | None = None,
    ) -> TriagedReport:
        """Readiness of ``target`` with decisions applied, compared with the
        previous kept run; ``keep`` keeps this run. A constant number of statements."""
        try:
            minimum = Severity(minimum)
        except ValueError:
            names = ", ".join(s.value for s in SEVERITY_ORDER)
            raise InvalidInputError("min_severity", f"{minimum!r} is not one of {names}") from None
        with gc_paused():  # a fleet-sized build (core.store.gcpause)
            return await self._triaged(principal, target, tenants, keep, minimum, today)

    async def _triaged(
        self,
        principal: Principal,
        target: str,
        tenants: Sequence[str] | None,
        keep: bool,
        minimum: Severity,
        today: date | None,
    ) -> TriagedReport:
        report = await self.readiness.readiness(principal, target, tenants)
        slugs = [t.tenant for t in report.tenants]
        decisions = await self.decisions(
            None if principal.sees_all_tenants and not tenants else slugs
        )
        async with self._sessions() as session:
            previous_row = await session.scalar(
                select(ReadinessRun)
                .where(ReadinessRun.target == report.target)
                .order_by(ReadinessRun.id.desc())
                .limit(1)
            )
        previous = None
        if previous_row is not None:
            previous = PreviousRun(
                _run_info(previous_row), previous_row.tenants or (), previous_row.findings or ()
            )
        kept = None
        if keep:
            principal.require_triage()
            async with self._sessions.begin() as session:
                row = ReadinessRun(
                    target=report.target,
                    actor=principal.name,
                    tenants=slugs,
                    counts=report.counts,
                    findings=finding_rows(report),
                )
                session.add(row)
                await session.flush()
                kept = _run_info(row)
        return triage_report(
            report,
            decisions,
            today or _today(),
            previous=previous,
            kept=kept,
            minimum=minimum,
        )

    async def prune_runs(self, days: int | None = None, *, now: datetime | None = None) -> int:
        """Drop kept readiness runs older than ``days`` (default
        :func:`run_retention_days`), never the newest run of a target (what the
        next run is compared with). How many went."""
        cutoff = (now or utcnow()) - timedelta(days=days or run_retention_days())
        newest = select(func.max(ReadinessRun.id)).group_by(ReadinessRun.target)
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ReadinessRun)
                .where(ReadinessRun.at < cutoff, ReadinessRun.id.not_in(newest))
                .execution_options(synchronize_session=False)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def runs(self, principal: Principal, target: str, limit: int = 20) -> list[RunInfo]:
        """The kept runs of ``target``, newest first."""
        principal.require_read_product()
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(ReadinessRun)
                    .where(ReadinessRun.target == target)
                    .order_by(ReadinessRun.id.desc())
                    .limit(limit)
                )
            )
        return [
            _run_info(r)
            for r in rows
            if principal.sees_all_tenants or set(r.tenants or ()) <= principal.tenants
        ]


def _run_info(row: ReadinessRun) -> RunInfo:
    return RunInfo(row.id, row.target, aware(row.at) or row.at, row.actor, dict(row.counts or {}))


def _today() -> date:
    return utcnow().date()
