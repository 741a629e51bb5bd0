"""The probes (issue 25): /healthz says the process is alive, /readyz that the node
should get traffic: database reachable, schema at head or at a later revision
marked compatible, customization workers started, every pinned version
materialized; 503 with the reason otherwise, and from SIGTERM on ("draining")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from api.http.app import AppOptions, create_app
from core.store.db import (
    alembic_config,
    compatible_heads,
    create_engine,
    ensure_schema,
    head_revision,
    schema_problem,
    upgrade,
)
from core.store.services import Services
from plugins.runtime import RuntimeOptions
from tests.conftest import ADMIN, fresh_runtime
from tests.sample import ACME

NAME = "due-days-42"
TOML = f"""name = "{NAME}"
version = "1.0.0"
tenants = ["acme"]
requires = ">=1.0"
"""
HOOKS = """import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    return {"billing.invoice.due_days": 42}
"""


@contextlib.asynccontextmanager
async def node(database_url: str, cache: Path):
    """The app with its lifespan running (as a server runs it), over httpx."""
    runtime = fresh_runtime(ACME, RuntimeOptions(cache_dir=cache))
    app = create_app(Services.from_url(database_url), AppOptions(plugins=runtime), product=ACME)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            yield client, runtime


async def ready(client: httpx.AsyncClient, limit: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + limit
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        assert response.status_code == 503
        assert response.json()["status"] in ("starting", "unavailable"), response.text
        assert response.json()["reason"]
        await asyncio.sleep(0.1)


async def test_ready_once_pinned_versions_are_materialized_then_draining_on_sigterm(
    services, tenant, database_url, tmp_path
):
    package = tmp_path / "src" / "due_days_42"
    package.mkdir(parents=True)
    (package / "customization.toml").write_text(TOML)
    (package / "hooks.py").write_text(HOOKS)
    source = fresh_runtime(
        ACME,
        RuntimeOptions(directories=[package.parent], path_env="", use_entry_points=False),
    )
    registration = await services.registry.publish(ADMIN, source.sources()[0].registration())
    await services.registry.set_enabled(ADMIN, tenant, NAME, True)
    cache = tmp_path / "node-cache"
    async with node(database_url, cache) as (client, _runtime):
        response = await ready(client)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ready"}
        # materialized before any request called it
        assert (cache / registration.sha256).is_dir()
        # the node is told to stop: in-flight requests finish, the proxy sends no more
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0)
        draining = await client.get("/readyz")
        assert draining.status_code == 503
        assert draining.json()["status"] == "draining"
        assert "stopping" in draining.json()["reason"]
        assert draining.headers["retry-after"]
        # alive all the same: the process is not to be restarted
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    # the app's shutdown gave the signal back to whoever had it
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


async def test_not_ready_while_the_database_is_unreachable(tmp_path):
    url = "postgresql+asyncpg://tailor@127.0.0.1:1/none"
    runtime = fresh_runtime(ACME, RuntimeOptions(cache_dir=tmp_path))
    services = Services.from_url(url)
    app = create_app(services, AppOptions(plugins=runtime), product=ACME)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        response = await client.get("/readyz")
    await services.close()
    await runtime.close()
    assert response.status_code == 503
    # anyone may ask: the reason names no server and no driver error
    assert response.json() == {"status": "unavailable", "reason": "the database is unreachable"}


async def _set_revision(database_url: str, revision: str, comment: str | None = None) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
            if comment is not None:
                await conn.execute(text(f"COMMENT ON TABLE alembic_version IS '{comment}'"))
    finally:
        await engine.dispose()


async def test_a_later_schema_is_served_only_when_marked_compatible(
    services, database_url, is_postgres, tmp_path
):
    head = head_revision()
    assert head is not None
    try:
        # a newer release migrated the database and did not mark it compatible
        await _set_revision(database_url, "9999", "" if is_postgres else None)
        async with node(database_url, tmp_path / "a") as (client, _runtime):
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["status"] == "unavailable"
            assert "at revision 9999" in response.json()["reason"]
            assert f"needs revision {head}" in response.json()["reason"]
        if not is_postgres:
            return  # one SQLite node: no rolling deploy, the schema is the head or not
        # ... and now marked compatible with this release's head, as upgrade records it
        await _set_revision(database_url, "9999", f"tailor compatible with: 0001 {head}")
        async with node(database_url, tmp_path / "b") as (client, _runtime):
            response = await ready(client)
            assert response.status_code == 200, response.text
        engine = create_engine(database_url)
        try:
            await ensure_schema(engine, migrate=False)  # serve starts too
            await upgrade(database_url)  # and leaves the newer schema alone
            async with engine.connect() as conn:
                version = await conn.execute(text("SELECT version_num FROM alembic_version"))
                assert version.scalar() == "9999"
        finally:
            await engine.dispose()
    finally:
        await _set_revision(database_url, head, "" if is_postgres else None)
        await upgrade(database_url)


def test_compatible_heads_follow_the_migrations_marked_compatible(tmp_path):
    from alembic.script import ScriptDirectory

    from core.store import db

    head = head_revision()
    # what this release's own marked migrations admit (RELEASES.toml is held to it
    # by tests/ops/test_releases.py); the migrations added below extend it
    shipped = compatible_heads()
    location = tmp_path / "migrations"
    shutil.copytree(Path(db.__file__).parent.parent.parent / "migrations", location)

    def add(revision: str, down: str, compatible: bool) -> None:
        marker = "tailor_compatible = True\n" if compatible else ""
        (location / "versions" / f"{revision}_next.py").write_text(
            f'revision = "{revision}"\ndown_revision = "{down}"\n{marker}'
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
        )

    add("9001", head, True)
    add("9002", "9001", True)
    config = alembic_config("sqlite://")
    config.set_main_option("script_location", str(location))
    assert compatible_heads(ScriptDirectory.from_config(config)) == ["9001", head, *shipped]
    add("9003", "9002", False)  # a contract migration: no earlier node runs on it
    assert compatible_heads(ScriptDirectory.from_config(config)) == []
    assert schema_problem("9002", head, ["9001", head]) is None
    problem = schema_problem("9003", head, [])
    assert problem is not None and "tailor db upgrade" in problem
