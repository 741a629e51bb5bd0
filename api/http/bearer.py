"""The bearer token of a request, resolved to a :class:`Principal` (shared by
``/graphql`` and the web pages: tokens travel in the Authorization header only,
never in a URL, so they never reach an access log), and :class:`Authenticate`, the
``/graphql`` middleware that resolves it before GraphQL runs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.logging import request_id_from
from api.http.outage import unavailable_response
from api.http.protocol import JSON, error_response, negotiate, wants_ide
from api.http.ratelimit import bucket_key
from api.state import request_state
from core.model.auth import Principal
from core.model.errors import AuthenticationError, DatabaseError, UnavailableError
from core.store.services import Services

MISSING_TOKEN = (
    "missing bearer token: send 'Authorization: Bearer <token>' "
    "(create one with 'tailor token create')"
)


async def bearer_principal(services: Services, header: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer <token>`` header value."""
    header = header or ""
    scheme, _, secret = header.partition(" ")
    if not header:
        raise AuthenticationError(MISSING_TOKEN)
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    return await services.tokens.authenticate(secret.strip())


class Authenticate:
    """Resolve the bearer token to a :class:`Principal` before GraphQL runs;
    answer 401 without one. The GraphiQL page itself loads without a token."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = request_state(scope)
        if not state.request_id:
            state.request_id = request_id_from(request.headers.get("x-request-id"))
        if wants_ide(request):
            # the page only: no operation runs on this request
            state.principal = Principal.nobody()
            await self.app(scope, receive, send)
            return
        media_type = negotiate(request.headers.get("accept")) or JSON
        authorization = request.headers.get("authorization", "")
        state.rate_key = bucket_key(authorization)
        try:
            state.principal = await self._principal(request)
        except AuthenticationError as exc:
            await error_response(
                401, exc.message, exc.code, media_type, {"WWW-Authenticate": "Bearer"}
            )(scope, receive, send)
            return
        except DatabaseError as exc:
            if isinstance(exc, UnavailableError):
                await unavailable_response(request, exc)(scope, receive, send)
            else:
                await error_response(503, exc.message, exc.code, media_type)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _principal(self, request: Request) -> Principal:
        return await bearer_principal(self.services, request.headers.get("authorization"))
