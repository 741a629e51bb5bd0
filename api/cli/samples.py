"""``tailor tenant record`` and ``tailor tenant samples``: a tenant's recorded hook
inputs (issue 24; :mod:`core.store.samples`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from api.cli.common import CLI_ACTOR, DatabaseOption, ListFormat, out, run_with_services

if TYPE_CHECKING:
    from core.model.samples import InputSample, RecordingPolicy
    from core.store.services import Services


def tenant_record(
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="Days a sample is kept (default 30, or as set before)."),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples",
            min=1,
            help="Samples kept per customization and hook, the newest (default 20).",
        ),
    ] = None,
    off: Annotated[
        bool,
        typer.Option(
            "--off",
            help="Stop recording (what was recorded stays until its days are over; "
            "'tailor tenant samples T --delete' deletes it).",
        ),
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Record what TENANT's customizations' hooks receive (for upgrade rehearsals):
    at most --samples per customization and hook, kept --days days, sealed with
    TAILOR_SECRET_KEY (refused without it), secret settings removed. Audited.
    Running servers follow within seconds."""

    async def go(services: Services) -> RecordingPolicy:

        return await services.samples.set_policy(CLI_ACTOR, tenant, not off, days, samples)

    policy = run_with_services(database_url, go)
    if not policy.enabled:
        out.print(
            f"{tenant}: recording off (samples kept {policy.retention_days} days; "
            f"delete them: tailor tenant samples {tenant} --delete)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    out.print(
        f"{tenant}: recording on: at most {policy.samples} samples per customization "
        f"and hook, kept {policy.retention_days} days",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def tenant_samples(
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete every recorded sample (audited).")
    ] = False,
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """TENANT's recorded hook inputs (never a secret setting), or --delete them."""

    actor = CLI_ACTOR
    if delete:
        deleted = run_with_services(
            database_url, lambda services: services.samples.delete_samples(actor, tenant)
        )
        out.print(f"{tenant}: {deleted} sample(s) deleted", highlight=False, markup=False)
        return

    async def go(services: Services) -> tuple[RecordingPolicy, list[InputSample]]:
        policy = await services.samples.policy(actor, tenant)
        return policy, await services.samples.list_samples(actor, tenant)

    policy, found = run_with_services(database_url, go)
    if fmt is ListFormat.JSON:
        print(
            json.dumps(
                {
                    "tenant": tenant,
                    "recording": {
                        "enabled": policy.enabled,
                        "retention_days": policy.retention_days,
                        "samples": policy.samples,
                    },
                    "samples": [
                        {
                            "id": s.id,
                            "environment": s.environment,
                            "customization": s.customization,
                            "version": s.version,
                            "hook": s.hook,
                            "inputs": s.inputs,
                            "recorded_at": s.recorded_at.isoformat(),
                        }
                        for s in found
                    ],
                },
                indent=2,
                default=str,
            )
        )
        return
    state = "on" if policy.enabled else "off"
    out.print(
        f"{tenant}: recording {state} ({policy.samples} per customization and hook, "
        f"{policy.retention_days} days); {len(found)} sample(s)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if not found:
        return
    table = Table()
    for col in ("id", "recorded", "customization", "version", "hook", "environment", "inputs"):
        table.add_column(col)
    for s in found:
        table.add_row(
            s.id,
            s.recorded_at.strftime("%Y-%m-%d %H:%M"),
            s.customization,
            s.version,
            s.hook,
            s.environment or "",
            json.dumps(s.inputs, default=str, sort_keys=True)[:120],
        )
    out.print(table)
