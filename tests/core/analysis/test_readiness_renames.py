"""Readiness against a release that renames hooks and hook parameters (manifest
schema 2): the finding says what to rename to, not only that a hook is gone."""

from __future__ import annotations

from core.analysis.readiness.evaluation import TenantRelease, evaluate
from core.analysis.readiness.releases import TargetIndex
from core.analysis.readiness.vocabulary import Code, Severity
from core.model.customizations import CustomizationManifest, HookUse, Registration
from tests import renames
from tests.sample import V30_PLANNED, acme_manifest

V31 = renames.manifest()
HISTORY = (acme_manifest("2.0"), V30_PLANNED, V31)


def _findings(*hooks: tuple[str, tuple[str, ...]], keys: tuple[str, ...] = ()):
    reg = Registration(
        manifest=CustomizationManifest(name="c", version="1.0.0", tenants=("t1",), requires=">=2"),
        hooks=tuple(HookUse(h, p, fingerprint="fp") for h, p in hooks),
        setting_keys=keys,
        enabled_for=("t1",),
    )
    report = evaluate(TargetIndex(V31, HISTORY), [TenantRelease("t1", "3.0")], (), [reg], None)
    (c,) = report.customizations
    return c.findings


def test_a_renamed_hook_says_rename_it_and_its_renamed_parameters():
    (f,) = _findings(("acme_invoice_footer", ("tenant", "invoice")))
    assert (f.code, f.severity) == (Code.HOOK_REMOVED, Severity.BLOCKER)
    assert "which 3.1 renamed to acme_invoice_trailer" in f.message
    assert f.action.startswith(
        "rename acme_invoice_footer to acme_invoice_trailer, and its parameter invoice to document"
    )
    assert "tailor customization fix PATH --release 3.1" in f.action
    assert f.evidence["renamed_to"] == "acme_invoice_trailer"
    assert f.evidence["renamed_params"] == {"invoice": "document"}


def test_a_renamed_parameter_says_rename_it():
    (f,) = _findings(("acme_invoice_trailer", ("invoice",)))
    assert f.code is Code.HOOK_PARAM_REMOVED
    assert "invoice, which 3.1 renamed to document" in f.message
    assert f.evidence["renamed_params"] == {"invoice": "document"}
    assert "rename the parameter invoice to document" in f.action


def test_the_new_names_have_no_finding_and_a_removed_hook_still_is_removed():
    assert _findings(("acme_invoice_trailer", ("tenant", "document"))) == ()
    (f,) = _findings(("tailor_resolve_setting", ("key", "value")))
    assert f.code is Code.HOOK_REMOVED and "renamed" not in f.message


def test_renamed_settings_name_their_new_key():
    (f,) = _findings(keys=("billing.invoice.due_days",))
    assert f.code is Code.SETTING_REMOVED
    assert f.evidence["replacement"] == "billing.invoice.payment_days"
