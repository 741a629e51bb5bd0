"""Benchmark: what webhooks cost a write (issue 22).

Run by hand: ``python bench/webhook_writes.py [--writes 200] [--rounds 2] [--hooks 8]``.

One process, one event loop, as one server worker: the real app (over httpx's
ASGI transport) answers ``setSetting`` one after the other while the webhook
delivery job runs in the same loop. Phases, alternated each round: no webhook;
``--hooks`` webhooks on a receiver that accepts and never answers (every
delivery waits its 5 s timeout); as many on a port where nothing listens
(connection refused, retried with backoff); as many on a receiver that answers
200 at once (each write delivered ``--hooks`` times). Printed: the median and
p95 write latency of each phase and its ratio to no webhook (the goal: a dead
or slow receiver never slows a write, ~x1.0; a healthy one costs the deliveries'
share of the one loop and database).

Measured (4 rounds of 100 writes, SQLite, a 2-core machine at load ~8 shared with
other work): receiver never answers x0.63, connection refused x0.80 (no slowdown:
the differences are the machine's noise), receiver answers 200 x1.95 (each write
delivered 8 times by the same process and event loop: the deliveries' own work,
one read and one write transaction and a POST each). Read ratios, not absolute
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))

from settings_query import free_port, prepare  # noqa: E402

from api.http.app import AppOptions, create_app  # noqa: E402
from api.http.background import Background  # noqa: E402
from api.http.webhooks import DeliveryOptions, WebhookDeliverer  # noqa: E402
from core.model.auth import Principal, Role  # noqa: E402
from core.store import feed  # noqa: E402
from core.store.services import Services  # noqa: E402
from plugins.runtime import PluginRuntime, RuntimeOptions  # noqa: E402
from tests.receiver import receiver  # noqa: E402

KEY = "bench.group0.s0000"
SET = (
    'mutation($v: JSON!) { setSetting(input: {tenant: "bench", key: "'
    + KEY
    + '", value: $v}) { __typename } }'
)
ADMIN = Principal.system("bench")


async def writes(client: httpx.AsyncClient, token: str, n: int, start: int) -> list[float]:
    latencies = []
    for i in range(n):
        began = time.perf_counter()
        response = await client.post(
            "/graphql",
            json={"query": SET, "variables": {"v": start + i}},
            headers={"Authorization": f"Bearer {token}"},
        )
        latencies.append(time.perf_counter() - began)
        assert response.json()["data"]["setSetting"]["__typename"] == "SettingChanged"
    return latencies


async def main(n: int, rounds: int, hooks: int) -> None:
    import os

    from cryptography.fernet import Fernet

    os.environ.setdefault("TAILOR_SECRET_KEY", Fernet.generate_key().decode())
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='tailor-bench-')}/bench.db"
    await prepare(url, 100)
    services = Services.from_url(url)
    token, _ = await services.tokens.create(Role.ADMIN, ())
    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[], path_env="", use_entry_points=False)
    )
    app = create_app(services, AppOptions(plugins=runtime))
    deliverer = WebhookDeliverer(services.webhooks, DeliveryOptions(private_allowed=True))
    background = Background()
    background.run("deliver webhooks", deliverer.run)
    stop = feed.on_commit(deliverer.wake)
    background.start()
    results: dict[str, list[float]] = {}
    counter = 0
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        receiver() as held,
        receiver() as healthy,
    ):
        held.open.clear()
        dead = f"http://127.0.0.1:{free_port()}/"
        phases = {
            "no webhook": None,
            f"{hooks} webhooks, receiver never answers": held.url,
            f"{hooks} webhooks, connection refused": dead,
            f"{hooks} webhooks, receiver answers 200": healthy.url,
        }
        await writes(client, token, 20, 0)  # warm up
        names = list(phases)
        for round_ in range(rounds):
            # each round starts at another phase: drift on a shared machine spreads
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                target = phases[name]
                for hook in await services.webhooks.list_all(ADMIN):
                    await services.webhooks.delete(ADMIN, hook.id)
                if target is not None:
                    for _ in range(hooks):
                        await services.webhooks.create(ADMIN, target, private_allowed=True)
                counter += n
                results.setdefault(name, []).extend(await writes(client, token, n, counter))
        delivered = len(healthy.delivered)
        held.open.set()
    stop()
    await background.stop()
    await services.close()
    base = statistics.median(results["no webhook"])
    print(f"{n} writes x {rounds} rounds per phase (median, p95, ratio of medians)")
    for name, latencies in results.items():
        median = statistics.median(latencies)
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(f"  {name:45s} {median * 1000:7.2f} ms  {p95 * 1000:7.2f} ms  x{median / base:.2f}")
    print(f"  deliveries to the healthy receiver: {delivered}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hooks", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.writes, args.rounds, args.hooks))
