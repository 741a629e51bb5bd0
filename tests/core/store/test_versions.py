"""Versions and pins in the registry: which version enabling pins, what may be
pinned, yanking, and who may publish a new version of a name."""

from __future__ import annotations

import pytest

from core.model.auth import Principal, Role
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.model.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from tests.conftest import ADMIN


def version(v: str, requires: str = ">=1.0", tenants: tuple[str, ...] = ("acme",)) -> Registration:
    return Registration(
        manifest=CustomizationManifest("branding", v, tenants, requires),
        hooks=(HookUse("tailor_resolve_settings", ("values",), f"fp-{v}"),),
        setting_keys=("ui.theme.mode",),
    )


async def pins(services) -> tuple[tuple[str, str], ...]:
    return (await services.registry.get(ADMIN, "branding")).pins


async def test_enabling_pins_the_newest_version_that_fits_the_tenant(services, tenant):
    """The tenant is on 2.0. Expected: 1.2.0 (3.0.0 requires >=3, 1.3.0rc1 is a
    pre-release nobody named), then a named pre-release is pinned."""
    for v, requires in (("1.0.0", ">=1.0"), ("1.2.0", ">=1.5,<3"), ("3.0.0", ">=3")):
        await services.registry.publish(ADMIN, version(v, requires))
    await services.registry.publish(ADMIN, version("1.3.0rc1"))
    await services.registry.set_enabled(ADMIN, tenant, "branding", True)
    assert await pins(services) == ((tenant, "1.2.0"),)
    await services.registry.set_enabled(ADMIN, tenant, "branding", True, "1.3.0rc1")
    assert await pins(services) == ((tenant, "1.3.0rc1"),)
    # disabling keeps the pin; enabling again without a version keeps it too
    await services.registry.set_enabled(ADMIN, tenant, "branding", False)
    assert await pins(services) == ()
    await services.registry.set_enabled(ADMIN, tenant, "branding", True)
    assert await pins(services) == ((tenant, "1.3.0rc1"),)


async def test_a_version_whose_requires_excludes_the_tenants_release_is_refused(services, tenant):
    await services.registry.publish(ADMIN, version("3.0.0", ">=3"))
    with pytest.raises(InvalidInputError) as caught:
        await services.registry.set_enabled(ADMIN, tenant, "branding", True)
    assert "3.0.0 requires '>=3', which excludes release 2.0" in caught.value.message
    with pytest.raises(InvalidInputError):
        await services.registry.set_version(ADMIN, tenant, "branding", "3.0.0")
    with pytest.raises(NotFoundError) as missing:
        await services.registry.set_version(ADMIN, tenant, "branding", "4.0")
    assert "published versions: 3.0.0" in missing.value.message
    assert await pins(services) == ()


async def test_a_yanked_version_is_never_pinned_again_and_its_tenants_stay(services, tenant):
    await services.registry.publish(ADMIN, version("1.0.0"))
    await services.registry.publish(ADMIN, version("1.1.0"))
    await services.registry.set_enabled(ADMIN, tenant, "branding", True)
    assert await pins(services) == ((tenant, "1.1.0"),)
    with pytest.raises(InvalidInputError):
        await services.registry.yank(ADMIN, "branding", "1.1.0", "   ")
    yanked = await services.registry.yank(ADMIN, "branding", "1.1.0", "breaks CHF")
    assert yanked.yanked and yanked.pinned_for == (tenant,)  # still on it, flagged
    # the newest that is not yanked is the customization's again
    assert (await services.registry.get(ADMIN, "branding")).manifest.version == "1.0.0"
    await services.registry.set_version(ADMIN, tenant, "branding", "1.0.0")
    with pytest.raises(InvalidInputError) as caught:
        await services.registry.set_version(ADMIN, tenant, "branding", "1.1.0")
    assert "1.1.0 was yanked (breaks CHF)" in caught.value.message
    entries = await services.audit.list_all(ADMIN, key="customization:branding")
    assert ("yank_customization", "1.1.0", None, "breaks CHF") in [
        (e.action, e.old, e.new, e.reason) for e in entries
    ]


async def test_a_consultant_cannot_take_over_another_tenants_customization(services, tenant):
    """A new version of a name belongs to whoever may publish for the tenants of
    its earlier versions: a consultant of acme cannot publish 'branding' once it
    was made for another tenant, even listing only acme."""
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await services.registry.publish(ADMIN, version("1.0.0", tenants=("other",)))
    consultant = Principal(Role.CONSULTANT, "c", frozenset({tenant}))
    with pytest.raises(PermissionDeniedError):
        await services.registry.publish(consultant, version("2.0.0", tenants=(tenant,)))
    assert [v.version for v in await services.registry.versions(ADMIN, "branding")] == ["1.0.0"]


async def test_listings_show_versions_and_pins_in_a_constant_number_of_statements(services, tenant):
    from core.store.db import count_statements

    counts = []
    for n in (1, 6):
        for i in range(n):
            await services.registry.publish(
                ADMIN,
                Registration(
                    manifest=CustomizationManifest(f"c{n}-{i}", "1.0.0", (tenant,), ">=1.0"),
                    hooks=(),
                    setting_keys=(),
                ),
            )
        with count_statements(services.engine) as counter:
            found = await services.registry.versions_of(ADMIN)
        counts.append(counter.count)
        assert len(found) == (1 if n == 1 else 7)
    assert counts[0] == counts[1] == 2, counts


async def test_readiness_judges_each_tenant_on_its_pinned_version(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    both = (tenant, "other")
    await services.registry.publish(ADMIN, version("1.0.0", tenants=both))
    await services.registry.set_enabled(ADMIN, tenant, "branding", True)
    await services.registry.publish(ADMIN, version("1.1.0", tenants=both))
    await services.registry.set_enabled(ADMIN, "other", "branding", True)
    await services.registry.yank(ADMIN, "branding", "1.0.0", "breaks CHF")
    judged = {r.manifest.version: r for r in await services.registry.pinned_registrations(ADMIN)}
    assert judged["1.1.0"].enabled_for == ("other",)
    assert judged["1.1.0"].yank_reason is None
    assert judged["1.0.0"].enabled_for == (tenant,)
    assert judged["1.0.0"].yank_reason == "breaks CHF"
    assert judged["1.0.0"].hooks[0].fingerprint == "fp-1.0.0"  # that version's code
