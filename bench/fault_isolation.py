"""Benchmark: another tenant's latency while one tenant's customization misbehaves.

Run by hand: ``python bench/fault_isolation.py [--rounds 40]``.

Two tenants on one database, the real app over in-process ASGI, 1,000 settings:
``healthy`` has a well-behaved customization, ``victim`` one that (by turn) burns
CPU in C code (catastrophic regex backtracking), hangs, or exits its process.
For each fault the healthy tenant's median latency is measured twice in the
same run, both times while two clients keep sending the victim's requests: once
with the victim's customization well-behaved, once with it faulty. The ratio
is the fault's own cost to another tenant (goal: <= 1.5x), not the cost of the
victim's traffic.
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

sys.path.insert(0, str(Path(__file__).parent))

from settings_query import QUERY, prepare

from api.http.app import AppOptions, create_app
from core.model.auth import Principal
from core.store.services import Services
from plugins.runtime import PluginRuntime, RuntimeOptions

HEADER = 'import pluggy\n\nhookimpl = pluggy.HookimplMarker("tailor")\n\n'
HEALTHY = """
@hookimpl
def tailor_resolve_settings(values):
    return {"bench.group0.s0000": 1}
"""
FAULTS = {
    "cpu-loop-in-c": 'import re\n    re.match(r"(a+)+$", "a" * 64 + "b")',
    "hang": "import time\n    time.sleep(60)",
    "os-exit": "import os\n    os._exit(3)",
}
BENIGN = "benign"


def package(root: Path, name: str, tenant: str, code: str) -> None:
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "customization.toml").write_text(
        f'name = "{name}"\nversion = "1.0"\ntenants = ["{tenant}"]\nrequires = ">=1.0"\n'
    )
    (pkg / "hooks.py").write_text(HEADER + code)


async def run(url: str, root: Path, rounds: int) -> None:
    admin = Principal.system("bench")
    services = Services.from_url(url)
    for slug in ("healthy", "victim"):
        await services.tenants.create(admin, slug, slug.title(), "1.0")
    runtime = PluginRuntime.load(
        RuntimeOptions(
            directories=[root],
            path_env="",
            use_entry_points=False,
            hook_timeout=1.0,
            release="1.0",
        )
    )
    # no response cache: every request goes through the customizations
    app = create_app(services, AppOptions(plugins=runtime, response_cache=False))
    for c in runtime.sources():
        await services.registry.publish(admin, c.registration())
    await services.registry.set_enabled(admin, "healthy", "healthy", True)
    token, _ = await services.tokens.create("admin", [])
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=30) as client:

        async def ask(slug: str) -> float:
            body = {"query": QUERY, "variables": {"t": slug, "e": None}}
            started = time.perf_counter()
            response = await client.post("/graphql", json=body, headers=headers)
            response.raise_for_status()
            return time.perf_counter() - started

        async def healthy_median() -> float:
            return statistics.median([await ask("healthy") for _ in range(rounds)]) * 1000

        for _ in range(5):
            await ask("healthy")
        print(f"healthy tenant's median latency, {rounds} requests each (ms)")

        async def under_victim_load(enabled: str) -> float:
            for name in (*FAULTS, BENIGN):
                await services.registry.set_enabled(admin, "victim", name, name == enabled)
            stop = asyncio.Event()

            async def keep_asking() -> None:
                while not stop.is_set():
                    await ask("victim")

            pressure = [asyncio.create_task(keep_asking()) for _ in range(2)]
            await asyncio.sleep(0.3)
            median = await healthy_median()
            stop.set()
            await asyncio.gather(*pressure)
            return median

        for fault in FAULTS:
            normal = await under_victim_load(BENIGN)
            during = await under_victim_load(fault)
            ratio = during / normal
            print(f"  {fault:<15} normal {normal:7.1f}   during {during:7.1f}   x{ratio:.2f}")
    await runtime.close()
    await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    asyncio.run(prepare(url, 1000))
    root = tmp / "customizations"
    package(root, "healthy", "healthy", HEALTHY)
    package(root, BENIGN, "victim", HEALTHY)
    for fault, body in FAULTS.items():
        code = f"@hookimpl\ndef tailor_resolve_settings(values):\n    {body}\n    return None\n"
        package(root, fault, "victim", code)
    asyncio.run(run(url, root, args.rounds))


if __name__ == "__main__":
    main()
