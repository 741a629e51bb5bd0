"""The registry: publish, re-publish, collisions, per-tenant enablement, scope."""

from __future__ import annotations

import pytest

from core.model.auth import Principal, Role
from core.model.customizations import CustomizationManifest, HealthDelta, HookUse, Registration
from core.model.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from core.store.registry import NameCollisionError
from tests.conftest import ADMIN


def registration(name="acme-branding", version="1.0.0", tenants=("acme",), package=None, **kw):
    return Registration(
        manifest=CustomizationManifest(
            name=name,
            version=version,
            tenants=tuple(tenants),
            requires=">=1.5,<3",
            capability=kw.get("capability", "invoice-pdf-branding"),
        ),
        hooks=(HookUse("tailor_resolve_settings", ("values",), "abc123"),),
        setting_keys=("billing.invoice.pdf_branding",),
        package=package or name.replace("-", "_"),
    )


async def test_publish_stores_manifest_and_introspection(services, tenant):
    stored = await services.registry.publish(ADMIN, registration())
    assert stored.manifest.requires == ">=1.5,<3"
    assert stored.hooks[0].params == ("values",)
    assert stored.setting_keys == ("billing.invoice.pdf_branding",)
    assert stored.published_by == ADMIN.name
    assert stored.enabled_for == ()
    [listed] = await services.registry.list_all(ADMIN, capability="invoice-pdf-branding")
    assert listed == stored


async def test_republish_newer_updates_older_is_refused(services, tenant):
    await services.registry.publish(ADMIN, registration(version="1.0.0"))
    await services.registry.set_enabled(ADMIN, tenant, "acme-branding", True)
    newer = await services.registry.publish(ADMIN, registration(version="1.1.0"))
    assert newer.manifest.version == "1.1.0"
    assert newer.enabled_for == (tenant,)
    with pytest.raises(InvalidInputError) as caught:
        await services.registry.publish(ADMIN, registration(version="0.9"))
    assert caught.value.field == "version"
    assert (await services.registry.get(ADMIN, "acme-branding")).manifest.version == "1.1.0"


async def test_a_listing_after_a_republish_shows_the_new_code(services, tenant):
    """Listings keep parsed registrations between calls: a republish (same version
    too: a consultant fixing a package) must show its new hooks and keys at once."""
    import dataclasses

    await services.registry.publish(ADMIN, registration(version="1.0.0"))
    [before] = await services.registry.list_all(ADMIN)
    assert before.hooks[0].hook == "tailor_resolve_settings"
    changed = dataclasses.replace(
        registration(version="1.0.0"),
        hooks=(HookUse("tailor_validate_setting", ("key", "value"), "def456"),),
        setting_keys=("billing.invoice.rounding",),
    )
    await services.registry.publish(ADMIN, changed)
    [same_version] = await services.registry.list_all(ADMIN)
    assert same_version.hooks == changed.hooks
    assert same_version.setting_keys == ("billing.invoice.rounding",)
    await services.registry.publish(ADMIN, registration(version="1.2.0"))
    [newer] = await services.registry.list_all(ADMIN)
    assert newer.manifest.version == "1.2.0"
    assert newer.hooks == registration().hooks
    assert newer.setting_keys == ("billing.invoice.pdf_branding",)


async def test_name_collision_with_another_package(services, tenant):
    await services.registry.publish(ADMIN, registration(package="pkg_one"))
    with pytest.raises(NameCollisionError) as caught:
        await services.registry.publish(ADMIN, registration(package="pkg_two", version="2.0"))
    assert "already published by package 'pkg_one'" in caught.value.message
    assert (await services.registry.get(ADMIN, "acme-branding")).package == "pkg_one"


async def test_unknown_tenant_is_refused_and_nothing_stored(services, tenant):
    with pytest.raises(NotFoundError) as caught:
        await services.registry.publish(ADMIN, registration(tenants=("acme", "nobody")))
    assert "nobody" in caught.value.message
    assert await services.registry.list_all(ADMIN) == []


