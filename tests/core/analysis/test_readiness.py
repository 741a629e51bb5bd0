"""Readiness evaluation (pure): every finding code, statuses, levels, history,
PEP 440 pre-releases, and real plugin code introspected from disk."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
import textwrap
from pathlib import Path

import pytest

from core.analysis.readiness.evaluation import TenantRelease, evaluate
from core.analysis.readiness.releases import TargetIndex
from core.analysis.readiness.vocabulary import Code, CustomizationStatus, Severity, TenantStatus
from core.analysis.unblock import unblock_plan
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.model.overrides import ActiveOverride
from tests.sample import V30_PLANNED, acme_manifest

V10, V15, V20 = (acme_manifest(v) for v in ("1.0", "1.5", "2.0"))
V30 = V30_PLANNED
HISTORY = (V10, V15, V20, V30)


def reg(
    name: str = "c",
    hooks: tuple[tuple[str, tuple[str, ...]], ...] = (),
    *,
    requires: str = ">=1.5",
    tested_up_to: str | None = None,
    capability: str | None = None,
    setting_keys: tuple[str, ...] = (),
    tenants: tuple[str, ...] = ("t1",),
) -> Registration:
    return Registration(
        manifest=CustomizationManifest(
            name=name,
            version="1.0.0",
            tenants=tenants,
            requires=requires,
            tested_up_to=tested_up_to,
            capability=capability,
        ),
        hooks=tuple(HookUse(h, p, fingerprint="fp") for h, p in hooks),
        setting_keys=setting_keys,
        enabled_for=tenants,
    )


def run(target, registrations=(), overrides=(), tenants=("t1",), installed=None):
    return evaluate(
        TargetIndex(target, HISTORY),
        [TenantRelease(t, "2.0") for t in tenants],
        overrides,
        registrations,
        installed,
    )


def codes(report, name="c"):
    (c,) = [c for c in report.customizations if c.name == name]
    return {f.code for f in c.findings}, c


def test_compatible_customization_is_level_a_and_tenant_ready():
    report = run(V30, [reg(hooks=(("tailor_resolve_settings", ("tenant", "values")),))])
    found, c = codes(report)
    assert found == set()
    assert (c.status, c.level) == (CustomizationStatus.COMPATIBLE, "A")
    assert report.tenants[0].status is TenantStatus.READY


def test_requires_excludes_target_uses_pep440_with_prereleases():
    r = reg(requires=">=2.0,<3")
    assert Code.REQUIRES_EXCLUDES_TARGET in codes(run(V30, [r]))[0]
    # PEP 440: "<3" excludes the pre-releases of 3 itself ...
    rc = V30.__class__(**{**V30.__dict__, "version": "3.0rc1"})
    assert Code.REQUIRES_EXCLUDES_TARGET in codes(run(rc, [r]))[0]
    # ... while ">=3.0rc1" admits them
    assert codes(run(rc, [reg(requires=">=3.0rc1")]))[0] == set()
    found, c = codes(run(V30, [reg(requires="not a specifier")]))
    assert Code.REQUIRES_EXCLUDES_TARGET in found and c.level == "D"


def test_hook_removed_names_the_replacement_from_history():
    report = run(V30, [reg(hooks=(("tailor_resolve_setting", ("key", "value")),))])
    found, c = codes(report)
    assert found == {Code.HOOK_REMOVED}
    (f,) = c.findings
    assert f.severity is Severity.BLOCKER
    assert f.evidence["replacement"] == "tailor_resolve_settings"
    assert "2.0" in f.message and "tailor_resolve_settings" in f.action
    assert (c.status, c.level) == (CustomizationStatus.INCOMPATIBLE, "D")
    assert report.tenants[0].status is TenantStatus.BLOCKED


def test_hook_param_removed_follows_pluggys_rule():
    fewer = reg("fewer", (("acme_order_approval_route", ("order",)),))
    extra = reg("extra", (("acme_order_approval_route", ("order", "threshold")),))
    report = run(V30, [fewer, extra])
    assert Code.HOOK_PARAM_REMOVED not in codes(report, "fewer")[0]
    found, c = codes(report, "extra")
    assert Code.HOOK_PARAM_REMOVED in found
    f = next(f for f in c.findings if f.code is Code.HOOK_PARAM_REMOVED)
    assert f.evidence["missing"] == ["threshold"]
    assert f.evidence["spec_params"] == ["tenant", "order"]
    # on 2.0 the same implementation is fine (but the hook is experimental there)
    found20, c20 = codes(run(V20, [extra]), "extra")
    assert found20 == {Code.EXPERIMENTAL_HOOK} and c20.level == "C"


def test_multi_release_history_deprecated_then_removed():
    r = reg(hooks=(("tailor_resolve_setting", ("tenant", "key", "value")),))
    on_15, c15 = codes(run(V15, [r]))
    assert on_15 == {Code.HOOK_DEPRECATED}
    f = c15.findings[0]
    assert f.evidence["replacement"] == "tailor_resolve_settings"
    assert f.severity is Severity.WARNING
    assert (c15.status, c15.level) == (CustomizationStatus.NEEDS_UPDATE, "B")
    assert codes(run(V20, [r]))[0] == {Code.HOOK_DEPRECATED}
    assert codes(run(V30, [r]))[0] == {Code.HOOK_REMOVED}
    # before 1.5 it was a plain stable hook
    on_10 = run(V10, [reg(hooks=(("tailor_resolve_setting", ("key",)),), requires=">=1.0")])
    assert codes(on_10)[0] == set()


def test_hook_deprecated_in_target_and_experimental_hook():
    report = run(
        V30,
        [
            reg("dep", (("tailor_setting_changed", ("tenant", "key", "new")),)),
            reg("exp", (("acme_tax_lines", ("invoice",)),)),
        ],
    )
    found, c = codes(report, "dep")
    assert found == {Code.HOOK_DEPRECATED}
    assert c.findings[0].evidence["replacement"] == "tailor_settings_changed"
    found, c = codes(report, "exp")
    assert found == {Code.EXPERIMENTAL_HOOK} and c.level == "C"
    assert report.tenants[0].status is TenantStatus.READY_WITH_WARNINGS


def test_setting_removed_and_renamed_references():
    report = run(
        V30,
        [
            reg(
                setting_keys=(
                    "security.sso.metadata_url",
                    "tax.rounding.per_line",
                    "orders.approval.threshold",
                    "my.own.setting",
                )
            )
        ],
    )
    _, c = codes(report)
    by_key = {f.subject and f.evidence.get("setting"): f for f in c.findings}
    renamed = by_key["security.sso.metadata_url"]
    assert renamed.code is Code.SETTING_REMOVED
    assert renamed.evidence["replacement"] == "security.sso.discovery_url"
    assert by_key["tax.rounding.per_line"].evidence["replacement"] == "tax.rounding.mode"
    deprecated = by_key["orders.approval.threshold"]
    assert deprecated.code is Code.SETTING_DEPRECATED
    assert deprecated.evidence["replacement"] == "orders.approval.rules"
    assert "my.own.setting" not in by_key  # not a product setting: the customization's own


def test_untested_target_superseded_and_not_installed():
    report = run(
        V30,
        [reg(tested_up_to="2.0", capability="order-approval-routing")],
        installed=frozenset(),
    )
    found, c = codes(report)
    assert found == {Code.UNTESTED_TARGET, Code.SUPERSEDED_BY_CORE, Code.NOT_INSTALLED}
    assert c.status is CustomizationStatus.OBSOLETE
    assert c.level == "D"
    severities = {f.code: f.severity for f in c.findings}
    assert severities[Code.SUPERSEDED_BY_CORE] is Severity.INFO
    assert severities[Code.NOT_INSTALLED] is Severity.UNKNOWN
    # tested on a pre-release of 3.0 only: the final 3.0 is above it
    assert Code.UNTESTED_TARGET in codes(run(V30, [reg(tested_up_to="3.0rc1")]))[0]
    assert Code.UNTESTED_TARGET not in codes(run(V30, [reg(tested_up_to="3.0")]))[0]
    only_unknown = run(V30, [reg()], installed=frozenset())
    assert codes(only_unknown)[1].status is CustomizationStatus.UNKNOWN
    assert only_unknown.tenants[0].status is TenantStatus.READY_WITH_WARNINGS


def test_override_invalid_for_type_range_choices_and_removal():
    rows = [
        ActiveOverride("t1", "", "inventory.lot_tracking.enabled", True),  # retyped
        ActiveOverride("t1", "staging", "integrations.api.rate_limit_per_minute", 2000),  # narrowed
        ActiveOverride("t1", "", "inventory.costing.method", "lifo"),  # choice withdrawn
        ActiveOverride("t1", "", "security.sso.metadata_url", "https://idp.example/x"),  # renamed
        ActiveOverride("t1", "", "tax.rounding.per_line", False),  # removed
        ActiveOverride("t1", "", "hr.leave.annual_days", 25),  # int -> float: still valid
        ActiveOverride("t1", "", "billing.invoice.logo_url", "https://x.example/l.png"),
        ActiveOverride("t1", "", "client.only.setting", 1),  # not a product setting
    ]
    report = run(V30, overrides=rows)
    (t,) = report.tenants
    by_key = {f.subject: f for f in t.findings}
    assert by_key["inventory.lot_tracking.enabled"].evidence["rule"] == "type"
    assert by_key["integrations.api.rate_limit_per_minute"].evidence["rule"] == "max"
    assert by_key["integrations.api.rate_limit_per_minute"].evidence["environment"] == "staging"
    assert by_key["inventory.costing.method"].evidence["rule"] == "choices"
    assert by_key["security.sso.metadata_url"].evidence == {
        "environment": None,
        "rule": "removed",
        "value": "https://idp.example/x",
        "replacement": "security.sso.discovery_url",
    }
    assert by_key["tax.rounding.per_line"].evidence["replacement"] == "tax.rounding.mode"
    assert by_key["billing.invoice.logo_url"].code is Code.SETTING_DEPRECATED
    assert "hr.leave.annual_days" not in by_key and "client.only.setting" not in by_key
    invalid = {k for k, f in by_key.items() if f.code is Code.OVERRIDE_INVALID}
    assert len(invalid) == 5
    assert t.status is TenantStatus.BLOCKED
    # the same overrides are all valid on 2.0 (only the 2.0 deprecation warns)
    on20 = run(V20, overrides=rows[:-1]).tenants[0]
    assert {f.code for f in on20.findings} == {Code.SETTING_DEPRECATED}


def test_secret_values_never_appear_in_evidence():
    rows = [ActiveOverride("t1", "", "integrations.payment_gateway.secret_key", 12345)]
    (f,) = run(V30, overrides=rows).tenants[0].findings
    assert f.code is Code.OVERRIDE_INVALID
    assert f.evidence["value"] == "***" and "12345" not in f.message


def test_hook_catalog_missing_when_target_records_no_hooks():
    bare = dataclasses.replace(V20, extension_points=())  # no hookspec catalog recorded
    found, c = codes(run(bare, [reg(hooks=(("tailor_resolve_settings", ("values",)),))]))
    assert found == {Code.HOOK_CATALOG_MISSING} and c.level == "D"


def test_only_enabled_customizations_count_for_a_tenant():
    disabled = reg("off", (("tailor_resolve_setting", ("key",)),), tenants=("t1",))
    disabled = Registration(disabled.manifest, disabled.hooks, (), enabled_for=())
    report = run(V30, [disabled])
    assert [c.name for c in report.customizations] == ["off"]
    assert report.tenants[0].status is TenantStatus.READY


def test_unblock_plan_counts_only_sole_blockers():
    report = run(
        V30,
        [
            reg("a", (("tailor_resolve_setting", ("key",)),), tenants=("t1", "t2", "t3")),
            reg("b", requires="<3", tenants=("t3",)),
        ],
        overrides=[ActiveOverride("t2", "", "tax.rounding.per_line", True)],
        tenants=("t1", "t2", "t3", "t4"),
    )
    assert report.counts == {"ready": 1, "ready_with_warnings": 0, "blocked": 3}
    first, *rest = report.plan
    assert (first.subject, first.blocks, first.unblocks_alone) == ("a", 3, 1)
    assert first.unblocks_in_order == 1 and first.codes == ("HOOK_REMOVED",)
    assert [(s.subject, s.unblocks_alone, s.unblocks_in_order) for s in rest] == [
        ("b", 0, 1),
        ("tax.rounding.per_line", 0, 1),
    ]
    assert rest[-1].cumulative_unblocked == 3


def test_unblock_plan_greedy_order():
    plan = unblock_plan(
        {
            "t1": frozenset({("setting", "x")}),
            "t2": frozenset({("setting", "y")}),
            "t3": frozenset({("setting", "y")}),
            "t4": frozenset({("setting", "x"), ("setting", "y")}),
            "t5": frozenset(),
        }
    )
    assert [(s.subject, s.unblocks_alone, s.unblocks_in_order) for s in plan] == [
        ("y", 2, 2),
        ("x", 1, 2),
    ]


# -- real plugin code on disk -------------------------------------------------------

PLUGIN = """
import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_setting(key, value):
    return value


