"""``tailor setting``: an operator's override writes on the local database, and
``tailor tenant protect``. A protected environment is written only through an
approved change request, or with ``--break-glass --reason`` (audited)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import (
    CLI_ACTOR,
    BreakGlassOption,
    DatabaseOption,
    break_glass,
    err,
    out,
    run_with_services,
)

if TYPE_CHECKING:
    from core.store.changes import ChangeRequest
    from core.store.services import Services
    from core.store.settings import SettingChange


setting_app = typer.Typer(
    help="Setting overrides (operators, local database; audited).", no_args_is_help=True
)

EnvironmentOption = Annotated[
    str | None,
    typer.Option("--environment", "-e", help="The environment (default: tenant-wide)."),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")]


def parse_value(text: str) -> Any:
    """VALUE as JSON (45, true, 1.5, "text", ["a"], {...}); anything that is not
    JSON is the string itself (dark, weekly)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _said(change: SettingChange, glass: bool) -> None:
    where = f" in {change.environment}" if change.environment else " (tenant-wide)"
    shown = "<secret>" if change.definition is not None and change.definition.secret else None
    value = shown or json.dumps(change.new)
    what = f"= {value}" if change.action == "set" else "reset"
    out.print(
        f"{change.tenant}: {change.key} {what}{where}; revision {change.revision}"
        + ("; break-glass (audited)" if glass else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@setting_app.command("set")
def setting_set(
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    key: Annotated[str, typer.Argument(help="The setting's key.")],
    value: Annotated[
        str, typer.Argument(help='The value, as JSON (45, true, "x"); else a plain string.')
    ],
    reason: ReasonOption,
    environment: EnvironmentOption = None,
    glass: BreakGlassOption = False,
    expected_revision: Annotated[
        int | None,
        typer.Option("--expected-revision", help="Refuse unless the override is at it."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set TENANT's override of KEY (in --environment E, else tenant-wide). On a
    protected environment (tenant-wide: while any is) it is refused: propose a change
    request, or, in an emergency, --break-glass --reason "..." (audited). Exit 2 on
    any refusal; nothing is written then."""
    authorization = break_glass(glass, reason)
    parsed = parse_value(value)

    async def go(services: Services) -> SettingChange:

        return await services.settings.set(
            CLI_ACTOR,
            tenant,
            key,
            parsed,
            environment=environment,
            expected_revision=expected_revision,
            reason=reason,
            authorization=authorization,
        )

    _said(run_with_services(database_url, go), glass)


@setting_app.command("reset")
def setting_reset(
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    key: Annotated[str, typer.Argument(help="The setting's key.")],
    reason: ReasonOption,
    environment: EnvironmentOption = None,
    glass: BreakGlassOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Remove TENANT's override of KEY so the next layer down applies. Protected
    environments: as 'tailor setting set'."""
    authorization = break_glass(glass, reason)

    async def go(services: Services) -> SettingChange:

        return await services.settings.reset(
            CLI_ACTOR,
            tenant,
            key,
            environment=environment,
            reason=reason,
            authorization=authorization,
        )

    _said(run_with_services(database_url, go), glass)


def tenant_protect(
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    environment: Annotated[str, typer.Argument(help="The environment, e.g. production.")],
    off: Annotated[
        bool, typer.Option("--off", help="Remove the protection (needs --break-glass).")
    ] = False,
    approvals: Annotated[
        int | None,
        typer.Option("--approvals", min=1, help="Approvals a change request needs (default 1)."),
    ] = None,
    glass: BreakGlassOption = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required with --break-glass).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Protect ENVIRONMENT of TENANT: from now on its changes (and the tenant's
    tenant-wide overrides, customization enablements, pins and upgrades) are change
    requests another principal approves. --off (or fewer --approvals) weakens it: a
    change request itself, or here --break-glass --reason "..." (audited)."""
    if off and not glass:
        err.print(
            "error: removing a protection is a change request "
            "(setEnvironmentProtection); the operator's path is --off --break-glass "
            '--reason "..." (audited)',
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    authorization = break_glass(glass, reason)

    async def go(services: Services) -> ChangeRequest:

        return await services.changes.protect(
            CLI_ACTOR,
            tenant,
            environment,
            not off,
            approvals,
            reason,
            break_glass=authorization,
        )

    request = run_with_services(database_url, go)
    if request.state.value == "pending":
        out.print(
            f"change request {request.id}: {request.summary} of {tenant}: awaiting "
            f"{request.required_approvals} approval(s)",
            highlight=False,
            markup=False,
        )
        return
    out.print(
        f"{tenant}: {request.summary}" + ("; break-glass (audited)" if glass else ""),
        highlight=False,
        markup=False,
    )


change_app = typer.Typer(
    help="Changes on the change feed: revert one (operators, local database; audited).",
    no_args_is_help=True,
)


@change_app.command("revert")
def change_revert(
    sequence: Annotated[
        int, typer.Argument(help="The change's sequence on the change feed (settingsChanged).")
    ],
    reason: ReasonOption,
    glass: BreakGlassOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Apply the inverse of change SEQUENCE (an override set or reset, a
    customization enabled or disabled, a version pin; a direct write's or an
    applied change request's) as a new, audited change. Where protected it becomes
    a change request another principal approves (or, in an emergency,
    --break-glass). A later edit of the same thing, or a change with no inverse
    (an upgrade, a release import, a triage decision), is refused: exit 2, nothing
    written."""
    authorization = break_glass(glass, reason)

    async def go(services: Services) -> ChangeRequest:

        return await services.changes.revert(CLI_ACTOR, sequence, reason, break_glass=authorization)

    request = run_with_services(database_url, go)
    if request.state.value == "pending":
        out.print(
            f"change request {request.id}: {request.summary} of {request.tenant} (reverts "
            f"change {request.reverts}): awaiting {request.required_approvals} approval(s)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    out.print(
        f"{request.tenant}: {request.summary} (reverts change {request.reverts}); "
        f"change request {request.id} {request.state.value}"
        + ("; break-glass (audited)" if glass else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
