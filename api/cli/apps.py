"""``tailor app register|list``, ``tailor app operations push``, ``tailor app flags
push``: front-end apps, their trusted documents (stored by sha256) and the OFREP
flag keys they read (see :mod:`core.model.apps`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from api.cli.common import CLI_ACTOR, DatabaseOption, DocumentFormat, err, out, run_with_services
from core.model.apps import App, Operation
from core.model.errors import InvalidInputError

app_app = typer.Typer(
    help="Front-end apps: their trusted documents (persisted by sha256) and flag keys, "
    "which readiness checks against a target release.",
    no_args_is_help=True,
)
operations_app = typer.Typer(help="An app's trusted documents.", no_args_is_help=True)
flags_app = typer.Typer(help="The setting keys an app reads as OFREP flags.", no_args_is_help=True)
app_app.add_typer(operations_app, name="operations")
app_app.add_typer(flags_app, name="flags")

FormatOption = Annotated[DocumentFormat, typer.Option("--format")]


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def operation_dict(o: Operation) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name,
        "keys": list(o.keys),
        "prefixes": list(o.prefixes),
        "pushed_by": o.pushed_by,
        "pushed_at": o.pushed_at.isoformat(),
    }


def app_dict(a: App) -> dict[str, Any]:
    return {
        "name": a.name,
        "tenant": a.tenant,
        "trusted_only": a.trusted_only,
        "flags": list(a.flags),
        "operations": [operation_dict(o) for o in a.operations],
    }


def _show(apps: list[App], fmt: DocumentFormat) -> None:
    if fmt is DocumentFormat.JSON:
        print(json.dumps({"apps": [app_dict(a) for a in apps]}, indent=2))
        return
    if fmt is DocumentFormat.MARKDOWN:
        print("| app | tenant | trusted only | operations | flags |\n|---|---|---|---|---|")
        for a in apps:
            names = ", ".join(o.name or o.id[:15] for o in a.operations) or "-"
            print(
                f"| {a.name} | {a.tenant} | {'yes' if a.trusted_only else 'no'} | "
                f"{names} | {', '.join(a.flags) or '-'} |"
            )
        return
    table = Table(title="Apps")
    for column in ("app", "tenant", "trusted only", "operations", "flags"):
        table.add_column(column, overflow="fold")
    for a in apps:
        table.add_row(
            a.name,
            a.tenant,
            "yes" if a.trusted_only else "no",
            "\n".join(f"{o.name or '(anonymous)'} {o.id}" for o in a.operations) or "-",
            ", ".join(a.flags) or "-",
        )
    out.print(table)


@app_app.command("register")
def register_command(
    name: Annotated[str, typer.Argument(help="The app's name, e.g. shop-web.")],
    tenant: Annotated[str, typer.Option(help="The tenant whose app it is.")],
    trusted_only: Annotated[
        bool,
        typer.Option(
            "--trusted-only/--any-document",
            help="Its tokens (token create --app NAME) run only its registered documents.",
        ),
    ] = False,
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Register a tenant's front-end app; again: change --trusted-only (audited)."""
    found = run_with_services(
        database_url, lambda s: s.apps.register(CLI_ACTOR, name, tenant, trusted_only=trusted_only)
    )
    _show([found], fmt)


@operations_app.command("push")
def operations_push_command(
    name: Annotated[str, typer.Argument(help="The app's name.")],
    file: Annotated[Path, typer.Argument(help="A .graphql file of one or more operations.")],
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Store the file's operations by the sha256 of their text (each must validate
    against Tailor's schema); prints each operation's documentId (audited)."""
    from api.graphql.schema import build_schema
    from api.graphql.trusted import split_operations

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}; give a UTF-8 .graphql file")
    try:
        operations = split_operations(text, build_schema()._schema)
    except InvalidInputError as exc:
        _fail(f"{file}: {exc.message}")
    result = run_with_services(
        database_url, lambda s: s.apps.push_operations(CLI_ACTOR, name, operations)
    )
    if fmt is DocumentFormat.JSON:
        print(
            json.dumps(
                {
                    "app": app_dict(result.app),
                    "pushed": [
                        {**operation_dict(o), "stored": fresh} for o, fresh in result.operations
                    ],
                },
                indent=2,
            )
        )
        return
    for o, fresh in result.operations:
        state = "stored" if fresh else "known "
        out.print(f"{state} {o.id} {o.name or '(anonymous)'}", highlight=False)


@flags_app.command("push")
def flags_push_command(
    name: Annotated[str, typer.Argument(help="The app's name.")],
    keys: Annotated[list[str], typer.Argument(help="Setting keys it reads as flags.")],
    replace: Annotated[
        bool, typer.Option(help="Instead of the keys declared (default: added to them).")
    ] = False,
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Declare setting keys the app reads as OpenFeature flags (OFREP), checked by
    readiness against a target release (audited)."""
    found = run_with_services(
        database_url, lambda s: s.apps.push_flags(CLI_ACTOR, name, keys, replace=replace)
    )
    _show([found], fmt)


@app_app.command("list")
def list_command(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's apps.")] = None,
    fmt: FormatOption = DocumentFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Apps, their documents (with their ids) and flag keys."""
    found = run_with_services(database_url, lambda s: s.apps.apps(CLI_ACTOR, tenant))
    _show(found, fmt)
