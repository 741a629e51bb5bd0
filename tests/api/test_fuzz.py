"""Generated GraphQL documents (valid and invalid ones, from the real schema)
through the real ASGI app: never a 5xx, never an unmasked internal error."""

from __future__ import annotations

import json

import graphql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes
from hypothesis_graphql import queries as graphql_queries

from api.graphql.schema import build_schema

SCHEMA = build_schema()._schema

json_values = st.recursive(
    st.one_of(
        st.none().map(lambda _: graphql.NullValueNode()),
        st.booleans().map(nodes.Boolean),
        st.integers(-(2**31), 2**31 - 1).map(nodes.Int),
        st.text(max_size=20).map(nodes.String),
    ),
    lambda inner: st.lists(inner, max_size=3).map(nodes.List),
    max_leaves=5,
)
CUSTOM = {
    "JSON": json_values,
    # an upload inlined in a document is never a file: publishCustomization says so
    "Upload": st.text(max_size=20).map(nodes.String),
}

documents = st.one_of(
    from_schema(SCHEMA, custom_scalars=CUSTOM),
    graphql_queries(SCHEMA, custom_scalars=CUSTOM, mode=Mode.NEGATIVE),
)
ROLES = ("admin", "release_manager", "consultant", "app")
ACCEPTS = ("application/json", "application/graphql-response+json")
LEAKS = ("Traceback", "Exception", "sqlalchemy", "asyncpg", "sqlite", 'File "')


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=documents, role=st.sampled_from(ROLES), accept=st.sampled_from(ACCEPTS))
async def test_generated_documents_never_break_the_server(api, document, role, accept):
    response = await api.client.post(
        "/graphql",
        json={"query": document},
        headers={"Authorization": f"Bearer {api.tokens[role]}", "Accept": accept},
    )
    assert response.status_code < 500, response.text
    body = response.json()
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or ()]
    assert "INTERNAL_ERROR" not in codes, (document, body)
    text = json.dumps(body)
    assert not [leak for leak in LEAKS if leak in text], (document, body)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/json; charset=utf-8"]
    ),
)
async def test_arbitrary_bodies_get_4xx_or_an_answer(api, body, content_type):
    headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = await api.client.post("/graphql", content=body, headers=headers)
    assert response.status_code < 500, response.text
    assert "errors" in response.json() or "data" in response.json()