async def test_enable_only_for_listed_existing_tenants(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await services.registry.publish(ADMIN, registration())
    with pytest.raises(InvalidInputError) as caught:
        await services.registry.set_enabled(ADMIN, "other", "acme-branding", True)
    assert "is not made for tenant 'other'" in caught.value.message
    with pytest.raises(NotFoundError):
        await services.registry.set_enabled(ADMIN, "ghost", "acme-branding", True)
    with pytest.raises(NotFoundError):
        await services.registry.set_enabled(ADMIN, tenant, "no-such", True)
    enabled = await services.registry.set_enabled(ADMIN, tenant, "acme-branding", True)
    assert enabled.enabled_for == (tenant,)
    assert await services.registry.enabled_map() == {tenant: frozenset({"acme-branding"})}
    disabled = await services.registry.set_enabled(ADMIN, tenant, "acme-branding", False)
    assert disabled.enabled_for == ()


async def test_consultant_scope(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    consultant = Principal(Role.CONSULTANT, "c", frozenset({tenant}))
    app = Principal(Role.APP, "a", frozenset({tenant}))
    await services.registry.publish(consultant, registration())
    with pytest.raises(PermissionDeniedError):
        await services.registry.publish(consultant, registration("theirs", tenants=("other",)))
    await services.registry.publish(ADMIN, registration("theirs", tenants=("other",)))
    assert [r.name for r in await services.registry.list_all(consultant)] == ["acme-branding"]
    with pytest.raises(NotFoundError):
        await services.registry.get(consultant, "theirs")
    with pytest.raises(PermissionDeniedError):
        await services.registry.list_all(consultant, tenant="other")
    with pytest.raises(PermissionDeniedError):
        await services.registry.set_enabled(consultant, "other", "theirs", True)
    with pytest.raises(PermissionDeniedError):
        await services.registry.list_all(app)


async def test_health_deltas_in_one_statement(services, tenant):
    from core.store.db import count_statements

    await services.registry.publish(ADMIN, registration("one"))
    await services.registry.publish(ADMIN, registration("two"))
    with count_statements(services.engine) as counter:
        await services.registry.record_health(
            [HealthDelta("one", 3, 1, "boom"), HealthDelta("two", 2, 0)]
        )
    assert counter.count == 1
    health = {r.name: r.health for r in await services.registry.list_all(ADMIN)}
    assert (health["one"].calls, health["one"].failures, health["one"].last_error) == (3, 1, "boom")
    assert (health["two"].calls, health["two"].failures, health["two"].last_error) == (2, 0, None)


async def test_publishing_and_enabling_are_audited(services, tenant):
    await services.registry.publish(ADMIN, registration(version="1.0.0"))
    await services.registry.set_enabled(ADMIN, tenant, "acme-branding", True)
    await services.registry.set_enabled(ADMIN, tenant, "acme-branding", False)
    await services.registry.publish(ADMIN, registration(version="1.1.0"))
    entries = await services.audit.list_all(ADMIN, key="customization:acme-branding")
    assert [(e.action, e.tenant, e.old, e.new) for e in entries] == [
        ("publish_customization", None, "1.0.0", "1.1.0"),
        ("disable_customization", tenant, True, False),
        ("enable_customization", tenant, False, True),
        ("publish_customization", None, None, "1.0.0"),
    ]
    assert all(e.actor == ADMIN.name for e in entries)


async def test_a_tenant_dropped_from_the_manifest_loses_its_state_audited(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await services.registry.publish(ADMIN, registration(tenants=(tenant, "other")))
    await services.registry.set_enabled(ADMIN, "other", "acme-branding", True)
    updated = await services.registry.publish(ADMIN, registration(version="2.0.0"))
    assert updated.enabled_for == ()
    entries = await services.audit.list_all(
        ADMIN, tenant="other", key="customization:acme-branding"
    )
    assert [(e.action, e.old, e.new) for e in entries] == [
        ("drop_customization_tenant", True, None),
        ("enable_customization", False, True),
    ]
    assert "no longer listed" in entries[0].reason
