"""Change control in the core services: a protected environment is written only
through an approved change request (or the audited break-glass path), by
another principal than its author; a stale request conflicts and changes
nothing; a scheduled one is applied once."""

import asyncio
from datetime import timedelta

import pytest

from core.model.auth import Principal, Role
from core.model.clock import utcnow
from core.model.errors import (
    ChangeRequestRequiredError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from core.store.authorization import Authorization, ChangeState
from core.store.changes import ChangeKind, ProposedChange
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"
OTHER_ADMIN = Principal.system("second-admin")
ALICE = Principal(Role.CONSULTANT, "alice", frozenset({"acme"}))
BOB = Principal(Role.CONSULTANT, "bob", frozenset({"acme"}))
MALLORY = Principal(Role.CONSULTANT, "mallory", frozenset({"other"}))


async def _protect(services, tenant, environment="production", approvals=None):
    request = await services.changes.protect(ADMIN, tenant, environment, True, approvals)
    assert request.state is ChangeState.APPLIED  # protecting needs no approval
    return request


async def _value(services, tenant, environment="production"):
    resolution = await services.settings.resolve(ADMIN, tenant, environment, keys=[DUE])
    return resolution.settings[0].value


def _set(tenant, value, environment="production", **kw):
    return ProposedChange(
        tenant,
        ChangeKind.SET_SETTING,
        "why not",
        environment=environment,
        key=DUE,
        value=value,
        **kw,
    )


async def test_unprotected_proposals_apply_at_once(services, tenant):
    request = await services.changes.propose(ALICE, _set(tenant, 41))
    assert request.state is ChangeState.APPLIED and request.required_approvals == 0
    assert await _value(services, tenant) == 41


async def test_every_direct_write_to_a_protected_environment_is_refused(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 40, environment="production")
    await _protect(services, tenant)
    await services.tenants.create(ADMIN, "old", "Old", "1.5")
    await _protect(services, "old", "sandbox")
    head = await services.feed.head()
    refusals = [
        services.settings.set(ADMIN, tenant, DUE, 50, environment="production"),
        services.settings.reset(ADMIN, tenant, DUE, environment="production"),
        # tenant-wide overrides reach production too
        services.settings.set(ADMIN, tenant, DUE, 50),
        services.readiness.upgrade(ADMIN, "old", "2.0", force=True, reason="x"),
    ]
    for refusal in refusals:
        with pytest.raises(ChangeRequestRequiredError) as err:
            await refusal
        assert "protected" in err.value.message and "nothing was written" in err.value.message
    assert await services.feed.head() == head
    assert await _value(services, tenant) == 40
    # other environments stay direct
    await services.settings.set(ADMIN, tenant, DUE, 33, environment="sandbox")


async def test_four_eyes_and_the_right_to_make_the_change(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await _protect(services, tenant)
    request = await services.changes.propose(ALICE, _set(tenant, 60))
    assert request.state is ChangeState.PENDING and request.required_approvals == 1
    assert await _value(services, tenant) != 60
    with pytest.raises(PermissionDeniedError, match="four eyes"):
        await services.changes.approve(ALICE, request.id)
    # out of scope: the same answer as no request at all
    with pytest.raises(NotFoundError):
        await services.changes.approve(MALLORY, request.id)
    with pytest.raises(PermissionDeniedError):
        await services.changes.approve(Principal(Role.RELEASE_MANAGER, "rm"), request.id)
    assert (await services.changes.get(ADMIN, request.id)).state is ChangeState.PENDING
    done = await services.changes.approve(BOB, request.id, "looks right")
    assert done.state is ChangeState.APPLIED
    assert [(a.actor, a.comment) for a in done.approvals] == [("bob", "looks right")]
    assert await _value(services, tenant) == 60
    actions = [e.action for e in await services.feed.since(0, tenants=[tenant])]
    assert actions[-4:] == ["propose_change", "approve_change", "apply_change", "set"]


async def test_approvals_needed_per_environment(services, tenant):
    await _protect(services, tenant, approvals=2)
    request = await services.changes.propose(ALICE, _set(tenant, 61))
    assert request.required_approvals == 2
    once = await services.changes.approve(BOB, request.id)
    assert once.state is ChangeState.PENDING
    with pytest.raises(InvalidInputError, match="already approved"):
        await services.changes.approve(BOB, request.id)
    assert (await services.changes.approve(ADMIN, request.id)).state is ChangeState.APPLIED


async def test_a_stale_request_conflicts_and_changes_nothing(services, tenant):
    await _protect(services, tenant)
    request = await services.changes.propose(ALICE, _set(tenant, 70))
    assert request.expected_revision == 0
    # the environment moves on meanwhile (an approved request of its own)
    other = await services.changes.propose(BOB, _set(tenant, 71))
    await services.changes.approve(ALICE, other.id)
    with pytest.raises(ConflictError):
        await services.changes.approve(BOB, request.id)
    failed = await services.changes.get(ADMIN, request.id)
    assert failed.state is ChangeState.FAILED and "CONFLICT" in (failed.outcome or "")
    assert await _value(services, tenant) == 71


async def test_rejected_requests_never_apply(services, tenant):
    await _protect(services, tenant)
    request = await services.changes.propose(ALICE, _set(tenant, 80))
    with pytest.raises(InvalidInputError):
        await services.changes.reject(BOB, request.id, "  ")
    rejected = await services.changes.reject(BOB, request.id, "not now")
    assert rejected.state is ChangeState.REJECTED
    with pytest.raises(InvalidInputError):
        await services.changes.approve(BOB, request.id)
    assert await _value(services, tenant) != 80


async def test_unprotecting_is_itself_a_change_request(services, tenant):
    await _protect(services, tenant)
    off = await services.changes.protect(ADMIN, tenant, "production", False)
    assert off.state is ChangeState.PENDING
    with pytest.raises(ChangeRequestRequiredError):
        await services.settings.set(ADMIN, tenant, DUE, 50, environment="production")
    await services.changes.approve(OTHER_ADMIN, off.id)
    await services.settings.set(ADMIN, tenant, DUE, 50, environment="production")
    info = await services.tenants.get(ADMIN, tenant)
    assert info.protected == ()


async def test_break_glass_is_audited_on_the_feed(services, tenant):
    await _protect(services, tenant)
    with pytest.raises(InvalidInputError, match="--reason"):
        Authorization.break_glass(ADMIN, "")
    with pytest.raises(PermissionDeniedError):
        Authorization.break_glass(ALICE, "fire")
    head = await services.feed.head()
    glass = Authorization.break_glass(ADMIN, "outage INC-42")
    await services.settings.set(
        ADMIN, tenant, DUE, 99, environment="production", authorization=glass
    )
    events = await services.feed.since(head)
    assert [e.action for e in events] == ["break_glass", "set"]
    assert await _value(services, tenant) == 99


async def test_scheduled_change_applies_once_when_due(services, tenant):
    at = utcnow() + timedelta(seconds=30)
    request = await services.changes.propose(ALICE, _set(tenant, 90, apply_at=at))
    assert request.state is ChangeState.APPROVED
    assert await services.changes.apply_due() == 0
    later = at + timedelta(seconds=5)
    results = await asyncio.gather(*(services.changes.apply_due(later) for _ in range(3)))
    assert sum(results) == 1
    applied = await services.changes.get(ADMIN, request.id)
    assert applied.state is ChangeState.APPLIED
    assert await _value(services, tenant) == 90
    sets = [e for e in await services.feed.since(0, tenants=[tenant]) if e.action == "set"]
    assert len(sets) == 1


async def test_approved_after_apply_at_applies_and_says_late(services, tenant):
    await _protect(services, tenant)
    at = utcnow() - timedelta(seconds=5)
    request = await services.changes.propose(ALICE, _set(tenant, 91, apply_at=at))
    done = await services.changes.approve(BOB, request.id)
    assert done.state is ChangeState.APPLIED and "late" in (done.outcome or "")


async def test_list_is_scoped_and_pending_first(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await _protect(services, tenant)
    applied = await services.changes.propose(ALICE, _set(tenant, 10, environment="sandbox"))
    pending = await services.changes.propose(ALICE, _set(tenant, 11))
    mine = await services.changes.list(ALICE)
    assert [r.id for r in mine][:2] == [pending.id, applied.id]
    assert await services.changes.list(MALLORY) == []
    with pytest.raises(PermissionDeniedError):
        await services.changes.list(MALLORY, tenant)
    only = await services.changes.list(ADMIN, tenant, ChangeState.PENDING)
    assert [r.id for r in only] == [pending.id]


async def _last(services, tenant, action="set"):
    return [e for e in await services.feed.since(0, tenants=[tenant]) if e.action == action][-1]


async def test_revert_applies_the_inverse_as_a_new_revision(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 40, environment="production")
    await services.settings.set(ADMIN, tenant, DUE, 45, environment="production")
    change = await _last(services, tenant)
    reverted = await services.changes.revert(ALICE, change.sequence, "45 was wrong")
    assert reverted.state is ChangeState.APPLIED and reverted.reverts == change.sequence
    assert await _value(services, tenant) == 40
    entry = (await services.feed.get((await _last(services, tenant)).sequence))[1]
    assert (entry.old, entry.new, entry.revision) == (45, 40, 3)
    # the first set is older than the edits since: reverting it conflicts
    fed = await services.feed.since(0, tenants=[tenant])
    first = next(e for e in fed if e.action == "set")
    with pytest.raises(ConflictError):  # a later edit of the same key
        await services.changes.revert(ALICE, first.sequence)
    assert await _value(services, tenant) == 40


async def test_revert_in_a_protected_environment_is_a_change_request(services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 45, environment="production")
    change = await _last(services, tenant)
    await _protect(services, tenant)
    request = await services.changes.revert(ALICE, change.sequence)
    assert request.state is ChangeState.PENDING and request.kind is ChangeKind.RESET_SETTING
    assert (await services.changes.approve(BOB, request.id)).state is ChangeState.APPLIED
    resolution = await services.settings.resolve(ADMIN, tenant, "production", keys=[DUE])
    assert resolution.settings[0].source == "DEFAULT"


async def test_revert_refusals_are_clear(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    await services.settings.set(ADMIN, "other", DUE, 45)
    theirs = await _last(services, "other")
    with pytest.raises(NotFoundError):
        await services.changes.revert(ALICE, theirs.sequence)
    with pytest.raises(NotFoundError):
        await services.changes.revert(ALICE, 10**9)
    created = await _last(services, tenant, "create_tenant")
    with pytest.raises(InvalidInputError, match="only override changes"):
        await services.changes.revert(ADMIN, created.sequence)
    secret = "integrations.webhooks.signing_secret"
    await services.settings.set(ADMIN, tenant, secret, "s3cret-one")
    first = await _last(services, tenant)
    await services.settings.set(ADMIN, tenant, secret, "s3cret-two")
    second = await _last(services, tenant)
    with pytest.raises(InvalidInputError, match="cannot be recovered"):
        await services.changes.revert(ADMIN, second.sequence)
    with pytest.raises(ConflictError):
        await services.changes.revert(ADMIN, first.sequence)


async def test_a_secret_value_is_sealed_in_the_request_and_never_shown(services, tenant):
    secret = "integrations.webhooks.signing_secret"
    await _protect(services, tenant)
    request = await services.changes.propose(
        ALICE,
        ProposedChange(
            tenant,
            ChangeKind.SET_SETTING,
            "rotate",
            environment="production",
            key=secret,
            value="whsec-NEW-0042",
        ),
    )
    assert request.value == "<secret>" and "whsec" not in request.summary
    listed = await services.changes.list(ADMIN, tenant)
    assert "whsec" not in repr(listed)
    await services.changes.approve(BOB, request.id)
    resolution = await services.settings.resolve(ADMIN, tenant, "production", keys=[secret])
    assert resolution.settings[0].value == "whsec-NEW-0042"
    fed = await services.feed.since(0, tenants=[tenant])
    audit = await services.audit.list_all(ADMIN, tenant, limit=50)
    assert "whsec" not in repr(fed) and "whsec" not in repr(audit)


async def test_bulk_publishing_never_enables_for_a_protected_tenant(services, tenant):
    from dataclasses import replace

    from core.model.customizations import CustomizationManifest, HookUse, Registration

    bulk = Registration(
        manifest=CustomizationManifest("bulk-guard", "1.0", (tenant,), ">=1.0"),
        hooks=(HookUse("tailor_validate_setting", ("key", "value"), "fp"),),
        setting_keys=(),
        package="bulk_guard",
    )
    await _protect(services, tenant)
    with pytest.raises(ChangeRequestRequiredError):
        await services.registry.publish_many(ADMIN, [replace(bulk, enabled_for=(tenant,))])
    assert not [r for r in await services.registry.list_all(ADMIN) if r.name == "bulk-guard"]
    # publishing without enabling is no change to the tenant
    assert await services.registry.publish_many(ADMIN, [bulk]) == 1


async def test_customization_and_upgrade_requests_apply_on_approval(services, tenant):
    from core.model.customizations import CustomizationManifest, HookUse, Registration

    for version in ("1.0", "1.1"):
        await services.registry.publish(
            ADMIN,
            Registration(
                manifest=CustomizationManifest("cr-pin", version, (tenant,), ">=1.0"),
                hooks=(HookUse("tailor_validate_setting", ("key", "value"), "fp"),),
                setting_keys=(),
                package="cr_pin",
            ),
        )
    await services.tenants.create(ADMIN, "old", "Old", "1.5")
    await _protect(services, tenant, "sandbox")  # any environment: the whole tenant
    await _protect(services, "old")
    enable = await services.changes.propose(
        ALICE,
        ProposedChange(
            tenant, ChangeKind.ENABLE_CUSTOMIZATION, "r", customization="cr-pin", version="1.0"
        ),
    )
    with pytest.raises(NotFoundError):  # checked when proposed, as the service would
        await services.changes.propose(
            ALICE,
            ProposedChange(
                tenant, ChangeKind.PIN_CUSTOMIZATION, "r", customization="nope", version="1"
            ),
        )
    assert enable.state is ChangeState.PENDING
    await services.changes.approve(BOB, enable.id)
    pin = await services.changes.propose(
        BOB,
        ProposedChange(
            tenant, ChangeKind.PIN_CUSTOMIZATION, "r", customization="cr-pin", version="1.1"
        ),
    )
    await services.changes.approve(ALICE, pin.id)
    (registration,) = [r for r in await services.registry.list_all(ADMIN) if r.name == "cr-pin"]
    assert registration.pins == ((tenant, "1.1"),)
    upgrade = await services.changes.propose(
        ADMIN, ProposedChange("old", ChangeKind.UPGRADE_TENANT, "go", version="2.0", value=True)
    )
    assert upgrade.state is ChangeState.PENDING
    carol = Principal(Role.CONSULTANT, "carol", frozenset({"old"}))
    with pytest.raises(PermissionDeniedError):  # only an admin may upgrade
        await services.changes.approve(carol, upgrade.id)
    await services.changes.approve(OTHER_ADMIN, upgrade.id)
    assert (await services.tenants.get(ADMIN, "old")).release == "2.0"


async def test_a_write_racing_a_protection_never_slips_past_it(services, tenant):
    """Protection being turned on (not yet committed): a concurrent write waits
    for it, then sees it and is refused, rather than writing unprotected."""
    from sqlalchemy import update

    from core.store.models import Environment, Tenant

    async with services.sessions.begin() as session:
        tenant_id = await session.scalar(select_tenant_id(Tenant, tenant))
        await session.execute(
            update(Environment)
            .where(Environment.tenant_id == tenant_id, Environment.name == "production")
            .values(protected=True)
        )
        write = asyncio.create_task(
            services.settings.set(ADMIN, tenant, DUE, 50, environment="production")
        )
        await asyncio.sleep(0.5)
        assert not write.done()  # waits for the protection's transaction
    with pytest.raises(ChangeRequestRequiredError):
        await write
    assert await _value(services, tenant) != 50


def select_tenant_id(model, slug):
    from sqlalchemy import select

    return select(model.id).where(model.slug == slug)
