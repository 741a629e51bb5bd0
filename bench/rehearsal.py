"""Benchmark: upgrade rehearsal at fleet scale (issue 24).

Run by hand: ``python bench/rehearsal.py [--tenants 1000] [--customizations 10]
[--samples 5] [--concurrency 2] [--tracemalloc]``.

Builds a fresh SQLite database: the product's releases and its planned 3.0, a
generated fleet of ``--tenants`` tenants (``core/store/fleet.py``: releases and
overrides copied from the demo tenants), ``--customizations`` real packages
(written to a temporary folder, checked in workers and published with their
code, then enabled for every tenant in bulk), and ``--samples`` recorded inputs
of ``tailor_resolve_settings`` per (tenant, customization), each a fresh copy of
the tenant's real layered values, secrets removed (what recording keeps; served
a chunk of tenants at a time, as a store reads them).

Then it runs ``RehearsalService.rehearse`` for 3.0 over the whole fleet (the call
behind ``tailor upgrade rehearse`` and GraphQL ``rehearsal``) and prints its
wall time, calls per second, worker processes used, the findings, and peak
memory: the server process's peak resident set (``ru_maxrss``) before and after,
the workers' (``RUSAGE_CHILDREN``), and with ``--tracemalloc`` the peak of
Python allocations during the rehearsal (tracemalloc slows allocation: the time
of that run is not the figure).

``RegistryService.pinned_map`` (the runtime's, which the rehearsal reads too)
reads each pinned version once, not once per tenant pinned to it: before, with
each manifest listing every tenant, that one read peaked near 1 GiB here.

Baseline, measured in the same run: the same number of calls of one no-op hook
on the same values through one worker (``Trial.call``: the pipe round trip and
the by-value encoding, nothing else); the rehearsal's time per call is given as
a ratio to it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.wiring import attach  # noqa: E402
from core.model.auth import Principal  # noqa: E402
from core.model.samples import InputSample  # noqa: E402
from core.store.bootstrap import register_planned_releases, sync_product_releases  # noqa: E402
from core.store.db import upgrade  # noqa: E402
from core.store.fleet import PREFIX, seed_fleet  # noqa: E402
from core.store.services import Services  # noqa: E402
from plugins.catalog import Catalog, tailor_extension_points  # noqa: E402
from plugins.product import load_product  # noqa: E402
from plugins.runtime import PluginRuntime, RuntimeOptions  # noqa: E402
from plugins.runtime.rehearsal import RuntimeReplayer  # noqa: E402
from plugins.runtime.trial import Trial  # noqa: E402

ADMIN = Principal.system("bench")
TARGET = "3.0"
RESOLVE = "tailor_resolve_settings"
HEADER = 'import pluggy\n\nhookimpl = pluggy.HookimplMarker("tailor")\n\n'

#: the packages' behaviours, cycled: some the target breaks, most it does not
BEHAVIOURS = [
    # stable: reads a kept key, returns a valid choice
    """
    @hookimpl
    def tailor_resolve_settings(values):
        return {"ui.theme.mode": "dark" if values["billing.invoice.due_days"] >= 30 else "light"}
    """,
    # reads a key 3.0 renames (security.sso.metadata_url): fails there
    """
    @hookimpl
    def tailor_resolve_settings(values):
        url = values["security.sso.metadata_url"]
        return {"security.sso.provider": "saml" if url else "none"}
    """,
    # arithmetic on a default
    """
    @hookimpl
    def tailor_resolve_settings(values):
        return {"orders.lines.max_count": min(5000, values["ui.table.page_size"] * 4)}
    """,
    # a constant
    """
    @hookimpl
    def tailor_resolve_settings(values):
        return {"orders.discount.max_percent": 15.0}
    """,
    # a rule on a currency
    """
    @hookimpl
    def tailor_resolve_settings(values):
        if values.get("billing.currency.default") == "EUR":
            return {"billing.invoice.rounding": "half_even"}
        return {}
    """,
    # scans every value
    """
    @hookimpl
    def tailor_resolve_settings(values):
        numbers = sum(1 for v in values.values() if isinstance(v, int))
        return {"reporting.cache.ttl_seconds": 60 * (1 + numbers % 10)}
    """,
]


def write_packages(root: Path, count: int, tenants: Sequence[str]) -> list[str]:
    names = []
    listed = "[" + ", ".join(f'"{t}"' for t in tenants) + "]"
    for i in range(count):
        name = f"bench-c{i:02d}"
        path = root / name.replace("-", "_")
        path.mkdir(parents=True)
        (path / "__init__.py").write_text("")
        (path / "customization.toml").write_text(
            f'name = "{name}"\ntenants = {listed}\nversion = "1.0.0"\nrequires = ">=1.0"\n'
        )
        body = textwrap.dedent(BEHAVIOURS[i % len(BEHAVIOURS)])
        (path / "hooks.py").write_text(HEADER + body)
        names.append(name)
    return names


class FleetSamples:
    """The recorded inputs, served a chunk of tenants at a time: each a fresh
    copy of the tenant's layered values (as a store decrypts each sample)."""

    def __init__(self, values: dict[str, dict[str, Any]], names: list[str], per: int) -> None:
        self.values = values
        self.names = names
        self.per = per
        self.served = 0

    async def samples(self, tenants: Sequence[str] | None = None) -> list[InputSample]:
        out = []
        when = datetime(2026, 12, 1, tzinfo=UTC)
        for tenant in tenants if tenants is not None else list(self.values):
            for name in self.names:
                for k in range(self.per):
                    out.append(
                        InputSample(
                            id=f"smp-{tenant}-{name}-{k}",
                            tenant=tenant,
                            environment=None,
                            customization=name,
                            version="1.0.0",
                            hook=RESOLVE,
                            inputs={
                                "tenant": tenant,
                                "environment": None,
                                "values": dict(self.values[tenant]),
                            },
                            recorded_at=when,
                        )
                    )
        self.served += len(out)
        return out


