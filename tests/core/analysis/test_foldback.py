from core.analysis.foldback import EvidenceKind, analyze
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.model.overrides import ActiveOverride


def reg(name, tenants, capability=None, hooks=(), enabled=None):
    return Registration(
        manifest=CustomizationManifest(
            name=name,
            version="1.0",
            tenants=tuple(tenants),
            requires=">=1.0",
            capability=capability,
        ),
        hooks=tuple(hooks),
        setting_keys=(),
        enabled_for=tuple(tenants if enabled is None else enabled),
    )


def use(hook="tailor_resolve_settings", fingerprint="f1", constant=False):
    return HookUse(
        hook=hook, params=("tenant",), fingerprint=fingerprint, returns_constant=constant
    )


DEFAULTS = {"billing.invoice.due_days": 30, "ui.theme": "light", "ui.page_size": 25}


def test_shared_capability_groups_across_tenants_and_marks_absorbed():
    report = analyze(
        [
            reg("brand-a", ["t1"], "invoice-branding", [use(fingerprint="x")]),
            reg("brand-b", ["t2", "t3"], "invoice-branding", [use(fingerprint="y")]),
            reg("lonely", ["t4"], "solo-feature", [use(fingerprint="z")]),
        ],
        [],
        DEFAULTS,
        superseded={"invoice-branding": "3.0"},
    )
    shared = [c for c in report.candidates if c.kind is EvidenceKind.SHARED_CAPABILITY]
    assert len(shared) == 1
    assert shared[0].tenants == ("t1", "t2", "t3")
    assert shared[0].customizations == ("brand-a", "brand-b")
    assert shared[0].absorbed_in == "3.0"


def test_near_duplicates_group_by_hook_and_fingerprint_only():
    report = analyze(
        [
            reg("copy-1", ["t1"], hooks=[use(fingerprint="same")]),
            reg("copy-2", ["t2"], hooks=[use(fingerprint="same")]),
            reg("different", ["t3"], hooks=[use(fingerprint="other")]),
            reg("same-shape-other-hook", ["t4"], hooks=[use("tailor_validate_setting", "same")]),
        ],
        [],
        DEFAULTS,
    )
    dups = [c for c in report.candidates if c.kind is EvidenceKind.NEAR_DUPLICATE_CODE]
    assert [(c.customizations, c.hooks) for c in dups] == [
        (("copy-1", "copy-2"), ("tailor_resolve_settings",))
    ]


def test_change_default_needs_two_tenants_with_the_same_non_default_value():
    overrides = [
        ActiveOverride("t1", "", "billing.invoice.due_days", 45),
        ActiveOverride("t2", "production", "billing.invoice.due_days", 45),
        ActiveOverride("t2", "", "billing.invoice.due_days", 45),
        ActiveOverride("t3", "", "billing.invoice.due_days", 60),
        ActiveOverride("t1", "", "ui.theme", "light"),  # the default: not a move
        ActiveOverride("t2", "", "ui.theme", "light"),
        ActiveOverride("t9", "", "gone.setting", 1),  # not in the catalog
    ]
    report = analyze([], overrides, DEFAULTS)
    assert [(c.setting_key, c.value, c.tenants) for c in report.candidates] == [
        ("billing.invoice.due_days", 45, ("t1", "t2"))
    ]
    assert report.candidates[0].score.breadth == 2


def test_constant_only_customizations_should_be_settings():
    report = analyze(
        [
            reg(
                "consts",
                ["t1"],
                hooks=[use(constant=True), use("tailor_register_settings", "g", constant=True)],
            ),
            reg("logic", ["t2"], hooks=[use(constant=True), use("tailor_validate_setting", "h")]),
        ],
        [],
        DEFAULTS,
    )
    assert [
        c.customizations for c in report.candidates if c.kind is EvidenceKind.SHOULD_BE_SETTING
    ] == [("consts",)]


def test_ranking_by_breadth_and_upgrade_cost_and_deterministic():
    five = [reg(f"wide-{i}", [f"w{i}"], "wide", [use(fingerprint=f"w{i}")]) for i in range(5)]
    single_costly = reg("costly", ["c1"], hooks=[use(constant=True, fingerprint="c")])
    single_cheap = reg("cheap", ["c2"], hooks=[use(constant=True, fingerprint="d")])
    registrations = [single_cheap, *five, single_costly]
    report = analyze(registrations, [], DEFAULTS, blockers={"costly": 3})
    titles = [c.title for c in report.candidates]
    wide = titles.index("Build 'wide' into the product")
    # five tenants (score 10) beat one tenant with three blockers (score 5) ...
    assert wide < titles.index("Replace costly with a setting")
    # ... and upgrade cost ranks the costly single-tenant one above the cheap one
    assert titles.index("Replace costly with a setting") < titles.index(
        "Replace cheap with a setting"
    )
    costly = next(c for c in report.candidates if c.customizations == ("costly",))
    assert (costly.score.breadth, costly.score.upgrade_cost, costly.score.total) == (1, 3, 5)
    assert "never uses what a client pays" in report.explanation
    again = analyze(list(reversed(registrations)), [], DEFAULTS, blockers={"costly": 3})
    assert again.candidates == report.candidates


