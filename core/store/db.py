"""Engines, sessions, migrations and a SQL statement counter."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core.model.errors import DatabaseError, UnavailableError
from core.store import feed


def _normalise_url(url: str) -> str:
    """Accept the plain driver names operators type and pick the async driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"TAILOR_DATABASE_URL {url!r} is not a database URL; use e.g. "
            "'sqlite+aiosqlite:///tailor.db' or 'postgresql+asyncpg://user@host/db'"
        ) from None
    driver = parsed.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise DatabaseError(
            f"unsupported database driver {driver!r}: Tailor runs on "
            "'sqlite+aiosqlite' (default) or 'postgresql+asyncpg'"
        )
    return parsed.render_as_string(hide_password=False)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(value: str | bytes | float | None) -> Any:
    # SQLite gives a JSON column NUMERIC affinity: a bare number comes back as one.
    if value is None or isinstance(value, int | float):
        return value
    return orjson.loads(value)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = _normalise_url(url)
    is_sqlite = url.startswith("sqlite")
    kwargs.setdefault("json_serializer", _dumps)
    kwargs.setdefault("json_deserializer", _loads)
    # an error's message never carries the statement's values into a log
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite:
        kwargs.setdefault("connect_args", {"timeout": 30})
    try:
        engine = create_async_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseError(f"cannot use database URL: {exc}") from None
    if is_sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself (see the "begin" listener).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        # Writers (``sessions.begin()``, see TailorSession) take the write lock at
        # BEGIN so concurrent writers queue instead of failing half-way through a
        # transaction (SQLite's deferred default). Reads begin deferred: under WAL
        # they read a snapshot and never wait for the write lock.
        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            if conn.get_execution_options().get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    return engine


#: execution option marking a connection that writes (SQLite: BEGIN IMMEDIATE)
#: the most values bound in one IN list (PostgreSQL refuses more than 32,767
#: parameters in a statement); beyond it a statement reads the rows and filters
MAX_IN_LIST = 1_000

WRITE_OPTION = "tailor_write"


class _WriteTransaction(AsyncSessionTransaction):
    """``session.begin()``: the transaction's connection is marked as a writer."""

    async def __aenter__(self) -> _WriteTransaction:
        await super().__aenter__()
        await self.session.connection(execution_options={WRITE_OPTION: True})
        return self


class TailorSyncSession(Session):
    """The synchronous session under :class:`TailorSession`: its events append
    audited changes to the change feed (:mod:`core.store.feed`)."""


class TailorSession(AsyncSession):
    """Sessions whose explicit transactions (``sessions.begin()``,
    ``session.begin()``) write; everything else only reads."""

    sync_session_class = TailorSyncSession

    def begin(self) -> AsyncSessionTransaction:
        return _WriteTransaction(self)


# every Tailor session appends its audit entries to the change feed (core.store.feed)
event.listen(TailorSyncSession, "before_flush", feed.append_for_audit)
event.listen(TailorSyncSession, "after_flush", feed.log_audited)
event.listen(TailorSyncSession, "after_commit", feed.after_commit)
event.listen(TailorSyncSession, "after_rollback", feed.after_rollback)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=TailorSession, expire_on_commit=False)


# -- migrations -------------------------------------------------------------


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("migrations")))
    cfg.set_main_option("sqlalchemy.url", _normalise_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    def _current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_current)


# -- rolling deploys: one migrator at a time, compatible later schemas ----------

#: the PostgreSQL advisory lock key migrations hold (any constant bigint: "tailor")
MIGRATION_LOCK = 0x7461696C6F72
#: a migration module that sets ``tailor_compatible = True`` promises that a node
#: whose head is its ``down_revision`` keeps working on the schema it leaves
#: (expand only: new tables, new nullable columns; docs/operations.md)
COMPATIBLE_ATTRIBUTE = "tailor_compatible"
#: where the database records the earlier heads its schema stays compatible with
#: (PostgreSQL: the comment of Alembic's version table; no table of its own)
_COMPATIBLE_PREFIX = "tailor compatible with: "


