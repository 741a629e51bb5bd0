"""What the browser tests share: Debian's Chromium driven by Playwright for
Python, and the real app under uvicorn. A test is skipped (saying why) when
chromium or Playwright is missing, unless TAILOR_REQUIRE_BROWSER=1 (CI), which
makes a missing browser a failure."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from starlette.types import ASGIApp

from api.http.app import AppOptions, create_app
from core.store.services import Services
from tests.servers import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_or_skip() -> None:
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            missing = "playwright (Python) is not installed"
    if missing:
        if os.environ.get("TAILOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here, but {missing}")
        pytest.skip(f"browser test skipped: {missing}")


def serve_in_thread(make_app: Callable[[], ASGIApp], port: int) -> Iterator[str]:
    """``make_app()`` (called in the server's own thread and event loop) under
    uvicorn on 127.0.0.1:``port``; yields its URL, stops it at the end."""
    holder: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = make_app()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        holder["server"] = uvicorn.Server(config)
        loop.run_until_complete(holder["server"].serve())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(200):
        if holder.get("server") is not None and holder["server"].started:
            break
        threading.Event().wait(0.05)
    else:  # pragma: no cover
        pytest.fail("the server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        holder["server"].should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(database_url: str) -> Iterator[str]:
    """The real app (``--demo`` options) under uvicorn, in a thread with its own
    event loop and services."""
    browser_or_skip()
    yield from serve_in_thread(
        lambda: create_app(Services.from_url(database_url), AppOptions(demo=True)), free_port()
    )
