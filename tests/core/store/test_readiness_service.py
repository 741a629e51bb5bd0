"""Readiness over the database: constant statements, scope, import and upgrades."""

from __future__ import annotations

import dataclasses

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from core.analysis.readiness.vocabulary import Code
from core.model.auth import Principal, Role
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.model.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    UpgradeBlockedError,
)
from core.model.manifest_io import loads
from core.store.bootstrap import register_planned_releases
from core.store.db import count_statements
from core.store.fleet import seed_fleet
from core.store.models import Release, SettingDefinitionRow
from core.store.readiness_service import StaticRegistrations
from tests.conftest import ADMIN
from tests.sample import ACME, V30_PLANNED


@pytest_asyncio.fixture
async def planned(services):
    await register_planned_releases(services, ACME)
    return services


async def _statements(services, n: int) -> int:
    async def publish(registrations):
        await services.registry.publish_many(ADMIN, registrations)

    await seed_fleet(services, n, 3, demo=ACME.demo, publish=publish)
    with count_statements(services.engine) as counter:
        report = await services.readiness.readiness(ADMIN, "3.0")
    assert len(report.tenants) == n
    assert report.customizations, "the fleet's published customizations are evaluated"
    return counter.count


async def test_statement_count_does_not_grow_with_the_fleet(planned):
    few = await _statements(planned, 3)
    many = await _statements(planned, 50)
    # releases, definitions, tenants, overrides, observations and their keys + the
    # registry's rows and enabled states
    # ... and the versions tenants are pinned to (one statement), the apps with
    # their documents (one statement), the last kept rehearsal (one statement)
    assert few == many == 11


async def test_unknown_target_lists_known_releases(planned):
    with pytest.raises(NotFoundError) as exc:
        await planned.readiness.readiness(ADMIN, "9.0")
    assert "known releases: 1.0, 1.5, 2.0, 3.0" in exc.value.message
    with pytest.raises(InvalidInputError):
        await planned.readiness.readiness(ADMIN, "not-a-version")


async def test_scope_and_unknown_tenants(planned, tenant):
    consultant = Principal(Role.CONSULTANT, "c", frozenset({tenant}))
    await planned.tenants.create(ADMIN, "zeta", "Zeta", "2.0")
    report = await planned.readiness.readiness(consultant, "3.0")
    assert [t.tenant for t in report.tenants] == [tenant]
    with pytest.raises(PermissionDeniedError):
        await planned.readiness.readiness(consultant, "3.0", ["zeta"])
    with pytest.raises(NotFoundError):
        await planned.readiness.readiness(ADMIN, "3.0", ["nobody"])
    with pytest.raises(PermissionDeniedError):
        await planned.readiness.readiness(Principal(Role.APP, "a", frozenset({tenant})), "3.0")


async def test_registrations_come_from_the_provider(planned, tenant):
    registration = Registration(
        CustomizationManifest("legacy", "1.0", (tenant,), ">=1.5"),
        (HookUse("tailor_resolve_setting", ("key", "value"), "fp"),),
        (),
        (tenant,),
    )
    planned.readiness.registrations = StaticRegistrations([registration], frozenset({"legacy"}))
    report = await planned.readiness.readiness(ADMIN, "3.0", [tenant])
    (c,) = report.customizations
    assert {f.code for f in c.findings} == {Code.HOOK_REMOVED}
    assert report.tenants[0].status.value == "blocked"


async def _counts(services):
    async with services.sessions() as session:
        return (
            await session.scalar(select(func.count()).select_from(Release)),
            await session.scalar(select(func.count()).select_from(SettingDefinitionRow)),
        )


async def test_import_existing_or_invalid_writes_nothing(planned):
    before = await _counts(planned)
    text = (await planned.releases.manifest("3.0", ADMIN)).to_dict()
    with pytest.raises(AlreadyExistsError):
        await planned.releases.register(loads_dict(text), ADMIN)
    with pytest.raises(InvalidInputError):
        await planned.releases.register(
            loads('version = "3.1"\n[[settings]]\nkey = "a.b"\ntype = "int"\ndefault = "x"\n'),
            ADMIN,
        )
    assert await _counts(planned) == before


def loads_dict(data):
    from core.model.manifest import ReleaseManifest

    return ReleaseManifest.from_dict(data)


async def test_upgrade_refuses_blocked_and_forces_with_reason(planned):
    await planned.releases.promote("3.0", ADMIN)  # the 3.0 code is deployed
    await planned.tenants.create(ADMIN, "blk", "Blocked Co", "2.0")
    await planned.settings.set(ADMIN, "blk", "tax.rounding.per_line", False)
    with pytest.raises(UpgradeBlockedError) as exc:
        await planned.readiness.upgrade(ADMIN, "blk", "3.0")
    assert [f.subject for f in exc.value.findings] == ["tax.rounding.per_line"]
    assert (await planned.tenants.get(ADMIN, "blk")).release == "2.0"
    with pytest.raises(InvalidInputError):
        await planned.readiness.upgrade(ADMIN, "blk", "3.0", force=True)
    result = await planned.readiness.upgrade(
        ADMIN, "blk", "3.0", force=True, reason="CAB-42 approved"
    )
    assert result.forced and result.from_release == "2.0"
    assert (await planned.tenants.get(ADMIN, "blk")).release == "3.0"
    (entry,) = await planned.audit.list_all(ADMIN, "blk", limit=1)
    assert entry.action == "upgrade_tenant" and entry.reason == "CAB-42 approved"
    assert entry.new["blockers"] == ["OVERRIDE_INVALID:tax.rounding.per_line"]


