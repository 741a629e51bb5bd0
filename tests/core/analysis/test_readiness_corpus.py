"""Readiness on the corpus (tests/corpus/readiness): customizations written in many
styles, with the expected findings written by hand before the analysis ran.
Precision and recall, evidence kinds, file:line, tenant statuses, authors, and
the observed half through the real observation store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest_asyncio

from core.analysis.readiness.vocabulary import OBSERVED, STATIC, Code
from core.model.customizations import ObservationDelta
from core.store.readiness_service import StaticRegistrations
from tests.conftest import ADMIN
from tests.corpus.score import (
    CORPUS,
    corpus_registrations,
    detail,
    found_findings,
    history,
    run_corpus,
    score,
)
from tests.sample import ACME


def test_precision_and_recall_on_the_corpus(capsys):
    s = score()
    print(f"precision {s.precision:.3f} recall {s.recall:.3f}")
    assert s.false_positives == ()
    assert s.precision == 1.0
    assert s.recall >= 0.98, s.false_negatives
    assert s.wrong_kinds == ()


def test_static_evidence_points_at_the_file_and_line_inside_the_package():
    report, spec, _ = run_corpus()
    found = found_findings(report)
    by_subject = {f"{c} {d}": f for (c, _code, d), f in found.items()}
    for subject, location in spec["locations"].items():
        f = by_subject[subject]
        assert any(w.startswith(location) for w in f.evidence["static"]), (subject, f.evidence)
        assert location in f.message
        assert str(CORPUS) not in f.message  # never a server path


def test_tenant_statuses_follow_both_kinds_of_evidence():
    report, spec, _ = run_corpus()
    statuses = {t.tenant: t.status.value for t in report.tenants}
    for status, tenants in spec["tenants"].items():
        assert sorted(t for t, s in statuses.items() if s == status) == sorted(tenants)


def test_findings_name_the_customizations_author():
    report, _, registrations = run_corpus()
    authors = {r.name: r.manifest.author for r in registrations}
    for c in report.customizations:
        for f in c.findings:
            assert f.owner == authors[c.name] != ""
            assert f.to_dict()["owner"] == authors[c.name]
            assert f.evidence["author"] == authors[c.name]


def test_detected_hooks_and_keys():
    _, spec, registrations = run_corpus()
    by_name = {r.name: r for r in registrations}
    for name, want in spec["detected"].items():
        r = by_name[name]
        assert sorted({h.hook for h in r.hooks}) == want["hooks"], name
        assert sorted(r.setting_keys) == want["keys"], name


def test_without_observations_a_run_time_only_key_is_not_seen():
    """The observed half is what finds corpus-observed: statically it is clean."""
    report, _, _ = run_corpus()
    (observed,) = [c for c in report.customizations if c.name == "corpus-observed"]
    assert {f.sources for f in observed.findings} == {(OBSERVED,)}
    assert all("observed" in f.evidence and "static" not in f.evidence for f in observed.findings)


@pytest_asyncio.fixture
async def corpus_fleet(services):
    from core.store.demo import register_planned_releases
    from plugins.catalog import tailor_extension_points

    await register_planned_releases(services, ACME, tailor_extension_points)
    for slug in ("t03", "t14"):
        await services.tenants.create(ADMIN, slug, slug.upper(), "2.0")
    manifests = history()
    known = frozenset(d.key for m in manifests for d in m.settings)
    wanted = {"corpus-sibling", "corpus-observed"}
    registrations = [r for r in corpus_registrations(known) if r.name in wanted]
    services.readiness.registrations = StaticRegistrations(registrations)
    return services


async def test_observations_recorded_by_the_runtime_reach_readiness(corpus_fleet):
    services = corpus_fleet
    report = await services.readiness.readiness(ADMIN, "3.0")
    assert {t.tenant: t.status.value for t in report.tenants} == {
        "t03": "blocked",  # static: keys.py
        "t14": "ready",  # nothing static, nothing observed yet
    }
    seen = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    await services.observations.record(
        [
            ObservationDelta(
                "corpus-observed",
                "t14",
                "tailor_resolve_settings",
                calls=5,
                first_seen=seen,
                last_seen=seen,
                keys={("security.sso.metadata_url", "read"): 5},
            ),
            ObservationDelta(
                "corpus-sibling",
                "t03",
                "tailor_resolve_settings",
                calls=2,
                first_seen=seen,
                last_seen=seen,
                keys={("reporting.csv.delimiter", "returned"): 2},
            ),
        ]
    )
    report = await services.readiness.readiness(ADMIN, "3.0")
    assert {t.tenant: t.status.value for t in report.tenants} == {
        "t03": "blocked",
        "t14": "blocked",
    }
    found = {(c.name, f.code, detail(f)): f for c in report.customizations for f in c.findings}
    observed = found[("corpus-observed", Code.SETTING_REMOVED, "security.sso.metadata_url")]
    assert observed.sources == (OBSERVED,)
    assert observed.evidence["observed"] == {
        "count": 5,
        "last_seen": seen.isoformat(),
        "directions": ["read"],
    }
    both = found[("corpus-sibling", Code.SETTING_REMOVED, "reporting.csv.delimiter")]
    assert both.sources == (STATIC, OBSERVED)
    assert both.evidence["static"] == ["keys.py:3 (constant DELIMITER)"]
    assert both.evidence["observed"]["count"] == 2

    # a token scoped to t03 sees no observation of t14 (and t14 not at all)
    scoped = await services.readiness.readiness(_consultant("t03"), "3.0")
    assert [t.tenant for t in scoped.tenants] == ["t03"]
    assert [c.name for c in scoped.customizations] == ["corpus-sibling"]


def _consultant(slug: str):
    from core.model.auth import Principal, Role

    return Principal(Role.CONSULTANT, "consultant-" + slug, frozenset({slug}))


async def test_published_references_keep_file_and_line_for_fleet_readiness(services):
    """The registry stores where the code refers to keys (migration 0004): fleet
    readiness over published registrations names the file and line."""
    from core.store.demo import register_planned_releases
    from plugins.catalog import tailor_extension_points

    await register_planned_releases(services, ACME, tailor_extension_points)
    await services.tenants.create(ADMIN, "t03", "T03", "2.0")
    known = frozenset(d.key for m in history() for d in m.settings)
    (sibling,) = [r for r in corpus_registrations(known) if r.name == "corpus-sibling"]
    await services.registry.publish_many(ADMIN, [sibling])
    (stored,) = await services.registry.list_all(ADMIN)
    assert stored.references == sibling.references
    assert {h.location for h in stored.hooks} == {"hooks.py:9"}
    assert stored.hooks[0].features == sibling.hooks[0].features
    report = await services.readiness.readiness(ADMIN, "3.0")
    (c,) = report.customizations
    (f,) = [f for f in c.findings if f.code is Code.SETTING_REMOVED]
    assert f.evidence["static"] == ["keys.py:3 (constant DELIMITER)"]
    assert f.owner == "C. Sibling"
