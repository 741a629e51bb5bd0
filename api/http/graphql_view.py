"""The GraphQL view: strawberry's ASGI view speaking GraphQL-over-HTTP for Tailor
(the response cache, the negotiated media type, refusals as GraphQL errors) and its
subscription transports (GraphQL over SSE, ``graphql-transport-ws``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.streaming import HTTPStreamTransport, SSETransport
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.graphql.context import Context
from api.graphql.cost import CACHED_COST
from api.graphql.document_cache import DocumentStore
from api.graphql.schema import build_schema
from api.http.bearer import bearer_principal
from api.http.logging import request_id_from
from api.http.protocol import (
    BAD_REQUEST,
    GRAPHQL_RESPONSE_JSON,
    METHOD_NOT_ALLOWED,
    error_response,
    rate_limited,
)
from api.http.response_cache import ResponseCache, from_entry, matches, not_modified
from api.state import RequestState, request_state
from api.web.views import GRAPHIQL_HEADERS
from api.web.views import HERE as WEB_DIR
from core.model.auth import Principal
from core.model.errors import AuthenticationError, DatabaseError, UnavailableError
from core.store.feed_hub import FeedHub
from core.store.services import Services
from plugins.runtime import PluginRuntime, guard

if TYPE_CHECKING:
    from api.http.app import AppOptions


#: subscriptions one graphql-transport-ws connection may hold at once
MAX_SUBSCRIPTIONS_PER_CONNECTION = 20

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


def served_from_cache(state: RequestState) -> None:
    """The response cache answers: the request costs :data:`CACHED_COST` (what the
    guard (:class:`api.http.protocol.ProtocolGuard`) charged up front is given back
    but that; the rest is never charged)."""
    bill, state.bill = state.bill, None
    if bill is not None:
        bill.refund(CACHED_COST)
        state.charged = CACHED_COST


def settle_bill(state: RequestState) -> Response | None:
    """Charge what the request still owes (its price beyond the minimum the guard
    took) just before it runs: None when paid, else the 429 to answer instead.
    Called by the view only when the response cache did not answer."""
    bill, state.bill = state.bill, None
    if bill is None or bill.amount <= 0:
        return None
    state.charged = bill.price
    wait = bill.pay()
    if not wait:
        return None
    refusal = rate_limited(bill.limit or bill.rate.default, wait)
    response = error_response(refusal.status, refusal.message, refusal.code, state.media_type)
    response.headers.update(refusal.headers)
    return response


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
        refusal = settle_bill(state)
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
