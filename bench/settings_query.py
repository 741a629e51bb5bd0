"""Benchmark: the ``settings`` query for one tenant with 1,000 settings.

Run by hand: ``python bench/settings_query.py [--settings 1000] [--requests 200]``.

Both servers run in this process under uvicorn on 127.0.0.1 and are measured in
the same run with the same HTTP client:

* **tailor**: the real app (token check, GraphQL parse/validate/execute, three SQL
  statements on a SQLite file, serialisation);
* **baseline**: a bare Starlette endpoint returning the same JSON payload
  (serialised per request with orjson).

It reports the median and p95 latency of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from api.http.app import create_app
from core.model.auth import Principal
from core.model.definitions import SettingDefinition, SettingType
from core.model.manifest import ReleaseManifest
from core.store.db import upgrade
from core.store.services import Services

QUERY = """query($t: String!, $e: String) { settings(tenant: $t, environment: $e) {
  ... on Settings { items { key value source revision definition { type default } } } } }"""


async def prepare(url: str, n: int, version: str = "1.0") -> str:
    """Migrate ``url``; release ``version`` with ``n`` settings, tenant ``bench`` on
    it (a tenth of them overridden); an app token of ``bench``."""
    await upgrade(url)
    services = Services.from_url(url)
    admin = Principal.system("bench")
    types = [SettingType.INT, SettingType.BOOL, SettingType.STRING, SettingType.FLOAT]
    defaults = {
        SettingType.INT: 7,
        SettingType.BOOL: True,
        SettingType.STRING: "x",
        SettingType.FLOAT: 1.5,
    }
    catalog = tuple(
        SettingDefinition(
            key=f"bench.group{i % 20}.s{i:04d}", type=types[i % 4], default=defaults[types[i % 4]]
        )
        for i in range(n)
    )
    await services.releases.register(ReleaseManifest(version, settings=catalog), admin)
    await services.tenants.create(admin, "bench", "Bench", version)
    for d in catalog[: n // 10]:
        await services.settings.set(admin, "bench", d.key, d.default, environment="production")
    secret, _ = await services.tokens.create("app", ["bench"])
    await services.close()
    return secret


def serve(app: object, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(client: httpx.Client, url: str, body: dict, headers: dict, n: int) -> list[float]:
    for _ in range(10):  # warm-up
        client.post(url, json=body, headers=headers).raise_for_status()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        client.post(url, json=body, headers=headers).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    token = asyncio.run(prepare(url, args.settings))

    tailor_port, base_port = free_port(), free_port()
    tailor = serve(create_app(Services.from_url(url)), tailor_port)
    headers = {"Authorization": f"Bearer {token}"}
    body = {"query": QUERY, "variables": {"t": "bench", "e": "production"}}
    with httpx.Client(timeout=30) as client:
        payload = client.post(
            f"http://127.0.0.1:{tailor_port}/graphql", json=body, headers=headers
        ).json()
        assert len(payload["data"]["settings"]["items"]) == args.settings

        async def bare(_request: object) -> Response:
            return Response(orjson.dumps(payload), media_type="application/json")

        baseline = serve(Starlette(routes=[Route("/graphql", bare, methods=["POST"])]), base_port)
        base_times = measure(
            client, f"http://127.0.0.1:{base_port}/graphql", body, headers, args.requests
        )
        tailor_times = measure(
            client, f"http://127.0.0.1:{tailor_port}/graphql", body, headers, args.requests
        )
    tailor.should_exit = baseline.should_exit = True

    def row(name: str, times: list[float]) -> str:
        q = statistics.quantiles(times, n=20)
        median = statistics.median(times) * 1000
        return f"{name:<10} median {median:8.2f} ms   p95 {q[18] * 1000:8.2f} ms"

    print(
        f"settings query, {args.settings} settings, {args.requests} requests, "
        f"{len(orjson.dumps(payload)) / 1024:.0f} KiB payload"
    )
    print(row("baseline", base_times))
    print(row("tailor", tailor_times))
    print(
        f"ratio (median tailor / median baseline): "
        f"{statistics.median(tailor_times) / statistics.median(base_times):.1f}x"
    )


if __name__ == "__main__":
    main()
