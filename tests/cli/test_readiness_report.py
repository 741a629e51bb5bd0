"""``tailor readiness``: one report model in four formats, a summary by default
and the long tables with --full; the same figures whatever the format."""

from __future__ import annotations

import asyncio
import json

import pytest
import pytest_asyncio
from markupsafe import escape
from typer.testing import CliRunner

from api.cli.customization import publish_demo_customizations
from api.cli.main import app
from core.analysis.readiness.vocabulary import Severity
from core.analysis.triage import TriagedReport
from core.store.bootstrap import register_planned_releases
from core.store.demo import seed_demo
from core.store.services import Services
from plugins.catalog import tailor_extension_points
from tests.conftest import ADMIN
from tests.sample import ACME

runner = CliRunner()


@pytest_asyncio.fixture
async def demo(services, database_url, monkeypatch):
    await seed_demo(services, ACME, tailor_extension_points)
    await register_planned_releases(services, ACME)
    await publish_demo_customizations(services, ACME)
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    return services


def _triaged(url: str) -> TriagedReport:
    """The report as the service builds it (its own loop: the CLI runs its own)."""

    async def go() -> TriagedReport:
        services = Services.from_url(url)
        try:
            return await services.triage.triaged(ADMIN, "3.0")
        finally:
            await services.close()

    return asyncio.run(go())


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["readiness", "--target", "3.0", "--no-keep", *args], env=env)


def test_help_names_the_full_option_with_an_example():
    text = runner.invoke(app, ["readiness", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--full" in text
    assert "tailor readiness --target 3.0 --tenant acme --full" in " ".join(text.split())


def test_full_json_is_the_triaged_report(demo, database_url):
    result = invoke("--format", "json", "--full")
    assert result.exit_code == 1, result.stderr  # the demo fleet has blocked tenants
    expected = _triaged(database_url).to_dict()
    assert json.loads(result.stdout) == json.loads(json.dumps(expected, default=str))


def test_the_summary_holds_the_counts_codes_and_first_steps(demo):
    full = json.loads(invoke("--format", "json", "--full").stdout)
    summary = json.loads(invoke("--format", "json").stdout)
    assert summary["summary"] is True
    assert "tenants" not in summary and "customizations" not in summary
    assert summary["tenant_count"] == len(full["tenants"])
    assert summary["counts"] == full["counts"]
    assert summary["any_blocked"] is full["any_blocked"] is True
    assert summary["customization_count"] == len(full["customizations"])
    findings = [f for t in full["tenants"] for f in t["findings"]]
    by_code = {row["code"]: row for row in summary["findings_by_code"]}
    assert sum(row["findings"] for row in by_code.values()) == len(findings)
    for code, row in by_code.items():
        mine = [
            (f, t["tenant"]) for t in full["tenants"] for f in t["findings"] if f["code"] == code
        ]
        assert row["findings"] == len(mine)
        assert row["tenants"] == len({tenant for _, tenant in mine})
        assert row["severity"] == mine[0][0]["severity"]
    # most serious first
    order = [s.value for s in (Severity.BLOCKER, Severity.WARNING, Severity.UNKNOWN, Severity.INFO)]
    ranks = [order.index(row["severity"]) for row in summary["findings_by_code"]]
    assert ranks == sorted(ranks)
    assert summary["unblock_plan_steps"] == len(full["unblock_plan"])
    assert summary["unblock_plan"] == [
        {k: v for k, v in s.items() if k != "blocked_tenants"} for s in full["unblock_plan"][:10]
    ]
    assert "--full" in summary["omitted"]


def test_every_format_shows_the_same_tenants_and_warnings(demo, database_url):
    """The rule "warnings = WARNING + UNKNOWN" is written once: every format shows
    the same blockers and warnings per tenant."""
    report = _triaged(database_url).report
    rows = {
        t.tenant: (
            t.count(Severity.BLOCKER),
            sum(1 for f in t.findings if f.severity in (Severity.WARNING, Severity.UNKNOWN)),
        )
        for t in report.tenants
    }
    assert any(w for _, w in rows.values())
    md = invoke("--format", "markdown", "--full").stdout
    page = invoke("--format", "html", "--full").stdout
    table = invoke("--full", env={"COLUMNS": "400"}).stdout
    for tenant, (blockers, warnings) in rows.items():
        assert any(
            line.startswith(f"| {tenant} |") and f"| {blockers} | {warnings} |" in line
            for line in md.splitlines()
        ), tenant
        assert any(
            f"<td>{tenant}</td>" in line
            and f'<td class="n">{blockers}</td><td class="n">{warnings}</td>' in line
            for line in page.splitlines()
        ), tenant
        assert any(
            line.split()[:1] == [tenant] and line.split()[3:5] == [str(blockers), str(warnings)]
            for line in table.splitlines()
            if "│" not in line
        ) or any(
            [c.strip() for c in line.split("│")][1:2] == [tenant]
            and [c.strip() for c in line.split("│")][4:6] == [str(blockers), str(warnings)]
            for line in table.splitlines()
        ), tenant


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_the_default_is_a_summary_in_every_format(demo, fmt):
    result = invoke("--format", fmt, env={"COLUMNS": "300"})
    assert result.exit_code == 1
    out = result.stdout
    assert "Readiness for 3.0 (planned): 7 tenant(s)" in out
    assert "Findings by code" in out and "OVERRIDE_INVALID" in out
    assert "Unblock plan" in out
    assert "are shown with --full" in out
    # no per-tenant table in the summary
    assert "Tenants" not in out.replace("tenant(s)", "")


def test_html_is_a_standalone_escaped_page(demo, database_url):
    page = invoke("--format", "html", "--full").stdout
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page
    report = _triaged(database_url).report
    message = next(f.message for t in report.tenants for f in t.findings if "'" in f.message)
    assert str(escape(message)) in page and message not in page
