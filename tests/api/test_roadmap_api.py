"""The roadmap over HTTP: make an item from a fold-back candidate's id, pledge for
its tenants, see it scoped per role, ship it by importing a release."""

import dataclasses
import json

import pytest_asyncio

from api.cli.customization import publish_demo_customizations
from core.model.manifest import PLANNED
from core.model.manifest_io import dumps
from core.store.bootstrap import register_planned_releases
from core.store.demo import seed_demo
from plugins.catalog import tailor_extension_points
from tests.sample import ACME, V30_PLANNED

CANDIDATES = """{ foldbackCandidates(limit: 50) { ... on Foldback { candidates { id kind
  tenants customizations } } } }"""
ITEM = """id title status sourceId capability targetRelease shippedIn tenants hiddenTenants
  customizations { name tenants } evidence score { breadth upgradeCost total }
  pledges { tenant amount currency note pledgedBy } totals { currency amount pledges }
  migration { release capability command }"""
CREATE = (
    """mutation($in: CreateRoadmapItemInput!) { createRoadmapItem(input: $in) { __typename
  ... on RoadmapItem { """
    + ITEM
    + """ } ... on InvalidInput { field } ... on Error { code message } } }"""
)
PLEDGE = (
    """mutation($in: PledgeRoadmapItemInput!) { pledgeRoadmapItem(input: $in) { __typename
  ... on RoadmapItem { """
    + ITEM
    + """ } ... on InvalidInput { field } ... on Error { code message } } }"""
)
LIST = (
    """{ roadmapItems { __typename ... on RoadmapItems { explanation items { """
    + ITEM
    + """ } } ... on Error { code message } } }"""
)


@pytest_asyncio.fixture
async def demo(api, services):
    await seed_demo(services, ACME, tailor_extension_points)
    await register_planned_releases(services, ACME)
    await publish_demo_customizations(services, ACME)
    return api


async def near_duplicate(api):
    data = await api.gql(CANDIDATES, token="release_manager")
    return next(
        c
        for c in data["data"]["foldbackCandidates"]["candidates"]
        if c["kind"] == "NEAR_DUPLICATE_CODE"
    )


async def test_create_pledge_list_and_ship(demo, services):
    c = await near_duplicate(demo)
    made = await demo.gql(
        CREATE,
        {
            "in": {
                "source": c["id"],
                "capability": "payment-terms-guard",
                "targetRelease": "3.1",
                "tenants": ["globex"],
            }
        },
        token="release_manager",
    )
    item = made["data"]["createRoadmapItem"]
    assert item["__typename"] == "RoadmapItem", made
    assert item["sourceId"] == c["id"] and item["status"] == "PROPOSED"
    assert item["tenants"] == sorted({*c["tenants"], "globex"})
    assert [x["name"] for x in item["customizations"]] == c["customizations"]
    assert item["score"]["breadth"] == len(item["tenants"])
    pledged = await demo.gql(
        PLEDGE,
        {"in": {"item": item["id"], "tenant": "northwind", "amount": "1500.5", "currency": "eur"}},
        token="release_manager",
    )
    assert pledged["data"]["pledgeRoadmapItem"]["totals"] == [
        {"currency": "EUR", "amount": "1500.50", "pledges": 1}
    ]
    await demo.gql(
        PLEDGE,
        {
            "in": {
                "item": item["id"],
                "tenant": "umbrella",
                "amount": "70000",
                "currency": "JPY",
                "note": "umbrella-only note",
            }
        },
    )
    listed = (await demo.gql(LIST, token="release_manager"))["data"]["roadmapItems"]
    assert "never" in listed["explanation"]
    [seen] = listed["items"]
    assert [(p["tenant"], p["amount"], p["currency"]) for p in seen["pledges"]] == [
        ("northwind", "1500.50", "EUR"),
        ("umbrella", "70000", "JPY"),
    ]
    # importing a release that supersedes the capability ships the item
    release = dataclasses.replace(
        V30_PLANNED,
        version="3.1",
        status=PLANNED,
        supersedes=(*V30_PLANNED.supersedes, "payment-terms-guard"),
    )
    imported = await demo.gql(
        """mutation($m: String!) { importRelease(manifest: $m) { __typename } }""",
        {"m": dumps(release)},
        token="release_manager",
    )
    assert imported["data"]["importRelease"]["__typename"] in ("Release", "ReleaseImported")
    [shipped] = (await demo.gql(LIST))["data"]["roadmapItems"]["items"]
    assert (shipped["status"], shipped["shippedIn"]) == ("SHIPPED", "3.1")
    assert shipped["migration"] == {
        "release": "3.1",
        "capability": "payment-terms-guard",
        "command": "tailor readiness --target 3.1",
    }


