"""Issue 12's P3 for fleet questions: ``readiness`` and ``foldbackCandidates``
over the real ASGI app send the same number of SQL statements for 10 tenants as
for 1,000 (and no statement binds a parameter per tenant or customization)."""

from __future__ import annotations

from core.store.bootstrap import register_planned_releases
from core.store.db import count_statements
from core.store.fleet import seed_fleet
from tests.conftest import ADMIN
from tests.sample import ACME

READINESS = """query { readiness(target: "3.0") { __typename ... on Readiness {
  counts { total blocked } customizationCounts anyBlocked newFindings
  tenants { tenant status gateStatus blockers warnings findings { id code severity waived } }
  customizations { name status stabilityLevel }
  unblockPlan { rank subject blocks cumulativeUnblocked } } } }"""

FOLDBACK = """query { foldbackCandidates(limit: 50) { __typename ... on Foldback {
  candidates { kind title tenants customizations blockers score { total } }
  retire { kind subject } } } }"""

#: the most bind parameters any one statement may carry here (PostgreSQL's limit
#: is 32,767; a statement with one per tenant or customization would grow)
FEW_PARAMETERS = 50


async def _fleet(services, tenants: int) -> None:
    async def publish(registrations):
        await services.registry.publish_many(ADMIN, registrations)

    await seed_fleet(services, tenants, 3, demo=ACME.demo, publish=publish)


async def _count(api, services, query: str, field: str) -> tuple[int, int, dict]:
    """Statements of one request, and the most parameters one of them bound. The
    token is looked up first: it is remembered for TOKEN_CACHE_SECONDS only, and a
    large fleet built on a loaded machine can take longer than that (the lookup
    then counted as one more statement of the fleet's question)."""
    from sqlalchemy import event

    await api.gql("{ __typename }")
    most = 0

    def params(_conn, _cursor, _statement, parameters, _context, _many):
        nonlocal most
        if parameters is not None and not isinstance(parameters, list):
            most = max(most, len(parameters))

    event.listen(services.engine.sync_engine, "before_cursor_execute", params)
    try:
        with count_statements(services.engine, keep=True) as counter:
            body = await api.gql(query)
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", params)
    assert body["data"][field]["__typename"] != "Error", body
    return counter.count, most, body["data"][field]


async def test_readiness_and_foldback_statements_do_not_grow_with_the_fleet(api, services):
    await register_planned_releases(services, ACME)
    counts = {}
    for tenants in (10, 1_000):
        await _fleet(services, tenants)
        readiness, most_r, report = await _count(api, services, READINESS, "readiness")
        # the fixture's two tenants, and the fleet's
        assert report["counts"]["total"] == tenants + 2
        assert report["customizations"], "the published fleet is evaluated"
        foldback, most_f, candidates = await _count(api, services, FOLDBACK, "foldbackCandidates")
        assert candidates["candidates"], "the fleet has fold-back candidates"
        counts[tenants] = (readiness, foldback)
        assert max(most_r, most_f) <= FEW_PARAMETERS, (most_r, most_f)
    assert counts[10] == counts[1_000], counts
    # readiness: releases, definitions, tenants, overrides, observations and their
    # keys, registrations, enabled states, the versions tenants are pinned to,
    # the last kept rehearsal, triage decisions, the previous kept run;
    # fold-back: registrations, enabled states, releases, defaults, overrides,
    # observations (2), the versions tenants are pinned to (families compare what
    # tenants run), planned releases, then readiness of 3.0 (7 more, the last
    # kept rehearsal included) with the front-end apps and their documents (one)
    assert counts[10] == (13, 16), counts
