"""Probe (issue 13): one request may not run hundreds of expensive root fields
(a price per root field, summed over a batch and its aliases, refused before
anything runs), and each token has a rate limit (429 with Retry-After)."""

from __future__ import annotations

import pytest

from api.graphql.cost import MIN_COST, document_cost, request_cost
from api.graphql.document_cache import DocumentStore
from api.graphql.limits import GraphQLLimits
from api.http.app import AppOptions
from api.http.ratelimit import RateLimiter, retry_after
from core.model.definitions import SettingDefinition, SettingType
from core.model.errors import InvalidInputError
from core.model.manifest import ReleaseManifest
from core.store.services import Services
from tests.api.conftest import bearer
from tests.conftest import ADMIN

#: documents parsed as the default limits parse them (max_tokens 2,000)
DOCS = DocumentStore(GraphQLLimits())

READINESS = 'r{i}: readiness(target: "2.0") {{ __typename }}'
# one key named: the base price (a whole catalog, without keys, is priced as 1,000 items)
SETTINGS = 's{i}: settings(tenant: "acme", keys: ["billing.invoice.due_days"]) {{ __typename }}'
SET = (
    'mutation { setSetting(input: {tenant: "acme", key: "billing.invoice.due_days", '
    "value: 41}) { __typename } }"
)


def _query(template: str, n: int) -> str:
    return "{ " + " ".join(template.format(i=i) for i in range(n)) + " }"


def test_prices_count_aliases_and_fragments():
    assert document_cost(_query(READINESS, 4), None, DOCS) == 100
    assert document_cost(_query(SETTINGS, 30), None, DOCS) == 30
    whole = 's{i}: settings(tenant: "acme") {{ __typename }}'
    assert document_cost(_query(whole, 9), None, DOCS) == 9 + 9 * 10
    spread = 'query Q { ...F ...F } fragment F on Query { readiness(target: "2.0") { __typename } }'
    assert document_cost(spread, None, DOCS) == 50
    two = (
        'query A { settings(tenant: "acme", keys: []) { __typename } } '
        "query B { foldbackCandidates { __typename } }"
    )
    assert (document_cost(two, "A", DOCS), document_cost(two, "B", DOCS)) == (1, 25)


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
        # distinct documents: a repeat would be answered by the response cache,
        # for the minimum (see test_a_start_up_fetch_fits_and_a_cached_answer_costs_the_minimum)
        first = [
            await client.post("/graphql", json={"query": query["query"] + " " * i}, headers=app)
            for i in range(2)
        ]
        assert [r.status_code for r in first] == [200, 200]
        limited = await client.post("/graphql", json={"query": query["query"] + "  "}, headers=app)
        assert limited.status_code == 429, limited.text
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # 5 units at 1 unit a second, and the refusal's own unit (it is charged)
        assert 1 <= int(limited.headers["Retry-After"]) <= 6
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


# -- list sizes (issue 21): 20,000 keys are not one unit ------------------------------

KEYED = "query Q($keys: [String!]) { settings(tenant: $tenant, keys: $keys) { __typename } }"
BY_KEYS = (
    "query Q($tenant: String!, $keys: [String!]) {"
    " settings(tenant: $tenant, keys: $keys) {"
    " ... on Settings { items { key value } } ... on Error { code } } }"
)


def _keys(n: int) -> list[str]:
    return [f"no.such.key{i}" for i in range(n)]


