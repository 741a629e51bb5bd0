"""Tenants' data versions, read fresh for every cached answer, cheaply.

A cached ``settings`` answer may only be served when the tenant's data version
read *after the request began* equals the one it was cached under (see
``api/http/response_cache.py``). That read happens on every cached request, so its
cost is most of a cached answer's cost; through SQLAlchemy's session and
aiosqlite's thread it takes ~1 ms. :class:`VersionReader` reads the same column
on a connection of its own:

- **SQLite**: a plain ``sqlite3`` connection of this process in autocommit mode
  (no transaction is ever left open on it). Every ``SELECT`` is its own read
  transaction, which under WAL sees every transaction committed before it
  started, by any connection of any process (the ``tailor`` CLI on the same
  file included). An indexed read of a few rows takes microseconds, so it runs
  on the event loop; should it wait for a lock (a WAL recovery by another
  process) longer than :data:`SIDE_BUSY_MS`, it is made through the engine.
  The connection is closed when the engine is disposed, so none outlives its
  engine (a connection left open across engines in one process made a later
  engine miss another process's commit: keep the two lifetimes tied).
- **PostgreSQL**: a small asyncpg pool of its own, one prepared statement
  (``slug = ANY($1)``), autocommit: each read sees everything committed before
  it began, on any worker.
- anything else (``:memory:`` SQLite, other drivers): a session of the engine.

Statement counters (:func:`core.store.db.count_statements`) count the side
connections' statements too.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from core.store.db import sessionmaker, side_statement
from core.store.tenants import data_versions

log = logging.getLogger("tailor.versions")

SQL_SQLITE = "SELECT slug, id, data_version FROM tenants WHERE slug IN ({marks})"
SQL_POSTGRES = "SELECT slug, id, data_version FROM tenants WHERE slug = ANY($1::text[])"
#: how long the SQLite read (on the event loop) may wait for a lock before the
#: read goes through the engine instead
SIDE_BUSY_MS = 100
#: connections of the PostgreSQL reader's pool
POOL_SIZE = 4

Versions = dict[str, tuple[int, int]]


class VersionReader:
    """``await reader.read(slugs)``: ``slug -> (tenant id, data version)`` of the
    tenants that exist, as committed when the read began."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        url = engine.url
        backend = url.get_backend_name()
        self._sqlite_path: str | None = None
        if backend == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sqlite_path = url.database
        self._postgres_dsn: str | None = None
        if backend == "postgresql" and url.get_driver_name() == "asyncpg":
            self._postgres_dsn = url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
        self._sqlite: sqlite3.Connection | None = None
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._sessions = sessionmaker(engine)
        self._closed = False
        # the side connections live no longer than the engine
        event.listen(engine.sync_engine, "engine_disposed", self._on_dispose)

    @property
    def kind(self) -> str:
        if self._sqlite_path is not None:
            return "sqlite"
        return "postgresql" if self._postgres_dsn is not None else "engine"

    async def read(self, slugs: Sequence[str]) -> Versions:
        if self._sqlite_path is not None and not self._closed:
            try:
                return self._read_sqlite(slugs)
            except sqlite3.OperationalError:
                # busy past SIDE_BUSY_MS (a recovery, a lock held by another
                # process): read through the engine, without blocking the loop
                pass
        if self._postgres_dsn is not None and not self._closed:
            try:
                return await self._read_postgres(slugs)
            except Exception as exc:  # asyncpg's errors: the engine's path reports them
                log.warning(
                    "version read on the side pool failed (%s): through the engine",
                    type(exc).__name__,
                )
        async with self._sessions() as session:
            return await data_versions(session, slugs)

    # -- SQLite ------------------------------------------------------------------
    def _read_sqlite(self, slugs: Sequence[str]) -> Versions:
        if self._sqlite is None:
            # isolation_level=None: autocommit, every statement its own snapshot;
            # mode=rw: never create a database file the engine has not
            uri = Path(self._sqlite_path or "").absolute().as_uri() + "?mode=rw"
            self._sqlite = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
            self._sqlite.execute(f"PRAGMA busy_timeout={SIDE_BUSY_MS}")
        sql = SQL_SQLITE.format(marks=",".join("?" * len(slugs)))
        side_statement(self.engine, sql)
        rows = self._sqlite.execute(sql, tuple(slugs)).fetchall()
        return {slug: (tenant_id, version) for slug, tenant_id, version in rows}

    # -- PostgreSQL --------------------------------------------------------------
    async def _read_postgres(self, slugs: Sequence[str]) -> Versions:
        pool = self._pool
        if pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg

                    try:
                        self._pool = await asyncpg.create_pool(
                            self._postgres_dsn, min_size=1, max_size=POOL_SIZE
                        )
                    except Exception:
                        # (e.g. a URL option only SQLAlchemy knows): the engine's way
                        self._postgres_dsn = None
                        raise
                pool = self._pool
        side_statement(self.engine, SQL_POSTGRES)
        async with pool.acquire() as conn:
            rows = await conn.fetch(SQL_POSTGRES, list(slugs))
        return {row[0]: (row[1], row[2]) for row in rows}

    # -- closing -----------------------------------------------------------------
    def _on_dispose(self, _engine: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the side connections (reads go through the engine afterwards)."""
        self._closed = True
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    async def aclose(self) -> None:
        """Close gracefully (the app's shutdown)."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        self.close()
