"""GET /metrics: Prometheus text, bounded route labels, hook counters from the
observation store; a token of an operator's role."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from api.http.metrics import route_name
from core.model.customizations import ObservationDelta


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_route_names_are_bounded():
    assert route_name("/graphql") == "/graphql"
    assert route_name("/console/tenants/acme") == "/console/tenants"
    assert route_name("/console/../../etc") == "/console"
    assert route_name("/wp-admin/x") == "other"


async def test_metrics_count_requests_and_hook_calls(api, services):
    now = datetime.now(UTC)
    await services.observations.record(
        [
            ObservationDelta(
                "stark-rules",
                "acme",
                "tailor_resolve_settings",
                calls=5,
                failures=2,
                changed=3,
                first_seen=now,
                last_seen=now,
                latency_buckets=[4, 1] + [0] * 11,
            ),
            ObservationDelta(
                "stark-rules",
                "other",
                "tailor_resolve_settings",
                calls=1,
                first_seen=now,
                last_seen=now,
                latency_buckets=[0] * 12 + [1],
            ),
        ]
    )
    refused = await api.client.get("/metrics")
    assert refused.status_code == 401
    consultant = await api.client.get(
        "/metrics", headers={"Authorization": f"Bearer {api.tokens['consultant']}"}
    )
    assert consultant.status_code == 403
    await api.client.get("/healthz")
    response = await api.client.get(
        "/metrics", headers={"Authorization": f"Bearer {api.tokens['release_manager']}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    hook = (("customization", "stark-rules"), ("hook", "tailor_resolve_settings"))
    assert got[("tailor_hook_calls_total", hook)] == 6
    assert got[("tailor_hook_failures_total", hook)] == 2
    assert got[("tailor_hook_changed_total", hook)] == 3
    assert (
        got[
            (
                "tailor_hook_duration_seconds_bucket",
                (*hook[:1], ("hook", hook[1][1]), ("le", "0.001")),
            )
        ]
        == 4
    )
    assert (
        got[
            (
                "tailor_hook_duration_seconds_bucket",
                (*hook[:1], ("hook", hook[1][1]), ("le", "+Inf")),
            )
        ]
        == 6
    )
    health = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    assert got[("tailor_http_requests_total", health)] == 1
    assert (
        got[
            (
                "tailor_http_requests_total",
                (("method", "GET"), ("route", "/metrics"), ("status", "401")),
            )
        ]
        == 1
    )
    assert ("tailor_http_request_duration_seconds_count", (("route", "/healthz"),)) in got


async def test_cache_hits_are_counted(api):
    query = '{ settings(tenant: "acme", keys: ["billing.invoice.rounding"]) { __typename } }'
    rm = {"Authorization": f"Bearer {api.tokens['release_manager']}"}

    async def cache():
        got = samples((await api.client.get("/metrics", headers=rm)).text)
        label = (("cache", "setting_definitions"),)
        return got[("tailor_cache_hits_total", label)], got[("tailor_cache_misses_total", label)]

    hits, misses = await cache()
    await api.gql(query)
    after_first = await cache()
    # another question (the same one would be answered from the response cache)
    await api.gql(query.replace("rounding", "due_days"))
    after_second = await cache()
    # every resolution reads the whole release (customizations get whole inputs):
    # the first parses its definitions (unless an earlier one did), the next reuses all
    touched = after_first[0] + after_first[1] - hits - misses
    assert touched > 1
    assert after_second == (after_first[0] + touched, after_first[1])


async def test_only_the_busiest_customizations_are_named(client_with, services, tenant):
    from api.http.app import AppOptions
    from core.model.auth import Role

    now = datetime.now(UTC)
    busy = {"alpha": 9, "bravo": 5, "charlie": 2, "delta": 1}
    await services.observations.record(
        [
            ObservationDelta(
                name,
                tenant,
                "tailor_resolve_settings",
                calls=calls,
                first_seen=now,
                last_seen=now,
                latency_buckets=[calls] + [0] * 12,
            )
            for name, calls in busy.items()
        ]
    )
    token, _ = await services.tokens.create(Role.ADMIN)
    async with client_with(AppOptions(metrics_customizations=2)) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    got = samples(response.text)
    calls = {
        dict(labels)["customization"]: value
        for (name, labels), value in got.items()
        if name == "tailor_hook_calls_total"
    }
    assert calls == {"alpha": 9, "bravo": 5, "other": 3}
    # never a label per tenant
    assert not [labels for _name, labels in got if "tenant" in dict(labels)]