def compatible_heads(script: ScriptDirectory | None = None) -> list[str]:
    """The earlier heads whose nodes keep working on this code's head schema: from
    the head down, each migration marked compatible admits its down revision."""
    script = script or ScriptDirectory.from_config(alembic_config("sqlite://"))
    heads: list[str] = []
    head = script.get_current_head()
    revision = script.get_revision(head) if head is not None else None
    while revision is not None and getattr(revision.module, COMPATIBLE_ATTRIBUTE, False):
        down = revision.down_revision
        if not isinstance(down, str):
            break
        heads.append(down)
        revision = script.get_revision(down)
    return heads


async def recorded_compatible_heads(engine: AsyncEngine) -> list[str]:
    """What the last ``upgrade`` recorded: the earlier heads compatible with the
    database's schema (PostgreSQL only; elsewhere none)."""
    if engine.dialect.name != "postgresql":
        return []
    async with engine.connect() as conn:
        comment = (
            await conn.exec_driver_sql(
                "SELECT obj_description(to_regclass('alembic_version'), 'pg_class')"
            )
        ).scalar()
    if not isinstance(comment, str) or not comment.startswith(_COMPATIBLE_PREFIX):
        return []
    return comment[len(_COMPATIBLE_PREFIX) :].split()


def schema_problem(current: str | None, head: str | None, compatible: Sequence[str]) -> str | None:
    """Why a node whose head is ``head`` cannot serve a schema at ``current`` whose
    migrations declared ``compatible`` earlier heads (None: it can)."""
    if current == head or (head is not None and head in compatible):
        return None
    state = "empty" if current is None else f"at revision {current}"
    return (
        f"the database is {state}, but this Tailor needs revision {head}; run "
        "'tailor db upgrade' (or start with 'tailor serve --migrate')"
    )


async def schema_status(engine: AsyncEngine) -> str | None:
    """:func:`schema_problem` for ``engine``'s database (two statements)."""
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return None
    return schema_problem(current, head, await recorded_compatible_heads(engine))


#: whether this task holds the migration lock already (the lock is re-entrant)
_holding_lock: ContextVar[bool] = ContextVar("tailor_migration_lock", default=False)


@asynccontextmanager
async def migration_lock(url: str) -> AsyncIterator[None]:
    """Hold the migration lock (a PostgreSQL session advisory lock) inside the
    block: nodes started together migrate and register releases one after the
    other, never at once. Re-entrant within a task; SQLite serializes its writers
    itself: a no-op there."""
    url = _normalise_url(url)
    if not url.startswith("postgresql") or _holding_lock.get():
        yield
        return
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            await conn.commit()
            token = _holding_lock.set(True)
            try:
                yield
            finally:
                _holding_lock.reset(token)
                await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
                await conn.commit()
    finally:
        await engine.dispose()


async def _record_compatible(url: str) -> None:
    url = _normalise_url(url)
    if not url.startswith("postgresql"):
        return
    text = _COMPATIBLE_PREFIX + " ".join(compatible_heads())
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            literal = text.replace("'", "''")
            await conn.exec_driver_sql(f"COMMENT ON TABLE alembic_version IS '{literal}'")
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (Alembic runs its async env in a thread)
    under the migration lock, and record which earlier heads the new schema stays
    compatible with. A database already at a later revision compatible with this
    code's head is left as it is (a newer release migrated it)."""
    async with migration_lock(url):
        if revision == "head":
            head = head_revision()
            engine = create_engine(url)
            try:
                current = await current_revision(engine)
                later = current not in (None, head)
                if later and head in await recorded_compatible_heads(engine):
                    return
            finally:
                await engine.dispose()
        cfg = alembic_config(url)
        await asyncio.to_thread(command.upgrade, cfg, revision)
        if revision == "head":
            await _record_compatible(url)


