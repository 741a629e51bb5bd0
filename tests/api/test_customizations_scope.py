"""A customization shared by an in-scope and an out-of-scope tenant: a scoped
token sees neither the other tenant's slug nor an error that may come from it."""

from core.model.clock import utcnow
from core.model.customizations import CustomizationManifest, HealthDelta, HookUse, Registration
from tests.conftest import ADMIN

QUERY = """{ customizations { __typename ... on CustomizationList { items {
  name tenants enabledFor health { calls failures lastError } } } ... on Error { code } } }"""


async def test_scoped_tokens_see_only_their_tenants_of_a_shared_customization(api, services):
    shared = Registration(
        manifest=CustomizationManifest(
            name="shared-guard", version="1.0", tenants=("acme", "other"), requires=">=1.0"
        ),
        hooks=(HookUse("tailor_validate_setting", ("key", "value"), "fp"),),
        setting_keys=(),
        package="shared_guard",
    )
    await services.registry.publish(ADMIN, shared)
    for slug in ("acme", "other"):
        await services.registry.set_enabled(ADMIN, slug, "shared-guard", True)
    await services.registry.record_health(
        [HealthDelta("shared-guard", 3, 1, "KeyError: 'other-secret-customer-id'", utcnow())]
    )

    admin = await api.gql(QUERY)
    (item,) = [i for i in admin["data"]["customizations"]["items"] if i["name"] == "shared-guard"]
    assert item["tenants"] == ["acme", "other"] and item["enabledFor"] == ["acme", "other"]
    assert "other-secret-customer-id" in item["health"]["lastError"]

    scoped = await api.gql(QUERY, token="consultant")
    (item,) = [i for i in scoped["data"]["customizations"]["items"] if i["name"] == "shared-guard"]
    assert item["tenants"] == ["acme"] and item["enabledFor"] == ["acme"]
    assert item["health"]["lastError"] is None
    assert item["health"]["failures"] == 1
    assert "other" not in str(scoped)
