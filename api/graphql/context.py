"""The typed GraphQL context: one per request."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.requests import Request

from core.model.auth import Principal
from core.store.services import Services
from plugins.runtime import PluginRuntime


@dataclass
class Context:
    services: Services
    principal: Principal
    request_id: str
    request: Request | None = None
    #: the plugin runtime: installed and refused customizations
    plugins: PluginRuntime | None = None


Info = strawberry.Info[Context, None]
