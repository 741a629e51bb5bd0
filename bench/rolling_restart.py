"""Benchmark: a rolling restart behind nginx under steady load (issue 25).

Run by hand from the repository root, with PostgreSQL and Debian's nginx:

    TAILOR_BENCH_PG_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        python bench/rolling_restart.py [--clients 8] [--workers 2] [--rounds 1]

Makes a scratch database on that server (dropped at the end), starts two
`tailor serve --workers N` nodes, each in its own directory on its own port,
behind nginx running the shipped deploy/nginx.conf, and sends the settings query
from ``--clients`` clients through nginx while the two nodes are restarted one
after the other (SIGTERM, drain, start, ready), ``--rounds`` times. Prints the
requests sent and failed, and the throughput while restarting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault(
    "TAILOR_SECRET_KEY", __import__("cryptography.fernet").fernet.Fernet.generate_key().decode()
)

from core.model.auth import Principal, Role  # noqa: E402
from core.store.bootstrap import sync_product_releases  # noqa: E402
from core.store.services import Services  # noqa: E402
from plugins.catalog import tailor_extension_points  # noqa: E402
from plugins.product import load_product  # noqa: E402
from tests.conftest import scratch_postgres_database  # noqa: E402
from tests.ops.cluster import (  # noqa: E402
    LOAD_ENV,
    Load,
    nginx,
    nginx_missing,
    rolling_restart,
    steady_load,
)
from tests.servers import start_node  # noqa: E402


async def main(clients: int, workers: int, rounds: int) -> int:
    base = os.environ.get("TAILOR_BENCH_PG_URL")
    if not base:
        print("set TAILOR_BENCH_PG_URL to a PostgreSQL server (a scratch database is made)")
        return 2
    missing = nginx_missing()
    if missing:
        print(missing)
        return 2
    args = ("--workers", str(workers))
    async with scratch_postgres_database(base, "tailor_bench_rolling") as (url, _name):
        services = Services.from_url(url)
        try:
            admin = Principal.system("bench")
            await sync_product_releases(services, load_product(), tailor_extension_points)
            await services.tenants.create(admin, "acme", "Acme", "2.0")
            token, _ = await services.tokens.create(Role.ADMIN, label="bench")
        finally:
            await services.close()
        home = Path(tempfile.mkdtemp(prefix="tailor-rolling-"))
        if True:
            nodes = list(
                await asyncio.gather(
                    start_node(home / "a", url, *args, probe="/readyz", limit=180, env=LOAD_ENV),
                    start_node(home / "b", url, *args, probe="/readyz", limit=180, env=LOAD_ENV),
                )
            )
            try:
                async with nginx([n.port for n in nodes], home / "nginx") as proxy:
                    load = Load()
                    stop = asyncio.Event()
                    task = asyncio.create_task(steady_load(proxy.url, token, clients, stop, load))
                    await asyncio.sleep(2.0)
                    before, started = load.sent, time.monotonic()
                    for _ in range(rounds):
                        await rolling_restart(nodes, url, *args)
                    seconds = time.monotonic() - started
                    during = load.sent - before
                    stop.set()
                    await task
            finally:
                for node in nodes:
                    await node.stop(limit=60)
    print(f"nodes: 2 x --workers {workers}; clients: {clients}; rolling restarts: {rounds}")
    print(f"requests sent: {load.sent}")
    print(f"requests failed: {load.failed}")
    print(f"while restarting: {during} requests in {seconds:.1f} s ({during / seconds:.0f}/s)")
    for why in load.failures[:5]:
        print(f"  failed: {why[:120]!r}")
    if load.failed:
        print(f"nodes' and nginx's logs kept in {home}")
        return 1
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.clients, options.workers, options.rounds)))
