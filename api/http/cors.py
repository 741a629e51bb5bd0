"""CORS for browser apps, allowed per ``app`` token.

An app token names the web origins a browser may call Tailor from with it
(``tailor token create --role app --origin https://shop.example``); no origin is
allowed by default. Two questions, two answers:

- a **preflight** (``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``) carries no token, so it is answered (204,
  ``Access-Control-Allow-Origin/-Methods/-Headers/-Max-Age``) when *some* active
  app token allows that origin (:meth:`TokenService.allowed_origins`: one
  statement, at most every couple of seconds per process), and refused (403,
  without any CORS header) otherwise;
- the **actual request** is let through by the browser only when its answer
  allows the origin, and that is decided by *its own* token's origins
  (``Principal.origins``). An answer without a principal (401: no, unknown or
  revoked token) is readable by an origin some app token allows, so the app
  learns why it was refused.

Every answer of a route under CORS says ``Vary: Origin``: whether it carries
``Access-Control-Allow-Origin`` depends on that header. Requests without an
``Origin`` header (curl, servers) pass through untouched, but for that ``Vary``.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.state import RequestState, request_state
from core.store.services import Services

#: what a browser app may send and read
ALLOW_METHODS = "GET, POST, OPTIONS"
#: (Last-Event-ID: an EventSource reconnecting to an OFREP event stream)
ALLOW_HEADERS = "Authorization, Content-Type, Accept, If-None-Match, Last-Event-ID, X-Request-Id"
EXPOSE_HEADERS = "ETag, Retry-After, X-Request-Id"
#: seconds a browser may keep a preflight's answer
MAX_AGE = 600
VARY = "Origin"
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class Cors:
    """The ASGI middleware in front of ``/graphql`` and ``/ofrep/``."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if (
            origin is not None
            and scope["method"] == "OPTIONS"
            and "access-control-request-method" in headers
        ):
            await self._preflight(origin, send)
            return
        state = request_state(scope)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header(VARY)
                if origin is not None and await self._readable_by(origin, state):
                    out["Access-Control-Allow-Origin"] = origin
                    out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _readable_by(self, origin: str, state: RequestState) -> bool:
        principal = state.principal
        if principal is not None:
            return bool(principal.allows_origin(origin))
        return origin in await self.services.tokens.allowed_origins()

    async def _preflight(self, origin: str, send: Send) -> None:
        if origin in await self.services.tokens.allowed_origins():
            headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", str(MAX_AGE).encode()),
                (b"vary", PREFLIGHT_VARY.encode()),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": f"no app token allows the origin {origin!r}: create one with "
                        "'tailor token create --role app --tenant T --origin ORIGIN'",
                        "extensions": {"code": "ORIGIN_NOT_ALLOWED"},
                    }
                ]
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"vary", PREFLIGHT_VARY.encode()),
        ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
