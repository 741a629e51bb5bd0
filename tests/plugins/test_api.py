"""Customizations through the real app: settings with CUSTOMIZATION sources and
customizationErrors, the customizations and extensionPoints queries, publishing
and enabling with scope checks."""

from __future__ import annotations

from core.store.authorization import ChangeState
from tests.conftest import ADMIN
from tests.plugins.conftest import publish_enable

SETTINGS = """
query($tenant: String!) {
  settings(tenant: $tenant, keys: ["ui.theme.mode"]) {
    ... on Settings {
      items { key value source }
      customizationErrors { customization hook message }
    }
    ... on Error { code message }
  }
}
"""
CUSTOMIZATIONS = """
query($tenant: String, $capability: String) {
  customizations(tenant: $tenant, capability: $capability) {
    ... on CustomizationList { items {
      name version capability installed registered refused enabledFor tenants
      problems { file field message } hooks { hook params fingerprint returnsConstant }
      settingKeys health { calls failures lastError } drift { code }
    } }
    ... on Error { code message }
  }
}
"""
PUBLISH = """
mutation($archive: Upload!) {
  publishCustomization(archive: $archive) {
    ... on Customization { name registered hooks { hook params } }
    ... on Error { code message }
  }
}
"""
ENABLE = """
mutation($tenant: String!, $name: String!, $enabled: Boolean!) {
  setCustomizationEnabled(tenant: $tenant, name: $name, enabled: $enabled) {
    ... on Customization { name enabledFor }
    ... on Error { code message }
  }
}
"""

THEME = """
@hookimpl
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "dark"}
"""
RAISES = """
@hookimpl
def tailor_resolve_settings(values):
    raise ZeroDivisionError("division by zero in margin rule")
"""


async def test_publish_enable_and_resolve_through_the_api(
    plugin_api, write_customization, two_tenants
):
    acme, other = two_tenants
    theme = write_customization("theme", THEME, tenants=(acme, other))
    raiser = write_customization("raiser", RAISES, tenants=(other,))
    api, _runtime = await plugin_api()

    published = (await api.upload(PUBLISH, theme, token="consultant"))["data"]
    assert published["publishCustomization"]["code"] == "PERMISSION_DENIED"  # lists "other"
    published = (await api.upload(PUBLISH, theme))["data"]["publishCustomization"]
    assert published["registered"] is True
    assert published["hooks"] == [{"hook": "tailor_resolve_settings", "params": ["values"]}]
    await api.upload(PUBLISH, raiser)

    enabled = (
        await api.gql(ENABLE, {"tenant": acme, "name": "theme", "enabled": True}, "consultant")
    )["data"]["setCustomizationEnabled"]
    assert enabled == {"name": "theme", "enabledFor": [acme]}
    denied = (
        await api.gql(ENABLE, {"tenant": other, "name": "raiser", "enabled": True}, "consultant")
    )["data"]["setCustomizationEnabled"]
    assert denied["code"] == "PERMISSION_DENIED"
    await api.gql(ENABLE, {"tenant": other, "name": "raiser", "enabled": True})

    mine = (await api.gql(SETTINGS, {"tenant": acme}, token="app"))["data"]["settings"]
    assert mine["items"] == [
        {"key": "ui.theme.mode", "value": "dark", "source": "CUSTOMIZATION:theme"}
    ]
    assert mine["customizationErrors"] == []
    theirs = (await api.gql(SETTINGS, {"tenant": other}))["data"]["settings"]
    assert theirs["items"][0]["source"] == "DEFAULT"
    assert theirs["customizationErrors"] == [
        {
            "customization": "raiser",
            "hook": "tailor_resolve_settings",
            "message": "ZeroDivisionError: division by zero in margin rule",
        }
    ]

    listed = (await api.gql(CUSTOMIZATIONS, {}))["data"]["customizations"]["items"]
    by_name = {c["name"]: c for c in listed}
    assert by_name["raiser"]["health"]["failures"] == 1
    assert "division by zero" in by_name["raiser"]["health"]["lastError"]
    assert by_name["theme"]["health"] == {"calls": 1, "failures": 0, "lastError": None}
    assert by_name["theme"]["settingKeys"] == ["ui.theme.mode"]
    # a consultant sees only customizations made for their tenants
    scoped = (await api.gql(CUSTOMIZATIONS, {}, token="consultant"))["data"]["customizations"]
    assert [c["name"] for c in scoped["items"]] == ["theme"]
    app = (await api.gql(CUSTOMIZATIONS, {}, token="app"))["data"]["customizations"]
    assert app["code"] == "PERMISSION_DENIED"


