"""Shared fixtures: a real database (SQLite file, or PostgreSQL when
TAILOR_TEST_DATABASE_URL points at one), migrated with Alembic, emptied between
tests; the real ASGI app behind httpx; tokens for each role."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import AppOptions, create_app
from core.auth import Principal, Role
from core.bootstrap import sync_product_releases
from core.db import upgrade
from core.models import Base
from core.services import Services
from plugins.catalog import tailor_extension_points
from tests.sample import ACME

ADMIN = Principal.system("test-admin")

#: secret settings are encrypted at rest: the suite runs with a key of its own
os.environ.setdefault("TAILOR_SECRET_KEY", Fernet.generate_key().decode())


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
    parsed = make_url(base).set(drivername="postgresql+asyncpg")
    name = f"tailor_test_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(parsed, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = parsed.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url)
        yield url
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


@pytest_asyncio.fixture
async def bare_services(database_url: str) -> AsyncIterator[Services]:
    """Services on an empty (migrated) database."""
    services = Services.from_url(database_url)
    await _empty(services)
    try:
        yield services
    finally:
        await services.close()


@pytest_asyncio.fixture
async def services(bare_services: Services) -> Services:
    """Services with the product's releases registered."""
    await sync_product_releases(bare_services, ACME, tailor_extension_points)
    return bare_services


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
    app = create_app(services, AppOptions(demo=True), product=ACME)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as client:
        yield Api(client, tokens)
