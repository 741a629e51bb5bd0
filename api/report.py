"""The one readiness report model: what a triaged readiness run shows, whatever
renders it. ``tailor readiness`` (:mod:`api.cli.render`: table, JSON, Markdown,
HTML) and the console's fleet and tenant pages (:mod:`api.web.views`) build a
:class:`ReadinessView` and render only what it holds: the counts
(:func:`fleet_counts`), the tenants most in need first, the unblock steps, the
blockers and their owners, what changed since the previous run, and how much of
each a summary leaves out (:class:`Limits`). The GraphQL types of
:mod:`api.graphql.readiness` take their per-tenant counts from the same rules.

A report is a **summary** by default, bounded whatever the fleet size: the CLI's
(:data:`CLI_SUMMARY`: the counts, the findings by code, the first steps of the
unblock plan and the triage notes) and the console's (:data:`CONSOLE_SUMMARY`:
the first rows of every table). :data:`FULL` shows every row: every tenant, every
finding at or above the minimum severity, every customization and the whole
unblock plan. Rows are produced lazily, so renderers stream them (a 10,000-tenant
report has over 100,000 findings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from core.analysis.readiness.report import CustomizationReadiness, TenantReadiness
from core.analysis.readiness.vocabulary import Finding, Severity, TenantStatus
from core.analysis.triage import (
    SEVERITY_ORDER,
    BlockerTriage,
    ResolvedFinding,
    RunInfo,
    StepTriage,
    TriagedReport,
    TriageRecord,
)
from core.analysis.unblock import UnblockStep

T = TypeVar("T")

#: how to ask for the long tables (the CLI option; renderers say so in summaries)
FULL_OPTION = "--full"


@dataclass(frozen=True)
class Limits:
    """How many rows of each long list a report shows (None: all of them)."""

    tenants: int | None = None
    customizations: int | None = None
    #: steps of the unblock plan (the first: the plan is greedy, they weigh most)
    plan: int | None = None
    #: blocked tenants named per unblock step
    tenants_per_step: int | None = None
    #: blockers listed with their owners
    blockers: int | None = None
    #: waived blockers and resolved findings named
    notes: int | None = None


#: every row
FULL = Limits()
#: rows of the unblock plan, waived blockers and resolved findings a CLI summary shows
SUMMARY_TOP = 10
#: ``tailor readiness`` without ``--full``: no tenant, finding or customization table
CLI_SUMMARY = Limits(tenants=0, customizations=0, plan=SUMMARY_TOP, blockers=0, notes=SUMMARY_TOP)
#: the console's fleet page without ``?full=1`` (a 10,000-tenant fleet made a 10 MB page)
CONSOLE_SUMMARY = Limits(
    tenants=200, customizations=200, plan=50, tenants_per_step=10, blockers=200
)

#: gate statuses, the most in need first (TenantStatus is declared from ready to blocked)
NEED_ORDER = {s.value: i for i, s in enumerate(reversed(TenantStatus))}


def most_serious_first(findings: Iterable[Finding]) -> list[Finding]:
    """Blockers first, then warnings, unknowns and infos; the report's order within each."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER.index(f.severity))


# -- the model ----------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """The headline of a triaged run (:func:`fleet_counts`)."""

    target: str
    target_status: str
    tenants: int
    #: tenants per gate status, once waivers apply
    ready: int
    ready_with_warnings: int
    blocked: int
    #: tenants that would be blocked if no waiver held (the report's own count)
    blocked_without_waivers: int
    #: blocker findings; those a waiver lets through today; those nobody owns
    blockers: int
    waived_blockers: int
    unassigned_blockers: int
    customizations: int
    #: customizations per status, the statuses with none left out
    customization_statuses: tuple[tuple[str, int], ...]
    plan_steps: int

    @property
    def gate_counts(self) -> dict[str, int]:
        """Tenants per gate status, in :class:`TenantStatus` order."""
        return {s.value: getattr(self, s.value) for s in TenantStatus}