async def test_upgrade_ready_tenant_and_bad_requests(planned, tenant):
    await planned.releases.promote("3.0", ADMIN)  # the 3.0 code is deployed
    result = await planned.readiness.upgrade(ADMIN, tenant, "3.0")
    assert not result.forced and result.to_release == "3.0"
    with pytest.raises(InvalidInputError):
        await planned.readiness.upgrade(ADMIN, tenant, "3.0")
    with pytest.raises(InvalidInputError):
        await planned.readiness.upgrade(ADMIN, tenant, "2.0")
    consultant = Principal(Role.CONSULTANT, "c", frozenset({tenant}))
    with pytest.raises(PermissionDeniedError):
        await planned.readiness.upgrade(consultant, tenant, "3.0")


async def test_no_tenant_moves_to_a_planned_release_until_its_code_runs(planned, monkeypatch):
    from core.store.bootstrap import sync_product_releases

    await planned.tenants.create(ADMIN, "fresh", "Fresh", "2.0")
    with pytest.raises(InvalidInputError, match="planned release") as caught:
        await planned.readiness.upgrade(ADMIN, "fresh", "3.0", force=True, reason="try")
    assert caught.value.field == "target"
    assert (await planned.tenants.get(ADMIN, "fresh")).release == "2.0"

    # deploying the 3.0 code registers 3.0 as released (audited); then tenants may move
    running_30 = dataclasses.replace(
        ACME, version="3.0", releases=(*ACME.releases, V30_PLANNED), planned=()
    )
    await sync_product_releases(planned, running_30)
    assert (await planned.releases.get("3.0", ADMIN)).status == "released"
    audit = [e for e in await planned.audit.list_all(ADMIN) if e.action == "release_released"]
    assert [(e.key, e.old, e.new) for e in audit] == [("release:3.0", "planned", "released")]
    moved = await planned.readiness.upgrade(ADMIN, "fresh", "3.0", force=True, reason="go")
    assert (moved.from_release, moved.to_release) == ("2.0", "3.0")


async def test_a_scoped_readiness_names_no_other_tenant(planned, tenant):
    from core.model.customizations import CustomizationManifest, Registration

    await planned.tenants.create(ADMIN, "rival", "Rival", "2.0")
    shared = Registration(
        manifest=CustomizationManifest(
            name="shared-branding", version="1.0", tenants=(tenant, "rival"), requires=">=1.0"
        ),
        hooks=(),
        setting_keys=(),
        package="shared_branding",
    )
    await planned.registry.publish(ADMIN, shared)
    for slug in (tenant, "rival"):
        await planned.registry.set_enabled(ADMIN, slug, "shared-branding", True)
    consultant = Principal(Role.CONSULTANT, "c", frozenset({tenant}))
    report = await planned.readiness.readiness(consultant, "3.0")
    assert [t.tenant for t in report.tenants] == [tenant]
    (custom,) = report.customizations
    assert custom.enabled_for == (tenant,)
    assert "rival" not in str(report.to_dict())
    full = await planned.readiness.readiness(ADMIN, "3.0")
    (shared_report,) = [c for c in full.customizations if c.name == "shared-branding"]
    assert shared_report.enabled_for == tuple(sorted((tenant, "rival")))


async def test_two_ordinary_writes_of_one_key_invalid_in_the_target_do_not_crash(planned):
    """Regression (issue 10): a consultant's tenant-wide override plus an
    environment override of a key the target drops crashed the findings sort,
    and with it fleet readiness, fold-back and upgradeTenant."""
    services = planned
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    consultant = Principal(Role.CONSULTANT, "consultant", frozenset({"acme"}))
    await services.settings.set(consultant, "acme", "tax.rounding.per_line", True)
    await services.settings.set(
        consultant, "acme", "tax.rounding.per_line", False, environment="production"
    )
    report = await services.readiness.readiness(ADMIN, "3.0")
    (tenant,) = report.tenants
    assert [(f.code, f.evidence["environment"]) for f in tenant.findings] == [
        (Code.OVERRIDE_INVALID, None),
        (Code.OVERRIDE_INVALID, "production"),
    ]
    assert (await services.foldback.candidates(ADMIN)) is not None
    with pytest.raises(InvalidInputError, match="planned release"):
        await services.readiness.upgrade(ADMIN, "acme", "3.0")


async def test_many_asked_tenants_are_filtered_without_a_parameter_each(planned, monkeypatch):
    """Beyond MAX_IN_LIST asked tenants, readiness and the triage decisions read
    every row and keep the asked ones (PostgreSQL refuses more than 32,767 bind
    parameters): the same report as naming them in the statement."""
    import core.store.readiness_service
    import core.store.triage

    await _statements(planned, 6)
    asked = ["fleet-00002", "fleet-00003", "fleet-00005"]
    named = await planned.triage.triaged(ADMIN, "3.0", asked)
    monkeypatch.setattr(core.store.readiness_service, "MAX_IN_LIST", 2)
    monkeypatch.setattr(core.store.triage, "MAX_IN_LIST", 2)
    with count_statements(planned.engine, keep=True) as counter:
        filtered = await planned.triage.triaged(ADMIN, "3.0", asked)
    assert not any("fleet-00002" in s or "IN (" in s.upper() for s in counter.statements)
    assert [t.tenant for t in filtered.report.tenants] == asked
    assert filtered.to_dict() == named.to_dict()
    with pytest.raises(NotFoundError):
        await planned.readiness.readiness(ADMIN, "3.0", [*asked, "nobody"])
