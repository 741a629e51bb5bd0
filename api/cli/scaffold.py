"""``tailor customization new``: start a customization package that already
passes ``check`` (the writing is :mod:`plugins.scaffold`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import cli_product, err, out
from core.model.errors import TailorError
from plugins.catalog import Catalog
from plugins.scaffold import scaffold, write


def new(
    name: Annotated[
        str,
        typer.Argument(
            help="The customization's name, e.g. globex-late-fees (the directory is "
            "globex_late_fees).",
            show_default=False,
        ),
    ],
    hook: Annotated[
        list[str],
        typer.Option(
            "--hook",
            help="A hook to implement (repeat for several): one of Tailor's "
            "(tailor_resolve_settings, tailor_validate_setting, ...) or the product's "
            "(acme_invoice_footer, ...).",
            show_default=False,
        ),
    ],
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            "--tenant",
            help="A tenant it is made for (repeat for several; default: the name's "
            "first segment, globex for globex-late-fees).",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[
        Path,
        typer.Option(help="Where to create the package's directory."),
    ] = Path("."),
) -> None:
    """Create a customization package that passes `tailor customization check`:

    \b
      customization.toml   name, version 0.1.0, tenants, requires (the running
                           product release up to the next major), tested_up_to,
                           product, a description to write
      hooks.py             one documented stub per --hook, taking the hookspec's
                           parameters and returning "no change"
      tests/test_hooks.py  plain pytest tests calling each hook function directly

    An existing directory is never overwritten. An unknown hook is refused with
    the list of hooks the running release has.

    \b
    Example:
      tailor customization new globex-late-fees --hook tailor_resolve_settings
      # write the hook, then:
      python -m pytest globex_late_fees/tests
      tailor customization check globex_late_fees
      tailor customization run globex_late_fees --hook tailor_resolve_settings --tenant globex
    """
    product = cli_product()
    catalog = Catalog.for_product(product)
    try:
        package = scaffold(
            directory.resolve(),
            name,
            hook,
            tenant or (),
            catalog,
            product.id,
            product.version,
        )
        written = write(package)
    except TailorError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    shown = directory / package.directory.name
    out.print(f"created {package.name} in {shown}", highlight=False, markup=False)
    for path in written:
        out.print(f"  {path.relative_to(package.directory)}", highlight=False, markup=False)
    if package.tenants_from_name:
        out.print(
            f"tenants = {list(package.tenants)} (from the name; use --tenant to choose)",
            highlight=False,
            markup=False,
        )
    out.print(
        f"next: write the hook in {shown / 'hooks.py'}, then\n"
        f"  python -m pytest {shown / 'tests'}\n"
        f"  tailor customization check {shown}",
        highlight=False,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``new`` to the ``customization`` sub-app."""
    app.command("new")(new)
