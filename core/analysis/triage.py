"""Triage of readiness findings: decisions applied to a readiness report, pure.

Every finding has a stable identity: (code, subject, key or hook, tenant), written
``CODE:subject:key-or-hook@tenant`` (:func:`finding_id`; the subject's bare name,
the detail "" for a manifest-level finding). A decision whose detail is ``*``
(kept from before details existed, or given as ``CODE:subject@tenant``) covers
every finding of its (code, subject, tenant) without a decision of its own. A
release manager or admin decides on it: **acknowledge** it, **plan** a fix (owner,
due date), or **waive** it (reason, until a date), or **reopen** it (forget the
decision). Decisions apply to every later run that still shows the finding.

A waived blocker does not block while its waiver holds (through its ``until``
date, UTC): :class:`TriagedReport` is the report with decisions applied, and its
``any_blocked`` is what the CLI gate uses. The report says which blockers are
waived, so nobody mistakes a waiver for a fix.

Across the fleet, :class:`BlockerOwners` (``TriagedReport.owners``) says who owns
each blocker (owner, due date, waiver), per unblock step, and how many blockers
nobody owns yet (``unassigned``).

:func:`triage_report` applies the decisions and compares the findings with the
previous kept run of the same target (only for the tenants evaluated both times).
Nothing here touches the database: :mod:`core.store.triage` loads the report, the
decisions and the previous run, stores decisions and kept runs, and calls this.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from core.analysis.readiness.report import ReadinessReport, TenantReadiness
from core.analysis.readiness.vocabulary import Code, Finding, Severity, TenantStatus
from core.analysis.unblock import UnblockStep
from core.model.errors import InvalidInputError

MAX_REASON = 2000
MAX_OWNER = 200


class Decision(enum.StrEnum):
    """The state a decision leaves a finding in."""

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
#: what :func:`check_decision` accepts, as words: a verb, or the state it leaves
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
    """Is ``severity`` at least as serious as ``minimum``?"""
    return _RANK[severity] <= _RANK[minimum]


#: the detail of a decision that covers every key or hook of its (code, subject, tenant)
ANY_DETAIL = "*"


def finding_id(code: str, subject: str, detail: str, tenant: str) -> str:
    """The id ``CODE:subject:detail@tenant``."""
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
    """A decision on one finding: what, why, who owns it, until when, by whom."""

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
    """A kept readiness run: its id, target, time, actor and tenants per status."""

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


# -- a decision as asked for ------------------------------------------------------


@dataclass(frozen=True)
class CheckedDecision:
    """A decision as asked for, checked and normalized (blank reason or owner: None)."""

    state: Decision
    reason: str | None
    owner: str | None
    until: date | None


def check_decision(
    decision: str,
    reason: str | None,
    owner: str | None,
    until: date | str | None,
    today: date,
) -> CheckedDecision:
    """``decision`` (a verb of :data:`VERBS` or the state it leaves) with its
    reason, owner and date, checked; an :class:`InvalidInputError` names the
    field at fault (a waiver needs a reason and an end date, a planned fix an
    owner and a due date, neither a date before ``today``)."""
    state = _DECISION_WORDS.get(decision.strip().lower())
    if state is None:
        raise InvalidInputError(
            "decision", f"{decision!r} is not a decision; use one of {', '.join(VERBS)}"
        )
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
    return CheckedDecision(state, reason, owner, when)


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


# -- a run: its findings as kept, and the comparison with the previous one --------


def finding_rows(report: ReadinessReport) -> list[dict[str, str]]:
    """The report's findings as a kept run stores them (id, code, subject, detail,
    tenant, severity)."""
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


@dataclass(frozen=True)
class PreviousRun:
    """The previous kept run of a target, as the next run compares with it."""

    info: RunInfo
    #: the tenants it evaluated
    tenants: Sequence[str]
    #: its findings, as :func:`finding_rows` wrote them (or without ``detail``:
    #: a run kept before ids had one)
    findings: Sequence[Mapping[str, str]]


def triage_report(
    report: ReadinessReport,
    decisions: Mapping[str, TriageRecord],
    today: date,
    *,
    previous: PreviousRun | None = None,
    kept: RunInfo | None = None,
    minimum: Severity = Severity.INFO,
) -> TriagedReport:
    """``report`` with the ``decisions`` on its findings applied, compared with the
    ``previous`` kept run: new and resolved findings, for the tenants both evaluated."""
    ids = [(id_of(f, t.tenant), t.tenant) for t, f in _pairs(report)]
    current = frozenset(fid for fid, _ in ids)
    new: frozenset[str] = frozenset()
    resolved: tuple[ResolvedFinding, ...] = ()
    if previous is not None:
        both = {t.tenant for t in report.tenants} & set(previous.tenants)
        before = {f["id"]: f for f in previous.findings if f["tenant"] in both}
        # a run kept before ids had a detail (migration 0013) matches by
        # (code, subject, tenant): its findings are neither new nor resolved
        # for that alone
        legacy = {_triple(f) for f in before.values() if "detail" not in f}
        now = {_triple(f) for f in finding_rows(report)} if legacy else set()
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
    return TriagedReport(
        report=report,
        decisions=_applying(report, decisions, current),
        today=today,
        previous=previous.info if previous is not None else None,
        new=new,
        resolved=resolved,
        kept=kept,
        minimum=minimum,
        current_ids=current,
    )


def _applying(
    report: ReadinessReport, decisions: Mapping[str, TriageRecord], current: frozenset[str]
) -> dict[str, TriageRecord]:
    """The decisions on the report's findings: each finding's own, and those on
    every detail (:data:`ANY_DETAIL`) of a (code, subject, tenant) it has."""
    out = {k: v for k, v in decisions.items() if k in current}
    wide = [k for k in decisions if k not in out and f":{ANY_DETAIL}@" in k]
    if wide:
        shown = {
            finding_id(f"{f.code}", f.subject, ANY_DETAIL, t.tenant) for t, f in _pairs(report)
        }
        out.update((k, decisions[k]) for k in wide if k in shown)
    return out


def _pairs(report: ReadinessReport) -> Iterator[tuple[TenantReadiness, Finding]]:
    for t in report.tenants:
        for f in t.findings:
            yield t, f


def _triple(f: Mapping[str, str]) -> tuple[str, str, str]:
    return (f["code"], f["subject"], f["tenant"])


def _triple_of(fid: str) -> tuple[str, str, str]:
    code, subject, _detail, tenant = parse_finding_id(fid)
    return (code.value, subject, tenant)
