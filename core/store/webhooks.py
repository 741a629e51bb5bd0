"""Webhooks: receivers of the change feed, their cursors, leases and delivery log.

Each webhook has a **cursor**, the last change feed sequence it is done with.
A worker (:mod:`api.http.webhooks`) **claims** webhooks that have changes past
their cursor with a lease (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, then the lease
columns; SQLite: one writer at a time), so two workers never deliver to one
webhook at once; then it takes the webhook's changes one at a time, in feed
order (:meth:`WebhookService.next_pending`), posts each, and **records** the
attempt (:meth:`WebhookService.record`): delivered moves the cursor on; a failure
is tried again after an exponential backoff, and after
:data:`~core.model.webhooks.MAX_ATTEMPTS` failures the webhook is **paused**
(nothing after that change is delivered out of order, and nothing is skipped)
until an admin resumes it. A change is delivered at least once: a worker that
dies after posting and before recording posts it again after its lease ends.

The signing secret is sealed with ``TAILOR_SECRET_KEY`` (:mod:`core.model.secrets`)
and shown once, at creation. The delivery log is pruned after
``TAILOR_WEBHOOK_RETENTION_DAYS``.
"""

from __future__ import annotations

import secrets as tokens
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model import webhooks as rules
from core.model.auth import Principal, Role
from core.model.clock import utcnow
from core.model.errors import InvalidInputError, NotFoundError, SecretKeyError
from core.model.secrets import ENV_VAR as SECRET_KEY_ENV
from core.model.secrets import SecretBox
from core.store.feed import ChangeEvent, append_now, change_event, settle
from core.store.models import (
    AuditEntry,
    ChangeFeedRow,
    Tenant,
    WebhookAttemptRow,
    WebhookRow,
    aware,
)

#: the audit key of a webhook: ``webhook:<id>``
WEBHOOK_KEY = "webhook:"
ACTIVE = "active"
PAUSED = "paused"
DELIVERED = "delivered"
RETRYING = "retrying"
FAILED = "failed"


@dataclass(frozen=True)
class WebhookInfo:
    id: int
    url: str
    events: tuple[str, ...]
    tenants: tuple[str, ...]
    state: str
    paused_reason: str | None
    cursor: int
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class AttemptInfo:
    id: int
    webhook: int
    delivery: str
    sequence: int
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    latency_ms: float
    outcome: str


@dataclass(frozen=True)
class Pending:
    """The next change a claimed webhook must deliver."""

    webhook: int
    url: str
    secret: str
    #: failed attempts of this change so far
    attempts: int
    event: ChangeEvent

    @property
    def delivery(self) -> str:
        """The ``Tailor-Delivery`` id: the same for every attempt of this change."""
        return f"wh{self.webhook}-{self.event.sequence}"

    def body(self) -> bytes:
        e = self.event
        return rules.body(
            delivery=self.delivery,
            sequence=e.sequence,
            tenant=e.tenant,
            environment=e.environment,
            keys=e.keys,
            action=e.action,
            actor=e.actor,
            at=e.at,
        )


def _info(row: WebhookRow) -> WebhookInfo:
    created = aware(row.created_at)
    assert created is not None
    return WebhookInfo(
        id=row.id,
        url=row.url,
        events=tuple(row.events or ()),
        tenants=tuple(row.tenants or ()),
        state=row.state,
        paused_reason=row.paused_reason,
        cursor=row.cursor,
        attempts=row.attempts,
        next_attempt_at=aware(row.next_attempt_at),
        created_at=created,
        created_by=row.created_by,
    )


def _attempt(row: WebhookAttemptRow) -> AttemptInfo:
    at = aware(row.at)
    assert at is not None
    return AttemptInfo(
        id=row.id,
        webhook=row.webhook_id,
        delivery=row.delivery,
        sequence=row.sequence,
        attempt=row.attempt,
        at=at,
        status_code=row.status_code,
        error=row.error,
        latency_ms=row.latency_ms,
        outcome=row.outcome,
    )


def require_manage_webhooks(principal: Principal) -> None:
    """Webhooks see every tenant's changes: admins only."""
    principal.require_role(Role.ADMIN, action="managing webhooks")


