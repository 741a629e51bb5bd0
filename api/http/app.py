"""The Starlette application factory (no import-time globals)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.streaming import HTTPStreamTransport, SSETransport
from strawberry.schema.base import BaseSchema
from strawberry.schema.config import BatchingConfig, StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.graphql.context import Context
from api.graphql.document_cache import DocumentCache, DocumentStore
from api.graphql.limits import GraphQLLimits, LimitsExtension
from api.graphql.schema import build_schema
from api.graphql.suggestions import NoSuggestions
from api.graphql.trusted import schema_check
from api.http.background import Background
from api.http.bearer import bearer_principal
from api.http.cors import Cors
from api.http.logging import RequestLog, request_id_from
from api.http.metrics import DEFAULT_TOP_CUSTOMIZATIONS, Metrics, MetricsMiddleware
from api.http.ofrep import Ofrep
from api.http.ofrep_stream import EventStreams
from api.http.outage import OutageGuard, unavailable_response
from api.http.probes import Probes
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
from api.http.ratelimit import bucket_key
from api.http.response_cache import ResponseCache, from_entry, matches, not_modified
from api.http.webhooks import WebhookDeliverer
from api.state import request_state
from api.web.views import GRAPHIQL_HEADERS, Console
from api.web.views import HERE as WEB_DIR
from api.wiring import attach
from core.model.auth import Principal
from core.model.errors import AuthenticationError, DatabaseError, UnavailableError
from core.model.product import Product
from core.store.changes import APPLY_EVERY
from core.store.feed import feed_tenant, is_feed, on_commit
from core.store.feed_hub import FeedHub
from core.store.invalidation import Listener
from core.store.services import Services
from plugins.catalog import Catalog
from plugins.runtime import PluginRuntime, RuntimeOptions, guard

log = logging.getLogger("tailor.http")
#: seconds between prunes of what is kept for a while (the change feed, webhook
#: deliveries, observations, kept readiness runs: docs/operations.md)
PRUNE_SECONDS = 3600.0
#: subscriptions one graphql-transport-ws connection may hold at once
MAX_SUBSCRIPTIONS_PER_CONNECTION = 20


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
    #: customizations named in the hook metrics, the busiest (the rest: "other")
    metrics_customizations: int = DEFAULT_TOP_CUSTOMIZATIONS

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

    def extensions(
        self, documents: DocumentStore | None = None
    ) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
        """Factories: strawberry makes new extension instances for every operation.
        ``documents``: the app's one store of parsed and validated documents (after
        the limits: see api.graphql.document_cache); a new one when not given."""
        limits = self.limits
        if documents is None:
            documents = DocumentStore(limits)
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


#: the key of a streamed result's ``extensions`` that carries its SSE event id
#: (taken out again before the event is sent)
_SSE_ID = "tailor.sse.id"


class FeedEventStream(SSETransport):
    """GraphQL over SSE (distinct connections mode) for subscriptions only; every
    ``next`` event carries ``id: <sequence>`` of the change it tells, so a
    reconnecting client's ``Last-Event-ID`` resumes after it."""

    def allowed_operation_types(
        self, allowed_operation_types: set[OperationType]
    ) -> tuple[OperationType, ...]:
        return (OperationType.SUBSCRIPTION,)

    def encode_next(
        self, response: GraphQLHTTPResponse, encode_json: Callable[[object], str]
    ) -> str:
        extensions = response.get("extensions")
        sequence = extensions.pop(_SSE_ID, None) if isinstance(extensions, dict) else None
        if extensions == {}:
            del response["extensions"]
        event = super().encode_next(response, encode_json)
        return event if sequence is None else f"id: {sequence}\r\n{event}"


