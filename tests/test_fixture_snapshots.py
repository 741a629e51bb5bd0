"""The fixtures' snapshots (tests/conftest.py): a state restored from a snapshot
is the state building it gives, and a test's writes never reach the next test."""

from __future__ import annotations

import datetime
from typing import Any

from core.store.bootstrap import sync_product_releases
from plugins.catalog import tailor_extension_points
from tests.conftest import ADMIN, Snapshot, _capture, _empty, demo_with_samples, registered
from tests.sample import ACME


def _comparable(snapshot: Snapshot) -> dict[str, list[tuple[Any, ...]]]:
    """The rows without what differs from one build to the next anyway: ids
    (a PostgreSQL sequence only goes up), the change feed's sequence (it never
    goes back either), the transaction ids of pending changes, and timestamps."""

    def keep(column: str, value: Any) -> bool:
        return (
            column not in ("id", "sequence", "txn")
            and not column.endswith("_id")
            and not isinstance(value, datetime.datetime)
        )

    return {
        table: sorted(repr(sorted((c, v) for c, v in row.items() if keep(c, v))) for row in rows)
        for table, rows in snapshot.rows.items()
    }


async def test_the_registered_state_is_what_registering_gives(services):
    restored = await _capture(services.engine)
    await _empty(services)
    await sync_product_releases(services, ACME, tailor_extension_points)
    built = await _capture(services.engine)
    assert len(restored.rows["setting_definitions"]) > 200
    assert _comparable(restored) == _comparable(built)


async def test_a_tests_writes_never_reach_the_next_test(_services):
    """Alone and in any order: the writes are made here, then the ``services``
    fixture's own step (:func:`tests.conftest.registered`) runs as it would for the
    next test."""
    await registered(_services)
    await _services.tenants.create(ADMIN, "leak", "Leak Inc", "2.0")
    # a snapshot built on top of the leak (its starting rows differ: its own key)
    await demo_with_samples(_services)
    await _services.tenants.create(ADMIN, "leak-2", "Leak Two", "2.0")
    slugs = {t.slug for t in await _services.tenants.list_all(ADMIN)}
    assert {"leak", "leak-2"} <= slugs and len(slugs) > 2

    # the next test
    await registered(_services)
    assert [t.slug for t in await _services.tenants.list_all(ADMIN)] == []
    await demo_with_samples(_services)
    slugs = {t.slug for t in await _services.tenants.list_all(ADMIN)}
    assert slugs and not slugs & {"leak", "leak-2"}
