"""Probe (issue 13): secret settings are encrypted at rest (Fernet, keyed by
TAILOR_SECRET_KEY), rotation re-encrypts them all, and ``serve`` refuses to start
without a key when secrets are stored. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.model.errors import InvalidInputError, SecretKeyError
from core.model.secrets import SecretBox
from core.store.secret_store import count_stored_secrets, demo_key
from core.store.services import Services
from tests.cli.test_cli import tailor
from tests.conftest import ADMIN

KEY = "integrations.webhooks.signing_secret"
VALUE = "whsec-PLAINTEXT-MUST-NOT-REST-4711"

SET = (
    'mutation($v: JSON!) { setSetting(input: {tenant: "acme", '
    f'key: "{KEY}", value: $v}}) {{ __typename }} }}'
)


async def _raw_values(services: Services) -> list[str]:
    async with services.engine.connect() as conn:
        cast = "CAST(value AS TEXT)"
        return [r[0] for r in await conn.execute(text(f"SELECT {cast} FROM overrides"))]


async def test_a_secret_is_not_stored_in_plaintext(api, services, database_url, is_postgres):
    result = await api.gql(SET, {"v": VALUE})
    assert result["data"]["setSetting"]["__typename"] == "SettingChanged"
    # another environment's write and an update: every stored copy is sealed
    await services.settings.set(ADMIN, "acme", KEY, VALUE + "-prod", environment="production")
    await services.settings.set(ADMIN, "acme", KEY, VALUE + "-2")
    stored = await _raw_values(services)
    assert stored and all(VALUE not in v for v in stored), stored
    if not is_postgres:
        db = Path(make_url(database_url).database)
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists():
                assert VALUE.encode() not in path.read_bytes(), path
    # the server itself (customization hooks, the host product) reads the plaintext
    resolved = await services.settings.resolve(ADMIN, "acme", "production", keys=[KEY])
    assert resolved.settings[0].value == VALUE + "-prod"
    plain = await services.settings.resolve(ADMIN, "acme", keys=[KEY])
    assert plain.settings[0].value == VALUE + "-2"
    assert await count_stored_secrets(services.sessions) == 2


async def test_without_a_key_a_secret_write_is_refused_and_nothing_written(services, tenant):
    keyless = Services.from_engine(services.engine, secrets=SecretBox())
    with pytest.raises(SecretKeyError, match="TAILOR_SECRET_KEY"):
        await keyless.settings.set(ADMIN, tenant, KEY, VALUE)
    # settings that are not secret still work without a key
    await keyless.settings.set(ADMIN, tenant, "billing.invoice.due_days", 30)
    assert await count_stored_secrets(services.sessions) == 0


def test_a_bad_key_is_refused_with_how_to_make_one():
    with pytest.raises(InvalidInputError, match="generate_key"):
        SecretBox.from_env({"TAILOR_SECRET_KEY": "not-a-key"})


async def test_rotate_reencrypts_every_secret_in_one_go(services, tenant, database_url, tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    writer = Services.from_engine(services.engine, secrets=SecretBox((old,)))
    await writer.settings.set(ADMIN, tenant, KEY, VALUE)
    await writer.settings.set(ADMIN, tenant, KEY, VALUE + "-p", environment="production")

    refused = tailor(
        "secrets", "rotate", "--database-url", database_url, cwd=tmp_path,
        env={"TAILOR_SECRET_KEY": new},
    )  # fmt: skip
    assert refused.returncode == 2 and "cannot be opened" in refused.stderr, refused.stderr
    rotated = tailor(
        "secrets", "rotate", "--database-url", database_url, cwd=tmp_path,
        env={"TAILOR_SECRET_KEY": f"{new},{old}"},
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted with the first key: 2" in rotated.stdout

    reader = Services.from_engine(services.engine, secrets=SecretBox((new,)))
    got = await reader.settings.resolve(ADMIN, tenant, "production", keys=[KEY])
    assert got.settings[0].value == VALUE + "-p"
    stale = Services.from_engine(services.engine, secrets=SecretBox((old,)))
    with pytest.raises(SecretKeyError):
        await stale.settings.resolve(ADMIN, tenant, keys=[KEY])


async def test_serve_refuses_to_start_without_a_key_when_secrets_are_stored(
    services, tenant, database_url, tmp_path
):
    env = {"TAILOR_SECRET_KEY": ""}
    # no secret stored yet: no refusal for the key (the port is taken, so it stops
    # later, at bind, but past the check)
    await services.settings.set(ADMIN, tenant, KEY, VALUE)
    result = tailor(
        "serve", "--port", "1", "--database-url", database_url, cwd=tmp_path, env=env,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "1 secret setting value(s)" in result.stderr
    assert "TAILOR_SECRET_KEY is not set" in result.stderr
    assert "Fernet.generate_key()" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_keeps_a_key_beside_its_sqlite_file(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'tailor.db'}"
    key, path = demo_key(url)
    assert path == tmp_path / "tailor.db.secret-key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert demo_key(url) == (key, path)  # kept, not remade
    SecretBox((key,)).require()
