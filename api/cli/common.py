"""What the CLI's commands share: options, output consoles, running a coroutine with
the services open (a module of its own: the command modules import it, and ``api.cli.main``
imports them, so nothing imports ``api.cli.main`` back)."""

from __future__ import annotations

import asyncio
import enum
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from core.model.auth import Principal
from core.model.config import Config
from core.model.errors import ProductError, TailorError
from core.model.product import Product

if TYPE_CHECKING:
    from core.store.authorization import Authorization
    from core.store.services import Services
    from plugins.runtime import PluginRuntime

#: who the command line acts as: an admin operator, audited as "cli"
CLI_ACTOR = Principal.system("cli")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="TAILOR_DATABASE_URL",
        help="SQLAlchemy URL; default: a SQLite file tailor.db in the working directory.",
        show_envvar=True,
    ),
]


BreakGlassOption = Annotated[
    bool,
    typer.Option(
        "--break-glass",
        help="Write a protected environment without a change request: the operator's one "
        "emergency path, audited (break_glass, on the change feed); needs --reason.",
    ),
]


def break_glass(enabled: bool, reason: str | None) -> Authorization | None:
    """The break-glass authorization of :data:`CLI_ACTOR` when ``--break-glass``
    is given (``--reason`` required: else exit 2), else None."""
    if not enabled:
        return None
    from core.store.authorization import Authorization

    try:
        return Authorization.break_glass(CLI_ACTOR, reason)
    except TailorError as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


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
    """The plugin runtime for ``product``'s catalog, with the customization packages
    found on disk checked (sources to publish: ``demo seed``, ``doctor``, ``list``)."""
    from plugins.catalog import Catalog
    from plugins.runtime import PluginRuntime, RuntimeOptions

    return PluginRuntime.load(RuntimeOptions(**options), Catalog.for_product(product))


def serving_runtime(product: Product, **options: Any) -> PluginRuntime:
    """The plugin runtime a server runs: only the versions the database pins
    (nothing is read from customization folders)."""
    from plugins.catalog import Catalog
    from plugins.runtime import PluginRuntime, RuntimeOptions

    return PluginRuntime(Catalog.for_product(product), RuntimeOptions(**options))


class ListFormat(enum.StrEnum):
    """How a list prints (``tenant list``, ``customization list``)."""

    TABLE = "table"
    JSON = "json"


class DocumentFormat(enum.StrEnum):
    """How a document prints (``release diff``, ``foldback``)."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"


class ReportFormat(enum.StrEnum):
    """How the readiness report prints (``readiness``): a document, or a standalone page."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"


T = TypeVar("T")

#: piped output (reports saved to files, CI logs) gets wide tables, not 80 columns
out = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)
err = Console(stderr=True)


def run(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; expected errors become a message and exit status 2."""
    try:
        return asyncio.run(coro_factory())
    except TailorError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


async def open_services(
    url: str | None, migrate: bool = False, *, stored: bool = False
) -> Services:
    """The services on ``url`` (built once: :meth:`Services.from_engine`), their
    schema made current; ``stored``: readiness judges by the code the database
    stores (``NOT_INSTALLED``), as the servers do."""
    from api.graphql.trusted import schema_check
    from core.store.db import ensure_schema
    from core.store.services import CodeSource, Services

    code = CodeSource.STORED if stored else CodeSource.REGISTERED
    services = Services.from_url(Config.from_env(url).database_url, code=code)
    services.set_document_check(schema_check())
    try:
        await ensure_schema(services.engine, migrate=migrate)
    except BaseException:
        await services.close()
        raise
    return services


def run_with_services(
    url: str | None,
    call: Callable[[Services], Awaitable[T]],
    *,
    migrate: bool = False,
    installed: bool = False,
) -> T:
    """Open the services on ``url``, run ``call``, close them; expected errors exit 2.
    ``installed``: readiness reports the customizations whose code the database
    does not store (``NOT_INSTALLED``), as the servers see them."""

    async def go() -> T:
        services = await open_services(url, migrate, stored=installed)
        try:
            return await call(services)
        finally:
            await services.close()

    return run(go)
