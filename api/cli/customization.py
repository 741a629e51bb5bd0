"""``tailor customization check|publish|list|enable`` and ``tailor doctor``."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli import scaffold, trial
from api.cli.common import DatabaseOption as DatabaseUrl
from api.cli.common import (
    ListFormat,
    cli_product,
    cli_runtime,
    err,
    out,
    run_with_services,
)
from api.wiring import DemoPublishReport, attach, publish_installed
from core.analysis.readiness import CustomizationReadiness, Severity, check_customization
from core.model.auth import Principal
from core.model.customizations import Observation, Registration
from core.model.manifest import ReleaseManifest
from core.model.product import Product
from core.store.bootstrap import product_manifest
from core.store.services import Services
from plugins.catalog import Catalog
from plugins.evidence import StaticPackage, read_package, unknown_keys
from plugins.loading import Source, _package_dirs
from plugins.manifest import MANIFEST_FILE
from plugins.runtime import PluginRuntime, RuntimeOptions
from plugins.status import CustomizationPresence, statuses

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
        typer.Option(
            help="Run every readiness rule against this release, released or planned "
            "(planned releases are read from the database; default: the running one)."
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Report EVERY problem at once, compiler style (file:field: message): manifest
    fields, invalid PEP 440 specifiers, import errors, unknown hooks, parameters a
    hookspec lacks, name collisions, setting keys the code reads or returns that no
    release of the product defines and no customization registers (a typo: the
    nearest known keys are suggested). Then the readiness rules fleet readiness runs,
    for this package against --release (hooks removed or deprecated, parameters
    removed, experimental hooks, settings removed or deprecated, requires,
    tested_up_to), each with the file:line it comes from, and the hooks and setting
    keys Tailor detected in the source.

    Exit status 2 when there is any problem (or the release is unknown), 1 when the
    release would block the customization, else 0; nothing is stored.

    Example: tailor customization check customizations/northwind_credit_policy --release 3.0
    """
    from plugins.runtime.install import Inspector

    product = cli_product()
    release = release or product.version
    target, history = _release_manifests(product, release, database_url)
    known_keys = frozenset(d.key for m in (target, *history) for d in m.settings)
    categories = key_categories(product, known_keys)
    directories: list[Path] = []
    for path in paths:
        # absolute here: the worker that imports the package runs in another directory
        path = path.resolve()
        directories.extend(_package_dirs(path) or [path])
    packages = {d: read_package(d, categories=categories) for d in directories}
    # keys a customization registers for itself are known to every package checked
    registered = frozenset(k for p in packages.values() for k in p.evidence.registered)
    problems = 0
    blocked = 0

    def say(text: str) -> None:
        out.print(text, highlight=False, soft_wrap=True, markup=False)

    loaded = {}
    if release == product.version:  # the running code: import it (in a worker) and ask pluggy
        inspector = Inspector(Catalog.for_product(product), release)
        try:
            checked = inspector.inspect_all([Source(p, "check") for p in directories])
        finally:
            inspector.close()
        for item in checked:
            loaded[item.source.path] = item
            for problem in item.problems:
                say(str(problem))
                problems += 1
            for warning in item.warnings:
                say(f"{item.source.path / 'hooks.py'}: warning: {warning}")
    for directory in directories:
        package = packages[directory]
        if directory not in loaded:
            for problem in package.problems:
                say(str(problem))
                problems += 1
        unknown = unknown_keys(package.evidence, known_keys, registered)
        for u in unknown:
            say(f"{directory / u.reference.location}: error: {u.message}")
        problems += len(unknown)
        if package.registration is None:
            continue
        result = check_customization(target, package.registration, history)
        blocking = any(f.severity is Severity.BLOCKER for f in result.findings)
        blocked += blocking
        _print_check(say, directory, release, package, result)
        inspected = loaded.get(directory)
        if not blocking and not unknown and (inspected is None or not inspected.refused):
            hooks = ", ".join(h.use.hook for h in package.evidence.hooks)
            m = package.registration.manifest
            err.print(f"ok {m.name} {m.version} ({hooks})", highlight=False, markup=False)
    if problems:
        err.print(f"{problems} problem(s)")
        raise typer.Exit(2)
    if blocked:
        err.print(f"{blocked} customization(s) blocked by {release}")
        raise typer.Exit(1)


def key_categories(product: Product, known_keys: Collection[str]) -> frozenset[str]:
    """What a dotted string must start with to be taken for a setting key: the
    product's categories, and the first segment of every key a release defines
    (the same rule as the static evidence readiness stores at publish)."""
    return frozenset(product.setting_categories or ()) | {k.split(".", 1)[0] for k in known_keys}


def _release_manifests(
    product: Product, version: str, database_url: str | None
) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...]]:
    """The running product's own releases come from its declaration; planned
    (imported) ones from the database."""
    from plugins.catalog import tailor_extension_points

    own = {
        v: product_manifest(product, v, tailor_extension_points) for v in product.release_history
    }
    if version in own:
        return own[version], tuple(m for v, m in own.items() if v != version)

    async def go(services: Services) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...]]:
        return await services.readiness.release_manifests(Principal.system(CLI_ACTOR), version)

    return run_with_services(database_url, go)


