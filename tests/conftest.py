"""Shared fixtures: a real database (SQLite file, or PostgreSQL when
TAILOR_TEST_DATABASE_URL points at one), migrated with Alembic, emptied between
tests; the real ASGI app behind httpx; tokens for each role.

Setting up a state through the services (registering the product's releases:
~240 definition rows; seeding the demo) is done once per session: the rows it
leaves are kept in memory (:class:`Snapshot`) and each later test that asks for
the same state gets exactly those rows written back into its emptied database
(:func:`restore_or_build`). A test's writes never reach a snapshot: it is taken
right after the state is built, before any test uses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.http.app import AppOptions, create_app
from core.model.auth import Principal, Role
from core.model.product import Product
from core.store.bootstrap import sync_product_releases
from core.store.db import upgrade
from core.store.models import Base
from core.store.services import Services
from plugins.catalog import Catalog, tailor_extension_points
from plugins.loading import discover
from plugins.runtime.runner import Inspection, PluginRuntime, RuntimeOptions
from tests.sample import ACME

ADMIN = Principal.system("test-admin")

#: secret settings are encrypted at rest: the suite runs with a key of its own
os.environ.setdefault("TAILOR_SECRET_KEY", Fernet.generate_key().decode())
#: published versions are materialized in a cache of the suite's own, never in the
#: working directory
os.environ.setdefault("TAILOR_CACHE_DIR", tempfile.mkdtemp(prefix="tailor-test-cache-"))


def _base_url() -> str | None:
    return os.environ.get("TAILOR_TEST_DATABASE_URL")


@pytest_asyncio.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh, migrated database for this test session."""
    base = _base_url()
    if not base or base.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'tailor.db'}"
        await upgrade(url)
        yield url
        return
    async with scratch_postgres_database(base, "tailor_test") as (url, _name):
        yield url


@contextlib.asynccontextmanager
async def scratch_postgres_database(base: str, prefix: str) -> AsyncIterator[tuple[str, str]]:
    """A new, migrated PostgreSQL database on the server of ``base`` (its URL and
    name), dropped at the end whatever happened to its connections."""
    parsed = make_url(base).set(drivername="postgresql+asyncpg")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(parsed, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = parsed.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url)
        yield url, name
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


async def _empty(services: Services) -> None:
    async with services.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    """Every row of every table (by primary key), and what built them returned."""

    rows: dict[str, list[dict[str, Any]]]
    result: Any = None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(self.rows.items())).encode()).hexdigest()


#: (database url, state name, fingerprint of the state it was built from) -> the
#: state built; this session's
_SNAPSHOTS: dict[tuple[str, str, str], Snapshot] = {}


async def _capture(engine: AsyncEngine, result: Any = None) -> Snapshot:
    rows: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            query = table.select().order_by(*table.primary_key.columns)
            found = (await conn.execute(query)).mappings().all()
            if found:
                rows[table.name] = [dict(r) for r in found]
    return Snapshot(rows, result)


