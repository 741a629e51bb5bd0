"""Change requests on the console: the page lists them pending first; approve and
reject are forms with the CSRF token (without it nothing changes); the author
cannot approve their own; a tenant's page shows its protection, what waits for
approval and its recent changes; scope as on /graphql."""

from __future__ import annotations

import re

from core.model.auth import Principal, Role
from core.store.authorization import ChangeState
from core.store.changes import ChangeKind, ProposedChange
from tests.api.test_console import csrf_of, new_client, sign_in
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"


async def _pending(services, author: Principal, value: int = 60):
    await services.changes.protect(ADMIN, "acme", "production", True)
    return await services.changes.propose(
        author,
        ProposedChange(
            "acme",
            ChangeKind.SET_SETTING,
            "finance asked",
            environment="production",
            key=DUE,
            value=value,
        ),
    )


async def _due(services):
    resolution = await services.settings.resolve(ADMIN, "acme", "production", keys=[DUE])
    return resolution.settings[0].value


async def test_approve_in_the_browser_with_the_csrf_token(api, services):
    author = Principal(Role.CONSULTANT, "alice", frozenset({"acme"}))
    request = await _pending(services, author)
    async with new_client(services) as client:
        await sign_in(client, api.tokens["consultant"])
        page = await client.get("/console/changes")
        assert page.status_code == 200
        assert f'id="change-{request.id}" data-state="pending"' in page.text
        assert f"set {DUE} = 60 in production" in page.text
        url = f"/console/changes/{request.id}/approve"
        missing = await client.post(url, data={"comment": "ok"})
        assert missing.status_code == 403 and "nothing was changed" in missing.text
        forged = await client.post(url, data={"csrf": "x" + csrf_of(page.text)})
        assert forged.status_code == 403
        assert (await services.changes.get(ADMIN, request.id)).state is ChangeState.PENDING
        done = await client.post(url, data={"csrf": csrf_of(page.text), "comment": "ok"})
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/console/changes#change-{request.id}"
        # the state cell says "applied" once (the outcome only when it says more)
        listed = (await client.get("/console/changes")).text
        row = re.search(
            rf'<tr id="change-{request.id}" data-state="applied">(.*?)</tr>', listed, re.S
        )
        assert row is not None, listed
        (cell,) = [c for c in re.findall(r"<td>(.*?)</td>", row.group(1), re.S) if "badge" in c]
        assert cell == '<span class="badge applied">applied</span>', cell
    applied = await services.changes.get(ADMIN, request.id)
    assert applied.state is ChangeState.APPLIED
    assert [a.comment for a in applied.approvals] == ["ok"]
    assert await _due(services) == 60


async def test_authors_cannot_approve_their_own_in_the_browser(api, services):
    async with new_client(services) as client:
        await sign_in(client, api.tokens["consultant"])
        page = await client.get("/console/changes")
        # proposed by the very token signed in
        principal = await services.tokens.authenticate(api.tokens["consultant"])
        request = await _pending(services, principal)
        own = await client.post(
            f"/console/changes/{request.id}/approve", data={"csrf": csrf_of(page.text)}
        )
        assert own.status_code == 403 and "four eyes" in own.text
        rejected = await client.post(
            f"/console/changes/{request.id}/reject",
            data={"csrf": csrf_of(page.text), "reason": "withdrawn"},
        )
        assert rejected.status_code == 303
    assert (await services.changes.get(ADMIN, request.id)).state is ChangeState.REJECTED
    assert await _due(services) != 60


async def test_a_stale_request_says_conflict_and_changes_nothing(api, services):
    alice = Principal(Role.CONSULTANT, "alice", frozenset({"acme"}))
    stale = await _pending(services, alice, 70)
    newer = await services.changes.propose(
        alice,
        ProposedChange(
            "acme", ChangeKind.SET_SETTING, "r", environment="production", key=DUE, value=71
        ),
    )
    await services.changes.approve(Principal.system("second-admin"), newer.id)
    async with new_client(services) as client:
        await sign_in(client, api.tokens["admin"])
        page = await client.get("/console/changes")
        answer = await client.post(
            f"/console/changes/{stale.id}/approve", data={"csrf": csrf_of(page.text)}
        )
        assert answer.status_code == 400 and "revision conflict" in answer.text
    assert await _due(services) == 71


async def test_tenant_page_shows_protection_pending_and_recent_changes(api, services):
    await services.settings.set(ADMIN, "acme", DUE, 33, environment="sandbox")
    request = await _pending(services, Principal(Role.CONSULTANT, "alice", frozenset({"acme"})))
    async with new_client(services) as client:
        await sign_in(client, api.tokens["release_manager"])
        page = await client.get("/console/tenants/acme")
        assert page.status_code == 200
        assert "Protected (changes are change requests): <strong>production</strong>" in page.text
        assert 'id="pending-changes"' in page.text
        assert f"#change-{request.id}" in page.text
        assert 'id="recent-changes"' in page.text and "<code>propose_change</code>" in page.text
        # a release manager reads them, but decides nothing (no form to)
        listing = await client.get("/console/changes")
        assert "/approve" not in listing.text
        refused = await client.post(
            f"/console/changes/{request.id}/approve", data={"csrf": csrf_of(listing.text)}
        )
        assert refused.status_code == 403


async def test_other_tenants_requests_stay_unseen(api, services):
    await services.changes.protect(ADMIN, "other", "production", True)
    theirs = await services.changes.protect(ADMIN, "other", "production", False)
    async with new_client(services) as client:
        await sign_in(client, api.tokens["consultant"])
        page = await client.get("/console/changes")
        assert page.status_code == 200 and f"change-{theirs.id}" not in page.text
        answer = await client.post(
            f"/console/changes/{theirs.id}/reject",
            data={"csrf": csrf_of(page.text), "reason": "no"},
        )
        assert answer.status_code == 404
        other = await client.get("/console/changes?tenant=other")
        assert other.status_code == 403
    assert (await services.changes.get(ADMIN, theirs.id)).state is ChangeState.PENDING
