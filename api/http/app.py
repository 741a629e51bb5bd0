"""The Starlette application factory (no import-time globals)."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.config import BatchingConfig, StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from api.graphql.context import Context
from api.graphql.document_cache import DocumentCache, DocumentStore
from api.graphql.limits import GraphQLLimits, LimitsExtension
from api.graphql.schema import build_schema
from api.graphql.suggestions import NoSuggestions
from api.graphql.trusted import schema_check
from api.http.background import Background
from api.http.bearer import bearer_principal
from api.http.logging import RequestLog, request_id_from
from api.http.metrics import Metrics, MetricsMiddleware
from api.http.outage import OutageGuard, unavailable_response
from api.http.protocol import (
    BAD_REQUEST,
    GRAPHQL_RESPONSE_JSON,
    JSON,
    METHOD_NOT_ALLOWED,
    ProtocolGuard,
    error_response,
    negotiate,
    served_from_cache,
    settle,
    wants_ide,
)
from api.http.response_cache import ResponseCache, from_entry, matches, not_modified
from api.web.views import HEADERS as CONSOLE_HEADERS
from api.web.views import HERE as WEB_DIR
from api.web.views import Console
from api.wiring import attach
from core.model.auth import Principal
from core.model.errors import AuthenticationError, DatabaseError, UnavailableError
from core.model.product import Product
from core.store.db import check_reachable
from core.store.feed import FEED
from core.store.invalidation import Listener
from core.store.services import Services
from plugins.catalog import Catalog
from plugins.runtime import PluginRuntime, RuntimeOptions, guard

log = logging.getLogger("tailor.http")
#: seconds between prunes of what is kept for a while (the change feed)
FEED_PRUNE_SECONDS = 3600.0


@dataclass(frozen=True)
class AppOptions:
    """How the app serves GraphQL. ``None`` for ``introspection`` and
    ``field_suggestions`` means: on with ``--demo``, off otherwise."""

    demo: bool = False
    #: the GraphiQL page at GET /graphql (None: only with demo)
    graphiql: bool | None = None
    #: the plugin runtime to use; None: load customizations from customizations/,
    #: TAILOR_CUSTOMIZATIONS_PATH and the tailor.customizations entry points, for
    #: the product's catalog
    plugins: PluginRuntime | None = None
    #: False keeps the hooks the services were built with (embedding, fault tests)
    attach_plugins: bool = True
    introspection: bool | None = None
    field_suggestions: bool | None = None
    limits: GraphQLLimits = field(default_factory=GraphQLLimits)
    #: answer settings operations from memory (api.http.response_cache); None: on
    #: when the app attaches the plugin runtime, whose hooks it knows are pure
    response_cache: bool | None = None
    #: complete plain object selections by projection (api.graphql.projection); off only
    #: to compare with strawberry's normal execution (the answers are the same)
    projection: bool = True

    @property
    def cache_enabled(self) -> bool:
        return self.attach_plugins if self.response_cache is None else self.response_cache

    @property
    def graphiql_enabled(self) -> bool:
        return self.demo if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.demo if self.introspection is None else self.introspection

    @property
    def field_suggestions_enabled(self) -> bool:
        return self.demo if self.field_suggestions is None else self.field_suggestions

    def extensions(self) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
        """Factories: strawberry makes new extension instances for every operation."""
        limits = self.limits
        # one store of parsed and validated documents per app (after the limits:
        # see api.graphql.document_cache)
        documents = DocumentStore()
        factories: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
            lambda: LimitsExtension(limits),
            lambda: DocumentCache(documents),
        ]
        if not self.introspection_enabled:
            factories.append(DisableIntrospection)
        if not self.field_suggestions_enabled:
            factories.append(NoSuggestions)
        return factories

    def schema_config(self) -> StrawberryConfig:
        batching: BatchingConfig | None = (
            {"max_operations": self.limits.max_batch_size} if self.limits.max_batch_size else None
        )
        return StrawberryConfig(
            disable_field_suggestions=not self.field_suggestions_enabled,
            batching_config=batching,
        )


class TailorGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with Tailor's typed context, speaking
    GraphQL-over-HTTP: the negotiated media type (see :mod:`api.http.protocol`), 400
    without ``data`` for request errors under ``application/graphql-response+json``,
    a GraphQL error body for every refusal, 405 for mutations over GET."""

    def __init__(self, services: Services, options: AppOptions, plugins: PluginRuntime) -> None:
        super().__init__(
            build_schema(options.extensions(), options.schema_config(), options.projection),
            graphql_ide="graphiql" if options.graphiql_enabled else None,
            allow_queries_via_get=True,
            # publishCustomization(archive: Upload!): every /graphql request carries
            # a bearer token (no cookie), so a cross-site form cannot forge one
            multipart_uploads_enabled=True,
        )
        self.services = services
        self.plugins = plugins
        #: answers to settings operations (None: off, see AppOptions.response_cache)
        self.cache = ResponseCache(services, plugins) if options.cache_enabled else None
        self.graphiql_page = (WEB_DIR / "templates" / "graphiql.html").read_text(encoding="utf-8")

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL with every script and style served by Tailor (works offline)."""
        return HTMLResponse(self.graphiql_page, headers=CONSOLE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        state = scope.setdefault("state", {})
        plan = (
            self.cache.plan(state, state["principal"])
            if self.cache is not None and "principal" in state
            else None
        )
        lookup = await self.cache.lookup(plan) if plan is not None and self.cache else None
        if lookup is not None and lookup.entry is not None:
            entry = lookup.entry
            served_from_cache(state)
            if request.method == "GET" and matches(
                request.headers.get("if-none-match"), entry.etag
            ):
                await not_modified(entry.etag)(scope, receive, send)
            else:
                await from_entry(entry)(scope, receive, send)
            return
        # not from the cache: now the request pays the rest of its price
        refusal = settle(state)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        # the request's customization calls share one budget, counted from now
        guard.start_request(self.plugins.options.hook_timeout)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = _refusal(request, exc)
        if lookup is not None and self.cache is not None and not state.get("uncacheable"):
            stored = await self.cache.store(lookup, response)
            if stored is not None:
                if request.method == "GET" and matches(
                    request.headers.get("if-none-match"), stored.etag
                ):
                    response = not_modified(stored.etag)
                else:
                    response.headers["ETag"] = stored.etag
                    response.headers["Cache-Control"] = "private, no-cache"
        await response(scope, receive, send)

    def encode_json(self, data: object) -> bytes:
        """orjson (a 1,000-setting response: ~0.2 ms instead of ~1.8 ms with the
        standard library); what orjson cannot encode (integers beyond 64 bits)
        falls back to the standard library, so every response still encodes."""
        try:
            return orjson.dumps(data)
        except TypeError:
            return json.dumps(data, separators=(",", ":")).encode()

    # strawberry's base also takes WebSockets; this app serves none (no subscriptions)
    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        state = request.scope.get("state", {})
        return Context(
            services=self.services,
            principal=state["principal"],
            request_id=state.get("request_id", ""),
            request=request,
            plugins=self.plugins,
        )

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_operation(*args, **kwargs)
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, "mutations need a POST request") from exc
            if isinstance(exc.__cause__, CannotGetOperationTypeError):
                name = exc.__cause__.operation_name
                raise HTTPException(
                    400,
                    f"the document has no operation named {name!r}"
                    if name is not None
                    else "the document has several operations: name the one to run "
                    "in 'operationName'",
                ) from exc
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        body = await super().process_result(request, result)
        if result.errors:
            state = request.scope.setdefault("state", {})
            state["uncacheable"] = True
            for error in result.errors:
                extensions = error.extensions or {}
                if extensions.get("code") == UnavailableError.code:
                    state["unavailable"] = extensions.get(
                        "retryAfter", UnavailableError.RETRY_AFTER
                    )
        if is_request_error(result):
            state = request.scope.setdefault("state", {})
            state["request_errors"] = state.get("request_errors", 0) + 1
            if state.get("media_type") == GRAPHQL_RESPONSE_JSON:
                body.pop("data", None)
        return body

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        response = await super().run(request, context, root_value)
        state = request.scope.get("state", {})
        media_type = state.get("media_type")
        if isinstance(response, Response) and media_type and not isinstance(response, HTMLResponse):
            response.headers["content-type"] = f"{media_type}; charset=utf-8"
            if (
                media_type == GRAPHQL_RESPONSE_JSON
                and state.get("request_errors")
                and not state.get("batch")
            ):
                response.status_code = 400
            if state.get("unavailable"):
                # the database is down: retry the whole request (see is_outage)
                response.status_code = 503
                response.headers["Retry-After"] = str(state["unavailable"])
        return response


def is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable-coercion errors: nothing was executed.
    (A field error always has a ``path``; these never do.)"""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(not e.path for e in errors)


