"""Owners at fleet level, over the real app on the demo fleet: the fleet page and
the unblock plan (console and GraphQL) show each blocker's triage and how many
nobody owns; the tenant page lists blockers first and offers the customization's
author as owner; a refused triage form comes back with its input and the error
next to the field."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio

from api.http.app import AppOptions, create_app
from core.analysis.readiness.vocabulary import Severity
from core.analysis.triage import SEVERITY_ORDER, finding_id
from core.model.auth import Role
from tests.conftest import ADMIN, demo_with_samples

TARGET = "3.0"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token in the form"
    return match.group(1)


@pytest_asyncio.fixture
async def fleet(services):
    await demo_with_samples(services)
    token, _ = await services.tokens.create(Role.RELEASE_MANAGER, (), label="rm")
    app = create_app(services, AppOptions(demo=True))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tailor.test"
    ) as client:
        page = await client.get("/console/sign-in")
        signed = await client.post(
            "/console/sign-in", data={"token": token, "csrf": csrf_of(page.text)}
        )
        assert signed.status_code == 303
        client.headers["Authorization"] = f"Bearer {token}"  # for /graphql only
        yield client


async def a_customization_blocker(services):
    """(tenant, finding id, author) of a customization blocker with an author."""
    triaged = await services.triage.triaged(ADMIN, TARGET)
    for t in triaged.report.tenants:
        for f in t.findings:
            if f.severity is Severity.BLOCKER and f.subject_kind == "customization" and f.owner:
                fid = finding_id(f.code.value, f.subject, f.detail, t.tenant)
                return t.tenant, fid, f, triaged
    raise AssertionError("the demo has no customization blocker")


def unassigned_on(page: str) -> int:
    match = re.search(r'id="unassigned-blockers" data-unassigned="(\d+)"', page)
    assert match, "the fleet page shows no unassigned count"
    return int(match.group(1))


async def test_the_fleet_shows_owners_and_the_unassigned_count(fleet, services):
    tenant, fid, finding, triaged = await a_customization_blocker(services)
    before = triaged.owners.unassigned
    assert before == len(triaged.owners.blockers) > 0  # nothing triaged yet
    page = (await fleet.get(f"/console/fleet?target={TARGET}")).text
    assert unassigned_on(page) == before
    assert 'id="blocker-owners"' in page and "unassigned" in page

    due = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
    done = await fleet.post(
        "/console/triage",
        data={
            "csrf": csrf_of(page),
            "finding": fid,
            "decision": "plan",
            "owner": "Ana Lopez",
            "until": due,
            "target": TARGET,
        },
    )
    assert done.status_code == 303, done.text
    page = (await fleet.get(f"/console/fleet?target={TARGET}")).text
    assert unassigned_on(page) == before - 1
    # the plan step of that customization names the owner and the due date
    step = re.search(
        r"<tr><td class=\"n\">\d+</td>\s*<td><span class=\"muted\">customization</span> "
        rf"<a [^>]*>{re.escape(finding.subject)}</a>.*?</tr>",
        page,
        re.S,
    )
    assert step, "no plan step for the customization"
    assert "Ana Lopez" in step.group(0) and f"due {due}" in step.group(0)
    # and the blockers table lists the decision beside the finding
    row = re.search(
        rf'<tr class="assigned" data-tenant="{re.escape(tenant)}" '
        rf'data-subject="{re.escape(finding.subject)}">.*?</tr>',
        page,
        re.S,
    )
    assert row and "Ana Lopez" in row.group(0) and due in row.group(0)

    # GraphQL: the same count and the step's triage
    body = (
        await fleet.post(
            "/graphql",
            json={
                "query": """query($t: String!) { readiness(target: $t) { ... on Readiness {
                  unassignedBlockers unblockPlan { subject triage { owners due waived
                  unassigned findings } } } } }""",
                "variables": {"t": TARGET},
            },
        )
    ).json()
    readiness = body["data"]["readiness"]
    assert readiness["unassignedBlockers"] == before - 1
    [triage] = [s["triage"] for s in readiness["unblockPlan"] if s["subject"] == finding.subject]
    assert triage["owners"] == ["Ana Lopez"] and triage["due"] == due
    assert triage["unassigned"] == triage["findings"] - 1


async def test_tenant_page_lists_blockers_first_and_offers_the_author(fleet, services):
    tenant, fid, finding, _ = await a_customization_blocker(services)
    page = (await fleet.get(f"/console/tenants/{tenant}?target={TARGET}")).text
    severities = re.findall(
        r'<tr id="triage-[^"]*" data-finding="[^"]*">\s*<td class="(\w+)">', page
    )
    assert len(severities) > 1 and Severity.BLOCKER.value in severities
    rank = [SEVERITY_ORDER.index(Severity(s)) for s in severities]
    assert rank == sorted(rank), severities
    form = re.search(rf'name="finding" value="{re.escape(fid)}">.*?</form>', page, re.S).group(0)
    assert f'name="owner" maxlength="200" value="{html.escape(finding.owner)}"' in form


async def test_a_refused_triage_form_returns_with_its_input_and_the_error(fleet, services):
    tenant, fid, _finding, _ = await a_customization_blocker(services)
    page = (await fleet.get(f"/console/tenants/{tenant}?target={TARGET}")).text
    refused = await fleet.post(
        "/console/triage",
        data={
            "csrf": csrf_of(page),
            "finding": fid,
            "decision": "waive",
            "reason": "vendor ships the fix in 3.0.1",
            "owner": "Ana Lopez",
            "target": TARGET,
        },
    )
    assert refused.status_code == 400
    text = refused.text
    assert 'id="findings"' in text  # the tenant page, not a dead end
    form = re.search(rf'name="finding" value="{re.escape(fid)}">.*?</form>', text, re.S).group(0)
    assert 'class="triage rejected"' in text
    assert 'value="vendor ships the fix in 3.0.1"' in form and 'value="Ana Lopez"' in form
    assert '<option value="waive" selected>' in form
    error = re.search(r'<span class="field-error error" data-field="(\w+)">([^<]*)</span>', form)
    assert error and error.group(1) == "until" and "end date" in error.group(2)
    assert 'name="until" type="date" value="" aria-invalid="true"' in form
    # nothing was saved
    triaged = await services.triage.triaged(ADMIN, TARGET, [tenant])
    assert not triaged.decisions
