"""``tailor readiness`` with triage: waived blockers pass the gate (and the report
says so), --min-severity, and kept runs showing new and resolved findings."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from core.store.services import Services
from tests.cli.test_release_cli import demo, invoke  # noqa: F401 (fixture)
from tests.conftest import ADMIN


def waive(database_url, ids, until):
    async def go():
        services = Services.from_url(database_url)
        try:
            for fid in ids:
                await services.triage.decide(
                    ADMIN, fid, "waive", reason="customer accepts", until=until
                )
        finally:
            await services.close()

    asyncio.run(go())


def _blockers(data, tenant):
    t = next(t for t in data["tenants"] if t["tenant"] == tenant)
    return [f for f in t["findings"] if f["severity"] == "blocker"]


def test_waiving_every_blocker_of_a_tenant_opens_the_gate(demo, database_url):  # noqa: F811
    first = invoke(
        "readiness", "--target", "3.0", "--tenant", "stark", "--format", "json", "--full"
    )
    assert first.exit_code == 1
    data = json.loads(first.stdout)
    blockers = _blockers(data, "stark")
    assert blockers and all(f["id"].endswith("@stark") for f in blockers)
    assert data["previous_run"] is None
    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    waive(database_url, [f["id"] for f in blockers], until)

    table = invoke("readiness", "--target", "3.0", "--tenant", "stark")
    assert table.exit_code == 0, table.stdout
    assert "waived blocker (does not block until" in table.stdout
    assert "customer accepts" in table.stdout
    again = json.loads(
        invoke(
            "readiness", "--target", "3.0", "--tenant", "stark", "--format", "json", "--full"
        ).stdout
    )
    assert again["any_blocked"] is False
    assert all(f["waived"] for f in _blockers(again, "stark"))
    assert again["tenants"][0]["gate_status"] == "ready_with_warnings"
    # the plain readiness status is unchanged: a waiver is not a fix
    assert again["tenants"][0]["status"] == "blocked"
    assert again["previous_run"] is not None and again["new_findings"] == []


def test_min_severity_and_runs(demo):  # noqa: F811
    everything = json.loads(
        invoke("readiness", "--target", "3.0", "--format", "json", "--full").stdout
    )
    severities = {f["severity"] for t in everything["tenants"] for f in t["findings"]}
    assert "warning" in severities and "blocker" in severities
    only = invoke(
        "readiness", "--target", "3.0", "--format", "json", "--full", "--min-severity", "blocker"
    )
    data = json.loads(only.stdout)
    assert {f["severity"] for t in data["tenants"] for f in t["findings"]} == {"blocker"}
    md = invoke("readiness", "--target", "3.0", "--format", "markdown", "--no-keep")
    assert "since run #" in md.stdout and "0 new, 0 resolved" in md.stdout
    assert "kept as run" not in md.stdout
    bad = invoke("readiness", "--target", "3.0", "--min-severity", "urgent")
    assert bad.exit_code == 2
