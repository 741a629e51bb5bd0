"""Options shared by the CLI's commands (a module of its own: the command modules
import it, and ``api.cli`` imports them)."""

from __future__ import annotations

from typing import Annotated

import typer

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="TAILOR_DATABASE_URL",
        help="SQLAlchemy URL; default: a SQLite file tailor.db in the working directory.",
        show_envvar=True,
    ),
]