#: SQLite's messages for a database file it cannot reach (missing directory,
#: unreadable file, failing disk); "database is locked" is not one (it waits)
_SQLITE_OUTAGES = ("unable to open database file", "disk i/o error")


def _asyncpg_outages() -> tuple[type[BaseException], ...]:
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return ()
    return (
        pg.PostgresConnectionError,  # the connection is gone (ConnectionDoesNotExist...)
        pg.OperatorInterventionError,  # terminated, shutting down, starting up
        pg.TooManyConnectionsError,
    )


_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    UnavailableError,
    ConnectionError,  # refused, reset, aborted (asyncpg raises these unwrapped)
    socket.gaierror,  # the host name does not resolve
    *_asyncpg_outages(),
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database is down or unreachable,
    as opposed to a bug or a bad statement: the one place that knows each driver's
    outage errors. The HTTP app answers these with 503 and ``Retry-After``
    (:class:`~core.model.errors.UnavailableError`) instead of masking them.

    A connection SQLAlchemy saw break is invalidated with the rest of the pool
    (``connection_invalidated``): the next checkout connects afresh, so the app
    recovers by itself when the database is back (no ``pool_pre_ping`` round trip
    on every request)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _OUTAGE_TYPES):
            return True
        if isinstance(current, sqlite3.OperationalError) and str(current).lower().startswith(
            _SQLITE_OUTAGES
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


async def check_reachable(engine: AsyncEngine) -> None:
    """Connect and run ``SELECT 1``: :class:`UnavailableError` (a
    :class:`DatabaseError`) when the database cannot be reached."""
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # driver-specific connection errors
        # (the message names the server: for operators and the CLI, never for
        # an anonymous HTTP caller, see /healthz)
        raise UnavailableError(
            f"cannot connect to the database at {engine.url.render_as_string()}: "
            f"{type(exc).__name__}: {exc}. Check TAILOR_DATABASE_URL and that the server runs."
        ) from None


async def ensure_schema(engine: AsyncEngine, migrate: bool) -> None:
    """Make sure the schema is at head (or at a later revision compatible with it):
    migrate when asked, otherwise refuse."""
    await check_reachable(engine)
    problem = await schema_status(engine)
    if problem is None:
        return
    if migrate:
        await upgrade(engine.url.render_as_string(hide_password=False))
        return
    raise DatabaseError(problem)


# -- statement counting (tests and benchmarks) --------------------------------


@dataclass
class StatementCounter:
    count: int = 0
    statements: list[str] | None = None

    def reset(self) -> None:
        self.count = 0
        if self.statements is not None:
            self.statements.clear()


#: counters listening to statements sent to an engine's database on side
#: connections of its own (core.store.version_reader), keyed by id(sync engine)
_side_listeners: dict[int, list[Callable[[str], None]]] = {}


def side_statement(engine: AsyncEngine, statement: str) -> None:
    """Tell the statement counters of ``engine`` that ``statement`` was sent to its
    database outside the engine (a side connection): counts stay honest."""
    for listener in _side_listeners.get(id(engine.sync_engine), ()):
        listener(statement)


@contextmanager
def count_statements(engine: AsyncEngine, keep: bool = False) -> Iterator[StatementCounter]:
    """Count the SQL statements sent to ``engine``'s database inside the block:
    through the engine, and on its side connections (:func:`side_statement`)."""
    counter = StatementCounter(statements=[] if keep else None)

    def _before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper().startswith(("BEGIN", "PRAGMA", "COMMIT", "ROLLBACK")):
            return
        counter.count += 1
        if counter.statements is not None:
            counter.statements.append(statement)

    def _side(statement: str) -> None:
        _before(None, None, statement)

    side = _side_listeners.setdefault(id(engine.sync_engine), [])
    side.append(_side)
    event.listen(engine.sync_engine, "before_cursor_execute", _before)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", _before)
        side.remove(_side)
        if not side:
            _side_listeners.pop(id(engine.sync_engine), None)
