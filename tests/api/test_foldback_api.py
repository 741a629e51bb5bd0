"""``foldbackCandidates`` over HTTP."""

from api.cli.customization import publish_demo_customizations
from core.store.bootstrap import register_planned_releases
from core.store.demo import seed_demo
from plugins.catalog import tailor_extension_points
from tests.sample import ACME

QUERY = """query($limit: Int!) { foldbackCandidates(limit: $limit) { __typename
  ... on Foldback { explanation candidates { kind title tenants customizations hooks blockers
      absorbedIn settingKey value score { breadth upgradeCost total } } retire { kind subject } }
  ... on Error { code message } } }"""


async def test_candidates_over_http(api, services):
    await seed_demo(services, ACME, tailor_extension_points)
    await register_planned_releases(services, ACME)
    await publish_demo_customizations(services, ACME)
    data = await api.gql(QUERY, {"limit": 5}, token="release_manager")
    result = data["data"]["foldbackCandidates"]
    assert result["__typename"] == "Foldback"
    assert len(result["candidates"]) == 5
    top = result["candidates"][0]
    assert top["score"]["total"] == 2 * top["score"]["breadth"] + top["score"]["upgradeCost"]
    assert top["tenants"] and top["title"]

    bad = await api.gql(QUERY, {"limit": 0})
    assert bad["data"]["foldbackCandidates"]["__typename"] == "InvalidInput"
    denied = await api.gql(QUERY, {"limit": 5}, token="consultant")
    assert denied["data"]["foldbackCandidates"]["__typename"] == "PermissionDenied"
