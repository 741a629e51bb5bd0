"""The settings slice through the real ASGI app over httpx."""

import httpx

from api.http.app import create_app
from core.store.db import count_statements
from core.store.services import Services

SETTINGS = """
query($tenant: String!, $environment: String, $keys: [String!], $prefix: String) {
  settings(tenant: $tenant, environment: $environment, keys: $keys, prefix: $prefix) {
    __typename
    ... on Settings { tenant release items { key value source revision
        definition { type default min max choices category } } }
    ... on Error { code message }
    ... on NotFound { kind identifier }
  }
}"""

SET = """
mutation($input: SetSettingInput!) {
  setSetting(input: $input) {
    __typename
    ... on SettingChanged { key old new revision auditId setting { value source revision } }
    ... on Error { code message }
    ... on Conflict { expectedRevision currentRevision }
    ... on ValidationFailed { key rule value }
  }
}"""

DUE = "billing.invoice.due_days"


async def test_front_end_fetches_resolved_settings(api):
    data = await api.gql(SETTINGS, {"tenant": "acme", "prefix": "billing.invoice"}, token="app")
    result = data["data"]["settings"]
    assert result["__typename"] == "Settings" and result["release"] == "2.0"
    due = next(i for i in result["items"] if i["key"] == DUE)
    assert due == {
        "key": DUE,
        "value": 30,
        "source": "DEFAULT",
        "revision": 0,
        "definition": {
            "type": "INT",
            "default": 30,
            "min": due["definition"]["min"],
            "max": due["definition"]["max"],
            "choices": None,
            "category": "billing",
        },
    }


async def test_set_read_conflict_and_reset(api):
    first = await api.gql(
        SET,
        {
            "input": {
                "tenant": "acme",
                "key": DUE,
                "value": 45,
                "environment": "production",
                "expectedRevision": 0,
            }
        },
    )
    changed = first["data"]["setSetting"]
    assert changed["__typename"] == "SettingChanged"
    assert changed["setting"] == {"value": 45, "source": "ENVIRONMENT", "revision": 1}

    stale = await api.gql(
        SET,
        {
            "input": {
                "tenant": "acme",
                "key": DUE,
                "value": 50,
                "environment": "production",
                "expectedRevision": 0,
            }
        },
    )
    conflict = stale["data"]["setSetting"]
    assert conflict["__typename"] == "Conflict"
    assert (conflict["expectedRevision"], conflict["currentRevision"]) == (0, 1)

    read = await api.gql(SETTINGS, {"tenant": "acme", "environment": "production", "keys": [DUE]})
    assert read["data"]["settings"]["items"][0]["value"] == 45

    reset = await api.gql(
        """mutation { resetSetting(input: {tenant: "acme", key: "billing.invoice.due_days",
             environment: "production", expectedRevision: 1}) {
             __typename ... on SettingChanged { revision setting { value source } } } }"""
    )
    assert reset["data"]["resetSetting"] == {
        "__typename": "SettingChanged",
        "revision": 2,
        "setting": {"value": 30, "source": "DEFAULT"},
    }
    log = await api.gql(
        '{ auditLog(tenant: "acme", key: "billing.invoice.due_days") {'
        " ... on AuditLog { entries { action old new revision actor } } } }"
    )
    entries = log["data"]["auditLog"]["entries"]
    assert [(e["action"], e["old"], e["new"], e["revision"]) for e in entries] == [
        ("reset", 45, None, 2),
        ("set", None, 45, 1),
    ]


async def test_expected_errors_are_typed_results(api):
    bad_type = await api.gql(SET, {"input": {"tenant": "acme", "key": DUE, "value": "soon"}})
    assert bad_type["data"]["setSetting"]["__typename"] == "ValidationFailed"
    assert bad_type["data"]["setSetting"]["rule"] == "type"
    assert bad_type["data"]["setSetting"]["value"] == "soon"

    unknown = await api.gql(SETTINGS, {"tenant": "ghost"})
    assert unknown["data"]["settings"]["__typename"] == "NotFound"
    assert unknown["data"]["settings"]["identifier"] == "ghost"

    missing_key = await api.gql(SETTINGS, {"tenant": "acme", "keys": ["no.such.key"]})
    assert missing_key["data"]["settings"]["code"] == "NOT_FOUND"

    denied = await api.gql(SET, {"input": {"tenant": "acme", "key": DUE, "value": 40}}, token="app")
    assert denied["data"]["setSetting"]["__typename"] == "PermissionDenied"

    other = await api.gql(SETTINGS, {"tenant": "other"}, token="consultant")
    assert other["data"]["settings"]["__typename"] == "PermissionDenied"


async def test_malformed_variables_are_refused_before_anything_runs(api):
    response = await api.client.post(
        "/graphql",
        json={"query": SET, "variables": {"input": {"tenant": "acme", "value": 1}}},
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    body = response.json()
    assert "data" not in body or body["data"] is None
    assert "key" in body["errors"][0]["message"]
    audit = await api.gql('{ auditLog(tenant: "acme") { ... on AuditLog { entries { action } } } }')
    assert [e["action"] for e in audit["data"]["auditLog"]["entries"]] == ["create_tenant"]


async def test_create_tenant(api):
    created = await api.gql(
        'mutation { createTenant(input: {slug: "newco", name: "New Co", release: "1.5"}) {'
        " __typename ... on Tenant { slug release environments } ... on Error { code } } }"
    )
    assert created["data"]["createTenant"] == {
        "__typename": "Tenant",
        "slug": "newco",
        "release": "1.5",
        "environments": ["production", "sandbox"],
    }
    again = await api.gql(
        'mutation { createTenant(input: {slug: "newco", name: "X"}) {'
        " __typename ... on Error { code } } }"
    )
    assert again["data"]["createTenant"] == {
        "__typename": "AlreadyExists",
        "code": "ALREADY_EXISTS",
    }


async def test_requests_without_a_valid_token_get_401(api):
    response = await api.client.post("/graphql", json={"query": "{ tenants { slug } }"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bad = await api.client.post(
        "/graphql", json={"query": "{ tenants { slug } }"}, headers={"Authorization": "Bearer x"}
    )
    assert bad.status_code == 401
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_healthz(api):
    response = await api.client.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_settings_query_statement_count_is_constant(api, services):
    query = {"tenant": "acme", "environment": "production"}
    await api.gql(SETTINGS, {**query, "keys": [DUE]})  # warm the enabled-customizations cache
    with count_statements(services.engine) as small:
        await api.gql(SETTINGS, {**query, "prefix": "billing.invoice"})
    with count_statements(services.engine) as everything:
        data = await api.gql(SETTINGS, query)
    assert len(data["data"]["settings"]["items"]) > 40
    # token lookup + tenant + definitions + overrides, whatever the number of settings
    assert small.count == everything.count == 4


async def test_database_outage_is_a_503_not_a_crash():
    # a real, unreachable database server (nothing listens on port 1)
    services = Services.from_url("postgresql+asyncpg://tailor@127.0.0.1:1/none")
    app = create_app(services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ tenants { slug } }"},
            headers={"Authorization": "Bearer tlr_whatever"},
        )
        health = await client.get("/healthz")
    await services.close()
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    assert response.headers["retry-after"] == "5"
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
