"""``tailor release export|import|diff|list`` and ``tailor readiness``."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from api.cli_options import DatabaseOption, cli_product
from core.auth import Principal
from core.bootstrap import product_manifest
from core.errors import InvalidInputError

release_app = typer.Typer(
    help="Release manifests: export, import, diff, list.", no_args_is_help=True
)

CLI_ACTOR = Principal.system("cli")


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"


class FileFormat(enum.StrEnum):
    TOML = "toml"
    JSON = "json"


@release_app.command("export")
def release_export(
    version: Annotated[
        str | None, typer.Option("--version", help="Release to export (default: the running one).")
    ] = None,
    fmt: Annotated[FileFormat, typer.Option("--format", help="toml or json.")] = FileFormat.TOML,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Write the running code's manifest of a release (settings, hooks, supersedes)."""
    from api.cli import run
    from core.manifest_io import dumps
    from plugins.catalog import tailor_extension_points

    product = cli_product()

    async def go() -> str:
        v = version or product.version
        if v not in product.release_history:
            raise InvalidInputError(
                "version",
                f"{v!r} is not a release of {product.name}; it has "
                f"{', '.join(product.release_history)}",
            )
        return dumps(product_manifest(product, v, tailor_extension_points), fmt)

    text = run(go)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")


@release_app.command("import")
def release_import(
    file: Annotated[Path, typer.Argument(help="Manifest file (.toml, or .json).")],
    fmt: Annotated[
        FileFormat | None, typer.Option("--format", help="Default: from the file suffix.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a planned release from a manifest file, validated fully first."""
    from api.cli import _services, out, run
    from core.manifest_io import load_file
    from core.releases import PLANNED

    async def go():  # noqa: ANN202
        manifest = load_file(file, fmt)
        services = await _services(database_url)
        try:
            planned = type(manifest)(**{**manifest.__dict__, "status": PLANNED})
            info = await services.releases.register(planned, CLI_ACTOR)
            return info, manifest
        finally:
            await services.close()

    info, manifest = run(go)
    out.print(
        f"registered planned release {info.version}: {info.setting_count} settings, "
        f"{len(manifest.extension_points)} extension points, "
        f"supersedes {', '.join(manifest.supersedes) or 'nothing'}",
        highlight=False,
    )


@release_app.command("list")
def release_list(
    database_url: DatabaseOption = None,
) -> None:
    """Registered releases, oldest first."""
    from rich.table import Table

    from api.cli import out, run_with_services

    table = Table()
    for col in ("version", "status", "settings", "extension points", "supersedes"):
        table.add_column(col)
    for r in run_with_services(database_url, lambda services: services.releases.list(CLI_ACTOR)):
        table.add_row(
            r.version,
            r.status,
            str(r.setting_count),
            str(len(r.manifest.get("extension_points", []))),
            ", ".join(r.supersedes),
        )
    out.print(table)


@release_app.command("diff")
def release_diff(
    a: Annotated[str, typer.Argument(help="From: a registered version or a manifest file.")],
    b: Annotated[str, typer.Argument(help="To: a registered version or a manifest file.")],
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """The changelog from A to B: hooks and settings added, removed, renamed,
    deprecated, changed."""
    from api.cli import _services, out, run
    from api.readiness_render import diff_json, diff_markdown, diff_table
    from core.manifest_io import load_file
    from core.release_diff import diff

    files = {ref for ref in (a, b) if Path(ref).is_file()}

    async def go():  # noqa: ANN202
        manifests = {}
        services = None
        try:
            for ref in (a, b):
                if ref in files:
                    manifests[ref] = load_file(ref)
                    continue
                services = services or await _services(database_url)
                manifests[ref] = await services.releases.manifest(ref, CLI_ACTOR)
        finally:
            if services is not None:
                await services.close()
        return diff(manifests[a], manifests[b])

    result = run(go)
    if fmt is OutputFormat.JSON:
        print(diff_json(result))
    elif fmt is OutputFormat.MARKDOWN:
        print(diff_markdown(result), end="")
    else:
        diff_table(result, out)


def readiness_command(
    target: Annotated[str, typer.Option("--target", help="The release to upgrade to.")],
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Only this tenant (repeat).")
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Can the tenants go to TARGET? Findings per tenant, customization statuses and
    the unblock plan. Exit status 1 when any tenant in scope is blocked, 2 on bad input."""
    from api.cli import out, run_with_services
    from api.readiness_render import readiness_json, readiness_markdown, readiness_table

    report = run_with_services(
        database_url,
        lambda services: services.readiness.readiness(CLI_ACTOR, target, tenant or None),
        installed=True,
    )
    if fmt is OutputFormat.JSON:
        print(readiness_json(report))
    elif fmt is OutputFormat.MARKDOWN:
        print(readiness_markdown(report), end="")
    else:
        readiness_table(report, out)
    if report.any_blocked:
        raise typer.Exit(1)
