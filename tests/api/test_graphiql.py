"""The GraphiQL page: served with --demo, off by default otherwise, configurable."""

import pytest

from api.http.app import AppOptions


@pytest.mark.parametrize(
    ("options", "served"),
    [
        (AppOptions(demo=True), True),
        (AppOptions(), False),
        (AppOptions(graphiql=True), True),
        (AppOptions(demo=True, graphiql=False), False),
    ],
)
async def test_graphiql_page(client_with, options, served):
    async with client_with(options) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
    if served:
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        # it may send queries to Tailor itself, and to no other host
        policy = dict(
            d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";")
        )
        assert policy["connect-src"] == "'self'" and policy["default-src"] == "'none'"
        assert "http" not in page.headers["content-security-policy"]
    else:
        assert page.status_code in (401, 404)
        assert "graphiql" not in page.text.lower()
