"""Change requests over HTTP: no mutation writes a protected environment
directly (each answers ChangeRequestRequired and changes nothing); a proposal
is applied by another principal's approval, never its author's; a stale one
conflicts."""

import pytest

from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.store.authorization import Authorization
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"
RESULT = """__typename ... on ChangeRequest { id state author approvalsNeeded outcome summary
  approvals { actor comment } } ... on Error { code message }"""
PROTECT = (
    """mutation($t: String!, $e: String!, $p: Boolean!) {
    setEnvironmentProtection(tenant: $t, environment: $e, protected: $p) { """
    + RESULT
    + " } }"
)
PROPOSE = "mutation($i: ProposeChangeInput!) { proposeChange(input: $i) { " + RESULT + " } }"
APPROVE = 'mutation($id: Int!) { approveChange(id: $id, comment: "ok") { ' + RESULT + " } }"
REJECT = 'mutation($id: Int!) { rejectChange(id: $id, reason: "no") { ' + RESULT + " } }"
LIST = """query($t: String) { changeRequests(tenant: $t) { __typename
  ... on ChangeRequests { items { id tenant state summary } } ... on Error { code } } }"""
ERR = "__typename ... on Error { code message }"

#: every direct mutation that writes what a tenant sees (the console's forms
#: post to the same services: tests/api/test_console_changes.py)
DIRECT = {
    "setSetting(production)": 'mutation { setSetting(input: {tenant: "acme", '
    'key: "billing.invoice.due_days", value: 50, environment: "production"}) { ' + ERR + " } }",
    "resetSetting(production)": 'mutation { resetSetting(input: {tenant: "acme", '
    'key: "billing.invoice.due_days", environment: "production"}) { ' + ERR + " } }",
    "setSetting(tenant-wide)": 'mutation { setSetting(input: {tenant: "acme", '
    'key: "billing.invoice.due_days", value: 50}) { ' + ERR + " } }",
    "setCustomizationEnabled": 'mutation { setCustomizationEnabled(tenant: "acme", '
    'name: "cr-guard", enabled: true) { ' + ERR + " } }",
    "setCustomizationVersion": 'mutation { setCustomizationVersion(tenant: "acme", '
    'name: "cr-guard", version: "1.1") { ' + ERR + " } }",
}


async def _publish(services):
    for version in ("1.0", "1.1"):
        await services.registry.publish(
            ADMIN,
            Registration(
                manifest=CustomizationManifest(
                    name="cr-guard", version=version, tenants=("acme",), requires=">=1.0"
                ),
                hooks=(HookUse("tailor_validate_setting", ("key", "value"), "fp"),),
                setting_keys=(),
                package="cr_guard",
            ),
        )


async def _protect(api, tenant="acme", environment="production"):
    body = await api.gql(PROTECT, {"t": tenant, "e": environment, "p": True})
    assert body["data"]["setEnvironmentProtection"]["state"] == "APPLIED", body


async def _due(services, environment="production"):
    resolution = await services.settings.resolve(ADMIN, "acme", environment, keys=[DUE])
    return resolution.settings[0].value


async def test_no_mutation_bypasses_a_protected_environment(api, services):
    await _publish(services)
    await services.settings.set(ADMIN, "acme", DUE, 40, environment="production")
    await services.registry.set_enabled(ADMIN, "acme", "cr-guard", True, "1.0")
    await services.registry.set_enabled(ADMIN, "acme", "cr-guard", False)
    await services.tenants.create(ADMIN, "old", "Old", "1.5")
    await _protect(api)
    await _protect(api, "old", "sandbox")
    head = await services.feed.head()
    for token in ("admin", "consultant"):
        for name, query in DIRECT.items():
            body = await api.gql(query, token=token)
            (answer,) = body["data"].values()
            assert answer["__typename"] == "ChangeRequestRequired", (token, name, body)
            assert "proposeChange" in answer["message"]
    body = await api.gql(
        'mutation { upgradeTenant(tenant: "old", target: "2.0", force: true, reason: "x") { '
        + ERR
        + " } }"
    )
    assert body["data"]["upgradeTenant"]["__typename"] == "ChangeRequestRequired", body
    # nothing changed, nothing was fed
    assert await services.feed.head() == head
    assert await _due(services) == 40
    (registration,) = [
        r for r in await services.registry.list_all(ADMIN) if r.manifest.name == "cr-guard"
    ]
    assert registration.enabled_for == ()
    assert (await services.tenants.get(ADMIN, "old")).release == "1.5"
    # an environment that is not protected stays direct
    body = await api.gql(
        'mutation { setSetting(input: {tenant: "acme", key: "billing.invoice.due_days", '
        'value: 33, environment: "sandbox"}) { __typename } }'
    )
    assert body["data"]["setSetting"]["__typename"] == "SettingChanged"


