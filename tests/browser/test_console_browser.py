"""The console in real headless Chromium (Debian's ``chromium``, driven by
Playwright for Python): sign in, see the fleet and its chart, open a tenant,
waive a finding, reload and see it waived, sign out, with no network beyond
Tailor (skipping: see tests/browser/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest_asyncio

from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.store.demo import register_planned_releases
from tests.browser.conftest import ARGS, CHROMIUM
from tests.conftest import ADMIN
from tests.sample import ACME

BLOCKER = "OVERRIDE_INVALID:tax.rounding.per_line:@other"


@pytest_asyncio.fixture
async def fleet(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other Inc", "2.0")
    await register_planned_releases(services, ACME)
    await services.settings.set(ADMIN, "other", "tax.rounding.per_line", False)
    await services.registry.publish(
        ADMIN,
        Registration(
            CustomizationManifest("legacy-rule", "1.0", (tenant,), ">=1.5"),
            (HookUse("tailor_resolve_setting", ("key", "value"), "fp"),),
            (),
            package="legacy_rule",
        ),
    )
    await services.registry.set_enabled(ADMIN, tenant, "legacy-rule", True)
    secret, _ = await services.tokens.create("release_manager", label="Rita (release manager)")
    return secret


async def test_sign_in_fleet_chart_waive_reload_sign_out(server, fleet):
    from playwright.async_api import async_playwright

    requested: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            await page.goto(f"{server}/console")
            assert page.url.endswith("/console/sign-in")
            await page.fill("#token", fleet)
            await page.click("#sign-in")
            await page.wait_for_url("**/console/fleet")
            assert "Fleet readiness: 3.0" in await page.inner_text("h1")
            assert "2 blocked" in await page.inner_text("#counts")
            bars = page.locator("#unblock-chart rect.bar")
            assert await bars.count() == 2
            assert await bars.last.get_attribute("data-cumulative") == "2"
            box = await page.locator("#unblock-chart").bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150
            # the token is in no URL, and the cookie is not readable by scripts
            assert fleet not in page.url
            assert await page.evaluate("document.cookie") == ""

            await page.click("#matrix a:text-is('other')")
            await page.wait_for_url("**/console/tenants/other?target=3.0")
            row = page.locator(f'tr[data-finding="{BLOCKER}"]')
            assert "blocker" in await row.inner_text()
            until = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
            await row.locator("select[name=decision]").select_option("waive")
            await row.locator("input[name=reason]").fill("rounding moves to 3.1")
            await row.locator("input[name=until]").fill(until)
            await row.locator("button[type=submit]").click()
            await page.wait_for_url("**/console/tenants/other?target=3.0*")

            await page.reload()
            row = page.locator(f'tr[data-finding="{BLOCKER}"]')
            text = await row.inner_text()
            assert "waived" in text and "does not block" in text
            assert "rounding moves to 3.1" in text and until in text
            assert "ready with warnings" in await page.inner_text("#tenant-status")

            await page.click("#sign-out")
            await page.wait_for_url("**/console/sign-in")
            await page.goto(f"{server}/console/fleet")
            assert page.url.endswith("/console/sign-in")

            assert not errors, errors
        finally:
            await browser.close()
    outside = [u for u in requested if not u.startswith(server) and not u.startswith("data:")]
    assert not outside, f"the browser fetched from other hosts: {outside}"