@hookimpl
def acme_order_approval_route(order, threshold):
    return ["cfo"] if order["total"] > 10 * threshold else ["manager"]


@hookimpl
def tailor_resolve_settings(tenant, values):
    return {"ui.table.page_size": 50}
"""


def _introspect(path: Path, name: str) -> tuple[HookUse, ...]:
    """Minimal introspection (issue 3 owns the real one): the hookimpl functions of a
    module and the parameter names each takes."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return tuple(
        HookUse(fn.__name__, tuple(inspect.signature(fn).parameters), "fp", location=name)
        for fn in vars(module).values()
        if inspect.isfunction(fn) and hasattr(fn, "tailor_impl")
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("2.0", {Code.HOOK_DEPRECATED, Code.EXPERIMENTAL_HOOK}),
        ("3.0", {Code.HOOK_REMOVED, Code.HOOK_PARAM_REMOVED}),
    ],
)
def test_real_plugin_package(tmp_path, target, expected):
    pkg = tmp_path / "approval_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    hooks = _introspect(pkg / "__init__.py", "approval_plugin_under_test")
    assert {h.hook for h in hooks} == {
        "tailor_resolve_setting",
        "acme_order_approval_route",
        "tailor_resolve_settings",
    }
    registration = Registration(
        CustomizationManifest("approval", "1.0", ("t1",), ">=1.5"), hooks, (), ("t1",)
    )
    manifest = {"2.0": V20, "3.0": V30}[target]
    assert codes(run(manifest, [registration]), "approval")[0] == expected


