"""The pure half of triage (core.analysis.triage), on plain data: finding ids, a
decision's checks, the gate once waivers apply, who owns each blocker, and the
comparison with the previous kept run. The service that stores decisions and runs
is tested over a real database in tests/core/store/test_triage.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.analysis.readiness.report import ReadinessReport, TenantReadiness
from core.analysis.readiness.vocabulary import (
    CUSTOMIZATION,
    SETTING,
    Code,
    Finding,
    Severity,
    TenantStatus,
)
from core.analysis.triage import (
    ANY_DETAIL,
    SEVERITY_ORDER,
    VERBS,
    Decision,
    PreviousRun,
    RunInfo,
    TriageRecord,
    at_least,
    check_decision,
    finding_id,
    finding_rows,
    id_of,
    parse_finding_id,
    triage_report,
)
from core.analysis.unblock import UnblockStep
from core.model.errors import InvalidInputError

TODAY = date(2026, 11, 23)
AT = datetime(2026, 11, 20, tzinfo=UTC)

HOOK_GONE = Finding(
    Code.HOOK_REMOVED,
    CUSTOMIZATION,
    "legacy-rule",
    "legacy-rule implements a removed hook",
    "port it",
    {"hook": "tailor_resolve_setting"},
    owner="ana@partner",
)
UNTESTED = Finding(
    Code.UNTESTED_TARGET, CUSTOMIZATION, "legacy-rule", "untested on 3.0", "test it", {}
)
BAD_OVERRIDE = Finding(
    Code.OVERRIDE_INVALID,
    SETTING,
    "tax.rounding.per_line",
    "the override is no longer valid",
    "change it",
    {"environment": None},
)
SUPERSEDED = Finding(Code.SUPERSEDED_BY_CORE, CUSTOMIZATION, "gift-wrap", "in core", "retire", {})


def tenant(slug: str, *findings: Finding) -> TenantReadiness:
    severities = {f.severity for f in findings}
    status = (
        TenantStatus.BLOCKED
        if Severity.BLOCKER in severities
        else TenantStatus.READY_WITH_WARNINGS
        if severities & {Severity.WARNING, Severity.UNKNOWN}
        else TenantStatus.READY
    )
    return TenantReadiness(slug, "2.0", status, tuple(findings))


def report(*tenants: TenantReadiness, plan: tuple[UnblockStep, ...] = ()) -> ReadinessReport:
    return ReadinessReport("3.0", "planned", tenants, (), plan)


def record(
    finding: str, decision: Decision, *, owner: str | None = None, until: date | None = None
) -> TriageRecord:
    return TriageRecord(finding, decision, "because", owner, until, "rm", AT)


def step(kind: str, subject: str, *blocked: str) -> UnblockStep:
    return UnblockStep(1, kind, subject, ("X",), blocked, len(blocked), len(blocked), len(blocked))


FLEET = report(
    tenant("acme", HOOK_GONE, UNTESTED),
    tenant("other", BAD_OVERRIDE),
    tenant("quiet", SUPERSEDED),
)
ACME_HOOK = id_of(HOOK_GONE, "acme")
OTHER_OVERRIDE = id_of(BAD_OVERRIDE, "other")


# -- finding ids ---------------------------------------------------------------------


def test_finding_ids_round_trip_and_bad_ids_are_explained():
    fid = finding_id("HOOK_REMOVED", "legacy-rule", "tailor_resolve_setting", "acme")
    assert fid == "HOOK_REMOVED:legacy-rule:tailor_resolve_setting@acme" == ACME_HOOK
    assert parse_finding_id(fid) == (
        Code.HOOK_REMOVED,
        "legacy-rule",
        "tailor_resolve_setting",
        "acme",
    )
    # a manifest-level finding has no detail; an id without one covers them all
    assert id_of(UNTESTED, "acme") == "UNTESTED_TARGET:legacy-rule:@acme"
    assert parse_finding_id("UNTESTED_TARGET:legacy-rule:@acme")[1:] == ("legacy-rule", "", "acme")
    assert parse_finding_id(" HOOK_REMOVED:legacy-rule@acme ")[1:] == (
        "legacy-rule",
        ANY_DETAIL,
        "acme",
    )
    # an override's detail is its environment ("" tenant-wide)
    assert OTHER_OVERRIDE == "OVERRIDE_INVALID:tax.rounding.per_line:@other"
    with pytest.raises(InvalidInputError, match="CODE:subject:key-or-hook@tenant"):
        parse_finding_id("legacy-rule")
    with pytest.raises(InvalidInputError, match="CODE:subject:key-or-hook@tenant"):
        parse_finding_id("HOOK_REMOVED:legacy-rule")  # no tenant
    with pytest.raises(InvalidInputError, match="'NOPE' is not a finding code"):
        parse_finding_id("NOPE:x@acme")


def test_severities_are_ordered_from_the_most_serious():
    assert SEVERITY_ORDER[0] is Severity.BLOCKER and SEVERITY_ORDER[-1] is Severity.INFO
    assert at_least(Severity.BLOCKER, Severity.WARNING)
    assert at_least(Severity.WARNING, Severity.WARNING)
    assert not at_least(Severity.UNKNOWN, Severity.WARNING)
    assert all(at_least(s, Severity.INFO) for s in Severity)


# -- a decision's checks -------------------------------------------------------------


def test_every_verb_and_state_is_a_decision_and_input_is_normalized():
    for verb, state in VERBS.items():
        for word in (verb.value, state.value, f"  {verb.value.upper()} "):
            checked = check_decision(word, "why", "kim", "2026-12-01", TODAY)
            assert checked.state is state, word
    checked = check_decision("acknowledge", "   ", "  kim ", " ", TODAY)
    assert (checked.reason, checked.owner, checked.until) == (None, "kim", None)
    waiver = check_decision("waive", " moves to 3.1 ", None, "2026-11-23", TODAY)
    assert (waiver.state, waiver.reason, waiver.until) == (
        Decision.WAIVED,
        "moves to 3.1",
        TODAY,  # today is still allowed
    )
    assert check_decision("plan", None, "kim", date(2027, 1, 31), TODAY).until == date(2027, 1, 31)
    # only waivers and plans need a future date: an acknowledgement may say when it was seen
    assert check_decision("acknowledge", None, None, "2026-01-01", TODAY).until == date(2026, 1, 1)


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (("ignore", None, None, None), "decision", "use one of acknowledge, plan, waive, reopen"),
        (("waive", None, None, "2026-12-31"), "reason", "a waiver needs a reason"),
        (("waive", "r", None, None), "until", "a waiver needs an end date"),
        (("plan", None, None, "2026-12-31"), "owner", "a planned fix needs an owner"),
        (("plan", None, "kim", ""), "until", "a planned fix needs a due date"),
        (("plan", None, "kim", "soon"), "until", "'soon' is not a date"),
        (("waive", "r", None, "2026-11-22"), "until", "2026-11-22 is in the past"),
        (("acknowledge", "x" * 2001, None, None), "reason", "at most 2000 characters"),
        (("acknowledge", None, "k" * 201, None), "owner", "at most 200 characters"),
    ],
)
def test_a_bad_decision_names_the_field_at_fault(args, field, message):
    with pytest.raises(InvalidInputError, match=message) as caught:
        check_decision(*args, TODAY)
    assert caught.value.field == field


# -- the gate once waivers apply -----------------------------------------------------


def test_a_waiver_takes_a_blocker_out_of_the_gate_through_its_date():
    untriaged = triage_report(FLEET, {}, TODAY)
    assert untriaged.any_blocked
    assert untriaged.gate_counts == {"ready": 1, "ready_with_warnings": 0, "blocked": 2}

    waiver = record(OTHER_OVERRIDE, Decision.WAIVED, until=date(2026, 12, 31))
    waived = triage_report(FLEET, {OTHER_OVERRIDE: waiver}, TODAY)
    acme, other, quiet = waived.report.tenants
    assert waived.gate_status(other) == "ready_with_warnings"
    assert waived.blocking(other) == []
    assert waived.gate_status(acme) == "blocked" and waived.blocking(acme) == [HOOK_GONE]
    assert waived.gate_status(quiet) == "ready"
    assert waived.gate_counts == {"ready": 1, "ready_with_warnings": 1, "blocked": 1}
    assert waived.any_blocked  # acme's own blocker is not waived
    assert waived.waived_blockers() == [("other", BAD_OVERRIDE, waiver)]
    # the waiver holds through its date, not after
    assert triage_report(FLEET, {OTHER_OVERRIDE: waiver}, date(2026, 12, 31)).waived(
        "other", BAD_OVERRIDE
    )
    later = triage_report(FLEET, {OTHER_OVERRIDE: waiver}, date(2027, 1, 1))
    assert not later.waived("other", BAD_OVERRIDE)
    assert later.gate_status(other) == "blocked" and later.waived_blockers() == []


def test_only_a_waiver_lifts_a_block():
    planned = record(ACME_HOOK, Decision.PLANNED, owner="kim", until=date(2026, 12, 15))
    acknowledged = record(OTHER_OVERRIDE, Decision.ACKNOWLEDGED)
    both = triage_report(FLEET, {ACME_HOOK: planned, OTHER_OVERRIDE: acknowledged}, TODAY)
    assert both.gate_counts["blocked"] == 2 and both.any_blocked
    assert both.decision("acme", HOOK_GONE) == planned
    assert not both.waived("acme", HOOK_GONE) and not both.waived("other", BAD_OVERRIDE)


def test_a_decision_on_every_detail_covers_each_finding_without_its_own():
    wildcard = "HOOK_REMOVED:legacy-rule:*@acme"
    covered = triage_report(
        FLEET, {wildcard: record(wildcard, Decision.WAIVED, until=date(2027, 1, 1))}, TODAY
    )
    # the decision is kept, though its id is none of the report's finding ids
    assert list(covered.decisions) == [wildcard]
    assert covered.waived("acme", HOOK_GONE)
    assert covered.decision("acme", HOOK_GONE) is not None
    assert covered.decision("acme", UNTESTED) is None  # another code: not covered
    assert covered.gate_status(covered.report.tenants[0]) == "ready_with_warnings"
    assert covered.blocking(covered.report.tenants[1]) == [BAD_OVERRIDE]  # other: still blocked
    # a finding's own decision wins over the one on every detail
    own = record(ACME_HOOK, Decision.ACKNOWLEDGED)
    both = triage_report(
        FLEET,
        {wildcard: record(wildcard, Decision.WAIVED, until=date(2027, 1, 1)), ACME_HOOK: own},
        TODAY,
    )
    assert both.decision("acme", HOOK_GONE) == own and not both.waived("acme", HOOK_GONE)
    # one whose (code, subject, tenant) the report does not show is dropped
    elsewhere = "HOOK_REMOVED:legacy-rule:*@other"
    assert (
        triage_report(FLEET, {elsewhere: record(elsewhere, Decision.WAIVED)}, TODAY).decisions == {}
    )


def test_min_severity_filters_what_is_shown_and_the_data_but_not_the_gate():
    only = triage_report(FLEET, {}, TODAY, minimum=Severity.BLOCKER)
    acme = only.report.tenants[0]
    assert only.shown(acme) == [HOOK_GONE]
    data = only.tenant_dict(acme)
    assert [f["id"] for f in data["findings"]] == [ACME_HOOK]
    assert data["gate_status"] == "blocked"
    assert triage_report(FLEET, {}, TODAY).shown(acme) == [HOOK_GONE, UNTESTED]


# -- who owns each blocker -----------------------------------------------------------


def test_blocker_owners_per_step_and_unassigned_first():
    second = Finding(
        Code.SETTING_REMOVED,
        CUSTOMIZATION,
        "legacy-rule",
        "reads a removed setting",
        "stop reading it",
        {"setting": "orders.numbering.prefix"},
    )
    fleet = report(
        tenant("acme", HOOK_GONE, second, UNTESTED),
        tenant("beta", HOOK_GONE),
        tenant("other", BAD_OVERRIDE),
        plan=(
            step(CUSTOMIZATION, "legacy-rule", "acme", "beta"),
            step(SETTING, "tax.rounding.per_line", "other"),
        ),
    )
    beta_hook = id_of(HOOK_GONE, "beta")
    decisions = {
        ACME_HOOK: record(ACME_HOOK, Decision.PLANNED, owner="kim", until=date(2027, 1, 31)),
        beta_hook: record(beta_hook, Decision.PLANNED, owner="ana", until=date(2026, 12, 15)),
        OTHER_OVERRIDE: record(OTHER_OVERRIDE, Decision.WAIVED, until=date(2026, 12, 31)),
    }
    triaged = triage_report(fleet, decisions, TODAY)
    owners = triaged.owners
    assert len(owners.blockers) == 4  # UNTESTED is a warning: not a blocker
    assert owners.unassigned == 1  # acme's removed setting: no owner, no waiver

    legacy = owners.step(fleet.plan[0])
    assert (legacy.owners, legacy.due, legacy.waived, legacy.unassigned, legacy.findings) == (
        ("ana", "kim"),
        date(2026, 12, 15),
        0,
        1,
        3,
    )
    assert legacy.text() == "owner ana, kim (due 2026-12-15); 1 unassigned"
    setting = owners.step(fleet.plan[1])
    assert (setting.owners, setting.due, setting.waived, setting.unassigned) == ((), None, 1, 0)
    assert setting.text() == "1 waived"
    assert owners.step(step(CUSTOMIZATION, "nobody")).findings == 0

    ordered = owners.ordered()
    assert [(b.tenant, b.finding.code.value) for b in ordered] == [
        ("acme", "SETTING_REMOVED"),  # unassigned first
        ("beta", "HOOK_REMOVED"),  # then by due date
        ("acme", "HOOK_REMOVED"),
        ("other", "OVERRIDE_INVALID"),  # a waiver has no due date: last
    ]
    assert ordered[0].author == "" and ordered[2].author == "ana@partner"
    assert ordered[3].waived_until == date(2026, 12, 31) and ordered[3].due is None
    assert len(owners.ordered(limit=2)) == 2

    step_data = triaged.plan_step_dict(fleet.plan[0])["triage"]
    assert step_data == {
        "owners": ["ana", "kim"],
        "due": "2026-12-15",
        "waived": 0,
        "unassigned": 1,
        "findings": 3,
    }
    assert triaged.run_dict()["unassigned_blockers"] == 1


# -- the comparison with the previous kept run ---------------------------------------


def _previous(findings, tenants=("acme", "other", "quiet")) -> PreviousRun:
    return PreviousRun(RunInfo(7, "3.0", AT, "rm", {}), tenants, findings)


def test_new_and_resolved_are_counted_for_the_tenants_both_runs_evaluated():
    gone = {
        "id": "OVERRIDE_INVALID:orders.numbering.prefix:@acme",
        "code": "OVERRIDE_INVALID",
        "subject": "orders.numbering.prefix",
        "detail": "",
        "tenant": "acme",
        "severity": "blocker",
    }
    elsewhere = {**gone, "id": "OVERRIDE_INVALID:orders.numbering.prefix:@zeta", "tenant": "zeta"}
    kept = [r for r in finding_rows(FLEET) if r["tenant"] != "other"] + [gone, elsewhere]
    # "other" was not evaluated last time: its finding is not new
    triaged = triage_report(FLEET, {}, TODAY, previous=_previous(kept, ("acme", "quiet", "zeta")))
    assert triaged.previous is not None and triaged.previous.id == 7
    assert triaged.new == frozenset()
    # zeta is not evaluated now: its finding is not resolved
    assert [(r.id, r.code, r.tenant, r.severity) for r in triaged.resolved] == [
        (gone["id"], "OVERRIDE_INVALID", "acme", "blocker")
    ]
    assert not triaged.is_new("other", BAD_OVERRIDE)

    everyone = triage_report(FLEET, {}, TODAY, previous=_previous(kept))
    assert everyone.new == frozenset({OTHER_OVERRIDE})
    assert everyone.is_new("other", BAD_OVERRIDE)
    assert everyone.tenant_dict(everyone.report.tenants[1])["findings"][0]["new"] is True
    assert everyone.run_dict()["new_findings"] == [OTHER_OVERRIDE]
    assert everyone.run_dict()["previous_run"] == {"id": 7, "at": AT.isoformat()}

    # no previous run: nothing is new, nothing resolved
    first = triage_report(FLEET, {}, TODAY)
    assert (first.previous, first.new, first.resolved) == (None, frozenset(), ())


def test_a_run_kept_before_ids_had_a_detail_matches_by_code_subject_and_tenant():
    legacy = [
        {
            "id": f"{r['code']}:{r['subject']}@{r['tenant']}",
            **{k: v for k, v in r.items() if k not in ("id", "detail")},
        }
        for r in finding_rows(FLEET)
    ]
    same = triage_report(FLEET, {}, TODAY, previous=_previous(legacy))
    assert same.new == frozenset() and same.resolved == ()

    fixed = report(
        tenant("acme", HOOK_GONE, UNTESTED), tenant("other"), tenant("quiet", SUPERSEDED)
    )
    after = triage_report(fixed, {}, TODAY, previous=_previous(legacy))
    assert [r.id for r in after.resolved] == ["OVERRIDE_INVALID:tax.rounding.per_line@other"]
    assert after.new == frozenset()


def test_decisions_on_findings_the_report_no_longer_shows_are_dropped():
    stale = "OVERRIDE_INVALID:orders.numbering.prefix:@acme"
    decisions = {
        ACME_HOOK: record(ACME_HOOK, Decision.ACKNOWLEDGED),
        stale: record(stale, Decision.ACKNOWLEDGED),
    }
    triaged = triage_report(FLEET, decisions, TODAY)
    assert list(triaged.decisions) == [ACME_HOOK]
    assert triaged.current_ids == frozenset(r["id"] for r in finding_rows(FLEET))
    data = triaged.to_dict()
    acme = data["tenants"][0]
    assert acme["findings"][0]["triage"]["decision"] == "acknowledged"
    assert acme["findings"][1]["triage"] is None
    assert data["any_blocked"] is True


def test_finding_rows_are_what_a_kept_run_stores():
    rows = finding_rows(FLEET)
    assert rows[0] == {
        "id": ACME_HOOK,
        "code": "HOOK_REMOVED",
        "subject": "legacy-rule",
        "detail": "tailor_resolve_setting",
        "tenant": "acme",
        "severity": "blocker",
    }
    assert [(r["tenant"], r["severity"]) for r in rows] == [
        ("acme", "blocker"),
        ("acme", "warning"),
        ("other", "blocker"),
        ("quiet", "info"),
    ]
