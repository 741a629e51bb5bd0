import pytest
from sqlalchemy import func, select

from core.model.auth import Principal, Role
from core.model.definitions import SettingDefinition, SettingType
from core.model.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SettingValidationError,
)
from core.model.manifest import ReleaseManifest
from core.store.db import count_statements
from core.store.models import AuditEntry, Override
from core.store.settings import SECRET_MARK
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"


async def _count(services, model) -> int:
    async with services.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def _values(services, tenant, environment=None, **kw):
    r = await services.settings.resolve(ADMIN, tenant, environment, **kw)
    return {s.key: (s.value, s.source) for s in r.settings}


async def test_resolution_layers_default_tenant_environment(services, tenant):
    default = (await _values(services, tenant, keys=[DUE]))[DUE]
    assert default == (30, "DEFAULT")

    await services.settings.set(ADMIN, tenant, DUE, 45)
    assert (await _values(services, tenant, keys=[DUE]))[DUE] == (45, "TENANT")
    assert (await _values(services, tenant, "production", keys=[DUE]))[DUE] == (45, "TENANT")

    await services.settings.set(ADMIN, tenant, DUE, 60, environment="production")
    assert (await _values(services, tenant, "production", keys=[DUE]))[DUE] == (60, "ENVIRONMENT")
    assert (await _values(services, tenant, "sandbox", keys=[DUE]))[DUE] == (45, "TENANT")
    assert (await _values(services, tenant, keys=[DUE]))[DUE] == (45, "TENANT")

    await services.settings.reset(ADMIN, tenant, DUE)
    assert (await _values(services, tenant, "production", keys=[DUE]))[DUE] == (60, "ENVIRONMENT")
    assert (await _values(services, tenant, keys=[DUE]))[DUE] == (30, "DEFAULT")


async def test_tenants_do_not_see_each_others_overrides(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await services.settings.set(ADMIN, tenant, DUE, 45)
    assert (await _values(services, "other", keys=[DUE]))[DUE] == (30, "DEFAULT")


async def test_prefix_and_keys_select_settings(services, tenant):
    billing = await _values(services, tenant, prefix="billing.")
    assert billing and all(k.startswith("billing.") for k in billing)
    everything = await _values(services, tenant)
    assert len(everything) > len(billing)
    # LIKE wildcards in a prefix are literal
    assert await _values(services, tenant, prefix="billing_%") == {}


async def test_revisions_and_optimistic_concurrency(services, tenant):
    first = await services.settings.set(ADMIN, tenant, DUE, 45, expected_revision=0)
    assert first.revision == 1
    second = await services.settings.set(ADMIN, tenant, DUE, 50, expected_revision=1)
    assert second.revision == 2 and second.old == 45
    audit_before = await _count(services, AuditEntry)

    with pytest.raises(ConflictError) as err:
        await services.settings.set(ADMIN, tenant, DUE, 99, expected_revision=1)
    assert (err.value.expected, err.value.actual) == (1, 2)
    assert "expectedRevision=2" in err.value.message
    assert (await _values(services, tenant, keys=[DUE]))[DUE] == (50, "TENANT")
    assert await _count(services, AuditEntry) == audit_before

    reset = await services.settings.reset(ADMIN, tenant, DUE, expected_revision=2)
    assert reset.revision == 3
    # the revision keeps growing after a reset, so stale writers still conflict
    with pytest.raises(ConflictError):
        await services.settings.set(ADMIN, tenant, DUE, 1, expected_revision=0)
    again = await services.settings.set(ADMIN, tenant, DUE, 10, expected_revision=3)
    assert again.revision == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"key": DUE, "value": "45"}, SettingValidationError, "expected an integer"),
        ({"key": DUE, "value": 10_000}, SettingValidationError, "above the maximum"),
        ({"key": "no.such.key", "value": 1}, NotFoundError, "no.such.key"),
        ({"key": DUE, "value": 45, "environment": "moon"}, NotFoundError, "production, sandbox"),
        ({"key": DUE, "value": 45, "expected_revision": -1}, InvalidInputError, "0"),
        ({"key": DUE, "value": 45, "tenant": "ghost"}, NotFoundError, "ghost"),
    ],
)
async def test_bad_writes_are_refused_and_write_nothing(services, tenant, kwargs, error, fragment):
    kwargs = {"tenant": tenant, **kwargs}
    audit_before = await _count(services, AuditEntry)
    with pytest.raises(error) as err:
        await services.settings.set(ADMIN, **kwargs)
    assert fragment in err.value.message
    assert await _count(services, Override) == 0
    assert await _count(services, AuditEntry) == audit_before


