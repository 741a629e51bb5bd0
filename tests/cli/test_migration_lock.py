"""Migrations under rolling deploys (issue 25): `tailor db upgrade` takes a
PostgreSQL advisory lock, so nodes deployed together never race: two at once on
an empty database both succeed, one after the other; one started while the lock
is held waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from core.store.db import MIGRATION_LOCK, create_engine, current_revision, head_revision
from tests.servers import TAILOR, clean_env


@contextlib.asynccontextmanager
async def empty_database(base: str) -> AsyncIterator[str]:
    parsed = make_url(base).set(drivername="postgresql+asyncpg")
    name = f"tailor_lock_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(parsed, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def db_upgrade(url: str, cwd) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *TAILOR,
        "db",
        "upgrade",
        cwd=cwd,
        env=clean_env(TAILOR_DATABASE_URL=url, TAILOR_SECRET_KEY=os.environ["TAILOR_SECRET_KEY"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.fixture
async def empty_pg(database_url, is_postgres):
    if not is_postgres:
        pytest.skip("the migration lock is PostgreSQL's (SQLite serializes its writers)")
    async with empty_database(database_url) as url:
        yield url


async def test_two_upgrades_at_once_both_succeed(empty_pg, tmp_path):
    first, second = await asyncio.gather(
        db_upgrade(empty_pg, tmp_path), db_upgrade(empty_pg, tmp_path)
    )
    outputs = await asyncio.gather(
        asyncio.wait_for(first.communicate(), 180), asyncio.wait_for(second.communicate(), 180)
    )
    for process, (out, err) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, (out + err).decode()
    said = sorted(out.decode() for out, _ in outputs)
    # one registered the product's releases; the other found them there
    assert "product releases added: none" in said[0] or "product releases added: none" in said[1]
    assert not all("product releases added: none" in s for s in said)
    engine = create_engine(empty_pg)
    try:
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version FROM releases"))).scalars().all()
        assert versions and len(versions) == len(set(versions))
    finally:
        await engine.dispose()


async def test_an_upgrade_waits_for_the_lock(empty_pg, tmp_path):
    holder = create_engine(empty_pg)
    try:
        async with holder.connect() as conn:
            await conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            waiting = await db_upgrade(empty_pg, tmp_path)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiting.wait()), 4)
            assert await current_revision(holder) is None  # nothing migrated meanwhile
            await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
            await conn.commit()
        out, err = await asyncio.wait_for(waiting.communicate(), 180)
        assert waiting.returncode == 0, (out + err).decode()
        assert await current_revision(holder) == head_revision()
    finally:
        await holder.dispose()