def _print_check(
    say: Callable[[str], None],
    directory: Path,
    release: str,
    package: StaticPackage,
    result: CustomizationReadiness,
) -> None:
    """What Tailor detected in the package, then its findings, compiler style."""
    evidence = package.evidence
    say(
        f"{result.name} {result.version} against {release}: {result.status.value} "
        f"(stability level {result.level})"
    )
    for h in evidence.hooks:
        say(f"  hook {h.use.hook}({', '.join(h.use.params)})  {h.use.location} {h.qualname}")
    for ref in evidence.references:
        what = "prefix" if ref.is_prefix else "key"
        say(f"  {what} {ref.key}  {ref.location} ({ref.how})")
    if not evidence.hooks:
        say("  no hook implementation found")
    for f in result.findings:
        static = f.evidence.get("static") or []
        where = static[0].split(" ", 1)[0] if static else MANIFEST_FILE
        say(f"{directory / where}: {f.severity.value}: {f.code.value}: {f.message}")
        say(f"  fix: {f.action}")


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

    catalog = Catalog.for_product(cli_product())

    async def go(services: Services) -> tuple[Registration, list[str]]:
        runtime = PluginRuntime(catalog, RuntimeOptions(directories=[]))
        attach(services, runtime)
        principal = Principal.system(CLI_ACTOR)
        registration = await runtime.publish(principal, path)
        enabled: list[str] = []
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
    # what readiness will use as static evidence, read from the source
    evidence = read_package(path).evidence
    for h in evidence.hooks:
        out.print(
            f"  hook {h.use.hook}({', '.join(h.use.params)})  {h.use.location} {h.qualname}",
            highlight=False,
            markup=False,
        )
    for ref in evidence.references:
        what = "prefix" if ref.is_prefix else "key"
        out.print(f"  {what} {ref.key}  {ref.location} ({ref.how})", highlight=False, markup=False)


@customization_app.command("enable")
def enable_command(
    name: Annotated[str, typer.Argument(help="The customization's name.")],
    tenant: Annotated[str, typer.Argument(help="A tenant its manifest lists.")],
    disable: Annotated[bool, typer.Option("--disable", help="Turn it off instead.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Turn a published customization on (or off with --disable) for one tenant."""

    async def go(services: Services) -> Registration:
        return await services.registry.set_enabled(
            Principal.system(CLI_ACTOR), tenant, name, not disable
        )

    registration = run_with_services(database_url, go)
    out.print(
        f"{registration.name}: enabled for {', '.join(registration.enabled_for) or 'no tenant'}"
    )


@customization_app.command("list")
def list_command(
    tenant: Annotated[str | None, typer.Option(help="Only those made for this tenant.")] = None,
    capability: Annotated[str | None, typer.Option(help="Only this capability.")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    database_url: DatabaseUrl = None,
) -> None:
    """Customizations installed here and/or registered, with their state per tenant,
    hooks and health (calls, failures)."""

    product = cli_product()

    async def go(
        services: Services,
    ) -> tuple[list[CustomizationPresence], list[Observation]]:
        principal = Principal.system(CLI_ACTOR)
        registrations = await services.registry.list_all(principal, tenant, capability)
        seen = await services.observations.list_all(principal, tenant=tenant)
        runtime = cli_runtime(product)
        found = statuses(
            registrations, runtime.installed(), runtime.refused(), principal, tenant, capability
        )
        return found, seen

    found, seen = run_with_services(database_url, go)
    observed: dict[str, list] = {}
    for o in seen:
        observed.setdefault(o.customization, []).append(o)
    if fmt is ListFormat.JSON:
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
                "observations": [
                    {
                        "tenant": o.tenant,
                        "hook": o.hook,
                        "calls": o.calls,
                        "failures": o.failures,
                        "changed": o.changed,
                        "latency_p50_ms": o.latency_p50_ms,
                        "latency_p95_ms": o.latency_p95_ms,
                        "last_error": o.last_error,
                        "last_seen": o.last_seen.isoformat(),
                        "keys_read": sorted(o.keys_read),
                        "keys_returned": sorted(o.keys_returned),
                    }
                    for o in observed.get(s.name, [])
                ],
            }
            for s in found
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in (
        "name",
        "version",
        "capability",
        "enabled for",
        "state",
        "hooks",
        "calls/fail",
        "p95 ms",
        "keys read/returned",
    ):
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
            _p95(observed.get(s.name, [])),
            _keys(observed.get(s.name, [])),
        )
    out.print(table)


def _p95(observations: list) -> str:
    values = [o.latency_p95_ms for o in observations if o.latency_p95_ms is not None]
    return f"{max(values):g}" if values else ""


def _keys(observations: list) -> str:
    read = set().union(*(o.keys_read for o in observations)) if observations else set()
    returned = set().union(*(o.keys_returned for o in observations)) if observations else set()
    return f"{len(read)}/{len(returned)}" if observations else ""


def doctor(database_url: DatabaseUrl = None) -> None:
    """Drift between the code installed here and the registry: installed but not
    published, published but not installed (or refused), version mismatches. Also
    lists refused customizations with their reasons. Exit status 1 on drift."""

    product = cli_product()

    async def go(services: Services) -> list[CustomizationPresence]:
        principal = Principal.system(CLI_ACTOR)
        registrations = await services.registry.list_all(principal)
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
    scaffold.register(customization_app)
    trial.register(customization_app)
    app.command("doctor")(doctor)
