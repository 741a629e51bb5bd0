"""The one readiness report model: what a triaged readiness run shows, as
sections of rows, whatever renders it (the CLI's table, JSON, Markdown and HTML
in :mod:`api.cli.render`, the console's fleet page, the GraphQL types of
:mod:`api.graphql.readiness` take their per-tenant counts from the same rules).

A report is a **summary** by default: the counts, the findings by code, the
first steps of the unblock plan and the triage notes, bounded whatever the fleet
size. ``full=True`` adds the long tables: every tenant, every finding at or
above the minimum severity, every customization and the whole unblock plan.
Rows are produced lazily, so renderers stream them (a 10,000-tenant report has
over 100,000 findings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from core.analysis.readiness.report import TenantReadiness
from core.analysis.readiness.vocabulary import Finding, Severity
from core.analysis.triage import TriagedReport
from core.analysis.unblock import UnblockStep

#: rows of the unblock plan, waived blockers and resolved findings a summary shows
SUMMARY_TOP = 10

#: how to ask for the long tables (the CLI option; renderers say so in summaries)
FULL_OPTION = "--full"


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


class ReadinessView:
    """A triaged readiness report, ready to render (see the module docstring)."""

    def __init__(self, triaged: TriagedReport, *, full: bool = False) -> None:
        self.triaged = triaged
        self.report = triaged.report
        self.full = full
        #: who owns each blocker (owner, due date, waiver), per unblock step
        self.owners = triaged.owners

    # -- the headline ---------------------------------------------------------
    @property
    def target(self) -> str:
        return self.report.target

    @property
    def gate_counts(self) -> dict[str, int]:
        return self.triaged.gate_counts

    def headline(self) -> str:
        c = self.gate_counts
        raw = self.report.counts["blocked"]
        waived = f" ({raw} without waivers)" if raw != c["blocked"] else ""
        return (
            f"Readiness for {self.target} ({self.report.target_status}): "
            f"{len(self.report.tenants)} tenant(s): {c['ready']} ready, "
            f"{c['ready_with_warnings']} ready with warnings, {c['blocked']} blocked{waived}"
        )

    def customization_line(self) -> str:
        counts = self.report.customization_counts
        parts = [f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n]
        return f"{len(self.report.customizations)} customization(s)" + (
            ": " + ", ".join(parts) if parts else ""
        )

    # -- rows -------------------------------------------------------------------
    def tenant_status(self, t: TenantReadiness) -> str:
        return self.triaged.gate_status(t)

    def _tenant_rows(self) -> Iterator[tuple[Any, ...]]:
        for t in self.report.tenants:
            yield (
                t.tenant,
                t.current_release,
                self.tenant_status(t),
                t.blockers,
                # the findings that make it ready_with_warnings (WARNING_SEVERITIES)
                t.warnings,
                ", ".join(t.customizations),
            )

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
        for c in self.report.customizations:
            yield (
                c.name,
                c.version,
                c.status.value,
                c.level,
                ", ".join(c.enabled_for),
                ", ".join(sorted({f.code.value for f in c.findings})),
            )

    def _plan_row(self, s: UnblockStep) -> tuple[Any, ...]:
        return (
            s.rank,
            f"{s.subject_kind} {s.subject}",
            ", ".join(s.codes),
            s.blocks,
            s.unblocks_alone,
            s.unblocks_in_order,
            s.cumulative_unblocked,
            self.owners.step(s).text(),
        )

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
        order = [Severity.BLOCKER, Severity.WARNING, Severity.UNKNOWN, Severity.INFO]
        return [
            {
                "code": code,
                "severity": severity[code].value,
                "findings": findings[code],
                "tenants": len(tenants[code]),
            }
            for code in sorted(findings, key=lambda c: (order.index(severity[c]), c))
        ]

    # -- sections ---------------------------------------------------------------
    def sections(self) -> list[Section]:
        r = self.report
        plan = r.plan if self.full else r.plan[:SUMMARY_TOP]
        plan_section = Section(
            "unblock_plan",
            "Unblock plan (fix in this order)",
            PLAN_COLUMNS,
            len(plan),
            lambda: (self._plan_row(s) for s in plan),
            omitted=len(r.plan) - len(plan),
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
        shown = sum(len(self.triaged.shown(t)) for t in r.tenants)
        return [
            Section("tenants", "Tenants", TENANT_COLUMNS, len(r.tenants), self._tenant_rows),
            Section("findings", "Findings", FINDING_COLUMNS, shown, self._finding_rows),
            Section(
                "customizations",
                "Customizations",
                CUSTOMIZATION_COLUMNS,
                len(r.customizations),
                self._customization_rows,
            ),
            plan_section,
        ]

    def notes(self) -> list[str]:
        """What the gate let through, and what changed since the previous run:
        plain lines (bounded in a summary)."""
        triaged = self.triaged
        top = None if self.full else SUMMARY_TOP
        lines = []
        if self.owners.blockers:
            lines.append(
                f"unassigned blockers: {self.owners.unassigned} of {len(self.owners.blockers)} "
                "(no owner, no waiver: plan or waive them with triageFinding or on the console)"
            )
        waived = triaged.waived_blockers()
        for tenant, f, record in waived[:top]:
            lines.append(
                f"waived blocker (does not block until {record.until}): {f.code.value} "
                f"{f.subject} for {tenant}, by {record.decided_by}: {record.reason}"
            )
        if top is not None and len(waived) > top:
            lines.append(f"... and {len(waived) - top} more waived blocker(s) ({FULL_OPTION})")
        if triaged.previous is not None:
            lines.append(
                f"since run #{triaged.previous.id} ({triaged.previous.at:%Y-%m-%d %H:%M} UTC): "
                f"{len(triaged.new)} new, {len(triaged.resolved)} resolved"
            )
            lines += [f"resolved: {r.id}" for r in triaged.resolved[:top]]
            if top is not None and len(triaged.resolved) > top:
                lines.append(f"... and {len(triaged.resolved) - top} more resolved ({FULL_OPTION})")
        if triaged.kept is not None:
            lines.append(f"kept as run #{triaged.kept.id}")
        return lines

    def omitted_note(self) -> str | None:
        """In a summary: what the long tables would add, and how to ask for them."""
        if self.full:
            return None
        r = self.report
        return (
            f"summary: the tables of {len(r.tenants)} tenant(s), their findings, "
            f"{len(r.customizations)} customization(s) and all {len(r.plan)} unblock "
            f"step(s) are shown with {FULL_OPTION}"
        )

    # -- JSON -------------------------------------------------------------------
    def summary_dict(self) -> dict[str, Any]:
        """The summary as data (``--format json`` without ``--full``)."""
        r, triaged = self.report, self.triaged
        top = r.plan[:SUMMARY_TOP]
        return {
            "target": r.target,
            "target_status": r.target_status,
            "summary": True,
            "tenant_count": len(r.tenants),
            "counts": r.counts,
            "gate_counts": self.gate_counts,
            "customization_count": len(r.customizations),
            "customization_counts": r.customization_counts,
            "any_blocked": triaged.any_blocked,
            "findings_by_code": self.by_code(),
            "unblock_plan": [
                {k: v for k, v in self.triaged.plan_step_dict(s).items() if k != "blocked_tenants"}
                for s in top
            ],
            "unassigned_blockers": self.owners.unassigned,
            "unblock_plan_steps": len(r.plan),
            "waived_blockers": len(triaged.waived_blockers()),
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
