"""Finding ids are unique per (code, subject, key or hook, tenant), and migration
0013 moves the decisions stored under the old ids (``CODE:subject@tenant``) to
ids that still cover every finding they covered: nothing is lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import text

from core.analysis.readiness.report import ReadinessReport
from core.analysis.readiness.vocabulary import CUSTOMIZATION, Code, Finding
from core.analysis.triage import Decision, TriagedReport, TriageRecord, id_of
from core.store.db import alembic_config, create_engine, upgrade
from tests.conftest import _base_url, scratch_postgres_database


def _removed(key: str) -> Finding:
    return Finding(Code.SETTING_REMOVED, CUSTOMIZATION, "gorse-stops", "m", "a", {"setting": key})


def _report(decisions: dict[str, TriageRecord]) -> TriagedReport:
    return TriagedReport(
        ReadinessReport("2.5", "released", (), (), ()), decisions, date(2026, 12, 5)
    )


def _record(finding: str) -> TriageRecord:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return TriageRecord(finding, Decision.WAIVED, "moves to 3.1", None, date(2027, 1, 1), "rm", at)


def test_two_keys_of_one_customization_are_two_findings():
    a, b = _removed("orders.numbering.prefix"), _removed("tax.rounding.per_line")
    assert id_of(a, "gorse") == "SETTING_REMOVED:gorse-stops:orders.numbering.prefix@gorse"
    assert id_of(a, "gorse") != id_of(b, "gorse")
    # one waived, the other not
    only_a = _report({id_of(a, "gorse"): _record(id_of(a, "gorse"))})
    assert only_a.waived("gorse", a) and not only_a.waived("gorse", b)
    # a decision on every detail covers both; a finding's own decision wins
    both = _report(
        {
            "SETTING_REMOVED:gorse-stops:*@gorse": _record("SETTING_REMOVED:gorse-stops:*@gorse"),
            id_of(b, "gorse"): TriageRecord(
                id_of(b, "gorse"), Decision.ACKNOWLEDGED, None, None, None, "rm", datetime.now(UTC)
            ),
        }
    )
    assert both.waived("gorse", a) and not both.waived("gorse", b)
    assert both.decision("gorse", b).decision is Decision.ACKNOWLEDGED  # type: ignore[union-attr]


async def _downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


async def _rows(url: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT finding, code, subject, tenant, decision, reason FROM finding_triage")
            )
            return sorted(tuple(r) for r in result.all())
    finally:
        await engine.dispose()


async def _migrate_round_trip(url: str) -> None:
    await _downgrade(url, "0011")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for finding, code, subject, tenant, reason in [
                (
                    "SETTING_REMOVED:gorse-stops@gorse",
                    "SETTING_REMOVED",
                    "gorse-stops",
                    "gorse",
                    "3.1",
                ),
                (
                    "OVERRIDE_INVALID:tax.rounding.per_line@stark",
                    "OVERRIDE_INVALID",
                    "tax.rounding.per_line",
                    "stark",
                    "later",
                ),
            ]:
                await conn.execute(
                    text(
                        "INSERT INTO finding_triage (finding, code, subject, tenant, decision, "
                        "reason, owner, until, decided_by, decided_at) VALUES (:f, :c, :s, :t, "
                        "'waived', :r, NULL, :u, 'rm', :at)"
                    ),
                    {
                        "f": finding,
                        "c": code,
                        "s": subject,
                        "t": tenant,
                        "r": reason,
                        "u": date(2027, 1, 1),
                        "at": datetime(2026, 12, 1, tzinfo=UTC),
                    },
                )
    finally:
        await engine.dispose()
    await upgrade(url)
    after = await _rows(url)
    assert after == [
        (
            "OVERRIDE_INVALID:tax.rounding.per_line:*@stark",
            "OVERRIDE_INVALID",
            "tax.rounding.per_line",
            "stark",
            "waived",
            "later",
        ),
        (
            "SETTING_REMOVED:gorse-stops:*@gorse",
            "SETTING_REMOVED",
            "gorse-stops",
            "gorse",
            "waived",
            "3.1",
        ),
    ]
    # and back: the old ids again, every decision kept
    await _downgrade(url, "0011")
    assert [r[0] for r in await _rows(url)] == [
        "OVERRIDE_INVALID:tax.rounding.per_line@stark",
        "SETTING_REMOVED:gorse-stops@gorse",
    ]
    await upgrade(url)


async def test_migration_0012_keeps_every_decision(tmp_path: Path):
    base = _base_url()
    if not base or base.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
        await upgrade(url)
        await _migrate_round_trip(url)
        return
    async with scratch_postgres_database(base, "tailor_mig") as (url, _name):
        await _migrate_round_trip(url)
