"""Rate limits that fit front-ends, through the real ASGI app: an answer served
from the response cache costs a tenth of a unit, and budgets are set per role and
per tenant (``TAILOR_RATE_LIMITS``); 429 comes only to a token that overspends."""

from __future__ import annotations

import pytest

from api.graphql.limits import GraphQLLimits, RateRule, parse_rate_limits
from api.http.app import AppOptions
from core.model.definitions import SettingDefinition, SettingType
from core.model.errors import InvalidInputError
from core.model.manifest import ReleaseManifest
from core.store.services import Services
from tests.api.conftest import bearer
from tests.conftest import ADMIN

WHOLE = (
    "query Q($tenant: String!) { settings(tenant: $tenant) { ... on Settings { items { key } } } }"
)


async def _tenants(services: Services) -> None:
    catalog = tuple(
        SettingDefinition(key=f"big.group.s{i:03d}", type=SettingType.INT, default=i)
        for i in range(50)
    )
    await services.releases.register(ReleaseManifest("9.0", settings=catalog), ADMIN)
    await services.tenants.create(ADMIN, "big", "Big", "9.0")
    await services.tenants.create(ADMIN, "small", "Small", "9.0")


def whole(tenant: str, variant: int = 0) -> dict:
    # a variant of the text is another document: the response cache misses it
    return {"query": WHOLE + " " * variant, "variables": {"tenant": tenant}}


async def test_cached_answers_cost_a_tenth_so_shared_app_tokens_fit(services, client_with):
    await _tenants(services)
    secret, _ = await services.tokens.create("app", ["big"])
    token = bearer(secret)
    # a small budget: 30 units at once, 1 a second
    limits = GraphQLLimits(max_cost=11, rate_limit_per_minute=60, rate_limit_burst=30)
    async with client_with(AppOptions(limits=limits)) as client:
        first = await client.post("/graphql", json=whole("big"), headers=token)
        assert first.status_code == 200 and first.headers["X-Request-Cost"] == "11"
        # 100 browsers ask for the same answer: 10 units of the 19 left, not 100
        cached = [
            await client.post("/graphql", json=whole("big"), headers=token) for _ in range(100)
        ]
        assert {r.status_code for r in cached} == {200}
        assert {r.headers["X-Request-Cost"] for r in cached} == {"0.1"}
        # computed answers still cost their price: the budget runs out, 429
        statuses = []
        for variant in range(1, 6):
            response = await client.post("/graphql", json=whole("big", variant), headers=token)
            statuses.append(response.status_code)
        assert statuses[-1] == 429, statuses
        assert "60 cost units a minute" in response.text and "Retry-After" in response.headers


def test_rules_parse_and_bad_ones_are_refused_clearly():
    rules = parse_rate_limits("app=60000, consultant=6000/700,tenant:acme=120000", 100)
    assert rules == (
        RateRule("app", 60_000, 6_000),
        RateRule("consultant", 6_000, 700),
        RateRule("tenant:acme", 120_000, 12_000),
    )
    # the burst is at least max_cost
    assert parse_rate_limits("host=60", 100) == (RateRule("host", 60, 100),)
    limits = GraphQLLimits.from_env({"TAILOR_RATE_LIMITS": "app=0", "TAILOR_MAX_COST": "50"})
    assert limits.rate_limits == (RateRule("app", 0, 50),)
    for text, says in (
        ("app", "SELECTOR=PER_MINUTE"),
        ("robot=5", "neither a role"),
        ("tenant:Not A Slug=5", "names no tenant slug"),
        ("app=lots", "not PER_MINUTE[/BURST]"),
        ("app=600/10", "at least max_cost (100)"),
        ("app=-1", "must be >= 0"),
        ("app=1,app=2", "given twice"),
    ):
        with pytest.raises(InvalidInputError, match="TAILOR_RATE_LIMITS") as refused:
            GraphQLLimits.from_env({"TAILOR_RATE_LIMITS": text})
        assert says in refused.value.message, (text, refused.value.message)


async def test_budgets_per_role_and_per_tenant(services, client_with):
    await _tenants(services)
    limits = GraphQLLimits.from_env(
        {
            "TAILOR_MAX_COST": "11",
            "TAILOR_RATE_LIMIT_PER_MINUTE": "60",
            "TAILOR_RATE_LIMIT_BURST": "11",
            "TAILOR_RATE_LIMITS": "app=600/40,tenant:big=6000/200,admin=0",
        }
    )
    small_app, _ = await services.tokens.create("app", ["small"])
    big_app, _ = await services.tokens.create("app", ["big"])
    consultant, _ = await services.tokens.create("consultant", ["small"])
    admin, _ = await services.tokens.create("admin")

    async def computed(client, secret: str, tenant: str, n: int) -> list[int]:
        out = []
        for i in range(n):
            response = await client.post("/graphql", json=whole(tenant, i), headers=bearer(secret))
            out.append(response.status_code)
            if response.status_code == 429:
                assert "Retry-After" in response.headers
                break
        return out

    async with client_with(AppOptions(limits=limits)) as client:
        # the default (consultant): 11 at once, one request of 11
        assert await computed(client, consultant, "small", 5) == [200, 429]
        # the app role's 40: three requests of 11, then 429
        assert (await computed(client, small_app, "small", 6))[-1] == 429
        assert len(await computed(client, big_app, "big", 12)) == 12  # tenant:big's 200
        assert set(await computed(client, admin, "big", 25)) == {200}  # admin=0: no limit
