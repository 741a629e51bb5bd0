"""GraphQL: webhooks (admin): ``createWebhook``, ``webhooks``, ``deleteWebhook``,
``resumeWebhook``, ``webhookDeliveries`` (thin types over :mod:`core.store.webhooks`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Union

import strawberry

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from core.store.webhooks import AttemptInfo, WebhookInfo


@strawberry.type(description="A receiver of the change feed: each change is POSTed, signed.")
class Webhook:
    id: int
    url: str
    events: list[str] = strawberry.field(
        description="change feed actions delivered (set, reset, ...); empty: every change"
    )
    tenants: list[str] = strawberry.field(
        description="tenants whose changes are delivered; empty: every change"
    )
    state: str = strawberry.field(
        description="active, or paused after a change failed every attempt (resumeWebhook)"
    )
    paused_reason: str | None
    cursor: int = strawberry.field(description="the last change feed sequence it is done with")
    attempts: int = strawberry.field(description="failed attempts of the next change")
    next_attempt_at: datetime | None
    created_at: datetime
    created_by: str

    @classmethod
    def from_domain(cls, w: WebhookInfo) -> Webhook:
        return cls(
            id=w.id,
            url=w.url,
            events=list(w.events),
            tenants=list(w.tenants),
            state=w.state,
            paused_reason=w.paused_reason,
            cursor=w.cursor,
            attempts=w.attempts,
            next_attempt_at=w.next_attempt_at,
            created_at=w.created_at,
            created_by=w.created_by,
        )


@strawberry.type(description="A new webhook and its signing secret, shown only this once.")
class WebhookCreated:
    webhook: Webhook
    secret: str = strawberry.field(
        description="the HMAC-SHA256 key of Tailor-Signature; store it now, it is not shown again"
    )


@strawberry.type(description="Every webhook.")
class WebhookList:
    items: list[Webhook]


@strawberry.type(description="One attempt to deliver one change.")
class WebhookAttempt:
    id: int
    delivery: str = strawberry.field(description="the Tailor-Delivery header: one per change")
    sequence: int
    attempt: int = strawberry.field(description="1 for the first try of this change")
    at: datetime
    status_code: int | None = strawberry.field(description="null: no answer (see error)")
    error: str | None = strawberry.field(description="null: delivered")
    latency_ms: float
    outcome: str = strawberry.field(
        description="delivered, retrying, or failed (the last attempt: the webhook paused)"
    )

    @classmethod
    def from_domain(cls, a: AttemptInfo) -> WebhookAttempt:
        return cls(
            id=a.id,
            delivery=a.delivery,
            sequence=a.sequence,
            attempt=a.attempt,
            at=a.at,
            status_code=a.status_code,
            error=a.error,
            latency_ms=a.latency_ms,
            outcome=a.outcome,
        )


@strawberry.type(description="A webhook's delivery attempts, newest first.")
class WebhookDeliveries:
    webhook: int
    items: list[WebhookAttempt]


@strawberry.input(description="A new webhook.")
class CreateWebhookInput:
    url: str = strawberry.field(description="http(s); no credentials; a public address")
    events: list[str] = strawberry.field(
        default_factory=list, description="change feed actions; [] or ['*']: every change"
    )
    tenants: list[str] = strawberry.field(
        default_factory=list, description="tenant slugs; []: every tenant"
    )


WebhookCreatedResult = Annotated[
    Union[WebhookCreated, Errors],  # noqa: UP007
    strawberry.union("WebhookCreatedResult"),
]
WebhookResult = Annotated[Union[Webhook, Errors], strawberry.union("WebhookResult")]  # noqa: UP007
WebhookListResult = Annotated[
    Union[WebhookList, Errors],  # noqa: UP007
    strawberry.union("WebhookListResult"),
]
WebhookDeliveriesResult = Annotated[
    Union[WebhookDeliveries, Errors],  # noqa: UP007
    strawberry.union("WebhookDeliveriesResult"),
]


@strawberry.type
class WebhooksQuery:
    @strawberry.field(description="Every webhook (admin).")
    @expected
    async def webhooks(self, info: Info) -> WebhookListResult:
        ctx = info.context
        found = await ctx.services.webhooks.list_all(ctx.principal)
        return WebhookList(items=[Webhook.from_domain(w) for w in found])

    @strawberry.field(
        description="A webhook's delivery attempts, newest first: status, error, latency (admin)."
    )
    @expected
    async def webhook_deliveries(
        self, info: Info, webhook: int, limit: int = 100
    ) -> WebhookDeliveriesResult:
        ctx = info.context
        found = await ctx.services.webhooks.deliveries(ctx.principal, webhook, limit)
        return WebhookDeliveries(
            webhook=webhook, items=[WebhookAttempt.from_domain(a) for a in found]
        )


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(
        description="Create a webhook (admin); the signing secret is returned only here."
    )
    @expected
    async def create_webhook(
        self, info: Info, given: Annotated[CreateWebhookInput, strawberry.argument(name="input")]
    ) -> WebhookCreatedResult:
        ctx = info.context
        created, secret = await ctx.services.webhooks.create(
            ctx.principal, given.url, given.events, given.tenants
        )
        return WebhookCreated(webhook=Webhook.from_domain(created), secret=secret)

    @strawberry.mutation(description="Delete a webhook and its delivery log (admin).")
    @expected
    async def delete_webhook(self, info: Info, id: int) -> WebhookResult:  # noqa: A002
        ctx = info.context
        return Webhook.from_domain(await ctx.services.webhooks.delete(ctx.principal, id))

    @strawberry.mutation(
        description="Resume a paused webhook: the change it failed on is tried again (admin)."
    )
    @expected
    async def resume_webhook(self, info: Info, id: int) -> WebhookResult:  # noqa: A002
        ctx = info.context
        return Webhook.from_domain(await ctx.services.webhooks.resume(ctx.principal, id))
