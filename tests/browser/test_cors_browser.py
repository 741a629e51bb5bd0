"""CORS in real headless Chromium: a page served from another origin (a second
local port) reads a tenant's settings from Tailor with an app token that allows
that origin; from an origin no token allows, the browser refuses to let the page
read anything (the preflight is refused)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser.conftest import ARGS, CHROMIUM, serve_in_thread
from tests.conftest import ADMIN
from tests.servers import free_port

PAGE = "<!doctype html><html><head><title>shop</title></head><body>shop front</body></html>"
QUERY = '{ settings(tenant: "acme", keys: ["billing.invoice.due_days"]) { ... on Settings { items { key value } } } }'  # noqa: E501
FETCH = """async ([url, token, query]) => {
  try {
    const r = await fetch(url + "/graphql", {
      method: "POST",
      headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
      body: JSON.stringify({query}),
    });
    return {status: r.status, body: await r.json()};
  } catch (e) {
    return {failed: String(e)};
  }
}"""


def _shop() -> Starlette:
    async def page(_request):
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/", page)])


@pytest.fixture
def shop_port() -> int:
    return free_port()


@pytest.fixture
def shop(server: str, shop_port: int) -> Iterator[str]:
    """The front-end app's own origin: another port of 127.0.0.1."""
    yield from serve_in_thread(_shop, shop_port)


async def test_a_page_on_an_allowed_origin_reads_settings(server, shop, services, tenant):
    await services.settings.set(ADMIN, tenant, "billing.invoice.due_days", 45)
    await services.apps.register(ADMIN, "shop", tenant)  # its tokens name it
    allowed, _ = await services.tokens.create("app", [tenant], origins=[shop], app="shop")
    elsewhere, _ = await services.tokens.create("app", [tenant])
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(shop)
            assert page.url.startswith(shop) and not shop.startswith(server)

            got = await page.evaluate(FETCH, [server, allowed, QUERY])
            assert got == {
                "status": 200,
                "body": {
                    "data": {
                        "settings": {"items": [{"key": "billing.invoice.due_days", "value": 45}]}
                    }
                },
            }
            # the same page with a token that allows no origin: Tailor answers, but
            # the browser does not let the page read it
            refused = await page.evaluate(FETCH, [server, elsewhere, QUERY])
            assert "failed" in refused and "Failed to fetch" in refused["failed"], refused
        finally:
            await browser.close()


async def test_a_page_on_an_origin_no_token_allows_reads_nothing(server, shop, services, tenant):
    token, _ = await services.tokens.create("app", [tenant], origins=["https://shop.example"])
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(shop)
            refused = await page.evaluate(FETCH, [server, token, QUERY])
            assert "failed" in refused and "Failed to fetch" in refused["failed"], refused
        finally:
            await browser.close()
