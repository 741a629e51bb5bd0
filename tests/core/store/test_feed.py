"""The change feed: every committed change appended in its own transaction, in
commit order, and nothing for a write that was refused."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.model.clock import utcnow
from core.model.errors import ConflictError, InvalidInputError
from core.store import feed
from core.store.models import AuditEntry, ChangeFeedRow, Tenant
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"


async def _all(services):
    return await services.feed.since(0)


async def test_override_writes_are_fed_with_their_keys_and_actor(services, tenant):
    start = await services.feed.head()
    await services.settings.set(ADMIN, tenant, DUE, 45, environment="production")
    await services.settings.reset(ADMIN, tenant, DUE, environment="production")
    events = await services.feed.since(start)
    assert [(e.tenant, e.environment, e.keys, e.action) for e in events] == [
        (tenant, "production", (DUE,), "set"),
        (tenant, "production", (DUE,), "reset"),
    ]
    assert all(e.actor == ADMIN.name and e.audit_id is not None for e in events)
    assert events[0].sequence < events[1].sequence
    assert await services.feed.head() == events[-1].sequence


async def test_a_refused_write_feeds_nothing(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 45)
    head = await services.feed.head()
    with pytest.raises(ConflictError):
        await services.settings.set(ADMIN, tenant, DUE, 50, expected_revision=7)
    with pytest.raises(InvalidInputError):
        await services.settings.set(ADMIN, tenant, DUE, 50, expected_revision=-1)
    assert await services.feed.head() == head


async def test_tenant_creation_release_import_and_upgrade_are_fed(services):
    start = await services.feed.head()
    await services.tenants.create(ADMIN, "initech", "Initech", "1.0")
    await services.readiness.upgrade(ADMIN, "initech", "2.0", force=True, reason="test")
    events = await services.feed.since(start)
    assert [(e.tenant, e.action, e.keys) for e in events] == [
        ("initech", "create_tenant", ()),
        ("initech", "upgrade_tenant", ()),
    ]
    imports = [e for e in await _all(services) if e.action == "release_imported"]
    assert imports and all(e.tenant is None and e.keys == () for e in imports)


async def test_since_reads_one_tenant_in_order(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    start = await services.feed.head()
    for value in (41, 42, 43):
        await services.settings.set(ADMIN, tenant, DUE, value)
        await services.settings.set(ADMIN, "other", DUE, value)
    mine = await services.feed.since(start, tenants=[tenant])
    assert len(mine) == 3 and {e.tenant for e in mine} == {tenant}
    assert [e.sequence for e in mine] == sorted(e.sequence for e in mine)
    assert len(await services.feed.since(start, limit=4)) == 4
    assert await services.feed.since(start, tenants=[]) == []


async def test_get_returns_the_change_with_its_audit_entry(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 45)
    event = (await services.feed.since(0, tenants=[tenant]))[-1]
    found = await services.feed.get(event.sequence)
    assert found is not None
    got, entry = found
    assert got == event
    assert entry is not None and (entry.key, entry.new, entry.revision) == (DUE, 45, 1)
    assert await services.feed.get(event.sequence + 1000) is None


async def test_listeners_hear_commits_not_rollbacks(services, tenant):
    heard: list[int] = []
    stop = feed.on_commit(lambda: heard.append(1))
    try:
        await services.settings.set(ADMIN, tenant, DUE, 45)
        assert heard == [1]
        with pytest.raises(ConflictError):
            await services.settings.set(ADMIN, tenant, DUE, 50, expected_revision=9)
        assert heard == [1]
    finally:
        stop()
    await services.settings.set(ADMIN, tenant, DUE, 46)
    assert heard == [1]


async def test_prune_drops_only_what_is_past_retention(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 45)
    await services.settings.set(ADMIN, tenant, DUE, 46)
    old, new = (await services.feed.since(0, tenants=[tenant]))[-2:]
    async with services.sessions.begin() as session:
        await session.execute(
            update(ChangeFeedRow)
            .where(ChangeFeedRow.sequence == old.sequence)
            .values(at=utcnow() - timedelta(days=31))
        )
    assert await services.feed.prune(30) >= 1
    left = [e.sequence for e in await services.feed.since(0, tenants=[tenant])]
    assert old.sequence not in left and new.sequence in left
    # the audit log is never pruned
    assert (await services.feed.get(new.sequence)) is not None


def test_retention_is_read_from_the_environment_or_refused():
    assert feed.retention_days({}) == feed.DEFAULT_RETENTION_DAYS
    assert feed.retention_days({feed.RETENTION_ENV: " 7 "}) == 7
    for bad in ("seven", "0", "-3"):
        with pytest.raises(InvalidInputError) as err:
            feed.retention_days({feed.RETENTION_ENV: bad})
        assert feed.RETENTION_ENV in str(err.value)


async def test_readers_never_find_an_older_sequence_later(services, tenant):
    """Writers commit concurrently while a reader follows the feed: whatever it
    has read up to N, nothing at or below N shows up afterwards (the order that
    lets a subscriber resume after N)."""
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    start = await services.feed.head()
    writes = 30
    seen: list[int] = []
    done = asyncio.Event()

    async def write(i: int) -> None:
        await services.settings.set(ADMIN, (tenant, "other")[i % 2], f"{DUE}", 40 + i)

    async def follow() -> None:
        after = start
        while True:
            finished = done.is_set()
            batch = await services.feed.since(after)
            for event in batch:
                assert event.sequence > after
                seen.append(event.sequence)
                after = event.sequence
            if finished and not batch:
                return
            await asyncio.sleep(0)

    reader = asyncio.create_task(follow())
    await asyncio.gather(*(write(i) for i in range(writes)))
    done.set()
    await reader
    assert len(seen) == writes == len(set(seen))
    async with services.sessions() as session:
        total = await session.scalar(
            select(func.count()).select_from(ChangeFeedRow).where(ChangeFeedRow.sequence > start)
        )
    assert total == writes


async def test_a_later_appender_waits_for_an_earlier_one_to_commit(services, tenant):
    """A transaction that has appended (sequence N) but not committed holds back
    every later appender, so no reader can see N+1 while N may still appear."""
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    start = await services.feed.head()
    async with services.sessions.begin() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
        session.add(AuditEntry(actor="test", action="set", tenant_id=tenant_id, key=DUE))
        await session.flush()
        later = asyncio.create_task(services.settings.set(ADMIN, "other", DUE, 50))
        await asyncio.sleep(0.5)
        assert not later.done()
        assert await services.feed.since(start) == []
    await later
    events = await services.feed.since(start)
    assert [(e.tenant, e.actor) for e in events] == [(tenant, "test"), ("other", ADMIN.name)]
