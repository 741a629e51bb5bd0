"""The change feed: every committed change, in commit order.

Every write that changes what a tenant sees already writes an audit entry in its
transaction (overrides, enablements, version pins, release imports, triage
decisions, change requests, tenant upgrades). The feed is appended from those
entries by one session hook (:func:`append_for_audit`), in the same flush, so no
write path can change data without being heard: a write that forgets the feed
would have to forget the audit log too.

**Order.** ``sequence`` grows strictly in the order changes become visible, so
a reader that has seen ``N`` has seen every change before it and never finds an
older sequence later. SQLite serializes writers (``BEGIN IMMEDIATE``), so a write
appends its :class:`~core.store.models.ChangeFeedRow` itself. On PostgreSQL a write
neither locks nor spends a statement on the feed: a constraint trigger on
``audit_log``, deferred to the write's commit (migration ``0020_feed_pending``),
appends a :class:`~core.store.models.PendingChangeRow` per audit entry, and the
first reader after the commit (:func:`settle`, which every read of the feed calls)
moves the committed pending rows into the feed under the transaction advisory
lock :data:`FEED_LOCK`, one settler at a time: sequences are given by settlers
that commit one after the other, so they become visible in order, and writers
never wait on each other or on a settler (docs/decisions/0005). Of two writes of
one row, the one that waited for the other's lock commits, so appends, later;
one transaction's changes stay side by side.

**Heard at once.** A write's commit is announced with ``NOTIFY`` :data:`FEED` on
the invalidation channel (:mod:`core.store.invalidation`), naming the tenant when
the changes are one tenant's (:func:`feed_topic`): every worker's listener hears
it, and a worker with no subscriber of that tenant reads nothing
(:meth:`core.store.feed_hub.FeedHub.wake`). A server announces after commit,
coalesced (:class:`Announcer`): a ``NOTIFY`` inside the write would take
PostgreSQL's notify lock through the write's commit, one committer at a time.
Elsewhere (the CLI) the write's own transaction sends it. In the process that
committed, the callbacks given to :func:`on_commit` run too (the only path on
SQLite).

**Kept for a while.** :meth:`FeedService.prune` drops rows older than
``TAILOR_FEED_RETENTION_DAYS`` (default :data:`DEFAULT_RETENTION_DAYS`); the
audit log itself is never pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from core.model import config
from core.model.auth import Principal
from core.model.clock import utcnow
from core.store.invalidation import CHANNEL
from core.store.models import AuditEntry, ChangeFeedRow, Tenant, aware
from core.store.tenants import load_tenant_ref

log = logging.getLogger("tailor.feed")
#: one line per audit entry written (its id and the request's): see log_audited
audit_log = logging.getLogger("tailor.audit")

#: payload on the invalidation channel: the change feed has new rows (see
#: :func:`feed_topic`: ``feed:<tenant id>`` when they are all one tenant's)
FEED = "feed"
#: the transaction advisory lock that orders settlers (PostgreSQL; releases
#: before 0.3.0 took it in every write)
FEED_LOCK = 0x7A11_0F_EED
#: tenants one notice names at most (a NOTIFY payload is under 8,000 bytes)
TOPIC_TENANTS = 500
RETENTION_ENV = "TAILOR_FEED_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30

#: audit keys that name something other than a setting (``customization:NAME``,
#: ``release:V``): such a change may change any key of its tenants
_NOT_A_SETTING = (
    "customization:",
    "release:",
    "finding:",
    "change:",
    "webhook:",
    "recording:",
)

_APPENDED = "tailor_feed_appended"
_listeners: list[Callable[[], None]] = []


@dataclass(frozen=True)
class ChangeEvent:
    """One change as the feed tells it. ``keys`` are the setting keys it changed;
    empty when it may change any of the tenant's keys (a customization enabled or
    pinned, a release imported, a tenant upgraded). ``tenant`` is None for a change
    of no one tenant (a release import)."""

    sequence: int
    tenant: str | None
    environment: str | None
    keys: tuple[str, ...]
    action: str
    actor: str
    at: datetime
    audit_id: int | None


def keys_of(entry: AuditEntry) -> list[str]:
    """The setting keys an audited change changed (see :class:`ChangeEvent`)."""
    key = entry.key
    if not key or key.startswith(_NOT_A_SETTING):
        return []
    return [key]


def log_audited(session: Session, _context: Any) -> None:
    """``after_flush`` hook: one log line per audit entry written, with its id (the
    request's id is added by the log's formatter: ``core.model.request_id``), so an
    entry of the audit log is found from the request that made it, and back."""
    for entry in session.new:
        if isinstance(entry, AuditEntry):
            audit_log.info(
                "audited %s",
                entry.action,
                extra={
                    "fields": {
                        "event": "audited",
                        "audit_id": entry.id,
                        "action": entry.action,
                        "actor": entry.actor,
                        "key": entry.key,
                    }
                },
            )


def append_for_audit(session: Session, _context: Any, _instances: Any) -> None:
    """``before_flush`` hook (registered on every Tailor session by
    :mod:`core.store.db`): on SQLite, one feed row for each audit entry about to be
    written (on PostgreSQL the database's trigger appends a pending one, see the
    module); on both, the commit's notice."""
    entries = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if not entries:
        return
    transaction = session.get_transaction()
    appended: _Appended | None = session.info.get(_APPENDED)
    postgres = session.get_bind().dialect.name == "postgresql"
    if appended is None or appended.transaction is not transaction:
        appended = _Appended(transaction)
        session.info[_APPENDED] = appended
    # tenants not named yet (None: of no one tenant, which names them all)
    unheard = {entry.tenant_id for entry in entries} - appended.tenants
    if unheard and None not in appended.tenants:
        appended.tenants |= unheard
        if postgres and _announcer_for(session) is None:
            # no announcer in this process (the CLI): the write's own transaction
            # sends it, at commit
            session.execute(
                text("SELECT pg_notify(:channel, :topic)"),
                {"channel": CHANNEL, "topic": feed_topic(unheard)},
            )
    if postgres:
        return
    now = utcnow()
    for entry in entries:
        if entry.at is None:
            entry.at = now
        session.add(
            ChangeFeedRow(
                at=entry.at,
                tenant_id=entry.tenant_id,
                environment=entry.environment,
                keys=keys_of(entry),
                action=entry.action,
                actor=entry.actor,
                audit=entry,
            )
        )


