"""Writes are atomic: a failed validation, a conflict, a hook error or a crash
in the middle of the transaction leaves no partial change, and never an audit
entry without its change (nor a change without its audit entry)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

import core.store.settings as settings_module
from core.model.errors import ConflictError, SettingValidationError
from core.store.models import AuditEntry, Override, Tenant
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"


class Crash(Exception):
    pass


@contextmanager
def crash_on(engine, statement_prefix: str):
    """Make the database fail the first statement starting with ``statement_prefix``."""

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(statement_prefix.upper()):
            raise Crash(f"injected fault on {statement_prefix}")

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def state(services, tenant="acme"):
    """Overrides (key, scope, value, revision, active) and audit entries of a tenant."""
    async with services.sessions() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
        overrides = (
            await session.execute(
                select(
                    Override.key,
                    Override.environment,
                    Override.value,
                    Override.revision,
                    Override.active,
                )
                .where(Override.tenant_id == tenant_id)
                .order_by(Override.key, Override.environment)
            )
        ).all()
        audits = (
            await session.execute(
                select(
                    AuditEntry.action, AuditEntry.key, AuditEntry.environment, AuditEntry.revision
                )
                .where(AuditEntry.tenant_id == tenant_id)
                .order_by(AuditEntry.id)
            )
        ).all()
    return [tuple(o) for o in overrides], [tuple(a) for a in audits]


async def assert_every_change_is_audited(services):
    """Each override revision has exactly its audit entries: 1..revision."""
    overrides, audits = await state(services)
    assert overrides
    for key, scope, _value, revision, _active in overrides:
        env = None if scope == settings_module.TENANT_SCOPE else scope
        audited = sorted(r for _a, k, e, r in audits if k == key and e == env)
        assert audited == list(range(1, revision + 1)), (key, env, audited)


@pytest.mark.parametrize(
    "statement", ["INSERT INTO audit_log", "UPDATE overrides", "INSERT INTO overrides"]
)
async def test_a_crash_mid_transaction_writes_nothing(services, tenant, statement):
    await services.settings.set(ADMIN, tenant, DUE, 40)  # so the UPDATE path exists
    await services.settings.set(ADMIN, tenant, DUE, 41, environment="production")
    before = await state(services)
    with crash_on(services.engine, statement), pytest.raises(Crash):
        if statement == "INSERT INTO overrides":
            await services.settings.set(ADMIN, tenant, DUE, 42, environment="sandbox")
        else:
            await services.settings.set(ADMIN, tenant, DUE, 42)
    assert await state(services) == before
    await assert_every_change_is_audited(services)
    # and the next write goes through as if nothing happened
    change = await services.settings.set(ADMIN, tenant, DUE, 43, expected_revision=1)
    assert change.revision == 2


async def test_a_crash_while_resetting_writes_nothing(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 40)
    before = await state(services)
    with crash_on(services.engine, "INSERT INTO audit_log"), pytest.raises(Crash):
        await services.settings.reset(ADMIN, tenant, DUE)
    assert await state(services) == before


async def test_a_crash_while_building_the_audit_entry_writes_nothing(services, tenant, monkeypatch):
    await services.settings.set(ADMIN, tenant, DUE, 40)
    before = await state(services)

    def exploding_audit(**_fields):
        raise Crash("audit entry could not be built")

    # the override UPDATE has already run in the transaction when this raises
    monkeypatch.setattr(settings_module, "AuditEntry", exploding_audit)
    with pytest.raises(Crash):
        await services.settings.set(ADMIN, tenant, DUE, 50)
    assert await state(services) == before


async def test_a_crash_while_creating_a_tenant_leaves_no_tenant(services):
    with crash_on(services.engine, "INSERT INTO audit_log"), pytest.raises(Crash):
        await services.tenants.create(ADMIN, "halfway", "Halfway Ltd", "2.0")
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Tenant)) == 0


async def test_refused_writes_change_nothing(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 40)
    before = await state(services)
    with pytest.raises(SettingValidationError):
        await services.settings.set(ADMIN, tenant, DUE, 10_000)
    with pytest.raises(ConflictError):
        await services.settings.set(ADMIN, tenant, DUE, 41, expected_revision=0)
    with pytest.raises(ConflictError):
        await services.settings.reset(ADMIN, tenant, DUE, expected_revision=7)
    assert await state(services) == before


async def test_a_crash_through_the_api_is_masked_and_writes_nothing(api, services):
    before = await state(services)
    with crash_on(services.engine, "INSERT INTO audit_log"):
        response = await api.client.post(
            "/graphql",
            json={
                "query": 'mutation { setSetting(input: {tenant: "acme", key: '
                '"billing.invoice.due_days", value: 44}) { __typename } }'
            },
            headers={"Authorization": f"Bearer {api.tokens['admin']}"},
        )
    body = response.json()
    assert response.status_code == 200
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_ERROR"
    assert "injected" not in response.text
    assert await state(services) == before
