"""Runtime configuration, read from the environment (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.model.errors import InvalidInputError
from core.model.hooks import DEFAULT_HOOK_TIMEOUT

DEFAULT_DATABASE_FILE = "tailor.db"
DEFAULT_SHUTDOWN_GRACE = 20.0
DEFAULT_METRICS_CUSTOMIZATIONS = 20


def default_database_url(cwd: Path | None = None) -> str:
    path = (cwd or Path.cwd()) / DEFAULT_DATABASE_FILE
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class Config:
    database_url: str
    customizations_path: tuple[Path, ...] = ()
    #: seconds a request's customization hook calls may take in all
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT
    #: worker processes running customizations (None: twice the cores, at least 2)
    hook_processes: int | None = None
    #: address-space limit of one worker process, MiB
    hook_memory_mb: int = 1024
    #: seconds a stopping node gives its in-flight requests (TAILOR_SHUTDOWN_GRACE)
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    #: customizations named in /metrics, the busiest (TAILOR_METRICS_CUSTOMIZATIONS)
    metrics_customizations: int = DEFAULT_METRICS_CUSTOMIZATIONS

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
        raw_grace = os.environ.get("TAILOR_SHUTDOWN_GRACE", "").strip()
        grace = DEFAULT_SHUTDOWN_GRACE
        if raw_grace:
            try:
                grace = float(raw_grace)
            except ValueError:
                grace = -1.0
            if not 0 <= grace < float("inf"):
                raise InvalidInputError(
                    "TAILOR_SHUTDOWN_GRACE",
                    f"{raw_grace!r} is not a number of seconds (>= 0, e.g. 20)",
                )
        named = _positive_int("TAILOR_METRICS_CUSTOMIZATIONS")
        processes = _positive_int("TAILOR_HOOK_PROCESSES")
        memory = _positive_int("TAILOR_HOOK_MEMORY_MB")
        if memory is not None and memory < 128:
            raise InvalidInputError(
                "TAILOR_HOOK_MEMORY_MB", f"{memory} MiB is too little for a Python process (>= 128)"
            )
        return cls(
            database_url=url,
            customizations_path=paths,
            hook_timeout=timeout,
            hook_processes=processes,
            hook_memory_mb=memory or 1024,
            shutdown_grace=grace,
            metrics_customizations=named or DEFAULT_METRICS_CUSTOMIZATIONS,
        )


def _positive_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise InvalidInputError(name, f"{raw!r} is not a positive whole number")
    return value


def retention_days(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    """Days something is kept, from the variable ``name`` (a positive integer),
    else ``default`` (``TAILOR_FEED_RETENTION_DAYS``, ``TAILOR_WEBHOOK_RETENTION_DAYS``)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        days = int(raw)
    except ValueError:
        raise InvalidInputError(name, f"{raw!r} is not a number of days") from None
    if days <= 0:
        raise InvalidInputError(name, f"must be a positive number of days; got {days}")
    return days