def baseline(runtime: PluginRuntime, package: Path, values: dict[str, Any], calls: int) -> float:
    """Seconds for ``calls`` calls of a no-op hook on ``values`` through one worker."""
    noop = package.parent / "bench_noop"
    noop.mkdir()
    (noop / "__init__.py").write_text("")
    (noop / "customization.toml").write_text(
        'name = "bench-noop"\ntenants = ["noop"]\nversion = "1.0.0"\nrequires = ">=1.0"\n'
    )
    (noop / "hooks.py").write_text(
        HEADER + "@hookimpl\ndef tailor_resolve_settings(values):\n    return {}\n"
    )
    trial = Trial(noop, runtime.catalog, runtime.options.release or "", 5.0)
    try:
        trial.open()
        kwargs = {"tenant": "noop", "environment": None, "values": values}
        start = time.perf_counter()
        for _ in range(calls):
            trial.call(RESOLVE, {**kwargs, "values": dict(values)})
        return time.perf_counter() - start
    finally:
        trial.close()


def rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def vm_mib(field: str = "VmRSS") -> float:
    """This process's resident set now (VmRSS) or its peak so far (VmHWM), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="tailor-bench-rehearsal-"))
    os.environ.setdefault("TAILOR_CACHE_DIR", str(work / "cache"))
    url = f"sqlite+aiosqlite:///{work / 'rehearsal.db'}"
    await upgrade(url)
    services = Services.from_url(url)
    product = load_product()
    start = time.perf_counter()
    await sync_product_releases(services, product, tailor_extension_points)
    await register_planned_releases(services, product, tailor_extension_points)
    await seed_fleet(services, args.tenants, 0, demo=product.demo)
    slugs = [f"{PREFIX}{i:05d}" for i in range(1, args.tenants + 1)]
    names = write_packages(work / "packages", args.customizations, slugs)
    runtime = PluginRuntime.load(
        RuntimeOptions(
            directories=[work / "packages"], path_env="", use_entry_points=False, hook_timeout=2.0
        ),
        Catalog.for_product(product),
    )
    registrations = []
    for loaded in runtime.sources():
        registrations.append(await services.registry.publish(ADMIN, loaded.registration()))
    await services.registry.publish_many(
        ADMIN, [dataclasses.replace(r, enabled_for=tuple(slugs)) for r in registrations]
    )
    values: dict[str, dict[str, Any]] = {}
    for slug in slugs:
        layered = await services.settings.layered(ADMIN, slug)
        values[slug] = {s.key: s.value for s in layered.settings if not s.definition.secret}
    source = FleetSamples(values, names, args.samples)
    attach(services, runtime)
    services.rehearsal.samples = source
    services.rehearsal.replayer = RuntimeReplayer(runtime, concurrency=args.concurrency)
    built = time.perf_counter() - start
    print(
        f"fleet: {args.tenants:,} tenants x {args.customizations} customizations x "
        f"{args.samples} samples ({len(registrations)} published, built in {built:.1f} s)"
    )

    rss_before = rss_mib()
    start = time.perf_counter()
    report = await services.rehearsal.rehearse(ADMIN, TARGET)
    elapsed = time.perf_counter() - start
    rss_after = rss_mib()
    findings = sum(len(t.findings) for t in report.tenants)
    by_code: dict[str, int] = {}
    for t in report.tenants:
        for f in t.findings:
            by_code[f.code.value] = by_code.get(f.code.value, 0) + 1
    print(
        f"rehearsal of {TARGET}: {report.replays:,} samples, {report.calls:,} calls in "
        f"{elapsed:.1f} s ({report.calls / elapsed:,.0f} calls/s, "
        f"{elapsed / max(report.calls, 1) * 1000:.2f} ms per call), "
        f"{report.workers} workers, concurrency {args.concurrency}"
    )
    print(f"findings: {findings:,} {by_code}")
    print("confidence: " + ", ".join(f"{c.name} {c.confidence:.0%}" for c in report.customizations))
    print(
        f"peak RSS, server process: {rss_before:.0f} MiB before, {rss_after:.0f} MiB after "
        f"({vm_mib():.0f} MiB resident at the end); largest child process so far "
        f"(workers, and the checks at publish): {rss_mib(resource.RUSAGE_CHILDREN):.0f} MiB"
    )
    sample_values = next(iter(values.values()))
    calls = min(report.calls, args.baseline_calls)
    base = baseline(runtime, work / "packages" / "x", sample_values, calls)
    per_base = base / calls
    per_call = elapsed / max(report.calls, 1)
    print(
        f"baseline: {calls:,} no-op calls on the same values through one worker: "
        f"{base:.1f} s ({per_base * 1000:.2f} ms per call); rehearsal per call / baseline "
        f"per call: {per_call / per_base:.2f} (with {args.concurrency} workers side by side)"
    )
    if args.tracemalloc:
        tracemalloc.start()
        await services.rehearsal.rehearse(ADMIN, TARGET)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"tracemalloc: peak Python allocations during a rehearsal {peak / 2**20:.0f} MiB")
    await runtime.close()
    await services.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--customizations", type=int, default=10)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--baseline-calls", type=int, default=5000)
    parser.add_argument("--tracemalloc", action="store_true")
    asyncio.run(main(parser.parse_args()))
