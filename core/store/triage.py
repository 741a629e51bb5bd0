"""Triage of readiness findings, and kept readiness runs.

Every finding has a stable identity: (code, subject, key or hook, tenant), written
``CODE:subject:key-or-hook@tenant`` (:func:`finding_id`; the subject's bare name,
the detail "" for a manifest-level finding). A decision whose detail is ``*``
(kept from before details existed, or given as ``CODE:subject@tenant``) covers
every finding of its (code, subject, tenant) without a decision of its own. A
release manager or admin decides on it: **acknowledge** it, **plan** a fix (owner,
due date), or **waive** it (reason, until a date), or **reopen** it (forget the
decision). Decisions are
audited and apply to every later run that still shows the finding.

A waived blocker does not block while its waiver holds (through its ``until``
date, UTC): :class:`TriagedReport` is the report with decisions applied, and its
``any_blocked`` is what the CLI gate uses. The report says which blockers are
waived, so nobody mistakes a waiver for a fix.

Across the fleet, :class:`BlockerOwners` (``TriagedReport.owners``) says who owns
each blocker (owner, due date, waiver), per unblock step, and how many blockers
nobody owns yet (``unassigned``).

Runs: :meth:`TriageService.triaged` compares the current findings with the
previous kept run of the same target (only for the tenants evaluated both times)
and, with ``keep``, keeps this run for the next comparison.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.analysis.readiness.report import ReadinessReport, TenantReadiness
from core.analysis.readiness.vocabulary import Code, Finding, Severity, TenantStatus
from core.analysis.unblock import UnblockStep
from core.model import config
from core.model.auth import Principal
from core.model.clock import utcnow
from core.model.errors import InvalidInputError, NotFoundError
from core.store.db import MAX_IN_LIST
from core.store.gcpause import gc_paused
from core.store.models import AuditEntry, FindingTriage, ReadinessRun, Tenant, aware
from core.store.readiness_service import ReadinessService

MAX_REASON = 2000
MAX_OWNER = 200


class Decision(enum.StrEnum):
    ACKNOWLEDGED = "acknowledged"
    PLANNED = "planned"
    WAIVED = "waived"
    #: forget the decision: the finding is untriaged again
    REOPENED = "reopened"


class TriageVerb(enum.StrEnum):
    """What the caller may ask for; :data:`VERBS` says the state each leaves."""

    ACKNOWLEDGE = "acknowledge"
    PLAN = "plan"
    WAIVE = "waive"
    REOPEN = "reopen"


VERBS: dict[TriageVerb, Decision] = {
    TriageVerb.ACKNOWLEDGE: Decision.ACKNOWLEDGED,
    TriageVerb.PLAN: Decision.PLANNED,
    TriageVerb.WAIVE: Decision.WAIVED,
    TriageVerb.REOPEN: Decision.REOPENED,
}
#: what ``decide`` accepts, as words: a verb, or the state it leaves
_DECISION_WORDS: dict[str, Decision] = {
    **{verb.value: state for verb, state in VERBS.items()},
    **{state.value: state for state in Decision},
}

#: severities from the most to the least serious (``--min-severity``)
SEVERITY_ORDER: tuple[Severity, ...] = (
    Severity.BLOCKER,
    Severity.WARNING,
    Severity.UNKNOWN,
    Severity.INFO,
)


_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}


def at_least(severity: Severity, minimum: Severity) -> bool:
    return _RANK[severity] <= _RANK[minimum]


#: the detail of a decision that covers every key or hook of its (code, subject, tenant)
ANY_DETAIL = "*"


def finding_id(code: str, subject: str, detail: str, tenant: str) -> str:
    return f"{code}:{subject}:{detail}@{tenant}"


def id_of(f: Finding, tenant: str) -> str:
    """The id of ``f`` for ``tenant``."""
    # f"{code}" is the code's value (a StrEnum), without the enum's slow .value
    return f"{f.code}:{f.subject}:{f.detail}@{tenant}"


def parse_finding_id(value: str) -> tuple[Code, str, str, str]:
    """``CODE:subject:key-or-hook@tenant`` -> (code, subject, detail, tenant), or a
    clear error. ``CODE:subject@tenant`` (the ids before details) is every key or
    hook of it: detail ``*``."""
    value = value.strip()
    code, sep, rest = value.partition(":")
    named, at, tenant = rest.rpartition("@")
    subject, colon, detail = named.partition(":")
    if not colon:
        detail = ANY_DETAIL
    if not sep or not at or not subject or not tenant:
        raise InvalidInputError(
            "finding",
            f"{value!r} is not a finding id; use CODE:subject:key-or-hook@tenant as "
            "readiness shows it, e.g. SETTING_REMOVED:legacy-rule:orders.numbering.prefix@acme",
        )
    try:
        return Code(code), subject, detail, tenant
    except ValueError:
        known = ", ".join(c.value for c in Code)
        raise InvalidInputError("finding", f"{code!r} is not a finding code ({known})") from None


@dataclass(frozen=True)
class TriageRecord:
    finding: str
    decision: Decision
    reason: str | None
    owner: str | None
    until: date | None
    decided_by: str
    decided_at: datetime
    audit_id: int = 0

    def waives(self, today: date) -> bool:
        """A waiver holds through its ``until`` date."""
        return self.decision is Decision.WAIVED and (self.until is None or self.until >= today)

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "decision": self.decision.value,
            "reason": self.reason,
            "owner": self.owner,
            "until": self.until.isoformat() if self.until else None,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat(),
        }


@dataclass(frozen=True)
class RunInfo:
    id: int
    target: str
    at: datetime
    actor: str
    counts: dict[str, Any]


@dataclass(frozen=True)
class ResolvedFinding:
    """A finding the previous run showed and this one does not."""

    id: str
    code: str
    subject: str
    tenant: str
    severity: str


@dataclass(frozen=True, repr=False)
class TriagedReport:
    """A readiness report with decisions applied and compared with the previous run."""

    def __repr__(self) -> str:  # short, as ReadinessReport's
        return f"TriagedReport({self.report!r}, {len(self.decisions)} decisions)"

    report: ReadinessReport
    decisions: dict[str, TriageRecord]
    today: date
    previous: RunInfo | None = None
    #: ids of findings the previous run did not show (empty without a previous run)
    new: frozenset[str] = frozenset()
    resolved: tuple[ResolvedFinding, ...] = ()
    kept: RunInfo | None = None
    minimum: Severity = Severity.INFO
    current_ids: frozenset[str] = field(default_factory=frozenset)

    def finding_id(self, tenant: str, f: Finding) -> str:
        """The id of ``f`` for ``tenant`` (for pages: :func:`id_of`)."""
        return id_of(f, tenant)

    def decision(self, tenant: str, f: Finding) -> TriageRecord | None:
        """The decision on ``f``: its own, else one covering every key or hook."""
        own = self.decisions.get(id_of(f, tenant))
        if own is not None or not self.decisions:
            return own
        return self.decisions.get(finding_id(f"{f.code}", f.subject, ANY_DETAIL, tenant))

    def waived(self, tenant: str, f: Finding) -> bool:
        record = self.decision(tenant, f)
        return record is not None and record.waives(self.today)

    def is_new(self, tenant: str, f: Finding) -> bool:
        return id_of(f, tenant) in self.new

    def shown(self, t: TenantReadiness) -> list[Finding]:
        """The tenant's findings at or above the minimum severity."""
        if self.minimum is SEVERITY_ORDER[-1]:
            return list(t.findings)
        return [f for f in t.findings if at_least(f.severity, self.minimum)]

    def blocking(self, t: TenantReadiness) -> list[Finding]:
        return [
            f for f in t.findings if f.severity is Severity.BLOCKER and not self.waived(t.tenant, f)
        ]

    def waived_blockers(self) -> list[tuple[str, Finding, TriageRecord]]:
        out = []
        for t in self.report.tenants:
            for f in t.findings:
                if f.severity is Severity.BLOCKER and self.waived(t.tenant, f):
                    record = self.decision(t.tenant, f)
                    assert record is not None
                    out.append((t.tenant, f, record))
        return out

    @property
    def gate_counts(self) -> dict[str, int]:
        """Tenants per status once waivers apply."""
        out = {s.value: 0 for s in TenantStatus}
        for t in self.report.tenants:
            out[self.gate_status(t)] += 1
        return out

    def gate_status(self, t: TenantReadiness) -> str:
        """The tenant's status once waivers apply: ``blocked`` only with an unwaived blocker."""
        if t.status is not TenantStatus.BLOCKED or self.blocking(t):
            return t.status.value
        return TenantStatus.READY_WITH_WARNINGS.value

    @property
    def any_blocked(self) -> bool:
        """The CLI gate: any tenant with a blocker that no valid waiver covers."""
        return any(self.blocking(t) for t in self.report.tenants)

    def tenant_dict(self, t: TenantReadiness) -> dict[str, Any]:
        """One tenant of :meth:`to_dict`: its findings at or above the minimum,
        each with its id, triage and whether it is new or waived."""
        data = t.to_dict()
        data["gate_status"] = self.gate_status(t)
        kept = []
        for finding, f in zip(t.findings, data["findings"], strict=True):
            if not at_least(Severity(f["severity"]), self.minimum):
                continue
            fid = id_of(finding, t.tenant)
            record = self.decision(t.tenant, finding)
            f["id"] = fid
            f["detail"] = finding.detail
            f["new"] = fid in self.new
            f["triage"] = record.to_dict() if record else None
            f["waived"] = bool(record and record.waives(self.today))
            kept.append(f)
        data["findings"] = kept
        return data

    @cached_property
    def owners(self) -> BlockerOwners:
        """Who owns each blocker: owner, due date, waiver; per unblock step."""
        return BlockerOwners(self)

    def plan_step_dict(self, s: UnblockStep) -> dict[str, Any]:
        """An unblock step as data, with the triage of its blockers."""
        triage = self.owners.step(s)
        return {
            **s.to_dict(),
            "triage": {
                "owners": list(triage.owners),
                "due": triage.due.isoformat() if triage.due else None,
                "waived": triage.waived,
                "unassigned": triage.unassigned,
                "findings": triage.findings,
            },
        }

    def run_dict(self) -> dict[str, Any]:
        """The gate and the comparison with the previous run (the end of :meth:`to_dict`)."""
        return {
            "any_blocked": self.any_blocked,
            "unassigned_blockers": self.owners.unassigned,
            "previous_run": (
                {"id": self.previous.id, "at": self.previous.at.isoformat()}
                if self.previous
                else None
            ),
            "new_findings": sorted(self.new),
            "resolved_findings": [r.__dict__ for r in self.resolved],
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.report.to_dict()
        data["tenants"] = [self.tenant_dict(t) for t in self.report.tenants]
        data["unblock_plan"] = [self.plan_step_dict(s) for s in self.report.plan]
        data.update(self.run_dict())
        return data


# -- who owns each blocker, across the fleet ------------------------------------
# A blocker is **assigned** when a decision names its owner, or a waiver holds
# today (a waived blocker needs no owner while it holds); everything else is
# **unassigned**: what a release manager hands out first.


@dataclass(frozen=True)
class BlockerTriage:
    """One blocker finding of one tenant, with the decision taken on it."""

    tenant: str
    finding: Finding
    record: TriageRecord | None
    #: a waiver holds today: it does not block
    waived: bool

    @property
    def owner(self) -> str | None:
        return self.record.owner if self.record is not None else None

    @property
    def due(self) -> date | None:
        """A planned fix's due date."""
        r = self.record
        return r.until if r is not None and r.decision is Decision.PLANNED else None

    @property
    def waived_until(self) -> date | None:
        return self.record.until if self.waived and self.record is not None else None

    @property
    def assigned(self) -> bool:
        return self.waived or bool(self.owner)

    @property
    def author(self) -> str:
        """The customization's author: the owner to offer when nobody is named."""
        return self.finding.owner


@dataclass(frozen=True)
class StepTriage:
    """The triage of one unblock step's blocker findings (every tenant it blocks)."""

    owners: tuple[str, ...]
    #: the earliest due date of its planned fixes
    due: date | None
    waived: int
    unassigned: int
    findings: int

    def text(self) -> str:
        """One line: ``owner ana (due 2027-01-31); 1 waived; 2 unassigned``."""
        parts = []
        if self.owners:
            parts.append(
                "owner " + ", ".join(self.owners) + (f" (due {self.due})" if self.due else "")
            )
        if self.waived:
            parts.append(f"{self.waived} waived")
        if self.unassigned:
            parts.append(f"{self.unassigned} unassigned")
        return "; ".join(parts)


class BlockerOwners:
    """Every blocker finding of a triaged report with its triage (see the module)."""

    def __init__(self, triaged: TriagedReport) -> None:
        self.blockers: list[BlockerTriage] = []
        self._by_group: dict[tuple[str, str], list[BlockerTriage]] = {}
        for t in triaged.report.tenants:
            for f in t.findings:
                if f.severity is not Severity.BLOCKER:
                    continue
                b = BlockerTriage(
                    t.tenant, f, triaged.decision(t.tenant, f), triaged.waived(t.tenant, f)
                )
                self.blockers.append(b)
                self._by_group.setdefault(f.blocker_key, []).append(b)

    @property
    def unassigned(self) -> int:
        """Blocker findings with no owner and no waiver that holds."""
        return sum(1 for b in self.blockers if not b.assigned)

    def step(self, step: UnblockStep) -> StepTriage:
        group = self._by_group.get((step.subject_kind, step.subject), [])
        dues = [b.due for b in group if b.due is not None]
        return StepTriage(
            owners=tuple(sorted({b.owner for b in group if b.owner})),
            due=min(dues) if dues else None,
            waived=sum(1 for b in group if b.waived),
            unassigned=sum(1 for b in group if not b.assigned),
            findings=len(group),
        )

    def ordered(self, limit: int | None = None) -> Sequence[BlockerTriage]:
        """Unassigned first, then by due date (none last), tenant and subject."""
        ranked = sorted(
            self.blockers,
            key=lambda b: (
                b.assigned,
                b.due or date.max,
                b.tenant,
                b.finding.subject,
                b.finding.code.value,
            ),
        )
        return ranked[:limit] if limit is not None else ranked


def _today() -> date:
    return datetime.now(UTC).date()


def _parse_date(value: date | str | None, field_name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(field_name, f"{value!r} is not a date; use YYYY-MM-DD") from None


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


def _pairs(report: ReadinessReport) -> Iterator[tuple[TenantReadiness, Finding]]:
    for t in report.tenants:
        for f in t.findings:
            yield t, f


def _triple(f: dict[str, str]) -> tuple[str, str, str]:
    return (f["code"], f["subject"], f["tenant"])


def _triple_of(fid: str) -> tuple[str, str, str]:
    code, subject, _detail, tenant = parse_finding_id(fid)
    return (code.value, subject, tenant)


def _findings_of(report: ReadinessReport) -> list[dict[str, str]]:
    return [
        {
            "id": id_of(f, t.tenant),
            "code": f.code.value,
            "subject": f.subject,
            "detail": f.detail,
            "tenant": t.tenant,
            "severity": f.severity.value,
        }
        for t in report.tenants
        for f in t.findings
    ]


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
        verb = decision.strip().lower()
        state = _DECISION_WORDS.get(verb)
        if state is None:
            raise InvalidInputError(
                "decision", f"{decision!r} is not a decision; use one of {', '.join(VERBS)}"
            )
        today = today or _today()
        reason = (reason or "").strip() or None
        owner = (owner or "").strip() or None
        when = _parse_date(until, "until")
        if reason and len(reason) > MAX_REASON:
            raise InvalidInputError("reason", f"at most {MAX_REASON} characters")
        if owner and len(owner) > MAX_OWNER:
            raise InvalidInputError("owner", f"at most {MAX_OWNER} characters")
        if state is Decision.WAIVED:
            if not reason:
                raise InvalidInputError("reason", "a waiver needs a reason (kept in the audit log)")
            if when is None:
                raise InvalidInputError("until", "a waiver needs an end date (until: YYYY-MM-DD)")
        if state is Decision.PLANNED:
            if not owner:
                raise InvalidInputError("owner", "a planned fix needs an owner")
            if when is None:
                raise InvalidInputError("until", "a planned fix needs a due date (YYYY-MM-DD)")
        if when is not None and when < today and state in (Decision.WAIVED, Decision.PLANNED):
            raise InvalidInputError(
                "until", f"{when.isoformat()} is in the past; give today or a later date"
            )
        fid = finding_id(code.value, subject, detail, tenant)
        try:
            return await self._store(
                principal, fid, code, subject, detail, tenant, state, reason, owner, when
            )
        except IntegrityError:
            # a first decision on the same finding committed meanwhile: decide over it
            return await self._store(
                principal, fid, code, subject, detail, tenant, state, reason, owner, when
            )

    async def _store(
        self,
        principal: Principal,
        fid: str,
        code: Code,
        subject: str,
        detail: str,
        tenant: str,
        state: Decision,
        reason: str | None,
        owner: str | None,
        when: date | None,
    ) -> TriageRecord:
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
            row.owner = owner
            row.until = when
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
        ids = [(id_of(f, t.tenant), t.tenant) for t, f in _pairs(report)]
        current = frozenset(fid for fid, _ in ids)
        async with self._sessions() as session:
            previous_row = await session.scalar(
                select(ReadinessRun)
                .where(ReadinessRun.target == report.target)
                .order_by(ReadinessRun.id.desc())
                .limit(1)
            )
        previous = None
        new: frozenset[str] = frozenset()
        resolved: tuple[ResolvedFinding, ...] = ()
        if previous_row is not None:
            both = set(slugs) & set(previous_row.tenants or ())
            before = {f["id"]: f for f in previous_row.findings or () if f["tenant"] in both}
            # a run kept before ids had a detail (migration 0013) matches by
            # (code, subject, tenant): its findings are neither new nor resolved
            # for that alone
            legacy = {_triple(f) for f in before.values() if "detail" not in f}
            now = {_triple(f) for f in _findings_of(report)} if legacy else set()
            new = frozenset(
                fid
                for fid, tenant in ids
                if tenant in both
                and fid not in before
                and (not legacy or _triple_of(fid) not in legacy)
            )
            resolved = tuple(
                ResolvedFinding(fid, f["code"], f["subject"], f["tenant"], f.get("severity", ""))
                for fid, f in sorted(before.items())
                if fid not in current and ("detail" in f or _triple(f) not in now)
            )
            previous = _run_info(previous_row)
        kept = None
        if keep:
            principal.require_triage()
            async with self._sessions.begin() as session:
                row = ReadinessRun(
                    target=report.target,
                    actor=principal.name,
                    tenants=slugs,
                    counts=report.counts,
                    findings=_findings_of(report),
                )
                session.add(row)
                await session.flush()
                kept = _run_info(row)
        return TriagedReport(
            report=report,
            decisions={k: v for k, v in decisions.items() if k in current},
            today=today or _today(),
            previous=previous,
            new=new,
            resolved=resolved,
            kept=kept,
            minimum=minimum,
            current_ids=current,
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
