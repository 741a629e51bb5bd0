"""``tailor roadmap add|pledge|update|list``: product work made from fold-back
candidates, co-funded by tenants (see :mod:`core.analysis.roadmap`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.common import CLI_ACTOR, DatabaseOption, DocumentFormat, out, run_with_services
from core.analysis.roadmap import EXPLANATION, RoadmapItem, RoadmapStatus

roadmap_app = typer.Typer(
    help="The roadmap: fold-back candidates made product work, with tenants' pledges "
    "(co-funding). Ranked by tenants covered and upgrade cost avoided, never by pledges.",
    no_args_is_help=True,
)

FormatOption = Annotated[DocumentFormat, typer.Option("--format")]


def item_dict(i: RoadmapItem) -> dict[str, Any]:
    return {
        "id": i.id,
        "title": i.title,
        "source": {"kind": i.source_kind.value, "id": i.source_id},
        "capability": i.capability,
        "status": i.status.value,
        "target_release": i.target_release,
        "shipped_in": i.shipped_in,
        "migration": {
            "release": i.migration.release,
            "capability": i.migration.capability,
            "command": i.migration.command,
        }
        if i.migration
        else None,
        "customizations": [{"name": c.name, "tenants": list(c.tenants)} for c in i.customizations],
        "tenants": list(i.tenants),
        "hidden_tenants": i.hidden_tenants,
        "evidence": i.evidence,
        "score": {
            "breadth": i.score.breadth,
            "upgrade_cost": i.score.upgrade_cost,
            "total": i.score.total,
        },
        "pledges": [
            {
                "tenant": p.tenant,
                "amount": p.amount,
                "currency": p.currency,
                "note": p.note,
                "pledged_by": p.pledged_by,
                "pledged_at": p.pledged_at.isoformat(),
            }
            for p in i.pledges
        ],
        "totals": [{"currency": c, "amount": a, "pledges": n} for c, a, n in i.totals],
    }


def _totals(i: RoadmapItem) -> str:
    return ", ".join(f"{a} {c} ({n})" for c, a, n in i.totals) or "-"


def _status(i: RoadmapItem) -> str:
    if i.shipped_in:
        return f"shipped in {i.shipped_in}"
    return i.status.value + (f" for {i.target_release}" if i.target_release else "")


def roadmap_markdown(items: list[RoadmapItem]) -> str:
    lines = ["# Roadmap", "", f"_{EXPLANATION}_", ""]
    lines += [
        "| # | item | status | tenants | customizations | score | pledged |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in items:
        lines.append(
            f"| {i.id} | {i.title} | {_status(i)} | {len(i.tenants)}: {', '.join(i.tenants)} | "
            f"{', '.join(c.name for c in i.customizations) or '-'} | "
            f"{i.score.total} (2x{i.score.breadth} + {i.score.upgrade_cost}) | {_totals(i)} |"
        )
    return "\n".join(lines) + "\n"


def _show(items: list[RoadmapItem], fmt: DocumentFormat) -> None:
    if fmt is DocumentFormat.JSON:
        print(
            json.dumps(
                {"explanation": EXPLANATION, "items": [item_dict(i) for i in items]}, indent=2
            )
        )
        return
    if fmt is DocumentFormat.MARKDOWN:
        print(roadmap_markdown(items), end="")
        return
    table = Table(title="Roadmap (best first)", show_lines=True)
    table.add_column("#", no_wrap=True)
    table.add_column("score", no_wrap=True)
    table.add_column("item and evidence", ratio=3, overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("tenants", ratio=2, overflow="fold")
    table.add_column("pledged (beside, not ranked)", ratio=2, overflow="fold")
    for i in items:
        table.add_row(
            str(i.id),
            f"{i.score.total}\n[dim]2x{i.score.breadth}+{i.score.upgrade_cost}[/]",
            f"[bold]{i.title}[/]\n[dim]{i.evidence}[/]",
            _status(i),
            f"{len(i.tenants)}: {', '.join(i.tenants)}",
            "\n".join(f"{p.tenant}: {p.amount} {p.currency}" for p in i.pledges)
            + (f"\n[bold]{_totals(i)}[/]" if i.pledges else "-"),
        )
    out.print(table)
    out.print(EXPLANATION, style="dim", highlight=False)


@roadmap_app.command("add")
def add_command(
    candidate: Annotated[
        str, typer.Argument(help="The fold-back candidate's id (tailor foldback --format json).")
    ],
    title: Annotated[str | None, typer.Option(help="Default: the candidate's title.")] = None,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Cover this tenant too (repeatable).")
    ] = None,
    capability: Annotated[
        str | None,
        typer.Option(
            help="The capability whose superseding ships it (default: the one its "
            "customizations all declare)."
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target release.")] = None,
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Make a roadmap item from a fold-back candidate (audited)."""
    item = run_with_services(
        database_url,
        lambda s: s.roadmap.create(
            CLI_ACTOR,
            candidate,
            title=title,
            tenants=tenant or (),
            capability=capability,
            target_release=target,
        ),
        installed=True,
    )
    _show([item], fmt)


@roadmap_app.command("pledge")
def pledge_command(
    item: Annotated[int, typer.Argument(help="The roadmap item's id.")],
    tenant: Annotated[str, typer.Argument(help="A tenant the item covers.")],
    amount: Annotated[
        str, typer.Argument(help="A decimal amount in the currency's major unit, e.g. 12500.00.")
    ],
    currency: Annotated[str, typer.Argument(help="ISO 4217 code, e.g. EUR.")],
    note: Annotated[str | None, typer.Option(help="Why, budget line, conditions.")] = None,
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Record a tenant's pledge for an item; pledging again replaces it (audited)."""
    shown = run_with_services(
        database_url,
        lambda s: s.roadmap.pledge(CLI_ACTOR, item, tenant, amount, currency, note),
        installed=True,
    )
    _show([shown], fmt)


@roadmap_app.command("update")
def update_command(
    item: Annotated[int, typer.Argument(help="The roadmap item's id.")],
    status: Annotated[
        RoadmapStatus | None,
        typer.Option(help="proposed or committed (shipped: by registering the release)."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target release.")] = None,
    add_tenant: Annotated[
        list[str] | None, typer.Option("--add-tenant", help="Cover this tenant (repeatable).")
    ] = None,
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Commit an item, set its target release, cover more tenants (audited)."""
    shown = run_with_services(
        database_url,
        lambda s: s.roadmap.update(
            CLI_ACTOR, item, status=status, target_release=target, add_tenants=add_tenant or ()
        ),
        installed=True,
    )
    _show([shown], fmt)


@roadmap_app.command("list")
def list_command(
    status: Annotated[RoadmapStatus | None, typer.Option(help="Only items in this status.")] = None,
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Roadmap items, ranked by tenants covered and upgrade cost avoided; pledges beside."""
    items = run_with_services(
        database_url, lambda s: s.roadmap.items(CLI_ACTOR, status), installed=True
    )
    _show(items, fmt)
