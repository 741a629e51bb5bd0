"""GraphQL triageFinding and the triage seen through readiness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest_asyncio

from core.store.demo import register_planned_releases
from tests.conftest import ADMIN
from tests.sample import ACME

FINDING = "OVERRIDE_INVALID:tax.rounding.per_line:@other"

TRIAGE = """mutation($input: TriageFindingInput!) { triageFinding(input: $input) {
  __typename ... on FindingTriage { finding decision reason owner until decidedBy auditId }
  ... on Error { code message } } }"""

READINESS = """query { readiness(target: "3.0", tenants: ["other"]) { __typename
  ... on Readiness { anyBlocked newFindings resolvedFindings previousRunAt
    tenants { tenant status gateStatus findings { id code waived new
      triage { decision reason until } } } } } }"""


@pytest_asyncio.fixture
async def blocked(api, services):
    await register_planned_releases(services, ACME)
    await services.settings.set(ADMIN, "other", "tax.rounding.per_line", False)
    return api


async def test_waive_through_graphql_then_readiness_shows_it(blocked):
    before = (await blocked.gql(READINESS, token="release_manager"))["data"]["readiness"]
    assert before["anyBlocked"] is True and before["previousRunAt"] is None
    [finding] = before["tenants"][0]["findings"]
    assert finding["id"] == FINDING and finding["triage"] is None

    until = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
    done = await blocked.gql(
        TRIAGE,
        {"input": {"finding": FINDING, "decision": "WAIVE", "reason": "3.1", "until": until}},
        token="release_manager",
    )
    result = done["data"]["triageFinding"]
    assert result["__typename"] == "FindingTriage", done
    assert (result["decision"], result["until"], result["decidedBy"]) == (
        "waived",
        until,
        "release_manager test",
    )
    assert result["auditId"] > 0

    after = (await blocked.gql(READINESS, token="release_manager"))["data"]["readiness"]
    assert after["anyBlocked"] is False
    tenant = after["tenants"][0]
    assert (tenant["status"], tenant["gateStatus"]) == ("blocked", "ready_with_warnings")
    assert tenant["findings"][0]["waived"] is True
    assert tenant["findings"][0]["triage"] == {
        "decision": "waived",
        "reason": "3.1",
        "until": until,
    }


async def test_refusals_are_typed_and_change_nothing(blocked, services):
    waive = {"finding": FINDING, "decision": "WAIVE", "until": "2099-01-01"}
    no_reason = (await blocked.gql(TRIAGE, {"input": waive}, token="release_manager"))["data"]
    assert no_reason["triageFinding"]["code"] == "INVALID_INPUT"
    assert "needs a reason" in no_reason["triageFinding"]["message"]
    bad_id = {"finding": "nonsense", "decision": "ACKNOWLEDGE"}
    refused = (await blocked.gql(TRIAGE, {"input": bad_id}))["data"]["triageFinding"]
    assert (
        refused["code"] == "INVALID_INPUT"
        and "CODE:subject:key-or-hook@tenant" in refused["message"]
    )
    consultant = {"finding": "OVERRIDE_INVALID:x@acme", "decision": "ACKNOWLEDGE"}
    denied = (await blocked.gql(TRIAGE, {"input": consultant}, token="consultant"))["data"]
    assert denied["triageFinding"]["code"] == "PERMISSION_DENIED"
    unknown = {"finding": "OVERRIDE_INVALID:x@ghost", "decision": "ACKNOWLEDGE"}
    missing = (await blocked.gql(TRIAGE, {"input": unknown}))["data"]["triageFinding"]
    assert missing["code"] == "NOT_FOUND"
    assert await services.triage.decisions() == {}
