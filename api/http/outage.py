"""A database outage answered as one: ``503``, ``Retry-After`` and a GraphQL error
body whose code is ``UNAVAILABLE`` (see :func:`core.store.db.is_outage`, the one
place that recognises each driver's outage errors)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.protocol import JSON, error_response, negotiate
from core.model.errors import UnavailableError
from core.store.db import is_outage

log = logging.getLogger("tailor.http")


class OutageGuard:
    """A database outage anywhere in a request (authentication, the response cache,
    a resolver, the console) is answered ``503`` with ``Retry-After`` and a GraphQL
    error body whose code is ``UNAVAILABLE``, never a 500 or a masked error. Outages
    inside GraphQL execution are turned into that error by
    :mod:`api.graphql.masking` (partial data kept); this catches the rest. Nothing
    needs restarting when the database is back: see :func:`core.store.db.is_outage`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or not is_outage(exc):
                raise
            log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
            await unavailable_response(Request(scope), exc)(scope, receive, send)


def unavailable_response(request: Request, exc: BaseException) -> Response:
    """503, ``Retry-After`` and the ``UNAVAILABLE`` error body (the negotiated type)."""
    error = exc if isinstance(exc, UnavailableError) else UnavailableError()
    media_type = negotiate(request.headers.get("accept")) or JSON
    return error_response(
        503,
        error.message,
        error.code,
        media_type,
        {"Retry-After": str(error.retry_after)},
    )
