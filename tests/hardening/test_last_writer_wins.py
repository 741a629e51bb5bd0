"""Probe (issue 13): a write without an expected revision is last-writer-wins and
must succeed however many writers race it; one with an expected revision keeps
exact compare-and-set semantics. Real concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from core.model.errors import ConflictError
from core.store.settings import SettingChange
from tests.conftest import ADMIN

KEY = "billing.invoice.due_days"
WRITERS = 50


async def test_fifty_writers_without_expected_revision_all_succeed(services, tenant):
    values = [10 + i for i in range(WRITERS)]
    results = await asyncio.gather(
        *(services.settings.set(ADMIN, tenant, KEY, v, reason=f"w{v}") for v in values),
        return_exceptions=True,
    )
    failed = [r for r in results if not isinstance(r, SettingChange)]
    assert not failed, f"{len(failed)} of {WRITERS} failed, e.g. {failed[0]!r}"
    # each write owns one revision, and the audit log chains them without a gap
    assert sorted(r.revision for r in results) == list(range(1, WRITERS + 1))
    audit = await services.audit.list_all(ADMIN, tenant, KEY, limit=500)
    by_revision = {e.revision: e for e in audit}
    assert sorted(by_revision) == list(range(1, WRITERS + 1))
    for revision in range(2, WRITERS + 1):
        assert by_revision[revision].old == by_revision[revision - 1].new
    final = (await services.settings.resolve(ADMIN, tenant, keys=[KEY])).settings[0]
    assert (final.value, final.revision) == (by_revision[WRITERS].new, WRITERS)


async def test_writers_with_expected_revision_keep_compare_and_set(services, tenant):
    """All 50 send expectedRevision 0: exactly one wins, 49 are told why."""
    results = await asyncio.gather(
        *(
            services.settings.set(ADMIN, tenant, KEY, 10 + i, expected_revision=0)
            for i in range(WRITERS)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, SettingChange)]
    lost = [r for r in results if isinstance(r, ConflictError)]
    assert len(won) == 1 and len(lost) == WRITERS - 1, results
    assert all((c.expected, c.actual) == (0, 1) for c in lost)
    audit = await services.audit.list_all(ADMIN, tenant, KEY, limit=500)
    assert [(e.revision, e.new) for e in audit] == [(1, won[0].new)]


async def test_mixed_writers_lose_no_update(services, tenant):
    """Blind writers and compare-and-set writers at once: every blind write lands,
    and no compare-and-set write is based on a replaced value."""

    async def cas(value: int) -> SettingChange | ConflictError:
        current = (await services.settings.resolve(ADMIN, tenant, keys=[KEY])).settings[0]
        try:
            return await services.settings.set(
                ADMIN, tenant, KEY, value, expected_revision=current.revision
            )
        except ConflictError as exc:
            return exc

    jobs = [
        services.settings.set(ADMIN, tenant, KEY, 10 + i) if i % 2 else cas(10 + i)
        for i in range(WRITERS)
    ]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    blind = results[1::2]
    assert all(isinstance(r, SettingChange) for r in blind), blind
    accepted = [r for r in results if isinstance(r, SettingChange)]
    assert all(isinstance(r, SettingChange | ConflictError) for r in results), results
    assert sorted(r.revision for r in accepted) == list(range(1, len(accepted) + 1))
    audit = await services.audit.list_all(ADMIN, tenant, KEY, limit=500)
    assert len(audit) == len(accepted)
