"""CLI: ``tailor webhook add|list|deliveries|resume|remove`` on the test database,
and its refusals (exit 2, nothing stored)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from core.model import webhooks as rules

runner = CliRunner()


@pytest.fixture
def db(services, database_url, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    monkeypatch.setenv(rules.ALLOW_PRIVATE_ENV, "1")
    return services


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def listed() -> list[dict]:
    result = invoke("webhook", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_add_prints_the_secret_once_then_list_deliveries_remove(db, tenant):
    added = invoke("webhook", "add", "http://127.0.0.1:9/in", "--event", "set", "--tenant", tenant)
    assert added.exit_code == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and len(secret) == 6 + 64
    assert "not shown again" in added.stderr
    (hook,) = listed()
    assert (hook["url"], hook["events"], hook["tenants"], hook["state"]) == (
        "http://127.0.0.1:9/in",
        ["set"],
        [tenant],
        "active",
    )
    assert secret not in json.dumps(hook)
    table = invoke("webhook", "list")
    assert table.exit_code == 0 and "127.0.0.1:9/in" in table.stdout and secret not in table.stdout
    deliveries = invoke("webhook", "deliveries", str(hook["id"]), "--format", "json")
    assert deliveries.exit_code == 0 and json.loads(deliveries.stdout) == []
    resumed = invoke("webhook", "resume", str(hook["id"]))
    assert resumed.exit_code == 0 and "active" in resumed.stdout
    removed = invoke("webhook", "remove", str(hook["id"]))
    assert removed.exit_code == 0 and f"removed webhook {hook['id']}" in removed.stdout
    assert listed() == []
    again = invoke("webhook", "remove", str(hook["id"]))
    assert again.exit_code == 2 and "webhook" in again.stderr and "not found" in again.stderr


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/", "metadata"),
        ("ftp://example.com/", "only http and https"),
    ],
)
def test_unsafe_urls_exit_2_and_store_nothing(db, url, why):
    result = invoke("webhook", "add", url)
    assert result.exit_code == 2 and "error:" in result.stderr and why in result.stderr
    assert listed() == []


def test_private_addresses_need_the_operator_s_permission(db, monkeypatch):
    monkeypatch.delenv(rules.ALLOW_PRIVATE_ENV)
    result = invoke("webhook", "add", "http://127.0.0.1:9/")
    assert result.exit_code == 2 and rules.ALLOW_PRIVATE_ENV in result.stderr
    assert listed() == []


def test_without_a_secret_key_add_is_refused_with_the_reason(db, monkeypatch):
    monkeypatch.delenv("TAILOR_SECRET_KEY")
    result = invoke("webhook", "add", "http://127.0.0.1:9/")
    assert result.exit_code == 2
    assert "TAILOR_SECRET_KEY" in result.stderr and "encrypted" in result.stderr
    assert listed() == []


def test_secrets_rotate_reseals_webhook_secrets(db, database_url, monkeypatch):
    import asyncio

    from cryptography.fernet import Fernet
    from sqlalchemy import select

    from core.model.secrets import SecretBox
    from core.store.db import create_engine
    from core.store.models import WebhookRow

    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("TAILOR_SECRET_KEY", old)
    secret = invoke("webhook", "add", "http://127.0.0.1:9/").stdout.strip()
    monkeypatch.setenv("TAILOR_SECRET_KEY", f"{new},{old}")
    rotated = invoke("secrets", "rotate")
    assert rotated.exit_code == 0 and "re-encrypted with the first key: 1" in rotated.stdout

    async def stored():
        # this test's own engine: the fixtures' belongs to another event loop
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(select(WebhookRow.secret))).scalar_one()
        finally:
            await engine.dispose()

    sealed = asyncio.run(stored())
    assert SecretBox((new,)).open(sealed) == secret
    # without any key, serve refuses to start rather than fail every delivery
    monkeypatch.delenv("TAILOR_SECRET_KEY")
    refused = invoke("serve", "--port", "1")
    assert refused.exit_code == 2 and "1 webhook signing secret(s)" in refused.stderr