def _refusal(request: Request, exc: HTTPException) -> Response:
    state = request.scope.get("state", {})
    headers = {"Allow": "POST"} if exc.status_code == 405 else None
    code = METHOD_NOT_ALLOWED if exc.status_code == 405 else BAD_REQUEST
    if exc.status_code == 404:
        code = "NOT_FOUND"
    return error_response(exc.status_code, exc.reason, code, state.get("media_type", JSON), headers)


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
        state = scope.setdefault("state", {})
        state.setdefault("request_id", request_id_from(request.headers.get("x-request-id")))
        if wants_ide(request):
            # the page only: no operation runs on this request
            state["principal"] = Principal.nobody()
            await self.app(scope, receive, send)
            return
        media_type = negotiate(request.headers.get("accept")) or JSON
        authorization = request.headers.get("authorization", "")
        # the rate limit's bucket: one per token (a digest, never the token itself)
        state["rate_key"] = hashlib.sha256(authorization.encode("utf-8", "replace")).hexdigest()
        try:
            state["principal"] = await self._principal(request)
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


def create_app(
    services: Services, options: AppOptions | None = None, *, product: Product | None = None
) -> Starlette:
    """Build the ASGI app around ``services`` (which the app disposes on shutdown)
    for the host ``product`` (None: the declared one, see
    :func:`plugins.product.load_product`). On PostgreSQL, the app listens for other
    workers' committed changes while it runs (:mod:`core.store.invalidation`)."""
    options = options or AppOptions()
    plugins = options.plugins
    if plugins is None:
        if product is None:
            from plugins.product import load_product

            product = load_product()
        plugins = PluginRuntime(Catalog.for_product(product), RuntimeOptions())
    if options.attach_plugins:
        services = attach(services, plugins)
    services.with_document_check(schema_check())
    graphql = TailorGraphQL(services, options, plugins)
    console = Console(services, plugins.installed)
    metrics = Metrics(services)

    async def readiness_page(request: Request) -> Response:
        """The old readiness page: now the console's fleet page (sign in there)."""
        target = request.query_params.get("target")
        query = f"?target={quote(target)}" if target else ""
        return RedirectResponse(f"/console/fleet{query}", status_code=308)

    registry = services.registry

    def on_message(topic: str) -> None:
        # a change feed notice (every write) changes no registration
        if topic != FEED:
            registry.changed_elsewhere()

    listener = Listener(services.engine.url.render_as_string(hide_password=False), on_message)

    async def healthz(_request: Request) -> Response:
        try:
            await check_reachable(services.engine)
        except DatabaseError as exc:
            # anyone may ask: the URL, the driver's error and the SQL go to the log only
            log.error("healthz: %s", exc.message)
            return JSONResponse(
                {"status": "unavailable"},
                status_code=503,
                headers={"Retry-After": str(UnavailableError.RETRY_AFTER)},
            )
        return JSONResponse({"status": "ok"})

    background = Background()
    # what is kept for a while is pruned here (docs: "Environment variables")
    background.every(FEED_PRUNE_SECONDS, "prune change feed", services.feed.prune)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await listener.start()
        plugins.start()
        background.start()
        # what start-up built lives as long as the process: keep it out of the
        # collector's generations, so its pauses stay short (p99)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await background.stop()
            await listener.stop()
            if graphql.cache is not None:
                await graphql.cache.close()
            await plugins.close()
            await services.close()

    app = Starlette(
        routes=[
            Route(
                "/graphql",
                RequestLog(
                    Authenticate(ProtocolGuard(graphql, options.limits, services.apps), services)
                ),
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
            # the release managers' console (session cookie after one sign-in)
            Mount("/console", app=RequestLog(Starlette(routes=console.routes()))),
            Route("/readiness", readiness_page, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # inside the metrics (the last added is outermost): they count its 503s
    app.add_middleware(OutageGuard)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