async def test_refused_and_installed_but_unregistered_are_shown(
    plugin_api, write_customization, two_tenants
):
    acme, _ = two_tenants
    write_customization("theme", THEME, capability="ui-defaults")
    write_customization("broken", "import nope\n", capability="ui-defaults")
    api, _runtime = await plugin_api()
    items = (await api.gql(CUSTOMIZATIONS, {"tenant": acme, "capability": "ui-defaults"}))["data"][
        "customizations"
    ]["items"]
    by_name = {c["name"]: c for c in items}
    assert by_name["broken"]["refused"] is True
    assert by_name["broken"]["problems"][0]["field"] == "import"
    # found on disk (a source to publish): neither stored nor registered
    assert by_name["theme"]["installed"] is False
    assert by_name["theme"]["registered"] is False
    assert by_name["theme"]["drift"] == [{"code": "INSTALLED_NOT_REGISTERED"}]
    assert by_name["theme"]["hooks"][0]["returnsConstant"] is True


async def test_publish_refuses_problems_and_foreign_paths(
    plugin_api, write_customization, tmp_path
):
    bad = write_customization("bad", "@hookimpl\ndef tailor_nope():\n    pass\n")
    api, _runtime = await plugin_api()
    result = (await api.upload(PUBLISH, bad))["data"]["publishCustomization"]
    assert result["code"] == "INVALID_INPUT"
    assert "unknown hook 'tailor_nope'" in result["message"]
    # the problem names the file inside the package, never the server's cache
    assert "hooks.py" in result["message"] and ".tailor-cache" not in result["message"]
    not_zip = (await api.upload(PUBLISH, b"not a zip"))["data"]["publishCustomization"]
    assert not_zip["code"] == "INVALID_INPUT"
    assert "not a zip" in not_zip["message"]
    listed = (await api.gql(CUSTOMIZATIONS, {}))["data"]["customizations"]["items"]
    assert [c["registered"] for c in listed] == [False]


async def test_extension_points_with_lifecycle(plugin_api):
    api, _runtime = await plugin_api()
    query = """query($release: String) { extensionPoints(release: $release) {
        ... on ExtensionPoints { release items { name params added deprecated removed
              replacement stability source } }
        ... on Error { code message } } }"""
    current = (await api.gql(query, {}))["data"]["extensionPoints"]
    by_name = {p["name"]: p for p in current["items"]}
    assert current["release"] == "2.0"
    # Tailor's hooks are numbered in hook APIs, not in Acme's versions
    assert by_name["tailor_resolve_setting"]["deprecated"] == "2"
    assert by_name["tailor_resolve_setting"]["replacement"] == "tailor_resolve_settings"
    assert by_name["acme_order_approval_route"]["stability"] == "experimental"
    assert by_name["acme_order_approval_route"]["source"] == "acme_erp"
    old = (await api.gql(query, {"release": "1.0"}))["data"]["extensionPoints"]
    names = {p["name"] for p in old["items"]}
    assert "tailor_resolve_setting" in names
    assert "tailor_resolve_settings" not in names
    assert "acme_order_approval_route" not in names
    missing = (await api.gql(query, {"release": "9.9"}))["data"]["extensionPoints"]
    assert missing["code"] == "NOT_FOUND"
    app = (await api.gql(query, {}, token="app"))["data"]["extensionPoints"]
    assert app["code"] == "PERMISSION_DENIED"


