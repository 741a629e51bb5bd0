"""``tailor customization check`` as a consultant types it: relative paths, and
setting keys no release defines (a typo) refused with the nearest known keys.
Through the real CLI; the packages are real directories on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from tests.plugins.conftest import HEADER, manifest

REPO = Path(__file__).parents[2]
SAMPLES = REPO / "customizations"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def write(root: Path, dirname: str, code: str, name: str | None = None) -> Path:
    path = root / dirname
    path.mkdir(parents=True)
    (path / "customization.toml").write_text(manifest(name or dirname.replace("_", "-"), ["acme"]))
    (path / "hooks.py").write_text(HEADER + code)
    return path


def test_relative_paths_work_like_absolute_ones(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    result = cli("customization", "check", "customizations/globex_eur_rounding")
    assert result.exit_code == 0, result.output
    assert "not a directory" not in result.output
    assert "ok globex-eur-rounding 1.4.0 (tailor_resolve_settings)" in result.stderr

    write(
        tmp_path / "work",
        "dark_mode",
        "@hookimpl\ndef tailor_resolve_settings(values):\n    return {}\n",
    )
    monkeypatch.chdir(tmp_path / "work")
    for path in ("dark_mode", "./dark_mode", ".", str(tmp_path / "work" / "dark_mode")):
        result = cli("customization", "check", path)
        assert result.exit_code == 0, (path, result.output)
        assert "ok dark-mode 1.0.0" in result.stderr, path


def test_every_sample_but_the_broken_one_passes(cli, monkeypatch):
    """No false unknown key in the samples: prefixes, sections joined to a leaf
    later, keys a customization registers for itself (stark)."""
    monkeypatch.chdir(REPO)
    result = cli("customization", "check", "customizations")
    assert "unknown setting key" not in result.output
    passed = [line for line in result.stderr.splitlines() if line.startswith("ok ")]
    assert len(passed) == 12  # wayne_legacy_export is refused, wayne_order_numbering blocked
    assert any(line.startswith("ok stark-payroll-rules") for line in passed)


def test_a_typo_in_a_key_is_an_error_with_the_nearest_keys(cli, tmp_path, monkeypatch):
    code = (
        '"""Waives the fee when billing.late_fee.enabld is off (prose: not a key)."""\n\n'
        "@hookimpl\n"
        "def tailor_resolve_settings(values):\n"
        "    # billing.late_fee.rat in a comment is no key either\n"
        '    if values.get("billing.late_fee.enabld"):\n'
        '        return {"billing.late_fee.rate": 0}\n'
        "    return {}\n"
    )
    write(tmp_path, "late_fee", code)
    monkeypatch.chdir(tmp_path)
    result = cli("customization", "check", "late_fee")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stdout.splitlines() if "unknown setting key" in line]
    assert errors == [
        f"{tmp_path / 'late_fee' / 'hooks.py'}:10: error: unknown setting key "
        "'billing.late_fee.enabld' (literal): no release of the product defines it and no "
        "customization registers it; did you mean 'billing.late_fee.enabled' or "
        "'billing.late_fee.rate'?"
    ]
    assert "1 problem(s)" in result.stderr
    assert "ok late-fee" not in result.stderr


def test_registered_keys_sections_and_prefixes_are_not_unknown(cli, tmp_path):
    code = (
        'RATE = "hr.payroll.night_shift_rate"\n'
        'SECTION = "security.sso"\n\n'
        "@hookimpl\n"
        "def tailor_register_settings():\n"
        '    return [dict(key=RATE, type="float", default=0.1)]\n\n'
        "@hookimpl\n"
        "def tailor_resolve_settings(values, tenant):\n"
        "    out = {}\n"
        "    for key in values:\n"
        '        if key.startswith("security.sso.") and tenant:\n'
        '            out[f"{SECTION}.provider"] = "none"\n'
        "    out[RATE] = values.get(RATE)\n"
        '    out["notifications." + tenant] = 1\n'
        "    return out\n"
    )
    path = write(tmp_path, "night_shift", code)
    result = cli("customization", "check", str(path))
    assert result.exit_code == 0, result.output
    assert "key hr.payroll.night_shift_rate  hooks.py:5 (constant RATE)" in result.stdout


def test_a_key_another_checked_package_registers_is_known(cli, tmp_path):
    write(
        tmp_path,
        "registers",
        "@hookimpl\ndef tailor_register_settings():\n"
        '    return [{"key": "hr.payroll.meal_allowance", "type": "int", "default": 5}]\n',
    )
    write(
        tmp_path,
        "reads",
        "@hookimpl\ndef tailor_resolve_settings(values):\n"
        '    return {"hr.payroll.meal_allowance": 7}\n',
    )
    alone = cli("customization", "check", str(tmp_path / "reads"))
    assert alone.exit_code == 2
    assert "unknown setting key 'hr.payroll.meal_allowance'" in alone.stdout
    together = cli("customization", "check", str(tmp_path))
    assert together.exit_code == 0, together.output


def test_publish_takes_a_relative_path_too(cli, monkeypatch, tmp_path):
    """The checking worker runs in a directory of its own: the inspector hands it
    an absolute path whatever the command was given."""
    assert cli("db", "upgrade").exit_code == 0
    made = cli("tenant", "create", "acme", "--name", "Acme", "--release", "2.0")
    assert made.exit_code == 0, made.output
    write(
        tmp_path / "work",
        "dark_mode",
        "@hookimpl\ndef tailor_resolve_settings(values):\n    return {}\n",
    )
    monkeypatch.chdir(tmp_path / "work")
    result = cli("customization", "publish", "dark_mode")
    assert result.exit_code == 0, result.output
    assert "published dark-mode 1.0.0: tailor_resolve_settings(values)" in result.stdout


def test_check_lists_the_secrets_a_package_declares(cli, tmp_path):
    path = write(
        tmp_path,
        "signer",
        "@hookimpl\ndef tailor_resolve_settings(values):\n    return None\n",
    )
    with (path / "customization.toml").open("a") as toml:
        toml.write('secrets = ["integrations.webhooks.signing_secret"]\n')
    result = cli("customization", "check", str(path))
    assert result.exit_code == 0, result.output
    assert "  declares secrets: integrations.webhooks.signing_secret" in result.stdout
    plain = cli("customization", "check", str(SAMPLES / "globex_eur_rounding"))
    assert "  declares secrets: none" in plain.stdout
