"""Unexpected errors are masked with a request id that finds them in the log;
expected errors keep their messages; one JSON log line per request, never a
token or a secret value."""

import json
import logging

import pytest
from sqlalchemy import text

from api.http.logging import JsonFormatter
from tests.api.conftest import bearer
from tests.conftest import ADMIN

SECRET_KEY = "integrations.webhooks.signing_secret"
SECRET_VALUE = "whsec-TOP-SECRET-4711"


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="tailor")
    return caplog


def formatted(caplog) -> list[str]:
    formatter = JsonFormatter()
    return [formatter.format(r) for r in caplog.records]


async def test_unexpected_errors_are_masked_with_the_request_id(api, services, monkeypatch, logs):
    async def broken(_principal):
        raise RuntimeError("connection string postgres://tailor:hunter2@db")

    monkeypatch.setattr(services.tenants, "list_all", broken)
    response = await api.client.post(
        "/graphql",
        json={"query": "{ tenants { slug } }"},
        headers=bearer(api.tokens["admin"], **{"X-Request-Id": "req-masked-1"}),
    )
    assert response.status_code == 200
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL_ERROR", "requestId": "req-masked-1"}
    assert "req-masked-1" in error["message"] and error["path"] == ["tenants"]

    logged = [json.loads(line) for line in formatted(logs)]
    incident = next(e for e in logged if e["logger"] == "tailor.errors")
    assert incident["request_id"] == "req-masked-1"
    assert "hunter2" in incident["exception"]  # the operator sees the cause...
    access = next(e for e in logged if e["logger"] == "tailor.access")
    assert access["request_id"] == "req-masked-1" and access["masked_errors"] == 1


async def test_expected_errors_keep_their_messages(api):
    denied = await api.gql("{ releases { version } }", token="app")
    error = denied["errors"][0]
    assert error["extensions"]["code"] == "PERMISSION_DENIED"
    assert "role" in error["message"] and "Unexpected" not in error["message"]
    typed = await api.gql(
        '{ tenant(slug: "other") { ... on Error { code message } } }', token="consultant"
    )
    assert typed["data"]["tenant"]["code"] == "PERMISSION_DENIED"
    assert "not in your token's scope" in typed["data"]["tenant"]["message"]


async def test_a_crash_outside_graphql_is_a_500_with_an_error_body(api, services, monkeypatch):
    async def broken(_secret):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(services.tokens, "authenticate", broken)
    response = await api.client.post(
        "/graphql",
        json={"query": "{ tenants { slug } }"},
        headers=bearer("tlr_whatever", **{"X-Request-Id": "req-crash"}),
    )
    assert response.status_code == 500
    body = response.json()
    assert "data" not in body and "boom" not in response.text
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_ERROR"
    assert "req-crash" in body["errors"][0]["message"]


async def test_one_json_line_per_request_with_caller_and_outcome(api, logs):
    await api.client.post(
        "/graphql",
        json={"query": "query Mine { tenants { slug } }", "operationName": "Mine"},
        headers=bearer(api.tokens["consultant"], **{"X-Request-Id": "req-log-1"}),
    )
    await api.client.post("/graphql", json={"query": "{ tenants { slug } }"})
    lines = [json.loads(x) for x in formatted(logs)]
    access = [e for e in lines if e["logger"] == "tailor.access"]
    assert len(access) == 2
    first, anonymous = access
    assert first["request_id"] == "req-log-1"
    assert (first["role"], first["tenants"], first["status"]) == ("consultant", ["acme"], 200)
    assert first["operations"] == ["Mine"] and first["method"] == "POST"
    assert isinstance(first["duration_ms"], float)
    assert (anonymous["status"], anonymous["role"]) == (401, None)


async def test_logs_never_hold_tokens_or_secret_values(api, logs):
    for token in ("admin", "consultant"):
        result = await api.gql(
            """mutation($v: JSON!) { setSetting(input: {tenant: "acme",
                 key: "integrations.webhooks.signing_secret", value: $v}) { __typename } }""",
            {"v": SECRET_VALUE},
            token=token,
        )
        assert result["data"]["setSetting"]["__typename"] == "SettingChanged"
    await api.client.post(
        "/graphql", json={"query": "{ nope }"}, headers={"Authorization": "Bearer tlr_wrong"}
    )
    text = "\n".join(formatted(logs))
    assert "request" in text
    for secret in (*api.tokens.values(), "tlr_wrong", SECRET_VALUE):
        assert secret not in text


async def test_the_audit_entry_carries_the_request_id(api, services):
    """The request's id is kept on the audit entry it wrote (the column and the
    GraphQL field); a change made outside a request (the CLI) has none."""
    response = await api.client.post(
        "/graphql",
        json={
            "query": """mutation { setSetting(input: {tenant: "acme",
                key: "billing.invoice.due_days", value: 45}) {
                ... on SettingChanged { auditId } } }"""
        },
        headers=bearer(api.tokens["admin"], **{"X-Request-Id": "abc"}),
    )
    audit_id = int(response.json()["data"]["setSetting"]["auditId"])
    await services.settings.set(ADMIN, "acme", "billing.invoice.due_days", 60)
    log = await api.gql(
        """{ auditLog(key: "billing.invoice.due_days") {
             ... on AuditLog { entries { id new requestId } } } }"""
    )
    entries = log["data"]["auditLog"]["entries"]
    assert entries[:2] == [
        {"id": entries[0]["id"], "new": 60, "requestId": None},
        {"id": audit_id, "new": 45, "requestId": "abc"},
    ]
    async with services.engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT request_id FROM audit_log WHERE id = :id"), {"id": audit_id}
        )
        assert stored.scalar_one() == "abc"
