"""``tailor upgrade``: what going to a release would do to the tenants.

``rehearse`` replays the tenants' recorded hook inputs through the versions
they run (or a candidate) on their current release and on the target
(:class:`core.store.rehearsal.RehearsalService`, in this machine's confined
workers), and prints the findings and a confidence per version."""

from __future__ import annotations

import json
import sys
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.cli.common import (
    CLI_ACTOR,
    DatabaseOption,
    DocumentFormat,
    cli_product,
    out,
    run_with_services,
    serving_runtime,
)
from core.analysis.rehearsal import RehearsalReport
from core.analysis.triage import id_of
from core.store.services import Services

upgrade_app = typer.Typer(
    help="Upgrading tenants: rehearse a target release on their recorded inputs.",
    no_args_is_help=True,
)


def report_json(report: RehearsalReport) -> dict[str, Any]:
    """The report as JSON, each finding with its id (``CODE:subject:detail@tenant``)."""
    data = report.to_dict()
    for tenant, row in zip(report.tenants, data["tenants"], strict=True):
        for finding, shown in zip(tenant.findings, row["findings"], strict=True):
            shown["id"] = id_of(finding, tenant.tenant)
    return data


def _evidence(evidence: dict[str, Any]) -> str:
    keep = {k: v for k, v in evidence.items() if k not in ("samples",)}
    return json.dumps(keep, ensure_ascii=False, sort_keys=True, default=str)


def render_markdown(report: RehearsalReport, stream: IO[str]) -> None:
    w = stream.write
    w(f"# Rehearsal of {report.target}\n\n")
    w(
        f"{report.replays} recorded inputs replayed ({report.calls} calls) in "
        f"{report.workers} workers.\n\n"
    )
    w("| customization | version | replays | passed | confidence |\n|---|---|---|---|---|\n")
    for c in report.customizations:
        w(f"| {c.name} | {c.version} | {c.replays} | {c.passed} | {c.confidence:.0%} |\n")
    for line in report.unloadable:
        w(f"\nCould not be loaded: {line}\n")
    findings = report.findings
    w("\n## Findings\n\n")
    if not findings:
        w("None: every replay answered the same, valid values.\n")
        return
    w("| id | severity | message | samples | evidence |\n|---|---|---|---|---|\n")
    for tenant, f in findings:
        samples = ", ".join(f.evidence.get("samples", []))
        message = f.message.replace("|", "\\|")
        evidence = _evidence(dict(f.evidence)).replace("|", "\\|")
        w(f"| `{id_of(f, tenant)}` | {f.severity.value} | {message} | {samples} | {evidence} |\n")


def render_table(report: RehearsalReport, console: Console) -> None:
    console.print(
        f"Rehearsal of {report.target}: {report.replays} recorded inputs replayed "
        f"({report.calls} calls) in {report.workers} workers",
        highlight=False,
        markup=False,
    )
    confidence = Table(title="Confidence per customization version")
    for column in ("customization", "version", "replays", "passed", "confidence"):
        confidence.add_column(column)
    for c in report.customizations:
        confidence.add_row(c.name, c.version, str(c.replays), str(c.passed), f"{c.confidence:.0%}")
    console.print(confidence)
    for line in report.unloadable:
        console.print(f"could not be loaded: {line}", markup=False, highlight=False)
    findings = report.findings
    if not findings:
        console.print("No finding: every replay answered the same, valid values.")
        return
    table = Table(title="Findings")
    for column in ("id", "severity", "message", "samples"):
        table.add_column(column, overflow="fold")
    for tenant, f in findings:
        table.add_row(
            id_of(f, tenant),
            f.severity.value,
            f.message,
            ", ".join(f.evidence.get("samples", [])),
        )
    console.print(table)


@upgrade_app.command("rehearse")
def rehearse_command(
    target: Annotated[str, typer.Option("--target", help="The release to rehearse.")],
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Only this tenant (repeat).")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Rehearse this published version instead of the pinned ones, before anyone "
            "pins it: NAME@VERSION (for the tenants its manifest lists).",
        ),
    ] = None,
    fmt: Annotated[
        DocumentFormat, typer.Option("--format", help="table, json or markdown.")
    ] = DocumentFormat.TABLE,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep/--no-keep",
            help="Keep this run's findings: readiness of TARGET joins them (source "
            "rehearsal) while a tenant runs the version rehearsed.",
        ),
    ] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Replay the tenants' recorded hook inputs through the customization versions
    they run, on their current release and translated to TARGET (renamed keys
    mapped, removed keys absent, new keys and relied-on defaults at the target's),
    in confined workers (one per version); validate the answers with the target's
    definitions and compare them. Findings: REHEARSAL_FAILED, REHEARSAL_INVALID_VALUE
    (blockers), REHEARSAL_CHANGED (a warning, with the diff); a confidence per
    version. Secret values never appear. The run is kept (--no-keep: not):
    `tailor readiness --target TARGET` then shows its findings. Exit status 1 when
    a tenant has a blocker, 2 on bad input.

    Examples: tailor upgrade rehearse --target 3.0; tailor upgrade rehearse
    --target 3.0 --tenant globex --version globex-eur-rounding@1.1.0 --format json"""
    from api.wiring import attach

    product = cli_product()

    async def go(services: Services) -> RehearsalReport:
        runtime = serving_runtime(product)
        try:
            attach(services, runtime)
            return await services.rehearsal.rehearse(
                CLI_ACTOR, target, tenant or None, version, keep=keep
            )
        finally:
            await runtime.close()

    report = run_with_services(database_url, go)
    if fmt is DocumentFormat.JSON:
        print(json.dumps(report_json(report), ensure_ascii=False, default=str))
    elif fmt is DocumentFormat.MARKDOWN:
        render_markdown(report, sys.stdout)
    else:
        render_table(report, out)
    if report.any_blocked:
        raise typer.Exit(1)
