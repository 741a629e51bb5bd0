"""Run-time observations of customizations, stored per (customization, tenant,
hook): calls, failures, results that changed a value, a latency histogram, the
last error, and the setting keys the code read and returned.

The plugin runtime accumulates :class:`ObservationDelta` values in memory and
hands a batch of them to :meth:`ObservationStore.record`, which adds them with
an upsert (``INSERT ... ON CONFLICT DO UPDATE``, SQLite and PostgreSQL): one
statement for the calls, one more only when keys were seen, in one transaction,
however many customizations, tenants or keys the batch holds. Many workers add
to the same rows safely: every column is a sum, a max or a coalesce.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model import config
from core.model.auth import Principal
from core.model.clock import utcnow
from core.model.customizations import Observation, ObservationDelta, ObservedKey
from core.store.models import LATENCY_COLUMNS, ObservationRow, ObservedKeyRow, aware

#: the longest error message kept as an observation's last_error
MAX_ERROR_LENGTH = 2000
RETENTION_ENV = "TAILOR_OBSERVATION_RETENTION_DAYS"
#: days an observation nothing renewed is kept (a hook not called, a key not read)
DEFAULT_RETENTION_DAYS = 90


def retention_days() -> int:
    """``TAILOR_OBSERVATION_RETENTION_DAYS``, else :data:`DEFAULT_RETENTION_DAYS`."""
    return config.retention_days(RETENTION_ENV, DEFAULT_RETENTION_DAYS)


def _insert(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT (both have ``excluded`` and ``on_conflict_do_update``)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class ObservationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def prune(self, days: int | None = None, *, now: datetime | None = None) -> int:
        """Drop observations and observed keys last seen more than ``days`` ago
        (default :func:`retention_days`): evidence that nothing renewed in that
        long no longer speaks for what the code does. How many rows went."""
        cutoff = (now or utcnow()) - timedelta(days=days or retention_days())
        async with self._sessions.begin() as session:
            keys = await session.execute(
                delete(ObservedKeyRow).where(ObservedKeyRow.last_seen < cutoff)
            )
            calls = await session.execute(
                delete(ObservationRow).where(ObservationRow.last_seen < cutoff)
            )
        return int(getattr(keys, "rowcount", 0) or 0) + int(getattr(calls, "rowcount", 0) or 0)

    async def record(self, deltas: Sequence[ObservationDelta]) -> None:
        """Add ``deltas`` to the stored observations: at most two statements."""
        deltas = [d for d in deltas if d.calls or d.failures]
        if not deltas:
            return
        rows = []
        keys = []
        for d in deltas:
            seen = d.last_seen or d.first_seen
            row = {
                "customization": d.customization,
                "tenant": d.tenant,
                "hook": d.hook,
                "calls": d.calls,
                "failures": d.failures,
                "changed": d.changed,
                "last_error": d.last_error[:MAX_ERROR_LENGTH] if d.last_error else None,
                "last_error_at": d.last_error_at,
                "first_seen": d.first_seen or seen,
                "last_seen": seen,
                "version": d.version,
            }
            row.update(zip(LATENCY_COLUMNS, d.latency_buckets, strict=True))
            rows.append(row)
            for (key, direction), count in sorted(d.keys.items()):
                keys.append(
                    {
                        "customization": d.customization,
                        "tenant": d.tenant,
                        "hook": d.hook,
                        "key": key,
                        "direction": direction,
                        "count": count,
                        "last_seen": seen,
                    }
                )
        async with self._sessions.begin() as session:
            # a mapped class's __table__ is a Table (typed FromClause)
            table = cast(Table, ObservationRow.__table__)
            stmt = _insert(session, table)
            excluded = stmt.excluded
            updates = {
                "calls": table.c.calls + excluded.calls,
                "failures": table.c.failures + excluded.failures,
                "changed": table.c.changed + excluded.changed,
                "last_error": func.coalesce(excluded.last_error, table.c.last_error),
                "last_error_at": func.coalesce(excluded.last_error_at, table.c.last_error_at),
                "last_seen": excluded.last_seen,
                # the version of the latest calls (a tenant moved to another pin)
                "version": func.coalesce(func.nullif(excluded.version, ""), table.c.version),
            }
            updates.update({c: table.c[c] + excluded[c] for c in LATENCY_COLUMNS})
            stmt = stmt.on_conflict_do_update(
                index_elements=["customization", "tenant", "hook"], set_=updates
            )
            await session.execute(stmt, rows)
            if keys:
                ktable = cast(Table, ObservedKeyRow.__table__)
                kstmt = _insert(session, ktable)
                kex = kstmt.excluded
                kstmt = kstmt.on_conflict_do_update(
                    index_elements=["customization", "tenant", "hook", "key", "direction"],
                    set_={"count": ktable.c.count + kex.count, "last_seen": kex.last_seen},
                )
                await session.execute(kstmt, keys)

    async def list_all(
        self,
        principal: Principal | None = None,
        customization: str | None = None,
        tenant: str | None = None,
    ) -> list[Observation]:
        """Observations (two statements), limited to the tenants ``principal`` may
        see (None: the system itself, everything)."""
        async with self._sessions() as session:
            q = select(ObservationRow).order_by(
                ObservationRow.customization, ObservationRow.tenant, ObservationRow.hook
            )
            k = select(ObservedKeyRow).order_by(ObservedKeyRow.key, ObservedKeyRow.direction)
            if customization is not None:
                q = q.where(ObservationRow.customization == customization)
                k = k.where(ObservedKeyRow.customization == customization)
            if tenant is not None:
                q = q.where(ObservationRow.tenant == tenant)
                k = k.where(ObservedKeyRow.tenant == tenant)
            rows = list(await session.scalars(q))
            key_rows = list(await session.scalars(k))
        keys: dict[tuple[str, str, str], list[ObservedKey]] = {}
        for kr in key_rows:
            keys.setdefault((kr.customization, kr.tenant, kr.hook), []).append(
                ObservedKey(kr.key, kr.direction, kr.count, aware(kr.last_seen) or kr.last_seen)
            )
        return [
            Observation(
                customization=r.customization,
                tenant=r.tenant,
                hook=r.hook,
                calls=r.calls,
                failures=r.failures,
                changed=r.changed,
                latency_buckets=tuple(getattr(r, c) for c in LATENCY_COLUMNS),
                last_error=r.last_error,
                last_error_at=aware(r.last_error_at),
                first_seen=aware(r.first_seen) or r.first_seen,
                last_seen=aware(r.last_seen) or r.last_seen,
                keys=tuple(keys.get((r.customization, r.tenant, r.hook), ())),
                version=r.version,
            )
            for r in rows
            if principal is None or principal.in_scope(r.tenant)
        ]
