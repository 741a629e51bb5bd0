"""``tailor release export|import|diff|list`` and ``tailor readiness``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import (
    CLI_ACTOR,
    DatabaseOption,
    DocumentFormat,
    ReportFormat,
    cli_product,
    err,
    open_services,
    out,
    run,
    run_with_services,
)
from core.analysis.readiness.vocabulary import Severity
from core.model.errors import NotFoundError, TailorError
from core.model.manifest_io import ManifestFormat
from core.store.bootstrap import product_manifest

if TYPE_CHECKING:
    from core.analysis.release_diff import ReleaseDiff
    from core.model.manifest import ReleaseInfo, ReleaseManifest
    from core.store.services import Services

release_app = typer.Typer(
    help="Release manifests: export, import, diff, list.", no_args_is_help=True
)


@release_app.command("export")
def release_export(
    version: Annotated[
        str | None, typer.Option("--version", help="Release to export (default: the running one).")
    ] = None,
    fmt: Annotated[
        ManifestFormat, typer.Option("--format", help="toml or json.")
    ] = ManifestFormat.TOML,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write a release's manifest (settings, hooks, supersedes): the running
    product's releases from its declaration, planned (imported) ones from the
    database."""
    from core.model.manifest_io import dumps
    from plugins.catalog import tailor_extension_points

    product = cli_product()

    async def go() -> str:
        v = version or product.version
        if v in product.release_history:
            return dumps(product_manifest(product, v, tailor_extension_points), fmt)
        try:
            services = await open_services(database_url)
            try:
                return dumps(await services.releases.manifest(v, CLI_ACTOR), fmt)
            finally:
                await services.close()
        except TailorError as exc:
            raise NotFoundError(
                "release",
                v,
                f"{product.name}'s releases are {', '.join(product.release_history)}; "
                f"planned releases come from the database: {exc.message}",
            ) from None

    text = run(go)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")