async def test_another_principal_approves_and_it_applies(api, services):
    await _protect(api)
    bob = await api.token(services, "consultant", "acme")
    proposal = {
        "tenant": "acme",
        "kind": "SET_SETTING",
        "environment": "production",
        "key": DUE,
        "value": 60,
        "reason": "finance asked",
    }
    body = await api.gql(PROPOSE, {"i": proposal}, token="consultant")
    request = body["data"]["proposeChange"]
    assert request["state"] == "PENDING" and request["approvalsNeeded"] == 1, body
    own = await api.gql(APPROVE, {"id": request["id"]}, token="consultant")
    assert own["data"]["approveChange"]["__typename"] == "PermissionDenied"
    assert "four eyes" in own["data"]["approveChange"]["message"]
    # an app token has no right to make the change, so none to approve it
    app = await api.gql(APPROVE, {"id": request["id"]}, token="app")
    assert app["data"]["approveChange"]["__typename"] == "PermissionDenied"
    assert await _due(services) != 60
    done = await api.gql(APPROVE, {"id": request["id"]}, token=bob)
    approved = done["data"]["approveChange"]
    assert approved["state"] == "APPLIED", done
    assert approved["approvals"][0]["comment"] == "ok"
    assert await _due(services) == 60
    listed = await api.gql(LIST, {"t": "acme"}, token="consultant")
    assert listed["data"]["changeRequests"]["items"][0]["state"] == "APPLIED"


async def test_a_stale_request_conflicts_over_http(api, services):
    await _protect(api)
    bob = await api.token(services, "consultant", "acme")
    first = {"tenant": "acme", "kind": "SET_SETTING", "environment": "production"}
    first |= {"key": DUE, "value": 70, "reason": "one"}
    a = (await api.gql(PROPOSE, {"i": first}, token="consultant"))["data"]["proposeChange"]
    b = (await api.gql(PROPOSE, {"i": first | {"value": 71}}, token="consultant"))["data"][
        "proposeChange"
    ]
    assert (await api.gql(APPROVE, {"id": b["id"]}, token=bob))["data"]["approveChange"][
        "state"
    ] == "APPLIED"
    stale = await api.gql(APPROVE, {"id": a["id"]}, token=bob)
    assert stale["data"]["approveChange"]["__typename"] == "Conflict", stale
    assert await _due(services) == 71
    listed = await api.gql(LIST, {"t": "acme"})
    states = {i["id"]: i["state"] for i in listed["data"]["changeRequests"]["items"]}
    assert states[a["id"]] == "FAILED"


async def test_unprotected_proposals_apply_at_once_and_reject(api, services):
    body = await api.gql(
        PROPOSE,
        {
            "i": {
                "tenant": "acme",
                "kind": "SET_SETTING",
                "environment": "sandbox",
                "key": DUE,
                "value": 21,
                "reason": "tooling",
            }
        },
        token="consultant",
    )
    assert body["data"]["proposeChange"]["state"] == "APPLIED"
    assert await _due(services, "sandbox") == 21
    bad = await api.gql(
        PROPOSE,
        {"i": {"tenant": "acme", "kind": "SET_SETTING", "key": DUE, "value": "x", "reason": "r"}},
    )
    assert bad["data"]["proposeChange"]["__typename"] == "ValidationFailed"
    await _protect(api)
    pending = (
        await api.gql(
            PROPOSE,
            {
                "i": {"tenant": "acme", "kind": "RESET_SETTING", "environment": "production"}
                | {"key": DUE, "reason": "r"}
            },
        )
    )["data"]["proposeChange"]
    assert pending["__typename"] == "NotFound"  # nothing to reset there


@pytest.mark.parametrize("token", ["admin"])
async def test_unprotecting_needs_another_admin(api, services, token):
    await _protect(api)
    off = await api.gql(PROTECT, {"t": "acme", "e": "production", "p": False}, token=token)
    request = off["data"]["setEnvironmentProtection"]
    assert request["state"] == "PENDING", off
    again = await api.gql(APPROVE, {"id": request["id"]}, token=token)
    assert again["data"]["approveChange"]["__typename"] == "PermissionDenied"
    # a consultant may not approve what only an admin may do
    consultant = await api.gql(APPROVE, {"id": request["id"]}, token="consultant")
    assert consultant["data"]["approveChange"]["__typename"] == "PermissionDenied"
    other_admin = await api.token(services, "admin")
    done = await api.gql(APPROVE, {"id": request["id"]}, token=other_admin)
    assert done["data"]["approveChange"]["state"] == "APPLIED"
    tenant = await api.gql(
        '{ tenant(slug: "acme") { ... on Tenant { protectedEnvironments { name } } } }'
    )
    assert tenant["data"]["tenant"]["protectedEnvironments"] == []


