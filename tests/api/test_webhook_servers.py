"""Webhooks from real `tailor serve` processes: the delivery job runs in the
server's lifespan, woken by its commits; with two servers on PostgreSQL each
change is delivered once, in order, by whichever server leases the webhook."""

from __future__ import annotations

import httpx
import pytest

from core.model.auth import Role
from tests.api.test_webhooks import readme_verify
from tests.conftest import ADMIN
from tests.receiver import receiver
from tests.servers import tailor_serve

SET = """mutation($value: JSON!) { setSetting(input: {tenant: "acme",
  key: "billing.invoice.due_days", value: $value}) { __typename } }"""
ALLOW = {"TAILOR_WEBHOOK_ALLOW_PRIVATE": "1"}


async def set_due(client: httpx.AsyncClient, url: str, token: str, value: int) -> None:
    response = await client.post(
        f"{url}/graphql",
        json={"query": SET, "variables": {"value": value}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json()["data"]["setSetting"]["__typename"] == "SettingChanged"


async def test_a_served_change_reaches_a_receiver_that_fails_twice(
    services, database_url, tmp_path
):
    verify = readme_verify()
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    admin, _ = await services.tokens.create(Role.ADMIN, ())
    async with receiver(script=[500, 502]) as got:
        info, secret = await services.webhooks.create(
            ADMIN, got.url, tenants=["acme"], private_allowed=True
        )
        async with tailor_serve(tmp_path / "a", database_url, **ALLOW) as url:
            async with httpx.AsyncClient() as client:
                await set_due(client, url, admin, 45)
            await got.wait_for(1, limit=60)
    assert [r.status for r in got.requests] == [500, 502, 200], [r.json for r in got.requests]
    assert all(verify(secret, r.headers["tailor-signature"], r.body) for r in got.requests)
    assert got.delivered[0].json["tenant"] == "acme"
    attempts = await services.webhooks.deliveries(ADMIN, info.id)
    assert [a.attempt for a in reversed(attempts)][:2] == [1, 2]


async def test_two_servers_deliver_each_change_once_in_order(
    services, database_url, is_postgres, tmp_path
):
    if not is_postgres:
        pytest.skip("two server processes share one database on PostgreSQL only")
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    admin, _ = await services.tokens.create(Role.ADMIN, ())
    async with receiver() as got:
        got.delay = 0.05
        await services.webhooks.create(ADMIN, got.url, tenants=["acme"], private_allowed=True)
        async with (
            tailor_serve(tmp_path / "a", database_url, **ALLOW) as first,
            tailor_serve(tmp_path / "b", database_url, **ALLOW) as second,
            httpx.AsyncClient() as client,
        ):
            for value in range(40, 50):
                await set_due(client, (first, second)[value % 2], admin, value)
            await got.wait_for(10, limit=60)
    sequences = [r.json["sequence"] for r in got.requests]
    assert sequences == sorted(set(sequences)) and len(sequences) == 10
    assert got.most_in_flight == 1
