"""Benchmark: a noisy token against another client's latency (issue 21).

Run by hand: ``python bench/noisy_neighbour.py [--seconds 4] [--rounds 2]
[--max-cost 100] [--no-limits]``.

The audit's measurement: one consultant token, 8 connections, each sending
``settings(keys: $keys)`` with 20,000 keys as fast as it is answered, and
honouring ``Retry-After`` when it gets 429; another client (an app token, one
connection) asks its tenant for 20 settings 50 times a second. Printed: the other client's
median latency alone and beside the noisy token, their ratio (the bound: 1.5),
and what the noisy token's requests got (200 / 400 / 429).

- default limits: a 20,000-key request costs 201, over ``max_cost`` (100): it is
  refused before running and charged 100, so the token spends its budget in 6
  requests and then waits as ``Retry-After`` says.
- ``--max-cost 250``: the same requests are allowed and run (201 each), at most
  ``burst + rate`` units a minute: the bound the price and the rate limit give.
- ``--no-limits``: no price limit, no rate limit -- the situation of the audit
  (every such request ran, as often as the token sent it).

Measured (2 rounds of 3 s, shared 2-core machine): default limits x1.00 and x0.97
(the noisy token got 6 400s, then 429s); ``--max-cost 250`` x1.00 and x0.99 (3
of its requests ran per round); ``--no-limits`` x37.

Servers, the noisy token and the other client each run in their own process on
127.0.0.1; the machine has 2 cores, shared by all of them: read ratios, not
absolute figures. Each phase stops by itself after ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from settings_query import free_port, prepare
from static_settings import HOST, wait_for

NOISY_KEYS = 20_000
QUERY = (
    "query($t: String!, $keys: [String!]) { settings(tenant: $t, keys: $keys) {"
    " ... on Settings { items { key value } } ... on Error { code } } }"
)


def run_server(url: str, port: int, max_cost: int, limited: bool) -> None:
    import uvicorn

    from api.graphql.limits import GraphQLLimits
    from api.http.app import AppOptions, create_app
    from core.store.services import Services
    from plugins.runtime import PluginRuntime, RuntimeOptions

    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[], path_env="", use_entry_points=False)
    )
    if limited:
        limits = GraphQLLimits(max_cost=max_cost, rate_limit_burst=max(600, max_cost))
    else:
        limits = GraphQLLimits(max_cost=10**9, rate_limit_per_minute=0, rate_limit_burst=10**9)
    app = create_app(Services.from_url(url), AppOptions(plugins=runtime, limits=limits))
    uvicorn.run(app, host=HOST, port=port, log_level="error", access_log=False)


def run_victim(port: int, token: str, seconds: float, out: mp.Queue) -> None:
    """One connection, a request every 20 ms (50 a second: 50 of its 100 cost
    units a second, the default rate): the latencies."""
    keys = [f"bench.group{i % 20}.s{i:04d}" for i in range(20)]
    body = {"query": QUERY, "variables": {"t": "bench", "keys": keys}}
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            response = client.post("/graphql", json=body)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"the other client got {response.status_code}")
            time.sleep(max(0.0, 0.02 - (time.perf_counter() - start)))
    out.put(latencies)


def run_noisy(port: int, token: str, seconds: float, out: mp.Queue) -> None:
    """8 connections of one token sending 20,000-key requests, honouring Retry-After."""
    keys = [f"no.such.setting{i:05d}" for i in range(NOISY_KEYS)]
    body = {"query": QUERY, "variables": {"t": "bench", "keys": keys}}
    statuses: Counter[int] = Counter()

    async def connection(client: httpx.AsyncClient, end: float) -> None:
        while time.monotonic() < end:
            response = await client.post("/graphql", json=body)
            statuses[response.status_code] += 1
            if response.status_code == 429:
                wait = float(response.headers["Retry-After"])
                await asyncio.sleep(max(0.0, min(wait, end - time.monotonic())))

    async def main() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{port}", headers=headers, limits=limits, timeout=60
        ) as client:
            end = time.monotonic() + seconds
            await asyncio.gather(*(connection(client, end) for _ in range(8)))

    asyncio.run(main())
    out.put(dict(statuses))


async def tokens(url: str) -> tuple[str, str]:
    """The other client's app token (from ``prepare``) and a consultant token."""
    from core.store.services import Services

    app = await prepare(url, 1_000)
    services = Services.from_url(url)
    consultant, _ = await services.tokens.create("consultant", ["bench"])
    await services.close()
    return app, consultant


def phase(port: int, app: str, consultant: str, seconds: float, noisy: bool) -> tuple[float, dict]:
    out: mp.Queue = mp.Queue()
    victim = mp.Process(target=run_victim, args=(port, app, seconds, out))
    loud = mp.Process(target=run_noisy, args=(port, consultant, seconds + 1, out))
    if noisy:
        loud.start()
        time.sleep(1.0)  # let the noisy token spend its burst first
    victim.start()
    results = [out.get(timeout=seconds + 120) for _ in range(2 if noisy else 1)]
    victim.join()
    if noisy:
        loud.join()
    latencies = next(r for r in results if isinstance(r, list))
    statuses = next((r for r in results if isinstance(r, dict)), {})
    return statistics.median(latencies) * 1000, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-cost", type=int, default=100)
    parser.add_argument("--no-limits", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        app, consultant = asyncio.run(tokens(url))
        port = free_port()
        server = mp.Process(
            target=run_server, args=(url, port, args.max_cost, not args.no_limits), daemon=True
        )
        server.start()
        try:
            wait_for(port)
            phase(port, app, consultant, 1.0, noisy=False)  # warm up (caches, imports)
            for r in range(args.rounds):
                alone, _ = phase(port, app, consultant, args.seconds, noisy=False)
                loud, statuses = phase(port, app, consultant, args.seconds, noisy=True)
                print(
                    f"round {r + 1}: other client's median {alone:.2f} ms alone, "
                    f"{loud:.2f} ms beside the noisy token: x{loud / alone:.2f} "
                    f"(bound 1.5); noisy token's answers {dict(sorted(statuses.items()))}"
                )
        finally:
            server.terminate()
            server.join()


if __name__ == "__main__":
    main()
