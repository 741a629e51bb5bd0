"""plugins/codemods.py on packages written here: rename chains, name clashes,
and a package with no customization.toml-level changes left untouched."""

from __future__ import annotations

import textwrap
from pathlib import Path

from core.model.manifest import ReleaseManifest, Renames
from plugins.codemods import plan_fix
from tests import renames
from tests.sample import V30_PLANNED, acme_manifest

HISTORY = (*(acme_manifest(v) for v in ("1.0", "1.5", "2.0")), V30_PLANNED)
CATEGORIES = ("billing", "ui", "security", "shipping")


def _package(root: Path, hooks: str) -> Path:
    root.mkdir()
    (root / "customization.toml").write_text(
        'name = "p"\nversion = "1.0.0"\ntenants = ["t1"]\nrequires = ">=2.0"\n'
        'tested_up_to = "3.1"\n'
    )
    (root / "hooks.py").write_text(textwrap.dedent(hooks).lstrip())
    return root


def test_a_chain_of_renames_collapses_to_the_name_the_target_defines():
    data = renames.manifest_data()
    data["version"] = "3.2"
    data["renamed"] = {"billing.invoice.payment_days": "billing.invoice.net_days"}
    for s in data["settings"]:
        if s["key"] == "billing.invoice.payment_days":
            s["key"] = "billing.invoice.net_days"
    v32 = ReleaseManifest.from_dict(data)
    found = Renames.up_to(v32, (*HISTORY, renames.manifest()))
    assert found.keys["billing.invoice.due_days"] == "billing.invoice.net_days"
    assert found.keys["billing.invoice.payment_days"] == "billing.invoice.net_days"
    assert found.keys["security.sso.metadata_url"] == "security.sso.discovery_url"  # from 3.0
    assert found.hooks == {"acme_invoice_footer": "acme_invoice_trailer"}
    # on 3.0 none of 3.1's renames apply
    assert "billing.invoice.due_days" not in Renames.up_to(V30_PLANNED, HISTORY).keys


def test_a_new_name_already_used_is_not_rewritten_but_reported(tmp_path):
    pkg = _package(
        tmp_path / "clash",
        """
        import pluggy

        hookimpl = pluggy.HookimplMarker("tailor")


        @hookimpl
        def acme_invoice_footer(invoice):
            document = "kept"  # the new parameter name is taken
            return document + str(invoice)
        """,
    )
    before = (pkg / "hooks.py").read_text()
    plan = plan_fix(pkg, renames.manifest(), HISTORY, categories=CATEGORIES)
    after = plan.changes[0].after
    assert "def acme_invoice_trailer(invoice):" in after  # the hook is still renamed
    assert after == before.replace("def acme_invoice_footer(", "def acme_invoice_trailer(")
    (clash,) = [u for u in plan.unfixable if u.what == "parameter invoice"]
    assert "already uses the name document" in clash.reason


def test_a_syntax_error_is_reported_not_rewritten(tmp_path):
    pkg = _package(
        tmp_path / "broken",
        """
        KEY = "billing.invoice.due_days"
        def f(:
            return KEY
        """,
    )
    plan = plan_fix(pkg, renames.manifest(), HISTORY, categories=CATEGORIES)
    assert plan.changes == ()
    assert plan.diff() == ""


def test_the_release_history_answers_what_a_version_renames():
    from core.model.manifest import ReleaseHistory

    history = ReleaseHistory.of((*HISTORY, renames.manifest()))
    assert history.renames_to("3.1") == Renames.up_to(renames.manifest(), HISTORY)
    assert history.renames_to("3.1").params == {"acme_invoice_trailer": {"invoice": "document"}}
    assert history.renames_to("3.0").hooks == {}
