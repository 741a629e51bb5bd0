"""Fold-back over real data: the demo tenants, the sample customizations (real
plugin packages, introspected), the planned 3.0, and a release that supersedes."""

import dataclasses

import pytest_asyncio

from core.analysis.foldback import EvidenceKind
from core.analysis.readiness import CustomizationStatus
from core.model.manifest import PLANNED
from core.model.manifest_io import loads
from core.store.db import count_statements
from core.store.fleet import seed_fleet
from tests.conftest import ADMIN, demo_with_samples
from tests.sample import ACME, V30_PLANNED


@pytest_asyncio.fixture
async def demo(services):
    report = await demo_with_samples(services)
    assert "northwind-credit-policy" in report.published
    return services


def kinds(report, kind):
    return [c for c in report.candidates if c.kind is kind]


async def test_near_copies_group_and_unrelated_code_does_not(demo):
    report = await demo.foldback.candidates(ADMIN)
    dups = kinds(report, EvidenceKind.NEAR_DUPLICATE_CODE)
    assert [c.customizations for c in dups] == [
        ("northwind-credit-policy", "umbrella-payment-terms-guard")
    ]
    assert dups[0].tenants == ("northwind", "umbrella")
    assert dups[0].hooks == ("tailor_validate_setting",)


async def test_every_evidence_kind_comes_from_the_demo(demo):
    report = await demo.foldback.candidates(ADMIN)
    due = next(c for c in report.candidates if c.setting_key == "billing.invoice.due_days")
    assert (due.kind, due.value, len(due.tenants)) == (EvidenceKind.CHANGE_DEFAULT, 45, 5)
    shared = {c.title for c in kinds(report, EvidenceKind.SHARED_CAPABILITY)}
    assert "Build 'invoice-pdf-branding' into the product" in shared
    constants = kinds(report, EvidenceKind.SHOULD_BE_SETTING)
    assert [c.customizations for c in constants] == [("hooli-ui-defaults",)]
    # blockers the planned 3.0 finds are the upgrade cost
    assert any(c.blockers > 0 for c in report.candidates)
    assert report.retire and all(r.subject for r in report.retire)
    # best first, and deterministic
    totals = [c.score.total for c in report.candidates]
    assert totals == sorted(totals, reverse=True)
    assert (await demo.foldback.candidates(ADMIN)).candidates == report.candidates


async def test_a_release_that_supersedes_closes_the_loop(demo):
    base = V30_PLANNED
    release = dataclasses.replace(
        base, version="3.1", status=PLANNED, supersedes=(*base.supersedes, "payment-terms-guard")
    )
    await demo.releases.register(loads(_toml(release)), ADMIN)
    readiness = await demo.readiness.readiness(ADMIN, "3.1")
    status = {c.name: c.status for c in readiness.customizations}
    obsolete = [n for n, s in status.items() if s is CustomizationStatus.OBSOLETE]
    assert obsolete, status
    report = await demo.foldback.candidates(ADMIN)
    absorbed = [c for c in report.candidates if c.absorbed_in == "3.1"]
    assert absorbed, [(c.title, c.absorbed_in) for c in report.candidates]
    assert set(absorbed[0].customizations) & set(obsolete)


def _toml(manifest):
    from core.model.manifest_io import dumps

    return dumps(manifest)


async def test_statements_do_not_grow_with_the_fleet(demo):
    async def publish(registrations):
        await demo.registry.publish_many(ADMIN, registrations)

    counts = []
    for size in (5, 40):
        await seed_fleet(demo, size, 3, demo=ACME.demo, publish=publish)
        with count_statements(demo.engine) as counter:
            await demo.foldback.candidates(ADMIN)
        counts.append(counter.count)
    assert counts[0] == counts[1]
