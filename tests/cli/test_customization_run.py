"""``tailor customization run``: one package's hook called once on a tenant's
real values from the database, in a real confined worker, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app
from api.cli.trial import NO_KERNEL, print_outcome
from plugins.runtime.trial import TrialOutcome
from tests.conftest import ADMIN, demo_with_samples
from tests.plugins.conftest import HEADER, manifest

REPO = Path(__file__).parents[2]
runner = CliRunner()
GATEWAY = "integrations.payment_gateway.secret_key"
ERP_KEY = "integrations.erp_sync.api_key"
SIGNING = "integrations.webhooks.signing_secret"


@pytest_asyncio.fixture
async def demo(services, database_url, monkeypatch):
    await demo_with_samples(services)
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    monkeypatch.chdir(REPO)
    return services


def invoke(*args: str):
    return runner.invoke(app, ["customization", "run", *args])


def write(root: Path, dirname: str, code: str, tenants: list[str], **fields: str) -> Path:
    path = root / dirname
    path.mkdir(parents=True)
    text = manifest(dirname.replace("_", "-"), tenants, **fields)
    (path / "customization.toml").write_text(text)
    (path / "hooks.py").write_text(HEADER + code)
    return path


@pytest_asyncio.fixture
async def rounding_down(demo):
    """globex's production environment overrides the rounding."""
    await demo.settings.set(ADMIN, "globex", "billing.invoice.rounding", "down", "production")
    return demo


@pytest_asyncio.fixture
async def hooli_secrets(demo):
    """Two secrets of hooli set; the test's package declares one of them."""
    for key, value in ((GATEWAY, "sk_live_TOPSECRET"), (ERP_KEY, "erp_TOPSECRET")):
        await demo.settings.set(ADMIN, "hooli", key, value)
    return demo


