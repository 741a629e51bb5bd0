"""``tailor foldback``: fold-back candidates as a table, JSON or Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.cli.common import CLI_ACTOR, DatabaseOption, DocumentFormat, out, run_with_services
from core.analysis.foldback import FoldbackReport
from core.analysis.roadmap import candidate_id


def foldback_dict(report: FoldbackReport) -> dict[str, Any]:
    return {
        "explanation": report.explanation,
        "counts": dict(report.counts),
        "candidates": [
            {
                **{k: v for k, v in asdict(c).items() if k != "score"},
                "id": candidate_id(c),
                "kind": c.kind.value,
                "tenants": list(c.tenants),
                "customizations": list(c.customizations),
                "hooks": list(c.hooks),
                "score": {
                    "breadth": c.score.breadth,
                    "upgrade_cost": c.score.upgrade_cost,
                    "total": c.score.total,
                },
            }
            for c in report.candidates
        ],
        "retire": [asdict(r) for r in report.retire],
    }


def foldback_markdown(report: FoldbackReport) -> str:
    lines = ["# Fold-back candidates", "", f"_{report.explanation}_", ""]
    lines += [
        "| # | candidate | kind | tenants | customizations | hooks | blockers | score "
        "| absorbed in |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(report.candidates, 1):
        lines.append(
            f"| {i} | {c.title} | {c.kind.value} | {len(c.tenants)}: {', '.join(c.tenants)} | "
            f"{', '.join(c.customizations) or '-'} | {', '.join(c.hooks) or '-'} | {c.blockers} | "
            f"{c.score.total} (2x{c.score.breadth} + {c.score.upgrade_cost}) | "
            f"{c.absorbed_in or '-'} |"
        )
    lines += ["", "## Candidates to retire", ""]
    lines += [f"- {r.kind}: `{r.subject}`: {r.detail}" for r in report.retire] or ["- none"]
    return "\n".join(lines) + "\n"


def foldback_table(report: FoldbackReport, console: Console, retire_limit: int = 15) -> None:
    table = Table(title="Fold-back candidates (best first)", show_lines=True)
    table.add_column("#", no_wrap=True)
    table.add_column("score", no_wrap=True)
    table.add_column("candidate and evidence", ratio=3, overflow="fold")
    table.add_column("tenants", ratio=2, overflow="fold")
    table.add_column("absorbed", no_wrap=True)
    for i, c in enumerate(report.candidates, 1):
        table.add_row(
            str(i),
            f"{c.score.total}\n[dim]2x{c.score.breadth}+{c.score.upgrade_cost}[/]",
            f"[bold]{c.title}[/]\n[dim]{c.kind.value}: {c.evidence}\nid {candidate_id(c)}[/]",
            f"{len(c.tenants)}: {', '.join(c.tenants)}",
            f"[cyan]in {c.absorbed_in}[/]" if c.absorbed_in else "",
        )
    console.print(table)
    console.print(report.explanation, style="dim", highlight=False)
    if report.retire:
        shown = report.retire[:retire_limit]
        console.print(
            f"Candidates to retire ({len(report.retire)}): "
            + "; ".join(f"{r.subject} ({r.kind.lower()})" for r in shown)
            + (" ..." if len(report.retire) > len(shown) else ""),
            highlight=False,
        )


foldback_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Which customizations should the product absorb? Candidates ranked by breadth "
    "(distinct tenants) and upgrade cost (blockers caused across planned releases), never "
    "by what a client pays; plus settings and customizations nobody uses. "
    "'tailor foldback propose FAMILY_ID' turns a family into a release-manifest fragment.",
)


@foldback_app.callback()
def foldback_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Show the best N candidates.")] = 20,
    fmt: Annotated[DocumentFormat, typer.Option("--format")] = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Which customizations should the product absorb? Candidates ranked by breadth
    (distinct tenants) and upgrade cost (blockers caused across planned releases),
    never by what a client pays; plus settings and customizations nobody uses."""
    if ctx.invoked_subcommand is not None:
        return
    report = run_with_services(
        database_url,
        lambda services: services.foldback.candidates(CLI_ACTOR, limit),
        installed=True,
    )
    if fmt is DocumentFormat.JSON:
        print(json.dumps(foldback_dict(report), indent=2, default=str))
    elif fmt is DocumentFormat.MARKDOWN:
        print(foldback_markdown(report), end="")
    else:
        foldback_table(report, out)


@foldback_app.command("propose")
def foldback_propose(
    family: Annotated[
        str, typer.Argument(help="A family's id (fam-..., from 'tailor foldback --format json').")
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the fragment here (default: stdout)."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Turn a fold-back family into product work: the constants that differ between
    its members become proposed settings (key, type, default, constraints) and the
    shared logic the capability's description, written as a release-manifest
    fragment that supersedes the capability, with each tenant's migration (disable
    the customization, set the overrides to its values). Merge it into a planned
    release with 'tailor release import FRAGMENT --into V'."""
    from core.model.manifest_io import dumps_fragment

    proposal = run_with_services(
        database_url, lambda services: services.foldback.propose(CLI_ACTOR, family)
    )
    text = (
        f"# fold-back family {proposal.family}: merge with "
        "'tailor release import FILE --into VERSION'\n" + dumps_fragment(proposal.fragment())
    )
    if output is None:
        print(text, end="")
        return
    output.write_text(text, encoding="utf-8")
    out.print(
        f"wrote {output}: capability {proposal.capability}, "
        f"{len(proposal.settings)} setting(s), {len(proposal.migrations)} tenant migration(s)",
        highlight=False,
    )