async def test_reset_without_override_is_a_clear_error(services, tenant):
    with pytest.raises(NotFoundError, match="no override to reset"):
        await services.settings.reset(ADMIN, tenant, DUE)


async def test_audit_log_records_who_when_old_new(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 45, reason="contract")
    await services.settings.set(ADMIN, tenant, DUE, 60, environment="sandbox")
    await services.settings.reset(ADMIN, tenant, DUE)
    entries = await services.audit.list_all(ADMIN, tenant=tenant, key=DUE)
    assert [(e.action, e.environment, e.old, e.new, e.revision) for e in entries] == [
        ("reset", None, 45, None, 2),
        ("set", "sandbox", None, 60, 1),
        ("set", None, None, 45, 1),
    ]
    assert entries[-1].actor == ADMIN.name and entries[-1].reason == "contract"
    assert entries[0].at >= entries[-1].at


async def test_secret_values_never_reach_the_audit_log(services, tenant):
    await services.settings.set(ADMIN, tenant, "integrations.erp_sync.api_key", "s3cr3t-value")
    entry = (
        await services.audit.list_all(ADMIN, tenant=tenant, key="integrations.erp_sync.api_key")
    )[0]
    assert entry.new == SECRET_MARK


async def test_scope_is_enforced_by_the_services(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    consultant = Principal(Role.CONSULTANT, "c", frozenset({tenant}))
    app = Principal(Role.APP, "a", frozenset({tenant}))
    rm = Principal(Role.RELEASE_MANAGER, "rm")
    await services.settings.set(consultant, tenant, DUE, 45)
    await services.settings.resolve(app, tenant)
    with pytest.raises(PermissionDeniedError):
        await services.settings.resolve(consultant, "other")
    with pytest.raises(PermissionDeniedError):
        await services.settings.set(app, tenant, DUE, 46)
    with pytest.raises(PermissionDeniedError):
        await services.settings.set(rm, tenant, DUE, 46)
    with pytest.raises(PermissionDeniedError):
        await services.audit.list_all(consultant)
    # the refusal does not reveal whether a tenant exists
    with pytest.raises(PermissionDeniedError):
        await services.settings.resolve(consultant, "does-not-exist")


def _catalog(n: int) -> tuple[SettingDefinition, ...]:
    return tuple(
        SettingDefinition(key=f"bulk.group{i % 10}.setting{i:04d}", type=SettingType.INT, default=i)
        for i in range(n)
    )


@pytest.mark.parametrize("n", [10, 1000])
async def test_resolution_uses_constant_statements(services, n):
    version = f"9.{n}"
    await services.releases.register(ReleaseManifest(version, settings=_catalog(n)), ADMIN)
    await services.tenants.create(ADMIN, "bulk", "Bulk", version)
    for i in range(0, n, max(1, n // 5)):
        await services.settings.set(ADMIN, "bulk", f"bulk.group{i % 10}.setting{i:04d}", -i)
        await services.settings.set(
            ADMIN, "bulk", f"bulk.group{i % 10}.setting{i:04d}", -2 * i, environment="production"
        )
    with count_statements(services.engine) as counter:
        resolution = await services.settings.resolve(ADMIN, "bulk", "production")
    assert len(resolution.settings) == n
    assert counter.count == 3, counter.statements


async def test_layered_values_are_resolve_without_hooks_and_secrets_stay_sealed(services, tenant):
    """What ``tailor customization run`` hands a customization: the same layers as
    resolve, a package's own definitions added, secret values never opened."""
    key = "integrations.erp_sync.api_key"
    await services.settings.set(ADMIN, tenant, DUE, 45)
    await services.settings.set(ADMIN, tenant, DUE, 60, environment="production")
    await services.settings.set(ADMIN, tenant, key, "s3cr3t-value")
    own = SettingDefinition(key="hr.payroll.night_rate", type=SettingType.FLOAT, default=0.5)
    layered = await services.settings.layered(ADMIN, tenant, "production", extra=[own])
    values = {s.key: (s.value, s.source) for s in layered.settings}
    assert values[DUE] == (60, "ENVIRONMENT")
    assert values["hr.payroll.night_rate"] == (0.5, "DEFAULT")
    assert values[key] == (SECRET_MARK, "TENANT")
    assert layered.release == "2.0"
    resolved = await _values(services, tenant, "production")
    assert {k: v for k, v in values.items() if k not in (key, own.key)} == {
        k: v for k, v in resolved.items() if k != key
    }
    with pytest.raises(PermissionDeniedError):
        await services.settings.layered(Principal(Role.CONSULTANT, "c", frozenset()), tenant)
