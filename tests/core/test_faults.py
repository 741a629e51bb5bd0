"""Customizations that raise, hang past their time budget or answer with the
wrong type harm only their own tenant's request; failures are recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from core.errors import SettingValidationError
from core.hooks import (
    ALL_CUSTOMIZATIONS,
    CustomizedValue,
    DefinitionsOutcome,
    GuardedHooks,
    HookFailure,
    ResolveOutcome,
    ValidationOutcome,
)
from core.services import Services
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"
BUDGET = 0.05


class FaultyHooks:
    """A HookRunner whose customizations misbehave, for one tenant only; every
    other tenant's customization sets due_days to 77."""

    def __init__(self, victim: str, fault: str) -> None:
        self.victim = victim
        self.fault = fault
        self.changed: list[tuple[str, str]] = []

    async def _misbehave(self, tenant: str, wrong: Any) -> Any:
        if tenant != self.victim:
            return None
        if self.fault == "raise":
            raise KeyError("customer_id")
        if self.fault == "hang":
            await asyncio.Event().wait()  # never set: only the budget ends it
        if self.fault == "wrong-type":
            return wrong
        return None

    async def register_settings(self, tenant: str) -> DefinitionsOutcome:
        return await self._misbehave(tenant, ["not", "an", "outcome"]) or DefinitionsOutcome()

    async def resolve_settings(
        self, tenant: str, environment: str | None, values: Mapping[str, Any]
    ) -> ResolveOutcome:
        wrong = ResolveOutcome(values=[CustomizedValue(DUE, "seventy-seven", "acme-due")])
        return await self._misbehave(tenant, wrong) or ResolveOutcome(
            values=[CustomizedValue(DUE, 77, f"{tenant}-due")]
        )

    async def validate_setting(
        self, tenant: str, environment: str | None, key: str, value: Any
    ) -> ValidationOutcome:
        return await self._misbehave(tenant, {"ok": True}) or ValidationOutcome()

    async def setting_changed(
        self, tenant: str, environment: str | None, key: str, old: Any, new: Any, actor: str
    ) -> Sequence[HookFailure]:
        self.changed.append((tenant, key))
        return await self._misbehave(tenant, "done") or ()


@pytest.fixture
def make_services(database_url, services):
    def make(fault: str) -> tuple[Services, list[tuple[str, HookFailure]]]:
        recorded: list[tuple[str, HookFailure]] = []
        hooked = Services.from_url(
            database_url,
            hooks=FaultyHooks("acme", fault),
            hook_timeout=BUDGET,
            on_hook_failure=lambda tenant, failure: recorded.append((tenant, failure)),
        )
        return hooked, recorded

    return make


@pytest.fixture
async def two_tenants(services):
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    await services.tenants.create(ADMIN, "globex", "Globex", "2.0")


@pytest.mark.parametrize("fault", ["raise", "hang", "wrong-type"])
async def test_a_faulty_customization_harms_only_its_tenant(make_services, two_tenants, fault):
    hooked, recorded = make_services(fault)
    try:
        victim, bystander = await asyncio.gather(
            hooked.settings.resolve(ADMIN, "acme", keys=[DUE]),
            hooked.settings.resolve(ADMIN, "globex", keys=[DUE]),
        )
        # the victim gets the non-customized value and a clear error...
        assert victim.settings[0].value == 30 and victim.settings[0].source == "DEFAULT"
        assert victim.failures and all(f.hook.startswith("tailor_") for f in victim.failures)
        # ...the other tenant is untouched
        assert bystander.settings[0].value == 77
        assert bystander.settings[0].source == "CUSTOMIZATION:globex-due"
        assert not bystander.failures
        # and the failure was recorded, for the victim only
        assert recorded and {tenant for tenant, _ in recorded} == {"acme"}
        if fault == "hang":
            assert "time budget" in recorded[0][1].message
        if fault == "raise":
            assert "KeyError" in recorded[0][1].message
    finally:
        await hooked.close()


@pytest.mark.parametrize("fault", ["raise", "hang", "wrong-type"])
async def test_a_validator_that_fails_refuses_the_write_and_writes_nothing(
    make_services, two_tenants, services, fault
):
    hooked, _ = make_services(fault)
    try:
        with pytest.raises(SettingValidationError, match="nothing was written") as refused:
            await hooked.settings.set(ADMIN, "acme", DUE, 45)
        assert refused.value.rule == f"customization:{ALL_CUSTOMIZATIONS}"
        assert await services.audit.list(ADMIN, "acme", DUE) == []
        # the other tenant writes as usual
        change = await hooked.settings.set(ADMIN, "globex", DUE, 45)
        assert change.revision == 1 and not change.failures
    finally:
        await hooked.close()


class ListenerFault(FaultyHooks):
    """Only ``tailor_setting_changed`` misbehaves (after the commit)."""

    async def validate_setting(self, tenant, environment, key, value) -> ValidationOutcome:
        return ValidationOutcome()


@pytest.mark.parametrize("fault", ["raise", "hang", "wrong-type"])
async def test_a_failing_change_listener_keeps_the_committed_change(
    database_url, two_tenants, services, fault
):
    recorded: list[tuple[str, HookFailure]] = []
    hooked = Services.from_url(
        database_url,
        hooks=ListenerFault("acme", fault),
        hook_timeout=BUDGET,
        on_hook_failure=lambda tenant, failure: recorded.append((tenant, failure)),
    )
    try:
        change = await hooked.settings.set(ADMIN, "acme", DUE, 46)
    finally:
        await hooked.close()
    # the change and its audit entry were committed together; the failure is reported
    assert [f.hook for f in change.failures] == ["tailor_setting_changed"]
    assert [tenant for tenant, _ in recorded] == ["acme"]
    assert [(e.new, e.revision) for e in await services.audit.list(ADMIN, "acme", DUE)] == [(46, 1)]
    assert (await services.settings.resolve(ADMIN, "acme", keys=[DUE])).settings[0].value == 46


async def test_the_server_keeps_serving_while_a_customization_hangs(make_services, two_tenants):
    hooked, _ = make_services("hang")
    try:
        slow = asyncio.ensure_future(hooked.settings.resolve(ADMIN, "acme", keys=[DUE]))
        served = [await hooked.settings.resolve(ADMIN, "globex", keys=[DUE]) for _ in range(3)]
        assert [r.settings[0].value for r in served] == [77, 77, 77]
        assert (await slow).settings[0].value == 30
    finally:
        await hooked.close()


async def test_the_guard_names_what_went_wrong():
    class Sync:
        def register_settings(self, tenant):  # not even a coroutine
            return DefinitionsOutcome()

    guard = GuardedHooks(Sync(), timeout=BUDGET)  # type: ignore[arg-type]
    outcome = await guard.register_settings("acme")
    assert outcome.failures[0].customization == ALL_CUSTOMIZATIONS
    assert "TypeError" in outcome.failures[0].message
    with pytest.raises(ValueError, match="positive"):
        GuardedHooks(Sync(), timeout=0)  # type: ignore[arg-type]


async def test_a_broken_failure_listener_never_breaks_the_request(services, two_tenants):
    def listener(tenant, failure):
        raise RuntimeError("registry down")

    hooked = Services.from_url(
        services.engine.url.render_as_string(hide_password=False),
        hooks=FaultyHooks("acme", "raise"),
        hook_timeout=BUDGET,
        on_hook_failure=listener,
    )
    try:
        resolved = await hooked.settings.resolve(ADMIN, "acme", keys=[DUE])
        assert resolved.settings[0].value == 30 and resolved.failures
    finally:
        await hooked.close()
