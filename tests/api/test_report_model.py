"""One report model (``api/report.py``) for ``tailor readiness`` and the console:
the real CLI and the real console over HTTP show, for one fleet, the counts of
one function, the same status per tenant, and the rows the model picks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from typer.testing import CliRunner

import api.report
from api.cli.customization import publish_demo_customizations
from api.cli.main import app as cli
from api.report import (
    CLI_SUMMARY,
    CONSOLE_SUMMARY,
    FULL,
    NEED_ORDER,
    Counts,
    Limits,
    ReadinessView,
    fleet_counts,
    release_matrix,
)
from core.analysis.readiness.vocabulary import Severity
from core.analysis.triage import TriagedReport
from core.store.demo import register_planned_releases, seed_demo
from plugins.catalog import tailor_extension_points
from tests.api.test_console import new_client, sign_in
from tests.conftest import ADMIN
from tests.sample import ACME

runner = CliRunner()


@pytest_asyncio.fixture
async def fleet(api, services, database_url, monkeypatch):
    """The demo fleet with one blocker waived and one planned, for the CLI too."""
    await seed_demo(services, ACME, tailor_extension_points)
    await register_planned_releases(services, ACME)
    await publish_demo_customizations(services, ACME)
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    triaged = await services.triage.triaged(ADMIN, "3.0")
    blockers = [
        (t.tenant, f)
        for t in triaged.report.tenants
        for f in t.findings
        if f.severity is Severity.BLOCKER
    ]
    until = (datetime.now(UTC) + timedelta(days=30)).date()
    (waived_tenant, waived), (owned_tenant, owned) = blockers[0], blockers[-1]
    await services.triage.decide(
        ADMIN, triaged.finding_id(waived_tenant, waived), "waive", "known", None, until
    )
    await services.triage.decide(
        ADMIN, triaged.finding_id(owned_tenant, owned), "plan", None, "bob", until
    )
    return api


async def _cli(*args: str) -> str:
    """``tailor readiness --target 3.0 ...`` (in a thread: the CLI runs its own loop)."""
    result = await asyncio.to_thread(
        runner.invoke,
        cli,
        ["readiness", "--target", "3.0", "--no-keep", *args],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code in (0, 1), result.output
    return result.stdout


async def _console(fleet, services, *paths: str) -> list[str]:
    async with new_client(services) as client:
        await sign_in(client, fleet.tokens["release_manager"])
        pages = [await client.get(path) for path in paths]
    assert all(p.status_code == 200 for p in pages), [p.status_code for p in pages]
    return [p.text for p in pages]


def _console_counts(html: str) -> dict[str, int]:
    """The numbers of the fleet page's headline."""
    block = html.split('<p class="counts" id="counts">')[1].split("</p>")[0]

    def number(pattern: str) -> int:
        match = re.search(pattern, block)
        return int(match.group(1)) if match else 0

    return {
        "tenants": number(r"(\d+) tenant\(s\)"),
        "ready": number(r'class="ready">(\d+) ready<'),
        "ready_with_warnings": number(r"(\d+) ready with warnings"),
        "blocked": number(r'class="blocked">(\d+) blocked<'),
        "waived_blockers": number(r"(\d+) blocker\(s\) waived"),
        "blocked_without_waivers": number(r"without waivers (\d+) blocked"),
        "unassigned_blockers": number(r"(\d+) of \d+ blocker\(s\) unassigned"),
        "blockers": number(r"\d+ of (\d+) blocker\(s\) unassigned"),
    }


async def test_the_cli_and_the_console_show_the_counts_of_one_function(fleet, services):
    counts = fleet_counts(await services.triage.triaged(ADMIN, "3.0"))
    # the fixture's waiver lets a blocker through, so every count below is exercised
    assert counts.waived_blockers == 1 and 0 < counts.unassigned_blockers < counts.blockers
    summary = json.loads(await _cli("--format", "json"))
    table = await _cli()
    [page] = await _console(fleet, services, "/console/fleet?target=3.0")

    assert summary["tenant_count"] == counts.tenants
    assert summary["gate_counts"] == counts.gate_counts
    assert summary["counts"]["blocked"] == counts.blocked_without_waivers
    assert summary["customization_count"] == counts.customizations
    assert summary["unassigned_blockers"] == counts.unassigned_blockers
    assert summary["waived_blockers"] == counts.waived_blockers
    assert summary["unblock_plan_steps"] == counts.plan_steps
    assert (
        f"{counts.tenants} tenant(s): {counts.ready} ready, "
        f"{counts.ready_with_warnings} ready with warnings, {counts.blocked} blocked"
    ) in table
    assert f"unassigned blockers: {counts.unassigned_blockers} of {counts.blockers}" in table
    assert _console_counts(page) == {
        "tenants": counts.tenants,
        "ready": counts.ready,
        "ready_with_warnings": counts.ready_with_warnings,
        "blocked": counts.blocked,
        "waived_blockers": counts.waived_blockers,
        "blocked_without_waivers": counts.blocked_without_waivers,
        "unassigned_blockers": counts.unassigned_blockers,
        "blockers": counts.blockers,
    }
    for status, n in counts.customization_statuses:
        assert f"{n} {status.replace('_', ' ')}" in table
        assert f'<span class="{status}">{n} {status.replace("_", " ")}</span>' in page


