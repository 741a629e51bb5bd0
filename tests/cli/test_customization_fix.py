"""``tailor customization fix PATH --release V [--write] [--bump]`` through the real
CLI, on real packages (tests/corpus/codemods, the samples, the readiness corpus),
against a planned release that renames (tests/renames.py, imported as 3.1):
the rewrite is exactly the renames, formatting and comments kept, and the
result passes ``tailor customization check --release 3.1``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from plugins.codemods import bump_manifest, plan_fix, widen_requires
from tests import renames
from tests.corpus.score import CORPUS
from tests.sample import V30_PLANNED, acme_manifest

ROOT = Path(__file__).parents[2]
PACKAGES = Path(__file__).parents[1] / "corpus" / "codemods"
HISTORY = (*(acme_manifest(v) for v in ("1.0", "1.5", "2.0")), V30_PLANNED)
CATEGORIES = {k.split(".", 1)[0] for m in (*HISTORY, renames.manifest()) for k in m.renames} | {
    d.key.split(".", 1)[0] for m in HISTORY for d in m.settings
}


@pytest.fixture(scope="session")
def renaming_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tailor db upgrade`` then ``tailor release import`` of the renaming 3.1,
    once per session: each test works on a copy of the file."""
    folder = tmp_path_factory.mktemp("renaming")
    path = folder / "cli.db"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TAILOR_DATABASE_URL", f"sqlite:///{path}")
        runner = CliRunner()
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["release", "import", str(renames.write(folder))])
        assert result.exit_code == 0, result.output
        assert "registered planned release 3.1" in result.output
    return path


