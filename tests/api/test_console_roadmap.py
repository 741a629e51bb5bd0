"""The console's roadmap page over the real app on the demo fleet: put a fold-back
candidate on the roadmap, pledge for its tenants, see items with their evidence,
and a consultant's view of only their own tenants."""

from __future__ import annotations

import re

import httpx
import pytest_asyncio
from markupsafe import escape

from api.http.app import AppOptions, create_app
from core.analysis.foldback import EvidenceKind
from core.analysis.roadmap import candidate_id
from core.model.auth import Role
from tests.conftest import ADMIN, demo_with_samples


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token in the form"
    return match.group(1)


@pytest_asyncio.fixture
async def app(services):
    await demo_with_samples(services)
    return create_app(services, AppOptions(demo=True))


def client_of(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test")


async def sign_in(client, services, role, *tenants) -> None:
    token, _ = await services.tokens.create(role, tenants, label=str(role))
    page = await client.get("/console/sign-in")
    done = await client.post("/console/sign-in", data={"token": token, "csrf": csrf_of(page.text)})
    assert done.status_code == 303


async def test_put_a_candidate_on_the_roadmap_and_pledge(app, services):
    report = await services.foldback.candidates(ADMIN)
    dup = next(c for c in report.candidates if c.kind is EvidenceKind.NEAR_DUPLICATE_CODE)
    cid = candidate_id(dup)
    async with client_of(app) as rm:
        await sign_in(rm, services, Role.RELEASE_MANAGER)
        foldback = (await rm.get("/console/foldback")).text
        assert f'name="source" value="{cid}"' in foldback
        made = await rm.post("/console/roadmap", data={"csrf": csrf_of(foldback), "source": cid})
        assert made.status_code == 303 and made.headers["location"].startswith("/console/roadmap#")
        page = (await rm.get("/console/roadmap")).text
        [item_id] = re.findall(r'<section class="roadmap-item" id="item-(\d+)"', page)
        # the evidence as Jinja writes it
        assert str(escape(dup.evidence)) in page and "never part of it" in page
        for tenant, amount, currency in (
            ("northwind", "1200.5", "EUR"),
            ("umbrella", "800", "eur"),
        ):
            done = await rm.post(
                "/console/roadmap/pledge",
                data={
                    "csrf": csrf_of(page),
                    "item": item_id,
                    "tenant": tenant,
                    "amount": amount,
                    "currency": currency,
                    "note": f"budget {tenant}",
                },
            )
            assert done.status_code == 303, done.text
        bad = await rm.post(
            "/console/roadmap/pledge",
            data={
                "csrf": csrf_of(page),
                "item": item_id,
                "tenant": "northwind",
                "amount": "10",
                "currency": "EURO",
            },
        )
        assert bad.status_code == 400 and "ISO 4217" in bad.text
        committed = await rm.post(
            "/console/roadmap/update",
            data={"csrf": csrf_of(page), "item": item_id, "status": "committed", "target": "3.1"},
        )
        assert committed.status_code == 303
        wrong = await rm.post(
            "/console/roadmap/update",
            data={"csrf": csrf_of(page), "item": item_id, "status": "shipped"},
        )
        assert wrong.status_code == 400 and "registered" in wrong.text
        page = (await rm.get("/console/roadmap")).text
        assert 'data-status="committed"' in page and "target 3.1" in page
        assert "1200.50" in page and "800.00" in page
        assert re.search(r"total \(2\)</td><td class=\"n\">2000.50</td><td>EUR", page)

    async with client_of(app) as consultant:
        await sign_in(consultant, services, Role.CONSULTANT, "northwind")
        mine = await consultant.get("/console/roadmap")
        assert mine.status_code == 200
        assert "1200.50" in mine.text and "budget northwind" in mine.text
        assert "umbrella" not in mine.text and "800.00" not in mine.text
        assert "1 more outside your scope" in mine.text
        assert 'action="/console/roadmap/pledge"' not in mine.text
        refused = await consultant.post(
            "/console/roadmap/pledge",
            data={
                "csrf": csrf_of(mine.text),
                "item": re.findall(r'id="item-(\d+)"', mine.text)[0],
                "tenant": "northwind",
                "amount": "1",
                "currency": "EUR",
            },
        )
        assert refused.status_code == 403
