"""Usage: retire candidates from observations, the registry and overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.model.auth import Principal, Role
from core.model.customizations import CustomizationManifest, ObservationDelta, Registration
from tests.conftest import ADMIN

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


async def publish(services, name, tenants):
    await services.registry.publish(
        ADMIN,
        Registration(CustomizationManifest(name, "1.0", tenants, ">=1.0"), (), (), package=name),
    )
    for t in tenants:
        await services.registry.set_enabled(ADMIN, t, name, True)


def seen(name, tenant, calls, changed, when, keys=()):
    return ObservationDelta(
        name,
        tenant,
        "tailor_resolve_settings",
        calls=calls,
        changed=changed,
        first_seen=when,
        last_seen=when,
        keys={(k, "read"): calls for k in keys},
    )


async def test_retire_candidates(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other Inc", "2.0")
    await services.settings.set(ADMIN, "acme", "billing.invoice.rounding", "half_up")
    await services.settings.set(ADMIN, "other", "tax.rounding.per_line", False)
    await services.settings.set(ADMIN, "acme", "tax.rounding.per_line", False)
    await publish(services, "reader", ("acme",))
    await publish(services, "idle", ("acme", "other"))
    await publish(services, "old", ("other",))
    await services.observations.record(
        [
            seen("reader", "acme", 3, 0, NOW - timedelta(days=1), ["tax.rounding.per_line"]),
            seen("old", "other", 4, 2, NOW - timedelta(days=90)),
        ]
    )
    report = await services.usage.retire(ADMIN, "2.0", days=30, now=NOW)
    found = {(c.kind, c.subject, c.tenant) for c in report.candidates}
    assert found == {
        ("NEVER_CALLED", "idle", "acme"),
        ("NEVER_CALLED", "idle", "other"),
        ("NOT_CALLED_RECENTLY", "old", "other"),
        ("NO_EFFECT", "reader", "acme"),
        ("OVERRIDE_EQUALS_DEFAULT", "billing.invoice.rounding", "acme"),
        # deprecated in 2.0 and nothing of other's reads it; acme's "reader" does
        ("OVERRIDE_UNREAD", "tax.rounding.per_line", "other"),
    }
    [unread] = report.of_kind("OVERRIDE_UNREAD")
    assert "deprecated in 2.0" in unread.detail
    # a wider window: "old" is recent enough
    wide = await services.usage.retire(ADMIN, "2.0", days=120, now=NOW)
    assert not wide.of_kind("NOT_CALLED_RECENTLY")

    consultant = Principal(Role.CONSULTANT, "c", frozenset({"acme"}))
    mine = await services.usage.retire(consultant, "2.0", days=30, now=NOW)
    assert {c.tenant for c in mine.candidates} == {"acme"}
