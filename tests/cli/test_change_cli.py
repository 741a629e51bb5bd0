"""The CLI on a protected environment: `tailor setting set/reset`, `tailor
customization enable/pin` and `tailor tenant protect --off` are refused (exit 2,
nothing written) unless given --break-glass --reason, which is audited on the
change feed; `publish --enable` proposes change requests; `demo seed` protects
hooli's production after writing its data, and runs again cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app
from tests.cli.test_cli import tailor
from tests.conftest import ADMIN, demo_with_samples
from tests.plugins.conftest import HEADER, manifest

runner = CliRunner()
DUE = "billing.invoice.due_days"


@pytest_asyncio.fixture
async def hooli(services, database_url, monkeypatch):
    """The demo with its samples published, hooli's production protected."""
    await demo_with_samples(services)
    await services.changes.protect(ADMIN, "hooli", "production", True)
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    monkeypatch.delenv("TAILOR_URL", raising=False)
    return services


async def cli(*args: str):
    """The CLI runs its own event loop: in a thread, beside the test's."""
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def _feed_actions(services, start):
    return [e.action for e in await services.feed.since(start)]


async def _head(services):
    return await services.feed.head()


async def test_setting_commands_are_refused_unless_break_glass(hooli):
    start = await _head(hooli)
    refusals = [
        ("setting", "set", "hooli", DUE, "50", "--environment", "production", "--reason", "r"),
        ("setting", "set", "hooli", DUE, "50", "--reason", "tenant-wide reaches production"),
        ("setting", "reset", "hooli", DUE, "--reason", "r"),
        (
            "setting",
            "set",
            "hooli",
            DUE,
            "50",
            "-e",
            "production",
            "--break-glass",
            "--reason",
            " ",
        ),
    ]
    for args in refusals:
        result = await cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ")
    refused = await cli(*refusals[0])
    assert "protected" in refused.stderr and "--break-glass" in refused.stderr
    assert await _head(hooli) == start  # nothing written
    # an unprotected environment: a plain, audited write
    ok = await cli("setting", "set", "hooli", DUE, "33", "-e", "sandbox", "--reason", "trial")
    assert ok.exit_code == 0, ok.output
    assert "hooli: billing.invoice.due_days = 33 in sandbox; revision 1" in ok.stdout
    glass = await cli(
        "setting", "set", "hooli", DUE, "61", "-e", "production",
        "--break-glass", "--reason", "INC-7 invoices due too early",
    )  # fmt: skip
    assert glass.exit_code == 0, glass.output
    assert "break-glass (audited)" in glass.stdout
    reset = await cli(
        "setting", "reset", "hooli", DUE, "-e", "production", "--break-glass", "--reason", "undo"
    )
    assert reset.exit_code == 0, reset.output
    assert await _feed_actions(hooli, start) == [
        "set",
        "break_glass",
        "set",
        "break_glass",
        "reset",
    ]


async def test_customization_enable_and_pin_are_refused_unless_break_glass(hooli):
    start = await _head(hooli)
    off = await cli("customization", "enable", "hooli-ui-defaults", "hooli", "--disable")
    assert off.exit_code == 2 and "protected" in off.stderr, off.output
    pin = await cli("customization", "pin", "hooli-ui-defaults", "1.0.0", "--tenant", "hooli")
    assert pin.exit_code == 2, pin.output
    assert await _head(hooli) == start
    glass = await cli(
        "customization", "enable", "hooli-ui-defaults", "hooli", "--disable",
        "--break-glass", "--reason", "it breaks the invoice screen",
    )  # fmt: skip
    assert glass.exit_code == 0, glass.output
    assert await _feed_actions(hooli, start) == ["break_glass", "disable_customization"]


async def test_tenant_protect_off_needs_break_glass(hooli):
    refused = await cli("tenant", "protect", "hooli", "production", "--off")
    assert refused.exit_code == 2 and "--break-glass" in refused.stderr
    weaker = await cli("tenant", "protect", "hooli", "production", "--approvals", "3")
    assert weaker.exit_code == 0 and "protect production (3 approval(s))" in weaker.stdout
    fewer = await cli("tenant", "protect", "hooli", "production", "--approvals", "1")
    assert fewer.exit_code == 0 and "awaiting 3 approval(s)" in fewer.stdout, fewer.output
    start = await _head(hooli)
    off = await cli(
        "tenant",
        "protect",
        "hooli",
        "production",
        "--off",
        "--break-glass",
        "--reason",
        "demo over",
    )
    assert off.exit_code == 0, off.output
    actions = await _feed_actions(hooli, start)
    assert actions == ["break_glass", "propose_change", "apply_change", "unprotect_environment"]
    listed = json.loads((await cli("tenant", "list", "--format", "json")).stdout)
    assert {t["slug"]: t["protected"] for t in listed}["hooli"] == {}


