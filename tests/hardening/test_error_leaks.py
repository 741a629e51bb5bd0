"""Probe (issue 13): error messages name only tenants, customizations and paths
the caller may see."""

from __future__ import annotations

import pytest

from core.model.auth import Principal, Role
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.model.errors import PermissionDeniedError
from tests.conftest import ADMIN

ENABLE = """mutation($t: String!, $n: String!) { setCustomizationEnabled(tenant: $t, name: $n,
  enabled: true) { __typename ... on Error { code message } } }"""


def registration(name: str, *tenants: str) -> Registration:
    return Registration(
        manifest=CustomizationManifest(name=name, version="1.0", tenants=tenants, requires=">=1.0"),
        hooks=(HookUse("tailor_validate_setting", ("key", "value"), "fp"),),
        setting_keys=(),
        package=name.replace("-", "_"),
    )


async def test_enabling_tells_a_scoped_caller_nothing_about_other_tenants(api, services):
    await services.registry.publish(ADMIN, registration("other-only", "other"))
    exists = await api.gql(ENABLE, {"t": "acme", "n": "other-only"}, token="consultant")
    missing = await api.gql(ENABLE, {"t": "acme", "n": "no-such-thing"}, token="consultant")
    a, b = exists["data"]["setCustomizationEnabled"], missing["data"]["setCustomizationEnabled"]
    assert "other" not in a["message"].replace("other-only", ""), a
    # an existing customization of another tenant and a missing one look the same
    assert (a["__typename"], a["code"]) == (b["__typename"], b["code"]) == ("NotFound", "NOT_FOUND")
    assert a["message"].replace("other-only", "X") == b["message"].replace("no-such-thing", "X")
    # the admin still gets the detailed answer
    admin = await api.gql(ENABLE, {"t": "acme", "n": "other-only"})
    assert "lists: other" in admin["data"]["setCustomizationEnabled"]["message"]


async def test_publishing_a_shared_customization_names_no_tenant_beyond_scope(services, tenant):
    await services.tenants.create(ADMIN, "wayne", "Wayne", "2.0")
    consultant = Principal(role=Role.CONSULTANT, name="dana", tenants=frozenset({tenant}))
    with pytest.raises(PermissionDeniedError) as refused:
        await services.registry.publish(consultant, registration("shared", tenant, "wayne"))
    assert "wayne" not in refused.value.message
    assert "1 tenant(s) outside your token's scope" in refused.value.message


CUSTOMIZATIONS = """{ customizations { ... on CustomizationList { items { name refused
  problems { file field message } } } } }"""


async def test_consultants_see_no_server_paths_in_problems(
    plugin_api, write_customization, plugin_dir
):
    write_customization(
        "broken_one", "@hookimpl\ndef tailor_no_such_hook(tenant):\n    return None\n"
    )
    api, runtime = await plugin_api()
    try:
        scoped = await api.gql(CUSTOMIZATIONS, token="consultant")
        admin = await api.gql(CUSTOMIZATIONS)
    finally:
        await runtime.close()
    (item,) = [i for i in scoped["data"]["customizations"]["items"] if i["name"] == "broken-one"]
    assert item["refused"] and item["problems"]
    assert str(plugin_dir) not in str(scoped), scoped
    assert {p["file"] for p in item["problems"]} <= {
        "broken_one/hooks.py",
        "broken_one/customization.toml",
    }
    # the operator (admin) sees where the server keeps the code
    assert str(plugin_dir) in str(admin)
