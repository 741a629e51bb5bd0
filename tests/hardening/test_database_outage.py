"""A database that is down or unreachable gives ``503`` with ``Retry-After`` and
the code ``UNAVAILABLE``, never a masked error; the same app answers again once
the database is back (no restart).

Real outages only: backends terminated on a scratch PostgreSQL database, a port
nothing listens on, a SQLite file in a directory that does not exist yet."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.http.app import AppOptions, create_app
from core.model.auth import Role
from core.store.db import upgrade
from core.store.services import Services
from tests.conftest import fresh_runtime, scratch_postgres_database
from tests.sample import ACME

QUERY = {"query": "{ tenants { slug } }"}


async def _client(services: Services) -> tuple[httpx.AsyncClient, object]:
    plugins = fresh_runtime(ACME)
    app = create_app(services, AppOptions(plugins=plugins), product=ACME)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test")
    return client, plugins


def assert_unavailable(response: httpx.Response) -> None:
    """503, Retry-After, and a GraphQL error body whose code is UNAVAILABLE."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE", body
    assert error["extensions"].get("retryAfter", 5) == 5
    assert "Unexpected error" not in error["message"] and "retry" in error["message"]
    assert "127.0.0.1" not in response.text and "postgres" not in response.text


def _postgres_base() -> str | None:
    base = os.environ.get("TAILOR_TEST_DATABASE_URL", "")
    return base if base.startswith("postgres") else None


@pytest_asyncio.fixture
async def scratch_postgres() -> AsyncIterator[tuple[str, str]]:
    """A migrated PostgreSQL database of this test's own (its backends get killed)."""
    base = _postgres_base()
    if base is None:
        pytest.skip("needs TAILOR_TEST_DATABASE_URL=postgresql+asyncpg://...")
    async with scratch_postgres_database(base, "tailor_outage") as found:
        yield found


async def _terminate_backends(base: str, name: str) -> int:
    """Kill every connection to ``name`` from another connection, as an operator
    restarting PostgreSQL (or a failover) would."""
    admin = create_async_engine(
        make_url(base).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as conn:
            killed = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            return int(killed.scalar_one())
    finally:
        await admin.dispose()


async def test_terminated_postgres_backends_give_503_then_recover(scratch_postgres, caplog):
    url, name = scratch_postgres
    services = Services.from_url(url)
    secret, _ = await services.tokens.create(Role.ADMIN, (), label="outage test")
    headers = {"Authorization": f"Bearer {secret}"}
    client, plugins = await _client(services)
    try:
        before = await client.post("/graphql", json=QUERY, headers=headers)
        assert before.status_code == 200 and before.json() == {"data": {"tenants": []}}

        assert await _terminate_backends(_postgres_base() or "", name) >= 1
        with caplog.at_level(logging.WARNING, logger="tailor.errors"):
            during = await client.post("/graphql", json=QUERY, headers=headers)
        assert_unavailable(during)
        # the resolver's failure: a warning naming the outage, no masked error
        assert any("database unavailable" in r.getMessage() for r in caplog.records)
        assert not any("unexpected error" in r.getMessage() for r in caplog.records)

        # the same app, no restart: the broken pool was replaced
        after = await client.post("/graphql", json=QUERY, headers=headers)
        assert after.status_code == 200, after.text
        assert after.json() == {"data": {"tenants": []}}
        assert (await client.get("/healthz")).status_code == 200
    finally:
        await client.aclose()
        await plugins.close()  # type: ignore[attr-defined]
        await services.close()


async def test_a_postgres_server_that_does_not_listen_gives_503_everywhere():
    # nothing listens on port 1: connect is refused (asyncpg raises it unwrapped)
    services = Services.from_url("postgresql+asyncpg://tailor@127.0.0.1:1/none")
    client, plugins = await _client(services)
    try:
        for accept in ("application/json", "application/graphql-response+json"):
            response = await client.post(
                "/graphql",
                json=QUERY,
                headers={"Authorization": "Bearer tlr_whatever", "Accept": accept},
            )
            assert_unavailable(response)
            assert response.headers["content-type"].startswith(accept)
        health = await client.get("/healthz")
        assert health.status_code == 503 and health.headers["retry-after"] == "5"
        assert health.json() == {"status": "unavailable"}
    finally:
        await client.aclose()
        await plugins.close()  # type: ignore[attr-defined]
        await services.close()


async def test_a_missing_sqlite_file_gives_503_then_the_app_recovers(tmp_path: Path):
    """The SQLite outage: the database file's directory is gone (a detached volume).
    Once it is back (here: created and migrated), the same app answers."""
    path = tmp_path / "volume" / "tailor.db"
    url = f"sqlite+aiosqlite:///{path}"
    services = Services.from_url(url)
    client, plugins = await _client(services)
    try:
        response = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": "Bearer tlr_whatever"}
        )
        assert_unavailable(response)
        assert str(tmp_path) not in response.text
        assert (await client.get("/healthz")).status_code == 503
        # the console and /metrics read the database too: 503, not 500
        metrics = await client.get("/metrics", headers={"Authorization": "Bearer tlr_x"})
        assert metrics.status_code == 503 and metrics.headers["retry-after"] == "5"

        path.parent.mkdir()
        await upgrade(url)
        secret, _ = await services.tokens.create(Role.ADMIN, (), label="back")
        back = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {secret}"}
        )
        assert back.status_code == 200 and back.json() == {"data": {"tenants": []}}
        assert (await client.get("/healthz")).status_code == 200
        # the outage shows in the metrics as 503s, not as 500s
        scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
        assert scraped.status_code == 200
        lines = scraped.text.splitlines()
        assert any('route="/graphql"' in x and 'status="503"' in x for x in lines), scraped.text
        assert any('route="/metrics"' in x and 'status="503"' in x for x in lines)
        assert not any('status="500"' in x for x in lines)
    finally:
        await client.aclose()
        await plugins.close()  # type: ignore[attr-defined]
        await services.close()


async def test_the_invalidation_listener_reconnects_after_its_backend_is_killed(
    scratch_postgres,
):
    """Cross-worker invalidation survives an outage: the LISTEN connection comes
    back by itself, says "everything changed" once (a NOTIFY sent meanwhile is
    lost), and hears notifications again."""
    import asyncio

    from core.store.invalidation import REGISTRY, Listener

    url, name = scratch_postgres
    heard: list[str] = []
    listener = Listener(url, heard.append)
    listener.RETRY_SECONDS = 0.1
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        await listener.start()
        assert listener.listening
        assert await _terminate_backends(_postgres_base() or "", name) >= 1
        for _ in range(100):
            if heard == [REGISTRY] and listener.listening:
                break
            await asyncio.sleep(0.05)
        assert heard == [REGISTRY] and listener.listening
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_notify('tailor_invalidate', 'after')"))
        for _ in range(100):
            if "after" in heard:
                break
            await asyncio.sleep(0.05)
        assert heard == [REGISTRY, "after"]
    finally:
        await listener.stop()
        await engine.dispose()
    assert not listener.listening
