"""CLI: release export/import/diff/list, readiness formats and exit codes, fleet seed."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app
from core.model.manifest_io import loads
from core.store.demo import seed_demo
from plugins.catalog import tailor_extension_points
from tests.conftest import restore_or_build
from tests.sample import ACME

runner = CliRunner()


@pytest_asyncio.fixture
async def demo(services, database_url, monkeypatch):
    await restore_or_build(
        services, "demo", lambda: seed_demo(services, ACME, tailor_extension_points)
    )
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    return services


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_export_writes_the_running_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = invoke("release", "export", "--version", "2.0")
    assert result.exit_code == 0
    manifest = loads(result.stdout)
    assert manifest.version == "2.0" and manifest.status == "released"
    out = tmp_path / "m.json"
    assert invoke("release", "export", "--format", "json", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["version"] == "2.0"
    bad = invoke("release", "export", "--version", "9.9")
    assert bad.exit_code == 2 and "1.0, 1.5, 2.0" in bad.stderr
    assert "tailor db upgrade" in bad.stderr  # the database is empty: says how to fix


def test_import_then_list_and_duplicate(demo, tmp_path):
    text = invoke("release", "export", "--version", "2.0").stdout
    path = tmp_path / "r.toml"
    path.write_text(text.replace('version = "2.0"', 'version = "2.1"'))
    done = invoke("release", "import", str(path))
    assert done.exit_code == 0, done.stderr
    assert "registered planned release 2.1" in done.stdout
    again = invoke("release", "import", str(path))
    assert again.exit_code == 2 and "already exists" in again.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('version = "2.2"\nsurprise = true\n')
    refused = invoke("release", "import", str(broken))
    assert refused.exit_code == 2 and "surprise" in refused.stderr
    listed = invoke("release", "list")
    assert listed.exit_code == 0
    for version in ("1.0", "2.0", "2.1", "3.0"):
        assert version in listed.stdout
    assert "2.2" not in listed.stdout


def test_diff_formats(demo):
    md = invoke("release", "diff", "2.0", "3.0", "--format", "markdown")
    assert md.exit_code == 0
    assert "| setting | `security.sso.metadata_url` | renamed |" in md.stdout
    data = json.loads(invoke("release", "diff", "2.0", "3.0", "--format", "json").stdout)
    assert {"kind": "setting", "name": "tax.rounding.per_line", "change": "removed"}.items() <= (
        next(c for c in data["changes"] if c["name"] == "tax.rounding.per_line").items()
    )
    # Tailor's hooks: one line for Acme 3.0's change of hook API, first
    assert data["changes"][0] == {
        "kind": "hook_api",
        "name": "tailor_hook_api",
        "change": "changed",
        "details": [
            "Tailor hook API 2 -> 3",
            "tailor_resolve_setting removed (use tailor_resolve_settings)",
            "tailor_settings_changed added",
            "tailor_setting_changed deprecated; use tailor_settings_changed",
        ],
        "breaking": True,
    }
    assert not [c for c in data["changes"][1:] if c["name"].startswith("tailor_")]
    assert invoke("release", "diff", "2.0", "8.0").exit_code == 2


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_readiness_exit_codes(demo, fmt):
    # --full: the tenants' rows (the default summary has counts, codes and the plan)
    blocked = invoke("readiness", "--target", "3.0", "--tenant", "stark", "--format", fmt, "--full")
    assert blocked.exit_code == 1
    assert "OVERRIDE_INVALID" in blocked.stdout
    ready = invoke(
        "readiness", "--target", "3.0", "--tenant", "northwind", "--format", fmt, "--full"
    )
    assert ready.exit_code == 0
    assert "ready_with_warnings" in ready.stdout


def test_readiness_json_and_bad_input(demo):
    data = json.loads(invoke("readiness", "--target", "3.0", "--format", "json").stdout)
    assert data["counts"]["blocked"] == 6 and data["counts"]["ready_with_warnings"] == 1
    assert data["unblock_plan"][0]["unblocks_alone"] == 1
    unknown = invoke("readiness", "--target", "4.0")
    assert unknown.exit_code == 2 and "known releases: 1.0, 1.5, 2.0, 3.0" in unknown.stderr
    assert invoke("readiness", "--target", "3.0", "--tenant", "nobody").exit_code == 2
    assert invoke("readiness", "--target", "3.0", "--format", "yaml").exit_code == 2


def test_demo_seed_fleet(demo):
    result = invoke("demo", "seed", "--tenants", "5", "--customizations-per-tenant", "2")
    assert result.exit_code == 0, result.stderr
    assert "fleet: 5 tenants" in result.stdout
    data = json.loads(invoke("readiness", "--target", "3.0", "--format", "json", "--full").stdout)
    assert len(data["tenants"]) == 12


def test_planned_release_replace_export_delete_and_contradictions(demo, tmp_path):
    """Replace a planned release, export it from the database, warn when planned
    releases contradict each other, delete it while no tenant is on it."""
    text = invoke("release", "export", "--version", "2.0").stdout
    path = tmp_path / "r.toml"
    path.write_text(text.replace('version = "2.0"', 'version = "2.1"'))
    assert invoke("release", "import", str(path)).exit_code == 0
    # 2.1 drops a setting that the planned 3.0 still defines
    manifest = loads(path.read_text())
    dropped = "ui.navigation.compact"
    assert dropped in {d.key for d in manifest.settings}
    smaller = type(manifest)(
        **{**manifest.__dict__, "settings": tuple(d for d in manifest.settings if d.key != dropped)}
    )
    from core.model.manifest_io import dumps

    path.write_text(dumps(smaller, "toml"))
    again = invoke("release", "import", str(path))
    assert again.exit_code == 2 and "--replace" in again.stderr
    replaced = invoke("release", "import", str(path), "--replace")
    assert replaced.exit_code == 0, replaced.stderr
    assert "replaced planned release 2.1" in replaced.stdout
    assert (
        f"warning: 2.1 drops {dropped} (defined in 2.0), but planned 3.0 still defines it"
        in replaced.stderr
    )
    exported = invoke("release", "export", "--version", "2.1")
    assert exported.exit_code == 0, exported.stderr
    back = loads(exported.stdout)
    assert back.status == "planned" and dropped not in {d.key for d in back.settings}
    # released releases are never replaced nor deleted
    current = tmp_path / "current.toml"
    current.write_text(text)
    refused = invoke("release", "import", str(current), "--replace")
    assert refused.exit_code == 2 and "only planned releases can be replaced" in refused.stderr
    assert invoke("release", "delete", "2.0").exit_code == 2
    deleted = invoke("release", "delete", "2.1")
    assert deleted.exit_code == 0, deleted.stderr
    listed = invoke("release", "list").stdout
    assert "2.1" not in listed and "3.0" in listed


def test_a_diff_has_no_html_format(demo):
    result = invoke("release", "diff", "2.0", "3.0", "--format", "html")
    assert result.exit_code == 2
    assert "'html' is not one of 'table', 'json', 'markdown'" in result.stderr