@dataclass
class _Appended:
    """What one transaction appended (in ``session.info`` until it ends)."""

    transaction: Any
    #: the tenants its changes are of (None: a change of no one tenant)
    tenants: set[int | None] = field(default_factory=set)


def feed_topic(tenant_ids: Iterable[int | None]) -> str:
    """The NOTIFY payload for changes of ``tenant_ids``: ``feed:<id>[,<id>...]``
    naming them, else :data:`FEED` (any tenant's: a change of none, a release
    import or a webhook, or more tenants than :data:`TOPIC_TENANTS`)."""
    ids = set(tenant_ids)
    if not ids or None in ids or len(ids) > TOPIC_TENANTS:
        return FEED
    return f"{FEED}:" + ",".join(str(i) for i in sorted(i for i in ids if i is not None))


def feed_tenants(topic: str) -> frozenset[int] | None:
    """The tenants a :func:`feed_topic` names (None: any, or ``topic`` is no feed
    notice)."""
    head, _, tail = topic.partition(":")
    ids = tail.split(",")
    if head != FEED or not all(i.isdigit() for i in ids):
        return None
    return frozenset(int(i) for i in ids)


def is_feed(topic: str) -> bool:
    return topic == FEED or topic.startswith(FEED + ":")


def after_commit(session: Session) -> None:
    """``after_commit`` hook: announce the commit to other processes (when a
    server's :class:`Announcer` runs here) and wake this process's feed readers."""
    appended: _Appended | None = session.info.pop(_APPENDED, None)
    if appended is None:
        return
    announcer = _announcer_for(session)
    if announcer is not None:
        announcer.post(appended.tenants)
    for listener in list(_listeners):
        try:
            listener()
        except Exception:  # a reader's bug never fails a committed write
            log.exception("a change feed listener failed")