class _SubscriptionsOnly:
    """A schema that streams subscriptions only: graphql-transport-ws carries no
    query or mutation here (those go through the HTTP guard's limits and prices)."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["allowed_operation_types"] = (OperationType.SUBSCRIPTION,)
        return await self._schema.stream(*args, **kwargs)


class _SubscriptionsStream:
    """The view's schema: a subscription only ever streams (strawberry would run
    one sent as plain JSON like a query); it is refused with how to stream it."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        allowed = kwargs.get("allowed_operation_types")
        if allowed is not None:
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await self._schema.execute(*args, **kwargs)


class SubscriptionsOnlyWS(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *, schema: Any, **kwargs: Any) -> None:
        super().__init__(schema=cast("BaseSchema", _SubscriptionsOnly(schema)), **kwargs)


class TailorGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with Tailor's typed context, speaking
    GraphQL-over-HTTP: the negotiated media type (see :mod:`api.http.protocol`), 400
    without ``data`` for request errors under ``application/graphql-response+json``,
    a GraphQL error body for every refusal, 405 for mutations over GET.
    Subscriptions stream over server-sent events (:class:`FeedEventStream`) and over
    ``graphql-transport-ws`` (the bearer token in the handshake's ``Authorization``
    header or in ``connection_init``'s payload, never in the URL)."""

    stream_transport_classes_by_protocol: Mapping[str, type[HTTPStreamTransport]] = {
        GRAPHQL_SSE_PROTOCOL: FeedEventStream,
    }
    graphql_transport_ws_handler_class = SubscriptionsOnlyWS

    def __init__(
        self,
        services: Services,
        options: AppOptions,
        plugins: PluginRuntime,
        feed_hub: FeedHub | None = None,
    ) -> None:
        #: the app's one parse of each document (api.graphql.document_cache)
        documents = DocumentStore(options.limits)
        super().__init__(
            build_schema(
                options.extensions(documents), options.schema_config(), options.projection
            ),
            graphql_ide="graphiql" if options.graphiql_enabled else None,
            allow_queries_via_get=True,
            # publishCustomization(archive: Upload!): every /graphql request carries
            # a bearer token (no cookie), so a cross-site form cannot forge one
            multipart_uploads_enabled=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
        )
        self.schema = cast("BaseSchema", _SubscriptionsStream(self.schema))
        self.services = services
        self.plugins = plugins
        self.feed_hub = feed_hub
        self.documents = documents
        #: answers to settings operations (None: off, see AppOptions.response_cache)
        self.cache = ResponseCache(services, plugins, documents) if options.cache_enabled else None
        self.graphiql_page = (WEB_DIR / "templates" / "graphiql.html").read_text(encoding="utf-8")

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL with every script and style served by Tailor (works offline)."""
        return HTMLResponse(self.graphiql_page, headers=GRAPHIQL_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        state = request_state(scope)
        principal = state.principal
        plan = (
            self.cache.plan(state, principal)
            if self.cache is not None and principal is not None and not state.event_stream
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
        if lookup is not None and self.cache is not None and not state.uncacheable:
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

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A graphql-transport-ws connection: a bearer token in the handshake's
        ``Authorization`` header is checked before the handshake is accepted (a bad
        one: 403); without one, ``connection_init`` must carry it (see
        :meth:`on_ws_connect`)."""
        state = request_state(scope)
        if not state.request_id:
            state.request_id = request_id_from(None)
        authorization = dict(scope.get("headers") or ()).get(b"authorization")
        if authorization:
            try:
                state.principal = await bearer_principal(
                    self.services, authorization.decode("latin-1")
                )
            except (AuthenticationError, DatabaseError):
                await WebSocket(scope, receive, send).close(code=1008)
                return
        await super().__call__(scope, receive, send)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """``connection_init``: authenticated by the handshake, or by the payload's
        ``Authorization: Bearer ...``; otherwise the connection is closed (4403)."""
        if context.request is not None and request_state(context.request.scope).principal:
            return UNSET
        params = context.connection_params or {}
        raw = params.get("Authorization", params.get("authorization"))
        if not isinstance(raw, str):
            raise ConnectionRejectionError()
        try:
            context.principal = await bearer_principal(self.services, raw)
        except (AuthenticationError, DatabaseError):
            raise ConnectionRejectionError() from None
        context.reauthenticate = self._reauthenticate(raw)
        return UNSET

    def _reauthenticate(self, authorization: str) -> Callable[[], Awaitable[Principal]]:
        async def again() -> Principal:
            return await bearer_principal(self.services, authorization)

        return again

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request_state(request.scope)
        authorization = request.headers.get("authorization")
        return Context(
            services=self.services,
            # a WebSocket without a token in its handshake: set by on_ws_connect
            principal=state.principal or Principal.nobody(),
            request_id=state.request_id,
            request=request,
            plugins=self.plugins,
            feed_hub=self.feed_hub,
            reauthenticate=self._reauthenticate(authorization) if authorization else None,
        )

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_operation(*args, **kwargs)
        except HTTPException as exc:
            cause = exc.__cause__
            if isinstance(cause, InvalidOperationTypeError):
                if cause.operation_type is OperationType.SUBSCRIPTION:
                    raise HTTPException(
                        400,
                        "a subscription streams: ask for 'Accept: text/event-stream' (GraphQL "
                        "over SSE) or open a graphql-transport-ws WebSocket",
                    ) from exc
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
        state = request_state(request.scope)
        sequence, state.event_sequence = state.event_sequence, None
        if sequence is not None:
            # the SSE event's id (FeedEventStream takes it out of the body)
            body["extensions"] = {**(body.get("extensions") or {}), _SSE_ID: sequence}
        if result.errors:
            state.uncacheable = True
            for error in result.errors:
                extensions = error.extensions or {}
                if extensions.get("code") == UnavailableError.code:
                    state.unavailable = extensions.get("retryAfter", UnavailableError.RETRY_AFTER)
        if is_request_error(result):
            state.request_errors += 1
            if state.media_type == GRAPHQL_RESPONSE_JSON:
                body.pop("data", None)
        return body

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        response = await super().run(request, context, root_value)
        state = request_state(request.scope)
        media_type = state.media_type
        if (
            isinstance(response, Response)
            and media_type
            and not isinstance(response, HTMLResponse | StreamingResponse)
        ):
            response.headers["content-type"] = f"{media_type}; charset=utf-8"
            if media_type == GRAPHQL_RESPONSE_JSON and state.request_errors and not state.batch:
                response.status_code = 400
            if state.unavailable:
                # the database is down: retry the whole request (see is_outage)
                response.status_code = 503
                response.headers["Retry-After"] = str(state.unavailable)
        return response


def is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable-coercion errors: nothing was executed.
    (A field error always has a ``path``; these never do.)"""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(not e.path for e in errors)


def _refusal(request: Request, exc: HTTPException) -> Response:
    state = request_state(request.scope)
    headers = {"Allow": "POST"} if exc.status_code == 405 else None
    code = METHOD_NOT_ALLOWED if exc.status_code == 405 else BAD_REQUEST
    if exc.status_code == 404:
        code = "NOT_FOUND"
    return error_response(exc.status_code, exc.reason, code, state.media_type, headers)


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


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Also call ``callback`` (in the event loop) when the process is asked to stop
    (SIGTERM, SIGINT), before the handler the server installed; returns what
    restores that handler. Long-lived responses (a subscription's event stream)
    end at once instead of holding the server's graceful shutdown open. Only in
    the main thread (where signals are handled); elsewhere nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(sig: int, frame: Any) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)
        elif chained == signal.SIG_DFL:
            # nobody handled it before: what the signal would have done
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, handler)

    return restore


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
    services.set_document_check(schema_check())
    # this process's subscribers to the change feed (settingsChanged)
    hub = FeedHub(services.feed)
    graphql = TailorGraphQL(services, options, plugins, hub)
    guard = ProtocolGuard(graphql, options.limits, graphql.documents, services.apps)
    console = Console(services, plugins.installed)
    metrics = Metrics(services, options.metrics_customizations)

    async def readiness_page(request: Request) -> Response:
        """The old readiness page: now the console's fleet page (sign in there)."""
        target = request.query_params.get("target")
        query = f"?target={quote(target)}" if target else ""
        return RedirectResponse(f"/console/fleet{query}", status_code=308)

    registry = services.registry

    # webhooks hear every change: committed here, or by another worker (FEED)
    deliverer = WebhookDeliverer(services.webhooks)

    def on_message(topic: str) -> None:
        # a change feed notice (every write) changes no registration; one naming a
        # tenant wakes the hub only where someone listens to that tenant
        if is_feed(topic):
            hub.wake(feed_tenant(topic))
            deliverer.wake(topic)
        else:
            # every notice may follow a commit that fed the feed (after a
            # reconnect, REGISTRY stands for every notice lost): read it once
            hub.wake()
            registry.changed_elsewhere()

    listener = Listener(services.engine.url.render_as_string(hide_password=False), on_message)

    probes = Probes(services, plugins)

    background = Background()
    # what is kept for a while is pruned here (docs: "Environment variables")
    background.every(PRUNE_SECONDS, "prune change feed", services.feed.prune)
    background.every(PRUNE_SECONDS, "prune observations", services.observations.prune)
    background.every(PRUNE_SECONDS, "prune kept readiness runs", services.triage.prune_runs)
    # /readyz waits for it: every pinned version in this node's cache
    background.run("materialize pinned customizations", probes.warm_up)
    # /metrics: hook calls seen within seconds, this worker's cache counts summed
    flush = max(1.0, plugins.options.health_flush_seconds)
    background.every(flush, "flush customization observations", plugins.flush_health)
    background.every(flush, "sync metrics", metrics.sync_now)
    # recorded hook inputs written, and which tenants record re-read (issue 24)
    background.every(flush, "flush recorded inputs", plugins.flush_samples)
    background.every(PRUNE_SECONDS, "prune recorded inputs", services.samples.prune)
    # scheduled change requests (applyAt): every worker looks, each is applied once
    background.every(APPLY_EVERY, "apply scheduled changes", services.changes.apply_due)
    background.every(PRUNE_SECONDS, "prune webhook deliveries", services.webhooks.prune)
    background.run("deliver webhooks", deliverer.run)
    background.run("change feed hub", hub.run)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await listener.start()
        plugins.start()
        stop_hearing = on_commit(deliverer.wake)
        background.start()
        probes.watch_signals()
        # this process's commits (the only notice on SQLite)
        stop_hearing_commits = on_commit(hub.wake)
        # subscriptions end (cleanly: a 'complete') when the server is asked to stop,
        # before it waits for open connections to close
        restore_signals = on_stop_signal(hub.close)
        # what start-up built lives as long as the process: keep it out of the
        # collector's generations, so its pauses stay short (p99)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            restore_signals()
            stop_hearing_commits()
            hub.close()
            probes.drain()
            probes.restore_signals()
            await background.stop()
            stop_hearing()
            await listener.stop()
            if graphql.cache is not None:
                await graphql.cache.close()
            await plugins.close()
            await services.close()

    app = Starlette(
        routes=[
            Route(
                "/graphql",
                RequestLog(Cors(Authenticate(guard, services), services)),
            ),
            # OpenFeature's remote evaluation protocol (the same per-token budget), and
            # its change notifications (a stream ticket in the URL, fed by the hub)
            Route(
                "/ofrep/{rest:path}",
                RequestLog(
                    Cors(
                        Ofrep(
                            services,
                            graphql.cache,
                            guard.rate,
                            options.limits.max_body_bytes,
                            EventStreams(services.tokens, hub),
                        ),
                        services,
                    )
                ),
            ),
            # graphql-transport-ws (subscriptions only; authenticated by TailorGraphQL)
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", probes.healthz, methods=["GET"]),
            Route("/readyz", probes.readyz, methods=["GET"]),
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
