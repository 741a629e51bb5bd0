"""Probe (issue 13): one request may not run hundreds of expensive root fields
(a price per root field, summed over a batch and its aliases, refused before
anything runs), and each token has a rate limit (429 with Retry-After)."""

from __future__ import annotations

import pytest

from api.graphql.cost import document_cost
from api.graphql.limits import GraphQLLimits
from api.http.app import AppOptions
from core.model.errors import InvalidInputError
from tests.api.conftest import bearer

READINESS = 'r{i}: readiness(target: "2.0") {{ __typename }}'
SETTINGS = 's{i}: settings(tenant: "acme") {{ __typename }}'
SET = (
    'mutation { setSetting(input: {tenant: "acme", key: "billing.invoice.due_days", '
    "value: 41}) { __typename } }"
)


def _query(template: str, n: int) -> str:
    return "{ " + " ".join(template.format(i=i) for i in range(n)) + " }"


def test_prices_count_aliases_and_fragments():
    assert document_cost(_query(READINESS, 4), None, 2000) == 100
    assert document_cost(_query(SETTINGS, 30), None, 2000) == 30
    spread = 'query Q { ...F ...F } fragment F on Query { readiness(target: "2.0") { __typename } }'
    assert document_cost(spread, None, 2000) == 50
    two = (
        'query A { settings(tenant: "acme") { __typename } } '
        "query B { foldbackCandidates { __typename } }"
    )
    assert (document_cost(two, "A", 2000), document_cost(two, "B", 2000)) == (1, 25)


async def test_a_fragment_bomb_at_the_root_is_priced_in_one_pass_and_refused(api):
    # each fragment spreads the next one twice: 2**40 readiness fields; priced
    # fragment by fragment once (unmemoized, this request would take days)
    fragments = "".join(
        f"fragment F{i} on Query {{ __typename ...F{i + 1} ...F{i + 1} }}\n" for i in range(40)
    )
    query = (
        "{ ...F0 }\n"
        + fragments
        + 'fragment F40 on Query { readiness(target: "2.0") { __typename } }'
    )
    response = await api.client.post(
        "/graphql", json={"query": query}, headers=bearer(api.tokens["admin"])
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert f"costs {25 * 2**40}" in error["message"]


async def test_a_batch_of_aliased_readiness_is_refused_before_anything_runs(api):
    # the audit's request: 10 operations x 30 aliases of readiness
    batch = [{"query": _query(READINESS, 30)} for _ in range(10)]
    response = await api.client.post("/graphql", json=batch, headers=bearer(api.tokens["app"]))
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert "costs 7500" in error["message"] and "limit is 100" in error["message"]

    # a write in the same batch as dear reads: refused whole, nothing written
    batch = [{"query": SET}] + [{"query": _query(READINESS, 1)} for _ in range(4)]
    refused = await api.client.post("/graphql", json=batch, headers=bearer(api.tokens["admin"]))
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    log = await api.gql('{ auditLog(tenant: "acme") { ... on AuditLog { entries { action } } } }')
    assert [e["action"] for e in log["data"]["auditLog"]["entries"]] == ["create_tenant"]


async def test_aliases_of_one_operation_count_and_cheap_fields_stay_cheap(api):
    over = await api.client.post(
        "/graphql", json={"query": _query(READINESS, 5)}, headers=bearer(api.tokens["admin"])
    )
    assert over.status_code == 400
    assert over.json()["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    within = await api.gql(_query(READINESS, 4))
    assert "errors" not in within and len(within["data"]) == 4
    cheap = await api.gql(_query(SETTINGS, 30), token="app")
    assert "errors" not in cheap and len(cheap["data"]) == 30


async def test_a_token_over_its_rate_gets_429_with_retry_after(api, client_with):
    limits = GraphQLLimits(max_cost=10, rate_limit_per_minute=60, rate_limit_burst=10)
    async with client_with(AppOptions(limits=limits)) as client:
        query = {"query": _query(SETTINGS, 5)}  # costs 5: two fit in the bucket
        app = bearer(api.tokens["app"])
        first = [await client.post("/graphql", json=query, headers=app) for _ in range(2)]
        assert [r.status_code for r in first] == [200, 200]
        limited = await client.post("/graphql", json=query, headers=app)
        assert limited.status_code == 429, limited.text
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # 5 units at 1 unit a second
        assert 1 <= int(limited.headers["Retry-After"]) <= 5
        # another token has a bucket of its own
        other = await client.post("/graphql", json=query, headers=bearer(api.tokens["admin"]))
        assert other.status_code == 200
        # without a token: 401, never charged to anyone
        anonymous = await client.post("/graphql", json=query)
        assert anonymous.status_code == 401


def test_cost_and_rate_are_configurable_and_checked():
    limits = GraphQLLimits.from_env({"TAILOR_MAX_COST": "50", "TAILOR_RATE_LIMIT_PER_MINUTE": "0"})
    assert (limits.max_cost, limits.rate_limit_per_minute) == (50, 0)
    with pytest.raises(InvalidInputError, match="at least max_cost"):
        GraphQLLimits(max_cost=100, rate_limit_burst=10)
