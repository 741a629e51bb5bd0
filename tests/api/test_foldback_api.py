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


FAMILIES = """query { foldbackCandidates(limit: 100) { __typename
  ... on Foldback { candidates { id kind customizations tenants
      family { id hook keys behaviour capability proposal
        members { customization tenants aligned similarity constants source }
        differing { slot role values } } } } } }"""

MERGE = """mutation($m: String!, $into: String) { importRelease(manifest: $m, into: $into) {
  __typename ... on Release { version status settingCount supersedes }
  ... on ReleaseImported { release { version supersedes } }
  ... on Error { code message } ... on InvalidInput { field } } }"""

READINESS = """query($target: String!) { readiness(target: $target) { __typename
  ... on Readiness { tenants { tenant findings { code subject action evidence } } }
  ... on Error { code message } } }"""


async def test_a_family_is_proposed_merged_into_a_planned_release_and_migrates(api, services):
    """Every family carries its id, its members side by side with their constants
    and its proposal; importRelease(into:) merges the proposal into a new planned
    release, and readiness against it gives each tenant its migration."""
    import tomllib

    await seed_demo(services, ACME, tailor_extension_points)
    await register_planned_releases(services, ACME)
    await publish_demo_customizations(services, ACME)
    data = await api.gql(FAMILIES, token="release_manager")
    candidates = data["data"]["foldbackCandidates"]["candidates"]
    families = [c for c in candidates if c["kind"] == "NEAR_DUPLICATE_CODE"]
    assert families, "the demo has copies across tenants"
    for c in families:
        family = c["family"]
        assert c["id"] == family["id"] and family["id"].startswith("fam-")
        assert sorted(m["customization"] for m in family["members"]) == c["customizations"]
        assert all(m["source"] for m in family["members"])
    family = families[0]["family"]
    fragment = tomllib.loads(family["proposal"])
    assert fragment["supersedes"] == [family["capability"]]

    # a consultant may not merge it; bad input changes nothing
    denied = await api.gql(MERGE, {"m": family["proposal"], "into": "3.5"}, token="consultant")
    assert denied["data"]["importRelease"]["__typename"] == "PermissionDenied"
    broken = await api.gql(MERGE, {"m": 'version = "3.5"', "into": "3.5"}, token="release_manager")
    assert broken["data"]["importRelease"]["__typename"] == "InvalidInput"
    assert "unknown field(s): version" in broken["data"]["importRelease"]["message"]

    merged = await api.gql(MERGE, {"m": family["proposal"], "into": "3.5"}, token="release_manager")
    result = merged["data"]["importRelease"]
    release = result.get("release", result)
    assert release["version"] == "3.5" and family["capability"] in release["supersedes"]

    report = await api.gql(READINESS, {"target": "3.5"}, token="release_manager")
    tenants = {t["tenant"]: t for t in report["data"]["readiness"]["tenants"]}
    for migration in fragment["migrations"]:
        (finding,) = [
            f
            for f in tenants[migration["tenant"]]["findings"]
            if f["code"] == "SUPERSEDED_BY_CORE" and f["subject"] == migration["customization"]
        ]
        assert finding["action"].startswith(
            f"disable {migration['customization']} for {migration['tenant']}"
        )
        assert finding["evidence"]["migration"] == migration