async def test_bad_input_is_a_typed_error_that_changes_nothing(demo):
    c = await near_duplicate(demo)
    missing = await demo.gql(CREATE, {"in": {"source": "shared-capability-0"}})
    assert missing["data"]["createRoadmapItem"]["__typename"] == "NotFound"
    assert "tailor foldback" in missing["data"]["createRoadmapItem"]["message"]
    item = (await demo.gql(CREATE, {"in": {"source": c["id"]}}))["data"]["createRoadmapItem"]
    for args, field in (
        ({"amount": "12", "currency": "EURO"}, "currency"),
        ({"amount": "12.345", "currency": "EUR"}, "amount"),
        ({"amount": "twelve", "currency": "EUR"}, "amount"),
    ):
        bad = await demo.gql(PLEDGE, {"in": {"item": item["id"], "tenant": "northwind", **args}})
        result = bad["data"]["pledgeRoadmapItem"]
        assert (result["__typename"], result["field"]) == ("InvalidInput", field), result
    uncovered = await demo.gql(
        PLEDGE, {"in": {"item": item["id"], "tenant": "hooli", "amount": "1", "currency": "EUR"}}
    )
    assert "updateRoadmapItem" in uncovered["data"]["pledgeRoadmapItem"]["message"]
    [still] = (await demo.gql(LIST))["data"]["roadmapItems"]["items"]
    assert still["pledges"] == [] and still["totals"] == []


async def test_a_consultant_sees_only_their_tenants_pledges(demo, services):
    c = await near_duplicate(demo)
    item = (await demo.gql(CREATE, {"in": {"source": c["id"]}}))["data"]["createRoadmapItem"]
    for tenant, amount in (("northwind", "10"), ("umbrella", "777777")):
        done = await demo.gql(
            PLEDGE,
            {
                "in": {
                    "item": item["id"],
                    "tenant": tenant,
                    "amount": amount,
                    "currency": "USD",
                    "note": f"note-{tenant}",
                }
            },
        )
        assert done["data"]["pledgeRoadmapItem"]["__typename"] == "RoadmapItem"
    token = await demo.token(services, "consultant", "northwind")
    body = await demo.gql(LIST, token=token)
    [seen] = body["data"]["roadmapItems"]["items"]
    assert seen["tenants"] == ["northwind"] and seen["hiddenTenants"] == 1
    assert [(p["tenant"], p["amount"]) for p in seen["pledges"]] == [("northwind", "10.00")]
    assert seen["totals"] == [{"currency": "USD", "amount": "10.00", "pledges": 1}]
    text = json.dumps(body)
    assert "umbrella" not in text and "777777" not in text, text
    # a consultant of none of its tenants sees no item; the acme consultant neither
    assert (await demo.gql(LIST, token="consultant"))["data"]["roadmapItems"]["items"] == []
    refused = await demo.gql(
        PLEDGE,
        {"in": {"item": item["id"], "tenant": "northwind", "amount": "1", "currency": "USD"}},
        token=token,
    )
    assert refused["data"]["pledgeRoadmapItem"]["__typename"] == "PermissionDenied"
