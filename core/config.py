"""Runtime configuration, read from the environment (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_FILE = "tailor.db"


def default_database_url(cwd: Path | None = None) -> str:
    path = (cwd or Path.cwd()) / DEFAULT_DATABASE_FILE
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class Config:
    database_url: str
    customizations_path: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls, database_url: str | None = None) -> Config:
        url = database_url or os.environ.get("TAILOR_DATABASE_URL") or default_database_url()
        raw = os.environ.get("TAILOR_CUSTOMIZATIONS_PATH", "")
        paths = tuple(Path(p) for p in raw.split(os.pathsep) if p)
        return cls(database_url=url, customizations_path=paths)