async def _restore(engine: AsyncEngine, snapshot: Snapshot) -> None:
    """Replace the database's rows with the snapshot's, in one transaction (ids,
    timestamps and hashes as they were). New ids still come after them: a
    PostgreSQL sequence never goes back, SQLite takes the largest id plus one."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # rows written back as they were, as a restore does: no trigger runs
            # (the feed's would append the audit entries again: core.store.feed)
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
        for table in Base.metadata.sorted_tables:
            rows = snapshot.rows.get(table.name)
            if rows:
                await conn.execute(table.insert(), rows)


async def restore_or_build(
    services: Services, name: str, build: Callable[[], Awaitable[T]], *, from_empty: bool = False
) -> T:
    """Bring the database into the state ``build`` makes from the current one
    (``from_empty``: from an empty database, whatever is in it now): the first
    time this session, by running ``build`` and keeping a snapshot of what it
    left; afterwards by writing the snapshot's rows back. A snapshot is only
    reused from the very same starting state (every row alike: ``name`` and the
    starting rows' fingerprint are its key), so a test that starts from other
    rows (random tokens, say) simply builds its own. Returns what ``build``
    returned (the same object each time: treat it as read-only)."""
    engine = services.engine
    start = "empty" if from_empty else (await _capture(engine)).fingerprint
    key = (engine.url.render_as_string(hide_password=False), name, start)
    snapshot = _SNAPSHOTS.get(key)
    if snapshot is None:
        if from_empty:
            await _empty(services)
        result = await build()
        _SNAPSHOTS[key] = await _capture(engine, result)
        return result
    await _restore(engine, snapshot)
    # what the services' listeners cache was read before the rows changed
    services.registry.changed_elsewhere()
    return cast(T, snapshot.result)


async def demo_with_samples(services: Services) -> Any:
    """The demo seeded, the planned releases registered and the sample
    customizations published (from the registered state); returns the publish
    report."""

    async def seed() -> Any:
        from api.cli.customization import publish_demo_customizations
        from core.store.bootstrap import register_planned_releases
        from core.store.demo import seed_demo

        await seed_demo(services, ACME, tailor_extension_points)
        await register_planned_releases(services, ACME)
        return await publish_demo_customizations(services, ACME)

    return await restore_or_build(services, "demo, planned, samples published", seed)


#: (product, release, customizations found) -> what checking them found; this session's
_INSPECTIONS: dict[tuple[str, str | None, tuple[Any, ...]], Inspection] = {}


def fresh_runtime(product: Product, options: RuntimeOptions | None = None) -> PluginRuntime:
    """What ``create_app`` loads when given no runtime (``PluginRuntime.load``): a
    new runtime, no worker started, no state shared with any other. Checking the
    customization packages on disk (a worker importing each one, ~0.3 s) is done
    once per session for the same packages; each runtime gets its own copy."""
    options = options or RuntimeOptions()
    catalog = Catalog.for_product(product)
    sources = discover(options.directories, options.path_env, options.use_entry_points)
    key = (product.id, catalog.release, tuple(sources))
    inspection = _INSPECTIONS.get(key)
    if inspection is None:
        inspection = _INSPECTIONS[key] = PluginRuntime.inspect(options, catalog)
    return PluginRuntime.from_inspection(inspection, options, catalog)


@pytest_asyncio.fixture
async def _services(database_url: str) -> AsyncIterator[Services]:
    """Services on the session's database, as the last test left it."""
    services = Services.from_url(database_url)
    try:
        yield services
    finally:
        await services.close()


@pytest_asyncio.fixture
async def bare_services(_services: Services) -> Services:
    """Services on an empty (migrated) database."""
    await _empty(_services)
    return _services


async def registered(services: Services) -> None:
    """The product's releases registered, on an otherwise empty database (what
    the ``services`` fixture does before each test)."""
    await restore_or_build(
        services,
        "product releases",
        lambda: sync_product_releases(services, ACME, tailor_extension_points),
        from_empty=True,
    )


@pytest_asyncio.fixture
async def services(_services: Services) -> Services:
    """Services with the product's releases registered (on an otherwise empty
    database)."""
    await registered(_services)
    return _services


@pytest_asyncio.fixture
async def tenant(services: Services) -> str:
    await services.tenants.create(ADMIN, "acme", "Acme Corp", "2.0")
    return "acme"


@dataclass
class Api:
    """The real ASGI app over httpx, with a token per role."""

    client: httpx.AsyncClient
    tokens: dict[str, str]

    async def gql(
        self, query: str, variables: dict | None = None, token: str | None = "admin"
    ) -> dict:
        headers = {"Authorization": f"Bearer {self.tokens.get(token, token)}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def upload(
        self,
        query: str,
        archive: bytes | Path,
        variables: dict | None = None,
        token: str | None = "admin",
        name: str = "archive",
    ) -> dict:
        """A GraphQL multipart request (the spec's ``operations``, ``map`` and one
        file) uploading ``archive`` (zip bytes, or a package folder to zip) as the
        variable ``name``."""
        import json

        from plugins import archive as packages

        if isinstance(archive, Path):
            archive = packages.build_zip(packages.tree_from_directory(archive))
        headers = {"Authorization": f"Bearer {self.tokens.get(token, token)}"} if token else {}
        response = await self.client.post(
            "/graphql",
            data={
                "operations": json.dumps(
                    {"query": query, "variables": {**(variables or {}), name: None}}
                ),
                "map": json.dumps({"0": [f"variables.{name}"]}),
            },
            files={"0": ("package.zip", archive, "application/zip")},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def token(self, services: Services, role: str, *tenants: str) -> str:
        secret, _ = await services.tokens.create(role, tenants)
        return secret


@pytest_asyncio.fixture
async def api(services: Services, tenant: str) -> AsyncIterator[Api]:
    await services.tenants.create(ADMIN, "other", "Other Inc", "2.0")
    tokens = {}
    for role, scope in (
        (Role.ADMIN, ()),
        (Role.RELEASE_MANAGER, ()),
        (Role.CONSULTANT, (tenant,)),
        (Role.APP, (tenant,)),
        (Role.HOST, (tenant,)),
    ):
        tokens[role.value], _ = await services.tokens.create(role, scope, label=f"{role} test")
    plugins = fresh_runtime(ACME)
    app = create_app(services, AppOptions(demo=True, plugins=plugins), product=ACME)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as client:
            yield Api(client, tokens)
    finally:
        await plugins.close()
