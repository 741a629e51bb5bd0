"""Triage of readiness findings (decisions, waivers in the gate, audit) and kept
runs (new and resolved since the previous run), over the real database."""

from __future__ import annotations

from datetime import date

import pytest
import pytest_asyncio

from core.analysis.readiness.vocabulary import Severity
from core.analysis.triage import Decision
from core.model.auth import Principal, Role
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.model.errors import InvalidInputError, PermissionDeniedError
from core.store.demo import register_planned_releases
from tests.conftest import ADMIN
from tests.sample import ACME

RM = Principal(Role.RELEASE_MANAGER, "rm")
TODAY = date(2026, 11, 23)
OVERRIDE = "OVERRIDE_INVALID:tax.rounding.per_line:@other"


@pytest_asyncio.fixture
async def fleet(services, tenant):
    """acme: blocked by legacy-rule (a removed hook); other: blocked by an override."""
    await services.tenants.create(ADMIN, "other", "Other Inc", "2.0")
    await register_planned_releases(services, ACME)
    await services.settings.set(ADMIN, "other", "tax.rounding.per_line", False)
    registration = Registration(
        CustomizationManifest("legacy-rule", "1.0", (tenant,), ">=1.5", tested_up_to="2.0"),
        (HookUse("tailor_resolve_setting", ("key", "value"), "fp"),),
        (),
        package="legacy_rule",
    )
    await services.registry.publish(ADMIN, registration)
    await services.registry.set_enabled(ADMIN, tenant, "legacy-rule", True)
    return services


async def test_a_waived_blocker_no_longer_blocks_until_its_date(fleet):
    before = await fleet.triage.triaged(RM, "3.0", today=TODAY)
    assert before.any_blocked
    assert OVERRIDE in before.current_ids
    other = next(t for t in before.report.tenants if t.tenant == "other")
    assert before.gate_status(other) == "blocked"

    await fleet.triage.decide(
        RM, OVERRIDE, "waive", reason="rounding moves to 3.1", until="2026-12-31", today=TODAY
    )
    after = await fleet.triage.triaged(RM, "3.0", ["other"], today=TODAY)
    other = after.report.tenants[0]
    assert after.gate_status(other) == "ready_with_warnings"
    assert not after.any_blocked
    [(tenant, finding, record)] = after.waived_blockers()
    assert (tenant, finding.code.value, record.reason) == (
        "other",
        "OVERRIDE_INVALID",
        "rounding moves to 3.1",
    )
    # acme is still blocked by its own, unwaived blocker
    assert (await fleet.triage.triaged(RM, "3.0", today=TODAY)).any_blocked
    # past the waiver's date the blocker blocks again
    later = await fleet.triage.triaged(RM, "3.0", ["other"], today=date(2027, 1, 1))
    assert later.any_blocked


async def test_decisions_are_audited_and_bad_input_changes_nothing(fleet):
    with pytest.raises(InvalidInputError, match="a waiver needs a reason"):
        await fleet.triage.decide(RM, OVERRIDE, "waive", until="2026-12-31", today=TODAY)
    with pytest.raises(InvalidInputError, match="a planned fix needs an owner"):
        await fleet.triage.decide(RM, OVERRIDE, "plan", until="2026-12-31", today=TODAY)
    with pytest.raises(InvalidInputError, match="is not a date"):
        await fleet.triage.decide(RM, OVERRIDE, "plan", owner="kim", until="soon", today=TODAY)
    with pytest.raises(InvalidInputError, match="in the past"):
        await fleet.triage.decide(
            RM, OVERRIDE, "waive", reason="r", until="2026-11-01", today=TODAY
        )
    with pytest.raises(InvalidInputError, match="use one of acknowledge, plan, waive, reopen"):
        await fleet.triage.decide(RM, OVERRIDE, "ignore", today=TODAY)
    consultant = Principal(Role.CONSULTANT, "c", frozenset({"other"}))
    with pytest.raises(PermissionDeniedError, match="triaging findings needs a token with role"):
        await fleet.triage.decide(consultant, OVERRIDE, "acknowledge")
    assert await fleet.triage.decisions() == {}

    planned = await fleet.triage.decide(
        RM, OVERRIDE, "plan", owner="kim", until="2026-12-15", today=TODAY
    )
    assert planned.decision is Decision.PLANNED and planned.until == date(2026, 12, 15)
    [entry] = [e for e in await fleet.audit.list_all(ADMIN) if e.action == "triage_finding"]
    assert entry.actor == "rm" and entry.tenant == "other" and entry.old is None
    assert entry.new["decision"] == "planned" and entry.new["owner"] == "kim"
    # a planned fix does not lift the block
    assert (await fleet.triage.triaged(RM, "3.0", ["other"], today=TODAY)).any_blocked

    await fleet.triage.decide(RM, OVERRIDE, "reopen", today=TODAY)
    assert await fleet.triage.decisions() == {}
    entries = [e for e in await fleet.audit.list_all(ADMIN) if e.action == "triage_finding"]
    assert entries[0].old["decision"] == "planned" and entries[0].new["decision"] == "reopened"


