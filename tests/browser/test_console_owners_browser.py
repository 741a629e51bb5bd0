"""Owners at fleet level in real headless Chromium: the fleet's unassigned count,
a refused triage form that comes back with what was typed and the error beside
the field, then the plan saved and its owner on the fleet page. Skipped (saying
why) when chromium is missing, as tests/browser/test_console_browser.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.browser.conftest import ARGS, CHROMIUM
from tests.browser.test_console_browser import BLOCKER, fleet

__all__ = ["fleet"]  # the fixture this module uses (server: tests/browser/conftest.py)


async def test_plan_an_owner_after_a_refused_form_and_see_it_on_the_fleet(server, fleet):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{server}/console/sign-in")
            await page.fill("#token", fleet)
            await page.click("#sign-in")
            await page.wait_for_url("**/console/fleet")
            unassigned = page.locator("#unassigned-blockers")
            before = int(await unassigned.get_attribute("data-unassigned") or "-1")
            assert before >= 1 and "unassigned" in await unassigned.inner_text()

            await page.goto(f"{server}/console/tenants/other?target=3.0")
            row = page.locator(f'tr[data-finding="{BLOCKER}"]')
            await row.locator("select[name=decision]").select_option("plan")
            await row.locator("input[name=owner]").fill("Ana Lopez")
            await row.locator("input[name=reason]").fill("per-line rounding moves to 3.1")
            await row.locator("button[type=submit]").click()  # no due date: refused
            await page.wait_for_load_state()
            assert "/console/triage" in page.url  # the answer to the post, not a redirect
            assert "Nothing was saved" in await page.inner_text("#triage-error")
            row = page.locator(f'tr[data-finding="{BLOCKER}"]')
            error = row.locator('.field-error[data-field="until"]')
            assert "due date" in await error.inner_text()
            assert await row.locator("input[name=owner]").input_value() == "Ana Lopez"
            reason = await row.locator("input[name=reason]").input_value()
            assert reason == "per-line rounding moves to 3.1"
            assert await row.locator("select[name=decision]").input_value() == "plan"

            due = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
            await row.locator("input[name=until]").fill(due)
            await row.locator("button[type=submit]").click()
            await page.wait_for_url("**/console/tenants/other?target=3.0*")
            text = await page.locator(f'tr[data-finding="{BLOCKER}"]').inner_text()
            assert "planned" in text and "Ana Lopez" in text

            await page.goto(f"{server}/console/fleet?target=3.0")
            after = await page.locator("#unassigned-blockers").get_attribute("data-unassigned")
            assert int(after or "-1") == before - 1
            owners = page.locator('#blocker-owners tr[data-tenant="other"]')
            assert "Ana Lopez" in await owners.inner_text() and due in await owners.inner_text()
            assert not errors, errors
        finally:
            await browser.close()
