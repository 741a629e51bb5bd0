"""CLI: ``tailor audit``, the audit log with the request that made each change,
on a real database written through the real HTTP app."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from api.cli.main import app
from tests.api.conftest import bearer

runner = CliRunner()


async def invoke(*args: str):
    """The CLI runs its own event loop: in a thread of its own."""
    return await asyncio.to_thread(runner.invoke, app, list(args), catch_exceptions=False)


SET = """mutation($v: JSON!) { setSetting(input: {tenant: "acme",
  key: "billing.invoice.due_days", value: $v}) { ... on SettingChanged { auditId } } }"""


async def _set(api, value: int, request_id: str) -> int:
    response = await api.client.post(
        "/graphql",
        json={"query": SET, "variables": {"v": value}},
        headers=bearer(api.tokens["admin"], **{"X-Request-Id": request_id}),
    )
    return int(response.json()["data"]["setSetting"]["auditId"])


async def test_audit_lists_entries_with_their_request_id(api, database_url, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    first = await _set(api, 45, "abc")
    second = await _set(api, 46, "def")
    found = await api.gql('{ auditLog(requestId: "abc") { ... on AuditLog { entries { id } } } }')
    assert found["data"]["auditLog"]["entries"] == [{"id": first}]

    listed = await invoke("audit", "--key", "billing.invoice.due_days", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["new"], r["request_id"]) for r in rows[:2]] == [
        (second, 46, "def"),
        (first, 45, "abc"),
    ]
    only = await invoke("audit", "--request-id", "abc", "--format", "json")
    assert [r["id"] for r in json.loads(only.stdout)] == [first]
    table = await invoke("audit", "--tenant", "acme", "--limit", "1")
    assert table.exit_code == 0 and "def" in table.stdout and "abc" not in table.stdout


def test_bad_audit_options_exit_2(database_url, services, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    refused = runner.invoke(app, ["audit", "--limit", "0"])
    assert refused.exit_code == 2 and "limit" in refused.stderr and "between 1" in refused.stderr
    missing = runner.invoke(app, ["audit", "--tenant", "nobody"])
    assert missing.exit_code == 2 and "nobody" in missing.stderr