def test_the_price_grows_with_list_arguments_and_whole_catalogs():
    # a base plus one unit per 100 items, items from variables and literals alike
    assert document_cost(KEYED, None, DOCS, {"keys": _keys(20_000)}) == 1 + 200
    assert document_cost(KEYED, None, DOCS, {"keys": _keys(1_000)}) == 1 + 10
    assert document_cost(KEYED, None, DOCS, {"keys": _keys(99)}) == 1
    # no keys (absent or null): the whole catalog, priced flat as 1,000 settings
    assert document_cost(KEYED, None, DOCS, {}) == 11
    assert document_cost(KEYED, None, DOCS, {"keys": None}) == 11
    names = ", ".join(f'"k{i}"' for i in range(300))
    literal = f'{{ settings(tenant: "acme", keys: [{names}]) {{ __typename }} }}'
    assert document_cost(literal, None, DOCS) == 1 + 3
    # a variable used by two aliases is counted twice, and so is a spread fragment
    twice = (
        'query Q($keys: [String!]) { a: settings(tenant: "acme", keys: $keys) { __typename }'
        ' ...F } fragment F on Query { b: settings(tenant: "acme", keys: $keys) { __typename } }'
    )
    assert document_cost(twice, None, DOCS, {"keys": _keys(5_000)}) == 2 + 100
    # lists in input objects and other root fields count too (readiness(tenants:))
    tenants = 'query Q($t: [String!]) { readiness(target: "2.0", tenants: $t) { __typename } }'
    assert document_cost(tenants, None, DOCS, {"t": _keys(1_000)}) == 25 + 10
    # a list in a variable's default value counts as well
    names = ", ".join(f'"k{i}"' for i in range(200))
    default = (
        f"query Q($keys: [String!] = [{names}])"
        ' { settings(tenant: "a", keys: $keys) { __typename } }'
    )
    assert document_cost(default, None, DOCS) == 1 + 2
    # ... and only when passed as null does it mean the whole catalog
    assert document_cost(default, None, DOCS, {"keys": None}) == 1 + 12
    # the items of a batch add up before they are divided
    one = {"query": KEYED, "variables": {"keys": _keys(50)}}
    assert request_cost([one, one], DOCS) == 2 + 1
    # every request costs at least the minimum
    assert request_cost([{"query": "{ __typename }"}], DOCS) == MIN_COST == 1


async def test_20000_key_requests_are_refused_charged_then_limited(api, client_with):
    # the audit's request, under the default limits: priced 201 (> max_cost 100),
    # refused before anything runs, and charged max_cost -- so a token that keeps
    # sending them spends its budget (burst 600) and gets 429 with Retry-After
    async with client_with(AppOptions()) as client:
        app = bearer(api.tokens["app"])
        body = {"query": BY_KEYS, "variables": {"tenant": "acme", "keys": _keys(20_000)}}
        statuses = []
        for _ in range(12):
            response = await client.post("/graphql", json=body, headers=app)
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
            assert response.status_code == 400, response.text
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
            assert "costs 201" in error["message"] and "limit is 100" in error["message"]
            assert response.headers["X-Request-Cost"] == "100"
        # six refusals at 100 spend the 600 units (plus what refilled meanwhile)
        assert statuses[-1] == 429 and 6 <= len(statuses) <= 8, statuses
        assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert 1 <= int(response.headers["Retry-After"]) <= 3
        # a cheap request of the same token waits too: its budget is spent
        cheap = {"query": BY_KEYS, "variables": {"tenant": "acme", "keys": ["a"]}}
        waiting = await client.post("/graphql", json=cheap, headers=app)
        assert waiting.status_code == 429 and "Retry-After" in waiting.headers
        # another token has its own budget
        other = await client.post("/graphql", json=cheap, headers=bearer(api.tokens["admin"]))
        assert other.status_code == 200, other.text


async def test_a_refused_request_is_charged(api, client_with):
    limits = GraphQLLimits(max_cost=10, rate_limit_per_minute=60, rate_limit_burst=10)
    async with client_with(AppOptions(limits=limits)) as client:
        app = bearer(api.tokens["app"])
        query = {"query": _query(SETTINGS, 10)}  # costs 10: the whole bucket
        assert (await client.post("/graphql", json=query, headers=app)).status_code == 200
        refused = [await client.post("/graphql", json=query, headers=app) for _ in range(3)]
        assert [r.status_code for r in refused] == [429, 429, 429]
        # each refusal is charged (the minimum, before anything runs): the bucket owes
        # one unit more each time, and the wait for the next 10 units grows with it
        waits = [int(r.headers["Retry-After"]) for r in refused]
        assert waits[0] >= 10 and waits[2] > waits[1] > waits[0], waits
        assert [r.headers["X-Request-Cost"] for r in refused] == ["1", "1", "1"]


