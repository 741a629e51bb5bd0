"""One process's subscribers to the change feed, fed from one reader.

A subscriber (GraphQL ``settingsChanged``, over SSE or ``graphql-transport-ws``)
hears one tenant's changes, optionally of one environment. A process holds one
:class:`FeedHub`. It is woken when a change may have been committed: by the
invalidation listener's :data:`~core.store.feed.FEED` notice (any worker's
commit, PostgreSQL), after a reconnect (a notice may have been lost), by
:func:`core.store.feed.on_commit` (this process's commits: the only path on
SQLite), and every :attr:`FeedHub.POLL_SECONDS` in case all of those missed one.
Each wake reads the feed **once** above its high-water mark
(:meth:`~core.store.feed.FeedService.since`) and hands each change to the
subscribers of its tenant in memory: the database sees one query per wake and
per process, never one per subscriber.

**No gap, no repeat.** A subscriber joins the hub before it reads what it missed
(``after``): every change above the hub's mark when it joined reaches its queue,
every change at or below the mark was committed before its replay read (the feed
grows in commit order, see :mod:`core.store.feed`), and it drops any sequence it
has already delivered. A subscriber too slow for its queue
(:attr:`Subscription.QUEUE`) is not dropped: it reads the feed itself from its
last sequence, then carries on live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, Collection
from dataclasses import dataclass

from core.model.auth import Principal
from core.model.errors import InvalidInputError
from core.store.feed import ChangeEvent, FeedService, call_in_loop

log = logging.getLogger("tailor.feed")


@dataclass(frozen=True)
class Interest:
    """What one subscriber hears: ``tenant``'s changes; with ``environment``, only
    those of the tenant-wide scope, of that environment, and of the whole tenant
    (an enablement, a pin, an upgrade: no environment, ``keys`` empty)."""

    tenant: str
    environment: str | None = None

    def wants(self, event: ChangeEvent) -> bool:
        if event.tenant != self.tenant:
            return False
        return (
            self.environment is None
            or event.environment is None
            or event.environment == self.environment
        )


class Subscription:
    """One subscriber's changes, in sequence order (iterate :meth:`events`)."""

    #: changes kept for a subscriber that has not taken them yet; beyond, it
    #: catches up from the feed itself
    QUEUE = 1000
    #: changes read at once while catching up
    PAGE = 500

    def __init__(self, hub: FeedHub, interest: Interest, after: int | None) -> None:
        self._hub = hub
        self.interest = interest
        #: the last sequence handled (delivered or filtered out)
        self.last = after or 0
        #: read the feed from ``last`` before taking the queue: when resuming, and
        #: when the queue overflowed
        self._behind = after is not None
        self._pending: deque[ChangeEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, event: ChangeEvent) -> None:
        """Called by the hub with a change of this subscriber's tenant."""
        if self._closed or event.sequence <= self.last:
            return
        if len(self._pending) >= self.QUEUE:
            # too slow: forget the queue and read the feed from self.last instead
            self._pending.clear()
            self._behind = True
        elif not self._behind:
            self._pending.append(event)
        self._ready.set()

    def close(self) -> None:
        """End :meth:`events` (the server is stopping)."""
        self._closed = True
        self._ready.set()

    async def events(self) -> AsyncGenerator[ChangeEvent, None]:
        """The changes, replayed from ``after`` first, then live, until
        :meth:`close` or the consumer stops."""
        try:
            while not self._closed:
                if self._behind:
                    async for event in self._read_feed():
                        yield event
                    continue
                while self._pending and not self._behind and not self._closed:
                    event = self._pending.popleft()
                    if event.sequence > self.last:
                        self.last = event.sequence
                        if self.interest.wants(event):
                            yield event
                if self._pending or self._behind or self._closed:
                    continue
                self._ready.clear()
                await self._ready.wait()
        finally:
            self._hub.leave(self)

    async def _read_feed(self) -> AsyncGenerator[ChangeEvent, None]:
        """Catch up from the feed itself, page by page. What was queued is
        committed, so these reads have it; what the hub offers meanwhile is queued
        (and dropped again when the reads have it)."""
        self._behind = False
        self._pending.clear()
        while not self._closed:
            batch = await self._hub.feed.since(
                self.last, tenants=[self.interest.tenant], limit=self.PAGE
            )
            for event in batch:
                if event.sequence > self.last:
                    self.last = event.sequence
                    if self.interest.wants(event):
                        yield event
                if self._behind or self._closed:  # overflowed again while delivering
                    return
            if len(batch) < self.PAGE:
                return


