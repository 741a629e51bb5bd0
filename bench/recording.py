"""Benchmark: what recording hook inputs (issue 24) costs the ``settings`` query.

Run by hand: ``python bench/recording.py [--settings 1000] [--rounds 200]``.

The ``settings`` query (1,000 settings, the real app over in-process ASGI, no
response cache: every request calls the customizations) for three tenants of
one database, each running the same 5 customizations (each reads two keys and
returns one, as in ``bench/runtime_overhead.py``):

* **off**: recording off (the default);
* **on, K=20**: recording on with the default 20 samples per customization and
  hook: after the first 20 requests the call path holds K and only looks up;
* **on, K=1000**: recording on with 1,000 samples: every request of the run takes
  a sample (the inputs, 1,000 layered values, copied without the secrets): the
  worst case.

Requests to the three alternate, so load on the machine hits all three alike.
The samples pending are written (``flush_samples``, the background job's work)
every 20 rounds, outside the timed requests; that time is reported per request
recorded. Goal: the ratio of each "on" to "off" at most 1.05.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).parent))

from runtime_overhead import write_packages
from settings_query import QUERY, prepare

from api.graphql.limits import GraphQLLimits
from api.http.app import AppOptions, create_app
from core.model.auth import Principal
from core.store.services import Services
from plugins.runtime import PluginRuntime, RuntimeOptions

TENANTS = {"off": None, "k20": 20, "k1000": 1000}


async def measure(url: str, root: Path, rounds: int) -> tuple[dict[str, float], float, int]:
    admin = Principal.system("bench")
    services = Services.from_url(url)
    for slug in TENANTS:
        await services.tenants.create(admin, slug, slug.title(), "1.0")
    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[root], path_env="", use_entry_points=False, release="1.0")
    )
    # no rate limit: the bench's one token asks thousands of times a minute
    limits = GraphQLLimits(rate_limit_per_minute=0)
    app = create_app(services, AppOptions(plugins=runtime, response_cache=False, limits=limits))
    for c in runtime.sources():
        await services.registry.publish(admin, c.registration())
    for slug, k in TENANTS.items():
        for c in runtime.sources():
            await services.registry.set_enabled(admin, slug, c.name, True)
        if k is not None:
            await services.samples.set_policy(admin, slug, True, 30, k)
    token, _ = await services.tokens.create("admin", [])
    times: dict[str, list[float]] = {slug: [] for slug in TENANTS}
    flushing = 0.0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def ask(slug: str) -> float:
            body = {"query": QUERY, "variables": {"t": slug, "e": "production"}}
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            took = time.perf_counter() - started
            answer = response.json()
            assert "data" in answer, answer
            data = answer["data"]["settings"]
            assert len(data["items"]) >= 1000, data
            return took

        for slug in times:  # warm: workers started, caches filled
            for _ in range(3):
                await ask(slug)
        await runtime.flush_samples()
        for n in range(rounds):
            order = list(TENANTS) if n % 2 else list(reversed(TENANTS))
            for slug in order:
                times[slug].append(await ask(slug))
            if n % 20 == 19:
                started = time.perf_counter()
                await runtime.flush_samples()
                flushing += time.perf_counter() - started
        started = time.perf_counter()
        await runtime.flush_samples()
        flushing += time.perf_counter() - started
    stored = len(await services.samples.samples())
    await runtime.close()
    await services.close()
    return {slug: statistics.median(t) * 1000 for slug, t in times.items()}, flushing, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("TAILOR_SECRET_KEY", Fernet.generate_key().decode())
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    asyncio.run(prepare(url, args.settings))
    root = tmp / "five"
    write_packages(root, 5, list(TENANTS))
    medians, flushing, stored = asyncio.run(measure(url, root, args.rounds))
    base = medians["off"]
    print(
        f"settings query, {args.settings} settings, 5 customizations, "
        f"{args.rounds} rounds (median ms)"
    )
    for slug, label in (("off", "recording off"), ("k20", "on, K=20"), ("k1000", "on, K=1000")):
        print(f"  {label:<16} {medians[slug]:8.2f} ms   x{medians[slug] / base:.3f}")
    recorded = 2 * (args.rounds + 3)
    print(
        f"writing the samples (background job): {flushing * 1000:.1f} ms in all, "
        f"{flushing * 1000 / recorded:.2f} ms per recorded request; {stored} samples stored"
    )


if __name__ == "__main__":
    main()
