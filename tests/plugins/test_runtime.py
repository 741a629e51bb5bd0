"""The runtime called by the settings service: per-tenant isolation, attribution
and fault isolation, health counters, hooks once per batch, constant SQL."""

from __future__ import annotations

import pytest

from api.wiring import attach
from core.model.errors import NotFoundError, SettingValidationError
from core.store.db import count_statements
from tests.conftest import ADMIN
from tests.plugins.conftest import publish_enable

THEME = """
CALLS = []

@hookimpl
def tailor_resolve_settings(tenant, environment, values):
    CALLS.append((tenant, len(values)))
    return {"ui.theme.mode": "dark"}
"""

RAISES = """
@hookimpl
def tailor_resolve_settings(values):
    raise KeyError("billing.tax.missing")
"""


async def test_customized_value_has_customization_source(
    services, two_tenants, write_customization, make_runtime
):
    acme, other = two_tenants
    write_customization("theme", THEME, tenants=(acme, other))
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, acme, "theme")
    mine = await services.settings.resolve(
        ADMIN, acme, keys=["ui.theme.mode", "ui.table.page_size"]
    )
    by_key = {s.key: s for s in mine.settings}
    assert by_key["ui.theme.mode"].value == "dark"
    assert by_key["ui.theme.mode"].source == "CUSTOMIZATION:theme"
    assert by_key["ui.table.page_size"].source == "DEFAULT"
    # tenant B: listed in the manifest but not enabled: its code never runs for B
    theirs = await services.settings.resolve(ADMIN, other, keys=["ui.theme.mode"])
    assert theirs.settings[0].source == "DEFAULT"
    await runtime.flush_health()
    seen = await services.observations.list_all()
    # once per batch, never per setting, and only for the tenant it is enabled for
    assert [(o.customization, o.tenant, o.hook, o.calls) for o in seen] == [
        ("theme", acme, "tailor_resolve_settings", 1)
    ]
    assert seen[0].keys_returned == {"ui.theme.mode"}
    await runtime.close()


async def test_raising_customization_affects_only_its_tenant(
    services, two_tenants, write_customization, make_runtime
):
    acme, other = two_tenants
    write_customization("raiser", RAISES, tenants=(acme,))
    write_customization("theme", THEME, tenants=(acme, other))
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, acme, "raiser", "theme")
    await services.registry.set_enabled(ADMIN, other, "theme", True)

    mine = await services.settings.resolve(ADMIN, acme, keys=["ui.theme.mode"])
    [failure] = mine.failures
    assert (failure.customization, failure.hook) == ("raiser", "tailor_resolve_settings")
    assert "KeyError" in failure.message
    # the other customization of the same tenant still applied
    assert mine.settings[0].source == "CUSTOMIZATION:theme"
    theirs = await services.settings.resolve(ADMIN, other, keys=["ui.theme.mode"])
    assert theirs.failures == []
    assert theirs.settings[0].value == "dark"

    health = {r.name: r.health for r in await services.registry.list_all(ADMIN)}
    assert health["raiser"].failures == 1
    assert health["raiser"].calls == 1
    assert "KeyError" in health["raiser"].last_error
    assert health["raiser"].last_error_at is not None
    assert health["theme"].calls == 2
    assert health["theme"].failures == 0


async def test_invalid_result_falls_back_and_is_reported(
    services, tenant, write_customization, make_runtime
):
    write_customization(
        "wrongtype",
        """
        @hookimpl
        def tailor_resolve_settings():
            return {"ui.table.page_size": "lots"}
        """,
    )
    write_customization(
        "notadict",
        """
        @hookimpl
        def tailor_resolve_settings():
            return ["ui.theme.mode"]
        """,
    )
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "wrongtype", "notadict")
    result = await services.settings.resolve(ADMIN, tenant, keys=["ui.table.page_size"])
    assert result.settings[0].value == 25
    assert result.settings[0].source == "DEFAULT"
    assert {f.customization for f in result.failures} == {"wrongtype", "notadict"}


async def test_hook_time_budget(services, tenant, write_customization, make_runtime):
    write_customization(
        "slow",
        """
        import time

        @hookimpl
        def tailor_resolve_settings():
            time.sleep(30)
            return {"ui.theme.mode": "dark"}
        """,
    )
    runtime = make_runtime(hook_timeout=1.0)
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "slow")
    result = await services.settings.resolve(ADMIN, tenant, keys=["ui.theme.mode"])
    assert result.settings[0].value == "light"
    [failure] = result.failures
    assert failure.customization == "slow"
    assert "1s budget" in failure.message
    await runtime.close()


