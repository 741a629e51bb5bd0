"""Scheduled change requests, applied by real `tailor serve` processes sharing
one PostgreSQL database: each request exactly once, within a second of its
applyAt; one whose time passed while no server ran is applied at start-up and
says it was late."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from core.model.clock import utcnow
from core.store.authorization import ChangeState
from core.store.changes import ChangeKind, ProposedChange
from tests.conftest import ADMIN
from tests.servers import tailor_serve

KEYS = (
    "billing.invoice.due_days",
    "ui.table.page_size",
    "integrations.api.rate_limit_per_minute",
)


def _set(key: str, value: int, at) -> ProposedChange:
    return ProposedChange(
        "acme",
        ChangeKind.SET_SETTING,
        "scheduled",
        environment="production",
        key=key,
        value=value,
        apply_at=at,
    )


async def _wait_applied(services, ids, limit: float) -> dict:
    deadline = time.monotonic() + limit
    while True:
        found = {r.id: r for r in await services.changes.list(ADMIN, "acme") if r.id in ids}
        if all(r.state is not ChangeState.APPROVED for r in found.values()):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not applied within {limit}s: {found}")
        await asyncio.sleep(0.1)


async def test_two_servers_apply_each_scheduled_change_once(
    services, database_url, is_postgres, tmp_path
):
    if not is_postgres:
        pytest.skip("two server processes share one database on PostgreSQL only")
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    # due while no server runs: applied when one starts, late, and says so
    missed = await services.changes.propose(
        ADMIN, _set("ui.theme.mode", "dark", utcnow() + timedelta(seconds=0.5))
    )
    await asyncio.sleep(1.0)
    async with (
        tailor_serve(tmp_path / "a", database_url),
        tailor_serve(tmp_path / "b", database_url),
    ):
        await _wait_applied(services, {missed.id}, 10)
        start = await services.feed.head()
        at = utcnow() + timedelta(seconds=3)
        requests = [
            await services.changes.propose(ADMIN, _set(key, 100 + i, at))
            for i, key in enumerate(KEYS)
        ]
        assert all(r.state is ChangeState.APPROVED for r in requests)
        ids = {r.id for r in requests}
        done = await _wait_applied(services, ids, 10)
    for request in done.values():
        assert request.state is ChangeState.APPLIED, request
        assert request.applied_at is not None
        assert timedelta(0) <= request.applied_at - at < timedelta(seconds=1), request
    events = await services.feed.since(start, tenants=["acme"])
    sets = [e.keys for e in events if e.action == "set"]
    assert sorted(sets) == sorted((k,) for k in KEYS)  # each key once
    applies = [e for e in events if e.action == "apply_change"]
    assert len(applies) == len(KEYS)
    late = await services.changes.get(ADMIN, missed.id)
    assert late.state is ChangeState.APPLIED and "late" in (late.outcome or ""), late
