"""Readiness time against the time to simply load the same rows, in the same run.

    python bench/readiness.py [--tenants 1000] [--customizations-per-tenant 10]
        [--database-url URL] [--repeat 5]

Builds a fresh database (a temporary SQLite file by default), registers the
product's releases and the planned 3.0, generates the fleet (tenants, overrides,
and customization registrations handed to readiness through a static provider),
then measures, alternating, the median of:

- load: the same statements readiness runs, rows fetched into Python;
- readiness: load + evaluation + unblock plan (the whole service call).

Point --database-url only at a scratch database: the bench migrates and fills it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from core.auth import Principal
from core.bootstrap import register_planned_releases, sync_product_releases
from core.db import count_statements, upgrade
from core.fleet import seed_fleet
from core.readiness_service import StaticRegistrations
from core.services import Services
from plugins.catalog import tailor_extension_points
from plugins.product import load_product

ADMIN = Principal.system("bench")


async def main(args: argparse.Namespace) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    await upgrade(url)
    services = Services.from_url(url)
    try:
        product = load_product()
        await sync_product_releases(services, product, tailor_extension_points)
        await register_planned_releases(services, product, tailor_extension_points)
        t0 = time.perf_counter()
        fleet = await seed_fleet(
            services, args.tenants, args.customizations_per_tenant, demo=product.demo
        )
        seeded = time.perf_counter() - t0
        services.readiness.registrations = StaticRegistrations(fleet.registrations, None)
        load_times, full_times = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            data = await services.readiness.load(ADMIN, "3.0")
            load_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with count_statements(services.engine) as counter:
                report = await services.readiness.readiness(ADMIN, "3.0")
            full_times.append(time.perf_counter() - t0)
        load, full = statistics.median(load_times), statistics.median(full_times)
        print(f"database: {url.split('://')[0]}")
        print(
            f"fleet: {len(data.tenants)} tenants, {len(data.overrides)} active overrides, "
            f"{len(fleet.registrations)} customizations "
            f"({args.customizations_per_tenant} enabled per tenant); seeded in {seeded:.2f}s"
        )
        print(f"SQL statements per readiness run: {counter.count}")
        print(f"load rows (median of {args.repeat}): {load * 1000:.1f} ms")
        print(f"readiness (median of {args.repeat}): {full * 1000:.1f} ms")
        print(f"ratio readiness / load: {full / load:.2f}")
        print(f"result: {report.counts}, {len(report.plan)} blocker groups in the unblock plan")
    finally:
        await services.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--customizations-per-tenant", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
