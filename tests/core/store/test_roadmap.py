"""The roadmap over real data: items made from the demo's fold-back candidates,
pledges in several currencies, what a consultant sees, ranking that ignores money,
and shipping when a release supersedes the capability."""

import dataclasses

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from core.analysis.foldback import EvidenceKind
from core.analysis.roadmap import RoadmapStatus, candidate_id
from core.model.auth import Principal, Role
from core.model.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from core.model.manifest import PLANNED
from core.store.db import count_statements
from core.store.models import RoadmapItem, RoadmapPledge
from tests.conftest import ADMIN, demo_with_samples
from tests.sample import V30_PLANNED

RM = Principal(Role.RELEASE_MANAGER, "rm")
NORTHWIND_CONSULTANT = Principal(Role.CONSULTANT, "consultant", frozenset({"northwind"}))


@pytest_asyncio.fixture
async def demo(services):
    await demo_with_samples(services)
    return services


async def candidate(services, kind, title=None):
    report = await services.foldback.candidates(ADMIN)
    return next(
        c for c in report.candidates if c.kind is kind and (title is None or c.title == title)
    )


async def copies(services):
    """The demo's near-duplicate pair (northwind and umbrella): its members declare
    different capabilities, so the one that ships it is named."""
    c = await candidate(services, EvidenceKind.NEAR_DUPLICATE_CODE)
    item = await services.roadmap.create(
        RM, candidate_id(c), target_release="3.1", capability="payment-terms-guard"
    )
    return c, item


async def rows(services, model):
    async with services.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_an_item_covers_its_candidates_customizations_and_tenants(demo):
    c, item = await copies(demo)
    assert item.customizations and {x.name for x in item.customizations} == set(c.customizations)
    assert item.tenants == tuple(sorted(c.tenants)) and len(item.tenants) >= 2
    assert item.capability == "payment-terms-guard"
    assert (item.status, item.target_release, item.shipped_in) == (
        RoadmapStatus.PROPOSED,
        "3.1",
        None,
    )
    assert item.source_id == candidate_id(c) and c.evidence in item.evidence
    assert item.score.breadth == len(c.tenants) and item.score.upgrade_cost == c.blockers
    audit = await demo.audit.list_all(ADMIN, key=f"roadmap:{item.id}")
    assert [a.action for a in audit] == ["roadmap_item_created"]
    assert audit[0].actor == "rm"


async def test_bad_input_is_refused_and_changes_nothing(demo):
    c, item = await copies(demo)
    with pytest.raises(NotFoundError, match="fold-back candidate"):
        await demo.roadmap.create(RM, "shared-capability-000000000000")
    with pytest.raises(NotFoundError, match="no-such-tenant"):
        await demo.roadmap.create(RM, candidate_id(c), tenants=["no-such-tenant"])
    with pytest.raises(InvalidInputError, match="PEP 440"):
        await demo.roadmap.create(RM, candidate_id(c), target_release="next")
    for amount, currency, field in [
        ("100", "EURO", "currency"),
        ("100", "XYZ", "currency"),
        ("1,000", "EUR", "amount"),
        ("-5", "EUR", "amount"),
        ("0", "EUR", "amount"),
        ("10.5", "JPY", "amount"),  # JPY has no minor unit
        ("10.123", "EUR", "amount"),
    ]:
        with pytest.raises(InvalidInputError) as refused:
            await demo.roadmap.pledge(RM, item.id, item.tenants[0], amount, currency)
        assert refused.value.field == field, (amount, currency)
    with pytest.raises(InvalidInputError, match="does not cover tenant 'hooli'"):
        await demo.roadmap.pledge(RM, item.id, "hooli", "100", "EUR")
    with pytest.raises(NotFoundError):
        await demo.roadmap.pledge(RM, 9999, item.tenants[0], "100", "EUR")
    assert await rows(demo, RoadmapItem) == 1
    assert await rows(demo, RoadmapPledge) == 0


async def test_pledges_sum_per_currency_and_replace_per_tenant(demo):
    _, item = await copies(demo)
    a, b = item.tenants[:2]
    await demo.roadmap.pledge(RM, item.id, a, "12500.5", "eur", note="Q3 budget")
    await demo.roadmap.pledge(ADMIN, item.id, b, "1000", "EUR")
    await demo.roadmap.pledge(ADMIN, item.id, b, "2000.25", "USD")  # replaces b's pledge
    item = await demo.roadmap.item(RM, item.id)
    assert [(p.tenant, p.amount, p.currency) for p in item.pledges] == [
        (a, "12500.50", "EUR"),
        (b, "2000.25", "USD"),
    ]
    assert item.totals == [("EUR", "12500.50", 1), ("USD", "2000.25", 1)]
    await demo.roadmap.pledge(ADMIN, item.id, b, "0.50", "EUR")
    item = await demo.roadmap.item(RM, item.id)
    assert item.totals == [("EUR", "12501.00", 2)]
    pledged = [
        a
        for a in await demo.audit.list_all(ADMIN, key=f"roadmap:{item.id}")
        if a.action == "roadmap_pledged"
    ]
    assert [p.new["tenant"] for p in pledged] == [b, b, b, a]  # newest first
    assert pledged[0].new["amount"] == "0.50"
    assert pledged[0].old == {"tenant": b, "amount": "2000.25", "currency": "USD", "note": None}
    # not under the tenant: a tenant's own audit log (and its apps) never show pledges
    assert not [
        e for e in await demo.audit.list_all(ADMIN, tenant=b) if e.action.startswith("roadmap")
    ]