@pytest.fixture
def cli(tmp_path, monkeypatch, renaming_db):
    for made in renaming_db.parent.glob(renaming_db.name + "*"):
        shutil.copyfile(made, tmp_path / made.name)
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def package(tmp_path: Path, name: str, source: Path = PACKAGES) -> Path:
    copy = tmp_path / "pkgs" / name
    shutil.copytree(source / name, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_literals_hook_and_parameter_are_rewritten_keeping_comments_then_check_passes(
    cli, tmp_path
):
    pkg = package(tmp_path, "k01_literals")
    result = cli("customization", "fix", str(pkg), "--release", "3.1", "--write", "--bump")
    assert result.exit_code == 0, result.output
    assert "ok codemod-literals 1.0.0" in result.output  # the check of the rewritten copy
    assert "wrote 2 file(s) of k01_literals" in result.output
    hooks = (pkg / "hooks.py").read_text()
    expected = (PACKAGES / "k01_literals" / "hooks.py").read_text()
    for old, new in (
        ("'billing.invoice.due_days'", "'billing.invoice.payment_days'"),
        ('"billing.late_fee.rate"', '"billing.late_fee.percent"'),
        (
            "def acme_invoice_footer(tenant, invoice):",
            "def acme_invoice_trailer(tenant, document):",
        ),
        ('number = invoice.get("number", "?")', 'number = document.get("number", "?")'),
        ("of {len(invoice)} fields", "of {len(document)} fields"),
        ('return acme_invoice_footer("t"', 'return acme_invoice_trailer("t"'),
    ):
        expected = expected.replace(old, new)
    assert hooks == expected  # nothing else changed: comments, quotes, the shadowing helper
    assert "def shadow(invoice):  # its own invoice" in hooks
    manifest = (pkg / "customization.toml").read_text()
    assert 'requires = ">=2.0"  # keep: tested on 2.0 and 3.0\n' in manifest
    assert 'tested_up_to = "3.1"\n' in manifest
    checked = cli("customization", "check", str(pkg), "--release", "3.1")
    assert checked.exit_code == 0, checked.output


def test_without_write_the_diff_is_printed_and_nothing_changes(cli, tmp_path):
    pkg = package(tmp_path, "k01_literals")
    before = tree(pkg)
    result = cli("customization", "fix", str(pkg), "--release", "3.1")
    assert result.exit_code == 1, result.output
    assert "--- a/hooks.py\n+++ b/hooks.py\n" in result.stdout
    assert (
        "-def acme_invoice_footer(tenant, invoice):\n+def acme_invoice_trailer(tenant, document):\n"
        in (result.stdout)
    )
    assert "4 rewrite(s) proposed in 1 file(s); --write applies them" in result.output
    assert tree(pkg) == before


def test_write_refuses_when_the_rewrite_does_not_pass_check(cli, tmp_path):
    pkg = package(tmp_path, "k01_literals")  # requires <3.1: only --bump admits 3.1
    before = tree(pkg)
    result = cli("customization", "fix", str(pkg), "--release", "3.1", "--write")
    assert result.exit_code == 1, result.output
    assert "REQUIRES_EXCLUDES_TARGET" in result.output
    assert "nothing written: the rewritten package does not pass 'tailor customization check" in (
        result.output
    )
    assert tree(pkg) == before


def test_a_key_kept_in_a_sibling_constant_is_rewritten_where_it_is_defined(cli, tmp_path):
    pkg = package(tmp_path, "k02_constants")
    hooks = (pkg / "hooks.py").read_bytes()
    result = cli("customization", "fix", str(pkg), "--release", "3.1", "--write")
    # written, but the retyped setting is listed for the consultant: exit 1
    assert result.exit_code == 1, result.output
    assert "wrote 1 file(s)" in result.output
    assert "cannot fix: setting ui.table.rows_per_page: its type changes from int to float" in (
        result.output
    )
    assert (pkg / "keys.py").read_text() == (
        '"""Every setting this customization touches, in one place."""\n\n'
        "# the page size of list views (renamed in 3.1)\n"
        'PAGE_SIZE = "ui.table.rows_per_page"\n'
        'THEME = "ui.theme.mode"\n'
    )
    assert (pkg / "hooks.py").read_bytes() == hooks
    assert cli("customization", "check", str(pkg), "--release", "3.1").exit_code == 0


def test_a_key_built_with_an_f_string_is_reported_not_rewritten(cli, tmp_path):
    pkg = package(tmp_path, "k03_fstring")
    before = tree(pkg)
    result = cli("customization", "fix", str(pkg), "--release", "3.1", "--write")
    assert result.exit_code == 1, result.output
    assert "hooks.py:10: cannot fix: setting key billing.invoice.due_days (renamed " in (
        result.output
    )
    assert "rewrite it by hand" in result.output
    assert "nothing to rewrite for 3.1; 1 item(s) to fix by hand" in result.output
    assert result.stdout == ""  # no diff
    assert tree(pkg) == before


def test_a_specname_is_rewritten_in_the_decorator(cli, tmp_path):
    pkg = package(tmp_path, "k04_specname")
    result = cli("customization", "fix", str(pkg), "--release", "3.1", "--write")
    assert result.exit_code == 0, result.output
    text = (pkg / "hooks.py").read_text()
    assert '@hookimpl(specname="acme_invoice_trailer")  # the footer hook\n' in text
    assert "    def footer(self, document):\n" in text
    assert 'str(document["number"])' in text
    assert cli("customization", "check", str(pkg), "--release", "3.1").exit_code == 0


@pytest.mark.parametrize("flags", [(), ("--write",), ("--write", "--bump")])
def test_a_package_that_needs_nothing_is_untouched(cli, tmp_path, flags):
    pkg = package(tmp_path, "k05_clean")
    before = tree(pkg)
    result = cli("customization", "fix", str(pkg), "--release", "3.1", *flags)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "nothing to rewrite for 3.1" in result.output
    assert tree(pkg) == before


def test_what_no_rename_fixes_is_listed_with_the_reason(cli, tmp_path):
    pkg = package(tmp_path, "k06_unfixable")
    result = cli("customization", "fix", str(pkg), "--release", "3.1", "--write")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "cannot fix: setting shipping.legacy_rates.enabled: 3.1 removes it" in out
    assert (
        "cannot fix: hook tailor_resolve_setting: 3.1 removes it; its replacement "
        "tailor_resolve_settings has another shape (not a rename)"
    ) in out
    assert "cannot fix: setting ui.table.rows_per_page: its type changes" in out
    assert "nothing to rewrite for 3.1; 3 item(s) to fix by hand" in out


def test_bad_input_exits_2_and_changes_nothing(cli, tmp_path):
    result = cli("customization", "fix", str(tmp_path), "--release", "3.1")
    assert result.exit_code == 2
    assert "not a customization package (no customization.toml)" in result.output
    pkg = package(tmp_path, "k01_literals")
    before = tree(pkg)
    result = cli("customization", "fix", str(pkg), "--release", "9.9", "--write")
    assert result.exit_code == 2, result.output
    assert "9.9" in result.output
    assert tree(pkg) == before


def test_a_renamed_hook_whose_shape_changes_is_refused_at_import(cli, tmp_path):
    data = renames.manifest_data()
    data["version"] = "3.2"
    data["renamed"] = {}
    for p in data["extension_points"]:
        if p["name"] == "acme_price_adjustments":
            p["name"], p["params"], p["added"] = "acme_price_rules", ["tenant", "orders"], "3.2"
    data["renamed_hooks"] = {**data["renamed_hooks"], "acme_price_adjustments": "acme_price_rules"}
    from core.model.manifest import ReleaseManifest
    from core.model.manifest_io import dumps

    path = tmp_path / "3.2.toml"
    path.write_text(dumps(ReleaseManifest.from_dict(data)))
    result = cli("release", "import", str(path))
    assert result.exit_code == 2, result.output
    assert "renamed_hooks['acme_price_adjustments']" in result.output
    assert "order are not acme_price_rules's" in result.output
    assert "is not a rename" in result.output
    assert "3.2" not in cli("release", "list").output


SAMPLES = ROOT / "customizations"


def _with_renames() -> list[tuple[Path, str]]:
    """Every sample and corpus package something of 3.1's renames touches."""
    target = renames.manifest()
    found = []
    for base in (SAMPLES, CORPUS, PACKAGES):
        for pkg in sorted(p for p in base.iterdir() if (p / "customization.toml").is_file()):
            plan = plan_fix(pkg, target, HISTORY, categories=CATEGORIES, product="acme_erp")
            if plan.changes:
                found.append((pkg, base.name))
    return found


WITH_RENAMES = _with_renames()


def test_the_samples_and_the_corpus_have_packages_with_renames():
    names = {p.name for p, _ in WITH_RENAMES}
    assert {"northwind_credit_policy", "stark_invoice_footer", "hooli_ui_defaults"} <= names
    assert {"umbrella_payment_terms_guard", "k01_literals", "k04_specname"} <= names


@pytest.mark.parametrize(("source", "base"), WITH_RENAMES, ids=[p.name for p, _ in WITH_RENAMES])
def test_every_sample_and_corpus_package_with_a_rename_is_fixed_and_checked(
    cli, tmp_path, source, base
):
    pkg = package(tmp_path, source.name, source.parent)
    before = cli("customization", "check", str(pkg), "--release", "3.1")
    result = cli("customization", "fix", str(pkg), "--release", "3.1", "--write", "--bump")
    after = cli("customization", "check", str(pkg), "--release", "3.1")
    assert after.exit_code in (0, 1), after.output
    if "wrote " in result.output:
        assert after.exit_code == 0, result.output + after.output
    else:  # something else blocks it: nothing written, the check says what
        assert "nothing written" in result.output, result.output
        assert after.output == before.output
        return
    # no finding about a rename is left
    for old in renames.SETTING_RENAMES:
        assert f"uses the setting {old}" not in after.output
    assert "renamed to" not in after.output
    assert "HOOK_REMOVED" not in after.output


def test_requires_is_widened_minimally():
    from packaging.version import Version

    v = Version("3.1")
    assert widen_requires(">=2.0,<3", v) == ">=2.0"
    assert widen_requires(">=2.0", v) == ">=2.0"
    assert widen_requires("~=2.0", v) == ">=2.0"
    assert widen_requires("==2.*", v) == ">=2"
    assert widen_requires(">3.5", v) == ">=3.1"
    assert widen_requires("not a spec", v) == ">=3.1"
    text = 'name = "x"\nrequires = ">=1.0,<3"\n\n[extra]\ntested_up_to = "zz"\n'
    assert bump_manifest(text, "3.1") == (
        'name = "x"\nrequires = ">=1.0"\ntested_up_to = "3.1"\n\n[extra]\ntested_up_to = "zz"\n'
    )