def after_rollback(session: Session) -> None:
    session.info.pop(_APPENDED, None)


def on_commit(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener()`` after each commit in this process that appended to the
    feed; returns the function that stops it."""
    _listeners.append(listener)

    def stop() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return stop


#: this process's announcers, by the engine whose commits they announce
_announcers: dict[Engine, Announcer] = {}


def _announcer_for(session: Session) -> Announcer | None:
    if not _announcers:
        return None
    return _announcers.get(session.get_bind())  # type: ignore[arg-type]


class Announcer:
    """Announces this process's committed feed changes to every worker, after
    commit: one ``NOTIFY`` statement for every commit that came in
    :attr:`COALESCE_SECONDS`, sent by ``send`` (the invalidation listener's own
    connection: :meth:`core.store.invalidation.Listener.notify`), never inside a
    write. While :meth:`run` runs, writes through ``engine`` send no ``NOTIFY`` of
    their own. A notice lost (the connection is down, the process dies between a
    commit and its announcement) delays a reader until its next safety re-read
    (:attr:`core.store.feed_hub.FeedHub.POLL_SECONDS`); nothing is lost from the
    feed."""

    #: seconds an announcement waits for more commits to join it
    COALESCE_SECONDS = 0.01

    def __init__(self, engine: AsyncEngine, send: Callable[[str], Awaitable[None]]) -> None:
        self._engine = engine.sync_engine
        self._send = send
        #: the tenants of the commits posted since the last notice
        self._tenants: set[int | None] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: NOTIFY statements sent
        self.sent = 0

    def post(self, tenants: set[int | None]) -> None:
        """Announce a commit of changes of ``tenants`` soon (from any thread)."""

        def add() -> None:
            self._tenants |= tenants
            self._wake.set()

        call_in_loop(self._loop, add)

    async def run(self) -> None:
        """Announce until cancelled; what was posted is sent before it returns."""
        self._loop = asyncio.get_running_loop()
        _announcers[self._engine] = self
        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(self.COALESCE_SECONDS)  # let commits gather
                await self.flush()
        finally:
            if _announcers.get(self._engine) is self:
                del _announcers[self._engine]
            with contextlib.suppress(Exception):
                await self.flush()

    async def flush(self) -> None:
        """Send what was posted, now: one notice naming every tenant posted."""
        self._wake.clear()
        tenants, self._tenants = self._tenants, set()
        if not tenants:
            return
        try:
            await self._send(feed_topic(tenants))
            self.sent += 1
        except Exception as exc:  # readers re-read every POLL_SECONDS anyway
            log.warning("change feed: announcing failed: %s: %s", type(exc).__name__, exc)


def call_in_loop(loop: asyncio.AbstractEventLoop | None, callback: Callable[[], None]) -> None:
    """Run ``callback`` in ``loop``: at once when called from that loop, else soon
    (from another thread); not at all when ``loop`` is None (not started) or
    closed. How a commit, from wherever it happened, wakes a loop's task."""
    if loop is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        callback()
    else:
        loop.call_soon_threadsafe(callback)


async def settle(session: AsyncSession) -> int:
    """Give the committed pending changes their sequences (PostgreSQL; see the
    module): under :data:`FEED_LOCK`, held to ``session``'s commit, move them into
    the feed (what :func:`keys_of` says, from their audit entries), one
    transaction's together, the transaction that committed last last. Every read
    of the feed calls it first, in its own transaction; one statement when nothing
    is pending. How many it moved."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    locked = await session.execute(_LOCK_IF_PENDING, {"lock": FEED_LOCK})
    if locked.first() is None:
        return 0
    moved = await session.execute(_MOVE)
    return int(getattr(moved, "rowcount", 0) or 0)


async def append_now(session: AsyncSession, entries: Sequence[AuditEntry]) -> None:
    """Give ``entries`` (flushed in ``session``'s transaction) their sequences now,
    inside that transaction, for a write that must know its own place in the feed
    (a webhook's creation: its cursor starts after it). PostgreSQL: the lock is
    taken at once and held to the commit, what is pending is settled, then the
    entries are appended (the trigger's pending rows for them are skipped when
    settled: :data:`_MOVE`). This write then commits after every earlier appender,
    as all writes did before 0.3.0: keep it for rare writes. SQLite: nothing to do
    (the write appended them)."""
    if session.get_bind().dialect.name != "postgresql" or not entries:
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": FEED_LOCK})
    await session.execute(_MOVE)
    await session.execute(
        _APPEND.bindparams(bindparam("ids", expanding=True)),
        {"ids": [entry.id for entry in entries]},
    )


#: takes the lock only when something is pending (no row: nothing to do)
_LOCK_IF_PENDING = text(
    "SELECT pg_advisory_xact_lock(:lock) FROM (SELECT 1 FROM change_feed_pending LIMIT 1) AS p"
)


def _keys_sql() -> str:
    """:func:`keys_of` in SQL, from the same prefixes."""
    prefixes = " OR ".join(f"starts_with(a.key, '{prefix}')" for prefix in _NOT_A_SETTING)
    return (
        f"CASE WHEN a.key IS NULL OR a.key = '' OR {prefixes} "
        "THEN CAST('[]' AS json) ELSE json_build_array(a.key) END"
    )


_FEED_COLUMNS = "at, tenant_id, environment, keys, action, actor, audit_id"
#: what the feed says of an audit entry ``a`` (the columns of _FEED_COLUMNS)
_FROM_AUDIT = f"a.at, a.tenant_id, a.environment, {_keys_sql()}, a.action, a.actor, a.id"
#: a new statement, so a new snapshot: every pending row committed before the lock.
#: A change a node of an older release appended itself (under the same lock) is
#: not appended twice.
_MOVE = text(
    "WITH moved AS (DELETE FROM change_feed_pending RETURNING id, txn, audit_id) "
    f"INSERT INTO change_feed ({_FEED_COLUMNS}) SELECT {_FROM_AUDIT} "
    "FROM moved JOIN audit_log AS a ON a.id = moved.audit_id "
    "WHERE NOT EXISTS (SELECT 1 FROM change_feed AS f WHERE f.audit_id = a.id) "
    "ORDER BY max(moved.id) OVER (PARTITION BY moved.txn), moved.id"
)
#: :func:`append_now`'s entries, in order
_APPEND = text(
    f"INSERT INTO change_feed ({_FEED_COLUMNS}) SELECT {_FROM_AUDIT} "
    "FROM audit_log AS a WHERE a.id IN :ids ORDER BY a.id"
)


def retention_days(environ: Mapping[str, str] | None = None) -> int:
    """``TAILOR_FEED_RETENTION_DAYS`` (a positive integer), else the default."""
    return config.retention_days(RETENTION_ENV, DEFAULT_RETENTION_DAYS, environ)


class FeedService:
    """Reads the change feed (writes append to it by themselves)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def since(
        self,
        after: int,
        *,
        tenants: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[ChangeEvent]:
        """Changes with a sequence above ``after``, oldest first, at most ``limit``;
        only of ``tenants`` when given (the caller has checked scope). Two
        statements (:func:`settle`, then the read) when nothing is pending."""
        query = (
            select(ChangeFeedRow, Tenant.slug)
            .outerjoin(Tenant, Tenant.id == ChangeFeedRow.tenant_id)
            .where(ChangeFeedRow.sequence > after)
            .order_by(ChangeFeedRow.sequence)
            .limit(limit)
        )
        if tenants is not None:
            query = query.where(Tenant.slug.in_(list(tenants)))
        async with self._sessions.begin() as session:
            await settle(session)
            rows = (await session.execute(query)).all()
        return [change_event(row, slug) for row, slug in rows]

    async def recent(self, tenant: str, limit: int = 20) -> list[ChangeEvent]:
        """``tenant``'s newest changes, newest first (the caller has checked
        scope). Settles first."""
        query = (
            select(ChangeFeedRow, Tenant.slug)
            .join(Tenant, Tenant.id == ChangeFeedRow.tenant_id)
            .where(Tenant.slug == tenant)
            .order_by(ChangeFeedRow.sequence.desc())
            .limit(limit)
        )
        async with self._sessions.begin() as session:
            await settle(session)
            rows = (await session.execute(query)).all()
        return [change_event(row, slug) for row, slug in rows]

    async def check_watch(self, principal: Principal, tenant: str, environment: str | None) -> int:
        """Refuse unless ``principal`` may hear ``tenant``'s changes (of
        ``environment``): the errors of the ``settings`` query (permission, then a
        tenant or environment that does not exist). The tenant's id. One statement."""
        principal.require_read_settings(tenant)
        async with self._sessions() as session:
            ref = await load_tenant_ref(session, tenant)
        ref.check_environment(environment)
        return ref.id

    async def head(self) -> int:
        """The newest sequence (0 when the feed is empty)."""
        async with self._sessions.begin() as session:
            await settle(session)
            return int(await session.scalar(select(func.max(ChangeFeedRow.sequence))) or 0)

    async def get(self, sequence: int) -> tuple[ChangeEvent, AuditEntry | None] | None:
        """One change with its audit entry (None when it was never there or pruned)."""
        async with self._sessions.begin() as session:
            await settle(session)
            found = (
                await session.execute(
                    select(ChangeFeedRow, Tenant.slug, AuditEntry)
                    .outerjoin(Tenant, Tenant.id == ChangeFeedRow.tenant_id)
                    .outerjoin(AuditEntry, AuditEntry.id == ChangeFeedRow.audit_id)
                    .where(ChangeFeedRow.sequence == sequence)
                )
            ).first()
        if found is None:
            return None
        row, slug, entry = found
        return change_event(row, slug), entry

    async def beside(
        self, sequence: int, tenant_id: int | None, *, span: int = 4
    ) -> list[tuple[int, AuditEntry]]:
        """The audited changes of ``tenant_id`` at most ``span`` sequences either
        side of ``sequence`` (a transaction's changes are given sequences together,
        see :func:`settle`, so what one write did sits side by side), in order.
        One statement."""
        async with self._sessions.begin() as session:
            await settle(session)
            rows = (
                await session.execute(
                    select(ChangeFeedRow.sequence, AuditEntry)
                    .join(AuditEntry, AuditEntry.id == ChangeFeedRow.audit_id)
                    .where(
                        ChangeFeedRow.sequence.between(sequence - span, sequence + span),
                        ChangeFeedRow.sequence != sequence,
                        ChangeFeedRow.tenant_id == tenant_id,
                    )
                    .order_by(ChangeFeedRow.sequence)
                )
            ).all()
        return [(int(s), entry) for s, entry in rows]

    async def prune(self, days: int | None = None, *, now: datetime | None = None) -> int:
        """Drop changes older than ``days`` (default :func:`retention_days`); how many."""
        cutoff = (now or utcnow()) - timedelta(days=days or retention_days())
        async with self._sessions.begin() as session:
            await settle(session)
            result = await session.execute(delete(ChangeFeedRow).where(ChangeFeedRow.at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)


async def changed_after(
    session: AsyncSession, sequence: int, tenant_id: int, key: str, actions: Sequence[str]
) -> int | None:
    """The newest change after ``sequence`` of ``tenant_id``'s audit ``key`` by one
    of ``actions`` (None when there is none): a revert's "edited again since"
    check. Settles first (:func:`settle`), so every committed edit is found; one
    committed later meets the apply's revision check."""
    await settle(session)
    found = await session.scalar(
        select(func.max(ChangeFeedRow.sequence))
        .join(AuditEntry, AuditEntry.id == ChangeFeedRow.audit_id)
        .where(
            ChangeFeedRow.sequence > sequence,
            ChangeFeedRow.tenant_id == tenant_id,
            ChangeFeedRow.action.in_(list(actions)),
            AuditEntry.key == key,
        )
    )
    return int(found) if found is not None else None


def change_event(row: ChangeFeedRow, slug: str | None) -> ChangeEvent:
    at = aware(row.at)
    assert at is not None
    return ChangeEvent(
        sequence=row.sequence,
        tenant=slug,
        environment=row.environment,
        keys=tuple(row.keys or ()),
        action=row.action,
        actor=row.actor,
        at=at,
        audit_id=row.audit_id,
    )
