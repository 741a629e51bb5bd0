"""A live secret setting never shows: on no console page for any role (the
overrides table reads "set (secret)" and the revision), in no GraphQL audit
entry, in /metrics, in the JSON request log, nor in the CLI's reports; and
neither does its sealed form."""

from __future__ import annotations

import json
import logging
import re

import pytest_asyncio
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli.main import app
from api.http.logging import JsonFormatter
from core.model.secrets import SEALED
from core.store.models import Override
from tests.api.test_console import console, new_client, sign_in  # noqa: F401 (fixture)

KEY = "integrations.webhooks.signing_secret"
VALUE = "sk_live-PAYMENT-KEY-8c1f4e"
SET = """mutation($v: JSON!, $env: String) { setSetting(input: {tenant: "acme",
  key: "integrations.webhooks.signing_secret", value: $v, environment: $env}) { __typename } }"""
AUDIT = """{ auditLog(tenant: "acme", key: "integrations.webhooks.signing_secret") {
  ... on AuditLog { entries { old new revision } } ... on Error { code } } }"""


async def _sealed_tokens(services) -> list[str]:
    async with services.sessions() as session:
        values = (await session.scalars(select(Override.value).where(Override.key == KEY))).all()
    tokens = [v[SEALED] for v in values]
    assert tokens and all(len(t) > 40 for t in tokens)  # stored sealed, not in plaintext
    return tokens


@pytest_asyncio.fixture
async def with_secret(console, caplog):  # noqa: F811 (the imported fixture)
    """The console's fixture, plus a live secret for acme: tenant-wide (admin)
    and for production (the acme consultant); Tailor's log captured from here."""
    caplog.set_level(logging.INFO, logger="tailor")
    for variables, token in (
        ({"v": VALUE}, "admin"),
        ({"v": VALUE, "env": "production"}, "consultant"),
    ):
        done = await console.gql(SET, variables, token=token)
        assert done["data"]["setSetting"]["__typename"] == "SettingChanged", done
    return console


def _override_rows(html: str, key: str) -> list[list[str]]:
    """The overrides table's rows for ``key``: its cells as text."""
    table = html.split('id="overrides"', 1)[1].split("</table>", 1)[0]
    rows = [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    return [r for r in rows if r and r[0] == key]


async def test_no_console_page_shows_a_secret_for_any_role(with_secret, services):
    hidden = [VALUE, *await _sealed_tokens(services)]
    pages = {
        "admin": ["/console/fleet", "/console/fleet?full=1", "/console/foldback"],
        "release_manager": ["/console/fleet", "/console/fleet?full=1", "/console/foldback"],
        "consultant": ["/console/fleet"],
    }
    for role, extra in pages.items():
        async with new_client(services) as client:
            await sign_in(client, with_secret.tokens[role])
            for path in [
                *extra,
                "/console/tenants/acme",
                "/console/tenants/acme?target=3.0",
                "/console/customizations/legacy-rule",
                "/console/usage",
            ]:
                page = await client.get(path)
                assert page.status_code == 200, (role, path, page.text[:300])
                for secret in hidden:
                    assert secret not in page.text, (role, path)
                if path.startswith("/console/tenants/"):
                    assert _override_rows(page.text, KEY) == [
                        [KEY, "(tenant-wide)", "set (secret)", "1"],
                        [KEY, "production", "set (secret)", "1"],
                    ], role


async def test_audit_log_metrics_and_request_log_keep_no_secret(with_secret, services, caplog):
    hidden = [VALUE, *await _sealed_tokens(services)]
    for token in ("admin", "release_manager", "consultant"):
        audit = await with_secret.gql(AUDIT, token=token)
        entries = audit["data"]["auditLog"]["entries"]
        assert [(e["old"], e["new"], e["revision"]) for e in entries] == [
            (None, "<secret>", 1),
            (None, "<secret>", 1),
        ], token
        assert not any(s in json.dumps(audit) for s in hidden)
    # a refused write that names the value: echoed nowhere either
    refused = await with_secret.gql(SET, {"v": {"nested": VALUE}}, token="consultant")
    assert VALUE not in json.dumps(refused)
    metrics = await with_secret.client.get(
        "/metrics", headers={"Authorization": f"Bearer {with_secret.tokens['admin']}"}
    )
    assert metrics.status_code == 200 and "tailor_" in metrics.text
    formatter = JsonFormatter()
    records = [*caplog.get_records("setup"), *caplog.records]  # the writes, then the reads
    logged = "\n".join(formatter.format(r) for r in records)
    assert logged.count('"path":"/graphql"') >= 6, logged[:2000]  # 2 writes, 4 reads
    for secret in hidden:
        assert secret not in metrics.text and secret not in logged


@pytest_asyncio.fixture
async def cli_db(with_secret, database_url, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    return with_secret


def test_the_cli_reports_keep_no_secret(cli_db):
    runner = CliRunner()
    for args in (
        [
            "readiness",
            "--target",
            "3.0",
            "--tenant",
            "acme",
            "--full",
            "--format",
            "json",
            "--no-keep",
        ],
        ["customization", "list", "--format", "json"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 1), result.output  # 1: blocked tenants
        assert result.stdout.strip() and VALUE not in result.output, args
