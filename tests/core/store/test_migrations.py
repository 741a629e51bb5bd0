"""The models and the Alembic history agree (what `alembic check` verifies)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core.store.db import create_engine, head_revision
from core.store.models import Base


async def test_models_match_migrations(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata), context.get_current_revision()

            differences, revision = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert revision == head_revision()
    assert differences == []
