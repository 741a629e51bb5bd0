"""CLI: a fold-back family becomes product work. Three consultants' copies of one
late-fee rule (renamed, with a helper) and a decoy that halves instead of
doubling are published; ``tailor foldback`` finds the family with a stable id,
``tailor foldback propose`` writes the settings fragment with each tenant's
migration, ``tailor release import --into`` merges it into a planned release,
and readiness against that release gives each tenant exactly its migration."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app

CORPUS = Path(__file__).parents[1] / "corpus" / "foldback"
COPIES = {"f01_base": "t-a", "f02_renamed": "t-b", "f03_helper": "t-c", "f13_halved": "t-d"}


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def publish(cli, tmp_path: Path, package: str, tenant: str) -> None:
    made = cli("tenant", "create", tenant, "--name", tenant.upper(), "--release", "2.0")
    assert made.exit_code == 0, made.output
    target = tmp_path / "packages" / package
    shutil.copytree(CORPUS / package, target)
    manifest = target / "customization.toml"
    text = manifest.read_text()
    start = text.index("tenants = [")
    end = text.index("]", start) + 1
    manifest.write_text(text[:start] + f'tenants = ["{tenant}"]' + text[end:])
    result = cli("customization", "publish", str(target), "--enable")
    assert result.exit_code == 0, result.output


@pytest.fixture
def fleet(cli, tmp_path):
    assert cli("db", "upgrade").exit_code == 0
    for package, tenant in COPIES.items():
        publish(cli, tmp_path, package, tenant)
    return cli


def late_fee_family(cli) -> dict:
    result = cli("foldback", "--format", "json", "--limit", "50")
    assert result.exit_code == 0, result.output
    (found,) = [
        c
        for c in json.loads(result.stdout)["candidates"]
        if c["kind"] == "NEAR_DUPLICATE_CODE" and "fold-base" in c["customizations"]
    ]
    return found


def test_the_family_is_the_copies_only_with_a_stable_id_and_its_constants(fleet, tmp_path):
    family = late_fee_family(fleet)
    assert family["customizations"] == ["fold-base", "fold-helper", "fold-renamed"]
    assert family["id"].startswith("fam-") and family["id"] == family["family"]["id"]
    # side by side: the shared behaviour, and which constants differ per member
    assert "values['billing.invoice.due_days'] > #2" in family["family"]["behaviour"]
    differing = {d["slot"]: dict(d["values"]) for d in family["family"]["differing"]}
    assert differing["#2"] == {"fold-base": 45, "fold-helper": 45, "fold-renamed": 60}
    assert "constants that differ" in family["evidence"]
    # a member joining (a reordered copy for a fifth tenant) keeps the id
    publish(fleet, tmp_path, "f05_reordered", "t-e")
    grown = late_fee_family(fleet)
    assert grown["id"] == family["id"]
    assert "fold-reordered" in grown["customizations"]


def test_propose_import_into_and_readiness_carry_the_migration(fleet, tmp_path):
    family_id = late_fee_family(fleet)["id"]
    fragment_path = tmp_path / "planned-fragment.toml"
    proposed = fleet("foldback", "propose", family_id, "-o", str(fragment_path))
    assert proposed.exit_code == 0, proposed.output
    fragment = tomllib.loads(fragment_path.read_text())
    capability = f"foldback-{family_id.removeprefix('fam-')}"
    assert fragment["supersedes"] == [capability]
    settings = {s["key"]: s for s in fragment["settings"]}
    assert settings["billing.due_days_threshold"]["type"] == "int"
    assert settings["billing.due_days_threshold"]["default"] == 45
    assert settings["billing.due_days_threshold"]["min"] == 0
    migrations = {m["tenant"]: m for m in fragment["migrations"]}
    assert set(migrations) == {"t-a", "t-b", "t-c"}
    assert migrations["t-b"]["customization"] == "fold-renamed"
    assert migrations["t-b"]["overrides"]["billing.due_days_threshold"] == 60
    assert migrations["t-a"]["overrides"]["billing.due_days_threshold"] == 45

    merged = fleet("release", "import", str(fragment_path), "--into", "3.5")
    assert merged.exit_code == 0, merged.output
    assert "merged planned-fragment.toml into planned release 3.5" in merged.stdout

    report = fleet("readiness", "--target", "3.5", "--format", "json", "--full")
    assert report.exit_code in (0, 1), report.output
    tenants = {t["tenant"]: t for t in json.loads(report.stdout)["tenants"]}
    for tenant, migration in migrations.items():
        (superseded,) = [
            f for f in tenants[tenant]["findings"] if f["code"] == "SUPERSEDED_BY_CORE"
        ]
        steps = [f"disable {migration['customization']} for {tenant}"] + [
            f"set override {k} = {json.dumps(v)}" for k, v in sorted(migration["overrides"].items())
        ]
        assert superseded["action"] == "; ".join(steps)
    # the decoy's tenant is not migrated and its customization not superseded
    assert not [f for f in tenants["t-d"]["findings"] if f["code"] == "SUPERSEDED_BY_CORE"]


def test_an_unknown_family_or_a_bad_fragment_is_an_error_that_changes_nothing(fleet, tmp_path):
    unknown = fleet("foldback", "propose", "fam-000000000000")
    assert unknown.exit_code == 2
    assert "fold-back family 'fam-000000000000' not found" in unknown.output
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'supersedes = ["late-fees"]\n'
        "[[migrations]]\n"
        'capability = "late-fees"\ncustomization = "fold-base"\ntenant = "t-a"\n'
        'overrides = { "billing.nothing_like_it" = 3 }\n'
    )
    refused = fleet("release", "import", str(bad), "--into", "3.6")
    assert refused.exit_code == 2
    assert "is not a setting of this release" in refused.output
    listed = fleet("release", "list")
    assert "3.6" not in listed.stdout
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('version = "9.9"\n')
    refused = fleet("release", "import", str(wrong), "--into", "3.6")
    assert refused.exit_code == 2 and "unknown field(s): version" in refused.output


def test_families_compare_what_tenants_run_their_pinned_versions(fleet, tmp_path):
    """fold-base 1.1.0 halves instead of doubling (the decoy's logic); t-a stays
    pinned to 1.0.0, so fold-base stays in the family, judged by 1.0.0."""
    target = tmp_path / "packages" / "fold_base_next"
    shutil.copytree(CORPUS / "f13_halved", target)
    (target / "customization.toml").write_text(
        'name = "fold-base"\nversion = "1.1.0"\ntenants = ["t-a"]\nrequires = ">=2.0"\n'
        'author = "corpus"\n'
    )
    result = fleet("customization", "publish", str(target), "--enable")
    assert result.exit_code == 0, result.output
    family = late_fee_family(fleet)
    assert family["customizations"] == ["fold-base", "fold-helper", "fold-renamed"]
    members = {m["customization"]: m for m in family["family"]["members"]}
    assert members["fold-base"]["version"] == "1.0.0"
    assert members["fold-base"]["tenants"] == ["t-a"]


def test_a_family_on_the_roadmap_ships_with_the_release_that_absorbs_it(fleet, tmp_path):
    family_id = late_fee_family(fleet)["id"]
    added = fleet("roadmap", "add", family_id, "--tenant", "t-d")
    assert added.exit_code == 0, added.output
    fragment_path = tmp_path / "fragment.toml"
    assert fleet("foldback", "propose", family_id, "-o", str(fragment_path)).exit_code == 0
    listed = fleet("roadmap", "list", "--format", "json")
    (item,) = json.loads(listed.stdout)["items"]
    assert item["source"] == {"kind": "family", "id": family_id}
    assert item["capability"] == f"foldback-{family_id.removeprefix('fam-')}"
    assert item["status"] == "proposed"
    assert fleet("release", "import", str(fragment_path), "--into", "3.5").exit_code == 0
    (item,) = json.loads(fleet("roadmap", "list", "--format", "json").stdout)["items"]
    assert item["status"] == "shipped" and item["shipped_in"] == "3.5"
