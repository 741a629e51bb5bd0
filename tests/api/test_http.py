"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): media
types, status codes and a GraphQL error body for every refusal."""

import orjson
import pytest

from api.graphql.limits import GraphQLLimits
from api.http.app import AppOptions
from api.http.protocol import negotiate
from tests.api.conftest import bearer

GQL_JSON = "application/graphql-response+json"
QUERY = "{ tenants { slug } }"
SET_DUE = (
    'mutation { setSetting(input: {tenant: "acme", key: "billing.invoice.due_days", value: 41})'
    " { __typename } }"
)


def media(response) -> str:
    return response.headers["content-type"].split(";")[0]


async def post(api, body, *, accept=None, content_type="application/json", token="admin"):
    headers = bearer(api.tokens[token])
    if accept is not None:
        headers["Accept"] = accept
    if content_type is not None:
        headers["Content-Type"] = content_type
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await api.client.post("/graphql", content=raw, headers=headers)


async def assert_nothing_written(api):
    log = await api.gql('{ auditLog(tenant: "acme") { ... on AuditLog { entries { action } } } }')
    assert [e["action"] for e in log["data"]["auditLog"]["entries"]] == ["create_tenant"]


def assert_error_body(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body
    assert body["errors"] and body["errors"][0]["message"]
    if code is not None:
        assert body["errors"][0]["extensions"]["code"] == code
    return body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GQL_JSON, GQL_JSON),
        (f"{GQL_JSON}, application/json;q=0.9", GQL_JSON),
        (f"application/json, {GQL_JSON}", GQL_JSON),
        (f"{GQL_JSON};q=0.5, application/json", "application/json"),
        ("text/html, */*;q=0.1", "application/json"),
        (f"{GQL_JSON};q=0, application/json", "application/json"),
        ("text/html", None),
        ("application/xml, text/plain", None),
    ],
)
def test_negotiate(accept, expected):
    assert negotiate(accept) == expected


async def test_post_json_answers_in_the_preferred_media_type(api):
    plain = await post(api, {"query": QUERY})
    assert plain.status_code == 200 and media(plain) == "application/json"
    assert "charset=utf-8" in plain.headers["content-type"]
    assert plain.json()["data"]["tenants"]

    modern = await post(api, {"query": QUERY}, accept=f"{GQL_JSON}, application/json;q=0.9")
    assert modern.status_code == 200 and media(modern) == GQL_JSON
    assert modern.json()["data"]["tenants"]


async def test_null_optional_parameters_are_accepted(api):
    body = {"query": QUERY, "variables": None, "operationName": None, "extensions": None}
    for accept in ("application/json", GQL_JSON):
        response = await post(api, body, accept=accept)
        assert response.status_code == 200 and response.json()["data"]["tenants"]


@pytest.mark.parametrize(
    "query",
    [
        "{ tenants { slug ",  # parse error
        "{ noSuchField }",  # validation error
        "query($n: Int!) { auditLog(limit: $n) { __typename } }",  # variable coercion
    ],
)
async def test_request_errors_by_media_type(api, query):
    variables = {"n": "many"}
    legacy = await post(api, {"query": query, "variables": variables}, accept="application/json")
    assert legacy.status_code == 200 and media(legacy) == "application/json"
    assert legacy.json()["errors"] and legacy.json().get("data") is None

    modern = await post(api, {"query": query, "variables": variables}, accept=GQL_JSON)
    assert modern.status_code == 400 and media(modern) == GQL_JSON
    assert "data" not in modern.json() and modern.json()["errors"]


async def test_field_errors_keep_200_and_data_under_graphql_response_json(api):
    # an expected error raised from a field (releases: not for app tokens)
    response = await post(api, {"query": "{ releases { version } }"}, accept=GQL_JSON, token="app")
    assert response.status_code == 200
    body = response.json()
    assert "data" in body and body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("accept", ["application/json", GQL_JSON])
async def test_malformed_json_is_a_400_with_an_error_body(api, accept):
    response = await post(api, b'{"query": "{ tenants { slug } }"', accept=accept)
    assert "not valid JSON" in assert_error_body(response, 400, "BAD_REQUEST")
    assert media(response) == accept
    await assert_nothing_written(api)


async def test_invalid_utf8_is_a_400(api):
    body = b'{"query": "mutation { createTenant(input: {slug: "x\xff\xfe", name: "X"}) '
    body += b'{ __typename } }"}'
    response = await post(api, body)
    assert "UTF-8" in assert_error_body(response, 400, "BAD_REQUEST")
    await assert_nothing_written(api)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_unsupported_content_types_are_415(api, content_type):
    response = await post(api, {"query": SET_DUE}, content_type=content_type)
    assert_error_body(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    await assert_nothing_written(api)


async def test_json_with_utf8_charset_is_accepted(api):
    response = await post(api, {"query": QUERY}, content_type="application/json; charset=UTF-8")
    assert response.status_code == 200 and response.json()["data"]["tenants"]


async def test_unacceptable_accept_is_406(api):
    response = await post(api, {"query": SET_DUE}, accept="application/xml")
    assert_error_body(response, 406, "NOT_ACCEPTABLE")
    await assert_nothing_written(api)


async def test_oversized_bodies_are_413(api, client_with):
    limits = GraphQLLimits(max_body_bytes=2_000)
    padding = " " * 3_000
    async with client_with(AppOptions(limits=limits)) as client:
        response = await client.post(
            "/graphql",
            content=orjson.dumps({"query": SET_DUE + padding}),
            headers=bearer(api.tokens["admin"], **{"Content-Type": "application/json"}),
        )
        assert_error_body(response, 413, "PAYLOAD_TOO_LARGE")

        async def chunks():  # no Content-Length: the limit holds while streaming
            yield orjson.dumps({"query": SET_DUE})[:-1]
            yield padding.encode() + b"}"

        streamed = await client.post(
            "/graphql",
            content=chunks(),
            headers=bearer(api.tokens["admin"], **{"Content-Type": "application/json"}),
        )
        assert_error_body(streamed, 413, "PAYLOAD_TOO_LARGE")
    await assert_nothing_written(api)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b'"just a string"', "JSON object"),
        ({"variables": {}}, "no 'query'"),
        ({"query": 42}, "'query' must be a string"),
        ({"query": ["{ tenants { slug } }"]}, "'query' must be a string"),
        ({"query": QUERY, "variables": "x"}, "'variables' must be an object"),
        ({"query": QUERY, "variables": [1]}, "'variables' must be an object"),
        ({"query": QUERY, "operationName": 7}, "'operationName' must be a string"),
        ({"query": QUERY, "extensions": True}, "'extensions' must be an object"),
    ],
)
async def test_malformed_parameters_are_400(api, body, fragment):
    for accept in ("application/json", GQL_JSON):
        response = await post(api, body, accept=accept)
        assert fragment in assert_error_body(response, 400, "BAD_REQUEST")


async def test_unknown_operation_name_is_a_400(api):
    body = {"query": f"query A {QUERY} mutation B {SET_DUE[9:]}", "operationName": "C"}
    response = await post(api, body)
    assert "no operation named 'C'" in assert_error_body(response, 400)
    several = await post(api, {"query": f"query A {QUERY} query B {QUERY}"}, accept=GQL_JSON)
    assert "operationName" in assert_error_body(several, 400)
    chosen = await post(
        api, {"query": f"query A {QUERY} query B {{ __typename }}", "operationName": "B"}
    )
    assert chosen.json()["data"] == {"__typename": "Query"}
    await assert_nothing_written(api)


async def test_get_runs_queries_but_never_mutations(api):
    headers = bearer(api.tokens["admin"])
    ok = await api.client.get("/graphql", params={"query": QUERY}, headers=headers)
    assert ok.status_code == 200 and ok.json()["data"]["tenants"]

    refused = await api.client.get("/graphql", params={"query": SET_DUE}, headers=headers)
    assert_error_body(refused, 405, "METHOD_NOT_ALLOWED")
    assert refused.headers["allow"] == "POST"
    named = await api.client.get(
        "/graphql",
        params={"query": f"query A {QUERY} mutation B {SET_DUE[9:]}", "operationName": "B"},
        headers=headers,
    )
    assert_error_body(named, 405)
    await assert_nothing_written(api)

    bad_variables = await api.client.get(
        "/graphql", params={"query": QUERY, "variables": "{nope"}, headers=headers
    )
    assert_error_body(bad_variables, 400, "BAD_REQUEST")
    missing = await api.client.get("/graphql", headers={**headers, "Accept": "application/json"})
    assert "no 'query'" in assert_error_body(missing, 400)


async def test_other_methods_are_405(api):
    response = await api.client.put(
        "/graphql", json={"query": QUERY}, headers=bearer(api.tokens["admin"])
    )
    assert_error_body(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["allow"]


async def test_401_is_a_graphql_error_body_in_the_negotiated_type(api):
    response = await api.client.post(
        "/graphql", json={"query": QUERY}, headers={"Accept": GQL_JSON}
    )
    assert_error_body(response, 401, "UNAUTHENTICATED")
    assert media(response) == GQL_JSON


async def test_batches_run_each_operation_within_the_limit(api, client_with):
    batch = [{"query": QUERY}, {"query": "{ __typename }"}]
    response = await post(api, batch)
    assert response.status_code == 200
    assert [list(r["data"]) for r in response.json()] == [["tenants"], ["__typename"]]

    too_many = await post(api, [{"query": QUERY}] * 11)
    assert "limit is 10" in assert_error_body(too_many, 400, "BAD_REQUEST")
    empty = await post(api, [])
    assert_error_body(empty, 400, "BAD_REQUEST")
    bad_item = await post(api, [{"query": QUERY}, 3])
    assert "request[1]" in assert_error_body(bad_item, 400)

    async with client_with(AppOptions(limits=GraphQLLimits(max_batch_size=0))) as client:
        refused = await client.post(
            "/graphql", json=[{"query": SET_DUE}], headers=bearer(api.tokens["admin"])
        )
        assert "not accepted" in assert_error_body(refused, 400, "BAD_REQUEST")
    await assert_nothing_written(api)


async def test_responses_carry_the_request_id(api):
    response = await post(api, {"query": QUERY})
    assert len(response.headers["x-request-id"]) == 16
    given = await api.client.post(
        "/graphql",
        json={"query": QUERY},
        headers=bearer(api.tokens["admin"], **{"X-Request-Id": "trace-42"}),
    )
    assert given.headers["x-request-id"] == "trace-42"
    forged = await api.client.post(
        "/graphql",
        json={"query": QUERY},
        headers=bearer(api.tokens["admin"], **{"X-Request-Id": 'x" injected\\n'}),
    )
    assert forged.headers["x-request-id"] != 'x" injected\\n'