async def test_a_consultant_sees_only_their_tenants_and_never_pledges_or_plans(demo):
    _, item = await copies(demo)
    others = [t for t in item.tenants if t != "northwind"]
    assert "northwind" in item.tenants and others
    await demo.roadmap.pledge(RM, item.id, "northwind", "10", "EUR")
    for t in others:
        await demo.roadmap.pledge(RM, item.id, t, "999", "GBP", note=f"secret-{t}")
    [seen] = await demo.roadmap.items(NORTHWIND_CONSULTANT)
    assert seen.tenants == ("northwind",) and seen.hidden_tenants == len(others)
    assert [(p.tenant, p.amount) for p in seen.pledges] == [("northwind", "10.00")]
    assert seen.totals == [("EUR", "10.00", 1)]
    assert [c.tenants for c in seen.customizations] == [("northwind",)]
    assert not any(t in repr(seen) for t in others)
    # a consultant of a tenant the item does not cover sees no item at all
    assert await demo.roadmap.items(Principal(Role.CONSULTANT, "c", frozenset({"hooli"}))) == []
    for attempt in (
        demo.roadmap.pledge(NORTHWIND_CONSULTANT, item.id, "northwind", "1", "EUR"),
        demo.roadmap.create(NORTHWIND_CONSULTANT, item.source_id),
        demo.roadmap.update(NORTHWIND_CONSULTANT, item.id, status=RoadmapStatus.COMMITTED),
    ):
        with pytest.raises(PermissionDeniedError):
            await attempt
    with pytest.raises(PermissionDeniedError):
        await demo.roadmap.items(Principal(Role.APP, "app", frozenset({"northwind"})))


async def test_ranking_is_breadth_and_cost_never_money(demo):
    _, wide = await copies(demo)
    narrow_candidate = await candidate(demo, EvidenceKind.SHOULD_BE_SETTING)  # one tenant
    narrow = await demo.roadmap.create(RM, candidate_id(narrow_candidate))
    assert len(narrow.tenants) < len(wide.tenants)
    await demo.roadmap.pledge(RM, narrow.id, narrow.tenants[0], "999999999", "USD")
    ranked = await demo.roadmap.items(RM)
    assert [i.id for i in ranked] == [wide.id, narrow.id]
    assert ranked[0].score.total > ranked[1].score.total


async def test_update_commits_and_adds_tenants(demo):
    _, item = await copies(demo)
    changed = await demo.roadmap.update(
        RM, item.id, status=RoadmapStatus.COMMITTED, target_release="3.2", add_tenants=["hooli"]
    )
    assert changed.status is RoadmapStatus.COMMITTED and changed.target_release == "3.2"
    assert "hooli" in changed.tenants and changed.score.breadth == len(item.tenants) + 1
    await demo.roadmap.pledge(RM, item.id, "hooli", "5", "CHF")
    with pytest.raises(InvalidInputError, match="registered"):
        await demo.roadmap.update(RM, item.id, status=RoadmapStatus.SHIPPED)
    audit = await demo.audit.list_all(ADMIN, key=f"roadmap:{item.id}")
    assert "roadmap_item_changed" in [a.action for a in audit]


async def test_a_release_that_supersedes_the_capability_ships_the_item(demo):
    _, item = await copies(demo)
    await demo.roadmap.update(RM, item.id, status=RoadmapStatus.COMMITTED)
    release = dataclasses.replace(
        V30_PLANNED,
        version="3.1",
        status=PLANNED,
        supersedes=(*V30_PLANNED.supersedes, "payment-terms-guard"),
    )
    await demo.releases.import_planned(release, RM)
    shipped = await demo.roadmap.item(RM, item.id)
    assert (shipped.status, shipped.shipped_in) == (RoadmapStatus.SHIPPED, "3.1")
    assert shipped.migration is not None
    assert (shipped.migration.release, shipped.migration.capability) == (
        "3.1",
        "payment-terms-guard",
    )
    audit = await demo.audit.list_all(ADMIN, key=f"roadmap:{item.id}")
    assert audit[0].action == "roadmap_item_shipped" and audit[0].new["shipped_in"] == "3.1"
    # an item whose capability a release already supersedes is shipped from the start:
    # every member of this candidate declares invoice-pdf-branding, which 1.5 absorbed
    c = await candidate(
        demo, EvidenceKind.SHARED_CAPABILITY, "Build 'invoice-pdf-branding' into the product"
    )
    again = await demo.roadmap.create(RM, candidate_id(c))
    assert again.capability == "invoice-pdf-branding"
    assert (again.status, again.shipped_in) == (RoadmapStatus.SHIPPED, "1.5")
    with pytest.raises(InvalidInputError, match=r"shipped in 1\.5"):
        await demo.roadmap.update(RM, again.id, status=RoadmapStatus.PROPOSED)


async def test_listing_costs_the_same_statements_for_more_items(demo):
    report = await demo.foldback.candidates(ADMIN)
    ids = [candidate_id(c) for c in report.candidates]
    counts = []
    for batch in (ids[:1], ids[1:6]):
        for i in batch:
            item = await demo.roadmap.create(RM, i)
            await demo.roadmap.pledge(
                RM, item.id, item.tenants[0], "1", "EUR"
            ) if item.tenants else None
        with count_statements(demo.engine) as counter:
            await demo.roadmap.items(RM)
        counts.append(counter.count)
    assert counts[0] == counts[1], counts
