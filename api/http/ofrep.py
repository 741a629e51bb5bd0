"""The OpenFeature Remote Evaluation Protocol (OFREP), so every OpenFeature SDK
reads a tenant's settings.

Implemented: the OFREP OpenAPI description 0.3.0 at open-feature/protocol commit
:data:`SPEC_COMMIT` (``service/openapi.yaml``), its two core endpoints:

- ``POST /ofrep/v1/evaluate/flags`` (bulk, for client-side providers): every
  setting of the tenant's release, with an ``ETag``; a matching
  ``If-None-Match`` gets ``304`` and no body;
- ``POST /ofrep/v1/evaluate/flags/{key}`` (one flag, for server-side providers).

A setting key is a flag key. The tenant and environment come from the evaluation
context (``{"context": {"tenant": "acme", "environment": "production"}}``); a
token scoped to one tenant (every ``app`` token) reads its own by default. The
answer is the ``settings`` resolution GraphQL serves (:meth:`SettingsService.resolve`,
customizations included): ``value`` the resolved value, ``reason`` ``STATIC`` for a
default and ``TARGETING_MATCH`` for an override or a customization's value,
``variant`` the source (``DEFAULT``, ``TENANT``, ``ENVIRONMENT``,
``CUSTOMIZATION:<name>``), ``metadata`` the source and the revision of the override
that set it (0 for a default or a customization's value). A setting whose value is
null is answered without ``value`` (the spec's "code default": the SDK uses the
default written in the app). Secret settings are never served: the bulk answer
leaves them out, asking for one is ``FLAG_NOT_FOUND``.

Errors as the spec says: ``400`` with ``PARSE_ERROR`` (not a JSON object) or
``INVALID_CONTEXT`` (no or unknown tenant or environment), ``404`` with
``FLAG_NOT_FOUND``, ``401`` (no, unknown, revoked or expired token), ``403`` (a
tenant outside the token's scope), ``429`` with ``Retry-After`` (the per-token rate
limit GraphQL charges: :mod:`api.http.ratelimit`; the bulk answer is priced as the
``settings`` query of a whole catalog, one flag as one key, an answer from the
cache at the minimum), ``503`` with ``Retry-After`` (database outage). Error bodies
carry ``errorCode`` and ``errorDetails``.

Answers are kept in the response cache (:mod:`api.http.response_cache`) under the
tenant's data version, read in one statement per request: a warm request runs
that statement only, whatever the catalog's size.

The bulk answer lists ``eventStreams``: a server-sent events URL, carrying a
stream ticket for the tenant instead of the token, that sends
``refetchEvaluation`` within a second of a change (:mod:`api.http.ofrep_stream`).
The ticket is spliced into the cached answer per token (no statement), and the
ETag covers it: a new ticket comes with a new ETag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from api.graphql.cost import ITEMS_PER_UNIT, MIN_COST, ROOT_FIELD_COSTS, WHOLE_CATALOG_ITEMS
from api.http.bearer import bearer_principal
from api.http.ofrep_stream import (
    MEDIA_TYPE,
    STREAM_PATH,
    TICKET_PARAMETER,
    EventStreams,
    last_event_id,
)
from api.http.ratelimit import Bill, RateLimiter, bucket_key, retry_after
from api.http.response_cache import (
    Lookup,
    Plan,
    ResponseCache,
    etag_of,
    from_entry,
    matches,
    not_modified,
)
from api.state import request_state
from core.model.auth import Principal
from core.model.errors import (
    AuthenticationError,
    DatabaseError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from core.store.services import Services
from core.store.settings import DEFAULT, ENVIRONMENT, TENANT, Resolution, ResolvedSetting

#: the open-feature/protocol commit whose service/openapi.yaml (OFREP 0.3.0) this implements
SPEC_COMMIT = "d1a63a4e84e6297599ce566126e7764c1419f80a"
SPEC_VERSION = "0.3.0"
#: the bulk endpoint; one flag is this plus ``/{key}``
BULK_PATH = "/ofrep/v1/evaluate/flags"
JSON_TYPE = "application/json"
#: OpenFeature reasons (https://openfeature.dev/specification/types/#resolution-reason)
STATIC = "STATIC"
TARGETING_MATCH = "TARGETING_MATCH"
#: OpenFeature error codes the protocol answers with
PARSE_ERROR = "PARSE_ERROR"
INVALID_CONTEXT = "INVALID_CONTEXT"
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
GENERAL = "GENERAL"
#: the evaluation context's attributes Tailor reads
TENANT_ATTRIBUTE = "tenant"
ENVIRONMENT_ATTRIBUTE = "environment"
#: what an evaluation costs (api.graphql.cost): the bulk answer is a whole catalog,
#: as ``settings(tenant:)`` is; one flag is ``settings(keys: [key])``
BULK_COST = ROOT_FIELD_COSTS["settings"] + WHOLE_CATALOG_ITEMS // ITEMS_PER_UNIT
FLAG_COST = max(MIN_COST, ROOT_FIELD_COSTS["settings"])
#: the response cache's "document" of each kind of answer
BULK_DOCUMENT = "ofrep:v1:bulk"
FLAG_DOCUMENT = "ofrep:v1:flag"


class Refusal(Exception):
    """An OFREP error answer: the status, the body's ``errorCode`` (None for
    statuses whose body has none) and ``errorDetails``."""

    def __init__(
        self,
        status: int,
        details: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(details)
        self.status = status
        self.details = details
        self.code = code
        self.headers = dict(headers or {})

    def response(self, key: str | None) -> Response:
        body: dict[str, Any] = {}
        if key is not None and self.code is not None:
            body["key"] = key
        if self.code is not None:
            body["errorCode"] = self.code
        body["errorDetails"] = self.details
        return Response(
            orjson.dumps(body),
            status_code=self.status,
            headers=self.headers,
            media_type=JSON_TYPE,
        )


class Ofrep:
    """The ASGI app of ``/ofrep/``: see the module docstring."""

    def __init__(
        self,
        services: Services,
        cache: ResponseCache | None,
        rate: RateLimiter,
        max_body_bytes: int,
        streams: EventStreams | None = None,
    ) -> None:
        self.services = services
        self.cache = cache
        self.rate = rate
        self.max_body_bytes = max_body_bytes
        #: change notifications (None: bulk answers list no eventStreams)
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        key: str | None = None
        if path.rstrip("/") == STREAM_PATH and self.streams is not None:
            await self._stream(self.streams, scope, receive, send)
            return
        if path.rstrip("/") == BULK_PATH:
            pass
        elif path.startswith(BULK_PATH + "/") and "/" not in path[len(BULK_PATH) + 1 :]:
            key = unquote(path[len(BULK_PATH) + 1 :])
        else:
            await Refusal(
                404,
                f"no OFREP endpoint at {path!r}: POST {BULK_PATH} (every flag) or "
                f"{BULK_PATH}/{{key}} (one flag)",
            ).response(None)(scope, receive, send)
            return
        try:
            response = await self._answer(scope, receive, key)
        except Refusal as refusal:
            response = refusal.response(key)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, key: str | None) -> Response:
        if scope["method"] != "POST":
            raise Refusal(
                405, f"OFREP evaluates over POST, not {scope['method']}", None, {"Allow": "POST"}
            )
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        principal = await self._principal(authorization)
        request_state(scope).principal = principal
        price = BULK_COST if key is None else FLAG_COST
        bill = self._charge(bucket_key(authorization or ""), price)
        context = _context(await self._body(receive, headers))
        tenant, environment = _tenant_and_environment(context, principal)
        try:
            principal.require_read_settings(tenant)
        except PermissionDeniedError as exc:
            raise Refusal(403, exc.message) from None

        plan = Plan(BULK_DOCUMENT if key is None else FLAG_DOCUMENT, (tenant,), (environment, key))
        lookup = await self._lookup(plan)
        if lookup is not None and lookup.entry is not None:
            if key is not None:
                return from_entry(lookup.entry)
            body, etag = lookup.entry.body, lookup.entry.etag
        else:
            # not from the cache: the request pays the rest of its price
            wait = bill.pay()
            if wait:
                raise self._limited(wait)
            resolution = await self._resolve(principal, tenant, environment, key)
            body = orjson.dumps(bulk(resolution) if key is None else one(resolution, key))
            response = Response(body, media_type=JSON_TYPE)
            etag = etag_of(body)
            if lookup is not None and self.cache is not None and not resolution.failures:
                stored = await self.cache.store(lookup, response)
                etag = stored.etag if stored is not None else etag
            if key is not None:
                response.headers["ETag"] = etag
                response.headers["Cache-Control"] = "private, no-cache"
                return response
        if self.streams is not None:
            # the evaluation is the same for every token; its eventStreams URL is not
            ticket = self.streams.ticket_for(principal, authorization or "", tenant, environment)
            if ticket is not None:
                listing = self.streams.listing(scope.get("root_path", ""), ticket)
                body = with_event_streams(body, listing)
                etag = etag_of(etag.encode() + listing)
        if matches(headers.get("if-none-match"), etag):
            return not_modified(etag)
        return Response(
            body,
            media_type=JSON_TYPE,
            headers={"ETag": etag, "Cache-Control": "private, no-cache"},
        )

    async def _stream(
        self, streams: EventStreams, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """``GET /ofrep/v1/events?ticket=...``: see :mod:`api.http.ofrep_stream`."""
        try:
            if scope["method"] != "GET":
                raise Refusal(
                    405,
                    f"the event stream is read with GET, not {scope['method']}",
                    None,
                    {"Allow": "GET"},
                )
            headers = Headers(scope=scope)
            text = QueryParams(scope.get("query_string", b"")).get(TICKET_PARAMETER)
            try:
                ticket, principal = await streams.admit(text)
            except AuthenticationError as exc:
                raise Refusal(401, exc.message) from None
            except DatabaseError as exc:
                raise _outage(exc) from None
            # the ticket's token decides which origins may read the stream (CORS)
            request_state(scope).principal = principal
            if streams.hub.stopping:
                raise Refusal(
                    503, "the server is stopping: reconnect", GENERAL, {"Retry-After": "1"}
                )
            try:
                after = last_event_id(headers.get("last-event-id"))
                subscription = await streams.subscribe(ticket, principal, after)
            except PermissionDeniedError as exc:
                raise Refusal(403, exc.message) from None
            except NotFoundError as exc:
                raise Refusal(404, exc.message, GENERAL) from None
            except InvalidInputError as exc:
                if streams.hub.stopping:
                    raise Refusal(
                        503, "the server is stopping: reconnect", GENERAL, {"Retry-After": "1"}
                    ) from None
                raise Refusal(400, exc.message, GENERAL) from None
            except DatabaseError as exc:
                raise _outage(exc) from None
        except Refusal as refusal:
            await refusal.response(None)(scope, receive, send)
            return
        response = StreamingResponse(
            streams.body(ticket, subscription),
            media_type=MEDIA_TYPE,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        await response(scope, receive, send)

    async def _principal(self, authorization: str | None) -> Principal:
        try:
            return await bearer_principal(self.services, authorization)
        except AuthenticationError as exc:
            raise Refusal(401, exc.message, None, {"WWW-Authenticate": "Bearer"}) from None
        except DatabaseError as exc:
            raise _outage(exc) from None

    def _charge(self, key: str, price: int) -> Bill:
        """The minimum now; the rest (the returned bill) only when the answer is
        computed, not served from the cache."""
        wait = self.rate.charge(key, MIN_COST, price)
        if wait:
            raise self._limited(wait)
        return Bill(self.rate, key, price - MIN_COST, price)

    def _limited(self, wait: float) -> Refusal:
        return Refusal(
            429,
            f"this token has used its request budget ({round(self.rate.per_second * 60)} cost "
            "units a minute, refused requests included); retry after the time in 'Retry-After'",
            GENERAL,
            {"Retry-After": retry_after(wait)},
        )

    async def _body(self, receive: Receive, headers: Headers) -> Any:
        declared = headers.get("content-length")
        too_large = Refusal(
            413, f"the request body is larger than {self.max_body_bytes} bytes", PARSE_ERROR
        )
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Refusal(
                400,
                f"the request body is not valid JSON ({exc.msg} at {exc.pos}): send "
                '{"context": {"tenant": "..."}}',
                PARSE_ERROR,
            ) from None

    async def _lookup(self, plan: Plan) -> Lookup | None:
        if self.cache is None:
            return None
        try:
            return await self.cache.lookup(plan)
        except DatabaseError as exc:
            raise _outage(exc) from None

    async def _resolve(
        self, principal: Principal, tenant: str, environment: str | None, key: str | None
    ) -> Resolution:
        try:
            return await self.services.settings.resolve(
                principal, tenant, environment, None if key is None else [key]
            )
        except NotFoundError as exc:
            if exc.kind == "setting":
                raise Refusal(
                    404, f"flag {key!r} not found: {exc.message}", FLAG_NOT_FOUND
                ) from None
            raise Refusal(400, _context_hint(exc.message), INVALID_CONTEXT) from None
        except PermissionDeniedError as exc:
            raise Refusal(403, exc.message) from None
        except DatabaseError as exc:
            raise _outage(exc) from None


def with_event_streams(body: bytes, listing: bytes) -> bytes:
    """A bulk answer (a JSON object) with ``eventStreams`` added at its end (one
    copy of the body: ~7 us for 130 KB)."""
    return b"".join((memoryview(body)[:-1], b',"eventStreams":', listing, b"}"))


def _outage(exc: DatabaseError) -> Refusal:
    error = exc if isinstance(exc, UnavailableError) else UnavailableError()
    return Refusal(503, error.message, GENERAL, {"Retry-After": str(error.retry_after)})


def _context(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise Refusal(
            400,
            'the request body must be a JSON object: {"context": {"tenant": "..."}}',
            PARSE_ERROR,
        )
    context = body.get("context", {})
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise Refusal(400, _context_hint("'context' must be an object"), INVALID_CONTEXT)
    return context


def _context_hint(message: str) -> str:
    return (
        f"{message}; the evaluation context names the tenant and, optionally, the "
        'environment: {"tenant": "acme", "environment": "production"}'
    )


def _tenant_and_environment(
    context: Mapping[str, Any], principal: Principal
) -> tuple[str, str | None]:
    tenant = context.get(TENANT_ATTRIBUTE)
    if tenant is None:
        if len(principal.tenants) != 1:
            raise Refusal(
                400,
                _context_hint(
                    "no tenant in the evaluation context (only a token scoped to one "
                    "tenant, as every app token is, reads its own by default)"
                ),
                INVALID_CONTEXT,
            )
        (tenant,) = principal.tenants
    environment = context.get(ENVIRONMENT_ATTRIBUTE)
    for name, value in ((TENANT_ATTRIBUTE, tenant), (ENVIRONMENT_ATTRIBUTE, environment)):
        if value is not None and (not isinstance(value, str) or not value or "\x00" in value):
            raise Refusal(
                400, _context_hint(f"{name!r} must be a non-empty string"), INVALID_CONTEXT
            )
    return tenant, environment


def reason_of(source: str) -> str:
    """``STATIC`` for a release default, ``TARGETING_MATCH`` for an override or a
    customization's value (this tenant, this environment)."""
    return STATIC if source == DEFAULT else TARGETING_MATCH


