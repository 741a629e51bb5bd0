"""Fold-back analysis time at two fleet sizes, measured in the same run.

    python bench/foldback.py [--tenants 500 1000] [--customizations-per-tenant 10]
        [--repeat 5]

For each size, builds a fresh SQLite database (product releases, the planned 3.0,
a generated fleet whose customization registrations are published to the real
registry), then measures the median of:

- analysis: :func:`core.foldback.analyze` over data already loaded (pure);
- service: ``services.foldback.candidates`` (load registrations, overrides,
  catalog and releases; readiness of every planned release for the upgrade cost;
  analysis).

It prints each time per customization and the ratio of times against the ratio of
sizes: roughly linear means the time ratio is close to the size ratio.
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
from core.db import upgrade
from core.fleet import seed_fleet
from core.foldback import OverrideFact, analyze
from core.services import Services
from plugins.catalog import tailor_extension_points
from plugins.product import load_product

ADMIN = Principal.system("bench")


async def measure(tenants: int, per_tenant: int, repeat: int) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'foldback.db'}"
    await upgrade(url)
    services = Services.from_url(url)
    try:
        product = load_product()
        await sync_product_releases(services, product, tailor_extension_points)
        await register_planned_releases(services, product, tailor_extension_points)

        async def publish(registrations):
            await services.registry.publish_many(ADMIN, registrations)

        await seed_fleet(services, tenants, per_tenant, demo=product.demo, publish=publish)
        registrations = await services.registry.list_all(ADMIN)
        report = await services.foldback.candidates(ADMIN)
        blockers = await services.readiness.blockers_by_customization()
        async with services.sessions() as session:
            from sqlalchemy import select

            from core.models import Override, Tenant

            rows = (
                await session.execute(
                    select(Tenant.slug, Override.environment, Override.key, Override.value)
                    .join(Tenant, Tenant.id == Override.tenant_id)
                    .where(Override.active.is_(True))
                )
            ).all()
        overrides = [OverrideFact(s, e or None, k, v) for s, e, k, v in rows]
        defaults = {
            d.key: d.default
            for d in await services.releases.definitions("2.0", ADMIN)
            if not d.secret
        }
        pure, full = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            analyze(registrations, overrides, defaults, blockers=blockers)
            pure.append(time.perf_counter() - start)
            start = time.perf_counter()
            await services.foldback.candidates(ADMIN)
            full.append(time.perf_counter() - start)
        return {
            "tenants": tenants,
            "customizations": len(registrations),
            "enablements": sum(len(r.enabled_for) for r in registrations),
            "overrides": len(overrides),
            "candidates": len(report.candidates),
            "analysis": statistics.median(pure),
            "service": statistics.median(full),
        }
    finally:
        await services.close()


async def main(args: argparse.Namespace) -> None:
    results = [await measure(n, args.customizations_per_tenant, args.repeat) for n in args.tenants]
    for r in results:
        print(
            f"{r['tenants']:>6} tenants  {r['customizations']:>6} customizations "
            f"({r['enablements']} enablements, {r['overrides']} overrides, "
            f"{r['candidates']} candidates): analysis {r['analysis'] * 1000:8.1f} ms, "
            f"service {r['service'] * 1000:8.1f} ms"
        )
    small, large = results[0], results[-1]
    size = large["enablements"] / small["enablements"]
    print(f"size ratio (enablements): {size:.2f}")
    print(f"time ratio, analysis: {large['analysis'] / small['analysis']:.2f}")
    print(f"time ratio, service:  {large['service'] / small['service']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--customizations-per-tenant", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
