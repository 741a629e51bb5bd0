"""Fold-back over real data: the demo tenants, the sample customizations (real
plugin packages, introspected), the planned 3.0, and a release that supersedes."""

import dataclasses

import pytest_asyncio

from core.analysis.foldback import EvidenceKind
from core.analysis.readiness.vocabulary import CustomizationStatus
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


async def test_upgrade_cost_counts_every_planned_release(demo):
    """With two planned releases, each customization's upgrade cost is the sum over
    both of the tenants it blocks, as each release's own readiness report says."""
    from core.analysis.readiness.vocabulary import CUSTOMIZATION

    base = V30_PLANNED
    blocked_in_30 = {
        subject
        for t in (await demo.readiness.readiness(ADMIN, "3.0")).tenants
        for kind, subject in t.blocker_keys
        if kind == CUSTOMIZATION
    }
    # 3.1 drops a hook that a customization 3.0 does not block implements: the
    # two targets then block different customizations
    used = {
        h.hook
        for r in await demo.registry.list_all(ADMIN)
        if r.enabled_for and r.name not in blocked_in_30
        for h in r.hooks
    }
    dropped = sorted(used & {p.name for p in base.extension_points})[0]
    release = dataclasses.replace(
        base,
        version="3.1",
        status=PLANNED,
        extension_points=tuple(p for p in base.extension_points if p.name != dropped),
    )
    await demo.releases.register(loads(_toml(release)), ADMIN)
    expected: dict[str, int] = {}
    for version in ("3.0", "3.1"):
        report = await demo.readiness.readiness(ADMIN, version)
        for tenant in report.tenants:
            for kind, subject in tenant.blocker_keys:
                if kind == CUSTOMIZATION:
                    expected[subject] = expected.get(subject, 0) + 1
    counts = await demo.readiness.blockers_by_customization()
    assert counts == expected
    assert set(expected) - blocked_in_30, "3.1 blocks a customization 3.0 does not"


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