def test_supersedes_is_cumulative_across_releases():
    # 2.0 folded "multi-currency-rounding" into the product; 3.0 does not repeat it
    assert "multi-currency-rounding" in V20.supersedes
    assert "multi-currency-rounding" not in V30.supersedes
    for target in (V20, V30):
        found, c = codes(run(target, [reg(capability="multi-currency-rounding")]))
        assert Code.SUPERSEDED_BY_CORE in found, target.version
        assert c.status is CustomizationStatus.OBSOLETE
        (finding,) = [f for f in c.findings if f.code is Code.SUPERSEDED_BY_CORE]
        assert finding.message.startswith("2.0 supersedes")
    # a later release's supersedes does not reach back to an earlier target
    found, _ = codes(run(V20, [reg(capability="order-approval-routing")]))
    assert Code.SUPERSEDED_BY_CORE not in found


def test_tenant_and_environment_overrides_of_one_key_both_invalid_sort_without_crash():
    """Regression: a tenant-wide override (environment None in the evidence) and an
    environment override of the same key, both invalid in the target, made the
    findings sort compare None with str (TypeError)."""
    overrides = [
        ActiveOverride("t1", "production", "tax.rounding.per_line", True),
        ActiveOverride("t1", "", "tax.rounding.per_line", False),
    ]
    report = run(V30, overrides=overrides)
    (tenant,) = report.tenants
    assert tenant.status is TenantStatus.BLOCKED
    assert [(f.code, f.evidence["environment"]) for f in tenant.findings] == [
        (Code.OVERRIDE_INVALID, None),
        (Code.OVERRIDE_INVALID, "production"),
    ]


