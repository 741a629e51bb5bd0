"""``tailor customization new``: the package it writes passes ``check`` and its
own tests, through the real CLI and a real pytest run."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from api.cli.main import app

runner = CliRunner()


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def test_new_package_passes_check_and_its_tests(cli, tmp_path):
    made = cli(
        "customization",
        "new",
        "globex-late-fees",
        "--hook",
        "tailor_resolve_settings",
        "--hook",
        "acme_invoice_footer",
        "--tenant",
        "globex",
        "--tenant",
        "initech",
    )
    assert made.exit_code == 0, made.output
    package = tmp_path / "globex_late_fees"
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*.*")) == [
        "__init__.py",
        "customization.toml",
        "hooks.py",
        "tests/test_hooks.py",
    ]
    manifest = tomllib.loads((package / "customization.toml").read_text())
    assert manifest["name"] == "globex-late-fees"
    assert manifest["version"] == "0.1.0"
    assert manifest["tenants"] == ["globex", "initech"]
    assert manifest["requires"] == ">=2.0,<3"  # the running Acme ERP is 2.0
    assert manifest["tested_up_to"] == "2.0"
    assert manifest["product"] == "acme_erp"
    hooks = (package / "hooks.py").read_text()
    assert "def tailor_resolve_settings(\n    tenant: str,\n    environment: str | None,\n" in hooks
    assert "def acme_invoice_footer(tenant: str, invoice: dict[str, Any]) -> str | None:" in hooks
    assert "Customized values for one resolution batch." in hooks  # the hookspec's docs

    checked = cli("customization", "check", "globex_late_fees")
    assert checked.exit_code == 0, checked.output
    assert (
        "ok globex-late-fees 0.1.0 (acme_invoice_footer, tailor_resolve_settings)"
        in checked.stderr.replace("\n", "")
    )
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_every_hook_of_the_release_scaffolds_a_passing_package(cli, tmp_path):
    hooks = [
        "tailor_register_settings",
        "tailor_resolve_settings",
        "tailor_validate_setting",
        "tailor_setting_changed",
        "acme_invoice_footer",
        "acme_price_adjustments",
        "acme_order_approval_route",
    ]
    args = [a for h in hooks for a in ("--hook", h)]
    made = cli("customization", "new", "hooli_everything", *args, "--directory", "pkgs")
    assert made.exit_code == 0, made.output
    assert "tenants = ['hooli'] (from the name" in made.stdout
    checked = cli("customization", "check", "pkgs/hooli_everything")
    assert checked.exit_code == 0, checked.output  # experimental hook: a warning only
    assert "ok hooli-everything 0.1.0" in checked.stderr


def test_unknown_hook_bad_name_and_existing_directory_are_refused(cli, tmp_path):
    unknown = cli("customization", "new", "acme-x", "--hook", "tailor_resolve_setings")
    assert unknown.exit_code == 2
    assert "'tailor_resolve_setings' is not an extension point of release 2.0" in unknown.stderr
    assert "known hooks: acme_invoice_footer," in unknown.stderr
    assert "tailor_resolve_settings" in unknown.stderr
    deprecated = cli("customization", "new", "acme-x", "--hook", "tailor_resolve_setting")
    assert deprecated.exit_code == 2
    assert "implement tailor_resolve_settings instead" in deprecated.stderr
    bad = cli("customization", "new", "Acme X", "--hook", "tailor_resolve_settings")
    assert bad.exit_code == 2 and "cannot name a customization" in bad.stderr
    assert not any(tmp_path.glob("acme*"))

    (tmp_path / "acme_x").mkdir()
    (tmp_path / "acme_x" / "hooks.py").write_text("# mine\n")
    exists = cli("customization", "new", "acme-x", "--hook", "tailor_resolve_settings")
    assert exists.exit_code == 2 and "already exists; nothing was written" in exists.stderr
    assert (tmp_path / "acme_x" / "hooks.py").read_text() == "# mine\n"


def test_help_teaches_with_an_example(cli):
    result = cli("customization", "new", "--help")
    assert result.exit_code == 0
    assert "tailor customization new globex-late-fees --hook tailor_resolve_settings" in (
        result.stdout
    )
    assert "tests/test_hooks.py" in result.stdout
