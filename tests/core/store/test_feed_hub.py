"""The change feed hub: one read per wake whatever the number of subscribers,
each subscriber hears its tenant (and environment) only, in order, without a
gap or a repeat, also when it is too slow for its queue or resumes."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest

from core.model.auth import Principal, Role
from core.model.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from core.store import feed
from core.store.db import count_statements
from core.store.feed import ChangeEvent
from core.store.feed_hub import FeedHub, Interest, Subscription
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"
APP = Principal(Role.APP, "front-end", frozenset({"acme"}))


async def take(events, count: int, within: float = 5.0) -> list[ChangeEvent]:
    got: list[ChangeEvent] = []

    async def collect() -> None:
        async for event in events:
            got.append(event)
            if len(got) == count:
                return

    await asyncio.wait_for(collect(), within)
    return got


async def first(subscription: Subscription) -> ChangeEvent:
    """The next change, then the subscription ends (as a client disconnecting)."""
    async with contextlib.aclosing(subscription.events()) as events:
        (event,) = await take(events, 1)
    return event


@contextlib.asynccontextmanager
async def running(hub: FeedHub):
    """The hub's loop, woken by this process's commits (as the app runs it)."""
    task = asyncio.create_task(hub.run())
    stop = feed.on_commit(hub.wake)
    try:
        await asyncio.sleep(0)
        yield hub
    finally:
        stop()
        hub.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_interest_hears_its_environment_the_tenant_scope_and_the_whole_tenant():
    def event(tenant: str | None, environment: str | None) -> ChangeEvent:
        return ChangeEvent(1, tenant, environment, (), "set", "x", datetime.now(UTC), None)

    production = Interest("acme", "production")
    assert production.wants(event("acme", "production"))
    assert production.wants(event("acme", None))  # tenant-wide, or the whole tenant
    assert not production.wants(event("acme", "sandbox"))
    assert not production.wants(event("other", "production"))
    assert not production.wants(event(None, None))  # a release import: no tenant
    everything = Interest("acme")
    assert everything.wants(event("acme", "sandbox")) and everything.wants(event("acme", None))
    assert not everything.wants(event("other", None))


async def test_one_read_per_wake_for_any_number_of_subscribers(services, tenant, database_url):
    """One read per wake, whatever the number of subscribers: one statement, and on
    PostgreSQL two more to settle what the writes left pending (core.store.feed)."""
    per_wake = 3 if database_url.startswith("postgresql") else 1
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    hub = FeedHub(services.feed)
    head = await services.feed.head()
    statements = []
    for count in (3, 40):
        subscriptions = [await hub.subscribe(APP, tenant, after=None) for _ in range(count)]
        others = [await hub.subscribe(ADMIN, "other", after=None) for _ in range(count)]
        await services.settings.set(ADMIN, tenant, DUE, 40 + count)
        await services.settings.set(ADMIN, "other", DUE, 40 + count)
        reads = hub.reads
        with count_statements(services.engine) as counter:
            assert await hub.poll() == 2
        statements.append(counter.count)
        assert hub.reads == reads + 1
        for subscription in subscriptions:
            event = await first(subscription)
            assert (event.tenant, event.keys, event.sequence > head) == (tenant, (DUE,), True)
        for subscription in others:
            event = await first(subscription)
            assert event.tenant == "other"
        assert hub.subscribers == 0  # each left when its events() ended
    assert statements == [per_wake, per_wake]


async def test_environment_filter_and_order(services, tenant):
    hub = FeedHub(services.feed)
    async with running(hub):
        production = await hub.subscribe(APP, tenant, "production", after=None)
        everything = await hub.subscribe(APP, tenant, after=None)
        await services.settings.set(ADMIN, tenant, DUE, 41)
        await services.settings.set(ADMIN, tenant, DUE, 42, environment="sandbox")
        await services.settings.set(ADMIN, tenant, DUE, 43, environment="production")
        heard = await take(production.events(), 2)
        assert [e.environment for e in heard] == [None, "production"]
        all_heard = await take(everything.events(), 3)
        assert [e.environment for e in all_heard] == [None, "sandbox", "production"]
        assert [e.sequence for e in all_heard] == sorted(e.sequence for e in all_heard)


async def test_resume_replays_then_goes_live_without_gap_or_repeat(services, tenant):
    start = await services.feed.head()
    for value in (41, 42, 43):
        await services.settings.set(ADMIN, tenant, DUE, value)
    missed = await services.feed.since(start, tenants=[tenant])
    hub = FeedHub(services.feed)
    async with running(hub):
        subscription = await hub.subscribe(APP, tenant, after=missed[0].sequence)
        events = subscription.events()
        replayed = await take(events, 2)
        assert [e.sequence for e in replayed] == [e.sequence for e in missed[1:]]
        await services.settings.set(ADMIN, tenant, DUE, 44)
        (live,) = await take(events, 1)
        assert live.sequence == await services.feed.head()


async def test_a_burst_of_commits_is_read_once(services, tenant, monkeypatch):
    """Wakes that arrive while the hub gathers a burst cost one read, not one
    each: what keeps a busy feed cheap for every worker."""
    monkeypatch.setattr(FeedHub, "COALESCE_SECONDS", 0.3)
    hub = FeedHub(services.feed)
    async with running(hub):
        subscription = await hub.subscribe(APP, tenant, after=None)
        reads = hub.reads
        listening = asyncio.create_task(take(subscription.events(), 5, within=10))
        for i in range(5):  # five commits, five wakes, within the window
            await services.settings.set(ADMIN, tenant, DUE, 40 + i)
        heard = await listening
    assert [e.keys for e in heard] == [(DUE,)] * 5
    assert hub.reads - reads == 1


async def test_concurrent_writers_are_heard_once_each_in_order(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    start = await services.feed.head()
    hub = FeedHub(services.feed)
    async with running(hub):
        subscription = await hub.subscribe(APP, tenant, after=start)

        async def write(i: int) -> None:
            await services.settings.set(ADMIN, (tenant, "other")[i % 2], DUE, 40 + i)

        listening = asyncio.create_task(take(subscription.events(), 10, within=30))
        await asyncio.gather(*(write(i) for i in range(20)))
        heard = await listening
    written = await services.feed.since(start, tenants=[tenant])
    assert [e.sequence for e in heard] == [e.sequence for e in written]


async def test_a_slow_subscriber_catches_up_from_the_feed(services, tenant, monkeypatch):
    monkeypatch.setattr(Subscription, "QUEUE", 3)
    monkeypatch.setattr(Subscription, "PAGE", 4)
    hub = FeedHub(services.feed)
    start = await services.feed.head()
    subscription = await hub.subscribe(APP, tenant, after=None)
    for value in range(41, 51):
        await services.settings.set(ADMIN, tenant, DUE, value)
    await hub.poll()  # ten changes offered: more than the queue holds
    heard = await take(subscription.events(), 10)
    written = await services.feed.since(start, tenants=[tenant])
    assert [e.sequence for e in heard] == [e.sequence for e in written]


async def test_refusals_are_the_settings_query_s(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    hub = FeedHub(services.feed)
    with pytest.raises(PermissionDeniedError) as denied:
        await hub.subscribe(APP, "other")
    assert "not in your token's scope" in denied.value.message
    with pytest.raises(PermissionDeniedError):
        await hub.subscribe(APP, "nowhere")  # no hint whether it exists
    with pytest.raises(NotFoundError) as missing:
        await hub.subscribe(ADMIN, "nowhere")
    assert missing.value.kind == "tenant"
    with pytest.raises(NotFoundError) as environment:
        await hub.subscribe(APP, tenant, "staging")
    assert environment.value.kind == "environment"
    with pytest.raises(InvalidInputError) as bad:
        await hub.subscribe(APP, tenant, after=-1)
    assert bad.value.field == "after"
    host = Principal(Role.HOST, "backend", frozenset({"acme"}))
    with pytest.raises(PermissionDeniedError):
        await hub.subscribe(host, tenant)
    assert hub.subscribers == 0


async def test_close_ends_every_subscription_and_refuses_new_ones(services, tenant):
    hub = FeedHub(services.feed)
    async with running(hub):
        subscription = await hub.subscribe(APP, tenant, after=None)
        listening = asyncio.create_task(take(subscription.events(), 1))
        await asyncio.sleep(0.05)
        hub.close()
        assert await listening == []  # ended, without an event
        with pytest.raises(InvalidInputError):
            await hub.subscribe(APP, tenant)
    assert hub.subscribers == 0


async def test_a_notice_of_a_tenant_nobody_here_listens_to_reads_nothing(services, tenant):
    """The NOTIFY names the tenant (feed:<id>): a worker whose subscribers are of
    other tenants does not read the feed for it (what keeps writes to other
    tenants from costing every worker a read)."""
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    mine = await services.feed.check_watch(ADMIN, tenant, None)
    theirs = await services.feed.check_watch(ADMIN, "other", None)
    hub = FeedHub(services.feed)
    task = asyncio.create_task(hub.run())  # woken only by the calls below
    try:
        await asyncio.sleep(0)
        subscription = await hub.subscribe(APP, tenant, after=None)

        async def reads_after(wake) -> int:
            reads = hub.reads
            wake()
            await asyncio.sleep(FeedHub.COALESCE_SECONDS + 0.2)
            return hub.reads - reads

        await services.settings.set(ADMIN, "other", DUE, 41)
        assert await reads_after(lambda: hub.wake(feed.feed_tenants(f"feed:{theirs}"))) == 0
        await services.settings.set(ADMIN, tenant, DUE, 42)
        assert await reads_after(lambda: hub.wake(feed.feed_tenants(f"feed:{theirs},{mine}"))) == 1
        # a notice of no one tenant, or after a reconnect, reads
        assert await reads_after(lambda: hub.wake(feed.feed_tenants(feed.FEED))) == 1
        event = await first(subscription)
        assert (event.tenant, event.keys) == (tenant, (DUE,))
        assert hub.subscribers == 0
        # nobody listens to the tenant any more: its notices read nothing either
        assert await reads_after(lambda: hub.wake({mine})) == 0
    finally:
        hub.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_the_notice_names_its_tenants_or_none():
    assert feed.feed_topic({7}) == "feed:7" and feed.feed_tenants("feed:7") == {7}
    assert feed.feed_topic({8, 7}) == "feed:7,8" and feed.feed_tenants("feed:7,8") == {7, 8}
    assert feed.feed_topic({7, None}) == feed.feed_topic({None}) == feed.FEED == "feed"
    assert feed.feed_topic(range(feed.TOPIC_TENANTS + 1)) == feed.FEED
    assert len(feed.feed_topic(range(10**6, 10**6 + feed.TOPIC_TENANTS))) < 8000
    assert feed.feed_tenants("feed") is None and feed.feed_tenants("registry") is None
    assert feed.feed_tenants("feed:7,x") is None
    assert feed.is_feed("feed:7") and feed.is_feed("feed") and not feed.is_feed("registry")


async def test_a_commit_notifies_its_tenant(services, tenant, database_url):
    """On PostgreSQL, the NOTIFY a commit sends names its tenant; a change of no
    tenant (a webhook's creation, a release import) names none."""
    if not database_url.startswith("postgresql"):
        pytest.skip("NOTIFY: PostgreSQL only (SQLite has this process's on_commit)")
    from core.store.invalidation import Listener

    heard: list[str] = []
    listener = Listener(database_url, heard.append)
    await listener.start()
    try:
        tenant_id = await services.feed.check_watch(ADMIN, tenant, None)
        await services.settings.set(ADMIN, tenant, DUE, 43)
        await services.tenants.create(ADMIN, "other", "Other", "2.0")
        for _ in range(100):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.05)
        assert heard[:1] == [f"feed:{tenant_id}"], heard
        assert len(heard) == 2 and heard[1].startswith("feed:") and heard[1] != heard[0]
    finally:
        await listener.stop()


