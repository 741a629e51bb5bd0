"""The real CLI: customization check (compiler style, exit 2), publish, list,
and doctor (drift, exit 1). Each test uses its own SQLite file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from tests.plugins.conftest import HEADER, manifest

GOOD = HEADER + '@hookimpl\ndef tailor_resolve_settings():\n    return {"ui.theme.mode": "dark"}\n'


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def write(root, dirname, code, toml):
    path = root / dirname
    path.mkdir(parents=True)
    (path / "customization.toml").write_text(toml)
    (path / "hooks.py").write_text(code)
    return path


def test_check_reports_every_problem_compiler_style(cli, tmp_path):
    root = tmp_path / "pkgs"
    write(
        root,
        "broken",
        HEADER + "@hookimpl\ndef tailor_nope(values):\n    pass\n",
        'name = "broken"\nversion = "x"\ntenants = ["acme"]\nrequires = "<2"\n',
    )
    write(root, "fine", GOOD, manifest("fine", ["acme"]))
    result = cli("customization", "check", str(root))
    assert result.exit_code == 2
    lines = [line for line in result.stdout.splitlines() if line]
    assert any(
        line.endswith(
            "broken/customization.toml:version: 'x' is not a PEP 440 version (e.g. '1.2.0')"
        )
        for line in lines
    )
    assert any("broken/hooks.py:tailor_nope: unknown hook 'tailor_nope'" in line for line in lines)
    good = cli("customization", "check", str(root / "fine"))
    assert good.exit_code == 0, good.output


def test_publish_list_and_doctor(cli, tmp_path, monkeypatch):
    assert cli("db", "upgrade").exit_code == 0
    root = tmp_path / "pkgs"
    monkeypatch.setenv("TAILOR_CUSTOMIZATIONS_PATH", str(root))
    # a manifest naming a tenant that does not exist: clear error, exit 2
    write(root, "dark_mode", GOOD, manifest("dark-mode", ["ghost"]))
    refused = cli("customization", "publish", str(root / "dark_mode"))
    assert refused.exit_code == 2
    assert "tenant 'ghost' not found" in refused.output

    doctor = cli("doctor")
    assert doctor.exit_code == 0  # a package on disk is only a source to publish
    assert "note: INSTALLED_NOT_REGISTERED: dark-mode is found at " in doctor.stdout

    listed = cli("customization", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["dark-mode"]["installed"] is False  # no code stored in the database
    assert rows["dark-mode"]["found_at"] == str(root / "dark_mode")
    assert rows["dark-mode"]["registered"] is False
    assert rows["wayne-legacy-export"]["refused"]


def test_doctor_reports_registered_but_missing_and_version_mismatch(cli, tmp_path, monkeypatch):

    assert cli("db", "upgrade").exit_code == 0

    created = cli("tenant", "create", "acme", "--name", "Acme", "--release", "2.0")
    assert created.exit_code == 0, created.output
    root = tmp_path / "pkgs"
    path = write(root, "dark_mode", GOOD, manifest("dark-mode", ["acme"], version="1.0.0"))
    published = cli("customization", "publish", str(path), "--enable")
    assert published.exit_code == 0, published.output
    assert "published dark-mode 1.0.0: tailor_resolve_settings(); sha256 " in published.stdout
    assert "; enabled for acme" in published.stdout
    # what Tailor detected, with file:line inside the package
    assert "  hook tailor_resolve_settings()  hooks.py:" in published.stdout
    assert "  key ui.theme.mode  hooks.py:" in published.stdout
    # the server runs the stored version, not the folder: none here is no drift
    monkeypatch.setenv("TAILOR_CUSTOMIZATIONS_PATH", "")
    monkeypatch.setenv("TAILOR_CACHE_DIR", str(tmp_path / "cache"))
    clean = cli("doctor")
    assert clean.exit_code == 0, clean.stdout
    assert "cache: dark-mode 1.0.0 (acme): not cached" in clean.stdout
    # a newer version on disk than published: said
    (path / "customization.toml").write_text(manifest("dark-mode", ["acme"], version="1.1.0"))
    monkeypatch.setenv("TAILOR_CUSTOMIZATIONS_PATH", str(root))
    mismatch = cli("doctor")
    assert "VERSION_MISMATCH: dark-mode: 1.1.0 found at " in mismatch.stdout
    assert "1.0.0 published" in mismatch.stdout


def test_doctor_compares_this_servers_cache_with_the_database(cli, tmp_path, monkeypatch):
    """A cached copy that no longer verifies against the database's sha256 is
    drift; a good copy is reported cached."""
    import os

    from plugins import archive

    assert cli("db", "upgrade").exit_code == 0

    created = cli("tenant", "create", "acme", "--name", "Acme", "--release", "2.0")
    assert created.exit_code == 0, created.output
    monkeypatch.setenv("TAILOR_CUSTOMIZATIONS_PATH", "")
    monkeypatch.setenv("TAILOR_CACHE_DIR", str(tmp_path / "cache"))
    path = write(tmp_path / "pkgs", "dark_mode", GOOD, manifest("dark-mode", ["acme"]))
    assert cli("customization", "publish", str(path), "--enable").exit_code == 0
    tree = archive.tree_from_directory(path)
    cached = archive.materialize(tree, archive.cache_root_default())
    good = cli("doctor")
    assert good.exit_code == 0, good.stdout
    assert "cache: dark-mode 1.0.0 (acme): cached" in good.stdout
    os.chmod(cached, 0o755)
    os.chmod(cached / "hooks.py", 0o644)
    (cached / "hooks.py").write_text("# tampered\n")
    bad = cli("doctor")
    assert bad.exit_code == 1
    assert "CACHE_MISMATCH: dark-mode 1.0.0: the copy in " in bad.stdout


def test_help_teaches():
    result = CliRunner().invoke(app, ["customization", "check", "--help"])
    assert result.exit_code == 0
    assert "compiler style" in result.output


def test_db_upgrade_turns_registrations_into_versions_with_their_code(cli, tmp_path, monkeypatch):
    """A database from before versions (revision 0008): a registration enabled for
    acme. Expected after `tailor db upgrade`: version 1.0.0 of it, its code stored
    from the package found on disk, acme still enabled and pinned to it; one
    registered without a package on disk is listed, its enablement kept too."""
    import asyncio
    import sqlite3

    from core.model.auth import Principal
    from core.store.services import Services

    monkeypatch.setenv("TAILOR_CACHE_DIR", str(tmp_path / "cache"))
    assert cli("db", "upgrade", "0008").exit_code == 0
    db = sqlite3.connect(tmp_path / "cli.db")
    now = "2026-11-30 10:00:00"
    db.execute(
        "INSERT INTO releases (id, version, status, manifest, created_at) "
        "VALUES (1, '0.1', 'released', '{}', ?)",
        (now,),
    )
    db.execute(
        "INSERT INTO tenants (id, slug, name, release_id, created_at, data_version) "
        "VALUES (1, 'acme', 'Acme', 1, ?, 0)",
        (now,),
    )
    for cid, name in ((1, "dark-mode"), (2, "lost-code")):
        manifest_json = json.dumps(
            {"name": name, "version": "1.0.0", "tenants": ["acme"], "requires": ">=1.0"}
        )
        db.execute(
            "INSERT INTO customizations (id, name, package, version, manifest, hooks, "
            "setting_keys, key_references, published_at, published_by, calls, failures) "
            "VALUES (?, ?, ?, '1.0.0', ?, '[]', '[]', '[]', ?, 'old', 0, 0)",
            (cid, name, name.replace("-", "_"), manifest_json, now),
        )
        db.execute(
            "INSERT INTO customization_tenants (customization_id, tenant_id, enabled, "
            "updated_at, updated_by) VALUES (?, 1, 1, ?, 'old')",
            (cid, now),
        )
    db.commit()
    db.close()
    root = tmp_path / "pkgs"
    write(root, "dark_mode", GOOD, manifest("dark-mode", ["acme"], version="1.0.0"))
    monkeypatch.setenv("TAILOR_CUSTOMIZATIONS_PATH", str(root))
    upgraded = cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "code stored from disk for: dark-mode 1.0.0" in upgraded.stdout
    assert "publish them again): lost-code 1.0.0" in upgraded.stderr

    async def read():
        services = Services.from_url(str(tmp_path / "cli.db").join(["sqlite:///", ""]))
        try:
            admin = Principal.system()
            return {
                name: (
                    await services.registry.get(admin, name),
                    await services.registry.versions(admin, name),
                )
                for name in ("dark-mode", "lost-code")
            }
        finally:
            await services.close()

    found = asyncio.run(read())
    registration, [v1] = found["dark-mode"]
    assert registration.pins == (("acme", "1.0.0"),)
    assert v1.sha256 is not None and v1.pinned_for == ("acme",)
    lost, [lost_v1] = found["lost-code"]
    assert lost.pins == (("acme", "1.0.0"),)
    assert lost_v1.sha256 is None


def test_one_publish_analyzes_the_package_once(cli, tmp_path):
    """The server reads a published package's source once (its hooks' file:line,
    its setting keys): the worker only imports it, and no second finder reads it
    again. Counted by plugins.evidence's own counter, through the real CLI."""
    from plugins import evidence

    assert cli("db", "upgrade").exit_code == 0
    assert cli("tenant", "create", "acme", "--name", "Acme", "--release", "2.0").exit_code == 0
    root = tmp_path / "pkgs"
    path = write(root, "dark_mode", GOOD, manifest("dark-mode", ["acme"], version="1.0.0"))
    before = evidence.ANALYSES.count
    published = cli("customization", "publish", str(path), "--enable")
    assert published.exit_code == 0, published.output
    assert "  key ui.theme.mode  hooks.py:" in published.stdout  # the analysis's answer
    assert evidence.ANALYSES.count - before == 1


def test_one_check_analyzes_each_package_once(cli, tmp_path):
    """`customization check` reads each package's source once (read_package); the
    workers that import it do not read it again."""
    from plugins import evidence

    root = tmp_path / "pkgs"
    write(root, "one", GOOD, manifest("one", ["acme"]))
    write(root, "two", GOOD, manifest("two", ["acme"]))
    before = evidence.ANALYSES.count
    checked = cli("customization", "check", str(root))
    assert checked.exit_code == 0, checked.output
    assert "ok one 1.0.0 (tailor_resolve_settings)" in checked.output
    assert evidence.ANALYSES.count - before == 2
