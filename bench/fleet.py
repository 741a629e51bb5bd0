"""Issue 12's P5 (and P3's statement counts) at fleet scale: readiness and
fold-back against the time to load the same rows, measured in the same run, and
every CLI format of a 10,000-tenant readiness report.

    python bench/fleet.py [--tenants 1000 10000] [--customizations-per-tenant 10]
        [--repeat 3] [--pg-customizations 50000] [--cli-tenants 10000] [--no-cli]

For each fleet size it builds a fresh database (a temporary SQLite file; and the
PostgreSQL database named by ``TAILOR_BENCH_PG_URL`` when set, which it EMPTIES:
point it only at a scratch database), registers the product's releases and the
planned 3.0, generates the fleet (tenants, overrides, customizations published to
the real registry), then measures, alternating, the median of:

- load: the very statements one run sent (recorded), executed again through
  SQLAlchemy Core and every row fetched into Python values: the time to load the
  same rows; measured twice, with the cyclic garbage collector on (as any code
  runs by default) and paused (as readiness and fold-back run, core/store/gcpause.py);
- readiness: ``TriageService.triaged`` for 3.0, the call behind ``readiness``
  (GraphQL), ``tailor readiness`` and the console's fleet page;
- fold-back: ``FoldbackService.candidates`` (the readiness of every planned
  release for the upgrade cost, then the analysis), and its own load likewise.

It prints statements per run, times, the ratio to the load, and across sizes the
time ratio against the size ratio (linear: close to it). On PostgreSQL it also
runs a fleet of ``--pg-customizations`` customizations (beyond the 32,767 bind
parameters one statement may carry).

Then, on the SQLite fleet of ``--cli-tenants`` tenants, it runs the real CLI
(``tailor readiness --target 3.0``) once per format, default (summary) and with
``--full``, each in its own process: wall time and peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.model.auth import Principal  # noqa: E402
from core.store.bootstrap import register_planned_releases, sync_product_releases  # noqa: E402
from core.store.db import upgrade  # noqa: E402
from core.store.fleet import seed_fleet  # noqa: E402
from core.store.gcpause import gc_paused  # noqa: E402
from core.store.services import Services  # noqa: E402
from plugins.catalog import tailor_extension_points  # noqa: E402
from plugins.product import load_product  # noqa: E402

ADMIN = Principal.system("bench")
TARGET = "3.0"


@dataclass
class Recorder:
    """Records the statements sent through an engine (as SQLAlchemy built them,
    their bound values inside)."""

    statements: list[Any] = field(default_factory=list)
    on: bool = False

    def __call__(
        self, _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, *_: Any
    ) -> None:
        if self.on and not statement.lstrip().upper().startswith(
            ("BEGIN", "PRAGMA", "COMMIT", "ROLLBACK")
        ):
            self.statements.append(context.invoked_statement)


async def fresh_database(url: str | None) -> str:
    if url is None:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'fleet.db'}"
    else:  # a scratch PostgreSQL database: emptied
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    await upgrade(url)
    return url


async def build(url: str | None, tenants: int, per_tenant: int) -> tuple[Services, str, float]:
    url = await fresh_database(url)
    services = Services.from_url(url)
    product = load_product()
    await sync_product_releases(services, product, tailor_extension_points)
    await register_planned_releases(services, product, tailor_extension_points)

    async def publish(registrations: Any) -> None:
        await services.registry.publish_many(ADMIN, registrations)

    start = time.perf_counter()
    await seed_fleet(services, tenants, per_tenant, demo=product.demo, publish=publish)
    return services, url, time.perf_counter() - start


async def replay(services: Services, statements: list[Any], paused: bool) -> int:
    """Execute the recorded statements again (SQLAlchemy Core on one connection),
    every row fetched as Python values (JSON decoded, dates parsed): loading the
    same rows, without building anything from them. ``paused``: with the cyclic
    garbage collector paused, as readiness and fold-back run (else as any code
    loading rows runs, the collector on)."""
    rows = 0
    with gc_paused() if paused else nullcontext():
        async with services.engine.connect() as conn:
            for statement in statements:
                result = await conn.execute(statement)
                rows += len(result.all())
    return rows


@dataclass
class Figure:
    name: str
    statements: int
    rows: int
    #: the rows loaded with the collector on (any code's default)
    load: float
    #: the rows loaded with the collector paused (as readiness runs)
    load_paused: float
    full: float

    @property
    def ratio(self) -> float:
        return self.full / self.load

    @property
    def ratio_paused(self) -> float:
        return self.full / self.load_paused


async def measure(
    services: Services, name: str, call: Callable[[], Awaitable[Any]], repeat: int
) -> Figure:
    recorder = Recorder()
    event.listen(services.engine.sync_engine, "before_cursor_execute", recorder)
    try:
        await call()  # warm: caches of releases and definitions
        recorder.on = True
        await call()
        recorder.on = False
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", recorder)
    statements = recorder.statements
    loads, paused, fulls, rows = [], [], [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = await replay(services, statements, paused=False)
        loads.append(time.perf_counter() - start)
        start = time.perf_counter()
        await replay(services, statements, paused=True)
        paused.append(time.perf_counter() - start)
        start = time.perf_counter()
        await call()
        fulls.append(time.perf_counter() - start)
    return Figure(
        name,
        len(statements),
        rows,
        statistics.median(loads),
        statistics.median(paused),
        statistics.median(fulls),
    )


async def fleet_figures(
    url: str | None, tenants: int, per_tenant: int, repeat: int
) -> tuple[list[Figure], dict[str, Any]]:
    services, url, seeded = await build(url, tenants, per_tenant)
    try:
        report = (await services.triage.triaged(ADMIN, TARGET)).report
        candidates = await services.foldback.candidates(ADMIN)
        info = {
            "url": url,
            "tenants": len(report.tenants),
            "customizations": len(await services.registry.list_all(ADMIN)),
            "enablements": sum(len(c.enabled_for) for c in report.customizations),
            "findings": sum(len(t.findings) for t in report.tenants),
            "counts": report.counts,
            "plan": len(report.plan),
            "candidates": len(candidates.candidates),
            "seeded": seeded,
        }
        del report, candidates  # measured with nothing else held
        readiness = await measure(
            services, "readiness", lambda: services.triage.triaged(ADMIN, TARGET), repeat
        )
        foldback = await measure(
            services, "fold-back", lambda: services.foldback.candidates(ADMIN), repeat
        )
        return [readiness, foldback], info
    finally:
        await services.close()


def show(db: str, info: dict[str, Any], figures: list[Figure]) -> None:
    print(
        f"  {db} {info['tenants']:,} tenants, {info['customizations']:,} customizations "
        f"({info['enablements']:,} enablements, {info['findings']:,} findings, "
        f"{info['plan']} unblock steps, {info['candidates']} fold-back candidates; "
        f"seeded in {info['seeded']:.1f} s)"
    )
    for f in figures:
        print(
            f"    {f.name:<10} {f.statements} statements, {f.rows:,} rows: "
            f"{f.name} {f.full * 1000:7.1f} ms; load {f.load * 1000:7.1f} ms "
            f"(ratio {f.ratio:.2f}), load with GC paused {f.load_paused * 1000:7.1f} ms "
            f"(ratio {f.ratio_paused:.2f})"
        )


def linearity(db: str, results: list[tuple[dict[str, Any], list[Figure]]]) -> None:
    if len(results) < 2:
        return
    (small, a), (large, b) = results[0], results[-1]
    size = large["tenants"] / small["tenants"]
    for fa, fb in zip(a, b, strict=True):
        print(
            f"  {db} {fa.name}: x{size:.0f} tenants -> time x{fb.full / fa.full:.1f} "
            f"(load x{fb.load / fa.load:.1f}); statements {fa.statements} -> {fb.statements}"
        )


def cli_figures(url: str, tenants: int) -> None:
    env = {**os.environ, "TAILOR_DATABASE_URL": url, "COLUMNS": "160"}
    tailor = Path(sys.executable).with_name("tailor")
    print(f"CLI, tailor readiness --target {TARGET} at {tenants:,} tenants (SQLite), own process:")
    for fmt in ("table", "json", "markdown", "html"):
        for extra in ((), ("--full",)):
            # as a release manager runs it: each run kept, compared with the previous one
            args = [str(tailor), "readiness", "--target", TARGET, "--format", fmt]
            args += extra
            start = time.perf_counter()
            with open(os.devnull, "wb") as sink:
                proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.PIPE, env=env)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                err = proc.stderr.read().decode() if proc.stderr else ""
            took = time.perf_counter() - start
            label = f"{fmt} {'--full' if extra else '(summary)'}"
            note = "" if proc.returncode in (0, 1) else f"  FAILED {proc.returncode}: {err[-300:]}"
            size = ""
            print(f"  {label:<20} {took:6.2f} s, peak {usage.ru_maxrss / 1024:7.1f} MB{size}{note}")


async def main(args: argparse.Namespace) -> None:
    pg = os.environ.get("TAILOR_BENCH_PG_URL")
    databases: list[tuple[str, str | None]] = [("sqlite", None)]
    if pg:
        databases.append(("postgresql", pg))
    print(f"P5 fleet readiness and fold-back, target {TARGET}, medians of {args.repeat}")
    cli_url = None
    for db, url in databases:
        results = []
        for n in args.tenants:
            figures, info = await fleet_figures(url, n, args.customizations_per_tenant, args.repeat)
            show(db, info, figures)
            results.append((info, figures))
            if db == "sqlite" and n == args.cli_tenants:
                cli_url = info["url"]
        linearity(db, results)
        if db == "postgresql" and args.pg_customizations:
            # the generator's pool: a quarter as many customizations as enablements
            n = args.pg_customizations * 4 // args.customizations_per_tenant
            figures, info = await fleet_figures(url, n, args.customizations_per_tenant, 1)
            show(db, info, figures)
    if not args.no_cli:
        if cli_url is None:
            services, cli_url, _ = await build(
                None, args.cli_tenants, args.customizations_per_tenant
            )
            await services.close()
        cli_figures(cli_url, args.cli_tenants)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--customizations-per-tenant", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-customizations", type=int, default=50_000)
    parser.add_argument("--cli-tenants", type=int, default=10_000)
    parser.add_argument("--no-cli", action="store_true")
    asyncio.run(main(parser.parse_args()))