async def test_a_server_announces_commits_after_them_coalesced(services, tenant, database_url):
    """With an announcer running (as in every server process), a write sends no
    NOTIFY of its own (PostgreSQL's notify lock would be held through its commit);
    the announcer sends one notice after, for every commit that came together,
    naming their tenants, from the listener's connection."""
    if not database_url.startswith("postgresql"):
        pytest.skip("NOTIFY: PostgreSQL only (SQLite has this process's on_commit)")
    from core.store.db import count_statements
    from core.store.invalidation import Listener

    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    heard: list[str] = []
    listener = Listener(database_url, heard.append)
    await listener.start()
    announcer = feed.Announcer(services.engine, listener.notify)
    task = asyncio.create_task(announcer.run())
    await asyncio.sleep(0)
    try:
        ids = {
            slug: await services.feed.check_watch(ADMIN, slug, None) for slug in (tenant, "other")
        }
        with count_statements(services.engine, keep=True) as counter:
            for value in range(10):
                await asyncio.gather(
                    services.settings.set(ADMIN, tenant, DUE, 40 + value),
                    services.settings.set(ADMIN, "other", DUE, 40 + value),
                )
        # nothing of the feed in the writes themselves: the trigger appends at commit
        assert counter.statements and not [
            s for s in counter.statements if "pg_notify" in s or "change_feed" in s
        ]

        def named() -> set[int]:
            return {i for topic in heard for i in feed.feed_tenants(topic) or ()}

        for _ in range(100):
            if set(ids.values()) <= named():
                break
            await asyncio.sleep(0.05)
        assert set(ids.values()) <= named(), heard
        # 20 commits, fewer announcements, each one notice naming its tenants
        assert 1 <= announcer.sent < 20, announcer.sent
        assert len(heard) == announcer.sent, heard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await listener.stop()
    # stopped: writes announce themselves again, inside their transaction
    with count_statements(services.engine, keep=True) as counter:
        await services.settings.set(ADMIN, tenant, DUE, 60)
    assert [s for s in counter.statements or [] if "pg_notify" in s]
