"""``tailor readiness``: each unblock step's triage (owner, due date, waivers) and
the count of blockers nobody owns, in the summary, the full JSON and the table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app
from core.analysis.readiness.vocabulary import Severity
from core.analysis.triage import finding_id
from tests.conftest import ADMIN, demo_with_samples

runner = CliRunner()


@pytest_asyncio.fixture
async def demo(services, database_url, monkeypatch):
    await demo_with_samples(services)
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    triaged = await services.triage.triaged(ADMIN, "3.0")
    blockers = [
        (t.tenant, f)
        for t in triaged.report.tenants
        for f in t.findings
        if f.severity is Severity.BLOCKER and f.subject_kind == "customization"
    ]
    tenant, f = blockers[0]
    due = datetime.now(UTC).date() + timedelta(days=30)
    await services.triage.decide(
        ADMIN,
        finding_id(f.code.value, f.subject, f.detail, tenant),
        "plan",
        owner="Ana Lopez",
        until=due,
    )
    return (
        f.subject,
        due.isoformat(),
        len(blockers)
        and len(
            [
                1
                for t in triaged.report.tenants
                for x in t.findings
                if x.severity is Severity.BLOCKER
            ]
        ),
    )


def invoke(*args: str):
    return runner.invoke(
        app, ["readiness", "--target", "3.0", "--no-keep", *args], env={"COLUMNS": "250"}
    )


def test_summary_and_full_json_carry_each_steps_triage(demo):
    subject, due, blockers = demo
    summary = json.loads(invoke("--format", "json").stdout)
    assert summary["unassigned_blockers"] == blockers - 1
    step = next(s for s in summary["unblock_plan"] if s["subject"] == subject)
    assert step["triage"]["owners"] == ["Ana Lopez"] and step["triage"]["due"] == due
    assert step["triage"]["unassigned"] == step["triage"]["findings"] - 1
    full = json.loads(invoke("--format", "json", "--full").stdout)
    assert full["unassigned_blockers"] == blockers - 1
    assert (
        next(s for s in full["unblock_plan"] if s["subject"] == subject)["triage"] == step["triage"]
    )


def test_the_table_names_owners_and_unassigned_blockers(demo):
    _subject, due, blockers = demo
    result = invoke()
    assert result.exit_code == 1
    assert f"unassigned blockers: {blockers - 1} of {blockers}" in result.stdout
    assert "Ana Lopez (due" in result.stdout and due in result.stdout
    markdown = invoke("--format", "markdown").stdout
    assert "owners and triage" in markdown and "Ana Lopez" in markdown
