"""What the PostgreSQL benches share: a scratch database and a secret key.

``scratch_database(url, prefix)`` makes a database beside ``url``'s (same server),
yields its URL and drops it afterwards, whatever happened; ``secret_key()`` sets
``TAILOR_SECRET_KEY`` for this process and the servers it starts, when unset (the
benches that seal webhook secrets, samples or stream tickets need one).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


def secret_key() -> str:
    """``TAILOR_SECRET_KEY``, made up for this run when unset."""
    if not os.environ.get("TAILOR_SECRET_KEY"):
        from cryptography.fernet import Fernet

        os.environ["TAILOR_SECRET_KEY"] = Fernet.generate_key().decode()
    return os.environ["TAILOR_SECRET_KEY"]


@contextlib.asynccontextmanager
async def scratch_database(url: str, prefix: str) -> AsyncIterator[str]:
    """A new database ``<prefix>_<pid>`` on ``url``'s server; its URL. Dropped on
    the way out (connections still open to it are ended)."""
    name = f"{prefix}_{os.getpid()}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
