"""OFREP change notifications: the ``eventStreams`` of a bulk evaluation and the
server-sent events behind it (ADR-0008 of the OFREP specification, in its
``service/openapi.yaml`` at the commit :data:`api.http.ofrep.SPEC_COMMIT`).

Every bulk answer (``POST /ofrep/v1/evaluate/flags``) lists one stream::

    "eventStreams": [{"type": "sse",
                      "endpoint": {"requestUri": "/ofrep/v1/events?ticket=..."}}]

(``endpoint`` without ``origin``: the provider joins it to the origin of its
configured OFREP base URL, so the URL is right behind any proxy). ``GET`` on it
answers ``text/event-stream``; within a second of a committed change to the
ticket's tenant (its environment's, the tenant-wide scope's, or the whole
tenant's: :class:`core.store.feed_hub.Interest`) it sends::

    id: <the change feed's sequence>
    data: {"type":"refetchEvaluation","lastModified":<Unix seconds of the change>}

and the provider fetches the bulk evaluation again (its ``If-None-Match`` gets a
``304`` when nothing it sees changed). A reconnect's ``Last-Event-ID`` replays
what was missed. The events come from the process's
:class:`~core.store.feed_hub.FeedHub`: one read of the change feed per wake
serves every stream of the process, none polls on its own.

The URL carries a **stream ticket** (:mod:`core.model.stream_tickets`), never
the bearer token: browsers' ``EventSource`` sends no headers. A ticket admits a
stream for one tenant on behalf of the token whose bulk evaluation minted it,
for :data:`~core.model.stream_tickets.WINDOW_SECONDS` to twice that; a stream,
once admitted, runs until its token is revoked or expires (checked at every
event and every :data:`KEEPALIVE_SECONDS`), or the server stops (the hub closes:
the response ends cleanly, the browser reconnects, to another node if this one
is gone). An expired, altered or revoked-token ticket is refused with ``401``
and what to do. The stream answers a cross-origin ``GET`` under the CORS rules
of :mod:`api.http.cors` (the ticket's token's origins). Access logs record the
path only, so the ticket stays out of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import orjson

from core.model.auth import Principal
from core.model.errors import AuthenticationError, DatabaseError, InvalidInputError
from core.model.stream_tickets import RENEW, Ticket, expiry_for, mint, parse, token_id_of, verify
from core.store.feed import ChangeEvent
from core.store.feed_hub import FeedHub, Subscription
from core.store.tokens import TokenService, hash_token

#: the stream's path; its query names the ticket
STREAM_PATH = "/ofrep/v1/events"
TICKET_PARAMETER = "ticket"
#: the only OFREP event type (the payload's ``type``)
REFETCH_EVALUATION = "refetchEvaluation"
#: seconds between comments on an idle stream (proxies keep it open; the token is
#: checked again)
KEEPALIVE_SECONDS = 15.0
#: the reconnection delay suggested to the browser
RETRY_MILLISECONDS = 2000
MEDIA_TYPE = "text/event-stream"
#: what a connected stream's first bytes say
OPENING = f"retry: {RETRY_MILLISECONDS}\n: tailor ofrep events\n\n".encode()
KEEPALIVE = b": keep-alive\n\n"


def refetch_event(event: ChangeEvent) -> bytes:
    """The SSE event telling a provider to fetch the bulk evaluation again."""
    data = orjson.dumps({"type": REFETCH_EVALUATION, "lastModified": int(event.at.timestamp())})
    return b"id: %d\ndata: %s\n\n" % (event.sequence, data)


def last_event_id(raw: str | None) -> int | None:
    """A reconnect's ``Last-Event-ID`` (None: absent), or why it is no id of ours."""
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise InvalidInputError(
            "Last-Event-ID", f"must be the id of an event this server sent; got {raw!r}"
        )
    return int(raw.strip())


class EventStreams:
    """Mints the tickets of bulk answers and serves the streams they admit."""

    def __init__(self, tokens: TokenService, hub: FeedHub) -> None:
        self.tokens = tokens
        self.hub = hub

    # -- in a bulk answer ------------------------------------------------------
    def ticket_for(
        self,
        principal: Principal,
        authorization: str,
        tenant: str,
        environment: str | None,
        now: float | None = None,
    ) -> str | None:
        """The ticket of the bulk evaluation ``authorization`` (its bearer header)
        made for ``tenant``: no statement, the secret hashes to the key. None when
        the principal is no API token."""
        token_id = token_id_of(principal)
        if token_id is None:
            return None
        secret = authorization.partition(" ")[2].strip()
        expires = expiry_for(time.time() if now is None else now)
        return mint(token_id, hash_token(secret), tenant, environment, expires)

    @staticmethod
    def listing(root_path: str, ticket: str) -> bytes:
        """The bulk answer's ``eventStreams`` (JSON)."""
        uri = f"{root_path}{STREAM_PATH}?{TICKET_PARAMETER}={ticket}"
        return orjson.dumps([{"type": "sse", "endpoint": {"requestUri": uri}}])

    # -- opening a stream ------------------------------------------------------
    async def admit(self, text: str | None) -> tuple[Ticket, Principal]:
        """The ticket ``text`` and its token's principal, or an
        :class:`AuthenticationError` saying why not (missing, malformed, expired,
        altered, its token revoked, expired or gone). At most one statement."""
        if not text:
            raise AuthenticationError(
                f"no stream ticket: connect to the URL in 'eventStreams' of a bulk "
                f"evaluation; {RENEW}"
            )
        ticket = parse(text)
        if ticket.expired(time.time()):
            expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ticket.expires))
            raise AuthenticationError(f"the stream ticket expired at {expired}; {RENEW}")
        try:
            principal, key = await self.tokens.ticket_holder(ticket.token_id)
        except AuthenticationError as exc:
            raise AuthenticationError(f"stream ticket refused: {exc.message}") from None
        verify(ticket, key)
        return ticket, principal

    async def subscribe(
        self, ticket: Ticket, principal: Principal, after: int | None
    ) -> Subscription:
        """Join the hub for the ticket's tenant (and environment): the errors of
        :meth:`FeedHub.subscribe` (scope, unknown tenant or environment, stopping)."""
        return await self.hub.subscribe(principal, ticket.tenant, ticket.environment, after)

    # -- the stream ------------------------------------------------------------
    async def body(self, ticket: Ticket, subscription: Subscription) -> AsyncIterator[bytes]:
        """The stream's bytes: an opening, then a ``refetchEvaluation`` per change
        and a comment every :data:`KEEPALIVE_SECONDS`, until the hub closes (the
        server stops), the token stops authenticating or the client goes."""
        yield OPENING
        events = subscription.events()
        pending: asyncio.Future[ChangeEvent] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
                if not done:
                    if not await self._admitted(ticket):
                        return
                    yield KEEPALIVE
                    continue
                finished, pending = pending, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    return  # the hub closed: the server is stopping
                if not await self._admitted(ticket):
                    return
                yield refetch_event(event)
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await events.aclose()

    async def _admitted(self, ticket: Ticket) -> bool:
        """Whether the ticket's token still authenticates (a revocation made
        elsewhere applies within the token cache's bound). A database outage
        keeps the stream: the hub retries its reads."""
        try:
            await self.tokens.ticket_holder(ticket.token_id)
        except AuthenticationError:
            return False
        except DatabaseError:
            return True
        return True
