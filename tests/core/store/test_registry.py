"""The registry: publish, re-publish, collisions, per-tenant enablement, scope."""

from __future__ import annotations

import pytest

from core.model.auth import Principal, Role
from core.model.customizations import CustomizationManifest, HealthDelta, HookUse, Registration
from core.model.errors import (
    InvalidInputError,
    NameCollisionError,
    NotFoundError,
    PermissionDeniedError,
)
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


async def test_every_version_is_kept_and_the_newest_is_the_customizations(services, tenant):
    await services.registry.publish(ADMIN, registration(version="1.0.0"))
    await services.registry.set_enabled(ADMIN, tenant, "acme-branding", True)
    newer = await services.registry.publish(ADMIN, registration(version="1.1.0"))
    assert newer.manifest.version == "1.1.0"
    # publishing moves no tenant: it stays on the version it was pinned to
    assert newer.pins == ((tenant, "1.0.0"),)
    hotfix = await services.registry.publish(ADMIN, registration(version="1.0.1"))
    assert hotfix.manifest.version == "1.0.1"  # the version published
    assert (await services.registry.get(ADMIN, "acme-branding")).manifest.version == "1.1.0"
    versions = await services.registry.versions(ADMIN, "acme-branding")
    assert [(v.version, v.pinned_for) for v in versions] == [
        ("1.1.0", ()),
        ("1.0.1", ()),
        ("1.0.0", (tenant,)),
    ]


async def test_a_version_is_immutable(services, tenant):
    """The same version again changes nothing; with other content it is refused
    and the stored version stays as it was."""
    import dataclasses

    from core.model.errors import AlreadyExistsError

    first = await services.registry.publish(ADMIN, registration(version="1.0.0"))
    again = await services.registry.publish(ADMIN, registration(version="1.0.0"))
    assert again == first
    changed = dataclasses.replace(
        registration(version="1.0.0"),
        hooks=(HookUse("tailor_validate_setting", ("key", "value"), "def456"),),
        setting_keys=("billing.invoice.rounding",),
    )
    with pytest.raises(AlreadyExistsError) as caught:
        await services.registry.publish(ADMIN, changed)
    assert "raise the version" in caught.value.message
    [listed] = await services.registry.list_all(ADMIN)
    assert listed.hooks == registration().hooks
    assert listed.setting_keys == ("billing.invoice.pdf_branding",)


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
    assert "1.0.0 does not list other in its customization.toml" in caught.value.message
    with pytest.raises(NotFoundError):
        await services.registry.set_enabled(ADMIN, "ghost", "acme-branding", True)
    with pytest.raises(NotFoundError):
        await services.registry.set_enabled(ADMIN, tenant, "no-such", True)
    enabled = await services.registry.set_enabled(ADMIN, tenant, "acme-branding", True)
    assert enabled.enabled_for == (tenant,)
    pins = await services.registry.pinned_map()
    assert [(p.tenant, p.name, p.version) for p in pins[tenant]] == [
        (tenant, "acme-branding", "1.0.0")
    ]
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
    await services.registry.set_version(ADMIN, tenant, "acme-branding", "1.1.0")
    entries = await services.audit.list_all(ADMIN, key="customization:acme-branding")
    assert [(e.action, e.tenant, e.old, e.new) for e in entries] == [
        ("pin_customization", tenant, "1.0.0", "1.1.0"),
        ("publish_customization", None, "1.0.0", "1.1.0"),
        ("disable_customization", tenant, True, False),
        ("pin_customization", tenant, None, "1.0.0"),
        ("enable_customization", tenant, False, True),
        ("publish_customization", None, None, "1.0.0"),
    ]
    assert all(e.actor == ADMIN.name for e in entries)


async def test_a_tenant_a_new_version_drops_stays_on_its_pinned_version(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await services.registry.publish(ADMIN, registration(tenants=(tenant, "other")))
    await services.registry.set_enabled(ADMIN, "other", "acme-branding", True)
    updated = await services.registry.publish(ADMIN, registration(version="2.0.0"))
    assert updated.pins == (("other", "1.0.0"),)
    with pytest.raises(InvalidInputError) as caught:
        await services.registry.set_version(ADMIN, "other", "acme-branding", "2.0.0")
    assert "2.0.0 does not list other" in caught.value.message
    assert (await services.registry.get(ADMIN, "acme-branding")).pins == (("other", "1.0.0"),)
