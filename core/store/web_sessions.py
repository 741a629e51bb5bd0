"""Console sign-in sessions, stored server-side.

A person signs in once by pasting an API token; the server answers with a random
session secret (kept by the browser in an HttpOnly cookie, stored here only as a
hash) and a CSRF token for the forms. Every request re-checks the token the
session was made with, in the same statement that finds the session, so revoking
or expiring the token ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal
from core.model.clock import utcnow
from core.model.errors import AuthenticationError
from core.store.models import ApiToken, WebSession, aware
from core.store.tokens import hash_token, principal_of

#: how long a console session lives (never longer than its token)
SESSION_TTL = timedelta(hours=8)


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    csrf: str
    expires_at: datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class WebSessionService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], ttl: timedelta = SESSION_TTL
    ) -> None:
        self._sessions = sessions
        self.ttl = ttl

    async def sign_in(self, token_secret: str) -> tuple[str, SignedIn]:
        """``(session secret, signed in)`` for a valid API token; the token's own
        checks (unknown, revoked, expired) raise :class:`AuthenticationError`."""
        token_secret = token_secret.strip()
        if not token_secret:
            raise AuthenticationError("paste an API token to sign in (tailor token create)")
        async with self._sessions() as session:
            token = await session.scalar(
                select(ApiToken).where(ApiToken.token_hash == hash_token(token_secret))
            )
        principal = principal_of(token)
        assert token is not None
        expires = utcnow() + self.ttl
        token_expiry = aware(token.expires_at)
        if token_expiry is not None:
            expires = min(expires, token_expiry)
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            # sessions that ended on their own are dropped here, not by a scheduler
            await session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
            session.add(
                WebSession(
                    session_hash=_hash(secret), token_id=token.id, csrf=csrf, expires_at=expires
                )
            )
        return secret, SignedIn(principal, csrf, expires)

    async def authenticate(self, secret: str) -> SignedIn:
        """The session of a cookie value: one statement (session joined with its token)."""
        if not secret:
            raise AuthenticationError("not signed in")
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(WebSession, ApiToken)
                    .join(ApiToken, ApiToken.id == WebSession.token_id)
                    .where(WebSession.session_hash == _hash(secret))
                )
            ).first()
        if row is None:
            raise AuthenticationError("your session ended; sign in again")
        web, token = row
        expires = aware(web.expires_at)
        if expires is None or expires <= utcnow():
            raise AuthenticationError("your session expired; sign in again")
        return SignedIn(principal_of(token), web.csrf, expires)

    async def sign_out(self, secret: str) -> None:
        """End the session (unknown secrets are ignored: signing out twice is fine)."""
        if not secret:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                delete(WebSession).where(WebSession.session_hash == _hash(secret))
            )