def test_unblock_plan_fewest_fixes_for_the_most_tenants():
    """A fix shared by three tenants that each also need one other shared fix
    (2 fixes unblock 3 tenants) ranks before single-tenant fixes (1 fix, 1
    tenant); equal ratios go to partial unblocking, then to the name."""
    x, y = ("customization", "x-shared"), ("customization", "y-shared")
    s1, s2 = ("setting", "a.single"), ("setting", "b.single")
    plan = unblock_plan(
        {
            "t1": frozenset({x, y}),
            "t2": frozenset({x, y}),
            "t3": frozenset({x, y}),
            "t4": frozenset({s2}),
            "t5": frozenset({s1}),
        }
    )
    assert [(s.subject, s.unblocks_in_order, s.cumulative_unblocked) for s in plan] == [
        ("x-shared", 0, 0),
        ("y-shared", 3, 3),
        ("a.single", 1, 4),
        ("b.single", 1, 5),
    ]


def _naive_plan(blockers):
    """The objective computed from scratch every round (reference for the
    incremental implementation)."""
    from fractions import Fraction

    remaining = {t: set(k) for t, k in blockers.items() if k}
    order = []
    while remaining:
        sets = [frozenset(k) for k in remaining.values()]

        def rank(bundle, sets=sets):
            covered = sum(1 for s in sets if s <= bundle)
            touched = sum(1 for s in sets if s & bundle)
            return (-Fraction(covered, len(bundle)), covered - touched, tuple(sorted(bundle)))

        best = min(set(sets), key=rank)
        holders = {k: sum(1 for s in sets if k in s) for k in best}
        for fix in sorted(best, key=lambda k: (-holders[k], k)):
            order.append(fix)
            for t in list(remaining):
                remaining[t].discard(fix)
                if not remaining[t]:
                    del remaining[t]
    return order


