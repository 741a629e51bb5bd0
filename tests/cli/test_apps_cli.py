"""CLI: ``tailor app register|list``, ``tailor app operations push``, ``tailor app
flags push`` and ``tailor token create --app``, on a real database."""

from __future__ import annotations

import hashlib
import json

import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app

runner = CliRunner()
DOCUMENT = """query Startup { settings(tenant: "acme", keys: ["billing.invoice.due_days"]) {
  __typename } }
query Invoice { settings(tenant: "acme", prefix: "billing.invoice") { __typename } }
"""


@pytest_asyncio.fixture
async def db(services, tenant, database_url, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    return services


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_register_push_flags_list_and_token(db, tmp_path):
    made = invoke("app", "register", "shop-web", "--tenant", "acme", "--trusted-only")
    assert made.exit_code == 0, made.stderr
    file = tmp_path / "shop.graphql"
    file.write_text(DOCUMENT)
    pushed = invoke("app", "operations", "push", "shop-web", str(file), "--format", "json")
    assert pushed.exit_code == 0, pushed.stderr
    rows = json.loads(pushed.stdout)["pushed"]
    assert [(r["name"], r["stored"]) for r in rows] == [("Startup", True), ("Invoice", True)]
    startup = DOCUMENT[: DOCUMENT.index("\nquery Invoice")]
    assert rows[0]["id"] == "sha256:" + hashlib.sha256(startup.encode()).hexdigest()
    again = invoke("app", "operations", "push", "shop-web", str(file))
    assert again.exit_code == 0 and again.stdout.count("known") == 2
    flags = invoke("app", "flags", "push", "shop-web", "billing.invoice.due_days")
    assert flags.exit_code == 0, flags.stderr
    listed = invoke("app", "list", "--format", "json")
    [shown] = json.loads(listed.stdout)["apps"]
    assert shown["trusted_only"] is True and shown["flags"] == ["billing.invoice.due_days"]
    assert [o["keys"] for o in shown["operations"]] == [["billing.invoice.due_days"], []]
    token = invoke("token", "create", "--role", "app", "--tenant", "acme", "--app", "shop-web")
    assert token.exit_code == 0 and "app shop-web" in token.stderr


def test_bad_input_exits_2_and_stores_nothing(db, tmp_path):
    assert invoke("app", "register", "shop-web", "--tenant", "acme").exit_code == 0
    bad = tmp_path / "bad.graphql"
    bad.write_text("query { nope }")
    refused = invoke("app", "operations", "push", "shop-web", str(bad))
    assert refused.exit_code == 2 and "does not validate against Tailor's schema" in refused.stderr
    missing = invoke("app", "operations", "push", "shop-web", str(tmp_path / "none.graphql"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    unknown = invoke("app", "flags", "push", "no-such-app", "billing.invoice.due_days")
    assert unknown.exit_code == 2 and "app 'no-such-app' not found" in unknown.stderr
    no_tenant = invoke("app", "register", "x-web", "--tenant", "nope")
    assert no_tenant.exit_code == 2 and "tenant 'nope' not found" in no_tenant.stderr
    token = invoke("token", "create", "--role", "app", "--tenant", "acme", "--app", "nope")
    assert token.exit_code == 2 and "app 'nope' not found" in token.stderr
    listed = invoke("app", "list", "--format", "json")
    assert json.loads(listed.stdout)["apps"][0]["operations"] == []
