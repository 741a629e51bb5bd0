"""The typed GraphQL context: one per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket

from core.model.auth import Principal
from core.store.feed_hub import FeedHub
from core.store.services import Services
from plugins.runtime import PluginRuntime


@dataclass
class Context:
    services: Services
    principal: Principal
    request_id: str
    #: the plugin runtime: installed and refused customizations
    plugins: PluginRuntime
    #: the HTTP request, or the WebSocket of a graphql-transport-ws connection
    request: Request | WebSocket | None = None
    #: this process's change feed subscribers (None: no subscriptions served)
    feed_hub: FeedHub | None = None
    #: graphql-transport-ws: the ``connection_init`` payload (set by strawberry)
    connection_params: dict[str, Any] | None = None
    #: the caller's principal again, from its token as it is now (raises
    #: AuthenticationError once the token is revoked or expired): long-lived
    #: subscriptions call it before each event
    reauthenticate: Callable[[], Awaitable[Principal]] | None = None


Info = strawberry.Info[Context, None]
