"""``tailor webhook add|list|remove|resume|deliveries``: receivers of the change feed,
on the local database, as the operator (admin)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from api.cli.common import CLI_ACTOR, DatabaseOption, ListFormat, err, out, run_with_services

if TYPE_CHECKING:
    from core.store.services import Services
    from core.store.webhooks import AttemptInfo, WebhookInfo

webhook_app = typer.Typer(
    help="Webhooks: every change POSTed to a URL, signed (Tailor-Signature).",
    no_args_is_help=True,
)

IdArgument = Annotated[int, typer.Argument(help="The webhook's id, as 'webhook list' shows.")]


def _webhook_dict(w: WebhookInfo) -> dict[str, object]:
    return {
        "id": w.id,
        "url": w.url,
        "events": list(w.events),
        "tenants": list(w.tenants),
        "state": w.state,
        "paused_reason": w.paused_reason,
        "cursor": w.cursor,
        "attempts": w.attempts,
        "next_attempt_at": w.next_attempt_at.isoformat() if w.next_attempt_at else None,
        "created_at": w.created_at.isoformat(),
        "created_by": w.created_by,
    }


def _attempt_dict(a: AttemptInfo) -> dict[str, object]:
    return {
        "delivery": a.delivery,
        "sequence": a.sequence,
        "attempt": a.attempt,
        "at": a.at.isoformat(),
        "status_code": a.status_code,
        "error": a.error,
        "latency_ms": a.latency_ms,
        "outcome": a.outcome,
    }


@webhook_app.command("add")
def webhook_add(
    url: Annotated[str, typer.Argument(help="http(s) URL of the receiver.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="A change feed action to deliver (repeat; default: all)."),
    ] = None,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="A tenant whose changes to deliver (repeat; default: all)."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a webhook and print its signing secret once (stored encrypted: needs
    TAILOR_SECRET_KEY). It delivers the changes committed from now on."""

    async def add(services: Services) -> tuple[WebhookInfo, str]:
        return await services.webhooks.create(CLI_ACTOR, url, event or (), tenant or ())

    info, secret = run_with_services(database_url, add)
    err.print(
        f"created webhook {info.id} -> {info.url} (events: {', '.join(info.events) or 'all'}; "
        f"tenants: {', '.join(info.tenants) or 'all'}); its signing secret, not shown again:",
        highlight=False,
        soft_wrap=True,
    )
    print(secret)


@webhook_app.command("list")
def webhook_list(
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Every webhook: URL, filters, state, cursor (never the secret)."""
    found = run_with_services(database_url, lambda services: services.webhooks.list_all(CLI_ACTOR))
    if fmt is ListFormat.JSON:
        print(json.dumps([_webhook_dict(w) for w in found], indent=2))
        return
    table = Table()
    for col in ("id", "url", "events", "tenants", "state", "cursor", "attempts"):
        table.add_column(col)
    for w in found:
        state = w.state + (f" ({w.paused_reason})" if w.paused_reason else "")
        table.add_row(
            str(w.id),
            w.url,
            ", ".join(w.events) or "all",
            ", ".join(w.tenants) or "all",
            state,
            str(w.cursor),
            str(w.attempts),
        )
    out.print(table)


@webhook_app.command("remove")
def webhook_remove(webhook: IdArgument, database_url: DatabaseOption = None) -> None:
    """Delete a webhook and its delivery log."""
    info = run_with_services(
        database_url, lambda services: services.webhooks.delete(CLI_ACTOR, webhook)
    )
    out.print(f"removed webhook {info.id} ({info.url})", highlight=False, soft_wrap=True)


@webhook_app.command("resume")
def webhook_resume(webhook: IdArgument, database_url: DatabaseOption = None) -> None:
    """Resume a paused webhook: the change it failed on is tried again."""
    info = run_with_services(
        database_url, lambda services: services.webhooks.resume(CLI_ACTOR, webhook)
    )
    out.print(f"webhook {info.id} is {info.state}; next change after {info.cursor}")


@webhook_app.command("deliveries")
def webhook_deliveries(
    webhook: IdArgument,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Every delivery attempt, newest first: status, error, latency."""
    found = run_with_services(
        database_url, lambda services: services.webhooks.deliveries(CLI_ACTOR, webhook, limit)
    )
    if fmt is ListFormat.JSON:
        print(json.dumps([_attempt_dict(a) for a in found], indent=2))
        return
    table = Table()
    for col in ("at", "delivery", "attempt", "status", "latency ms", "outcome", "error"):
        table.add_column(col)
    for a in found:
        table.add_row(
            a.at.isoformat(timespec="seconds"),
            a.delivery,
            str(a.attempt),
            str(a.status_code or "-"),
            f"{a.latency_ms:.1f}",
            a.outcome,
            a.error or "",
        )
    out.print(table)