async def test_publish_enable_proposes_change_requests_for_protected_tenants(hooli, tmp_path):
    path = tmp_path / "pkgs" / "hooli_banner"
    path.mkdir(parents=True)
    (path / "customization.toml").write_text(manifest("hooli-banner", ["hooli"]))
    (path / "hooks.py").write_text(
        HEADER + '@hookimpl\ndef tailor_resolve_settings():\n    return {"ui.theme.mode": "dark"}\n'
    )
    published = await cli("customization", "publish", str(path), "--enable")
    assert published.exit_code == 0, published.output
    assert "change request" in published.stdout and "for hooli" in published.stdout
    from core.store.authorization import ChangeState

    (request,) = await hooli.changes.list(ADMIN, "hooli", ChangeState.PENDING)
    assert request.customization == "hooli-banner" and request.version == "1.0.0"
    registrations = await hooli.registry.list_all(ADMIN)
    banner = next(r for r in registrations if r.manifest.name == "hooli-banner")
    assert banner.enabled_for == ()


def test_demo_seed_protects_hooli_after_its_data_and_runs_again(tmp_path):
    first = tailor("demo", "seed", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "protected (changes there are change requests): hooli/production" in first.stdout
    again = tailor("demo", "seed", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "protected" not in again.stdout
    # the same as the first run refused (a sample made to be refused), nothing more
    refused_first = first.stdout.split("refused: ")[1].splitlines()[0]
    assert again.stdout.split("refused: ")[1].splitlines()[0] == refused_first
    assert "hooli" not in refused_first
    listed = json.loads(tailor("tenant", "list", "--format", "json", cwd=tmp_path).stdout)
    assert {t["slug"]: t["protected"] for t in listed}["hooli"] == {"production": 1}
    refused = tailor(
        "setting", "set", "hooli", DUE, "9", "-e", "production", "--reason", "r", cwd=tmp_path
    )
    assert refused.returncode == 2 and "protected" in refused.stderr
    assert isinstance(refused, subprocess.CompletedProcess)


async def test_change_revert(hooli):
    start = await _head(hooli)
    ok = await cli("setting", "set", "hooli", DUE, "33", "-e", "sandbox", "--reason", "trial")
    assert ok.exit_code == 0, ok.output
    glass = await cli(
        "customization", "enable", "hooli-ui-defaults", "hooli", "--disable",
        "--break-glass", "--reason", "INC-8",
    )  # fmt: skip
    assert glass.exit_code == 0, glass.output
    events = {e.action: e.sequence for e in await hooli.feed.since(start)}
    # unprotected: applied at once, said so
    back = await cli("change", "revert", str(events["set"]), "--reason", "trial over")
    assert back.exit_code == 0, back.output
    assert f"hooli: reset {DUE} in sandbox (reverts change {events['set']})" in back.stdout
    assert "applied" in back.stdout
    # hooli's production is protected: a revert of a customization change is a request
    pending = await cli("change", "revert", str(events["disable_customization"]), "--reason", "ok")
    assert pending.exit_code == 0, pending.output
    assert "enable hooli-ui-defaults of hooli" in pending.stdout
    assert "awaiting 1 approval(s)" in pending.stdout
    # ... unless the operator breaks glass (audited)
    head = await _head(hooli)
    now = await cli(
        "change", "revert", str(events["disable_customization"]), "--reason", "INC-8 fixed",
        "--break-glass",
    )  # fmt: skip
    assert now.exit_code == 0 and "break-glass (audited)" in now.stdout, now.output
    assert "break_glass" in await _feed_actions(hooli, head)
    assert "enable_customization" in await _feed_actions(hooli, head)
    # no inverse: exit 2, a clear error, nothing written
    head = await _head(hooli)
    refused = await cli("change", "revert", str(events["break_glass"]), "--reason", "r")
    assert refused.exit_code == 2 and refused.stderr.startswith("error: "), refused.output
    assert "revert that change by its own sequence" in refused.stderr
    missing = await cli("change", "revert", "999999", "--reason", "r")
    assert missing.exit_code == 2 and "not found" in missing.stderr
    assert await _head(hooli) == head