async def _catalog_of(services: Services, n: int) -> str:
    """A release of ``n`` settings, tenant ``big`` on it, and an app token of it."""
    catalog = tuple(
        SettingDefinition(key=f"big.group{i % 20}.s{i:04d}", type=SettingType.INT, default=i)
        for i in range(n)
    )
    await services.releases.register(ReleaseManifest("9.0", settings=catalog), ADMIN)
    await services.tenants.create(ADMIN, "big", "Big", "9.0")
    secret, _ = await services.tokens.create("app", ["big"])
    return secret


async def test_a_start_up_fetch_fits_and_a_cached_answer_costs_the_minimum(services, client_with):
    token = bearer(await _catalog_of(services, 1_000))
    async with client_with(AppOptions()) as client:
        whole = {"query": BY_KEYS, "variables": {"tenant": "big"}}
        first = await client.post("/graphql", json=whole, headers=token)
        assert first.status_code == 200, first.text
        assert len(first.json()["data"]["settings"]["items"]) == 1_000
        # the whole catalog: 1 + 1,000 // 100, well within the default max of 100
        assert first.headers["X-Request-Cost"] == "11"
        # served from the response cache: a tenth of a unit
        again = await client.post("/graphql", json=whole, headers=token)
        assert again.content == first.content and again.headers["X-Request-Cost"] == "0.1"
        # the same over GET (the same cached answer), and with If-None-Match (304)
        params = {"query": BY_KEYS, "variables": '{"tenant": "big"}'}
        get = await client.get("/graphql", params=params, headers=token)
        assert get.status_code == 200 and get.headers["X-Request-Cost"] == "0.1"
        etag = get.headers["ETag"]
        unchanged = await client.get(
            "/graphql", params=params, headers={**token, "If-None-Match": etag}
        )
        assert unchanged.status_code == 304 and unchanged.headers["X-Request-Cost"] == "0.1"
        # the 1,000 keys named in a variable: the same price, 11
        keys = [f"big.group{i % 20}.s{i:04d}" for i in range(1_000)]
        named = {"query": BY_KEYS, "variables": {"tenant": "big", "keys": keys}}
        response = await client.post("/graphql", json=named, headers=token)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]["settings"]["items"]) == 1_000
        assert response.headers["X-Request-Cost"] == "11"


async def test_a_cache_miss_pays_the_rest_or_is_refused_before_running(services, client_with):
    # burst 13: one start-up fetch (11) fits, then a cached repeat (1); a new
    # (uncached) document pays its minimum, then finds too little for the rest: 429
    # before it runs, charged its whole price
    limits = GraphQLLimits(max_cost=11, rate_limit_per_minute=60, rate_limit_burst=13)
    token = bearer(await _catalog_of(services, 50))
    async with client_with(AppOptions(limits=limits)) as client:
        whole = {"query": BY_KEYS, "variables": {"tenant": "big"}}
        assert (await client.post("/graphql", json=whole, headers=token)).status_code == 200
        cached = await client.post("/graphql", json=whole, headers=token)
        assert cached.status_code == 200 and cached.headers["X-Request-Cost"] == "0.1"
        other = {"query": BY_KEYS + " ", "variables": {"tenant": "big"}}
        missed = await client.post("/graphql", json=other, headers=token)
        assert missed.status_code == 429, missed.text
        assert missed.headers["X-Request-Cost"] == "11"
        # the bucket owes 10: 21 s until the 11 units of a retry are there
        assert int(missed.headers["Retry-After"]) >= 20


def test_a_noisy_token_that_honours_retry_after_gets_at_most_its_rate():
    # the mechanism behind bench/noisy_neighbour.py, on a simulated clock: whatever
    # a token sends, the work it gets done is bounded by burst + rate x time, and
    # ignoring Retry-After only gets it less
    now = [0.0]
    rate = RateLimiter(6_000, 600, clock=lambda: now[0])

    def run(key: str, honour: bool, seconds: float) -> int:
        done, at = 0, now[0]
        end = at + seconds
        while at < end:
            now[0] = at
            wait = rate.charge(key, 100)
            if wait == 0:
                done += 100
            at += float(retry_after(wait)) if (wait and honour) else 0.01
        return done

    start = now[0]
    honoured = run("polite", True, 60)
    assert honoured <= 600 + 6_000 and honoured >= 6_000 * 0.45, honoured
    now[0] = start
    hammered = run("rude", False, 60)
    assert hammered < honoured, (hammered, honoured)
