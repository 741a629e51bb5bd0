"""GraphQL limits: each configurable, each refusing with a clear error before
anything runs; introspection and field suggestions only where enabled."""

import pytest
from graphql import parse

from api.graphql.limits import GraphQLLimits, measure
from api.http.app import AppOptions
from core.model.errors import InvalidInputError
from tests.api.conftest import bearer

GQL_JSON = "application/graphql-response+json"


def test_measure_counts_fragments_where_they_are_spread():
    doc = parse(
        """
        query Q @a { x: tenants { ...F slug } y: tenants { ...F } }
        fragment F on Tenant @b { n: name e: environments ... on Tenant @c { z: slug } }
        """
    )
    cost = measure(doc)
    assert cost.aliases == 2 + 2 * 3
    assert cost.directives == 1 + 2 * 2
    assert cost.depth == 2


def test_measure_is_linear_for_fragment_bombs():
    # each fragment spreads the next one twice: 2**40 expanded fields
    fragments = "".join(
        f"fragment F{i} on Tenant {{ a: slug ...F{i + 1} ...F{i + 1} }}\n" for i in range(40)
    )
    doc = parse("{ tenants { ...F0 } }\n" + fragments + "fragment F40 on Tenant { slug }")
    assert measure(doc).aliases == 2**40 - 1


def test_measure_survives_fragment_cycles():
    doc = parse(
        "{ tenants { ...A } } fragment A on Tenant { a: slug ...B } "
        "fragment B on Tenant { b: slug ...A }"
    )
    assert measure(doc).aliases == 2


def test_introspection_depth_does_not_count_but_its_aliases_do():
    doc = parse(
        "{ __schema { types { fields { type { ofType { ofType { name } } } } } } a: __typename }"
    )
    assert measure(doc).depth == 1 and measure(doc).aliases == 1


def test_limits_from_env():
    limits = GraphQLLimits.from_env({"TAILOR_MAX_DEPTH": "4", "TAILOR_MAX_BATCH_SIZE": "0"})
    assert (limits.max_depth, limits.max_batch_size, limits.max_aliases) == (4, 0, 30)
    with pytest.raises(InvalidInputError, match="TAILOR_MAX_TOKENS"):
        GraphQLLimits.from_env({"TAILOR_MAX_TOKENS": "lots"})
    with pytest.raises(InvalidInputError, match="max_depth"):
        GraphQLLimits.from_env({"TAILOR_MAX_DEPTH": "0"})


async def _run(client, token, query, accept="application/json"):
    response = await client.post(
        "/graphql", json={"query": query}, headers=bearer(token, Accept=accept)
    )
    return response


@pytest.mark.parametrize(
    ("limits", "query", "message"),
    [
        (
            GraphQLLimits(max_depth=3),
            '{ settings(tenant: "acme") { ... on Settings { items { definition { key } } } } }',
            "nested 4 levels deep; the limit is 3",
        ),
        (
            GraphQLLimits(max_aliases=50),
            "{ " + " ".join(f"a{i}: tenants {{ slug }}" for i in range(2_000)) + " }",
            None,  # the token limit stops it in the parser
        ),
        (
            GraphQLLimits(max_aliases=5),
            "{ ...F ...F } fragment F on Query { a: tenants { slug } b: tenants { slug } "
            "c: __typename }",
            "6 aliases",
        ),
        (
            GraphQLLimits(max_directives=3),
            "{ tenants @include(if: true) { slug @skip(if: false) name @skip(if: false) "
            "release @skip(if: false) } }",
            "4 directives",
        ),
        (
            GraphQLLimits(max_tokens=50),
            "{ tenants { " + "slug " * 100 + "} }",
            "tokens",
        ),
    ],
)
async def test_documents_over_a_limit_are_refused_before_running(
    api, client_with, limits, query, message
):
    async with client_with(AppOptions(limits=limits)) as client:
        legacy = await _run(client, api.tokens["admin"], query)
        assert legacy.status_code == 200
        assert legacy.json()["data"] is None
        modern = await _run(client, api.tokens["admin"], query, GQL_JSON)
        assert modern.status_code == 400 and "data" not in modern.json()
        error = modern.json()["errors"][0]
        if message:
            assert message in error["message"]


async def test_thousands_of_aliases_within_the_token_limit_are_refused(api, client_with):
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(1_000)) + " }"
    limits = GraphQLLimits(max_tokens=10_000)
    async with client_with(AppOptions(limits=limits)) as client:
        response = await _run(client, api.tokens["admin"], query, GQL_JSON)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "1000 aliases" in error["message"] and error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_a_fragment_bomb_is_refused_quickly(api, client_with):
    fragments = "".join(
        f"fragment F{i} on Tenant {{ slug ...F{i + 1} ...F{i + 1} }}\n" for i in range(30)
    )
    query = "{ tenants { ...F0 } }\n" + fragments + "fragment F30 on Tenant { a: slug }"
    async with client_with(AppOptions()) as client:
        response = await _run(client, api.tokens["admin"], query, GQL_JSON)
    assert response.status_code == 400
    assert "aliases" in response.json()["errors"][0]["message"]


async def test_default_limits_let_real_queries_through(api, client_with):
    query = """{ settings(tenant: "acme", environment: "production") {
        ... on Settings { items { key value source definition { key type } } } } }"""
    async with client_with(AppOptions()) as client:
        response = await _run(client, api.tokens["admin"], query, GQL_JSON)
    assert response.status_code == 200 and response.json()["data"]["settings"]["items"]


INTROSPECT = "{ __schema { queryType { name } } }"


async def test_introspection_only_where_enabled(api, client_with):
    for options, allowed in (
        (AppOptions(demo=True), True),
        (AppOptions(), False),
        (AppOptions(introspection=True), True),
        (AppOptions(demo=True, introspection=False), False),
    ):
        async with client_with(options) as client:
            body = (await _run(client, api.tokens["admin"], INTROSPECT)).json()
        if allowed:
            assert body["data"]["__schema"]["queryType"]["name"] == "Query"
        else:
            assert body["data"] is None and "introspection" in body["errors"][0]["message"]


async def test_field_suggestions_only_in_demo(api, client_with):
    typo = "{ tenats { slug } }"
    async with client_with(AppOptions(demo=True)) as client:
        demo = (await _run(client, api.tokens["admin"], typo)).json()
    assert "Did you mean" in demo["errors"][0]["message"]
    async with client_with(AppOptions()) as client:
        prod = (await _run(client, api.tokens["admin"], typo)).json()
    assert "Cannot query field 'tenats'" in prod["errors"][0]["message"]
    assert "Did you mean" not in prod["errors"][0]["message"]


def test_extensions_are_factories_never_shared_instances():
    options = AppOptions()
    for factory in options.extensions():
        assert callable(factory)
        first, second = factory(), factory()
        assert first is not second


async def test_nul_characters_are_refused_before_reaching_the_database(api):
    queries = [
        ("query($t: String!) { settings(tenant: $t) { __typename } }", {"t": "a\x00"}),
        ('{ tenant(slug: "a\\u0000") { __typename } }', {}),
        ("query($k: String!) { auditLog(key: $k) { __typename } }", {"k": "\x00"}),
        (
            'mutation($v: JSON!) { setSetting(input: {tenant: "acme", '
            'key: "tax.exemption.codes", value: $v}) { __typename } }',
            {"v": {"nested": ["ok", "a\x00"]}},
        ),
    ]
    for query, variables in queries:
        response = await api.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers=bearer(api.tokens["admin"], Accept=GQL_JSON),
        )
        assert response.status_code == 400, response.text
        assert "NUL" in response.json()["errors"][0]["message"]
