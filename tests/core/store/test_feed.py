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


def _postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "PostgreSQL only: SQLite serializes writers itself (BEGIN IMMEDIATE), so a "
            "write appends its feed row directly and nothing can interleave"
        )


async def test_an_open_write_holds_back_no_other_writer_and_no_reader(
    services, tenant, database_url
):
    """A transaction that has appended but not committed makes no other writer
    wait (writes take no feed lock) and hides nothing already committed from a
    reader; its own change, when it commits, comes after what was read."""
    _postgres_only(database_url)
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    start = await services.feed.head()
    async with services.sessions.begin() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
        session.add(AuditEntry(actor="test", action="set", tenant_id=tenant_id, key=DUE))
        await session.flush()
        # under the old feed lock this waited for the open transaction to commit
        await asyncio.wait_for(services.settings.set(ADMIN, "other", DUE, 50), timeout=10)
        seen = await services.feed.since(start)
        assert [(e.tenant, e.actor) for e in seen] == [("other", ADMIN.name)]
    events = await services.feed.since(seen[-1].sequence)
    assert [(e.tenant, e.actor) for e in events] == [(tenant, "test")]
    assert events[0].sequence > seen[-1].sequence


async def test_of_two_writes_of_one_row_the_later_is_fed_later(services, tenant, database_url):
    """A write that waited for another's row lock is fed after it, even when it
    began first: its change is appended at its commit, after the first one's."""
    _postgres_only(database_url)
    from core.store.models import Override

    await services.settings.set(ADMIN, tenant, DUE, 41)
    start = await services.feed.head()
    async with services.sessions.begin() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
        # hold the override's row, as a write of it would
        await session.execute(
            select(Override.id)
            .where(Override.tenant_id == tenant_id, Override.key == DUE)
            .with_for_update()
        )
        later = asyncio.create_task(services.settings.set(ADMIN, tenant, DUE, 42))
        await asyncio.sleep(0.3)
        assert not later.done()  # it waits for the row
        session.add(AuditEntry(actor="holder", action="set", tenant_id=tenant_id, key=DUE))
    await later
    events = await services.feed.since(start)
    assert [e.actor for e in events] == ["holder", ADMIN.name]


async def test_one_transactions_changes_stay_side_by_side(services, tenant, database_url):
    """Changes of one transaction flushed apart, with another write committed in
    between, get consecutive sequences, after the write between them."""
    _postgres_only(database_url)
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    start = await services.feed.head()
    async with services.sessions.begin() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
        session.add(AuditEntry(actor="first", action="set", tenant_id=tenant_id, key=DUE))
        await session.flush()
        await services.settings.set(ADMIN, "other", DUE, 50)
        session.add(AuditEntry(actor="second", action="set", tenant_id=tenant_id, key=DUE))
        await session.flush()
    events = await services.feed.since(start)
    assert [e.actor for e in events] == [ADMIN.name, "first", "second"]
    assert events[2].sequence == events[1].sequence + 1


async def test_a_committed_change_waits_for_no_reader_to_be_settled(services, tenant, database_url):
    """On PostgreSQL a write leaves its change pending; any read of the feed gives
    it its sequence first (nothing is read around it)."""
    _postgres_only(database_url)
    from core.store.models import PendingChangeRow

    before = await services.feed.head()  # what the fixtures wrote, settled
    await services.settings.set(ADMIN, tenant, DUE, 44)
    async with services.sessions() as session:
        pending = await session.scalar(select(func.count()).select_from(PendingChangeRow))
        assert await session.scalar(select(func.max(ChangeFeedRow.sequence))) == before
    assert pending == 1
    head = await services.feed.head()
    assert head > before
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PendingChangeRow)) == 0
        newest = await session.get(ChangeFeedRow, head)
    assert newest is not None and newest.keys == [DUE] and newest.actor == ADMIN.name
