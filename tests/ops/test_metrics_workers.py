"""/metrics under `tailor serve --workers 2` (issue 25): whichever worker answers,
the counters are every worker's summed (prometheus-client's multiprocess mode),
so repeated scrapes never go down; hook calls of a customization appear within
seconds of the calls."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.model.auth import Role
from tests.conftest import ADMIN, fresh_runtime
from tests.plugins.conftest import HEADER, manifest
from tests.sample import ACME
from tests.servers import start_node

NAME = "due-days-61"
DUE = "billing.invoice.due_days"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


GRAPHQL_OK = (
    "tailor_http_requests_total",
    (("method", "POST"), ("route", "/graphql"), ("status", "200")),
)
METRICS_OK = (
    "tailor_http_requests_total",
    (("method", "GET"), ("route", "/metrics"), ("status", "200")),
)
HOOK_CALLS = (
    "tailor_hook_calls_total",
    (("customization", NAME), ("hook", "tailor_resolve_settings")),
)


async def test_metrics_are_every_workers_summed(services, database_url, is_postgres, tmp_path):
    if not is_postgres:
        pytest.skip("--workers 2 needs PostgreSQL")
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    package = tmp_path / "src" / "due_days_61"
    package.mkdir(parents=True)
    (package / "customization.toml").write_text(manifest(NAME, ["acme"]))
    (package / "hooks.py").write_text(
        HEADER + f'@hookimpl\ndef tailor_resolve_settings(values):\n    return {{"{DUE}": 61}}\n'
    )
    from plugins.runtime import RuntimeOptions

    source = fresh_runtime(
        ACME, RuntimeOptions(directories=[package.parent], path_env="", use_entry_points=False)
    )
    await services.registry.publish(ADMIN, source.sources()[0].registration())
    await services.registry.set_enabled(ADMIN, "acme", NAME, True)
    token, _ = await services.tokens.create(Role.ADMIN, label="prometheus")
    auth = {"Authorization": f"Bearer {token}"}

    node = await start_node(tmp_path / "node", database_url, "--workers", "2", probe="/readyz")
    scraped = 0
    try:
        # a new connection each time: the kernel hands them to either worker
        async def scrape() -> dict:
            nonlocal scraped
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(f"{node.url}/metrics", headers=auth)
            assert response.status_code == 200, response.text
            got = samples(response.text)
            scraped += 1
            return got

        calls = 6
        for i in range(calls):
            async with httpx.AsyncClient(timeout=30) as client:
                # a different document each time: no answer comes from the response cache
                query = f'{{ q{i}: settings(tenant: "acme", keys: ["{DUE}"]) '
                query += "{ ... on Settings { items { value source } } } }"
                r = await client.post(f"{node.url}/graphql", json={"query": query}, headers=auth)
                assert r.json()["data"][f"q{i}"]["items"] == [
                    {"value": 61, "source": f"CUSTOMIZATION:{NAME}"}
                ], r.text

        # the hook calls appear within seconds
        got: dict = {}
        for _ in range(40):
            got = await scrape()
            if got.get(HOOK_CALLS) == calls:
                break
            await asyncio.sleep(0.5)
        assert got.get(HOOK_CALLS) == calls, {k: v for k, v in got.items() if "hook" in k[0]}

        # every scrape: the sum of both workers' counts, never lower than the last
        last = 0.0
        for _ in range(12):
            before = scraped
            got = await scrape()
            assert got[GRAPHQL_OK] == calls
            # the scrapes answered before this one, by whichever worker
            assert got[METRICS_OK] == before
            assert got[METRICS_OK] >= last
            last = got[METRICS_OK]
    finally:
        assert await node.stop(limit=60) == 0
