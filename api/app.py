"""The Starlette application factory (no import-time globals)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from api.context import Context
from api.schema import build_schema
from core.auth import Principal
from core.db import check_reachable
from core.errors import AuthenticationError, DatabaseError
from core.services import Services
from plugins.runtime import PluginRuntime
from plugins.wiring import attach

log = logging.getLogger("tailor.http")


@dataclass(frozen=True)
class AppOptions:
    demo: bool = False
    graphiql: bool = True
    #: the plugin runtime to use; None: load customizations from customizations/,
    #: TAILOR_CUSTOMIZATIONS_PATH and the tailor.customizations entry points
    plugins: PluginRuntime | None = None


class TailorGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with Tailor's typed context."""

    def __init__(self, services: Services, options: AppOptions, plugins: PluginRuntime) -> None:
        super().__init__(
            build_schema(),
            graphql_ide="graphiql" if options.graphiql else None,
            allow_queries_via_get=True,
        )
        self.services = services
        self.plugins = plugins

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        state = request.scope.get("state", {})
        return Context(
            services=self.services,
            principal=state["principal"],
            request_id=state.get("request_id", ""),
            request=request,
            plugins=self.plugins,
        )


class Authenticate:
    """Resolve the bearer token to a :class:`Principal` before GraphQL runs;
    answer 401 without one. The GraphiQL page itself loads without a token."""

    def __init__(self, app: TailorGraphQL, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        if _wants_ide(request):
            # the page only: no operation runs on this request
            state["principal"] = Principal.nobody()
            await self.app(scope, receive, send)
            return
        try:
            state["principal"] = await self._principal(request)
        except AuthenticationError as exc:
            await _graphql_error(401, exc.message, exc.code, {"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        except DatabaseError as exc:
            await _graphql_error(503, exc.message, exc.code)(scope, receive, send)
            return
        except (SQLAlchemyError, OSError) as exc:
            log.error("database unavailable: %s", exc)
            await _graphql_error(
                503, "the database is unavailable; try again shortly", DatabaseError.code
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if not header:
            raise AuthenticationError(
                "missing bearer token: send 'Authorization: Bearer <token>' "
                "(create one with 'tailor token create')"
            )
        if scheme.lower() != "bearer" or not secret.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        return await self.services.tokens.authenticate(secret.strip())


def _wants_ide(request: Request) -> bool:
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def _graphql_error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def create_app(services: Services, options: AppOptions | None = None) -> Starlette:
    """Build the ASGI app around ``services`` (which the app disposes on shutdown)."""
    options = options or AppOptions()
    plugins = options.plugins or PluginRuntime.load()
    services = attach(services, plugins)
    graphql = TailorGraphQL(services, options, plugins)

    async def healthz(_request: Request) -> Response:
        try:
            await check_reachable(services.engine)
        except DatabaseError as exc:
            return JSONResponse({"status": "unavailable", "error": exc.message}, status_code=503)
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await plugins.close()
        await services.close()

    return Starlette(
        routes=[
            Route("/graphql", Authenticate(graphql, services), methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
