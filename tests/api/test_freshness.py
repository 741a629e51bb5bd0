"""A cached answer is never older than a write that committed before the request
began, whoever wrote it: another process on the same SQLite file or PostgreSQL
database, or another engine. (Runs on the database of the test run: SQLite by
default, PostgreSQL with TAILOR_TEST_DATABASE_URL.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from urllib.parse import urlencode

import orjson
import pytest

from core.model.auth import Role
from core.store.db import count_statements, create_engine
from core.store.version_reader import VersionReader
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"
SETTINGS = """query($t: String!, $k: [String!]) { settings(tenant: $t, keys: $k) {
  ... on Settings { items { key value source } } } }"""
VARIABLES = {"t": "acme", "k": [DUE]}

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from core.model.auth import Principal
    from core.store.services import Services

    async def main(url, value):
        services = Services.from_url(url)
        try:
            await services.settings.set(Principal.system("other process"), "acme",
                                        "billing.invoice.due_days", int(value))
        finally:
            await services.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def write_in_another_process(database_url: str, value: int) -> None:
    """Set acme's due days from a separate Python process; returns once it has
    committed and exited."""
    done = subprocess.run(
        [sys.executable, "-c", WRITER, database_url, str(value)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def value_of(body: bytes) -> tuple[object, str]:
    (item,) = orjson.loads(body)["data"]["settings"]["items"]
    return item["value"], item["source"]


async def test_a_write_by_another_process_is_seen_by_the_very_next_request(
    api, services, database_url
):
    token = api.tokens["app"]
    url = "/graphql?" + urlencode({"query": SETTINGS, "variables": orjson.dumps(VARIABLES)})
    auth = {"Authorization": f"Bearer {token}"}
    first = await api.client.get(url, headers=auth)
    assert value_of(first.content) == (30, "DEFAULT")
    etag = first.headers["etag"]
    with count_statements(services.engine, keep=True) as counter:
        cached = await api.client.get(url, headers={**auth, "If-None-Match": etag})
    assert cached.status_code == 304
    assert counter.count == 1 and "data_version" in counter.statements[0]  # (read only)
    for value in (41, 42, 43):
        write_in_another_process(database_url, value)
        # the write committed before this request began: never the cached answer
        got = await api.client.get(url, headers={**auth, "If-None-Match": etag})
        assert got.status_code == 200, got.status_code
        assert value_of(got.content) == (value, "TENANT")
        assert got.headers["etag"] != etag
        etag = got.headers["etag"]
        # and the new answer is cached in turn
        again = await api.client.get(url, headers={**auth, "If-None-Match": etag})
        assert again.status_code == 304


async def test_another_engine_in_this_process_is_seen_too(api, services, database_url):
    token = api.tokens["app"]
    body = {"query": SETTINGS, "variables": VARIABLES}
    auth = {"Authorization": f"Bearer {token}"}
    first = await api.client.post("/graphql", json=body, headers=auth)
    assert value_of(first.content) == (30, "DEFAULT")
    from core.store.services import Services

    other = Services.from_url(database_url)
    try:
        for value in (50, 51):
            await other.settings.set(ADMIN, "acme", DUE, value)
            got = await api.client.post("/graphql", json=body, headers=auth)
            assert value_of(got.content) == (value, "TENANT")
        await other.settings.reset(ADMIN, "acme", DUE)
        got = await api.client.post("/graphql", json=body, headers=auth)
        assert value_of(got.content) == (30, "DEFAULT")
    finally:
        await other.close()


async def test_the_version_reader_reads_committed_versions_and_closes_with_its_engine(
    services, tenant, database_url, is_postgres
):
    engine = create_engine(database_url)
    reader = VersionReader(engine)
    assert reader.kind == ("postgresql" if is_postgres else "sqlite")
    (tenant_id, version) = (await reader.read([tenant]))[tenant]
    assert await reader.read(["nobody", tenant]) == {tenant: (tenant_id, version)}
    await services.settings.set(ADMIN, tenant, DUE, 33)  # another engine commits
    assert (await reader.read([tenant]))[tenant] == (tenant_id, version + 1)
    with count_statements(engine) as counter:
        await reader.read([tenant])
    assert counter.count == 1  # counted, though it went outside the engine
    await engine.dispose()
    # closed with the engine: later reads go through the engine, still fresh
    assert reader._sqlite is None and reader._pool is None
    await services.settings.set(ADMIN, tenant, DUE, 34)
    assert (await reader.read([tenant]))[tenant] == (tenant_id, version + 2)
    await engine.dispose()


async def test_revocation_and_rate_limits_hold_on_cached_answers(api, services):
    secret, info = await services.tokens.create(Role.APP, ["acme"])
    body = {"query": SETTINGS, "variables": VARIABLES}
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await api.client.post("/graphql", json=body, headers=auth)).status_code == 200
    assert (await api.client.post("/graphql", json=body, headers=auth)).status_code == 200
    await services.tokens.revoke(info.prefix)
    refused = await api.client.post("/graphql", json=body, headers=auth)
    assert refused.status_code == 401
    assert b"revoked" in refused.content


async def test_a_busy_side_connection_falls_back_to_the_engine(
    services, tenant, database_url, is_postgres, monkeypatch
):
    if is_postgres:
        pytest.skip("SQLite's side connection only")
    import sqlite3

    engine = create_engine(database_url)
    reader = VersionReader(engine)
    expected = await reader.read([tenant])

    def busy(_slugs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(reader, "_read_sqlite", busy)
    with count_statements(engine, keep=True) as counter:
        assert await reader.read([tenant]) == expected
    assert counter.count == 1 and "data_version" in (counter.statements or [""])[0]
    await engine.dispose()


async def test_a_side_pool_that_cannot_connect_leaves_reads_to_the_engine(
    services, tenant, database_url, is_postgres
):
    if not is_postgres:
        pytest.skip("PostgreSQL's side pool only")
    # an option of SQLAlchemy's asyncpg dialect, which asyncpg itself refuses
    engine = create_engine(database_url + "?prepared_statement_cache_size=100")
    reader = VersionReader(engine)
    with count_statements(engine, keep=True) as counter:
        versions = await reader.read([tenant])
    assert tenant in versions
    assert reader.kind == "engine"  # given up for good: one failed pool is enough
    assert counter.count == 1
    await engine.dispose()
