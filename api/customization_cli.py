"""``tailor customization check|publish|list|enable`` and ``tailor doctor``."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli_options import DatabaseOption as DatabaseUrl
from api.cli_options import cli_product, cli_runtime
from core.auth import Principal
from core.product import Product
from core.services import Services
from plugins.catalog import Catalog
from plugins.loading import Source, _package_dirs, load_all
from plugins.runtime import PluginRuntime, RuntimeOptions
from plugins.status import statuses
from plugins.wiring import DemoPublishReport, attach, publish_installed

CLI_ACTOR = "cli"

customization_app = typer.Typer(
    help="Consultant customizations: check one before you ship it, publish it to the "
    "registry, enable it per tenant, list what is installed and registered.\n\n"
    "A customization is a package directory with a customization.toml (name, version, "
    "tenants, requires, tested_up_to, capability, description, author) and a hooks.py "
    'whose functions are marked with pluggy.HookimplMarker("tailor").',
    no_args_is_help=True,
)


async def publish_demo_customizations(services: Services, product: Product) -> DemoPublishReport:
    """Publish the installed sample customizations and enable them for their tenants."""
    runtime = cli_runtime(product)
    attach(services, runtime)
    return await publish_installed(services, runtime, Principal.system("demo-seed"))


@customization_app.command("check")
def check(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Customization directories (or directories of them) to check.",
            show_default=False,
        ),
    ],
    release: Annotated[
        str | None,
        typer.Option(help="Check 'requires' against this product release (default: running)."),
    ] = None,
) -> None:
    """Report EVERY problem at once, compiler style (file:field: message): manifest
    fields, invalid PEP 440 specifiers, import errors, unknown hooks, parameters a
    hookspec lacks, a 'requires' that excludes the release, name collisions.
    Exit status 2 when there is any problem; nothing is stored.

    Example: tailor customization check customizations/northwind_credit_policy
    """
    from api.cli import err, out

    sources: list[Source] = []
    for path in paths:
        found = _package_dirs(path)
        sources.extend(Source(p, "check") for p in (found or [path]))
    loaded = load_all(sources, Catalog.for_product(cli_product()), release)
    problems = 0
    for item in loaded:
        for problem in item.problems:
            out.print(str(problem), highlight=False, soft_wrap=True, markup=False)
            problems += 1
        for warning in item.warnings:
            file = item.source.path / "hooks.py"
            out.print(f"{file}: warning: {warning}", highlight=False, soft_wrap=True, markup=False)
        if not item.refused:
            hooks = ", ".join(h.hook for h in item.hooks)
            err.print(f"ok {item.name} {item.manifest.version if item.manifest else ''} ({hooks})")
    if problems:
        err.print(
            f"{problems} problem(s) in {sum(1 for i in loaded if i.refused)} customization(s)"
        )
        raise typer.Exit(2)


@customization_app.command("publish")
def publish(
    path: Annotated[Path, typer.Argument(help="The customization's directory.")],
    enable: Annotated[
        bool, typer.Option("--enable", help="Also enable it for every tenant it lists.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Check PATH and store its registration (manifest, hooks and the parameters each
    uses, setting keys, code fingerprints). Publishing a newer version updates the
    registration; a name another package uses is refused. Exit 2 on any problem.

    Example: tailor customization publish customizations/hooli_ui_defaults --enable
    """
    from api.cli import out, run_with_services

    catalog = Catalog.for_product(cli_product())

    async def go(services: Services):  # noqa: ANN202
        runtime = PluginRuntime(catalog, RuntimeOptions(directories=[]))
        attach(services, runtime)
        principal = Principal.system(CLI_ACTOR)
        registration = await runtime.publish(principal, path)
        enabled = []
        if enable:
            for tenant in registration.manifest.tenants:
                await services.registry.set_enabled(principal, tenant, registration.name, True)
                enabled.append(tenant)
        return registration, enabled

    registration, enabled = run_with_services(database_url, go)
    hooks = ", ".join(f"{h.hook}({', '.join(h.params)})" for h in registration.hooks)
    out.print(
        f"published {registration.name} {registration.manifest.version}: {hooks}"
        + (f"; enabled for {', '.join(enabled)}" if enabled else ""),
        highlight=False,
        soft_wrap=True,
    )