def test_resolve_on_the_tenants_layered_values(rounding_down):
    args = (
        "customizations/globex_eur_rounding",
        "--hook",
        "tailor_resolve_settings",
        "--tenant",
        "globex",
        "--environment",
        "production",
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "globex-eur-rounding 1.4.0: tailor_resolve_settings for globex (production)"
    assert lines[1].startswith("confinement: ") or lines[1].startswith(NO_KERNEL)
    assert 'result: {"billing.invoice.rounding": "half_even"}' in lines
    # the environment's override is the old value: layered, before customizations
    assert '  billing.invoice.rounding: "down" -> "half_even"' in lines
    assert "read: billing.currency.default" in lines
    assert "returned: billing.invoice.rounding" in lines
    assert any(line.startswith("latency: ") and " ms in the hook; " in line for line in lines)
    # nothing stored: run again, the environment's value is still the old one
    again = invoke(*args)
    assert '  billing.invoice.rounding: "down" -> "half_even"' in again.stdout.splitlines()


def test_a_package_s_own_settings_are_in_its_values(demo, tmp_path):
    code = (
        "@hookimpl\ndef tailor_register_settings():\n"
        '    return [{"key": "hr.payroll.night_rate", "type": "float", "default": 0.5}]\n\n'
        "@hookimpl\ndef tailor_resolve_settings(values):\n"
        '    return {"hr.payroll.night_rate": values["hr.payroll.night_rate"] * 2,\n'
        '            "nothing.of.this.tenant": 1}\n'
    )
    path = write(tmp_path, "stark_nights", code, ["stark"])
    result = invoke(str(path), "--hook", "tailor_resolve_settings", "--tenant", "stark")
    assert result.exit_code == 0, result.output
    assert "  hr.payroll.night_rate: 0.5 -> 1.0" in result.stdout
    assert "read: hr.payroll.night_rate" in result.stdout
    assert "ignored (not settings of this tenant's release): nothing.of.this.tenant" in (
        result.stdout
    )


def test_declared_secrets_are_placeholders_others_are_absent(hooli_secrets, tmp_path):
    code = (
        "@hookimpl\ndef tailor_resolve_settings(values):\n"
        f'    gateway = values["{GATEWAY}"]\n'
        f'    seen = "erp-visible" if "{ERP_KEY}" in values else "erp-absent"\n'
        f'    seen += "|signing-absent" if "{SIGNING}" not in values else "|signing-visible"\n'
        '    return {"billing.invoice.number_prefix": seen,\n'
        f'            "{GATEWAY}": gateway + "-rotated"}}\n'
    )
    path = write(tmp_path, "hooli_gateway", code, ["hooli"])
    toml = path / "customization.toml"
    toml.write_text(toml.read_text() + f'secrets = ["{GATEWAY}", "{SIGNING}"]\n')
    result = invoke(str(path), "--hook", "tailor_resolve_settings", "--tenant", "hooli")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "TOPSECRET" not in result.output
    assert "<secret" not in out  # the placeholder itself is never printed for a secret
    assert f"  {GATEWAY}: set (secret) -> set (secret)" in out
    assert '-> "erp-absent|signing-visible"' in out  # declared: there, even unset
    assert f"secret {GATEWAY}: set (secret)" in out
    assert f"secret {SIGNING}: not set (secret)" in out
    assert f"read: {GATEWAY}, {ERP_KEY}, {SIGNING}" not in out  # the undeclared is absent
    assert f'"{GATEWAY}": set (secret)' in out.split("result: ", 1)[1].splitlines()[0]


def test_other_hooks_take_args_as_json(demo):
    footer = invoke(
        "customizations/stark_invoice_footer",
        "--hook",
        "acme_invoice_footer",
        "--tenant",
        "stark",
        "--args",
        '{"invoice": {"number": "F-7", "total": 120.0}}',
    )
    assert footer.exit_code == 0, footer.output
    assert 'result: "Invoice F-7: subject to US export control (EAR99)."' in footer.stdout

    policy = invoke(
        "customizations/northwind_credit_policy",
        "--hook",
        "tailor_validate_setting",
        "--tenant",
        "northwind",
        "--args",
        '{"key": "billing.invoice.due_days", "value": 90}',
    )
    assert policy.exit_code == 0, policy.output
    assert "at most 60 days" in policy.stdout


def test_a_failing_hook_exits_1_with_its_error(demo, tmp_path):
    code = "@hookimpl\ndef tailor_resolve_settings(values):\n    return 1 / 0\n"
    path = write(tmp_path, "acme_broken", code, ["globex"])
    result = invoke(str(path), "--hook", "tailor_resolve_settings", "--tenant", "globex")
    assert result.exit_code == 1, result.output
    assert "failed: ZeroDivisionError: division by zero" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--hook", "tailor_resolve_settings", "--tenant", "initech"],
            "globex-eur-rounding is made for globex, not 'initech'",
        ),
        (
            ["--hook", "tailor_validate_setting", "--tenant", "globex"],
            "does not implement tailor_validate_setting (it implements: tailor_resolve_settings)",
        ),
        (["--hook", "tailor_nope", "--tenant", "globex"], "unknown hook 'tailor_nope'"),
        (
            ["--hook", "tailor_resolve_settings", "--tenant", "globex", "--args", "{oops"],
            "args: not valid JSON",
        ),
        (
            ["--hook", "tailor_resolve_settings", "--tenant", "globex", "--args", "[1]"],
            "must be a JSON object",
        ),
        (
            ["--hook", "tailor_resolve_settings", "--tenant", "globex", "--environment", "moon"],
            "environment 'moon' not found",
        ),
    ],
)
def test_bad_input_exits_2_saying_what(demo, args, message):
    result = invoke("customizations/globex_eur_rounding", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_unknown_tenant_and_missing_args(demo, tmp_path):
    code = "@hookimpl\ndef acme_invoice_footer(invoice):\n    return 'x'\n"
    path = write(tmp_path, "ghost_footer", code, ["ghost"])
    unknown = invoke(str(path), "--hook", "acme_invoice_footer", "--tenant", "ghost")
    assert unknown.exit_code == 2
    assert "tenant 'ghost' not found" in unknown.stderr
    missing = invoke(
        "customizations/stark_invoice_footer", "--hook", "acme_invoice_footer", "--tenant", "stark"
    )
    assert missing.exit_code == 2
    assert "acme_invoice_footer takes (tenant, invoice); give invoice with --args" in (
        missing.stderr
    )


def test_without_kernel_confinement_it_says_so(capsys):
    outcome = TrialOutcome(
        "acme-x", "1.0.0", "acme_invoice_footer", "acme", None, True, "hi", ms=0.1,
        confinement=("audit hook",),
    )  # fmt: skip
    assert not outcome.confined
    print_outcome(outcome)
    printed = capsys.readouterr().out
    assert f"{NO_KERNEL} (only audit hook)" in printed
    assert 'result: "hi"' in printed


def test_a_hook_past_its_budget_is_killed_like_on_the_server(demo, tmp_path):
    code = "@hookimpl\ndef tailor_resolve_settings(values):\n    while True:\n        pass\n"
    path = write(tmp_path, "acme_loops", code, ["globex"])
    args = ("--hook", "tailor_resolve_settings", "--tenant", "globex", "--timeout", "0.5")
    result = invoke(str(path), *args)
    assert result.exit_code == 1, result.output
    assert "failed: did not answer within 0.5s; its worker was killed" in result.stdout
