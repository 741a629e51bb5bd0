"""The change feed: every committed change, in commit order.

Every write that changes what a tenant sees already writes an audit entry in its
transaction (overrides, enablements, version pins, release imports, triage
decisions, change requests, tenant upgrades). The feed is appended from those
entries by one session hook (:func:`append_for_audit`), in the same flush, so no
write path can change data without being heard: a write that forgets the feed
would have to forget the audit log too.

**Order.** ``sequence`` grows strictly in *commit* order, so a reader that has
seen ``N`` has seen every change committed before it and never finds an older
sequence later. On PostgreSQL a transaction that appends takes one transaction
advisory lock (:data:`FEED_LOCK`) before its first feed row, held to its commit:
appenders commit one after the other (the lock is taken at the flush that writes
the audit entry, the end of every write, so little of a transaction is
serialized). SQLite already serializes writers (``BEGIN IMMEDIATE``).

**Heard at once.** The same transaction sends ``NOTIFY`` with :data:`FEED` on the
invalidation channel (:mod:`core.store.invalidation`): every worker's listener
hears it when the transaction commits. In the process that committed, the
callbacks given to :func:`on_commit` run too (the only path on SQLite).

**Kept for a while.** :meth:`FeedService.prune` drops rows older than
``TAILOR_FEED_RETENTION_DAYS`` (default :data:`DEFAULT_RETENTION_DAYS`); the
audit log itself is never pruned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
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

#: payload on the invalidation channel: the change feed has new rows
FEED = "feed"
#: the transaction advisory lock that orders appenders (PostgreSQL)
FEED_LOCK = 0x7A11_0F_EED
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
    :mod:`core.store.db`): one feed row for each audit entry about to be written."""
    entries = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if not entries:
        return
    transaction = session.get_transaction()
    if session.info.get(_APPENDED) is not transaction:
        session.info[_APPENDED] = transaction
        if session.get_bind().dialect.name == "postgresql":
            # one round trip for both (bench/feed_latency.py: a write's statements
            # are its cost); the NOTIFY is sent at commit whatever the order
            session.execute(
                text("SELECT pg_advisory_xact_lock(:lock), pg_notify(:channel, :topic)"),
                {"lock": FEED_LOCK, "channel": CHANNEL, "topic": FEED},
            )
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


def after_commit(session: Session) -> None:
    """``after_commit`` hook: wake this process's feed readers."""
    if session.info.pop(_APPENDED, None) is None:
        return
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
        only of ``tenants`` when given (the caller has checked scope). One
        statement."""
        query = (
            select(ChangeFeedRow, Tenant.slug)
            .outerjoin(Tenant, Tenant.id == ChangeFeedRow.tenant_id)
            .where(ChangeFeedRow.sequence > after)
            .order_by(ChangeFeedRow.sequence)
            .limit(limit)
        )
        if tenants is not None:
            query = query.where(Tenant.slug.in_(list(tenants)))
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [change_event(row, slug) for row, slug in rows]

    async def recent(self, tenant: str, limit: int = 20) -> list[ChangeEvent]:
        """``tenant``'s newest changes, newest first (the caller has checked
        scope). One statement."""
        query = (
            select(ChangeFeedRow, Tenant.slug)
            .join(Tenant, Tenant.id == ChangeFeedRow.tenant_id)
            .where(Tenant.slug == tenant)
            .order_by(ChangeFeedRow.sequence.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [change_event(row, slug) for row, slug in rows]

    async def check_watch(self, principal: Principal, tenant: str, environment: str | None) -> None:
        """Refuse unless ``principal`` may hear ``tenant``'s changes (of
        ``environment``): the errors of the ``settings`` query (permission, then a
        tenant or environment that does not exist). One statement."""
        principal.require_read_settings(tenant)
        async with self._sessions() as session:
            ref = await load_tenant_ref(session, tenant)
        ref.check_environment(environment)

    async def head(self) -> int:
        """The newest sequence (0 when the feed is empty)."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.max(ChangeFeedRow.sequence))) or 0)

    async def get(self, sequence: int) -> tuple[ChangeEvent, AuditEntry | None] | None:
        """One change with its audit entry (None when it was never there or pruned)."""
        async with self._sessions() as session:
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

    async def prune(self, days: int | None = None, *, now: datetime | None = None) -> int:
        """Drop changes older than ``days`` (default :func:`retention_days`); how many."""
        cutoff = (now or utcnow()) - timedelta(days=days or retention_days())
        async with self._sessions.begin() as session:
            result = await session.execute(delete(ChangeFeedRow).where(ChangeFeedRow.at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)


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