def fleet_counts(triaged: TriagedReport) -> Counts:
    """The counts every renderer shows (the CLI's headline, the console's)."""
    r, owners = triaged.report, triaged.owners
    gate = triaged.gate_counts
    return Counts(
        target=r.target,
        target_status=r.target_status,
        tenants=len(r.tenants),
        ready=gate[TenantStatus.READY.value],
        ready_with_warnings=gate[TenantStatus.READY_WITH_WARNINGS.value],
        blocked=gate[TenantStatus.BLOCKED.value],
        blocked_without_waivers=r.counts[TenantStatus.BLOCKED.value],
        blockers=len(owners.blockers),
        waived_blockers=sum(1 for b in owners.blockers if b.waived),
        unassigned_blockers=owners.unassigned,
        customizations=len(r.customizations),
        customization_statuses=tuple((s, n) for s, n in r.customization_counts.items() if n),
        plan_steps=len(r.plan),
    )


@dataclass(frozen=True)
class TenantRow:
    tenant: str
    current_release: str
    #: the gate status (waivers applied), and the status without them
    status: str
    status_without_waivers: str
    blockers: int
    #: the findings that make it ready_with_warnings (WARNING_SEVERITIES)
    warnings: int
    customizations: tuple[str, ...]


@dataclass(frozen=True)
class PlanRow:
    """An unblock step, who owns its blockers, and the blocked tenants named."""

    step: UnblockStep
    triage: StepTriage
    tenants: tuple[str, ...]
    #: blocked tenants not named
    more_tenants: int


@dataclass(frozen=True)
class SincePrevious:
    """This run against the previous kept run of the same target."""

    run: RunInfo
    new: int
    resolved: int
    #: the resolved findings named (bounded by :attr:`Limits.notes`)
    named: tuple[ResolvedFinding, ...]


@dataclass(frozen=True)
class ReleaseMatrix:
    """Each tenant's gate status for several targets (the console's planned releases)."""

    versions: tuple[str, ...]
    statuses: Mapping[str, Mapping[str, str]]

    def status(self, tenant: str, version: str) -> str:
        """The gate status, or "" when ``tenant`` was not evaluated for ``version``."""
        return self.statuses.get(tenant, {}).get(version, "")


def release_matrix(runs: Mapping[str, TriagedReport]) -> ReleaseMatrix:
    """The gate status of every tenant of ``runs`` (version -> triaged run)."""
    statuses: dict[str, dict[str, str]] = {}
    for version, triaged in runs.items():
        for t in triaged.report.tenants:
            statuses.setdefault(t.tenant, {})[version] = triaged.gate_status(t)
    return ReleaseMatrix(tuple(runs), statuses)


# -- sections: the tables a renderer streams -------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    #: free text (messages, lists): wraps in tables
    long: bool = False


@dataclass(frozen=True)
class Section:
    """One table of the report. ``rows`` yields one tuple per row, lazily."""

    key: str
    title: str
    columns: tuple[Column, ...]
    size: int
    rows: Callable[[], Iterator[tuple[Any, ...]]]
    #: rows the summary left out (shown with ``full``)
    omitted: int = 0


def _columns(*spec: str) -> tuple[Column, ...]:
    """``"key"`` or ``"key:title"``; a trailing ``+`` marks free text."""
    out = []
    for s in spec:
        long = s.endswith("+")
        key, _, title = s.rstrip("+").partition(":")
        out.append(Column(key, title or key, long))
    return tuple(out)


TENANT_COLUMNS = _columns("tenant", "release", "status", "blockers", "warnings", "customizations+")
FINDING_COLUMNS = _columns(
    "tenant", "severity", "code", "subject+", "evidence+", "action+", "triage+"
)
CUSTOMIZATION_COLUMNS = _columns(
    "customization", "version", "status", "level", "enabled_for:enabled for+", "codes+"
)
PLAN_COLUMNS = _columns(
    "rank:#",
    "fix+",
    "codes+",
    "blocks",
    "alone:unblocks alone",
    "in_order:in order",
    "cumulative",
    "triage:owners and triage+",
)
BY_CODE_COLUMNS = _columns("code", "severity", "findings", "tenants")


