"""``tailor customization check PATH --release V`` through the real CLI: the fleet's
readiness rules for one package, what Tailor detected, exit 0 / 1 / 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from tests.corpus.score import CORPUS

RELEASE_3_0 = str(Path(__file__).parents[2] / "products" / "acme_erp" / "planned" / "3.0.toml")


@pytest.fixture(scope="session")
def upgraded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tailor db upgrade`` (which registers the product's releases and its
    planned 3.0) once per session: each test works on a copy of the file."""
    path = tmp_path_factory.mktemp("upgraded") / "cli.db"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TAILOR_DATABASE_URL", f"sqlite:///{path}")
        result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def cli(tmp_path, monkeypatch, upgraded_db):
    for made in upgraded_db.parent.glob(upgraded_db.name + "*"):  # with -wal, -shm if any
        shutil.copyfile(made, tmp_path / made.name)
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    listed = invoke("release", "list")
    assert "3.0" in listed.output and "planned" in listed.output, listed.output
    return invoke


def test_a_hook_the_planned_release_removes_blocks_with_file_and_line(cli):
    result = cli("customization", "check", str(CORPUS / "c08_class"), "--release", "3.0")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "corpus-class 1.0.0 against 3.0: incompatible (stability level D)" in out
    assert "hook tailor_resolve_setting(key, value)  hooks.py:13 AuditTrail" in out
    assert f"{CORPUS / 'c08_class' / 'hooks.py'}:13: blocker: HOOK_REMOVED:" in out
    assert "hooks.py:18: warning: HOOK_DEPRECATED:" in out


@pytest.mark.parametrize(
    ("package", "exit_code", "printed"),
    [
        ("c01_fstring", 1, "key security.sso.metadata_url  hooks.py:10 (f-string)"),
        ("c03_sibling", 1, "key reporting.csv.delimiter  keys.py:3 (constant DELIMITER)"),
        ("c07_prefix", 1, "prefix security.sso.  hooks.py:8 (prefix)"),
        ("c09_init", 1, "__init__.py:9: blocker: HOOK_PARAM_REMOVED"),
        ("c13_requires", 1, "customization.toml: blocker: REQUIRES_EXCLUDES_TARGET"),
        ("c10_subpackage", 0, "impl/rules.py:11: warning: EXPERIMENTAL_HOOK"),
        ("c12_traps", 0, "key ui.theme.mode  hooks.py:34 (literal)"),
        ("c16_clean", 0, "hook tailor_resolve_settings(tenant, environment, values)  hooks.py:9"),
    ],
)
def test_every_rule_against_a_planned_release(cli, package, exit_code, printed):
    result = cli("customization", "check", str(CORPUS / package), "--release", "3.0")
    assert result.exit_code == exit_code, result.output
    assert printed in result.stdout


def test_traps_detect_no_false_hook_or_key(cli):
    result = cli("customization", "check", str(CORPUS / "c12_traps"), "--release", "3.0")
    assert result.exit_code == 0, result.output
    hooks = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("  hook ")]
    assert hooks == ["tailor_register_settings()", "tailor_resolve_settings(values)"]
    assert "orders.numbering.prefix" not in result.stdout  # an unused constant
    assert "ok corpus-traps 1.0.0" in result.stderr


def test_unknown_release_and_broken_package_exit_2(cli, tmp_path):
    unknown = cli("customization", "check", str(CORPUS / "c16_clean"), "--release", "9.9")
    assert unknown.exit_code == 2
    assert "release '9.9' not found; known releases: 1.0, 1.5, 2.0, 3.0" in unknown.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "customization.toml").write_text(
        'name = "broken"\nversion = "1.0"\ntenants = ["t"]\nrequires = ">=2"\n'
    )
    (broken / "hooks.py").write_text("def oops(:\n")
    result = cli("customization", "check", str(broken), "--release", "3.0")
    assert result.exit_code == 2
    assert "hooks.py:1" in result.stdout and "invalid syntax" in result.stdout


def test_the_running_release_is_the_default(cli):
    result = cli("customization", "check", str(CORPUS / "c16_clean"))
    assert result.exit_code == 0, result.output
    assert "corpus-clean 1.0.0 against 2.0: compatible (stability level A)" in result.stdout


@pytest.mark.parametrize(
    ("package", "exit_code", "printed"),
    [
        ("c21_json_keys", 1, "keys.json:2: blocker: SETTING_REMOVED"),
        ("c22_toml_keys", 1, "rules.toml:3: blocker: SETTING_REMOVED"),
        ("c23_method_arg", 1, "hooks.py:17: blocker: SETTING_REMOVED"),
        ("c24_decorator_factory", 0, "hooks.py:14: warning: HOOK_DEPRECATED"),
        ("c26_plain_decorator", 1, "hooks.py:12: blocker: HOOK_REMOVED"),
        ("c20_dead_helper", 1, "rules.py:6: blocker: SETTING_REMOVED"),
    ],
)
def test_check_sees_what_fleet_readiness_sees(cli, package, exit_code, printed):
    """Keys in data files of the package, keys passed as method arguments, hooks
    applied through the package's decorators: the same verdict as the fleet's."""
    result = cli("customization", "check", str(CORPUS / package), "--release", "3.0")
    assert result.exit_code == exit_code, result.output
    assert printed in result.stdout


def test_a_helper_nothing_calls_is_not_evidence(cli):
    result = cli("customization", "check", str(CORPUS / "c20_dead_helper"), "--release", "3.0")
    assert "orders.numbering.prefix" in result.stdout
    assert "security.password.expiry_days" not in result.stdout  # _legacy_expiry: dead
    assert "tax.rounding.per_line" not in result.stdout  # _never_called


def test_without_fleet_observations_check_says_only_they_can_tell(tmp_path, monkeypatch):
    monkeypatch.delenv("TAILOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("TAILOR_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["customization", "check", str(CORPUS / "c14_observed"), "--release", "2.0"]
    )
    assert result.exit_code == 0, result.output
    assert "tailor_resolve_settings choose setting keys at run time" in result.stdout
    assert "--url/--token or --database-url" in result.stdout
    assert not (tmp_path / "tailor.db").exists()  # no database was opened for it


def test_check_uses_the_fleets_observations_from_the_database(cli, tmp_path):
    """corpus-observed picks its keys at run time: statically clean; once the
    fleet has seen it read a key 3.0 removes, check blocks as the fleet does."""
    import asyncio
    import os
    from datetime import UTC, datetime

    from core.model.customizations import ObservationDelta
    from core.store.services import Services

    clean = cli("customization", "check", str(CORPUS / "c14_observed"), "--release", "3.0")
    assert clean.exit_code == 0, clean.output
    assert "0 observation(s) of corpus-observed" in clean.stdout

    async def record() -> None:
        services = Services.from_url(os.environ["TAILOR_DATABASE_URL"])
        seen = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
        try:
            await services.observations.record(
                [
                    ObservationDelta(
                        "corpus-observed",
                        "t14",
                        "tailor_resolve_settings",
                        calls=5,
                        first_seen=seen,
                        last_seen=seen,
                        keys={("security.sso.metadata_url", "returned"): 5},
                    )
                ]
            )
        finally:
            await services.close()

    asyncio.run(record())
    blocked = cli("customization", "check", str(CORPUS / "c14_observed"), "--release", "3.0")
    assert blocked.exit_code == 1, blocked.output
    assert "1 observation(s) of corpus-observed in the fleet (5 call(s))" in blocked.stdout
    assert "blocker: SETTING_REMOVED" in blocked.stdout
    assert "security.sso.metadata_url" in blocked.stdout
