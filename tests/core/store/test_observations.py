"""The observation store: sums across flushes (and workers), keys per direction,
latency percentiles, scope, and a constant number of statements per flush."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.model.auth import Principal, Role
from core.model.customizations import ObservationDelta, latency_bucket, latency_percentile
from core.store.db import count_statements
from core.store.services import Services

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _delta(cust: str, tenant: str, hook: str, calls: int, **kw) -> ObservationDelta:
    d = ObservationDelta(cust, tenant, hook, calls=calls, first_seen=T0, last_seen=T0)
    for name, value in kw.items():
        setattr(d, name, value)
    return d


def test_latency_buckets_and_percentiles() -> None:
    assert latency_bucket(0.3) == 0
    assert latency_bucket(1.0) == 0
    assert latency_bucket(1.5) == 1
    assert latency_bucket(7) == 3
    assert latency_bucket(10_000) == 12
    buckets = [0] * 13
    for ms in [1] * 90 + [300] * 10:
        buckets[latency_bucket(ms)] += 1
    assert latency_percentile(tuple(buckets), 0.5) == 1.0
    assert latency_percentile(tuple(buckets), 0.95) == 500.0
    assert latency_percentile(tuple([0] * 13), 0.5) is None


async def test_record_adds_up_and_lists_keys(services: Services) -> None:
    store = services.observations
    first = _delta(
        "c1",
        "acme",
        "tailor_resolve_settings",
        3,
        failures=1,
        changed=2,
        last_error="boom",
        last_error_at=T0,
        keys={("a.b", "read"): 3, ("a.c", "returned"): 2},
    )
    first.latency_buckets[2] = 3
    later = T0 + timedelta(minutes=5)
    second = ObservationDelta(
        "c1",
        "acme",
        "tailor_resolve_settings",
        calls=2,
        first_seen=later,
        last_seen=later,
        keys={("a.b", "read"): 2, ("x.y", "read"): 1},
    )
    second.latency_buckets[0] = 2
    other = _delta("c1", "other", "tailor_resolve_settings", 1, keys={("z", "read"): 1})
    with count_statements(services.engine) as counter:
        await store.record([first, other])
    assert counter.count == 2
    with count_statements(services.engine) as counter:
        await store.record([_delta("c2", "acme", "tailor_validate_setting", 1)])
    assert counter.count == 1  # no keys seen: one statement
    await store.record([second])

    found = await store.list_all(customization="c1", tenant="acme")
    assert len(found) == 1
    obs = found[0]
    assert (obs.calls, obs.failures, obs.changed) == (5, 1, 2)
    assert obs.last_error == "boom"
    assert obs.first_seen == T0
    assert obs.last_seen == later
    assert obs.latency_buckets[0] == 2 and obs.latency_buckets[2] == 3
    assert obs.latency_p50_ms == 5.0
    assert obs.keys_read == {"a.b", "x.y"}
    assert obs.keys_returned == {"a.c"}
    counts = {(k.key, k.direction): k.count for k in obs.keys}
    assert counts == {("a.b", "read"): 5, ("x.y", "read"): 1, ("a.c", "returned"): 2}

    # a consultant of acme sees acme's observations only
    consultant = Principal(Role.CONSULTANT, "c", frozenset({"acme"}))
    seen = await store.list_all(consultant)
    assert {(o.customization, o.tenant) for o in seen} == {("c1", "acme"), ("c2", "acme")}
    assert len(await store.list_all()) == 3


async def test_statements_do_not_grow_with_the_batch(services: Services) -> None:
    many = [
        _delta(
            f"c{i}",
            f"t{i % 7}",
            "tailor_resolve_settings",
            1,
            keys={(f"k.{j}", "read"): 1 for j in range(20)},
        )
        for i in range(200)
    ]
    with count_statements(services.engine) as counter:
        await services.observations.record(many)
    assert counter.count == 2
    assert len(await services.observations.list_all()) == 200
