"""Subscriptions: ``settingsChanged``, a tenant's committed changes as they happen.

Served over server-sent events (GraphQL over SSE, ``Accept: text/event-stream``)
and over ``graphql-transport-ws`` by :mod:`api.http.graphql_view`; fed from the change feed
by the process's :class:`~core.store.feed_hub.FeedHub`. A refused subscription
(scope, an unknown tenant or environment, a bad ``after``) yields one typed error,
the one the ``settings`` query would answer, and ends.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any, Union

import strawberry

from api.graphql.context import Info
from api.graphql.errors import Errors, as_graphql_error, from_domain
from api.state import RequestState, request_state
from core.model import errors as domain
from core.store.feed import ChangeEvent as FeedEvent

#: the request header a reconnecting SSE client sends: the ``id`` of the last
#: event it received, taken as ``after`` when the subscription names none
LAST_EVENT_ID = "last-event-id"


@strawberry.type(name="ChangeEvent", description="One committed change of a tenant.")
class ChangeEventType:
    sequence: int = strawberry.field(
        description="the change feed's sequence: pass it as 'after' (or Last-Event-ID) "
        "to resume after this change"
    )
    tenant: str
    environment: str | None = strawberry.field(
        description="null: the tenant-wide scope, or a change of the whole tenant"
    )
    keys: list[str] = strawberry.field(
        description="the setting keys changed; empty when any of the tenant's keys may have "
        "changed (a customization enabled or pinned, an upgrade)"
    )
    source: str = strawberry.field(
        description="what changed them: the audited action (set, reset, "
        "enable_customization, disable_customization, pin_customization, upgrade_tenant, "
        "apply_change, break_glass, ...)"
    )
    actor: str
    at: datetime

    @classmethod
    def from_domain(cls, event: FeedEvent) -> ChangeEventType:
        return cls(
            sequence=event.sequence,
            tenant=event.tenant or "",
            environment=event.environment,
            keys=list(event.keys),
            source=event.action,
            actor=event.actor,
            at=event.at,
        )


SettingsChangedResult = Annotated[
    Union[ChangeEventType, Errors],  # noqa: UP007
    strawberry.union("SettingsChangedResult"),
]


def _last_event_id(request: Any) -> int | None:
    """``Last-Event-ID`` of an SSE reconnect (None: absent)."""
    headers = getattr(request, "headers", None)
    raw = headers.get(LAST_EVENT_ID) if headers is not None else None
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise domain.InvalidInputError(
            "Last-Event-ID", f"must be the id of an event this server sent; got {raw!r}"
        )
    return int(raw.strip())


@strawberry.type
class FeedSubscription:
    """The change feed, live."""

    @strawberry.subscription(
        description="A tenant's committed changes, as they happen: with 'environment', "
        "those of that environment, the tenant-wide scope and the whole tenant; with "
        "'after', the changes since that sequence first (also from an SSE Last-Event-ID)."
    )
    async def settings_changed(
        self,
        info: Info,
        tenant: str,
        environment: str | None = None,
        after: int | None = None,
    ) -> AsyncGenerator[SettingsChangedResult, None]:
        ctx = info.context
        try:
            if ctx.feed_hub is None:
                raise domain.InvalidInputError(
                    "settingsChanged", "this server does not serve subscriptions"
                )
            if after is None:
                after = _last_event_id(ctx.request)
            subscription = await ctx.feed_hub.subscribe(ctx.principal, tenant, environment, after)
        except domain.TailorError as exc:
            if isinstance(exc, domain.UnavailableError):
                raise as_graphql_error(exc) from exc
            yield from_domain(exc)
            return
        events = subscription.events()
        state = request_state(ctx.request.scope) if ctx.request is not None else RequestState()
        try:
            async for event in events:
                if ctx.reauthenticate is not None:
                    try:
                        # the token as it is now (in memory, read again every few
                        # seconds per token, never per subscriber)
                        await ctx.reauthenticate()
                    except domain.AuthenticationError:
                        return  # revoked or expired: the stream completes; reconnecting gets 401
                # the SSE transport sends it as the event's id (api.http.graphql_view)
                state.event_sequence = event.sequence
                yield ChangeEventType.from_domain(event)
        finally:
            await events.aclose()


SUBSCRIPTION_GROUPS: tuple[type, ...] = (FeedSubscription,)
