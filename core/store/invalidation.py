"""Cross-worker cache invalidation through PostgreSQL ``LISTEN/NOTIFY``.

Several stateless workers may serve one database. What a worker caches (today: the
plugin runtime's enabled map and per-tenant hook callers, which follow the
registry) must not outlive a write committed by another worker. A write that
changes cached data calls :func:`notify` inside its transaction: PostgreSQL
delivers ``NOTIFY`` to every listening connection when (and only if) the
transaction commits. Each worker keeps one :class:`Listener` connection and runs
the local invalidation for every message.

On SQLite there is one process (``--workers`` > 1 is refused, see
:func:`workers_refusal`), so :func:`notify` does nothing and in-process listeners
(``RegistryService.subscribe``) are enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("tailor.invalidation")

CHANNEL = "tailor_invalidate"
#: payload naming what changed: customization registrations and enablements
REGISTRY = "registry"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def workers_refusal(url: str, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve ``url`` (None: they can)."""
    if workers > 1 and not is_postgres(url):
        return (
            f"--workers {workers} needs PostgreSQL: a SQLite database is one file that "
            "one process writes, and workers share nothing else to learn of each other's "
            "writes; serve SQLite with one worker, or set TAILOR_DATABASE_URL to a "
            "postgresql+asyncpg:// URL"
        )
    return None


async def notify(session: AsyncSession, topic: str) -> None:
    """Tell every worker, once this transaction commits, that ``topic`` changed."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :topic)"), {"channel": CHANNEL, "topic": topic}
        )


class Listener:
    """One dedicated connection that ``LISTEN``s on :data:`CHANNEL` and calls
    ``on_message(topic)`` for every notification (from any worker, this one too).

    When the connection is lost (the server restarted, its backend was terminated)
    the listener reconnects by itself, retrying every :attr:`RETRY_SECONDS`, and then
    calls ``on_message(REGISTRY)`` once: a notification sent while it was away is
    lost, so everything it guards is treated as changed."""

    #: seconds between attempts to reconnect a lost connection
    RETRY_SECONDS = 1.0

    def __init__(self, url: str, on_message: Callable[[str], None]) -> None:
        self._url = url
        self._on_message = on_message
        self._connection: Any = None
        self._stopped = False
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and listen (PostgreSQL only; a no-op elsewhere)."""
        if not is_postgres(self._url):
            return
        self._stopped = False
        await self._connect()

    async def _connect(self) -> None:
        import asyncpg

        dsn = make_url(self._url).set(drivername="postgresql").render_as_string(False)
        connection = await asyncpg.connect(dsn)
        await connection.add_listener(CHANNEL, self._received)
        connection.add_termination_listener(self._lost)
        self._connection = connection

    def _lost(self, _connection: Any) -> None:
        if self._stopped or self._reconnecting is not None:
            return
        log.warning("invalidation listener lost its connection; reconnecting")
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            while not self._stopped:
                try:
                    await self._connect()
                except Exception as exc:  # the server is not back yet (any driver error)
                    log.debug("invalidation listener: still unreachable: %s", exc)
                    await asyncio.sleep(self.RETRY_SECONDS)
                    continue
                log.warning("invalidation listener reconnected")
                self._received(None, 0, CHANNEL, REGISTRY)
                return
        finally:
            self._reconnecting = None

    def _received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._on_message(payload)
        except Exception:  # a broken invalidation must not kill the listener
            log.exception("invalidation for %r failed", payload)

    async def notify(self, topic: str) -> None:
        """Send ``topic`` on :data:`CHANNEL` from this connection, in a statement of
        its own transaction (see :class:`core.store.feed.Announcer`). Raises when
        the connection is down (the caller logs; listeners re-read anyway)."""
        if self._connection is None:
            raise ConnectionError("the invalidation listener is not connected")
        await self._connection.execute("SELECT pg_notify($1, $2)", CHANNEL, topic)

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def stop(self) -> None:
        self._stopped = True
        reconnecting, self._reconnecting = self._reconnecting, None
        if reconnecting is not None:
            reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconnecting
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await asyncio.wait_for(connection.close(), 5)
        except (TimeoutError, OSError):
            connection.terminate()
