"""API tokens: created once (the secret is shown once), stored hashed, revocable,
optionally expiring."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import OPTIONALLY_SCOPED_ROLES, TENANT_SCOPED_ROLES, Principal, Role
from core.model.clock import utcnow
from core.model.customizations import SLUG_PATTERN
from core.model.errors import AuthenticationError, InvalidInputError, NotFoundError
from core.model.origins import parse_origins
from core.store.models import ApiToken, AppRow, Tenant, aware

TOKEN_PREFIX = "tlr_"
#: characters of a token kept (and shown) to name it
PREFIX_LENGTH = 12
#: seconds a looked-up token is trusted without asking the database again: the
#: bound on how late a revocation made by another process takes effect here
TOKEN_CACHE_SECONDS = 2.0
#: tokens remembered per process
MAX_CACHED_TOKENS = 10_000
#: the longest expiry a token may get
MAX_EXPIRY_DAYS = 36_500


@dataclass(frozen=True)
class TokenInfo:
    id: int
    prefix: str
    label: str
    role: Role
    tenants: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    #: app tokens: the web origins it allows (CORS), and the app it belongs to
    origins: tuple[str, ...] = ()
    app: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()

    @property
    def state(self) -> str:
        """``revoked``, ``expired`` or ``active``: whether it authenticates now."""
        if self.revoked:
            return "revoked"
        return "expired" if self.expired else "active"


def expiry(days: float) -> timedelta:
    """A token's lifetime from a number of days, refused clearly unless it is a
    finite number in (0, MAX_EXPIRY_DAYS]."""
    if not (isinstance(days, int | float) and math.isfinite(days) and 0 < days):
        raise InvalidInputError("expires-in-days", f"must be a positive number of days, not {days}")
    if days > MAX_EXPIRY_DAYS:
        raise InvalidInputError(
            "expires-in-days", f"must be at most {MAX_EXPIRY_DAYS} (100 years), not {days}"
        )
    return timedelta(days=days)


def _article(role: Role) -> str:
    return "an" if role.value[0] in "aeiou" else "a"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def principal_of(token: ApiToken | None) -> Principal:
    """The principal a stored token stands for, or why it stands for none
    (unknown, revoked, expired): the one check of bearer tokens and console
    sessions alike."""
    if token is None:
        raise AuthenticationError("unknown token; create one with 'tailor token create'")
    if token.revoked_at is not None:
        raise AuthenticationError(f"token {token.prefix}... was revoked")
    expires = aware(token.expires_at)
    if expires is not None and expires <= utcnow():
        raise AuthenticationError(f"token {token.prefix}... expired at {expires.isoformat()}")
    return Principal(
        role=Role(token.role),
        name=token.label,
        tenants=frozenset(token.tenants or ()),
        origins=frozenset(token.origins or ()),
        app=token.app,
        identity=f"token:{token.id}",
    )


class TokenService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        #: token hash -> (principal, expiry, monotonic time looked up, prefix)
        self._known: dict[str, tuple[Principal, datetime | None, float, str]] = {}
        #: (origins some active app token allows, monotonic time read)
        self._origins: tuple[frozenset[str], float] | None = None
        #: token id -> (principal, token hash, expiry, monotonic time looked up,
        #: prefix): the holders of stream tickets
        self._holders: dict[int, tuple[Principal, str, datetime | None, float, str]] = {}

    async def create(
        self,
        role: Role | str,
        tenants: Sequence[str] = (),
        label: str = "",
        expires_in: timedelta | None = None,
        origins: Sequence[str] = (),
        app: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """Return ``(secret, info)``. The secret is not stored and cannot be shown
        again. An ``app`` token may allow web ``origins`` (CORS) and name the
        front-end ``app`` it belongs to."""
        try:
            role = Role(role)
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            raise InvalidInputError("role", f"{role!r} is not a role ({allowed})") from None
        scope = tuple(dict.fromkeys(tenants))
        if role in TENANT_SCOPED_ROLES and not scope:
            raise InvalidInputError(
                "tenants", f"{_article(role)} {role.value} token needs at least one --tenant"
            )
        if role is Role.APP and len(scope) != 1:
            raise InvalidInputError("tenants", "an app token is scoped to exactly one tenant")
        if role not in TENANT_SCOPED_ROLES | OPTIONALLY_SCOPED_ROLES and scope:
            raise InvalidInputError(
                "tenants", f"{_article(role)} {role.value} token sees every tenant; drop --tenant"
            )
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInputError("expires_in", "must be positive")
        if (origins or app is not None) and role is not Role.APP:
            raise InvalidInputError(
                "origin" if origins else "app",
                f"only an app token allows origins or names an app; a {role.value} token "
                "is not used from a browser: drop --origin and --app",
            )
        web_origins = parse_origins(tuple(origins))
        if app is not None and not SLUG_PATTERN.match(app):
            raise InvalidInputError(
                "app",
                f"{app!r} is not an app name: lower-case letters, digits and '-', "
                "2 to 63 characters, starting with a letter",
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            if scope:
                found = set(
                    (await session.scalars(select(Tenant.slug).where(Tenant.slug.in_(scope)))).all()
                )
                missing = [t for t in scope if t not in found]
                if missing:
                    raise NotFoundError("tenant", ", ".join(missing))
            if app is not None:
                owner = await session.scalar(
                    select(Tenant.slug)
                    .join(AppRow, AppRow.tenant_id == Tenant.id)
                    .where(AppRow.name == app)
                )
                if owner is None:
                    raise NotFoundError("app", app, "register it: tailor app register NAME")
                if owner not in scope:
                    raise InvalidInputError(
                        "app", f"app {app!r} belongs to another tenant than the token's"
                    )
            token = ApiToken(
                token_hash=hash_token(secret),
                prefix=secret[:PREFIX_LENGTH],
                label=label or f"{role.value} token",
                role=role.value,
                tenants=list(scope),
                expires_at=utcnow() + expires_in if expires_in else None,
                origins=list(web_origins),
                app=app,
            )
            session.add(token)
            await session.flush()
            info = _info(token)
        if web_origins:
            self._origins = None
        return secret, info

    async def authenticate(self, secret: str) -> Principal:
        """The principal of a token. Known, valid tokens are remembered for
        :data:`TOKEN_CACHE_SECONDS`: expiry is still checked on every call, a
        revocation through this service applies at once, and one made elsewhere
        (another worker, the CLI) within that bound."""
        if not secret:
            raise AuthenticationError("missing bearer token: send 'Authorization: Bearer <token>'")
        digest = hash_token(secret)
        now = time.monotonic()
        cached = self._known.get(digest)
        if cached is not None and now - cached[2] < TOKEN_CACHE_SECONDS:
            principal, expires, _at, prefix = cached
            if expires is not None and expires <= utcnow():
                self._known.pop(digest, None)
                raise AuthenticationError(f"token {prefix}... expired at {expires.isoformat()}")
            return principal
        async with self._sessions() as session:
            token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        principal = principal_of(token)
        assert token is not None  # principal_of refuses an unknown token
        expires = aware(token.expires_at)
        if len(self._known) >= MAX_CACHED_TOKENS:
            self._known.clear()
        self._known[digest] = (principal, expires, now, token.prefix)
        return principal

    async def ticket_holder(self, token_id: int) -> tuple[Principal, str]:
        """The principal of token ``token_id`` and its stored hash (the key of its
        stream tickets, :mod:`core.model.stream_tickets`), or why it stands for
        none (unknown, revoked, expired: :func:`principal_of`). Remembered for
        :data:`TOKEN_CACHE_SECONDS`, as :meth:`authenticate` does: the many streams
        of one app token cost one statement that often, not one each."""
        now = time.monotonic()
        cached = self._holders.get(token_id)
        if cached is not None and now - cached[3] < TOKEN_CACHE_SECONDS:
            principal, digest, expires, _at, prefix = cached
            if expires is not None and expires <= utcnow():
                self._holders.pop(token_id, None)
                raise AuthenticationError(f"token {prefix}... expired at {expires.isoformat()}")
            return principal, digest
        async with self._sessions() as session:
            token = await session.scalar(select(ApiToken).where(ApiToken.id == token_id))
        if token is None:
            raise AuthenticationError("the token of this stream ticket no longer exists")
        principal = principal_of(token)
        if len(self._holders) >= MAX_CACHED_TOKENS:
            self._holders.clear()
        self._holders[token_id] = (
            principal,
            token.token_hash,
            aware(token.expires_at),
            now,
            token.prefix,
        )
        return principal, token.token_hash

    async def revoke(self, prefix: str) -> tuple[TokenInfo, bool]:
        """Revoke the token named by its prefix (as ``list`` shows it) or by the
        whole secret. Returns its info, and whether this call revoked it (False:
        it already was, and keeps the time it was revoked at). Messages never
        repeat more of the argument than a prefix."""
        shown = prefix[:PREFIX_LENGTH] + ("..." if len(prefix) > PREFIX_LENGTH else "")
        if len(prefix) > PREFIX_LENGTH:
            # longer than any prefix: the whole secret (or nothing)
            condition = ApiToken.token_hash == hash_token(prefix)
        else:
            # '%' and '_' are characters of the prefix, not wildcards
            condition = ApiToken.prefix.startswith(prefix, autoescape=True)
        async with self._sessions.begin() as session:
            tokens = (await session.scalars(select(ApiToken).where(condition))).all()
            if len(tokens) != 1:
                raise NotFoundError(
                    "token",
                    shown,
                    "give the token's prefix as 'tailor token list' shows it"
                    if not tokens
                    else "the prefix matches several tokens; give more of it",
                )
            token = tokens[0]
            self._known.pop(token.token_hash, None)
            self._holders.pop(token.id, None)
            self._origins = None
            if token.revoked_at is not None:
                return _info(token), False
            await session.execute(
                update(ApiToken)
                .where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            await session.refresh(token)
            return _info(token), True

    async def allowed_origins(self) -> frozenset[str]:
        """The web origins some active (unrevoked, unexpired) app token allows:
        what a CORS preflight, which carries no token, is answered for. One
        statement, at most every :data:`TOKEN_CACHE_SECONDS` per process (the
        bound on how late another process's new token or revocation applies
        here; this process's own apply at once)."""
        now = time.monotonic()
        if self._origins is not None and now - self._origins[1] < TOKEN_CACHE_SECONDS:
            return self._origins[0]
        query = select(ApiToken.origins, ApiToken.expires_at).where(
            ApiToken.role == Role.APP.value, ApiToken.revoked_at.is_(None)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        moment = utcnow()
        allowed = frozenset(
            origin
            for origins, expires in rows
            if expires is None or (aware(expires) or moment) > moment
            for origin in origins or ()
        )
        self._origins = (allowed, now)
        return allowed

    async def list_all(self) -> list[TokenInfo]:
        async with self._sessions() as session:
            tokens = (await session.scalars(select(ApiToken).order_by(ApiToken.id))).all()
        return [_info(t) for t in tokens]


def _info(token: ApiToken) -> TokenInfo:
    return TokenInfo(
        token.id,
        token.prefix,
        token.label,
        Role(token.role),
        tuple(token.tenants or ()),
        aware(token.created_at) or utcnow(),
        aware(token.expires_at),
        aware(token.revoked_at),
        tuple(token.origins or ()),
        token.app,
    )
