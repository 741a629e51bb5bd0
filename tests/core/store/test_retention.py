"""What is kept for a while is pruned: observations nothing renewed and kept
readiness runs past their retention; the newest run of a target always stays."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.model.clock import utcnow
from core.model.customizations import ObservationDelta
from core.model.errors import InvalidInputError
from core.store import observations, triage
from core.store.models import ObservationRow, ObservedKeyRow, ReadinessRun
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"


async def _count(services, model) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


def _delta(customization: str) -> ObservationDelta:
    now = utcnow()
    return ObservationDelta(
        customization=customization,
        tenant="acme",
        hook="tailor_resolve_settings",
        calls=1,
        first_seen=now,
        last_seen=now,
        keys={(DUE, "read"): 1},
    )


async def test_observations_nothing_renewed_are_pruned(services, tenant):
    await services.observations.record([_delta("old-one"), _delta("fresh-one")])
    old = utcnow() - timedelta(days=91)
    async with services.sessions.begin() as session:
        for model in (ObservationRow, ObservedKeyRow):
            await session.execute(
                update(model).where(model.customization == "old-one").values(last_seen=old)
            )
    assert await services.observations.prune(90) == 2
    async with services.sessions() as session:
        left = set((await session.scalars(select(ObservationRow.customization))).all())
        keys = set((await session.scalars(select(ObservedKeyRow.customization))).all())
    assert left == keys == {"fresh-one"}
    assert await services.observations.prune(90) == 0


async def test_old_runs_go_but_the_newest_of_each_target_stays(services, tenant):
    for _ in range(3):
        await services.triage.triaged(ADMIN, "2.0", keep=True)
    await services.triage.triaged(ADMIN, "1.0", keep=True)
    async with services.sessions.begin() as session:
        await session.execute(update(ReadinessRun).values(at=utcnow() - timedelta(days=200)))
    assert await _count(services, ReadinessRun) == 4
    # the two older runs of 2.0 go; the newest of 2.0 and the only one of 1.0 stay
    assert await services.triage.prune_runs(180) == 2
    async with services.sessions() as session:
        targets = sorted((await session.scalars(select(ReadinessRun.target))).all())
    assert targets == ["1.0", "2.0"]
    assert await services.triage.prune_runs(180) == 0


def test_retention_variables_are_read_or_refused(monkeypatch):
    monkeypatch.delenv(observations.RETENTION_ENV, raising=False)
    monkeypatch.delenv(triage.RUN_RETENTION_ENV, raising=False)
    assert observations.retention_days() == observations.DEFAULT_RETENTION_DAYS
    assert triage.run_retention_days() == triage.DEFAULT_RUN_RETENTION_DAYS
    monkeypatch.setenv(observations.RETENTION_ENV, "7")
    assert observations.retention_days() == 7
    monkeypatch.setenv(triage.RUN_RETENTION_ENV, "never")
    with pytest.raises(InvalidInputError) as err:
        triage.run_retention_days()
    assert triage.RUN_RETENTION_ENV in str(err.value)