def _cut(items: Sequence[T], limit: int | None) -> list[T]:
    return list(items if limit is None else items[:limit])


class ReadinessView:
    """A triaged readiness report, ready to render (see the module docstring):
    what every renderer shows, computed here once."""

    def __init__(
        self,
        triaged: TriagedReport,
        limits: Limits,
        *,
        matrix: ReleaseMatrix | None = None,
    ) -> None:
        self.triaged = triaged
        self.report = triaged.report
        self.limits = limits
        self.full = limits == FULL
        #: gate statuses for other targets (the console's tenants x planned releases)
        self.matrix = matrix
        #: who owns each blocker (owner, due date, waiver), per unblock step
        self.owners = triaged.owners

    # -- the headline ---------------------------------------------------------
    @property
    def target(self) -> str:
        return self.report.target

    @cached_property
    def counts(self) -> Counts:
        return fleet_counts(self.triaged)

    def headline(self) -> str:
        c = self.counts
        raw = c.blocked_without_waivers
        waived = f" ({raw} without waivers)" if raw != c.blocked else ""
        return (
            f"Readiness for {c.target} ({c.target_status}): "
            f"{c.tenants} tenant(s): {c.ready} ready, "
            f"{c.ready_with_warnings} ready with warnings, {c.blocked} blocked{waived}"
        )

    def customization_line(self) -> str:
        c = self.counts
        parts = [f"{n} {name.replace('_', ' ')}" for name, n in c.customization_statuses]
        return f"{c.customizations} customization(s)" + (": " + ", ".join(parts) if parts else "")

    # -- the rows shown ---------------------------------------------------------
    def tenant_row(self, t: TenantReadiness) -> TenantRow:
        return TenantRow(
            t.tenant,
            t.current_release,
            self.triaged.gate_status(t),
            t.status.value,
            t.blockers,
            t.warnings,
            tuple(t.customizations),
        )

    @cached_property
    def tenants(self) -> list[TenantRow]:
        """The tenants shown: all in the report's order, or, when a summary cuts
        them, the most in need first."""
        limit = self.limits.tenants
        tenants: Sequence[TenantReadiness] = self.report.tenants
        if limit is not None and len(tenants) > limit:
            gate = self.triaged.gate_status
            tenants = sorted(tenants, key=lambda t: (NEED_ORDER[gate(t)], t.tenant))[:limit]
        return [self.tenant_row(t) for t in tenants]

    def plan_row(self, s: UnblockStep) -> PlanRow:
        named = _cut(s.blocked_tenants, self.limits.tenants_per_step)
        return PlanRow(s, self.owners.step(s), tuple(named), len(s.blocked_tenants) - len(named))

    @cached_property
    def plan(self) -> list[PlanRow]:
        """The first steps of the unblock plan."""
        return [self.plan_row(s) for s in _cut(self.report.plan, self.limits.plan)]

    @cached_property
    def customizations(self) -> list[CustomizationReadiness]:
        return _cut(self.report.customizations, self.limits.customizations)

    def blockers(self) -> Sequence[BlockerTriage]:
        """The blockers listed with their owners: unassigned first, then by due date."""
        return self.owners.ordered(self.limits.blockers)

    @property
    def cut(self) -> bool:
        """A summary left rows of the tenants, the plan or the customizations out."""
        c = self.counts
        return (
            len(self.tenants) < c.tenants
            or len(self.plan) < c.plan_steps
            or len(self.customizations) < c.customizations
        )

    @cached_property
    def since(self) -> SincePrevious | None:
        """What changed since the previous kept run (None: no kept run yet)."""
        t = self.triaged
        if t.previous is None:
            return None
        named = tuple(_cut(t.resolved, self.limits.notes))
        return SincePrevious(t.previous, len(t.new), len(t.resolved), named)

    def waived(self) -> list[tuple[str, Finding, TriageRecord]]:
        """The waived blockers named (tenant, finding, decision)."""
        return _cut(self.triaged.waived_blockers(), self.limits.notes)

    def findings(self, t: TenantReadiness) -> list[Finding]:
        """A tenant's findings at or above the minimum severity, most serious first."""
        return most_serious_first(self.triaged.shown(t))

    def mark(self, tenant: str, f: Finding) -> str:
        """``new``, and the decision taken on the finding."""
        parts = []
        if self.triaged.is_new(tenant, f):
            parts.append("new")
        record = self.triaged.decision(tenant, f)
        if record is not None:
            text = record.decision.value
            if record.owner:
                text += f" ({record.owner})"
            if record.until:
                text += f" until {record.until}"
            parts.append(text)
        return ", ".join(parts)

    def by_code(self) -> list[dict[str, Any]]:
        """Findings per code (at or above the minimum severity): how many, and
        for how many tenants; most serious first."""
        findings: dict[str, int] = {}
        tenants: dict[str, set[str]] = {}
        severity: dict[str, Severity] = {}
        for t in self.report.tenants:
            for f in self.triaged.shown(t):
                code = f.code.value
                findings[code] = findings.get(code, 0) + 1
                tenants.setdefault(code, set()).add(t.tenant)
                severity[code] = f.severity
        return [
            {
                "code": code,
                "severity": severity[code].value,
                "findings": findings[code],
                "tenants": len(tenants[code]),
            }
            for code in sorted(findings, key=lambda c: (SEVERITY_ORDER.index(severity[c]), c))
        ]

    # -- sections ---------------------------------------------------------------
    def _tenant_rows(self) -> Iterator[tuple[Any, ...]]:
        for row in self.tenants:
            yield (
                row.tenant,
                row.current_release,
                row.status,
                row.blockers,
                row.warnings,
                ", ".join(row.customizations),
            )

    def _finding_rows(self) -> Iterator[tuple[Any, ...]]:
        for t in self.report.tenants:
            for f in self.triaged.shown(t):
                yield (
                    t.tenant,
                    f.severity.value,
                    f.code.value,
                    f"{f.subject_kind} {f.subject}",
                    f.message,
                    f.action,
                    self.mark(t.tenant, f),
                )

    def _customization_rows(self) -> Iterator[tuple[Any, ...]]:
        for c in self.customizations:
            yield (
                c.name,
                c.version,
                c.status.value,
                c.level,
                ", ".join(c.enabled_for),
                ", ".join(sorted({f.code.value for f in c.findings})),
            )

    def _plan_rows(self) -> Iterator[tuple[Any, ...]]:
        for row in self.plan:
            s = row.step
            yield (
                s.rank,
                f"{s.subject_kind} {s.subject}",
                ", ".join(s.codes),
                s.blocks,
                s.unblocks_alone,
                s.unblocks_in_order,
                s.cumulative_unblocked,
                row.triage.text(),
            )

    def sections(self) -> list[Section]:
        plan_section = Section(
            "unblock_plan",
            "Unblock plan (fix in this order)",
            PLAN_COLUMNS,
            len(self.plan),
            self._plan_rows,
            omitted=self.counts.plan_steps - len(self.plan),
        )
        if not self.full:
            by_code = self.by_code()
            return [
                Section(
                    "findings_by_code",
                    "Findings by code",
                    BY_CODE_COLUMNS,
                    len(by_code),
                    lambda: (tuple(row.values()) for row in by_code),
                ),
                plan_section,
            ]
        r = self.report
        shown = sum(len(self.triaged.shown(t)) for t in r.tenants)
        return [
            Section("tenants", "Tenants", TENANT_COLUMNS, len(self.tenants), self._tenant_rows),
            Section("findings", "Findings", FINDING_COLUMNS, shown, self._finding_rows),
            Section(
                "customizations",
                "Customizations",
                CUSTOMIZATION_COLUMNS,
                len(self.customizations),
                self._customization_rows,
            ),
            plan_section,
        ]

    def notes(self) -> list[str]:
        """What the gate let through, and what changed since the previous run:
        plain lines (bounded in a summary)."""
        c, top = self.counts, self.limits.notes
        lines = []
        if c.blockers:
            lines.append(
                f"unassigned blockers: {c.unassigned_blockers} of {c.blockers} "
                "(no owner, no waiver: plan or waive them with triageFinding or on the console)"
            )
        for tenant, f, record in self.waived():
            lines.append(
                f"waived blocker (does not block until {record.until}): {f.code.value} "
                f"{f.subject} for {tenant}, by {record.decided_by}: {record.reason}"
            )
        if top is not None and c.waived_blockers > top:
            more = c.waived_blockers - top
            lines.append(f"... and {more} more waived blocker(s) ({FULL_OPTION})")
        since = self.since
        if since is not None:
            lines.append(
                f"since run #{since.run.id} ({since.run.at:%Y-%m-%d %H:%M} UTC): "
                f"{since.new} new, {since.resolved} resolved"
            )
            lines += [f"resolved: {r.id}" for r in since.named]
            if len(since.named) < since.resolved:
                lines.append(
                    f"... and {since.resolved - len(since.named)} more resolved ({FULL_OPTION})"
                )
        if self.triaged.kept is not None:
            lines.append(f"kept as run #{self.triaged.kept.id}")
        return lines

    def omitted_note(self) -> str | None:
        """In a summary: what the long tables would add, and how to ask for them."""
        if self.full:
            return None
        c = self.counts
        return (
            f"summary: the tables of {c.tenants} tenant(s), their findings, "
            f"{c.customizations} customization(s) and all {c.plan_steps} unblock "
            f"step(s) are shown with {FULL_OPTION}"
        )

    # -- JSON -------------------------------------------------------------------
    def summary_dict(self) -> dict[str, Any]:
        """The summary as data (``--format json`` without ``--full``)."""
        report, triaged, c = self.report, self.triaged, self.counts
        return {
            "target": c.target,
            "target_status": c.target_status,
            "summary": True,
            "tenant_count": c.tenants,
            "counts": report.counts,
            "gate_counts": c.gate_counts,
            "customization_count": c.customizations,
            "customization_counts": report.customization_counts,
            "any_blocked": triaged.any_blocked,
            "findings_by_code": self.by_code(),
            "unblock_plan": [
                {k: v for k, v in triaged.plan_step_dict(r.step).items() if k != "blocked_tenants"}
                for r in self.plan
            ],
            "unassigned_blockers": c.unassigned_blockers,
            "unblock_plan_steps": c.plan_steps,
            "waived_blockers": c.waived_blockers,
            "previous_run": (
                {"id": triaged.previous.id, "at": triaged.previous.at.isoformat()}
                if triaged.previous
                else None
            ),
            "new_findings": len(triaged.new),
            "resolved_findings": len(triaged.resolved),
            "notes": self.notes(),
            "omitted": self.omitted_note(),
        }

    def full_parts(self) -> Iterator[tuple[str, Any]]:
        """The full report as data (the shape of :meth:`TriagedReport.to_dict`),
        key by key; the long lists are generators, so a renderer streams them."""
        r, triaged = self.report, self.triaged
        yield "target", r.target
        yield "target_status", r.target_status
        yield "counts", r.counts
        yield "customization_counts", r.customization_counts
        yield "tenants", (triaged.tenant_dict(t) for t in r.tenants)
        yield "customizations", (c.to_dict() for c in r.customizations)
        yield "unblock_plan", (triaged.plan_step_dict(s) for s in r.plan)
        yield from triaged.run_dict().items()
