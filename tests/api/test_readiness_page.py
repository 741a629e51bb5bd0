"""The readiness page (GET /readiness): HTML over the real app, bearer token in
the header only, every value escaped, clear 400/401/403/404 pages."""

from __future__ import annotations

import pytest_asyncio

from core.bootstrap import register_planned_releases
from core.customizations import CustomizationManifest, HookUse, Registration
from tests.conftest import ADMIN
from tests.sample import ACME

HOSTILE = '<script>alert("x")</script>&'


@pytest_asyncio.fixture
async def page_api(api, services, tenant):
    """Planned 3.0; "other" blocked by an override 3.0 removes; a customization
    with a hostile capability enabled for acme."""
    await register_planned_releases(services, ACME)
    await services.settings.set(ADMIN, "other", "tax.rounding.per_line", False)
    registration = Registration(
        CustomizationManifest("legacy-rule", "1.0", (tenant,), ">=1.5", capability=HOSTILE),
        (HookUse("tailor_resolve_setting", ("key", "value"), "fp"),),
        (),
        package="legacy_rule",
    )
    await services.registry.publish(ADMIN, registration)
    await services.registry.set_enabled(ADMIN, tenant, "legacy-rule", True)
    return api


async def get(api, path, token="release_manager", **headers):
    if token:
        headers["Authorization"] = f"Bearer {api.tokens.get(token, token)}"
    return await api.client.get(path, headers=headers)


async def test_the_page_shows_counts_tenants_findings_customizations_and_plan(page_api):
    response = await get(page_api, "/readiness?target=3.0")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "Upgrade readiness: 3.0" in page and "(planned)" in page
    assert "2 tenant(s)" in page and "2 blocked" in page
    assert '<tr><td>acme</td><td>2.0</td><td><span class="blocked">blocked</span>' in page
    # a finding: code, severity, subject, message, action
    assert "OVERRIDE_INVALID" in page and "tax.rounding.per_line" in page
    assert '<span class="blocker">blocker</span>' in page
    assert "3.0 no longer defines this setting" in page
    assert "then reset tax.rounding.per_line" in page
    # the customization with its status and level, its capability escaped
    assert "legacy-rule" in page and "<td>D</td>" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert "<script" not in page
    # the unblock plan, and links to the other releases
    assert "Unblock plan" in page and "Fix in this order" in page
    assert 'HOOK_REMOVED</td><td class="n">1</td><td>acme</td>' in page
    assert '<a href="?target=2.0">2.0</a>' in page


async def test_tenant_filter_and_consultant_scope(page_api):
    only = (await get(page_api, "/readiness?target=3.0&tenant=acme")).text
    assert "1 tenant(s)" in only and "tax.rounding.per_line" not in only
    mine = await get(page_api, "/readiness?target=3.0", token="consultant")
    assert mine.status_code == 200
    assert "1 tenant(s)" in mine.text and "<td>other</td>" not in mine.text
    foreign = await get(page_api, "/readiness?target=3.0&tenant=other", token="consultant")
    assert foreign.status_code == 403
    assert "not in your token&#x27;s scope" in foreign.text


async def test_without_a_bearer_header_the_page_explains_how_to_send_one(page_api):
    response = await get(page_api, "/readiness?target=3.0&token=secret-in-url", token=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"].startswith("text/html")
    assert 'curl -H "Authorization: Bearer $TAILOR_TOKEN"' in response.text
    assert "http://tailor.test/readiness?target=3.0" in response.text
    # a token in the URL is neither accepted nor echoed
    assert "secret-in-url" not in response.text
    as_query = await get(page_api, f"/readiness?target=3.0&token={page_api.tokens['admin']}", None)
    assert as_query.status_code == 401
    wrong = await page_api.client.get(
        "/readiness?target=3.0", headers={"Authorization": "Basic abc"}
    )
    assert wrong.status_code == 401 and "Bearer &lt;token&gt;" in wrong.text
    unknown = await get(page_api, "/readiness?target=3.0", token="not-a-token")
    assert unknown.status_code == 401


async def test_unknown_target_is_404_with_the_known_releases(page_api):
    response = await get(page_api, "/readiness?target=9.9")
    assert response.status_code == 404
    assert "known releases: 1.0, 1.5, 2.0, 3.0" in response.text
    assert '<a href="?target=3.0">3.0</a>' in response.text
    missing = await get(page_api, "/readiness")
    assert missing.status_code == 400 and '<a href="?target=2.0">2.0</a>' in missing.text
    hostile = await get(page_api, "/readiness?target=" + HOSTILE.replace("&", "%26"))
    assert hostile.status_code == 400
    assert "<script" not in hostile.text and "&lt;script&gt;" in hostile.text
    tenant = await get(page_api, "/readiness?target=3.0&tenant=%3Cb%3E")
    assert tenant.status_code == 404 and "&lt;b&gt;" in tenant.text


async def test_app_tokens_are_refused(page_api):
    response = await get(page_api, "/readiness?target=3.0", token="app")
    assert response.status_code == 403
    assert "Permission denied" in response.text
    post = await page_api.client.post("/readiness?target=3.0")
    assert post.status_code == 405
