"""Operation checks (pure): what a tenant's front-end apps ask for against a
target release, on Acme's real 2.0 -> 3.0 (removed, renamed and retyped keys)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.analysis.app_checks import app_findings
from core.analysis.readiness.evaluation import TenantRelease, evaluate
from core.analysis.readiness.releases import TargetIndex
from core.analysis.readiness.vocabulary import Code, Severity, TenantStatus
from core.model.apps import App, Operation, document_hash
from tests.sample import V30_PLANNED, acme_manifest

V10, V15, V20 = (acme_manifest(v) for v in ("1.0", "1.5", "2.0"))
V30 = V30_PLANNED
HISTORY = (V10, V15, V20, V30)
NOW = datetime(2026, 12, 5, tzinfo=UTC)
REMOVED = "orders.numbering.prefix"
RETYPED = "hr.leave.annual_days"  # int in 2.0, float in 3.0
RENAMED = "security.sso.metadata_url"  # -> security.sso.discovery_url
KEPT = "billing.invoice.due_days"


def op(text: str = "{ __typename }", keys=(), prefixes=(), name="Op") -> Operation:
    return Operation(document_hash(text), name, text, tuple(keys), tuple(prefixes), "t", NOW)


def app(*operations: Operation, flags=(), tenant="t1", name="shop-web") -> App:
    return App(name, tenant, False, tuple(flags), operations, "t", NOW)


def findings(apps, target=V30, invalid=None, tenants=(("t1", "2.0"),)):
    tenants = [TenantRelease(s, r) for s, r in tenants]
    return app_findings(apps, tenants, TargetIndex(target, HISTORY), invalid)


def by_code(found):
    return {f.code: f for f in found}


def test_removed_retyped_and_renamed_keys_of_operations_and_flags():
    found = findings([app(op(keys=[REMOVED, RETYPED, KEPT]), flags=[RENAMED])])["t1"]
    codes = by_code(found)
    assert set(codes) == {
        Code.APP_SETTING_REMOVED,
        Code.APP_SETTING_TYPE_CHANGED,
        Code.APP_SETTING_RENAMED,
    }
    removed = codes[Code.APP_SETTING_REMOVED]
    assert removed.severity is Severity.BLOCKER and removed.subject_kind == "app"
    assert removed.subject == f"shop-web/{REMOVED}" and removed.evidence["setting"] == REMOVED
    retyped = codes[Code.APP_SETTING_TYPE_CHANGED]
    assert retyped.severity is Severity.BLOCKER
    assert (retyped.evidence["type"], retyped.evidence["target_type"]) == ("int", "float")
    renamed = codes[Code.APP_SETTING_RENAMED]
    assert renamed.severity is Severity.WARNING
    assert renamed.evidence["replacement"] == "security.sso.discovery_url"
    assert "security.sso.discovery_url" in renamed.message and "OFREP flag" in renamed.message


def test_nothing_when_the_target_keeps_everything_or_the_key_is_not_the_products():
    assert findings([app(op(keys=[KEPT, "my.own.setting"], prefixes=["billing."]))]) == {}
    # against its own release nothing changed
    assert findings([app(op(keys=[REMOVED, RETYPED]))], target=V20) == {}


def test_a_prefix_stands_for_each_key_under_it():
    found = findings([app(op(prefixes=["orders.numbering."]))])["t1"]
    keys = {f.evidence.get("setting") for f in found if f.code is Code.APP_SETTING_REMOVED}
    assert REMOVED in keys
    assert "prefix 'orders.numbering.'" in found[0].message


def test_a_prefix_with_nothing_left_under_it_is_removed_itself():
    prefixes = {
        k.rsplit(".", 1)[0] + "."
        for k in (d.key for d in V20.settings)
        if not any(s.key.startswith(k.rsplit(".", 1)[0] + ".") for s in V30.settings)
    }
    assert prefixes, "3.0 drops some group of settings entirely"
    prefix = sorted(prefixes)[0]
    [finding] = findings([app(op(prefixes=[prefix]))])["t1"]
    assert finding.code is Code.APP_SETTING_REMOVED and finding.evidence["prefix"] == prefix


def test_invalid_documents_block_and_only_in_scope_tenants_are_checked():
    bad = op("{ gone }", name="Gone")
    found = findings(
        [app(bad), app(op(keys=[REMOVED]), tenant="t2", name="other-web")],
        invalid={bad.sha256: ["Cannot query field 'gone' on type 'Query'."]},
    )
    assert set(found) == {"t1"}
    [finding] = found["t1"]
    assert finding.code is Code.APP_OPERATION_INVALID and finding.severity is Severity.BLOCKER
    assert "Cannot query field 'gone'" in finding.message
    assert finding.evidence["operation"] == bad.id


def test_evaluate_blocks_the_tenant_and_plans_the_app():
    extra = findings([app(op(keys=[REMOVED]))])
    target = TargetIndex(V30, HISTORY)
    report = evaluate(target, [TenantRelease("t1", "2.0")], (), (), None, extra=extra)
    [tenant] = report.tenants
    assert tenant.status is TenantStatus.BLOCKED
    assert [(s.subject_kind, s.subject) for s in report.plan] == [("app", f"shop-web/{REMOVED}")]
    warned = evaluate(
        target,
        [TenantRelease("t1", "2.0")],
        (),
        (),
        None,
        extra=findings([app(flags=[RENAMED])]),
    )
    assert warned.tenants[0].status is TenantStatus.READY_WITH_WARNINGS


def test_last_in_is_the_last_release_before_the_target_as_the_rules_say():
    """Target 2.5 drops a key the planned 3.0 (made before) still has: the app's
    finding names 2.0, the last release before 2.5 that had it, never 3.0 (the
    history the rules read, the same one)."""
    import dataclasses

    v25 = dataclasses.replace(
        V20,
        version="2.5",
        status="released",
        settings=tuple(d for d in V20.settings if d.key != KEPT),
    )
    assert any(d.key == KEPT for d in V30.settings)
    target = TargetIndex(v25, (V10, V15, V20, v25, V30))
    found = app_findings([app(op(keys=[KEPT]))], [TenantRelease("t1", "2.0")], target)
    removed = by_code(found["t1"])[Code.APP_SETTING_REMOVED]
    assert removed.evidence["last_defined_in"] == "2.0"
    assert removed.evidence["last_defined_in"] == target.past.last_defined_in(KEPT)