def test_unblock_plan_matches_the_objective_recomputed_every_round():
    import random

    rng = random.Random(7)
    groups = [("customization", f"c{i}") for i in range(12)] + [
        ("setting", f"s.k{i}") for i in range(6)
    ]
    for _ in range(200):
        blockers = {
            f"t{i}": frozenset(rng.sample(groups, rng.choice([0, 1, 1, 2, 2, 3, 4])))
            for i in range(rng.randint(1, 25))
        }
        plan = unblock_plan(blockers)
        assert [(s.subject_kind, s.subject) for s in plan] == _naive_plan(blockers)
        blocked = sum(1 for k in blockers.values() if k)
        assert (plan[-1].cumulative_unblocked if plan else 0) == blocked


def test_last_defined_in_names_the_last_release_that_really_defined_the_setting():
    """A later manifest that still lists a definition marked removed (at or below
    its own version) does not count as defining it."""
    import dataclasses

    key = "tax.rounding.per_line"
    definition = next(d for d in V20.settings if d.key == key)
    stale = dataclasses.replace(
        V30,
        version="2.5",
        status="released",
        settings=(*V30.settings, dataclasses.replace(definition, removed="2.5")),
    )
    target = dataclasses.replace(V30, version="3.1")
    report = evaluate(
        TargetIndex(target, (V10, V15, V20, stale, V30)),
        [TenantRelease("t1", "2.0")],
        [],
        [reg(setting_keys=(key,))],
        None,
    )
    (f,) = [f for f in report.customizations[0].findings if f.code is Code.SETTING_REMOVED]
    assert f.evidence["last_defined_in"] == "2.0"


def test_a_tenant_on_a_yanked_version_is_warned_and_judged_on_that_version():
    """Two versions of one customization, each pinned by one tenant: t1 runs 1.0.0,
    yanked, which implements the per-setting hook 3.0 removes; t2 runs 1.1.0, on
    the batch hook. Expected: t1 blocked (HOOK_REMOVED) and warned (VERSION_YANKED);
    t2 ready; both findings' ids name the customization without its version."""
    old = dataclasses.replace(
        reg("c", (("tailor_resolve_setting", ("key", "value")),), tenants=("t1", "t2")),
        enabled_for=("t1",),
        yank_reason="rounds CHF wrong",
    )
    new = dataclasses.replace(
        reg("c", (("tailor_resolve_settings", ("values",)),), tenants=("t1", "t2")),
        manifest=dataclasses.replace(old.manifest, version="1.1.0"),
        enabled_for=("t2",),
    )
    report = run(V30, [new, old], tenants=("t1", "t2"))
    t1, t2 = report.tenants
    assert {f.code for f in t1.findings} == {Code.HOOK_REMOVED, Code.VERSION_YANKED}
    yanked = next(f for f in t1.findings if f.code is Code.VERSION_YANKED)
    assert yanked.severity is Severity.WARNING
    assert yanked.evidence["reason"] == "rounds CHF wrong"
    assert yanked.evidence["version"] == "1.0.0"
    assert yanked.subject == "c"
    assert t1.status is TenantStatus.BLOCKED
    assert t2.findings == () and t2.status is TenantStatus.READY
    assert sorted(c.version for c in report.customizations) == ["1.0.0", "1.1.0"]


def test_last_in_is_the_last_release_before_the_target():
    """Target 2.5 removes a setting and a hook the planned 3.0 (made before) still
    has: "last in" names 2.0, the last release before 2.5 that had them, never 3.0."""
    import dataclasses

    key = "tax.rounding.per_line"
    hook = "tailor_resolve_setting"
    v25 = dataclasses.replace(
        V20,
        version="2.5",
        status="released",
        settings=tuple(d for d in V20.settings if d.key != key),
        extension_points=tuple(p for p in V20.extension_points if p.name != hook),
    )
    v30 = dataclasses.replace(V20, version="3.0", status="planned")
    assert any(d.key == key for d in v30.settings)
    assert any(p.name == hook for p in v30.extension_points)
    report = evaluate(
        TargetIndex(v25, (V10, V15, V20, v25, v30)),
        [TenantRelease("t1", "2.0")],
        [],
        [reg(setting_keys=(key,), hooks=((hook, ("key", "value")),))],
        None,
    )
    findings = {f.code: f for f in report.customizations[0].findings}
    assert findings[Code.SETTING_REMOVED].evidence["last_defined_in"] == "2.0"
    removed = findings[Code.HOOK_REMOVED]
    assert "last in 2.0" in removed.message and "3.0" not in removed.message
