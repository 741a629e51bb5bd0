"""Benchmark: published customizations (issue 19's figures).

Run by hand: ``python bench/published.py [--rounds 5] [--postgres URL]``.

1. Publishing a 100-file package on SQLite (zip, validate, check in a fresh
   worker, store), against a 1-file package in the same run. Goal: <= 1 s.
2. Materializing a version in a new process: a fresh interpreter reads the
   package from the database, verifies it and writes it into an empty cache
   (measured inside the child, after its imports). Goal: <= 200 ms.
3. Start-up with 100 published customizations pinned for one tenant: a new
   server's runtime (an empty cache) answering that tenant's first ``settings``
   (materializes 100 versions, then runs them), against its second answer.
   Goal: <= 2 s. Also the cache's size on disk and the server's resident memory.
4. With ``--postgres URL``: published-to-served across two ``tailor serve``
   processes in separate directories sharing only the database: publish to the
   first over HTTP, poll the second until it serves the version. Goal: <= 2 s.

Every figure is a median over ``--rounds``; ratios are against a baseline taken in
the same run, since this machine's speed varies (2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import scratch_database, secret_key  # bench/scratch.py

from api.wiring import attach
from core.model.auth import Principal, Role
from core.store.bootstrap import sync_product_releases
from core.store.db import upgrade
from core.store.services import Services
from plugins import archive
from plugins.catalog import Catalog, tailor_extension_points
from plugins.product import load_product
from plugins.runtime import PluginRuntime, RuntimeOptions

ADMIN = Principal.system("bench")
REPO = Path(__file__).resolve().parent.parent
HOOK = """import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    if "ui.theme.mode" in values:
        return {{"ui.theme.mode": "{mode}"}}
    return None
"""


def package(root: Path, name: str, version: str, files: int, tenants: list[str]) -> Path:
    path = root / f"{name}-{version}"
    path.mkdir(parents=True)
    listed = ", ".join(f'"{t}"' for t in tenants)
    (path / "customization.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\ntenants = [{listed}]\nrequires = ">=1.0"\n'
    )
    (path / "hooks.py").write_text(HOOK.format(mode="dark"))
    for i in range(files - 2):
        sub = path / "rules" / f"part{i // 20}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"rule_{i:03d}.py").write_text(f"RULE_{i} = {i!r}\n" + "# padding\n" * 40)
    return path


async def services_on(url: str) -> Services:
    await upgrade(url)
    services = Services.from_url(url)
    await sync_product_releases(services, load_product(), tailor_extension_points)
    return services


async def publish_figures(root: Path, rounds: int) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{root / 'publish.db'}"
    services = await services_on(url)
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    catalog = Catalog.for_product(load_product())
    runtime = PluginRuntime(catalog, RuntimeOptions(cache_dir=root / "cache"))
    attach(services, runtime)
    times: dict[int, list[float]] = {1: [], 100: []}
    try:
        for r in range(rounds):
            for files in (2, 100):  # a manifest and hooks.py: the smallest package
                path = package(root / "src", f"p{files}", f"1.0.{r}", files, ["acme"])
                started = time.perf_counter()
                await runtime.publish(ADMIN, path)
                times[1 if files == 2 else 100].append(time.perf_counter() - started)
    finally:
        await runtime.close()
        await services.close()
    small, large = statistics.median(times[1]), statistics.median(times[100])
    return {"publish_2_files_s": small, "publish_100_files_s": large, "ratio": large / small}


CHILD = """
import asyncio, sys, time, json
from pathlib import Path
from core.store.services import Services
from plugins import archive

async def main(url, sha, cache):
    started = time.perf_counter()
    services = Services.from_url(url)
    data = (await services.registry.artifacts([sha]))[sha]
    tree = archive.read_zip(data, len(data))
    assert tree.sha256 == sha
    path = archive.materialize(tree, Path(cache))
    assert archive.verify(path, sha)
    elapsed = time.perf_counter() - started
    await services.close()
    print(json.dumps({"s": elapsed}))

