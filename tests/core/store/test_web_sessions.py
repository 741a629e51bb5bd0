"""Console sessions: stored hashed, expiring, ended with their token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.model.errors import AuthenticationError
from core.store.models import WebSession
from core.store.web_sessions import WebSessionService


async def count(services) -> int:
    async with services.sessions() as session:
        return await session.scalar(select(func.count()).select_from(WebSession))


async def test_sessions_expire_and_end_with_their_token(services):
    token, info = await services.tokens.create("release_manager", label="rm")
    secret, who = await services.web_sessions.sign_in(token)
    assert who.principal.name == "rm" and len(who.csrf) > 20
    async with services.sessions() as session:
        stored = await session.scalar(select(WebSession.session_hash))
    assert secret not in stored and token not in stored  # only a hash is kept
    assert (await services.web_sessions.authenticate(secret)).csrf == who.csrf

    expired = WebSessionService(services.sessions, ttl=timedelta(seconds=-1))
    old, _ = await expired.sign_in(token)
    with pytest.raises(AuthenticationError, match="expired"):
        await expired.authenticate(old)
    assert await count(services) == 2
    await services.web_sessions.sign_in(token)  # drops the expired one
    assert await count(services) == 2

    await services.tokens.revoke(info.prefix)
    with pytest.raises(AuthenticationError, match="was revoked"):
        await services.web_sessions.authenticate(secret)
    with pytest.raises(AuthenticationError, match="was revoked"):
        await services.web_sessions.sign_in(token)
    with pytest.raises(AuthenticationError, match="your session ended"):
        await services.web_sessions.authenticate("made-up")
