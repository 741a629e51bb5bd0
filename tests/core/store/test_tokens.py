import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.model.auth import Role
from core.model.clock import utcnow
from core.model.errors import AuthenticationError, InvalidInputError, NotFoundError
from core.store import tokens as tokens_module
from core.store.models import ApiToken
from core.store.tokens import TokenService


async def test_tokens_are_stored_hashed_and_authenticate(services, tenant):
    secret, _ = await services.tokens.create("consultant", [tenant], label="jane")
    async with services.sessions() as s:
        stored = (await s.scalars(select(ApiToken))).one()
    assert secret not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64
    principal = await services.tokens.authenticate(secret)
    assert (principal.role, principal.name, principal.tenants) == (
        Role.CONSULTANT,
        "jane",
        frozenset({tenant}),
    )


async def test_revoked_and_expired_tokens_fail(services):
    secret, info = await services.tokens.create("admin")
    await services.tokens.authenticate(secret)  # now remembered by this service
    await services.tokens.revoke(info.prefix)
    with pytest.raises(AuthenticationError, match="revoked"):
        await services.tokens.authenticate(secret)

    secret2, info2 = await services.tokens.create("admin", expires_in=timedelta(hours=1))
    await services.tokens.authenticate(secret2)
    async with services.sessions.begin() as s:
        await s.execute(
            update(ApiToken)
            .where(ApiToken.id == info2.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # a process that had not looked the token up yet sees the change at once
    with pytest.raises(AuthenticationError, match="expired"):
        await TokenService(services.sessions).authenticate(secret2)
    with pytest.raises(AuthenticationError, match="unknown token"):
        await services.tokens.authenticate("tlr_nope")


@pytest.mark.parametrize(
    ("role", "tenants", "fragment"),
    [
        ("root", (), "not a role"),
        ("consultant", (), "at least one"),
        ("app", ("a", "b"), "exactly one"),
        ("admin", ("a",), "drop --tenant"),
    ],
)
async def test_bad_token_requests(services, role, tenants, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        await services.tokens.create(role, tenants)
    assert await services.tokens.list_all() == []


async def test_token_for_unknown_tenant(services):
    with pytest.raises(NotFoundError, match="ghost"):
        await services.tokens.create("app", ["ghost"])


async def test_a_remembered_token_still_expires_on_time(services):
    secret, _ = await services.tokens.create("admin", expires_in=timedelta(seconds=0.4))
    await services.tokens.authenticate(secret)
    await asyncio.sleep(0.5)
    with pytest.raises(AuthenticationError, match="expired"):
        await services.tokens.authenticate(secret)


async def test_revocation_elsewhere_applies_within_the_stated_bound(services, monkeypatch):
    monkeypatch.setattr(tokens_module, "TOKEN_CACHE_SECONDS", 0.3)
    secret, info = await services.tokens.create("admin")
    await services.tokens.authenticate(secret)
    other_process = TokenService(services.sessions)
    await other_process.revoke(info.prefix)
    # still remembered here, for at most TOKEN_CACHE_SECONDS
    assert (await services.tokens.authenticate(secret)).role is Role.ADMIN
    await asyncio.sleep(0.35)
    with pytest.raises(AuthenticationError, match="revoked"):
        await services.tokens.authenticate(secret)