async def test_both_render_whatever_the_model_counts(fleet, services, monkeypatch):
    """Change what :func:`fleet_counts` answers, and both the CLI and the console
    show the change: neither counts on its own."""
    calls: list[TriagedReport] = []

    def counted(triaged: TriagedReport) -> Counts:
        calls.append(triaged)
        return dataclasses.replace(
            fleet_counts(triaged),
            tenants=9001,
            ready=4242,
            ready_with_warnings=4343,
            blocked=4444,
            blocked_without_waivers=4545,
            waived_blockers=46,
            unassigned_blockers=47,
            blockers=48,
        )

    monkeypatch.setattr(api.report, "fleet_counts", counted)
    table = await _cli()
    summary = json.loads(await _cli("--format", "json"))
    markdown = await _cli("--format", "markdown")
    assert len(calls) == 3
    [page] = await _console(fleet, services, "/console/fleet?target=3.0")
    assert len(calls) == 4
    headline = "9001 tenant(s): 4242 ready, 4343 ready with warnings, 4444 blocked (4545 without"
    assert headline in table and headline in markdown
    assert "unassigned blockers: 47 of 48" in table
    assert summary["tenant_count"] == 9001 and summary["waived_blockers"] == 46
    assert summary["gate_counts"] == {"ready": 4242, "ready_with_warnings": 4343, "blocked": 4444}
    assert _console_counts(page) == {
        "tenants": 9001,
        "ready": 4242,
        "ready_with_warnings": 4343,
        "blocked": 4444,
        "waived_blockers": 46,
        "blocked_without_waivers": 4545,
        "unassigned_blockers": 47,
        "blockers": 48,
    }


async def test_every_tenant_has_one_status_in_the_cli_and_the_console(fleet, services):
    triaged = await services.triage.triaged(ADMIN, "3.0")
    rows = {row.tenant: row for row in ReadinessView(triaged, FULL).tenants}
    assert {row.status for row in rows.values()} >= {"ready", "blocked"}
    full = json.loads(await _cli("--format", "json", "--full"))
    assert {t["tenant"]: t["gate_status"] for t in full["tenants"]} == {
        tenant: row.status for tenant, row in rows.items()
    }
    paths = [f"/console/tenants/{tenant}?target=3.0" for tenant in rows]
    [fleet_page, *tenant_pages] = await _console(
        fleet, services, "/console/fleet?target=3.0", *paths
    )
    matrix = fleet_page.split('<table id="matrix">')[1].split("</table>")[0]
    column = re.findall(r"<th>([^<]*)</th>", matrix).index("3.0")
    matrix_rows = matrix.split("<tbody>")[1].split("<tr>")[1:]
    assert len(matrix_rows) == len(rows)
    for (tenant, row), page in zip(rows.items(), tenant_pages, strict=True):
        status = page.split('id="tenant-status"')[1].split("</p>")[0]
        assert f'<span class="{row.status}">{row.status.replace("_", " ")}</span>' in status
        waived = row.status != row.status_without_waivers
        assert ("blocked without its waivers" in status) is waived, tenant
        # the fleet page's matrix: the same status under 3.0
        line = next(r for r in matrix_rows if f'href="/console/tenants/{tenant}?' in r)
        assert re.findall(r'<td(?: class="(\w*)")?>', line)[column] == row.status, tenant


async def test_a_summary_shows_the_most_in_need_first_and_says_what_it_left_out(fleet, services):
    triaged = await services.triage.triaged(ADMIN, "3.0")
    report = triaged.report
    limits = Limits(tenants=3, customizations=2, plan=2, tenants_per_step=1, blockers=4, notes=0)
    view = ReadinessView(triaged, limits)
    assert view.cut and not view.full
    need = [NEED_ORDER[triaged.gate_status(t)] for t in report.tenants]
    assert [NEED_ORDER[row.status] for row in view.tenants] == sorted(need)[:3]
    assert [row.step for row in view.plan] == list(report.plan[:2])
    for row in view.plan:
        assert row.tenants == tuple(row.step.blocked_tenants[:1])
        assert row.more_tenants == len(row.step.blocked_tenants) - len(row.tenants)
    assert view.customizations == list(report.customizations[:2])
    assert list(view.blockers()) == list(triaged.owners.ordered(4))
    # no waived blocker named, but the note says one was left out
    notes = view.notes()
    assert view.waived() == [] and not any(n.startswith("waived blocker") for n in notes)
    assert "... and 1 more waived blocker(s) (--full)" in notes
    # a full view cuts nothing and keeps the report's order
    everything = ReadinessView(triaged, FULL)
    assert not everything.cut
    assert [row.tenant for row in everything.tenants] == [t.tenant for t in report.tenants]
    # the CLI's summary has no tenant table; the console's shows the first rows
    assert ReadinessView(triaged, CLI_SUMMARY).tenants == []
    assert CONSOLE_SUMMARY.tenants and len(ReadinessView(triaged, CONSOLE_SUMMARY).tenants) == (
        min(CONSOLE_SUMMARY.tenants, len(report.tenants))
    )


async def test_the_release_matrix_is_each_runs_gate_status(fleet, services):
    runs = {v: await services.triage.triaged(ADMIN, v) for v in ("3.0", "2.0")}
    matrix = release_matrix(runs)
    assert matrix.versions == ("3.0", "2.0")
    for version, triaged in runs.items():
        for t in triaged.report.tenants:
            assert matrix.status(t.tenant, version) == triaged.gate_status(t)
    assert matrix.status("nobody", "3.0") == ""