HANGS = """
import time

@hookimpl
def tailor_resolve_settings(values):
    time.sleep(0.8)
    return {"ui.theme.mode": "dark"}
"""


READER = """
@hookimpl
def tailor_resolve_settings(values):
    days = values["billing.invoice.due_days"]
    if "ui.theme.mode" in values:
        return {"billing.invoice.due_days": days + 15}
    return None
"""

OBSERVED = """{ customizations { ... on CustomizationList { items { name
  observations { tenant hook calls failures changed latencyP50Ms keysRead keysReturned } } } } }"""


async def test_observations_are_shown_in_scope(
    plugin_api, write_customization, two_tenants, services
):
    acme, other = two_tenants
    write_customization("reader", READER, tenants=(acme, other))
    api, runtime = await plugin_api()
    await publish_enable(services, runtime, acme, "reader")
    # two different documents: the same one again would be answered from the cache
    for extra in ("", " __typename"):
        body = await api.gql(
            '{ settings(tenant: "acme", keys: ["billing.invoice.due_days"]) '
            "{ ... on Settings { items { value source } } }" + extra + " }"
        )
        assert body["data"]["settings"]["items"] == [
            {"value": 45, "source": "CUSTOMIZATION:reader"}
        ]
    admin = await api.gql(OBSERVED)
    [item] = admin["data"]["customizations"]["items"]
    [seen] = item["observations"]
    # expected: two resolutions of acme, each read two keys and returned one
    assert seen["tenant"] == acme and seen["hook"] == "tailor_resolve_settings"
    assert (seen["calls"], seen["failures"], seen["changed"]) == (2, 0, 2)
    assert seen["keysRead"] == ["billing.invoice.due_days", "ui.theme.mode"]
    assert seen["keysReturned"] == ["billing.invoice.due_days"]
    assert seen["latencyP50Ms"] is not None
    # a consultant of the other tenant sees the customization, not acme's observations
    token = await api.token(services, "consultant", other)
    theirs = await api.gql(OBSERVED, token=token)
    [item] = theirs["data"]["customizations"]["items"]
    assert item["observations"] == []


PUBLISH_ENABLE = """
mutation($archive: Upload!) {
  publishCustomization(archive: $archive, enable: true) {
    ... on Customization { name enabledFor
      changeRequests { id tenant state kind customization version approvalsNeeded } }
    ... on Error { code message }
  }
}
"""


async def test_publish_enable_lists_the_change_requests_it_proposed(
    plugin_api, write_customization, two_tenants, services
):
    acme, other = two_tenants
    await services.changes.protect(ADMIN, other, "production", True)
    theme = write_customization("theme", THEME, tenants=(acme, other))
    api, _runtime = await plugin_api()
    published = (await api.upload(PUBLISH_ENABLE, theme))["data"]["publishCustomization"]
    # acme (nothing protected) runs it at once; other's enablement waits for approval
    assert published["enabledFor"] == [acme], published
    (request,) = published["changeRequests"]
    assert request == {
        "id": request["id"],
        "tenant": other,
        "state": "PENDING",
        "kind": "ENABLE_CUSTOMIZATION",
        "customization": "theme",
        "version": "1.0.0",
        "approvalsNeeded": 1,
    }
    (pending,) = await services.changes.list(ADMIN, other, ChangeState.PENDING)
    assert pending.id == request["id"]
    # the field is empty in any other answer
    again = (await api.gql(ENABLE, {"tenant": acme, "name": "theme", "enabled": True}))["data"]
    assert again["setCustomizationEnabled"]["enabledFor"] == [acme]
    listed = await api.gql(
        "{ customizations { ... on CustomizationList { items { name changeRequests { id } } } } }"
    )
    assert listed["data"]["customizations"]["items"] == [{"name": "theme", "changeRequests": []}]