async def test_validate_hook_blocks_the_write(services, tenant, write_customization, make_runtime):
    write_customization(
        "policy",
        """
        @hookimpl
        def tailor_validate_setting(tenant, key, value):
            if key == "billing.invoice.due_days" and value > 60:
                return f"{tenant}: at most 60 days"
        """,
    )
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "policy")
    with pytest.raises(SettingValidationError) as caught:
        await services.settings.set(ADMIN, tenant, "billing.invoice.due_days", 90)
    assert caught.value.rule == "customization:policy"
    assert "at most 60 days" in caught.value.message
    assert await services.audit.list_all(ADMIN, tenant, "billing.invoice.due_days") == []
    change = await services.settings.set(ADMIN, tenant, "billing.invoice.due_days", 45)
    assert change.new == 45


async def test_setting_changed_fires_after_commit(
    services, tenant, write_customization, make_runtime
):
    write_customization(
        "listener",
        """
        SEEN = []

        @hookimpl
        def tailor_setting_changed(tenant, environment, key, old, new, actor):
            SEEN.append((tenant, environment, key, old, new, actor))

        @hookimpl
        def tailor_validate_setting(key, value):
            SEEN.append(("validate", key, value))
        """,
    )
    write_customization(
        "broken-listener",
        """
        @hookimpl
        def tailor_setting_changed(key):
            raise ConnectionError("SMS gateway down")
        """,
    )
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "listener", "broken-listener")
    change = await services.settings.set(ADMIN, tenant, "ui.table.page_size", 50, "production")
    await runtime.flush_health()
    seen = {(o.customization, o.hook): o for o in await services.observations.list_all()}
    assert seen["listener", "tailor_validate_setting"].calls == 1
    assert seen["listener", "tailor_setting_changed"].calls == 1
    assert seen["broken-listener", "tailor_setting_changed"].failures == 1
    # the write stands; the failing listener is reported
    assert [f.customization for f in change.failures] == ["broken-listener"]
    [entry] = await services.audit.list_all(ADMIN, tenant, "ui.table.page_size")
    assert entry.new == 50


async def test_register_settings_adds_tenant_only_settings(
    services, two_tenants, write_customization, make_runtime
):
    acme, other = two_tenants
    write_customization(
        "loyalty",
        """
        @hookimpl
        def tailor_register_settings():
            return [{"key": "loyalty.points.rate", "type": "float", "default": 0.01,
                     "min": 0, "max": 1}]
        """,
        tenants=(acme, other),
    )
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, acme, "loyalty")
    mine = await services.settings.resolve(ADMIN, acme, prefix="loyalty.")
    assert [(s.key, s.value) for s in mine.settings] == [("loyalty.points.rate", 0.01)]
    await services.settings.set(ADMIN, acme, "loyalty.points.rate", 0.05)
    mine = await services.settings.resolve(ADMIN, acme, keys=["loyalty.points.rate"])
    assert mine.settings[0].value == 0.05
    assert (await services.settings.resolve(ADMIN, other, prefix="loyalty.")).settings == []
    with pytest.raises(NotFoundError):
        await services.settings.set(ADMIN, other, "loyalty.points.rate", 0.05)


async def test_deprecated_per_setting_hook_still_runs(
    services, tenant, write_customization, make_runtime
):
    write_customization(
        "legacy",
        """
        @hookimpl
        def tailor_resolve_setting(key, value):
            return 60 if key == "billing.invoice.due_days" else None
        """,
    )
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "legacy")
    result = await services.settings.resolve(ADMIN, tenant, prefix="billing.invoice.")
    by_key = {s.key: s for s in result.settings}
    assert by_key["billing.invoice.due_days"].value == 60
    assert by_key["billing.invoice.due_days"].source == "CUSTOMIZATION:legacy"
    assert by_key["billing.invoice.rounding"].source == "DEFAULT"


async def test_disabling_drops_the_cached_caller(
    services, tenant, write_customization, make_runtime
):
    write_customization("theme", THEME)
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "theme")
    first = await services.settings.resolve(ADMIN, tenant, keys=["ui.theme.mode"])
    assert first.settings[0].value == "dark"
    await services.registry.set_enabled(ADMIN, tenant, "theme", False)
    second = await services.settings.resolve(ADMIN, tenant, keys=["ui.theme.mode"])
    assert second.settings[0].value == "light"


async def test_statements_stay_constant_with_customizations(
    services, tenant, write_customization, make_runtime
):
    for i in range(4):
        write_customization(f"theme_{i}", THEME)
    write_customization(
        "extra",
        """
        @hookimpl
        def tailor_register_settings():
            return [{"key": "loyalty.points.rate", "type": "float", "default": 0.01}]
        """,
    )
    runtime = make_runtime(health_flush_seconds=0)
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "theme-0")
    await services.settings.resolve(ADMIN, tenant)  # warm the enabled map
    with count_statements(services.engine) as one:
        await services.settings.resolve(ADMIN, tenant)
    for name in ("theme-1", "theme-2", "theme-3", "extra"):
        await services.registry.set_enabled(ADMIN, tenant, name, True)
    await services.settings.resolve(ADMIN, tenant)
    with count_statements(services.engine) as five:
        result = await services.settings.resolve(ADMIN, tenant)
    assert len(result.settings) > 80
    assert five.count == one.count
