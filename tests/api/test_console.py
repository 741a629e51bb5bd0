"""The console over the real app: sign-in and its cookie, CSRF refusals, scope as
on /graphql, triage from a form, the pages, and no external host anywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import httpx
import pytest_asyncio

from api.http.app import AppOptions, create_app
from core.model.customizations import CustomizationManifest, HookUse, ObservationDelta, Registration
from core.store.demo import register_planned_releases
from tests.conftest import ADMIN
from tests.sample import ACME

HOSTILE = '<script>alert("x")</script>&'
BLOCKER = "OVERRIDE_INVALID:tax.rounding.per_line:@other"


@pytest_asyncio.fixture
async def console(api, services, tenant):
    """Planned 3.0; "other" blocked by an override 3.0 removes; a customization with
    a hostile capability enabled for acme, observed at run time."""
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
    now = datetime.now(UTC)
    await services.observations.record(
        [
            ObservationDelta(
                "legacy-rule",
                tenant,
                "tailor_resolve_setting",
                calls=7,
                failures=1,
                changed=0,
                first_seen=now,
                last_seen=now,
                keys={("billing.invoice.rounding", "read"): 7},
            )
        ]
    )
    return api


def new_client(services) -> httpx.AsyncClient:
    app = create_app(services, AppOptions(demo=True))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tailor.test")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get("/console/sign-in")
    assert page.status_code == 200
    return await client.post("/console/sign-in", data={"token": token, "csrf": csrf_of(page.text)})


async def test_sign_in_sets_a_strict_http_only_session_cookie(console, services):
    async with new_client(services) as client:
        first = await client.get("/console/fleet")
        assert first.status_code == 303 and first.headers["location"] == "/console/sign-in"
        done = await sign_in(client, console.tokens["release_manager"])
        assert done.status_code == 303 and done.headers["location"] == "/console/fleet"
        [raw] = [
            v for k, v in done.headers.multi_items() if k == "set-cookie" and "tailor_session" in v
        ]
        cookie = SimpleCookie(raw)["tailor_session"]
        assert cookie["httponly"] is True
        assert cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/console"
        assert int(cookie["max-age"]) > 0
        # the cookie is a session secret, not the token
        assert console.tokens["release_manager"] not in raw
        fleet = await client.get("/console/fleet")
        assert fleet.status_code == 200
        assert "Fleet readiness: 3.0" in fleet.text
        assert fleet.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in fleet.headers["content-security-policy"]
        # no URL the app answered with or links to carries the token
        assert console.tokens["release_manager"] not in str(fleet.url)
        assert console.tokens["release_manager"] not in fleet.text


async def test_bad_tokens_and_forged_sign_ins_are_refused(console, services):
    async with new_client(services) as client:
        wrong = await sign_in(client, "tlr_not-a-token")
        assert wrong.status_code == 401 and "unknown token" in wrong.text
        assert "tailor_session" not in wrong.headers.get("set-cookie", "")
        # no sign-in form token: refused (login CSRF)
        forged = await client.post(
            "/console/sign-in", data={"token": console.tokens["admin"], "csrf": "guess"}
        )
        assert forged.status_code == 403 and "tailor_session" not in str(client.cookies)


async def test_forms_without_the_csrf_token_change_nothing(console, services):
    async with new_client(services) as client:
        await sign_in(client, console.tokens["release_manager"])
        form = {
            "finding": BLOCKER,
            "decision": "waive",
            "reason": "r",
            "until": "2099-01-01",
            "target": "3.0",
        }
        missing = await client.post("/console/triage", data=form)
        assert missing.status_code == 403 and "nothing was changed" in missing.text
        page = await client.get("/console/fleet")
        wrong = await client.post(
            "/console/triage", data={**form, "csrf": "x" + csrf_of(page.text)}
        )
        assert wrong.status_code == 403
        foreign = await client.post(
            "/console/triage",
            data={**form, "csrf": csrf_of(page.text)},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        assert await services.triage.decisions() == {}
        out = await client.post("/console/sign-out", data={})
        assert out.status_code == 403  # sign-out is a form too
        assert (await client.get("/console/fleet")).status_code == 200


async def test_waive_from_the_tenant_page(console, services):
    async with new_client(services) as client:
        await sign_in(client, console.tokens["release_manager"])
        page = await client.get("/console/tenants/other?target=3.0")
        assert page.status_code == 200
        assert f'data-finding="{BLOCKER}"' in page.text
        assert "tax.rounding.per_line" in page.text and "blocked" in page.text
        until = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
        done = await client.post(
            "/console/triage",
            data={
                "csrf": csrf_of(page.text),
                "finding": BLOCKER,
                "decision": "waive",
                "reason": "moves to 3.1",
                "until": until,
                "target": "3.0",
            },
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith("/console/tenants/other?target=3.0")
        again = await client.get("/console/tenants/other?target=3.0")
        assert "moves to 3.1" in again.text and "does not block" in again.text
        assert f"until {until}" in again.text
        assert "(blocked without its waivers)" in again.text
        bad = await client.post(
            "/console/triage",
            data={"csrf": csrf_of(page.text), "finding": BLOCKER, "decision": "waive"},
        )
        assert bad.status_code == 400 and "a waiver needs a reason" in bad.text


async def test_scope_applies_as_on_graphql(console, services):
    async with new_client(services) as client:
        await sign_in(client, console.tokens["consultant"])  # scoped to acme
        fleet = await client.get("/console/fleet")
        assert fleet.status_code == 200
        assert "1 tenant(s)" in fleet.text and "/console/tenants/other" not in fleet.text
        assert 'id="keep-run"' not in fleet.text  # no triage rights
        foreign = await client.get("/console/tenants/other")
        assert foreign.status_code == 403 and "not in your token" in foreign.text
        own = await client.get("/console/tenants/acme?target=3.0")
        assert own.status_code == 200 and 'action="/console/triage"' not in own.text
        tried = await client.post(
            "/console/triage",
            data={"csrf": csrf_of(own.text), "finding": BLOCKER, "decision": "acknowledge"},
        )
        assert tried.status_code == 403 and "triaging findings needs" in tried.text
        assert (await client.get("/console/foldback")).status_code == 403
    async with new_client(services) as client:
        await sign_in(client, console.tokens["app"])
        refused = await client.get("/console/fleet")
        assert refused.status_code == 403 and "reading release data" in refused.text


async def test_revoking_the_token_ends_the_session_and_sign_out_works(console, services):
    secret, info = await services.tokens.create("release_manager", label="short-lived")
    async with new_client(services) as client:
        await sign_in(client, secret)
        page = await client.get("/console/fleet")
        assert page.status_code == 200
        await services.tokens.revoke(info.prefix)
        ended = await client.get("/console/fleet")
        assert ended.status_code == 303 and ended.headers["location"] == "/console/sign-in"
    async with new_client(services) as client:
        await sign_in(client, console.tokens["admin"])
        page = await client.get("/console/fleet")
        kept = client.cookies.get("tailor_session")
        out = await client.post("/console/sign-out", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
        assert (await client.get("/console/fleet")).status_code == 303
        # the old cookie value is dead server-side, too
        client.cookies.set("tailor_session", kept, domain="tailor.test", path="/console")
        assert (await client.get("/console/fleet")).status_code == 303


URL_ATTRIBUTE = re.compile(r'(?:src|href|action)\s*=\s*"([^"]*)"', re.I)


def assert_local(html: str, where: str) -> list[str]:
    urls = URL_ATTRIBUTE.findall(html)
    external = [u for u in urls if not u.startswith(("/", "#", "?"))]
    assert not external, f"{where} references {external}"
    assert "url(http" not in html and "@import" not in html, where
    return urls


async def test_pages_render_escaped_and_reference_no_external_host(console, services):
    async with new_client(services) as client:
        await sign_in(client, console.tokens["admin"])
        pages = [
            "/console/fleet?target=3.0",
            "/console/tenants/acme?target=3.0",
            "/console/customizations/legacy-rule?target=3.0",
            "/console/foldback",
            "/console/usage?days=30",
        ]
        assets = set()
        for path in pages:
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text[:500])
            assert "<script>alert" not in page.text
            assets.update(u for u in assert_local(page.text, path) if "/static/" in u)
        ide = await client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200
        assets.update(u for u in assert_local(ide.text, "/graphql") if "/static/" in u)
        assert "/console/static/graphiql/graphiql.min.js" in assets
        assert "/console/static/graphiql/react.production.min.js" in assets
        for asset in sorted(assets):
            got = await client.get(asset)
            assert got.status_code == 200 and len(got.content) > 0, asset
        async with new_client(services) as anonymous:
            signin = await anonymous.get("/console/sign-in")
        assert_local(signin.text, "sign-in")

        customization = (await client.get("/console/customizations/legacy-rule")).text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in customization
        # the observation: 7 calls, 1 failure, 0 changed a value
        assert '<td class="n">7</td><td class="n">1</td><td class="n">0</td>' in customization
        assert "billing.invoice.rounding" in customization  # an observed key
        assert '<td id="level">D</td>' in customization
        # its versions, and the version each tenant runs
        assert '<table id="versions">' in customization
        assert "(enabled: legacy-rule@" in customization
        fleet = (await client.get("/console/fleet?target=3.0")).text
        assert 'id="unblock-chart"' in fleet and 'class="bar"' in fleet
        assert 'data-cumulative="2"' in fleet  # both blocked tenants, after the plan
        assert "2 blocked" in fleet
        usage = (await client.get("/console/usage")).text
        assert "Customizations whose results never differ" in usage
        assert "7 call(s), none changed a value" in usage
        bad_days = await client.get("/console/usage?days=soon")
        assert bad_days.status_code == 400 and "whole number of days" in bad_days.text


async def test_keep_a_run_then_see_what_changed(console, services):
    async with new_client(services) as client:
        await sign_in(client, console.tokens["release_manager"])
        page = await client.get("/console/fleet?target=3.0")
        assert "No kept run of 3.0 yet" in page.text
        kept = await client.post(
            "/console/runs", data={"csrf": csrf_of(page.text), "target": "3.0"}
        )
        assert kept.status_code == 303
        await services.settings.reset(ADMIN, "other", "tax.rounding.per_line")
        after = (await client.get("/console/fleet?target=3.0")).text
        assert "0 new</strong>, <strong>1 resolved" in after
        assert BLOCKER in after


async def test_the_old_readiness_page_redirects_to_the_console(console):
    moved = await console.client.get("/readiness?target=3.0")
    assert moved.status_code == 308 and moved.headers["location"] == "/console/fleet?target=3.0"


async def _page_statements(services, token, n):
    from core.store.db import count_statements
    from core.store.fleet import seed_fleet

    async def publish(registrations):
        await services.registry.publish_many(ADMIN, registrations)

    await seed_fleet(services, n, 3, publish=publish, demo=ACME.demo)
    counts = {}
    async with new_client(services) as client:
        await sign_in(client, token)
        for path in ("/console/fleet?target=3.0", "/console/usage"):
            with count_statements(services.engine) as counter:
                page = await client.get(path)
            assert page.status_code == 200, page.text[:300]
            counts[path] = counter.count
        with count_statements(services.engine) as counter:
            triaged = await services.triage.triaged(ADMIN, "3.0", keep=True)
        counts["keep"] = counter.count
        assert len(triaged.report.tenants) >= n
    return counts


async def test_console_statements_do_not_grow_with_the_fleet(api, services):
    await register_planned_releases(services, ACME)
    few = await _page_statements(services, api.tokens["release_manager"], 3)
    many = await _page_statements(services, api.tokens["release_manager"], 40)
    assert few == many, (few, many)


async def test_foldback_shows_near_duplicate_code_side_by_side(api, services):
    from api.cli.customization import publish_demo_customizations
    from core.store.demo import seed_demo
    from plugins.catalog import tailor_extension_points
    from tests.sample import ACME

    await seed_demo(services, ACME, tailor_extension_points)
    await publish_demo_customizations(services, ACME)
    async with new_client(services) as client:
        await sign_in(client, api.tokens["release_manager"])
        page = await client.get("/console/foldback")
    assert page.status_code == 200
    sections = re.findall(r'<section class="candidate".*?</section>', page.text, re.S)
    duplicates = [s for s in sections if "NEAR_DUPLICATE_CODE" in s]
    assert duplicates, "the demo has near-duplicate customizations"
    sources = re.findall(r'<pre class="source">(.*?)</pre>', duplicates[0], re.S)
    assert len(sources) >= 2 and all(re.search(r"^def \w+\(", s, re.M) for s in sources)
    assert sources[0] != sources[1]  # two implementations, not one shown twice
    # the family: its id, the shared behaviour, and the constants that differ per member
    family = re.search(r'<div class="family" id="(fam-[0-9a-f]{12})">', duplicates[0])
    assert family is not None
    assert f"tailor foldback propose {family.group(1)}" in duplicates[0]
    assert re.search(r'<pre class="behaviour">.+</pre>', duplicates[0], re.S)


async def test_a_big_fleet_page_is_a_summary_blocked_first_with_everything_on_request(
    console, services
):
    """At fleet scale the page shows 200 tenants (the blocked ones first), a note
    saying so and a link to everything; ?full=1 lists every tenant."""
    from api.report import CONSOLE_SUMMARY
    from core.store.fleet import seed_fleet

    async def publish(registrations):
        await services.registry.publish_many(ADMIN, registrations)

    await seed_fleet(services, 300, 3, demo=ACME.demo, publish=publish)
    limit = CONSOLE_SUMMARY.tenants
    assert limit is not None
    order = {"blocked": 0, "ready_with_warnings": 1, "ready": 2}

    def matrix_statuses(html: str) -> list[str]:
        table = html.split('<table id="matrix">')[1].split("</table>")[0]
        rows = table.split("<tbody>")[1].split("<tr>")[1:]
        return [re.findall(r'<td class="(blocked|ready_with_warnings|ready)">', r)[0] for r in rows]

    async with new_client(services) as client:
        await sign_in(client, console.tokens["release_manager"])
        page = (await client.get("/console/fleet?target=3.0")).text
        full = (await client.get("/console/fleet?target=3.0&full=1")).text
    summary = matrix_statuses(page)
    everything = matrix_statuses(full)
    assert len(everything) == 302  # the fleet and the fixture's two tenants
    assert len(summary) == limit
    assert f"{limit} of 302 tenants (blocked first)" in page
    assert 'id="show-all"' in page and "full=1" in page
    assert summary == sorted(summary, key=order.__getitem__)
    blocked = everything.count("blocked")
    assert 0 < blocked and summary[: min(blocked, limit)] == ["blocked"] * min(blocked, limit)
    assert 'id="summary-note"' not in full
