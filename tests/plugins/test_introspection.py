"""Introspection: fingerprints group near-copies and separate different logic;
constant-only hooks; referenced setting keys."""

from __future__ import annotations

from pathlib import Path

from plugins.loading import default_directory, inspect_customization
from tests.sample import ACME_CATALOG


def hooks_of(path: Path):
    loaded = inspect_customization(path, ACME_CATALOG)
    assert not loaded.refused, loaded.problems
    return {h.hook: h for h in loaded.hooks}, loaded


def test_sample_near_copies_share_a_fingerprint():
    samples = default_directory()
    northwind, _ = hooks_of(samples / "northwind_credit_policy")
    umbrella, _ = hooks_of(samples / "umbrella_payment_terms_guard")
    security, _ = hooks_of(samples / "umbrella_security_hardening")
    hook = "tailor_validate_setting"
    assert northwind[hook].fingerprint == umbrella[hook].fingerprint
    assert northwind[hook].fingerprint != security[hook].fingerprint


def test_renamed_identifiers_and_literals_match_but_logic_differs(write_customization):
    a = write_customization(
        "near_a",
        """
        @hookimpl
        def tailor_resolve_settings(tenant, values):
            '''Doc A.'''
            limit = values.get("orders.discount.max_percent", 10)
            if limit > 15:
                return {"orders.discount.max_percent": 15.0}
            return {}
        """,
    )
    b = write_customization(
        "near_b",
        """
        @hookimpl
        def tailor_resolve_settings(tenant, values):
            cap = values.get("shipping.free_shipping.threshold", 99)
            if cap > 250:
                return {"shipping.free_shipping.threshold": 250.0}
            return {}
        """,
    )
    c = write_customization(
        "other_c",
        """
        @hookimpl
        def tailor_resolve_settings(tenant, values):
            cap = values.get("shipping.free_shipping.threshold", 99)
            if cap < 250:
                return {"shipping.free_shipping.threshold": cap * 2}
            return {}
        """,
    )
    fa, fb, fc = (hooks_of(p)[0]["tailor_resolve_settings"].fingerprint for p in (a, b, c))
    assert fa == fb
    assert fa != fc


def test_returns_constant_only_for_literal_returns(write_customization):
    const = write_customization(
        "const",
        """
        @hookimpl
        def tailor_resolve_settings():
            return {"ui.theme.mode": "dark", "ui.table.page_size": -1, "x": [1, (2, None)]}
        """,
    )
    logic = write_customization(
        "logic",
        """
        @hookimpl
        def tailor_resolve_settings(values):
            return {"ui.table.page_size": values["ui.table.page_size"] * 2}
        """,
    )
    assert hooks_of(const)[0]["tailor_resolve_settings"].returns_constant
    assert not hooks_of(logic)[0]["tailor_resolve_settings"].returns_constant
    hooli, _ = hooks_of(default_directory() / "hooli_ui_defaults")
    assert hooli["tailor_resolve_settings"].returns_constant


def test_setting_keys_are_dotted_product_like_literals(write_customization):
    path = write_customization(
        "keys",
        """
        LOGO = "logo.png"
        URL = "https://example.com/a.b"

        @hookimpl
        def tailor_resolve_settings(values):
            return {"billing.invoice.reminder_days": 3, "ui.theme.mode": "dark"}
        """,
    )
    _, loaded = hooks_of(path)
    # removed settings are kept: readiness needs them
    assert loaded.setting_keys == ("billing.invoice.reminder_days", "ui.theme.mode")
    [use] = loaded.hooks
    # the file and line inside the package, not a private import name
    source = (path / "hooks.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "def tailor_resolve_settings" in text)
    assert use.location == f"hooks.py:{line}"


def test_loading_records_keys_built_across_the_package_and_similarity_features():
    """A package whose keys live in a sibling module and in f-strings: the loader's
    introspection adds the source analysis of the whole package."""
    from tests.corpus.score import CORPUS

    hooks, loaded = hooks_of(CORPUS / "c03_sibling")
    assert "reporting.csv.delimiter" in loaded.setting_keys  # keys.py, imported by name
    use = hooks["tailor_resolve_settings"]
    assert use.location == "hooks.py:9"
    assert use.features and "def tailor_resolve_settings(values):" in use.source
    _, fstring = hooks_of(CORPUS / "c01_fstring")
    assert "security.sso.metadata_url" in fstring.setting_keys
