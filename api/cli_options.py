"""Options shared by the CLI's commands (a module of its own: the command modules
import it, and ``api.cli`` imports them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.product import Product, ProductError

if TYPE_CHECKING:
    from plugins.runtime import PluginRuntime

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="TAILOR_DATABASE_URL",
        help="SQLAlchemy URL; default: a SQLite file tailor.db in the working directory.",
        show_envvar=True,
    ),
]


def cli_product() -> Product:
    """The host product (``TAILOR_PRODUCT`` or the installed product plugin); a bad
    declaration prints every problem and exits with status 2."""
    from plugins.product import load_product

    try:
        return load_product()
    except ProductError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


def cli_runtime(product: Product, **options: Any) -> PluginRuntime:
    """The plugin runtime for ``product``'s catalog (customizations loaded)."""
    from plugins.catalog import Catalog
    from plugins.runtime import PluginRuntime, RuntimeOptions

    return PluginRuntime.load(RuntimeOptions(**options), Catalog.for_product(product))