def revision_of(setting: ResolvedSetting) -> int:
    """The revision of the override that set the value (0: a default, or a
    customization's value)."""
    if setting.source == ENVIRONMENT and setting.environment_override is not None:
        return setting.environment_override.revision
    if setting.source == TENANT and setting.tenant_override is not None:
        return setting.tenant_override.revision
    return 0


def evaluation(setting: ResolvedSetting) -> dict[str, Any]:
    """One flag's evaluation (the spec's ``evaluationSuccess``)."""
    flag: dict[str, Any] = {"key": setting.key}
    if setting.value is not None:
        flag["value"] = setting.value
    flag["reason"] = reason_of(setting.source)
    flag["variant"] = setting.source
    flag["metadata"] = {"source": setting.source, "revision": revision_of(setting)}
    return flag


def bulk(resolution: Resolution) -> dict[str, Any]:
    """The bulk answer: every setting but the secret ones, and the flag set's
    metadata (tenant, release and environment)."""
    metadata: dict[str, Any] = {"tenant": resolution.tenant, "release": resolution.release}
    if resolution.environment is not None:
        metadata["environment"] = resolution.environment
    return {
        "flags": [evaluation(s) for s in resolution.settings if not s.definition.secret],
        "metadata": metadata,
    }


def one(resolution: Resolution, key: str) -> dict[str, Any]:
    for setting in resolution.settings:
        if setting.key == key:
            if setting.definition.secret:
                raise Refusal(
                    404,
                    f"flag {key!r} not found: it is a secret setting, never served over OFREP",
                    FLAG_NOT_FOUND,
                )
            return evaluation(setting)
    # a failing customization hid the setting's definition
    raise Refusal(404, f"flag {key!r} not found for tenant {resolution.tenant!r}", FLAG_NOT_FOUND)
