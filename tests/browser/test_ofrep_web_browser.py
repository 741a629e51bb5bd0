"""A real OpenFeature web client, nobody here wrote it: the OpenFeature web SDK
with its OFREP web provider (npm; bundled in tests/browser/ofrep_web, rebuilt by
``npm ci && npm run build`` there) runs in a page on another origin (a second
local port) and reads a tenant's settings from Tailor in headless Chromium:
across origins (CORS, the app token allowing that origin), polling with
``If-None-Match`` (304 while nothing changed) and seeing a change; and, by
default, connecting to the bulk answer's ``eventStreams`` (an ``EventSource``
on the stream ticket's URL) and showing a change made through the API without
polling or reloading."""

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
<script src="/openfeature-ofrep.js"></script></head><body>shop front
<p>invoices due in <span id="due">?</span> days</p></body></html>"""

START = """async ([url, token]) => {
  const {OpenFeature, ProviderEvents, OFREPWebProvider} = window.TailorOpenFeature;
  window.changes = [];
  await OpenFeature.setContext({targetingKey: "visitor-1", environment: "production"});
  await OpenFeature.setProviderAndWait(new OFREPWebProvider({
    baseUrl: url,
    headers: [["Authorization", "Bearer " + token]],
    pollInterval: 300,
    changeDetection: "polling",  // this test is about polling; the next about eventStreams
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
            assert any(DUE in flags for flags in changed), changed
            assert not errors, errors
        finally:
            await browser.close()
    assert statuses[0] == 200


LIVE = """async ([url, token]) => {
  const {OpenFeature, ProviderEvents, OFREPWebProvider} = window.TailorOpenFeature;
  window.changes = [];
  await OpenFeature.setContext({targetingKey: "visitor-1", environment: "production"});
  // the provider's defaults: no polling, the server's eventStreams when it lists some
  await OpenFeature.setProviderAndWait(new OFREPWebProvider({
    baseUrl: url,
    headers: [["Authorization", "Bearer " + token]],
  }));
  const client = OpenFeature.getClient();
  const show = () => {
    document.getElementById("due").textContent =
      String(client.getNumberValue("billing.invoice.due_days", 0));
  };
  client.addHandler(ProviderEvents.ConfigurationChanged, (e) => {
    window.changes.push(e.flagsChanged);
    show();
  });
  show();
  return document.getElementById("due").textContent;
}"""

SET = """mutation($tenant: String!, $key: String!, $value: JSON!, $environment: String) {
  setSetting(input: {tenant: $tenant, key: $key, value: $value, environment: $environment}) {
    __typename } }"""


async def test_the_web_provider_hears_a_change_through_the_event_stream(
    server, shop, services, tenant
):
    import httpx

    await services.settings.set(ADMIN, tenant, DUE, 60, environment="production")
    token, _ = await services.tokens.create("app", [tenant], origins=[shop])
    admin, _ = await services.tokens.create("admin")
    from playwright.async_api import async_playwright

    requests: list[tuple[str, str]] = []
    streams: list[int] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: requests.append((r.method, r.url)) if "/ofrep/" in r.url else None,
            )
            page.on(
                "response",
                lambda r: streams.append(r.status) if "/ofrep/v1/events" in r.url else None,
            )
            await page.goto(shop)
            assert await page.evaluate(LIVE, [server, token]) == "60"
            # the provider connected to the stream of the bulk answer: an EventSource
            # GET across origins, the ticket in the URL, never the token
            for _ in range(50):  # the stream's answer: within 5 s
                if streams:
                    break
                await page.wait_for_timeout(100)
            assert streams == [200], (streams, requests)
            (stream,) = [url for method, url in requests if "/ofrep/v1/events" in url]
            assert "ticket=" in stream and token not in stream
            evaluations = [r for r in requests if r[0] == "POST"]
            await page.wait_for_timeout(1000)
            assert [r for r in requests if r[0] == "POST"] == evaluations  # no polling

            # a change through the API: the page shows it without a reload
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    f"{server}/graphql",
                    json={
                        "query": SET,
                        "variables": {
                            "tenant": tenant,
                            "key": DUE,
                            "value": 80,
                            "environment": "production",
                        },
                    },
                    headers={"Authorization": f"Bearer {admin}"},
                )
                assert answer.json()["data"]["setSetting"]["__typename"] == "SettingChanged"
            await page.wait_for_function(
                "() => document.getElementById('due').textContent === '80'", timeout=10000
            )
            changed = await page.evaluate("() => window.changes")
            assert any(DUE in flags for flags in changed), changed
            # it re-fetched once, told by the stream (the same EventSource, no new one)
            refetches = [r for r in requests if r[0] == "POST"][len(evaluations) :]
            assert len(refetches) == 1, refetches
            assert [url for _m, url in requests if "/ofrep/v1/events" in url] == [stream]
            assert not errors, errors
        finally:
            await browser.close()
