"""Secrets stored in the database (secret settings, webhook signing secrets):
finding them, and re-sealing them all with the current key (``tailor secrets
rotate``)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.secrets import SecretBox, is_sealed
from core.store.models import Override, SettingDefinitionRow, WebhookRow


async def secret_keys(session: AsyncSession) -> set[str]:
    """Keys that are secret in any release (three statements at most, whatever the size)."""
    rows = await session.execute(select(SettingDefinitionRow.key, SettingDefinitionRow.definition))
    return {key for key, definition in rows if definition.get("secret")}


async def _secret_rows(session: AsyncSession, lock: bool = False) -> list[tuple[int, object]]:
    keys = await secret_keys(session)
    query = select(Override.id, Override.key, Override.value).where(
        Override.active.is_(True), Override.value.is_not(None)
    )
    if lock:
        query = query.with_for_update()
    return [
        (row.id, row.value)
        for row in await session.execute(query)
        if row.key in keys or is_sealed(row.value)
    ]


async def count_stored_secrets(sessions: async_sessionmaker[AsyncSession]) -> int:
    """How many override values of secret settings the database holds."""
    async with sessions() as session:
        return len(await _secret_rows(session))


async def count_stored_webhook_secrets(sessions: async_sessionmaker[AsyncSession]) -> int:
    """How many webhook signing secrets (always sealed) the database holds."""
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookRow)) or 0)


async def rotate_secrets(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> int:
    """Re-seal every stored secret (secret settings, webhook signing secrets) with
    the first key of ``box`` (values stored in plaintext get sealed), in one
    transaction: all or nothing. Returns the count."""
    async with sessions.begin() as session:
        rows = await _secret_rows(session, lock=True)
        resealed = [{"id": row_id, "value": box.reseal(value)} for row_id, value in rows]
        if resealed:
            await session.execute(update(Override), resealed)
        hooks = await session.execute(select(WebhookRow.id, WebhookRow.secret).with_for_update())
        signing = [{"id": row_id, "secret": box.reseal(secret)} for row_id, secret in hooks]
        if signing:
            await session.execute(update(WebhookRow), signing)
        return len(resealed) + len(signing)


def demo_key_path(database_url: str) -> Path:
    """Where ``serve --demo`` keeps its key: beside the SQLite file, or in the
    working directory for another database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".secret-key")
    return Path.cwd() / "tailor-demo.secret-key"


def demo_key(database_url: str) -> tuple[str, Path]:
    """The demo database's key: read from its key file, or made and kept there
    (readable by the owner only, mode 0600)."""
    path = demo_key_path(database_url)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        SecretBox((key,))  # a damaged file is refused with a clear message
        return key, path
    key = Fernet.generate_key().decode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key, path
