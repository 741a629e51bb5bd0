"""Benchmark: what the worker boundary costs, and what start-up costs.

Run by hand: ``python bench/runtime_overhead.py [--settings 1000] [--rounds 30]``.

1. The ``settings`` query (1,000 settings, the real app over in-process ASGI) for
   three tenants of one database: one with no customization, one with 1, one
   with 5 (each reads two keys and returns one, as real ones do). Requests to
   the three alternate, so load on the machine hits all three alike; the report
   gives the medians and the ratios to the tenant with none, measured in this run.
2. Start-up: ``PluginRuntime.load`` with 100 customization packages on disk
   (each checked in a worker process), against loading none.
3. Memory: the resident size of one idle worker process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from settings_query import QUERY, prepare

from api.http.app import AppOptions, create_app
from core.model.auth import Principal
from core.store.services import Services
from plugins.runtime import PluginRuntime, RuntimeOptions

HOOK = """
import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    if values.get("bench.group1.s0001") is not None and "bench.group2.s0002" in values:
        return {{"bench.group0.s{n:04d}": {n}}}
    return None
"""


def write_packages(root: Path, count: int, tenants: list[str]) -> None:
    for n in range(count):
        pkg = root / f"c{n:03d}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        listed = ", ".join(f'"{t}"' for t in tenants)
        (pkg / "customization.toml").write_text(
            f'name = "c{n:03d}"\nversion = "1.0"\ntenants = [{listed}]\nrequires = ">=1.0"\n'
        )
        (pkg / "hooks.py").write_text(textwrap.dedent(HOOK.format(n=n * 4)))


async def query_overhead(url: str, root: Path, rounds: int) -> dict[str, float]:
    admin = Principal.system("bench")
    services = Services.from_url(url)
    for slug in ("one", "five"):
        await services.tenants.create(admin, slug, slug.title(), "1.0")
    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[root], path_env="", use_entry_points=False, release="1.0")
    )
    # no response cache: every request goes through the customizations
    app = create_app(services, AppOptions(plugins=runtime, response_cache=False))
    for c in runtime.sources():
        await services.registry.publish(admin, c.registration())
    await services.registry.set_enabled(admin, "one", "c000", True)
    for c in runtime.sources()[:5]:
        await services.registry.set_enabled(admin, "five", c.name, True)
    tokens = {}
    for slug in ("bench", "one", "five"):
        tokens[slug], _ = await services.tokens.create("admin", [])
    times: dict[str, list[float]] = {"bench": [], "one": [], "five": []}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def ask(slug: str) -> float:
            body = {"query": QUERY, "variables": {"t": slug, "e": None}}
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json=body, headers={"Authorization": f"Bearer {tokens[slug]}"}
            )
            took = time.perf_counter() - started
            data = response.json()["data"]["settings"]
            assert len(data["items"]) >= 1000, data
            return took

        for slug in times:  # warm: workers started, caches filled
            for _ in range(3):
                await ask(slug)
        for _ in range(rounds):
            for slug in times:
                times[slug].append(await ask(slug))
    await runtime.close()
    await services.close()
    return {slug: statistics.median(t) * 1000 for slug, t in times.items()}


def start_up(root: Path) -> tuple[float, float, float]:
    empty = Path(tempfile.mkdtemp())
    opts = {"path_env": "", "use_entry_points": False, "release": "1.0"}
    started = time.perf_counter()
    PluginRuntime.load(RuntimeOptions(directories=[empty], **opts))
    none = time.perf_counter() - started
    started = time.perf_counter()
    runtime = PluginRuntime.load(RuntimeOptions(directories=[root], **opts))
    hundred = time.perf_counter() - started
    assert len(runtime.sources()) == 100, [str(p) for r in runtime.refused() for p in r.problems]
    from plugins.runtime.process import WorkerProcess, private_workdir

    worker = WorkerProcess.spawn(1024, private_workdir())
    status = Path(f"/proc/{worker.pid}/status").read_text()
    rss = int(status.split("VmRSS:")[1].split()[0]) / 1024
    worker.kill()
    return none, hundred, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    asyncio.run(prepare(url, args.settings))
    small = tmp / "five"
    write_packages(small, 5, ["one", "five"])
    medians = asyncio.run(query_overhead(url, small, args.rounds))
    base = medians["bench"]
    print(f"settings query, {args.settings} settings, {args.rounds} rounds (median ms)")
    for slug, label in (("bench", "0 customizations"), ("one", "1"), ("five", "5")):
        print(f"  {label:<18} {medians[slug]:8.2f} ms   x{medians[slug] / base:.2f}")
    hundred = tmp / "hundred"
    write_packages(hundred, 100, ["bench"])
    none, loaded, rss = start_up(hundred)
    print(f"start-up: 0 customizations {none:.2f} s, 100 customizations {loaded:.2f} s")
    print(f"one idle worker process: {rss:.0f} MiB resident")


if __name__ == "__main__":
    main()
