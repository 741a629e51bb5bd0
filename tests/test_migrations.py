"""Models and migrations agree, on whichever database the suite runs on."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core.db import create_engine, head_revision
from core.models import Base


async def test_models_match_migrations(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
            current = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    assert diff == []
    assert current == head_revision()