@release_app.command("import")
def release_import(
    file: Annotated[Path, typer.Argument(help="Manifest file (.toml, or .json).")],
    fmt: Annotated[
        ManifestFormat | None, typer.Option("--format", help="Default: from the file suffix.")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the planned release of that version.")
    ] = False,
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            help="FILE is a fragment ('tailor foldback propose'): merge it into planned "
            "release V, created from the current release when it does not exist yet.",
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a planned release from a manifest file, validated fully first, and
    warn where it contradicts another planned release. Its tailor_* hooks are those
    of the Tailor hook API it names (tailor_hook_api; default: this Tailor's).
    With --into V, FILE is a fragment merged into planned release V."""
    from core.model.manifest_io import load_file, load_fragment
    from plugins.catalog import with_hook_api

    if into is not None:
        if replace:
            err.print("error: --replace and --into do not go together", highlight=False)
            raise typer.Exit(2)

        async def merge() -> tuple[ReleaseInfo, ReleaseManifest, list[str]]:
            fragment = load_fragment(file, fmt)
            services = await open_services(database_url)
            try:
                return await services.releases.import_fragment(fragment, into, CLI_ACTOR)
            finally:
                await services.close()

        info, merged, warnings = run(merge)
        out.print(
            f"merged {file.name} into planned release {info.version}: "
            f"{info.setting_count} settings, "
            f"supersedes {', '.join(merged.supersedes) or 'nothing'}, "
            f"{len(merged.migrations)} tenant migration(s)",
            highlight=False,
        )
        for warning in warnings:
            err.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
        return

    async def go() -> tuple[ReleaseInfo, ReleaseManifest, list[str]]:
        manifest = with_hook_api(load_file(file, fmt))
        services = await open_services(database_url)
        try:
            info, warnings = await services.releases.import_planned(
                manifest, CLI_ACTOR, replace=replace
            )
            return info, manifest, warnings
        finally:
            await services.close()

    info, manifest, warnings = run(go)
    out.print(
        f"{'replaced' if replace else 'registered'} planned release {info.version}: "
        f"{info.setting_count} settings, "
        f"{len(manifest.extension_points)} extension points, "
        f"supersedes {', '.join(manifest.supersedes) or 'nothing'}",
        highlight=False,
    )
    for warning in warnings:
        err.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)


@release_app.command("delete")
def release_delete(
    version: Annotated[str, typer.Argument(help="The planned release to delete.")],
    database_url: DatabaseOption = None,
) -> None:
    """Delete a planned release while no tenant is on it. Released releases stay."""

    async def go() -> None:
        services = await open_services(database_url)
        try:
            await services.releases.delete(version, CLI_ACTOR)
        finally:
            await services.close()

    run(go)
    out.print(f"deleted planned release {version}", highlight=False)


@release_app.command("list")
def release_list(
    database_url: DatabaseOption = None,
) -> None:
    """Registered releases, oldest first."""
    from rich.table import Table

    table = Table()
    for col in ("version", "status", "settings", "extension points", "supersedes"):
        table.add_column(col)
    for r in run_with_services(
        database_url, lambda services: services.releases.list_all(CLI_ACTOR)
    ):
        table.add_row(
            r.version,
            r.status,
            str(r.setting_count),
            str(len(r.manifest.get("extension_points", []))),
            ", ".join(r.supersedes),
        )
    out.print(table)


def _is_file(ref: str) -> bool:
    """Whether ``ref`` names a manifest file rather than a version (a name the OS
    refuses, e.g. a 5,000-digit version, is no file: it is looked up as a version)."""
    try:
        return Path(ref).is_file()
    except (OSError, ValueError):  # ENAMETOOLONG, or a NUL byte
        return False


@release_app.command("diff")
def release_diff(
    a: Annotated[str, typer.Argument(help="From: a registered version or a manifest file.")],
    b: Annotated[str, typer.Argument(help="To: a registered version or a manifest file.")],
    fmt: Annotated[DocumentFormat, typer.Option("--format")] = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """The changelog from A to B: the product's hooks and settings added, removed,
    renamed, deprecated, changed, and one line when the Tailor hook API changes."""
    from api.cli.render import diff_json, diff_markdown, diff_table
    from core.analysis.release_diff import diff
    from core.model.manifest_io import load_file
    from plugins.catalog import with_hook_api

    files = {ref for ref in (a, b) if _is_file(ref)}

    async def go() -> ReleaseDiff:
        manifests: dict[str, ReleaseManifest] = {}
        services: Services | None = None
        try:
            for ref in (a, b):
                if ref in files:
                    manifests[ref] = with_hook_api(load_file(ref))
                    continue
                services = services or await open_services(database_url)
                manifests[ref] = await services.releases.manifest(ref, CLI_ACTOR)
        finally:
            if services is not None:
                await services.close()
        return diff(manifests[a], manifests[b])

    result = run(go)
    if fmt is DocumentFormat.JSON:
        print(diff_json(result))
    elif fmt is DocumentFormat.MARKDOWN:
        print(diff_markdown(result), end="")
    else:
        diff_table(result, out)


def readiness_command(
    target: Annotated[str, typer.Option("--target", help="The release to upgrade to.")],
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Only this tenant (repeat).")
    ] = None,
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", help="table, json, markdown or html (a standalone page)."),
    ] = ReportFormat.TABLE,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Add the long tables: every tenant, every finding, every customization "
            "and the whole unblock plan (a 10,000-tenant fleet has over 100,000 findings). "
            "Default: the summary (counts, findings by code, the first 10 unblock steps, "
            "triage notes). Example: tailor readiness --target 3.0 --tenant acme --full",
        ),
    ] = False,
    min_severity: Annotated[
        Severity,
        typer.Option(
            "--min-severity",
            help="Show only findings at least this serious (blocker > warning > unknown > info).",
        ),
    ] = Severity.INFO,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep/--no-keep",
            help="Keep this run, so the next one shows what is new and what was resolved.",
        ),
    ] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Can the tenants go to TARGET? A summary by default: tenants per status,
    findings by code, the first steps of the unblock plan, triage notes and what
    changed since the previous run; with --full, every tenant's findings (with their
    triage, new since the previous run), every customization's status and the whole
    unblock plan. Exit status 1 when any tenant in scope has a blocker no valid
    waiver covers, 2 on bad input.

    Examples: tailor readiness --target 3.0; tailor readiness --target 3.0 --full
    --format markdown > readiness.md"""
    import sys

    from api.cli.render import render_readiness
    from api.report import CLI_SUMMARY, FULL, ReadinessView

    report = run_with_services(
        database_url,
        lambda services: services.triage.triaged(
            CLI_ACTOR, target, tenant or None, keep=keep, minimum=min_severity.value
        ),
        installed=True,
    )
    view = ReadinessView(report, FULL if full else CLI_SUMMARY)
    render_readiness(view, fmt.value, sys.stdout, out)
    if report.any_blocked:
        raise typer.Exit(1)
