"""Readiness reports and release diffs as rich tables, Markdown or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from core.readiness import Finding, ReadinessReport, Severity
from core.release_diff import ReleaseDiff
from core.triage import TriagedReport

STATUS_STYLE = {
    "ready": "green",
    "ready_with_warnings": "yellow",
    "blocked": "bold red",
    "compatible": "green",
    "needs_update": "yellow",
    "incompatible": "bold red",
    "obsolete": "cyan",
    "unknown": "magenta",
}
SEVERITY_STYLE = {
    Severity.BLOCKER: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
    Severity.UNKNOWN: "magenta",
}


def readiness_json(triaged: TriagedReport) -> str:
    return json.dumps(triaged.to_dict(), indent=2, default=str)


def triage_notes(triaged: TriagedReport) -> list[str]:
    """What the gate let through, and what changed since the previous run: plain lines."""
    lines = []
    for tenant, f, record in triaged.waived_blockers():
        lines.append(
            f"waived blocker (does not block until {record.until}): {f.code.value} "
            f"{f.subject} for {tenant}, by {record.decided_by}: {record.reason}"
        )
    if triaged.previous is not None:
        lines.append(
            f"since run #{triaged.previous.id} ({triaged.previous.at:%Y-%m-%d %H:%M} UTC): "
            f"{len(triaged.new)} new, {len(triaged.resolved)} resolved"
        )
        lines += [f"resolved: {r.id}" for r in triaged.resolved]
    if triaged.kept is not None:
        lines.append(f"kept as run #{triaged.kept.id}")
    return lines


def _mark(triaged: TriagedReport, tenant: str, f: Finding) -> str:
    """``new``, and the decision taken on the finding, for the findings table."""
    parts = []
    if triaged.is_new(tenant, f):
        parts.append("new")
    record = triaged.decision(tenant, f)
    if record is not None:
        text = record.decision.value
        if record.owner:
            text += f" ({record.owner})"
        if record.until:
            text += f" until {record.until}"
        parts.append(text)
    return ", ".join(parts)


def _summary(report: ReadinessReport) -> str:
    c = report.counts
    return (
        f"Readiness for {report.target} ({report.target_status}): {len(report.tenants)} "
        f"tenant(s): {c['ready']} ready, {c['ready_with_warnings']} ready with warnings, "
        f"{c['blocked']} blocked"
    )


def readiness_table(triaged: TriagedReport, console: Console) -> None:
    report = triaged.report
    console.print(_summary(report), highlight=False)
    tenants = Table(title="Tenants")
    for col in ("tenant", "release", "status", "blockers", "warnings"):
        tenants.add_column(col, no_wrap=True)
    tenants.add_column("customizations", overflow="fold")
    for t in report.tenants:
        tenants.add_row(
            t.tenant,
            t.current_release,
            Text(triaged.gate_status(t), style=STATUS_STYLE[triaged.gate_status(t)]),
            str(t.count(Severity.BLOCKER)),
            str(t.count(Severity.WARNING) + t.count(Severity.UNKNOWN)),
            ", ".join(t.customizations),
        )
    console.print(tenants)
    findings = Table(title="Findings")
    for col in ("tenant", "severity", "code"):
        findings.add_column(col, no_wrap=True)
    for col in ("subject", "evidence", "action", "triage"):
        findings.add_column(col, overflow="fold")
    for t in report.tenants:
        for f in triaged.shown(t):
            findings.add_row(
                t.tenant,
                Text(f.severity.value, style=SEVERITY_STYLE[f.severity]),
                f.code.value,
                f"{f.subject_kind} {f.subject}",
                f.message,
                f.action,
                _mark(triaged, t.tenant, f),
            )
    if findings.row_count:
        console.print(findings)
    if report.customizations:
        customs = Table(title="Customizations")
        for col in ("customization", "version", "status", "level", "enabled for", "codes"):
            customs.add_column(col, overflow="fold")
        for c in report.customizations:
            customs.add_row(
                c.name,
                c.version,
                Text(c.status.value, style=STATUS_STYLE[c.status.value]),
                c.level,
                ", ".join(c.enabled_for),
                ", ".join(sorted({f.code.value for f in c.findings})),
            )
        console.print(customs)
    if report.plan:
        plan = Table(title="Unblock plan (fix in this order)")
        for col in ("#", "fix", "codes", "blocks", "alone", "in order", "cumulative"):
            plan.add_column(col, overflow="fold")
        for s in report.plan:
            plan.add_row(
                str(s.rank),
                f"{s.subject_kind} {s.subject}",
                ", ".join(s.codes),
                str(s.blocks),
                str(s.unblocks_alone),
                str(s.unblocks_in_order),
                str(s.cumulative_unblocked),
            )
        console.print(plan)
    for line in triage_notes(triaged):
        console.print(line, highlight=False, markup=False)


def _md_row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    return [_md_row(header), _md_row("---" for _ in header), *(_md_row(r) for r in rows)]


def readiness_markdown(triaged: TriagedReport) -> str:
    report = triaged.report
    lines = [f"# Upgrade readiness: {report.target}", "", _summary(report), "", "## Tenants", ""]
    lines += _md_table(
        ("tenant", "release", "status", "blockers", "warnings"),
        (
            (
                t.tenant,
                t.current_release,
                triaged.gate_status(t),
                t.count(Severity.BLOCKER),
                t.count(Severity.WARNING) + t.count(Severity.UNKNOWN),
            )
            for t in report.tenants
        ),
    )
    rows = [
        (
            t.tenant,
            f.severity.value,
            f"`{f.code.value}`",
            f.subject,
            f.message,
            f.action,
            _mark(triaged, t.tenant, f),
        )
        for t in report.tenants
        for f in triaged.shown(t)
    ]
    if rows:
        lines += ["", "## Findings", ""]
        lines += _md_table(
            ("tenant", "severity", "code", "subject", "evidence", "action", "triage"), rows
        )
    if report.customizations:
        lines += ["", "## Customizations", ""]
        lines += _md_table(
            ("customization", "version", "status", "level", "enabled for"),
            (
                (c.name, c.version, c.status.value, c.level, ", ".join(c.enabled_for))
                for c in report.customizations
            ),
        )
    if report.plan:
        lines += ["", "## Unblock plan", ""]
        lines += _md_table(
            ("#", "fix", "codes", "blocks", "unblocks alone", "in order", "cumulative"),
            (
                (
                    s.rank,
                    f"{s.subject_kind} `{s.subject}`",
                    ", ".join(s.codes),
                    s.blocks,
                    s.unblocks_alone,
                    s.unblocks_in_order,
                    s.cumulative_unblocked,
                )
                for s in report.plan
            ),
        )
    notes = triage_notes(triaged)
    if notes:
        lines += ["", "## Triage and changes", "", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def diff_json(d: ReleaseDiff) -> str:
    return json.dumps(d.to_dict(), indent=2)


def diff_markdown(d: ReleaseDiff) -> str:
    lines = [f"# Changes from {d.from_version} to {d.to_version}", ""]
    lines += _md_table(
        ("kind", "name", "change", "details", "breaking"),
        (
            (c.kind, f"`{c.name}`", c.change, "; ".join(c.details), "yes" if c.breaking else "")
            for c in d.changes
        ),
    )
    if d.supersedes_added:
        lines += ["", f"Supersedes (folded into the product): {', '.join(d.supersedes_added)}"]
    return "\n".join(lines) + "\n"


def diff_table(d: ReleaseDiff, console: Console) -> None:
    table = Table(title=f"Changes from {d.from_version} to {d.to_version}")
    for col in ("kind", "name", "change", "details", "breaking"):
        table.add_column(col, overflow="fold")
    style = {"removed": "red", "renamed": "red", "changed": "yellow", "deprecated": "yellow"}
    for c in d.changes:
        table.add_row(
            c.kind,
            c.name,
            Text(c.change, style=style.get(c.change, "green")),
            "; ".join(c.details),
            Text("yes", style="bold red") if c.breaking else "",
        )
    console.print(table)
    if d.supersedes_added:
        console.print(f"supersedes (folded into the product): {', '.join(d.supersedes_added)}")