async def test_requests_of_other_tenants_stay_unseen(api, services):
    await services.changes.protect(ADMIN, "other", "production", True)
    request = await services.changes.protect(ADMIN, "other", "production", False)
    listed = await api.gql(LIST, {"t": None}, token="consultant")
    assert listed["data"]["changeRequests"]["items"] == []
    for query in (APPROVE, REJECT):
        body = await api.gql(query, {"id": request.id}, token="consultant")
        (answer,) = body["data"].values()
        assert answer["__typename"] == "NotFound"
        assert "other" not in answer["message"]


REVERT = "mutation($s: Int!) { revertChange(sequence: $s) { " + RESULT + " } }"


async def test_revert_over_http_and_its_conflict(api, services):
    await services.settings.set(ADMIN, "acme", DUE, 40, environment="production")
    await services.settings.set(ADMIN, "acme", DUE, 45, environment="production")
    sets = [e for e in await services.feed.since(0, tenants=["acme"]) if e.action == "set"]
    body = await api.gql(REVERT, {"s": sets[-1].sequence}, token="consultant")
    assert body["data"]["revertChange"]["state"] == "APPLIED", body
    assert await _due(services) == 40
    stale = await api.gql(REVERT, {"s": sets[0].sequence}, token="consultant")
    assert stale["data"]["revertChange"]["__typename"] == "Conflict", stale
    assert await _due(services) == 40


REVERTED = (
    'mutation($s: Int!) { revertChange(sequence: $s, reason: "roll back") { __typename '
    "... on ChangeRequest { id state kind reverts customization version outcome summary } "
    "... on InvalidInput { field } ... on Conflict { key expectedRevision currentRevision } "
    "... on Error { code message } } }"
)


async def _revert(api, sequence, token="consultant"):
    body = await api.gql(REVERTED, {"s": sequence}, token=token)
    return body["data"]["revertChange"]


async def _fed(services, start, action):
    return [e.sequence for e in await services.feed.since(start) if e.action == action]


async def _guard(services):
    (registration,) = [
        r for r in await services.registry.list_all(ADMIN) if r.manifest.name == "cr-guard"
    ]
    return dict(registration.pins), registration.enabled_for


async def test_revert_a_customization_enablement_and_pin_over_http(api, services):
    await _publish(services)
    start = await services.feed.head()
    await services.registry.set_enabled(ADMIN, "acme", "cr-guard", True, "1.0")
    await services.registry.set_version(ADMIN, "acme", "cr-guard", "1.1")
    (enabled,) = await _fed(services, start, "enable_customization")
    first_pin, second_pin = await _fed(services, start, "pin_customization")
    # the first pin has no version before it: say what to do instead
    refused = await _revert(api, first_pin)
    assert refused["__typename"] == "InvalidInput" and refused["code"] == "NOT_REVERTIBLE"
    assert f"revert its enablement, change {enabled}" in refused["message"], refused
    # the pin to 1.1 goes back to 1.0: a new change, audited, on the feed
    head = await services.feed.head()
    back = await _revert(api, second_pin)
    assert back["state"] == "APPLIED" and back["kind"] == "PIN_CUSTOMIZATION", back
    assert (back["reverts"], back["version"]) == (second_pin, "1.0")
    assert (await _guard(services))[0] == {"acme": "1.0"}
    assert await _fed(services, head, "pin_customization")
    # reverted once, the same pin is a Conflict: it changed again since
    again = await _revert(api, second_pin)
    assert again["__typename"] == "Conflict", again
    assert again["code"] == "CONFLICT" and again["expectedRevision"] == second_pin
    assert again["currentRevision"] > second_pin
    assert (await _guard(services))[0] == {"acme": "1.0"}
    # the enablement is reverted by disabling (a later pin is no later enablement)
    off = await _revert(api, enabled)
    assert off["state"] == "APPLIED" and off["kind"] == "DISABLE_CUSTOMIZATION", off
    assert (await _guard(services))[1] == ()
    (disabled,) = await _fed(services, head, "disable_customization")
    on = await _revert(api, disabled)
    assert on["state"] == "APPLIED" and on["kind"] == "ENABLE_CUSTOMIZATION", on
    assert await _guard(services) == ({"acme": "1.0"}, ("acme",))  # its pin kept