class FeedHub:
    """The change feed, read once per wake, fanned out to this process's
    subscribers (see the module's docstring)."""

    #: seconds between safety re-reads while anyone listens
    POLL_SECONDS = 3.0
    #: seconds a wake waits for more before reading: a burst of commits (one
    #: wake each) is read once, which bounds the reads a busy feed costs every
    #: worker to 1/COALESCE_SECONDS a second, at that much added latency
    COALESCE_SECONDS = 0.02
    #: changes read at once
    PAGE = 500

    def __init__(self, feed: FeedService) -> None:
        self.feed = feed
        self._by_tenant: dict[str, set[Subscription]] = {}
        #: tenant id -> slug of the tenants with subscribers (a notice names the id)
        self._watched: dict[int, str] = {}
        #: the highest sequence handed out (None: nobody listens, nothing tracked)
        self._high: int | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        #: reads of the feed by :meth:`poll` (one per wake with subscribers)
        self.reads = 0

    # -- subscribing ---------------------------------------------------------
    async def subscribe(
        self,
        principal: Principal,
        tenant: str,
        environment: str | None = None,
        after: int | None = None,
    ) -> Subscription:
        """Start hearing ``tenant``'s changes (after sequence ``after``: the missed
        ones first; None: from now on). The caller must be allowed to read the
        tenant's settings; the tenant and environment must exist (the same errors
        as the ``settings`` query)."""
        if after is not None and after < 0:
            raise InvalidInputError(
                "after", f"must be a sequence (0 or more) from an earlier event; got {after}"
            )
        if self._closed:
            raise InvalidInputError("settingsChanged", "the server is stopping: reconnect")
        tenant_id = await self.feed.check_watch(principal, tenant, environment)
        subscription = Subscription(self, Interest(tenant, environment), after)
        high = await self._join(subscription, tenant_id)
        if after is None:
            subscription.last = high
        return subscription

    async def _join(self, subscription: Subscription, tenant_id: int) -> int:
        async with self._lock:
            # heard before the head is read: a commit after it wakes this hub
            self._watched[tenant_id] = subscription.interest.tenant
            if self._high is None:
                self._high = await self.feed.head()
            self._by_tenant.setdefault(subscription.interest.tenant, set()).add(subscription)
            return self._high

    def leave(self, subscription: Subscription) -> None:
        tenant = subscription.interest.tenant
        subscribers = self._by_tenant.get(tenant)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_tenant[tenant]
                for tenant_id in [i for i, slug in self._watched.items() if slug == tenant]:
                    del self._watched[tenant_id]

    @property
    def stopping(self) -> bool:
        """Closed (the server is stopping): it takes no new subscriber."""
        return self._closed

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._by_tenant.values())

    # -- being woken -----------------------------------------------------------
    def wake(self, tenant_ids: Collection[int] | None = None) -> None:
        """A change may have been committed (``tenant_ids``: all of it those
        tenants', :func:`core.store.feed.feed_tenants`): read the feed soon, unless
        it is of tenants nobody here listens to (the safety re-read still reads
        it, so the hub's mark keeps up). Callable from any thread, and before
        :meth:`run` has started."""
        if tenant_ids is not None and not any(t in self._watched for t in tenant_ids):
            return
        call_in_loop(self._loop, self._wake.set)

    async def run(self) -> None:
        """Read on every wake and every :attr:`POLL_SECONDS`, until cancelled or
        :meth:`close`. A failed read (the database is down) is logged and retried
        at the next turn."""
        self._loop = asyncio.get_running_loop()
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.POLL_SECONDS)
            if self._wake.is_set() and self.COALESCE_SECONDS > 0:
                await asyncio.sleep(self.COALESCE_SECONDS)  # let a burst gather
            self._wake.clear()
            if self._closed:
                return
            try:
                await self.poll()
            except Exception as exc:  # the database is down: the next turn retries
                log.warning("change feed hub: read failed: %s: %s", type(exc).__name__, exc)

    async def poll(self) -> int:
        """Read what is new above the mark once, hand it to the subscribers; how
        many changes were read."""
        async with self._lock:
            if not self._by_tenant:
                # nobody listens: track nothing (the next subscriber reads the head)
                self._high = None
                return 0
            if self._high is None:  # pragma: no cover - set whenever someone joins
                return 0
            read = 0
            while True:
                self.reads += 1
                batch = await self.feed.since(self._high, limit=self.PAGE)
                for event in batch:
                    for subscription in list(self._by_tenant.get(event.tenant or "", ())):
                        subscription.offer(event)
                if batch:
                    self._high = batch[-1].sequence
                read += len(batch)
                if len(batch) < self.PAGE:
                    return read

    def close(self) -> None:
        """End every subscription (the server is stopping) and refuse new ones."""
        self._closed = True
        for subscribers in list(self._by_tenant.values()):
            for subscription in list(subscribers):
                subscription.close()
        self.wake()
