"""A real OpenFeature web client, nobody here wrote it: the OpenFeature web SDK
with its OFREP web provider (npm; bundled in tests/browser/ofrep_web, rebuilt by
``npm ci && npm run build`` there) runs in a page on another origin (a second
local port) and reads a tenant's settings from Tailor in headless Chromium:
across origins (CORS, the app token allowing that origin), polling with
``If-None-Match`` (304 while nothing changed) and seeing a change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.browser.conftest import ARGS, CHROMIUM, serve_in_thread
from tests.conftest import ADMIN
from tests.servers import free_port

BUNDLE = Path(__file__).parent / "ofrep_web" / "openfeature-ofrep.js"
DUE = "billing.invoice.due_days"
PAGE = """<!doctype html><html><head><title>shop</title>
<script src="/openfeature-ofrep.js"></script></head><body>shop front</body></html>"""

START = """async ([url, token]) => {
  const {OpenFeature, ProviderEvents, OFREPWebProvider} = window.TailorOpenFeature;
  window.changes = [];
  await OpenFeature.setContext({targetingKey: "visitor-1", environment: "production"});
  await OpenFeature.setProviderAndWait(new OFREPWebProvider({
    baseUrl: url,
    headers: [["Authorization", "Bearer " + token]],
    pollInterval: 300,
  }));
  const client = OpenFeature.getClient();
  client.addHandler(ProviderEvents.ConfigurationChanged,
                    (e) => window.changes.push(e.flagsChanged));
  const read = (d) => ({value: d.value, reason: d.reason, variant: d.variant,
                        metadata: d.flagMetadata, errorCode: d.errorCode || null});
  return {
    due: read(client.getNumberDetails("billing.invoice.due_days", 0)),
    autoSend: read(client.getBooleanDetails("billing.invoice.auto_send", false)),
    currency: read(client.getStringDetails("billing.currency.default", "EUR")),
    missing: read(client.getNumberDetails("billing.nothing_here", 7)),
  };
}"""


def _shop() -> Starlette:
    async def page(_request):
        return HTMLResponse(PAGE)

    async def bundle(_request):
        return Response(BUNDLE.read_bytes(), media_type="text/javascript")

    return Starlette(routes=[Route("/", page), Route("/openfeature-ofrep.js", bundle)])


@pytest.fixture
def shop(server: str) -> Iterator[str]:
    """The front-end app's own origin: another port of 127.0.0.1."""
    yield from serve_in_thread(_shop, free_port())


async def test_the_openfeature_web_sdk_reads_settings_across_origins(
    server, shop, services, tenant
):
    await services.settings.set(ADMIN, tenant, DUE, 45)
    await services.settings.set(ADMIN, tenant, DUE, 60, environment="production")
    await services.apps.register(ADMIN, "shop", tenant)  # its tokens name it
    token, _ = await services.tokens.create("app", [tenant], origins=[shop], app="shop")
    from playwright.async_api import async_playwright

    statuses: list[int] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "response",
                lambda r: statuses.append(r.status) if "/ofrep/" in r.url else None,
            )
            await page.goto(shop)
            got = await page.evaluate(START, [server, token])
            assert got["due"] == {
                "value": 60,
                "reason": "TARGETING_MATCH",
                "variant": "ENVIRONMENT",
                "metadata": {"source": "ENVIRONMENT", "revision": 1},
                "errorCode": None,
            }
            assert got["autoSend"]["value"] is True and got["autoSend"]["reason"] == "STATIC"
            assert got["currency"]["value"] == "USD"
            assert got["missing"]["value"] == 7 and got["missing"]["errorCode"] == "FLAG_NOT_FOUND"

            # polling: nothing changed, so Tailor answers 304 to the provider's If-None-Match
            await page.wait_for_timeout(1000)  # about three polls
            assert 304 in statuses, statuses
            # a change: the provider sees it on its next poll
            await services.settings.set(ADMIN, tenant, DUE, 75, environment="production")
            await page.wait_for_function("() => window.changes.length > 0", timeout=10000)
            value = await page.evaluate(
                "() => window.TailorOpenFeature.OpenFeature.getClient()"
                ".getNumberValue('billing.invoice.due_days', 0)"
            )
            assert value == 75
            changed = await page.evaluate("() => window.changes")
            assert DUE in changed[0]
            assert not errors, errors
        finally:
            await browser.close()
    assert statuses[0] == 200
