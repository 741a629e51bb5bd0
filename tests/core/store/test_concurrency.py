"""At least 50 concurrent writers at the same settings lose no update, on SQLite
and PostgreSQL (the suite runs on both)."""

from __future__ import annotations

import asyncio

from core.model.errors import ConflictError
from core.store.settings import SettingChange
from tests.conftest import ADMIN

KEYS = ("billing.invoice.due_days", "billing.dunning.reminder_interval_days")
WRITERS_PER_KEY = 30  # 60 concurrent writers in all


async def writer(services, key: str, value: int, optimistic: bool):
    """Read the revision, then write with it (optimistic) or without (retrying)."""
    expected = None
    if optimistic:
        resolved = await services.settings.resolve(ADMIN, "acme", keys=[key])
        expected = resolved.settings[0].revision
    try:
        return await services.settings.set(
            ADMIN, "acme", key, value, expected_revision=expected, reason=f"writer {value}"
        )
    except ConflictError as exc:
        return exc


async def test_concurrent_writers_lose_no_update(services, tenant):
    keys_known = {
        d.key for d in (await services.settings.resolve(ADMIN, tenant, keys=list(KEYS))).settings
    }
    assert keys_known == set(KEYS)
    jobs = []
    for key in KEYS:
        for i in range(WRITERS_PER_KEY):
            # values within every constraint, distinct per writer
            jobs.append(writer(services, key, 10 + i, optimistic=i % 3 != 0))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    unexpected = [r for r in results if not isinstance(r, SettingChange | ConflictError)]
    assert not unexpected, unexpected

    for index, key in enumerate(KEYS):
        mine = results[index * WRITERS_PER_KEY : (index + 1) * WRITERS_PER_KEY]
        accepted = [r for r in mine if isinstance(r, SettingChange)]
        rejected = [r for r in mine if isinstance(r, ConflictError)]
        assert accepted, f"{key}: nobody won"
        assert rejected, f"{key}: no writer raced another: the test proves nothing"
        # every rejected write got a conflict that says why
        assert all(r.key == key and r.expected < r.actual for r in rejected)
        # revisions are contiguous and each accepted write owns exactly one
        revisions = sorted(r.revision for r in accepted)
        assert revisions == list(range(1, len(accepted) + 1)), revisions
        # the audit log holds exactly the accepted writes, each with its value
        audit = await services.audit.list_all(ADMIN, tenant, key, limit=500)
        assert sorted((e.revision, e.new) for e in audit) == sorted(
            (r.revision, r.new) for r in accepted
        )
        # each audit entry's old value is the previous revision's new value: no
        # write was based on a value another write had already replaced
        by_revision = {e.revision: e for e in audit}
        for revision in range(2, len(accepted) + 1):
            assert by_revision[revision].old == by_revision[revision - 1].new
        # the final value is the last accepted write's
        final = (await services.settings.resolve(ADMIN, tenant, keys=[key])).settings[0]
        last = max(accepted, key=lambda r: r.revision)
        assert (final.value, final.revision) == (last.new, last.revision)