@customization_app.command("enable")
def enable_command(
    name: Annotated[str, typer.Argument(help="The customization's name.")],
    tenant: Annotated[str, typer.Argument(help="A tenant its manifest lists.")],
    disable: Annotated[bool, typer.Option("--disable", help="Turn it off instead.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Turn a published customization on (or off with --disable) for one tenant."""
    from api.cli import out, run_with_services

    async def go(services: Services):  # noqa: ANN202
        return await services.registry.set_enabled(
            Principal.system(CLI_ACTOR), tenant, name, not disable
        )

    registration = run_with_services(database_url, go)
    out.print(
        f"{registration.name}: enabled for {', '.join(registration.enabled_for) or 'no tenant'}"
    )


class ListFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


@customization_app.command("list")
def list_command(
    tenant: Annotated[str | None, typer.Option(help="Only those made for this tenant.")] = None,
    capability: Annotated[str | None, typer.Option(help="Only this capability.")] = None,
    format: Annotated[ListFormat, typer.Option(help="table or json.")] = ListFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """Customizations installed here and/or registered, with their state per tenant,
    hooks and health (calls, failures)."""
    from api.cli import out, run_with_services

    product = cli_product()

    async def go(services: Services):  # noqa: ANN202
        principal = Principal.system(CLI_ACTOR)
        registrations = await services.registry.list(principal, tenant, capability)
        runtime = cli_runtime(product)
        return statuses(
            registrations, runtime.installed(), runtime.refused(), principal, tenant, capability
        )

    found = run_with_services(database_url, go)
    if format is ListFormat.JSON:
        rows = [
            {
                "name": s.name,
                "version": s.manifest.version if s.manifest else None,
                "capability": s.manifest.capability if s.manifest else None,
                "tenants": list(s.manifest.tenants) if s.manifest else [],
                "installed": s.installed is not None,
                "registered": s.registration is not None,
                "enabled_for": list(s.registration.enabled_for) if s.registration else [],
                "refused": [str(p) for p in s.problems],
                "hooks": [h.hook for h in s.hooks],
                "calls": s.health.calls,
                "failures": s.health.failures,
            }
            for s in found
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in ("name", "version", "capability", "enabled for", "state", "hooks", "calls/fail"):
        table.add_column(col)
    for s in found:
        state = []
        if s.installed is not None:
            state.append("installed")
        if s.problems:
            state.append("refused")
        if s.registration is not None:
            state.append("registered")
        table.add_row(
            s.name,
            s.manifest.version if s.manifest else "?",
            (s.manifest.capability or "") if s.manifest else "",
            ", ".join(s.registration.enabled_for) if s.registration else "",
            ", ".join(state),
            ", ".join(h.hook for h in s.hooks),
            f"{s.health.calls}/{s.health.failures}",
        )
    out.print(table)


def doctor(database_url: DatabaseUrl = None) -> None:
    """Drift between the code installed here and the registry: installed but not
    published, published but not installed (or refused), version mismatches. Also
    lists refused customizations with their reasons. Exit status 1 on drift."""
    from api.cli import out, run_with_services

    product = cli_product()

    async def go(services: Services):  # noqa: ANN202
        principal = Principal.system(CLI_ACTOR)
        registrations = await services.registry.list(principal)
        runtime = cli_runtime(product)
        return statuses(registrations, runtime.installed(), runtime.refused(), principal)

    found = run_with_services(database_url, go)
    drift = [d for s in found for d in s.drift]
    for s in found:
        for problem in s.problems:
            out.print(f"refused: {problem}", highlight=False, soft_wrap=True, markup=False)
    for d in drift:
        out.print(f"{d.code}: {d.message}", highlight=False, soft_wrap=True, markup=False)
    installed = sum(1 for s in found if s.installed is not None)
    registered = sum(1 for s in found if s.registration is not None)
    out.print(
        f"{installed} installed, {registered} registered, {len(drift)} drift finding(s)",
        highlight=False,
    )
    if drift:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``customization`` sub-app and ``doctor`` to the ``tailor`` CLI."""
    app.add_typer(customization_app, name="customization")
    app.command("doctor")(doctor)
