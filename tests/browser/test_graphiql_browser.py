"""GraphiQL in real headless Chromium runs a query: the token typed into its
Headers tab, the query into its editor, the result read from its result pane;
every request stays on Tailor (its Content-Security-Policy allows fetches to
'self' only)."""

from __future__ import annotations

import json

from tests.browser.conftest import ARGS, CHROMIUM
from tests.conftest import ADMIN

QUERY = '{ settings(tenant: "acme", keys: ["billing.invoice.due_days"]) { ... on Settings { tenant items { key value source } } } }'  # noqa: E501


async def _replace_text(page, selector: str, text: str) -> None:
    """Replace what a GraphiQL editor holds, as a person would: click into it,
    select all, and put the new text in."""
    await page.click(selector)
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(text)


async def test_graphiql_runs_a_query_and_shows_its_data(server, services, tenant):
    await services.settings.set(ADMIN, tenant, "billing.invoice.due_days", 45)
    token, _ = await services.tokens.create("app", [tenant], label="shop front")
    from playwright.async_api import async_playwright

    requested: list[str] = []
    refused: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            response = await page.goto(f"{server}/graphql")
            assert response is not None
            csp = response.headers["content-security-policy"]
            assert "connect-src 'self'" in csp and "default-src 'none'" in csp
            await page.wait_for_selector(".graphiql-container .graphiql-editors", timeout=15000)

            await page.click("button:text-is('Headers')")
            await _replace_text(
                page,
                ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror",
                json.dumps({"Authorization": f"Bearer {token}"}),
            )
            await _replace_text(page, ".graphiql-query-editor .CodeMirror", QUERY)
            await page.click(".graphiql-execute-button")

            result = page.locator(".result-window")
            await result.locator("text=billing.invoice.due_days").wait_for(timeout=15000)
            shown = json.loads(
                await page.evaluate(
                    "document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"
                )
            )
            assert shown == {
                "data": {
                    "settings": {
                        "tenant": "acme",
                        "items": [
                            {"key": "billing.invoice.due_days", "value": 45, "source": "TENANT"}
                        ],
                    }
                }
            }
            assert not errors, errors
            assert not [m for m in refused if "Content Security Policy" in m], refused
        finally:
            await browser.close()
    assert any(u == f"{server}/graphql" for u in requested)
    outside = [u for u in requested if not u.startswith(server) and not u.startswith("data:")]
    assert not outside, f"the browser fetched from other hosts: {outside}"
    # the token travelled in a header only, never in a URL
    assert not [u for u in requested if token in u]
