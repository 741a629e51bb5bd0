"""Runtime configuration, read from the environment (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInputError
from core.hooks import DEFAULT_HOOK_TIMEOUT

DEFAULT_DATABASE_FILE = "tailor.db"


def default_database_url(cwd: Path | None = None) -> str:
    path = (cwd or Path.cwd()) / DEFAULT_DATABASE_FILE
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class Config:
    database_url: str
    customizations_path: tuple[Path, ...] = ()
    #: seconds one batch call into a tenant's customization hooks may take
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT

    @classmethod
    def from_env(cls, database_url: str | None = None) -> Config:
        url = database_url or os.environ.get("TAILOR_DATABASE_URL") or default_database_url()
        raw = os.environ.get("TAILOR_CUSTOMIZATIONS_PATH", "")
        paths = tuple(Path(p) for p in raw.split(os.pathsep) if p)
        raw_timeout = os.environ.get("TAILOR_HOOK_TIMEOUT", "").strip()
        timeout = DEFAULT_HOOK_TIMEOUT
        if raw_timeout:
            try:
                timeout = float(raw_timeout)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout < float("inf"):
                raise InvalidInputError(
                    "TAILOR_HOOK_TIMEOUT", f"{raw_timeout!r} is not a positive number of seconds"
                )
        return cls(database_url=url, customizations_path=paths, hook_timeout=timeout)
