"""The projection (api.graphql.projection) answers exactly as strawberry's normal execution.

Two apps on the same database, identical but for ``AppOptions.projection``, get
the same requests (same token, same request id, answers not cached); their
bodies must be equal byte for byte, for documents with aliases, fragments,
directives, variables, errors, partial selections, unknown tenants and
permission errors. Then a schema whose values break the rules (a null in a
non-null position, a non-list, a bad enum value, a coroutine) shows that the
projection gives up and graphql-core answers with its own errors.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from api.graphql.projection import ProjectingExecutionContext
from api.http.app import AppOptions, create_app
from core.model.auth import Role
from tests.conftest import ADMIN
from tests.sample import ACME

ITEM = "key value source revision definition { type default }"
SETTINGS = f"""query($t: String!, $e: String) {{ settings(tenant: $t, environment: $e) {{
  __typename ... on Settings {{ items {{ {ITEM} }} }} }} }}"""

# (document, variables): each is sent by both apps, with every token
DOCUMENTS: list[tuple[str, dict]] = [
    (SETTINGS, {"t": "acme", "e": None}),
    (SETTINGS, {"t": "acme", "e": "production"}),
    (SETTINGS, {"t": "other", "e": "sandbox"}),
    # every field, nested objects, overrides
    (
        """{ settings(tenant: "acme", environment: "production") { ... on Settings {
        tenant environment release customizationErrors { customization hook message }
        items { key value source revision
          definition { key type default description category min max choices pattern
            added deprecated removed replacement secret }
          tenantOverride { environment value revision }
          environmentOverride { environment value revision } } } } }""",
        {},
    ),
    # aliases, the same field twice, merged selections
    (
        """{ a: settings(tenant: "acme") { ... on Settings { first: items { k: key v: value }
        items { key } items { value source } again: items { key d: definition { t: type } } } }
        b: settings(tenant: "acme", environment: "sandbox") { __typename } }""",
        {},
    ),
    # named fragments, nested spreads, inline fragments with and without a type
    (
        """query Q($t: String!) { settings(tenant: $t) { ...S } }
        fragment S on SettingsResult { ... on Settings { items { ...I ... { source } } }
          ... on Error { code message } }
        fragment I on ResolvedSetting { key ...D __typename }
        fragment D on ResolvedSetting { definition { ... on SettingDefinition { type } } }""",
        {"t": "acme"},
    ),
    # @skip and @include, literal and from variables
    (
        """query($s: Boolean!, $i: Boolean!) { settings(tenant: "acme") { ... on Settings {
        items { key value @skip(if: $s) source @include(if: $i)
          definition @include(if: $s) { type } revision @skip(if: true) } } } }""",
        {"s": True, "i": False},
    ),
    (
        """query($s: Boolean!, $i: Boolean!) { settings(tenant: "acme") { ... on Settings {
        items { key value @skip(if: $s) source @include(if: $i)
          definition @include(if: $s) { type } revision @skip(if: true) } } } }""",
        {"s": False, "i": True},
    ),
    (
        """query($s: Boolean!) { settings(tenant: "acme") { ... on Settings {
        items { ... @include(if: $s) { key } ...F @skip(if: $s) } } } }
        fragment F on ResolvedSetting { value }""",
        {"s": True},
    ),
    # keys and prefix arguments, partial selections
    (
        """query($k: [String!]) { settings(tenant: "acme", keys: $k) { ... on Settings {
        items { key } } } }""",
        {"k": ["billing.invoice.due_days", "billing.currency.rounding_rules"]},
    ),
    ("""{ settings(tenant: "acme", prefix: "hr.") { ... on Settings { items { value } } } }""", {}),
    # errors as typed results: unknown tenant, unknown environment, interface fragments
    (
        """{ settings(tenant: "nope") { __typename ... on NotFound { code message kind
        identifier } ... on Error { code } ... on Settings { items { key } } } }""",
        {},
    ),
    (
        """{ settings(tenant: "acme", environment: "mars") { __typename
        ... on Error { code message } } }""",
        {},
    ),
    # errors: validation, variables, unknown operation
    ("""{ settings(tenant: "acme") { ... on Settings { items { nope } } } }""", {}),
    (SETTINGS, {}),
    (SETTINGS, {"t": 5}),
    # other root fields beside settings (their parts are projected too)
    (
        """{ tenants { slug name release environments } releases { version status setting_count:
        settingCount } settings(tenant: "acme") { ... on Settings { items { key } } } }""",
        {},
    ),
    ("""{ __typename settings(tenant: "acme") { __typename } }""", {}),
]


@pytest.fixture
async def twins(services, tenant):
    """(projecting client, plain client, tokens)"""
    await services.tenants.create(ADMIN, "other", "Other Inc", "2.0")
    await services.settings.set(ADMIN, tenant, "billing.invoice.due_days", 45)
    await services.settings.set(
        ADMIN, tenant, "billing.invoice.due_days", 60, environment="production"
    )
    await services.settings.set(
        ADMIN, tenant, "billing.currency.rounding_rules", {"JPY": 0, "x": [1.5, True, None]}
    )
    tokens = {
        "admin": (await services.tokens.create(Role.ADMIN))[0],
        "app": (await services.tokens.create(Role.APP, [tenant]))[0],
        "consultant": (await services.tokens.create(Role.CONSULTANT, [tenant]))[0],
    }
    apps = [
        create_app(
            services,
            AppOptions(demo=True, response_cache=False, projection=projection),
            product=ACME,
        )
        for projection in (True, False)
    ]
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url="http://p") as fast,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url="http://p") as slow,
    ):
        yield fast, slow, tokens


@pytest.fixture
def executions(monkeypatch) -> list[ProjectingExecutionContext]:
    """Every projecting execution context made (to see what they projected)."""
    made: list[ProjectingExecutionContext] = []
    init = ProjectingExecutionContext.__init__

    def spy(self: ProjectingExecutionContext, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(ProjectingExecutionContext, "__init__", spy)
    return made


async def test_the_projection_answers_byte_for_byte_like_normal_execution(twins, executions):
    fast, slow, tokens = twins
    compared = 0
    for document, variables in DOCUMENTS:
        for role, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "same-id"}
            body = {"query": document, "variables": variables}
            a = await fast.post("/graphql", json=body, headers=headers)
            b = await slow.post("/graphql", json=body, headers=headers)
            assert (a.status_code, a.content) == (b.status_code, b.content), (role, document)
            compared += 1
    assert compared == len(DOCUMENTS) * 3
    # the fast app projected (the slow one never did), and never had to give up
    assert sum(e.projected for e in executions) > 3 * 10
    assert sum(e.given_up for e in executions) == 0
    # the comparison is not vacuous: answers, typed errors and request errors
    # all occurred
    sample = await fast.post(
        "/graphql",
        json={"query": SETTINGS, "variables": {"t": "acme", "e": "production"}},
        headers={"Authorization": f"Bearer {tokens['app']}"},
    )
    items = sample.json()["data"]["settings"]["items"]
    due = next(i for i in items if i["key"] == "billing.invoice.due_days")
    assert (due["value"], due["source"]) == (60, "ENVIRONMENT")
    denied = await fast.post(
        "/graphql",
        json={"query": SETTINGS, "variables": {"t": "other", "e": None}},
        headers={"Authorization": f"Bearer {tokens['app']}"},
    )
    assert denied.json()["data"]["settings"]["__typename"] == "PermissionDenied"


# -- a schema whose values break the rules: the projection gives up -----------------


@strawberry.type
class Leaf:
    name: str
    size: int
    extra: JSON | None


@strawberry.type
class Box:
    leaves: list[Leaf]
    maybe: Leaf | None


BROKEN: dict[str, object] = {}


@strawberry.type
class Query:
    @strawberry.field
    def box(self, case: str) -> Box | None:
        return BROKEN[case]  # type: ignore[return-value]


class Odd:
    """Not a Leaf at all, but with the attributes of one."""

    name = "odd"
    size = 1
    extra = None


async def _coroutine() -> str:
    return "late"


def _cases() -> dict[str, Callable[[], object]]:
    """Each case made when asked (a coroutine must be awaited once made)."""
    good = Leaf(name="a", size=1, extra={"k": [1, 2.5, None]})
    made = {
        "good": lambda: Box(leaves=[good, good], maybe=None),
        "null_in_non_null": lambda: Box(
            leaves=[good, Leaf(name=None, size=2, extra=None)], maybe=good
        ),  # type: ignore[arg-type]
        "not_a_list": lambda: Box(leaves=good, maybe=None),  # type: ignore[arg-type]
        "bad_int": lambda: Box(leaves=[Leaf(name="b", size="many", extra=None)], maybe=None),  # type: ignore[arg-type]
        "huge_int": lambda: Box(leaves=[Leaf(name="b", size=2**40, extra=None)], maybe=None),
        "null_item": lambda: Box(leaves=[good, None], maybe=None),  # type: ignore[list-item]
        "foreign_object": lambda: Box(leaves=[Odd()], maybe=Odd()),  # type: ignore[list-item]
        "coroutine_leaf": lambda: Box(
            leaves=[Leaf(name=_coroutine(), size=1, extra=None)], maybe=None
        ),  # type: ignore[arg-type]
        "object_in_json": lambda: Box(leaves=[Leaf(name="c", size=1, extra=object())], maybe=None),
    }
    return made


@pytest.mark.parametrize(
    "case",
    [
        "good",
        "null_in_non_null",
        "not_a_list",
        "bad_int",
        "huge_int",
        "null_item",
        "foreign_object",
        "coroutine_leaf",
        "object_in_json",
    ],
)
async def test_values_that_break_the_rules_are_left_to_graphql_core(case, monkeypatch):
    fast = strawberry.Schema(query=Query, execution_context_class=ProjectingExecutionContext)
    slow = strawberry.Schema(query=Query)
    query = """query($c: String!) { box(case: $c) { leaves { name size x: extra __typename }
      maybe { name } } }"""
    results = []
    made: list[ProjectingExecutionContext] = []
    init = ProjectingExecutionContext.__init__

    def spy(self: ProjectingExecutionContext, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(ProjectingExecutionContext, "__init__", spy)
    for schema in (fast, slow):
        BROKEN.clear()
        BROKEN[case] = _cases()[case]()
        result = await schema.execute(query, variable_values={"c": case})
        errors = [
            (e.message, e.path, e.locations) if isinstance(e, GraphQLError) else e
            for e in result.errors or []
        ]
        extra = result.data["box"] if result.data and result.data["box"] else None
        if case == "object_in_json" and extra:
            # an arbitrary object passes through the JSON scalar on both paths
            for leaf in extra["leaves"]:
                leaf["x"] = type(leaf["x"]).__name__
        results.append((result.data, errors))
    assert results[0] == results[1]
    (execution,) = made
    if case == "good":
        assert (execution.projected, execution.given_up) == (1, 0)
        assert results[0][0] == {
            "box": {
                "leaves": [
                    {"name": "a", "size": 1, "x": {"k": [1, 2.5, None]}, "__typename": "Leaf"}
                ]
                * 2,
                "maybe": None,
            }
        }
    elif case in ("null_in_non_null", "not_a_list", "bad_int", "huge_int", "null_item"):
        assert results[0][1], case  # graphql-core's own error, on both paths
        assert execution.given_up >= 1