def test_a_single_tenant_is_never_ranked_above_five_on_breadth_alone():
    five = [reg(f"n{i}", [f"t{i}"], "shared", [use(fingerprint=f"s{i}")]) for i in range(5)]
    one = [reg("solo", ["x"], "solo", [use(constant=True, fingerprint="q")])]
    report = analyze(one + five, [], DEFAULTS)
    assert report.candidates[0].tenants == ("t0", "t1", "t2", "t3", "t4")


def test_retire_lists_unused_settings_and_never_enabled_customizations():
    report = analyze(
        [reg("on", ["t1"]), reg("off", ["t2"], enabled=[])],
        [ActiveOverride("t1", "", "ui.theme", "dark")],
        DEFAULTS,
    )
    assert [(r.kind, r.subject) for r in report.retire] == [
        ("SETTING_NEVER_OVERRIDDEN", "billing.invoice.due_days"),
        ("SETTING_NEVER_OVERRIDDEN", "ui.page_size"),
        ("CUSTOMIZATION_NEVER_ENABLED", "off"),
    ]


def test_limit_keeps_the_best():
    overrides = [ActiveOverride(f"t{i}", "", "ui.page_size", 50) for i in range(4)] + [
        ActiveOverride(f"t{i}", "", "ui.theme", "dark") for i in range(2)
    ]
    report = analyze([], overrides, DEFAULTS, limit=1)
    assert [c.setting_key for c in report.candidates] == ["ui.page_size"]
    assert report.counts == {"CHANGE_DEFAULT": 2}


def test_settings_live_customizations_read_or_return_are_not_retire_candidates():
    """Static keys, static prefixes and observed keys of enabled customizations keep
    a setting off the retire list; a disabled customization's use does not."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from core.model.customizations import KeyReference, Observation, ObservedKey

    defaults = {
        "billing.invoice.due_days": 30,
        "billing.invoice.auto_send": True,
        "ui.theme.mode": "light",
        "ui.table.page_size": 25,
        "hr.leave.annual_days": 25,
    }
    static = replace(reg("static", ["t1"]), setting_keys=("billing.invoice.due_days",))
    prefix = replace(
        reg("prefix", ["t2"]), references=(KeyReference("ui.theme.", "hooks.py", 3, "prefix"),)
    )
    disabled = replace(reg("disabled", ["t3"], enabled=[]), setting_keys=("hr.leave.annual_days",))
    seen = datetime(2026, 11, 1, tzinfo=UTC)
    observed = Observation(
        "runtime",
        "t4",
        "tailor_resolve_settings",
        3,
        0,
        0,
        (0,) * 13,
        None,
        None,
        seen,
        seen,
        (ObservedKey("ui.table.page_size", "read", 3, seen),),
    )
    report = analyze(
        [static, prefix, disabled, reg("runtime", ["t4"])], [], defaults, observations=[observed]
    )
    retired = [r.subject for r in report.retire if r.kind == "SETTING_NEVER_OVERRIDDEN"]
    assert retired == ["billing.invoice.auto_send", "hr.leave.annual_days"]


def test_a_scan_of_values_keeps_no_setting_off_the_retire_list():
    """A hook that went over every value (looking for blanks) and read one key by
    name: only that key is live; the scan does not empty the retire list."""
    from datetime import UTC, datetime

    from core.model.customizations import SCAN_KEY, SCANNED, Observation, ObservedKey

    defaults = {"billing.invoice.due_days": 30, "ui.theme.mode": "light", "ui.table.page_size": 25}
    seen = datetime(2026, 11, 1, tzinfo=UTC)
    scanner = Observation(
        "scanner",
        "t1",
        "tailor_resolve_settings",
        4,
        0,
        0,
        (0,) * 13,
        None,
        None,
        seen,
        seen,
        (
            ObservedKey("ui.theme.mode", "read", 4, seen),
            ObservedKey(SCAN_KEY, SCANNED, 4, seen),
        ),
    )
    report = analyze([reg("scanner", ["t1"])], [], defaults, observations=[scanner])
    retired = [r.subject for r in report.retire if r.kind == "SETTING_NEVER_OVERRIDDEN"]
    assert retired == ["billing.invoice.due_days", "ui.table.page_size"]