class WebhookService:
    """Webhooks and their delivery log (see the module's documentation)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secrets: SecretBox,
        *,
        resolver: rules.Resolver = rules.system_resolver,
    ) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._resolver = resolver

    # -- what admins do -----------------------------------------------------
    async def create(
        self,
        principal: Principal,
        url: str,
        events: Sequence[str] = (),
        tenants: Sequence[str] = (),
        *,
        private_allowed: bool | None = None,
    ) -> tuple[WebhookInfo, str]:
        """A new webhook and its signing secret (shown only now). It delivers the
        changes committed from now on."""
        require_manage_webhooks(principal)
        if not self._secrets.enabled:
            raise SecretKeyError(
                SECRET_KEY_ENV,
                f"webhook signing secrets are stored encrypted and the server has no "
                f"{SECRET_KEY_ENV}; the operator sets it (see the README, 'Secret settings')",
            )
        target = rules.parse_url(url)
        wanted = rules.check_events(events)
        slugs = tuple(dict.fromkeys(t.strip() for t in tenants if t.strip()))
        allowed = rules.allow_private() if private_allowed is None else private_allowed
        await rules.checked_address(target, private_allowed=allowed, resolver=self._resolver)
        secret = "whsec_" + tokens.token_hex(32)
        async with self._sessions.begin() as session:
            if slugs:
                known = set(
                    await session.scalars(select(Tenant.slug).where(Tenant.slug.in_(slugs)))
                )
                missing = [s for s in slugs if s not in known]
                if missing:
                    raise NotFoundError(
                        "tenant", missing[0], "list tenants with 'tailor tenant list'"
                    )
            row = WebhookRow(
                url=target.url,
                events=list(wanted),
                tenants=list(slugs),
                secret=self._secrets.seal(secret),
                created_by=principal.name,
                state=ACTIVE,
                cursor=0,
                attempts=0,
            )
            session.add(row)
            await session.flush()
            created = _audit(principal, "create_webhook", _info(row))
            session.add(created)
            await session.flush()
            # from the change that created it on: its own sequence, now (the
            # feed's order: nothing committed later can have a lower one)
            await append_now(session, [created])
            row.cursor = int(await session.scalar(select(func.max(ChangeFeedRow.sequence))) or 0)
            await session.flush()
            info = _info(row)
        return info, secret

    async def list_all(self, principal: Principal) -> list[WebhookInfo]:
        """Every webhook, oldest first (one statement)."""
        require_manage_webhooks(principal)
        async with self._sessions() as session:
            rows = await session.scalars(select(WebhookRow).order_by(WebhookRow.id))
            return [_info(r) for r in rows]

    async def delete(self, principal: Principal, webhook: int) -> WebhookInfo:
        """Delete a webhook and its delivery log; nothing more is delivered."""
        require_manage_webhooks(principal)
        async with self._sessions.begin() as session:
            row = await session.get(WebhookRow, webhook)
            if row is None:
                raise _not_found(webhook)
            info = _info(row)
            await session.delete(row)
            session.add(_audit(principal, "delete_webhook", info))
        return info

    async def resume(self, principal: Principal, webhook: int) -> WebhookInfo:
        """Resume a paused webhook: the change it failed on is tried again, anew."""
        require_manage_webhooks(principal)
        async with self._sessions.begin() as session:
            row = await session.get(WebhookRow, webhook, with_for_update=True)
            if row is None:
                raise _not_found(webhook)
            row.state = ACTIVE
            row.paused_reason = None
            row.attempts = 0
            row.next_attempt_at = None
            await session.flush()
            info = _info(row)
            session.add(_audit(principal, "resume_webhook", info))
        return info

    async def deliveries(
        self, principal: Principal, webhook: int, limit: int = 100
    ) -> list[AttemptInfo]:
        """The webhook's delivery attempts, newest first (one statement; two when
        it has none: is there such a webhook?)."""
        require_manage_webhooks(principal)
        if not 1 <= limit <= 1000:
            raise InvalidInputError("limit", "must be between 1 and 1000")
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(WebhookAttemptRow)
                    .where(WebhookAttemptRow.webhook_id == webhook)
                    .order_by(WebhookAttemptRow.id.desc())
                    .limit(limit)
                )
            )
            if not rows and await session.get(WebhookRow, webhook) is None:
                raise _not_found(webhook)
        return [_attempt(r) for r in rows]

    async def prune(self, days: int | None = None, *, now: datetime | None = None) -> int:
        """Drop attempts older than ``days`` (default ``TAILOR_WEBHOOK_RETENTION_DAYS``)."""
        cutoff = (now or utcnow()) - timedelta(days=days or rules.retention_days())
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(WebhookAttemptRow).where(WebhookAttemptRow.at < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- what a delivering worker does ----------------------------------------
    async def any_active(self) -> bool:
        """Whether any webhook is active (one statement)."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(WebhookRow.id).where(WebhookRow.state == ACTIVE).limit(1)
            )
        return found is not None

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[int]:
        """Lease up to ``limit`` active webhooks that have changes past their cursor
        and are due, to ``owner``; their ids. No write when none is due."""
        now = utcnow()
        due = (
            WebhookRow.state == ACTIVE,
            or_(WebhookRow.lease_until.is_(None), WebhookRow.lease_until < now),
            or_(WebhookRow.next_attempt_at.is_(None), WebhookRow.next_attempt_at <= now),
            exists().where(ChangeFeedRow.sequence > WebhookRow.cursor),
        )
        async with self._sessions.begin() as session:
            await settle(session)  # committed changes waiting for a sequence
            if await session.scalar(select(WebhookRow.id).where(*due).limit(1)) is None:
                return []
        async with self._sessions.begin() as session:
            ids = list(
                await session.scalars(
                    select(WebhookRow.id)
                    .where(*due)
                    .order_by(WebhookRow.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True, of=WebhookRow)
                )
            )
            if ids:
                await session.execute(
                    update(WebhookRow)
                    .where(WebhookRow.id.in_(ids))
                    .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
                )
        return ids

    async def next_pending(self, webhook: int, owner: str) -> Pending | None:
        """The next change ``webhook`` must deliver, while ``owner`` holds its lease;
        None when it has none (its cursor then moves past the changes its filters
        skip, and the lease is released) or the lease is lost. Reads only, unless
        there is nothing to deliver (a delivery costs one write: its record)."""
        async with self._sessions() as session:
            row = await session.get(WebhookRow, webhook)
            if row is None or row.lease_owner != owner or row.state != ACTIVE:
                return None
            # every change up to head is committed (the feed's order): what the
            # query below does not find up to head, no filter of this webhook wants
            head = int(await session.scalar(select(func.max(ChangeFeedRow.sequence))) or 0)
            query = (
                select(ChangeFeedRow, Tenant.slug)
                .outerjoin(Tenant, Tenant.id == ChangeFeedRow.tenant_id)
                .where(ChangeFeedRow.sequence > row.cursor, ChangeFeedRow.sequence <= head)
                .order_by(ChangeFeedRow.sequence)
                .limit(1)
            )
            if row.tenants:
                query = query.where(Tenant.slug.in_(list(row.tenants)))
            if row.events:
                query = query.where(ChangeFeedRow.action.in_(list(row.events)))
            found = (await session.execute(query)).first()
            if found is not None:
                change, slug = found
                return Pending(
                    webhook=row.id,
                    url=row.url,
                    secret=str(self._secrets.open(row.secret)),
                    attempts=row.attempts,
                    event=change_event(change, slug),
                )
        async with self._sessions.begin() as session:
            await session.execute(
                update(WebhookRow)
                .where(WebhookRow.id == webhook, WebhookRow.lease_owner == owner)
                .values(
                    cursor=case((WebhookRow.cursor < head, head), else_=WebhookRow.cursor),
                    lease_owner=None,
                    lease_until=None,
                )
            )
        return None

    async def release(self, webhook: int, owner: str) -> None:
        """Give up ``owner``'s lease on ``webhook`` (another worker may take it)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(WebhookRow)
                .where(WebhookRow.id == webhook, WebhookRow.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    async def record(
        self,
        owner: str,
        pending: Pending,
        *,
        status_code: int | None,
        error: str | None,
        latency_ms: float,
        lease_seconds: float,
        backoff_seconds: float = rules.BACKOFF_SECONDS,
        max_attempts: int = rules.MAX_ATTEMPTS,
    ) -> bool:
        """Log one attempt of ``pending`` (``error`` None: delivered) and move the
        webhook on: the cursor past it (lease renewed), or a retry after the
        backoff, or paused after the last attempt (lease released). False when the
        lease was lost (nothing moves) or the attempt failed."""
        now = utcnow()
        async with self._sessions.begin() as session:
            row = await session.get(WebhookRow, pending.webhook, with_for_update=True)
            if row is None or row.lease_owner != owner:
                return False
            attempt = row.attempts + 1
            if error is None:
                outcome = DELIVERED
                row.cursor = max(row.cursor, pending.event.sequence)
                row.attempts = 0
                row.next_attempt_at = None
                row.lease_until = now + timedelta(seconds=lease_seconds)
            else:
                row.attempts = attempt
                row.lease_owner = None
                row.lease_until = None
                if attempt >= max_attempts:
                    outcome = FAILED
                    row.state = PAUSED
                    row.paused_reason = (
                        f"change {pending.event.sequence} failed {attempt} times (last: "
                        f"{error}); resume with resumeWebhook or 'tailor webhook resume "
                        f"{row.id}' once the receiver is fixed"
                    )
                    row.next_attempt_at = None
                else:
                    outcome = RETRYING
                    row.next_attempt_at = now + timedelta(
                        seconds=rules.backoff(attempt, backoff_seconds)
                    )
            session.add(
                WebhookAttemptRow(
                    webhook_id=row.id,
                    delivery=pending.delivery,
                    sequence=pending.event.sequence,
                    attempt=attempt,
                    at=now,
                    status_code=status_code,
                    error=error,
                    latency_ms=round(latency_ms, 3),
                    outcome=outcome,
                )
            )
        return error is None


def _audit(principal: Principal, action: str, info: WebhookInfo) -> AuditEntry:
    """Who added, removed or resumed a receiver of every change (never the secret)."""
    return AuditEntry(
        actor=principal.name,
        action=action,
        key=f"{WEBHOOK_KEY}{info.id}",
        new={"url": info.url, "events": list(info.events), "tenants": list(info.tenants)},
    )


def _not_found(webhook: int) -> NotFoundError:
    return NotFoundError("webhook", str(webhook), "list webhooks with 'tailor webhook list'")