asyncio.run(main(*sys.argv[1:4]))
"""


async def materialize_figures(root: Path, rounds: int) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{root / 'publish.db'}"
    services = Services.from_url(url)
    versions = await services.registry.versions(ADMIN, "p100")
    await services.close()
    sha = versions[0].sha256
    assert sha is not None
    times = []
    for r in range(rounds):
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", CHILD, url, sha, str(root / f"fresh-cache-{r}")],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["s"])
    return {"materialize_100_files_new_process_s": statistics.median(times)}


async def startup_figures(root: Path, rounds: int, count: int = 100) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{root / 'startup.db'}"
    services = await services_on(url)
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    catalog = Catalog.for_product(load_product())
    publisher = PluginRuntime(catalog, RuntimeOptions(cache_dir=root / "publisher-cache"))
    attach(services, publisher)
    for n in range(count):
        path = package(root / "many", f"c{n:03d}", "1.0.0", 2, ["acme"])
        await publisher.publish(ADMIN, path)
        await services.registry.set_enabled(ADMIN, "acme", f"c{n:03d}", True)
    await publisher.close()
    first, second, disk, rss = [], [], 0, 0
    for r in range(rounds):
        cache = root / f"server-cache-{r}"
        runtime = PluginRuntime(catalog, RuntimeOptions(cache_dir=cache, hook_timeout=30))
        attach(services, runtime)
        try:
            started = time.perf_counter()
            result = await services.settings.resolve(ADMIN, "acme", keys=["ui.theme.mode"])
            first.append(time.perf_counter() - started)
            assert not result.failures, result.failures[:3]
            started = time.perf_counter()
            await services.settings.resolve(ADMIN, "acme", keys=["ui.theme.mode"])
            second.append(time.perf_counter() - started)
        finally:
            await runtime.close()
        disk = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    await services.close()
    return {
        "first_settings_100_pinned_s": statistics.median(first),
        "second_settings_100_pinned_s": statistics.median(second),
        "ratio_first_to_second": statistics.median(first) / statistics.median(second),
        "cache_disk_kib_100_versions": disk / 1024,
        "server_max_rss_mib": float(rss),
    }


def serve(home: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``tailor serve`` in its own directory (its own cache), logging to a file."""
    home.mkdir()
    with (home / "serve.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli.main", "serve", "--port", str(port)],
            cwd=home,
            env={**env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=log,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def two_server_figures(root: Path, rounds: int, base_url: str) -> dict[str, float]:
    async with scratch_database(base_url, "tailor_bench") as url:
        return await _two_servers(root, rounds, url)


async def _two_servers(root: Path, rounds: int, url: str) -> dict[str, float]:
    import httpx

    processes = []
    try:
        services = await services_on(url)
        await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
        token, _ = await services.tokens.create(Role.ADMIN)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
        env.update(
            TAILOR_DATABASE_URL=url, TAILOR_SECRET_KEY=os.environ.get("TAILOR_SECRET_KEY", "")
        )
        env = {k: v for k, v in env.items() if v}
        urls = []
        for home in ("a", "b"):
            port = free_port()
            processes.append(await asyncio.to_thread(serve, root / home, port, env))
            urls.append(f"http://127.0.0.1:{port}")
        query = (
            '{ settings(tenant: "acme", keys: ["ui.theme.mode"]) '
            "{ ... on Settings { items { value source } } } }"
        )
        publish = (
            "mutation($a: Upload!) { publishCustomization(archive: $a, enable: true) "
            "{ __typename ... on Error { message } } }"
        )
        headers = {"Authorization": f"Bearer {token}"}
        latencies = []
        async with httpx.AsyncClient(timeout=30) as client:
            for u in urls:
                for _ in range(150):
                    try:
                        if (await client.get(f"{u}/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)
            for r in range(rounds):
                path = package(root / "two", f"t{r}", "1.0.0", 2, ["acme"])
                data = archive.build_zip(archive.tree_from_directory(path))
                # the tenant runs one customization at a time: the previous one off
                if r:
                    await services.registry.set_enabled(ADMIN, "acme", f"t{r - 1}", False)
                started = time.perf_counter()
                answer = await client.post(
                    f"{urls[0]}/graphql",
                    data={
                        "operations": json.dumps({"query": publish, "variables": {"a": None}}),
                        "map": json.dumps({"0": ["variables.a"]}),
                    },
                    files={"0": ("p.zip", data, "application/zip")},
                    headers=headers,
                )
                published = time.perf_counter()
                assert (
                    answer.json()["data"]["publishCustomization"]["__typename"] == "Customization"
                ), answer.text
                while True:
                    body = (
                        await client.post(
                            f"{urls[1]}/graphql", json={"query": query}, headers=headers
                        )
                    ).json()
                    if body["data"]["settings"]["items"][0]["source"] == f"CUSTOMIZATION:t{r}":
                        break
                    if time.perf_counter() - published > 30:
                        raise AssertionError("the second server never served the version")
                    await asyncio.sleep(0.05)
                latencies.append(time.perf_counter() - published)
                del started
        await services.close()
        return {"published_to_served_other_server_s": statistics.median(latencies)}
    finally:
        for p in processes:
            p.terminate()
            p.wait(timeout=10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", help="e.g. postgresql+asyncpg://postgres@127.0.0.1/test")
    args = parser.parse_args()
    secret_key()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        figures = await publish_figures(root, args.rounds)
        figures |= await materialize_figures(root, args.rounds)
        figures |= await startup_figures(root, max(1, args.rounds // 2))
        if args.postgres:
            figures |= await two_server_figures(root, args.rounds, args.postgres)
    for key, value in figures.items():
        print(f"{key:40} {value:10.3f}")


if __name__ == "__main__":
    asyncio.run(main())
