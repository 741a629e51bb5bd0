"""invokeExtension: the host product's call into a tenant's customizations, over
GraphQL (the real ASGI app, in process, through httpx) against calling the plugin
runtime directly (the baseline), measured in the same run.

    python bench/invoke_extension.py [--calls 500] [--customizations 1 5]

Builds a temporary SQLite database with the sample product, one tenant and K
enabled customizations implementing ``acme_invoice_footer``; prints the median
and p95 per call and the ratio GraphQL / direct for each K.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from api.http.app import AppOptions, create_app
from core.model.auth import Principal, Role
from core.store.bootstrap import sync_product_releases
from core.store.db import upgrade
from core.store.services import Services
from plugins.catalog import Catalog, tailor_extension_points
from plugins.product import load_product
from plugins.runtime import PluginRuntime, RuntimeOptions

ADMIN = Principal.system("bench")
QUERY = """mutation($a: JSON!) { invokeExtension(tenant: "bench", hook: "acme_invoice_footer",
  args: $a) { ... on ExtensionCall { results { customization result } failures { message } } } }"""
ARGS = {"invoice": {"number": "INV-1", "total": 10.0}}


def write_customizations(root: Path, count: int) -> Path:
    for i in range(count):
        package = root / f"footer_{i}"
        package.mkdir(parents=True)
        (package / "customization.toml").write_text(
            f'name = "footer-{i}"\nversion = "1.0.0"\ntenants = ["bench"]\nrequires = ">=1.0"\n'
        )
        (package / "hooks.py").write_text(
            "import pluggy\n\nhookimpl = pluggy.HookimplMarker('tailor')\n\n\n@hookimpl\n"
            f"def acme_invoice_footer(invoice):\n    return 'footer {i} ' + invoice['number']\n"
        )
    return root


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95)] * 1000


async def measure(customizations: int, calls: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await upgrade(url)
    product = load_product()
    services = Services.from_url(url)
    await sync_product_releases(services, product, tailor_extension_points)
    await services.tenants.create(ADMIN, "bench", "Bench", product.version)
    runtime = PluginRuntime.load(
        RuntimeOptions(
            directories=[write_customizations(tmp / "c", customizations)],
            path_env="",
            use_entry_points=False,
        ),
        Catalog.for_product(product),
    )
    app = create_app(services, AppOptions(plugins=runtime), product=product)
    for loaded in runtime.sources():
        await services.registry.publish(ADMIN, loaded.registration())
        await services.registry.set_enabled(ADMIN, "bench", loaded.name, True)
    token, _ = await services.tokens.create(Role.HOST, ["bench"])
    kwargs = {"tenant": "bench", **ARGS}
    direct, graphql = [], []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        headers = {"Authorization": f"Bearer {token}"}
        body = {"query": QUERY, "variables": {"a": ARGS}}
        first = (await client.post("/graphql", json=body, headers=headers)).json()
        results = first["data"]["invokeExtension"]["results"]
        assert len(results) == customizations, first
        for _ in range(calls):  # interleaved, so both see the same machine load
            t0 = time.perf_counter()
            found, failed = await runtime.call_extension("bench", "acme_invoice_footer", kwargs)
            direct.append(time.perf_counter() - t0)
            assert len(found) == customizations and not failed
            t0 = time.perf_counter()
            response = await client.post("/graphql", json=body, headers=headers)
            graphql.append(time.perf_counter() - t0)
            assert response.status_code == 200
    await runtime.close()
    await services.close()
    d50, d95 = summary(direct)
    g50, g95 = summary(graphql)
    print(
        f"{customizations} customization(s): direct median {d50:.3f} ms (p95 {d95:.3f}), "
        f"invokeExtension median {g50:.3f} ms (p95 {g95:.3f}), ratio {g50 / d50:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--customizations", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args()
    for count in args.customizations:
        asyncio.run(measure(count, args.calls))


if __name__ == "__main__":
    main()
