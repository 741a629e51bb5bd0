"""Probe (issue 13): ``tailor token`` refuses a bad expiry clearly, lists
expired tokens as expired, takes '%' and '_' literally, keeps the first
revocation time, and never echoes a secret given to ``revoke``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.model.clock import utcnow
from core.store.models import ApiToken
from tests.cli.test_cli import tailor
from tests.conftest import ADMIN


def run(database_url, tmp_path, *args):
    return tailor("token", *args, "--database-url", database_url, cwd=tmp_path, timeout=60)


@pytest.mark.parametrize("days", ["nan", "inf", "-1", "0", "1e12"])
def test_a_bad_expiry_is_refused_clearly(database_url, tmp_path, days):
    result = run(database_url, tmp_path, "create", "--role", "admin", "--expires-in-days", days)
    assert result.returncode == 2, result.stderr
    assert "expires-in-days" in result.stderr and "Traceback" not in result.stderr


async def test_list_shows_expired_tokens_as_expired(services, database_url, tmp_path):
    _, info = await services.tokens.create("admin", label="stale", expires_in=timedelta(days=1))
    await services.tokens.create("admin", label="fresh")
    async with services.sessions.begin() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == info.id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    listed = run(database_url, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("│")[2].strip(): line for line in listed.stdout.splitlines() if "│" in line}
    assert rows["stale"].rstrip(" │").endswith("expired"), listed.stdout
    assert rows["fresh"].rstrip(" │").endswith("active"), listed.stdout


@pytest.mark.parametrize("pattern", ["%", "tlr_%", "____"])
async def test_revoke_takes_percent_and_underscore_literally(
    services, database_url, tmp_path, pattern
):
    await services.tokens.create("admin", label="only")
    result = run(database_url, tmp_path, "revoke", pattern)
    assert result.returncode == 2, result.stdout
    assert "not found" in result.stderr
    async with services.sessions() as session:
        assert (await session.scalar(select(ApiToken.revoked_at))) is None


async def test_revoking_twice_keeps_the_first_time(services, database_url, tmp_path):
    _, info = await services.tokens.create("admin", label="twice")
    first = run(database_url, tmp_path, "revoke", info.prefix)
    assert first.returncode == 0 and "revoked" in first.stdout
    async with services.sessions() as session:
        at = await session.scalar(select(ApiToken.revoked_at))
    second = run(database_url, tmp_path, "revoke", info.prefix)
    assert second.returncode == 0, second.stderr
    assert "already revoked" in second.stdout
    async with services.sessions() as session:
        assert await session.scalar(select(ApiToken.revoked_at)) == at


async def test_revoking_with_the_whole_secret_never_echoes_it(services, database_url, tmp_path):
    secret, info = await services.tokens.create("admin", label="whole")
    result = run(database_url, tmp_path, "revoke", secret)
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert info.prefix in result.stdout
    with pytest.raises(Exception, match="revoked"):
        await services.tokens.authenticate(secret)
    unknown = secret[:-4] + "XXXX"
    missing = run(database_url, tmp_path, "revoke", unknown)
    assert missing.returncode == 2
    assert unknown not in missing.stdout + missing.stderr


async def test_an_app_token_allows_origins_and_names_its_app(
    services, tenant, database_url, tmp_path
):
    await services.apps.register(ADMIN, "shop-front", tenant)  # an app token names a known app
    made = run(
        database_url,
        tmp_path,
        *("create", "--role", "app", "--tenant", tenant, "--app", "shop-front"),
        *("--origin", "https://Shop.Example:443", "--origin", "http://localhost:3000"),
    )
    assert made.returncode == 0, made.stderr
    said = " ".join(made.stderr.split())  # (the console wraps long lines)
    assert "origins: https://shop.example, http://localhost:3000" in said
    secret = made.stdout.strip()
    principal = await services.tokens.authenticate(secret)
    assert principal.origins == {"https://shop.example", "http://localhost:3000"}
    assert principal.app == "shop-front"
    listed = run(database_url, tmp_path, "list")
    assert "https://shop.example" in listed.stdout and "shop-front" in listed.stdout
    assert await services.tokens.allowed_origins() == principal.origins


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("--role", "consultant", "--tenant", "acme", "--origin", "https://a.example"),
            "only an app token",
        ),
        (("--role", "admin", "--app", "shop"), "only an app token"),
        (("--role", "app", "--tenant", "acme", "--origin", "*"), "name each origin"),
        (("--role", "app", "--tenant", "acme", "--origin", "https://a.example/x"), "path"),
        (("--role", "app", "--tenant", "acme", "--app", "Shop!"), "not an app name"),
    ],
)
async def test_bad_origins_and_apps_are_refused_and_nothing_is_made(
    services, tenant, database_url, tmp_path, args, says
):
    result = run(database_url, tmp_path, "create", *args)
    assert result.returncode == 2, result.stdout
    assert "error" in result.stderr and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert await services.tokens.list_all() == []
