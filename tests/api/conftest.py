"""Helpers for API tests that need the app built with other options."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest

from api.http.app import AppOptions, create_app
from core.store.services import Services
from plugins.product import load_product
from tests.conftest import fresh_runtime

ClientFactory = Callable[[AppOptions], "asynccontextmanager[httpx.AsyncClient]"]


@pytest.fixture
def client_with(services: Services) -> Callable:
    """``async with client_with(AppOptions(...)) as client:`` the real app over httpx."""

    @asynccontextmanager
    async def make(options: AppOptions) -> AsyncIterator[httpx.AsyncClient]:
        plugins = None
        if options.plugins is None:
            # what create_app would load, the packages checked once per session
            plugins = fresh_runtime(load_product())
            options = replace(options, plugins=plugins)
        transport = httpx.ASGITransport(app=create_app(services, options))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as c:
                yield c
        finally:
            if plugins is not None:
                await plugins.close()

    return make


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}
