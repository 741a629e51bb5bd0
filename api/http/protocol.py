"""The GraphQL-over-HTTP protocol layer (https://graphql.github.io/graphql-over-http/).

:class:`ProtocolGuard` sits in front of strawberry's view. It negotiates the
response media type (``application/graphql-response+json`` when the client
prefers it, ``application/json`` otherwise), and refuses what is not a
well-formed GraphQL-over-HTTP request before anything runs: unsupported methods
(405), unacceptable ``Accept`` (406), bodies that are too large (413), not JSON
(415), not UTF-8, not parseable, without a query, with parameters of the wrong
type, or batches beyond the limit (400). Every refusal is a GraphQL error body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from api.graphql.cost import (
    COST_CODE,
    ITEMS_PER_UNIT,
    MIN_COST,
    WHOLE_CATALOG_ITEMS,
    request_cost,
)
from api.graphql.document_cache import DocumentStore
from api.graphql.limits import GraphQLLimits
from api.http.ratelimit import Bill, Limit, RateLimiter, retry_after
from api.http.trusted import DocumentRefusal, requested_hash, resolve_documents
from api.state import RequestState, request_state
from core.model.auth import Principal
from core.store.apps import AppService
from plugins.archive import MAX_UPLOAD_BYTES_ENV, max_upload_bytes

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
#: a GraphQL multipart request (uploads)
MULTIPART = "multipart/form-data"
#: server-sent events: a subscription over GraphQL over SSE
EVENT_STREAM = "text/event-stream"

#: codes in ``errors[].extensions.code`` of protocol refusals
BAD_REQUEST = "BAD_REQUEST"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
RATE_LIMITED = "RATE_LIMITED"
#: response header: the cost units this request was charged (api.graphql.cost)
COST_HEADER = "X-Request-Cost"


class RequestRefused(Exception):
    """A request refused before strawberry sees it: not a well-formed
    GraphQL-over-HTTP request, over a limit, or over its rate (an HTTP status, a
    code and a message; not :class:`plugins.runtime.protocol.ProtocolError`, the
    worker wire's)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def negotiate(accept: str | None) -> str | None:
    """The response media type for an ``Accept`` header, or None when the client
    accepts neither GraphQL media type. No header (or ``*/*``) means
    ``application/json``; on equal quality, ``application/graphql-response+json``
    wins over ``application/json``, and both win over wildcards."""
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media, _, raw_params = part.partition(";")
        media = media.strip().lower()
        quality = _quality(raw_params)
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE_JSON:
            candidate = (quality, 3, GRAPHQL_RESPONSE_JSON)
        elif media == JSON:
            candidate = (quality, 2, JSON)
        elif media in ("*/*", "application/*"):
            candidate = (quality, 1, JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None


def wants_event_stream(accept: str | None) -> bool:
    """A GraphQL-over-SSE request (``Accept: text/event-stream``): its answer is a
    stream of events; what refuses it before the stream starts is JSON."""
    return any(
        part.partition(";")[0].strip().lower() == EVENT_STREAM for part in (accept or "").split(",")
    )


def _quality(raw_params: str) -> float:
    for param in raw_params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


def error_response(
    status: int,
    message: str,
    code: str,
    media_type: str | None = JSON,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A GraphQL error body (no ``data`` entry) in the negotiated media type."""
    return graphql_response(error_body(message, code), status, media_type or JSON, headers)


def graphql_response(
    body: Any, status: int, media_type: str, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=dict(headers or {}),
        media_type=f"{media_type}; charset=utf-8",
    )


def wants_ide(request: Request) -> bool:
    """A browser asking for the GraphiQL page (which loads without a token)."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def rate_limited(limit: Limit, wait: float) -> RequestRefused:
    return RequestRefused(
        429,
        RATE_LIMITED,
        f"this token has used its request budget ({limit.per_minute} cost units a "
        "minute, refused requests included; TAILOR_RATE_LIMITS sets it per role and "
        "tenant); retry after the time in 'Retry-After'",
        {"Retry-After": retry_after(wait)},
    )


class ProtocolGuard:
    """Refuse malformed GraphQL-over-HTTP requests; hand well-formed ones on.

    Sets the request state's (:class:`api.state.RequestState`) ``media_type``,
    ``operations``, ``batch`` and ``event_stream``, and what it was charged.
    """

    def __init__(
        self,
        app: Any,
        limits: GraphQLLimits,
        documents: DocumentStore,
        apps: AppService | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        #: the app's parsed documents (the request's price reads them)
        self.documents = documents
        #: trusted documents (None: requests must send their text)
        self.apps = apps
        self.rate = RateLimiter(
            limits.rate_limit_per_minute, limits.rate_limit_burst, rules=limits.rate_limits
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        state = request_state(scope)
        if wants_ide(request):
            await self.app(scope, receive, send)
            return
        accept = request.headers.get("accept")
        state.event_stream = wants_event_stream(accept)
        media_type = JSON if state.event_stream else negotiate(accept)
        state.media_type = media_type or JSON
        send = _with_cost(state, send)
        upstream = receive
        try:
            if media_type is None:
                raise RequestRefused(
                    406,
                    NOT_ACCEPTABLE,
                    f"cannot answer in any media type of 'Accept: {request.headers['accept']}'; "
                    f"accept {GRAPHQL_RESPONSE_JSON} or {JSON} ({EVENT_STREAM} for a "
                    "subscription)",
                )
            if request.method == "POST" and _is_multipart(request.headers.get("content-type")):
                # a GraphQL multipart request (an upload: publishCustomization): its
                # own size limit, the upload's beside the GraphQL body's
                body = await self._read_body(
                    request, self.limits.max_body_bytes + max_upload_bytes(), multipart=True
                )
                payload = await _multipart_operations(body, scope)
                receive = _replay(body, receive)
            elif request.method == "POST":
                body = await self._read_body(request)
                payload = _parse_json(body)
                receive = _replay(body, receive)
                # media types are case-insensitive (RFC 9110); strawberry's view
                # compares them as written: hand it the canonical spelling
                scope["headers"] = [
                    (name, JSON.encode() if name == b"content-type" else value)
                    for name, value in scope["headers"]
                ]
            elif request.method == "GET":
                payload = _query_params(request)
            else:
                raise RequestRefused(
                    405,
                    METHOD_NOT_ALLOWED,
                    f"GraphQL is served over GET and POST, not {request.method}",
                    {"Allow": "GET, POST"},
                )
            state.operations = self._operations(payload)
            state.batch = isinstance(payload, list)
            if await self._documents(state, request, payload):
                # the stored texts take the ids' place in what strawberry reads
                if request.method == "POST":
                    receive = _replay(orjson.dumps(payload), upstream)
                else:
                    scope["query_string"] = _with_query(request, state.operations[0]["query"])
            self._charge(state)
        except RequestRefused as exc:
            response = error_response(exc.status, exc.message, exc.code, state.media_type)
            response.headers.update(exc.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _read_body(
        self, request: Request, limit: int | None = None, *, multipart: bool = False
    ) -> bytes:
        if not multipart:
            _check_content_type(request.headers.get("content-type"))
        limit = self.limits.max_body_bytes if limit is None else limit
        too_large = RequestRefused(
            413,
            PAYLOAD_TOO_LARGE,
            f"the request body is larger than {limit} bytes"
            + (f" (uploads: {MAX_UPLOAD_BYTES_ENV})" if multipart else ""),
        )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def _documents(self, state: RequestState, request: Request, payload: Any) -> bool:
        """Put stored documents in place of the ids requests name (see
        :mod:`api.http.trusted`); True when the request must be re-sent so."""
        operations = state.operations
        if self.apps is None:
            if any(o.get("query") is None for o in operations):
                raise RequestRefused(400, BAD_REQUEST, "the request has no 'query'")
            return False
        principal = state.principal or Principal.nobody()
        try:
            filled = await resolve_documents(operations, principal, self.apps)
        except DocumentRefusal as exc:
            # what it cost to look: a refused request is still charged (ratelimit)
            limit = self._limit(state)
            wait = self.rate.charge(state.rate_key, MIN_COST, limit=limit)
            if wait:
                raise rate_limited(limit, wait) from None
            state.charged = MIN_COST
            raise RequestRefused(exc.status, exc.code, exc.message) from None
        if filled and _is_multipart(request.headers.get("content-type")):
            raise RequestRefused(
                400, BAD_REQUEST, "a multipart request (an upload) sends its query text"
            )
        return filled

    def _charge(self, state: RequestState) -> None:
        """Price the whole request before anything runs (:mod:`api.graphql.cost`)
        and charge the minimum now, the rest when it is about to run
        (:func:`api.http.graphql_view.settle_bill`; an answer from the response cache
        costs the minimum). A request
        dearer than one request may be is charged ``max_cost`` and refused (400);
        a token without the budget gets 429, still charged (see
        :mod:`api.http.ratelimit`)."""
        price = request_cost(state.operations, self.documents)
        key = state.rate_key
        limit = self._limit(state)
        over = price > self.limits.max_cost
        upfront = self.limits.max_cost if over else MIN_COST
        state.charged = upfront
        wait = self.rate.charge(key, upfront, min(price, self.limits.max_cost), limit)
        if wait:
            raise rate_limited(limit, wait)
        if over:
            raise RequestRefused(
                400,
                COST_CODE,
                f"the request costs {price} (readiness and foldbackCandidates 25 each, "
                f"settings 1, plus 1 per {ITEMS_PER_UNIT} keys or tenants in its lists, a "
                f"whole catalog counting {WHOLE_CATALOG_ITEMS}; summed over a batch's "
                f"operations and aliases); the limit is {self.limits.max_cost}: split it "
                "into several requests",
            )
        state.bill = Bill(self.rate, key, price - upfront, price, limit, upfront)

    def _limit(self, state: RequestState) -> Limit:
        """The calling token's budget (per role and tenant, TAILOR_RATE_LIMITS)."""
        principal = state.principal
        if principal is None:
            return self.rate.default
        return self.rate.limit_for(principal.role.value, principal.tenants)

    def _operations(self, payload: Any) -> list[dict[str, Any]]:
        if not isinstance(payload, list):
            return [_check_params(payload, "")]
        if self.limits.max_batch_size == 0:
            raise RequestRefused(
                400, BAD_REQUEST, "batched requests (a JSON array) are not accepted here"
            )
        if not payload:
            raise RequestRefused(400, BAD_REQUEST, "the batch (JSON array) is empty")
        if len(payload) > self.limits.max_batch_size:
            raise RequestRefused(
                400,
                BAD_REQUEST,
                f"the batch holds {len(payload)} operations; the limit is "
                f"{self.limits.max_batch_size}",
            )
        return [_check_params(item, f"[{i}]") for i, item in enumerate(payload)]


def _check_content_type(content_type: str | None) -> None:
    if not content_type:
        raise RequestRefused(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"a POST request needs 'Content-Type: {JSON}'",
        )
    media, _, raw_params = content_type.partition(";")
    if media.strip().lower() != JSON:
        raise RequestRefused(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"unsupported content type {media.strip()!r}: send the request as {JSON}",
        )
    for param in raw_params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise RequestRefused(
                415,
                UNSUPPORTED_MEDIA_TYPE,
                f"unsupported charset {value.strip()!r}: send the request body as UTF-8",
            )


def _is_multipart(content_type: str | None) -> bool:
    return (content_type or "").partition(";")[0].strip().lower() == MULTIPART


async def _multipart_operations(body: bytes, scope: Scope) -> Any:
    """The ``operations`` field of a GraphQL multipart request (what the request
    runs, priced like any other); the files stay for strawberry to read."""
    form_request = Request(scope, _replay(body, _no_more))
    try:
        async with form_request.form(max_files=1, max_fields=2) as form:
            operations = form.get("operations")
            if not isinstance(operations, str):
                raise RequestRefused(
                    400,
                    BAD_REQUEST,
                    "a multipart request needs an 'operations' field (the GraphQL multipart "
                    "request spec), then 'map' and the file",
                )
            return _parse_json(operations.encode())
    except MultiPartException as exc:
        raise RequestRefused(400, BAD_REQUEST, f"malformed multipart body: {exc.message}") from None


async def _no_more() -> Message:
    return {"type": "http.disconnect"}


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise RequestRefused(400, BAD_REQUEST, "the request body is empty: send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRefused(
            400, BAD_REQUEST, f"the request body is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(
            400, BAD_REQUEST, f"the request body is not valid JSON: {exc.msg} at {exc.pos}"
        ) from None


def _query_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        raw = params.get(name)
        if raw:
            try:
                params[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise RequestRefused(
                    400, BAD_REQUEST, f"the {name!r} query parameter is not valid JSON"
                ) from None
        elif name in params:
            params[name] = None
    return params


def _check_params(params: Any, where: str) -> dict[str, Any]:
    """The request parameters: ``query`` (a string, required), ``operationName``
    (string or null), ``variables`` and ``extensions`` (object or null)."""
    if not isinstance(params, dict):
        raise RequestRefused(
            400,
            BAD_REQUEST,
            f"the request{where} must be a JSON object with a 'query', not {_json_kind(params)}",
        )
    query = params.get("query")
    try:
        named = requested_hash(params, where)
    except DocumentRefusal as exc:
        raise RequestRefused(exc.status, exc.code, exc.message) from None
    if query is None and named is None:
        raise RequestRefused(
            400,
            BAD_REQUEST,
            f"the request{where} has no 'query' (or 'documentId' of a stored document)",
        )
    if query is not None and not isinstance(query, str):
        raise RequestRefused(
            400, BAD_REQUEST, f"'query'{where} must be a string, not {_json_kind(query)}"
        )
    name = params.get("operationName")
    if name is not None and not isinstance(name, str):
        raise RequestRefused(
            400, BAD_REQUEST, f"'operationName'{where} must be a string, not {_json_kind(name)}"
        )
    for key in ("variables", "extensions"):
        value = params.get(key)
        if value is not None and not isinstance(value, dict):
            raise RequestRefused(
                400, BAD_REQUEST, f"'{key}'{where} must be an object, not {_json_kind(value)}"
            )
    return params


def _with_query(request: Request, query: str) -> bytes:
    """A GET request's query string with ``query`` (a stored document's text)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "query"]
    return urlencode([*items, ("query", query)]).encode()


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def _with_cost(state: RequestState, send: Send) -> Send:
    """A ``send`` that adds :data:`COST_HEADER` (what the request was charged)."""

    async def with_cost(message: Message) -> None:
        if message["type"] == "http.response.start" and state.charged is not None:
            header = (COST_HEADER.lower().encode(), _units(state.charged).encode())
            message = {**message, "headers": [*message.get("headers", ()), header]}
        await send(message)

    return with_cost


def _units(charged: float) -> str:
    """Cost units as the header shows them: ``11``, ``0.1``."""
    return f"{charged:g}" if charged != int(charged) else str(int(charged))


def _replay(body: bytes, upstream: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the next app, then
    passes on what the server sends (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await upstream()

    return receive
