"""The CLI for any product: ``TAILOR_PRODUCT``, ``tailor tenant create|list``,
host tokens, and ``tailor serve`` refusing a bad product or ``--workers`` on
SQLite (exit 2)."""

from __future__ import annotations

import json

from plugins.loading import default_directory
from tests.cli.test_cli import tailor
from tests.ledger import write_ledger
from tests.widgets import write_product


def test_tenants_of_a_second_product_from_the_command_line(tmp_path):
    env = {"TAILOR_PRODUCT": str(write_product(tmp_path))}
    upgraded = tailor("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "product releases added: 2.0, 2.1, 3.0" in upgraded.stdout

    created = tailor(
        "tenant", "create", "bolt", "--name", "Bolt Ltd", "--release", "2.1",
        "--environment", "production", "--environment", "staging",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "created tenant bolt (Bolt Ltd) on release 2.1; environments: production, staging" in (
        created.stdout
    )
    default_envs = tailor(
        "tenant", "create", "volt", "--name", "Volt", "--release", "2.0", cwd=tmp_path, env=env
    )
    assert default_envs.returncode == 0, default_envs.stderr

    listed = tailor("tenant", "list", "--format", "json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"slug": "bolt", "name": "Bolt Ltd", "release": "2.1",
         "environments": ["production", "staging"], "protected": {}},
        {"slug": "volt", "name": "Volt", "release": "2.0",
         "environments": ["production", "sandbox"], "protected": {}},
    ]  # fmt: skip
    table = tailor("tenant", "list", cwd=tmp_path, env=env)
    assert "Bolt Ltd" in table.stdout and "production, staging" in table.stdout

    for args, fragment in (
        (("bolt", "--name", "Again", "--release", "2.1"), "tenant 'bolt' already exists"),
        (("acme", "--name", "Acme", "--release", "9.9"), "known releases: 2.0, 2.1, 3.0"),
        (("early", "--name", "Early", "--release", "3.0"), "3.0 is a planned release"),
        (("x", "--name", "X", "--release", "2.1"), "not a valid tenant slug"),
        (("ok-slug", "--name", "X", "--release", "2.1", "--environment", "Prod"), "'Prod'"),
    ):
        bad = tailor("tenant", "create", *args, cwd=tmp_path, env=env)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert fragment in bad.stderr, bad.stderr
    listed = tailor("tenant", "list", "--format", "json", cwd=tmp_path, env=env)
    assert [t["slug"] for t in json.loads(listed.stdout)] == ["bolt", "volt"]  # nothing stored

    scoped = tailor("token", "create", "--role", "host", "--tenant", "bolt", cwd=tmp_path, env=env)
    assert scoped.returncode == 0 and "tenants: bolt" in scoped.stderr, scoped.stderr
    everyone = tailor("token", "create", "--role", "host", cwd=tmp_path, env=env)
    assert everyone.returncode == 0 and "all tenants" in everyone.stderr, everyone.stderr


def test_serve_refuses_a_bad_product_with_every_problem(tmp_path):
    product = write_product(tmp_path)
    (product / "product.toml").write_text('name = ""\nversion = "2.1"\nreleases = ["2.0", "2.1"]\n')
    (product / "releases" / "2.0.toml").unlink()
    env = {"TAILOR_PRODUCT": str(product)}
    for args in (("serve", "--port", "1"), ("db", "upgrade")):
        result = tailor(*args, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stdout
        assert "the product declaration has 2 problem(s)" in result.stderr
        assert f"{product / 'product.toml'}: name: required" in result.stderr
        assert f"{product / 'releases' / '2.0.toml'}: -: missing file" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "tailor.db").exists()


def test_serve_refuses_several_workers_on_sqlite(tmp_path):
    result = tailor("serve", "--workers", "2", "--port", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers 2 needs PostgreSQL" in result.stderr
    assert not (tmp_path / "tailor.db").exists()


def test_release_diff_of_a_vendor_product_lists_only_its_changes(tmp_path):
    """Ledger Books 1.1 -> planned 2.0, both on the running hook API: its one
    setting added and nothing about Tailor's hooks (issue 19)."""
    env = {"TAILOR_PRODUCT": str(write_ledger(tmp_path))}
    upgraded = tailor("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "product releases added: 1.0, 1.1, 2.0" in upgraded.stdout
    result = tailor("release", "diff", "1.1", "2.0", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changes"] == [
        {
            "kind": "setting",
            "name": "ledger.invoice.footer",
            "change": "added",
            "details": ["string, default ''"],
            "breaking": False,
        }
    ]


def test_customization_check_refuses_a_sample_of_another_product(tmp_path):
    env = {"TAILOR_PRODUCT": str(write_ledger(tmp_path))}
    sample = default_directory() / "stark_invoice_footer"
    result = tailor("customization", "check", str(sample), cwd=tmp_path, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert (
        f"{sample / 'customization.toml'}:product: stark-invoice-footer is a customization of "
        "product 'acme_erp', but this Tailor serves product 'ledger'"
    ) in " ".join(result.stdout.split())
    # another product's package: no readiness rules run against this product's releases
    assert "acme_invoice_footer" not in result.stdout
    assert "1 problem(s)" in result.stderr
    # against an older release (read, not imported): the same refusal
    older = tailor("customization", "check", str(sample), "--release", "1.0", cwd=tmp_path, env=env)
    assert older.returncode == 2, (older.stdout, older.stderr)
    assert "is a customization of product 'acme_erp'" in older.stdout
    assert "acme_invoice_footer" not in older.stdout
