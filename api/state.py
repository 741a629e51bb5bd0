"""What one request's middlewares, GraphQL view and resolvers tell each other.

One typed object, :class:`RequestState`, kept in the ASGI scope's ``state``
(starlette's request state) and reached through :func:`request_state` only: the
HTTP layer (``api.http``: request id, principal, media type, operations, the
bill), the GraphQL layer (``api.graphql``: an uncacheable answer, masked errors,
the SSE event's sequence) and the console (``api.web``: the signed-in principal)
read and write its attributes. It lives at the root of ``api`` because all three
layers use it and none may import the others' modules.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.http.ratelimit import Bill
    from core.model.auth import Principal

#: the key of :class:`RequestState` in ``scope["state"]``
STATE_KEY = "tailor"


@dataclass(eq=False)
class RequestState:
    """One request's state (a new one per request; the defaults: not set yet)."""

    #: X-Request-ID, given or made up (api.http.logging)
    request_id: str = ""
    #: who calls (None: not authenticated yet)
    principal: Principal | None = None
    #: the rate-limit bucket of the request's token (api.http.ratelimit.bucket_key)
    rate_key: str = ""
    #: the negotiated response media type (None: not negotiated yet)
    media_type: str | None = None
    #: a subscription over server-sent events (refusals before the stream are JSON)
    event_stream: bool = False
    #: the parsed request parameters (a list of one for a single request)
    operations: list[dict[str, Any]] = field(default_factory=list)
    #: the request is a batch (a JSON array of operations)
    batch: bool = False
    #: cost units charged (the X-Request-Cost header; None: nothing charged)
    charged: float | None = None
    #: what the request still owes once it is about to run (api.http.graphql_view.settle_bill)
    bill: Bill | None = None
    #: the answer must not be kept by the response cache (an error, a failure)
    uncacheable: bool = False
    #: unexpected errors masked in the answer (the access log counts them)
    masked_errors: int = 0
    #: parse, validation and variable errors (nothing ran: 400 for graphql-response+json)
    request_errors: int = 0
    #: the database is unavailable: retry after this many seconds (503)
    unavailable: int | None = None
    #: the change-feed sequence of the server-sent event being answered (its id)
    event_sequence: int | None = None


def request_state(scope: MutableMapping[str, Any]) -> RequestState:
    """The request's :class:`RequestState` (made on first use)."""
    state = scope.setdefault("state", {})
    found = state.get(STATE_KEY)
    if found is None:
        found = state[STATE_KEY] = RequestState()
    return found