async def test_kept_runs_say_what_is_new_and_what_was_resolved(fleet):
    first = await fleet.triage.triaged(RM, "3.0", keep=True, today=TODAY)
    assert first.previous is None and first.new == frozenset() and first.kept is not None
    # resolve the override finding; add a new one on acme
    await fleet.settings.reset(ADMIN, "other", "tax.rounding.per_line")
    await fleet.settings.set(ADMIN, "acme", "tax.rounding.per_line", True)
    second = await fleet.triage.triaged(RM, "3.0", keep=True, today=TODAY)
    assert second.previous is not None and second.previous.id == first.kept.id
    assert [r.id for r in second.resolved] == [OVERRIDE]
    assert "OVERRIDE_INVALID:tax.rounding.per_line:@acme" in second.new
    assert len(second.new) == 1
    # a decision is carried while the finding persists, and dropped from the report after
    await fleet.triage.decide(
        RM, "OVERRIDE_INVALID:tax.rounding.per_line:@acme", "acknowledge", today=TODAY
    )
    third = await fleet.triage.triaged(RM, "3.0", today=TODAY)
    assert list(third.decisions) == ["OVERRIDE_INVALID:tax.rounding.per_line:@acme"]
    assert third.new == frozenset()  # compared with the second (kept) run
    runs = await fleet.triage.runs(RM, "3.0")
    assert [r.id for r in runs] == [second.kept.id, first.kept.id]


async def test_min_severity_filters_what_is_shown_not_the_gate(fleet):
    only = await fleet.triage.triaged(RM, "3.0", minimum="blocker", today=TODAY)
    shown = [f for t in only.report.tenants for f in only.shown(t)]
    assert shown and all(f.severity is Severity.BLOCKER for f in shown)
    everything = await fleet.triage.triaged(RM, "3.0", today=TODAY)
    assert sum(len(everything.shown(t)) for t in everything.report.tenants) > len(shown)
    with pytest.raises(InvalidInputError, match="'urgent' is not one of blocker"):
        await fleet.triage.triaged(RM, "3.0", minimum="urgent")


async def test_concurrent_first_decisions_both_land(fleet):
    import asyncio

    await asyncio.gather(
        fleet.triage.decide(RM, OVERRIDE, "acknowledge", reason="a", today=TODAY),
        fleet.triage.decide(RM, OVERRIDE, "acknowledge", reason="b", today=TODAY),
    )
    decisions = await fleet.triage.decisions()
    assert list(decisions) == [OVERRIDE] and decisions[OVERRIDE].reason in ("a", "b")
    entries = [e for e in await fleet.audit.list_all(ADMIN) if e.action == "triage_finding"]
    assert len(entries) == 2


async def test_a_run_kept_before_ids_had_a_detail_still_compares(fleet):
    """A run kept before migration 0013 stored ids without the key or hook: the
    next run matches it by (code, subject, tenant), so nothing shows as new or
    resolved only because the ids changed."""
    from sqlalchemy import select

    from core.store.models import ReadinessRun

    first = await fleet.triage.triaged(RM, "3.0", keep=True, today=TODAY)
    assert first.kept is not None
    async with fleet.sessions.begin() as session:
        row = await session.scalar(select(ReadinessRun).where(ReadinessRun.id == first.kept.id))
        assert row is not None and row.findings
        row.findings = [
            {
                "id": f"{f['code']}:{f['subject']}@{f['tenant']}",
                **{k: v for k, v in f.items() if k not in ("id", "detail")},
            }
            for f in row.findings
        ]
    second = await fleet.triage.triaged(RM, "3.0", today=TODAY)
    assert second.previous is not None and second.previous.id == first.kept.id
    assert second.new == frozenset() and second.resolved == ()
    # a finding that really went away is still resolved
    await fleet.settings.reset(ADMIN, "other", "tax.rounding.per_line")
    third = await fleet.triage.triaged(RM, "3.0", today=TODAY)
    assert [r.id for r in third.resolved] == ["OVERRIDE_INVALID:tax.rounding.per_line@other"]


async def test_a_decision_on_every_detail_applies_to_the_run(fleet):
    """``CODE:subject@tenant`` (detail ``*``, as migration 0013 kept the older
    decisions) covers each finding of its (code, subject, tenant) in a run."""
    every = "OVERRIDE_INVALID:tax.rounding.per_line@other"
    record = await fleet.triage.decide(
        RM, every, "waive", reason="moves to 3.1", until="2026-12-31", today=TODAY
    )
    assert record.finding == "OVERRIDE_INVALID:tax.rounding.per_line:*@other"
    triaged = await fleet.triage.triaged(RM, "3.0", ["other"], today=TODAY)
    assert list(triaged.decisions) == [record.finding]
    assert not triaged.any_blocked
    [(tenant, finding, waiver)] = triaged.waived_blockers()
    assert (tenant, finding.subject, waiver.reason) == (
        "other",
        "tax.rounding.per_line",
        "moves to 3.1",
    )
    # acme has no such finding: the decision is not carried into its report
    acme = await fleet.triage.triaged(RM, "3.0", ["acme"], today=TODAY)
    assert acme.decisions == {}