async def test_a_customization_revert_is_a_change_request_where_protected(api, services):
    await _publish(services)
    start = await services.feed.head()
    await services.registry.set_enabled(ADMIN, "acme", "cr-guard", True, "1.0")
    await services.registry.set_version(ADMIN, "acme", "cr-guard", "1.1")
    _first, pin = await _fed(services, start, "pin_customization")
    (enabled,) = await _fed(services, start, "enable_customization")
    await _protect(api)
    bob = await api.token(services, "consultant", "acme")
    pending = await _revert(api, pin)
    assert pending["state"] == "PENDING" and pending["reverts"] == pin, pending
    assert (await _guard(services))[0] == {"acme": "1.1"}  # nothing yet
    done = await api.gql(APPROVE, {"id": pending["id"]}, token=bob)
    assert done["data"]["approveChange"]["state"] == "APPLIED", done
    assert (await _guard(services))[0] == {"acme": "1.0"}
    # made stale between proposal and approval (the operator's break-glass
    # disabled it): the approval conflicts, fails the request and changes nothing
    stale = await _revert(api, enabled)
    assert stale["state"] == "PENDING", stale
    glass = Authorization.break_glass(ADMIN, "INC-9")
    await services.registry.set_enabled(ADMIN, "acme", "cr-guard", False, authorization=glass)
    await services.registry.set_enabled(ADMIN, "acme", "cr-guard", True, authorization=glass)
    answer = (await api.gql(APPROVE, {"id": stale["id"]}, token=bob))["data"]["approveChange"]
    assert answer["__typename"] == "Conflict", answer
    assert await _guard(services) == ({"acme": "1.0"}, ("acme",))
    listed = await api.gql(LIST, {"t": "acme"})
    states = {i["id"]: i["state"] for i in listed["data"]["changeRequests"]["items"]}
    assert states[stale["id"]] == "FAILED"
    failed = await services.changes.get(ADMIN, stale["id"])
    assert failed.outcome is not None and "changed again by change" in failed.outcome


async def test_an_applied_change_request_is_reverted_by_its_apply_sequence(api, services):
    await services.settings.set(ADMIN, "acme", DUE, 40, environment="sandbox")
    start = await services.feed.head()
    proposal = {"tenant": "acme", "kind": "SET_SETTING", "environment": "sandbox"}
    body = await api.gql(PROPOSE, {"i": proposal | {"key": DUE, "value": 41, "reason": "r"}})
    assert body["data"]["proposeChange"]["state"] == "APPLIED", body
    (applied,) = await _fed(services, start, "apply_change")
    (made,) = await _fed(services, start, "set")
    back = await _revert(api, applied)
    assert back["state"] == "APPLIED" and back["reverts"] == made, back
    assert await _due(services, "sandbox") == 40


async def test_changes_without_an_inverse_say_why(api, services):
    await services.tenants.create(ADMIN, "old", "Old", "1.5")
    start = await services.feed.head()
    await services.readiness.upgrade(ADMIN, "old", "2.0", force=True, reason="go")
    (upgrade,) = await _fed(services, start, "upgrade_tenant")
    refused = await _revert(api, upgrade, token="admin")
    assert refused["code"] == "NOT_REVERTIBLE" and refused["field"] == "sequence", refused
    assert "no downgrades" in refused["message"]
    assert (await services.tenants.get(ADMIN, "old")).release == "2.0"
    # a change request's state
    await _protect(api)
    (protected,) = await _fed(services, start, "propose_change")
    state = await _revert(api, protected, token="admin")
    assert state["code"] == "NOT_REVERTIBLE" and "rejectChange" in state["message"], state
    # the protection's apply: not the next transaction's change of the tenant beside it
    await services.settings.set(ADMIN, "acme", DUE, 40, environment="sandbox")
    (applied,) = await _fed(services, start, "apply_change")
    protection = await _revert(api, applied, token="admin")
    assert protection["code"] == "NOT_REVERTIBLE", protection
    assert "setEnvironmentProtection" in protection["message"]
    # a change of no tenant: the admin hears why, a scoped consultant that there is none
    imported = next(
        e.sequence for e in await services.feed.since(0) if e.action == "release_imported"
    )
    head = await services.feed.head()
    admin = await _revert(api, imported, token="admin")
    assert admin["code"] == "NOT_REVERTIBLE" and "release" in admin["message"], admin
    assert (await _revert(api, imported))["__typename"] == "NotFound"
    assert (await _revert(api, 10**9, token="admin"))["__typename"] == "NotFound"
    assert await services.feed.head() == head  # nothing written by any refusal
