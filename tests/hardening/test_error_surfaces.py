"""Probes (issue 13): what errors say. /healthz names no server; a too-wide
integer is a typed refusal and never reaches a log; media types are
case-insensitive; a NUL character and several unnamed operations get codes of
their own; "Did you mean" only with --demo."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from api.http.app import AppOptions, create_app
from core.store.services import Services
from tests.api.conftest import bearer

HUGE = 2**70  # 1180591620717411303424

SET_JSON = """mutation($v: JSON!, $k: String!) { setSetting(input: {tenant: "acme", key: $k,
  value: $v}) { __typename ... on ValidationFailed { rule message } } }"""


async def test_healthz_says_unavailable_and_logs_the_rest(caplog):
    caplog.set_level(logging.ERROR, logger="tailor")
    services = Services.from_url("postgresql+asyncpg://tailor:hunter2@127.0.0.1:1/inventory")
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as client:
        health = await client.get("/healthz")
    await services.close()
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable"}
    assert "127.0.0.1:1" in caplog.text  # the operator finds the cause in the log


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("billing.currency.rounding_rules", {"JPY": {"decimals": HUGE}}),
        ("billing.currency.rounding_rules", [-HUGE]),
        ("billing.invoice.due_days", HUGE),
    ],
)
async def test_an_integer_wider_than_64_bits_is_refused_and_never_logged(api, caplog, key, value):
    caplog.set_level(logging.DEBUG)
    body = orjson.dumps({"query": SET_JSON, "variables": {"k": key, "v": "__HUGE__"}}).replace(
        b'"__HUGE__"', str(value).replace("'", '"').encode()
    )
    response = await api.client.post(
        "/graphql",
        content=body,
        headers=bearer(api.tokens["admin"], **{"Content-Type": "application/json"}),
    )
    result = response.json()["data"]["setSetting"]
    assert result["__typename"] == "ValidationFailed", response.text
    assert result["rule"] == "type" and "64 bits" in result["message"]
    assert str(HUGE) not in caplog.text
    await _nothing_written(api)


async def test_the_database_never_logs_statement_values(services):
    assert services.engine.sync_engine.hide_parameters is True


async def _nothing_written(api):
    log = await api.gql('{ auditLog(tenant: "acme") { ... on AuditLog { entries { action } } } }')
    assert [e["action"] for e in log["data"]["auditLog"]["entries"]] == ["create_tenant"]


@pytest.mark.parametrize(
    "content_type",
    ["APPLICATION/JSON", "Application/Json; Charset=UTF-8", 'application/json; charset="utf-8"'],
)
async def test_media_types_are_case_insensitive(api, content_type):
    response = await api.client.post(
        "/graphql",
        content=orjson.dumps({"query": "{ tenants { slug } }"}),
        headers=bearer(api.tokens["admin"], **{"Content-Type": content_type}),
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["tenants"]


async def _post(api, body):
    return await api.client.post("/graphql", json=body, headers=bearer(api.tokens["admin"]))


async def test_a_nul_character_has_its_own_code(api):
    response = await _post(
        api, {"query": "query($t: String!) { tenant(slug: $t) { __typename } }",
              "variables": {"t": "ac\x00me"}}
    )  # fmt: skip
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "NUL_CHARACTER", error
    assert "U+0000" in error["message"]


async def test_several_unnamed_operations_have_their_own_code(api):
    response = await _post(
        api, {"query": "query A { tenants { slug } } query B { releases { version } }"}
    )
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "OPERATION_NAME_REQUIRED", error
    assert "operationName" in error["message"]


SUGGESTIVE = [
    # an argument, a type, an enum value, an input field, a field
    '{ settings(tenant: "acme", prefx: "b") { __typename } }',
    "query($t: Tenat) { tenants { slug } }",
    'mutation { setSetting(input: {tenant: "acme", key: "k", value: 1, enviroment: "x"})'
    " { __typename } }",
    "{ tenants { slgu } }",
]


async def test_no_suggestions_without_demo(api, client_with):
    async with client_with(AppOptions()) as client:
        for query in SUGGESTIVE:
            response = await client.post(
                "/graphql", json={"query": query}, headers=bearer(api.tokens["admin"])
            )
            messages = [e["message"] for e in response.json()["errors"]]
            assert messages and not any("Did you mean" in m for m in messages), messages
    # with --demo they help
    async with client_with(AppOptions(demo=True)) as client:
        response = await client.post(
            "/graphql", json={"query": SUGGESTIVE[0]}, headers=bearer(api.tokens["admin"])
        )
        assert "Did you mean" in response.json()["errors"][0]["message"]
