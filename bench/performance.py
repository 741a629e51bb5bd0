"""Benchmark: issue 12's six figures, each with its baseline and ratio.

Run by hand from the repository root::

    python bench/performance.py [--settings 1000] [--seconds 3] [--rounds 2]
        [--postgres-url postgresql+asyncpg://USER@HOST/SCRATCH_DB] [--p6-seconds 5]

P1, P2 and P4 are measured by ``bench/static_settings.py`` (SQLite; see its
docstring: the servers and the load generator each run in their own process,
alternating runs). **P3** (statements per request constant whatever the data size)
is a property, not a timing: the bench runs the tests that assert it with a
statement counter (100 vs 5,000 settings; 10 vs 1,000 tenants) and prints their
verdict. **P5** runs ``bench/fleet.py`` (fleet readiness and fold-back against
loading the same rows; ``--fleet-args`` passes it options, e.g. ``"--tenants 1000
--no-cli"`` for a short run).

**P6** (with ``--postgres-url``, or ``TAILOR_BENCH_POSTGRES_URL``): the real
``tailor serve --workers 1`` and ``--workers 2`` on that PostgreSQL database (the
bench EMPTIES and fills it: point it at a scratch database only), alternating
(1, 2, 1, 2), 16 concurrent keep-alive clients from one load-generator process,
on two workloads:

* *warm*: the cached ``settings`` answer of P1 (each request is cheap for the
  server, so the load generator's own CPU weighs most);
* *cold*: a new document every request (the server's work dominates).

The machine has 2 cores, shared by the server's workers, the load generator and
PostgreSQL itself (and whatever else runs). So besides requests/s, the bench
reads from ``/proc`` the CPU seconds used during each run by the server's
processes (uvicorn's and its workers'), by the PostgreSQL backends serving its
database (``pg_stat_activity``; the server runs on this machine), by the
generator, and by the whole machine, and prints requests per server CPU-second:
if that stays the same with 2 workers, the workers scale linearly and what is
missing to 2x is the cores that the generator, PostgreSQL and other work took.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from settings_query import QUERY, prepare
from static_settings import (
    free_port,
    load_with_cpu,
    measure,
    report,
    request_bytes,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
TAILOR = Path(sys.executable).with_name("tailor")
P6_VERSION = "90.0"
P6_CLIENTS = 16
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU of a process tree, from /proc --------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (those still alive)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def postgres_backends(url: str) -> list[int]:
    """Process ids of the PostgreSQL server's backends serving ``url``'s database
    (the server runs on this machine: their CPU is read from /proc too)."""

    async def ask() -> list[int]:
        import asyncpg
        from sqlalchemy.engine import make_url

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return [r[0] for r in rows]

    return asyncio.run(ask())


# -- P6 -----------------------------------------------------------------------------
async def _empty(url: str) -> None:
    from core.store.db import create_engine, upgrade
    from core.store.models import Base

    await upgrade(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    await engine.dispose()


def start_serve(url: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TAILOR_RATE_LIMIT_PER_MINUTE": str(10**9),
        "TAILOR_RATE_LIMIT_BURST": str(10**9),
    }
    proc = subprocess.Popen(
        [
            str(TAILOR),
            "serve",
            "--workers",
            str(workers),
            "--port",
            str(port),
            "--database-url",
            url,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(port)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Run:
    workers: int
    requests: int
    seconds: float
    server_cpu: float
    generator_cpu: float
    machine_cpu: float
    postgres_cpu: float
    per_process_cpu: list[float]

    @property
    def others_cpu(self) -> float:
        """CPU the machine spent on neither the server, its PostgreSQL backends nor
        the generator: other work on the machine."""
        return self.machine_cpu - self.server_cpu - self.generator_cpu - self.postgres_cpu

    @property
    def per_serving_cpu_second(self) -> float:
        """Requests per CPU-second of the server and its PostgreSQL backends."""
        used = self.server_cpu + self.postgres_cpu
        return self.requests / used if used else float("nan")

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.requests / self.server_cpu if self.server_cpu else float("nan")


def p6_run(url: str, token: str, workers: int, cold: bool, seconds: float) -> Run:
    port = free_port()
    proc = start_serve(url, workers, port)
    try:
        body = lambda salt: orjson.dumps(  # noqa: E731
            {"query": QUERY + salt, "variables": {"t": "bench", "e": None}}
        )
        warm = [request_bytes(port, body(""), token)]
        # every worker answers (and caches) once before the clock starts
        load_with_cpu(port, warm, P6_CLIENTS, 1.0)
        stamp = time.time_ns()
        raws = (
            [request_bytes(port, body(f"\n# {stamp} {i}"), token) for i in range(20_000)]
            if cold
            else warm
        )
        pids = tree(proc.pid)
        backends = {pid: cpu_seconds([pid]) for pid in postgres_backends(url)}
        before = [cpu_seconds([p]) for p in pids]
        latencies, generator_cpu, busy = load_with_cpu(port, raws, P6_CLIENTS, seconds)
        after = [cpu_seconds([p]) for p in pids]
        postgres_cpu = sum(
            cpu_seconds([pid]) - backends.get(pid, 0.0)
            for pid in set(backends) | set(postgres_backends(url))
            if Path(f"/proc/{pid}").exists()
        )
    finally:
        stop(proc)
    used = [a - b for a, b in zip(after, before, strict=True)]
    return Run(workers, len(latencies), seconds, sum(used), generator_cpu, busy, postgres_cpu, used)


def measure_p6(url: str, seconds: float, settings: int, rounds: int) -> dict[str, list[Run]]:
    asyncio.run(_empty(url))
    token = asyncio.run(prepare(url, settings, version=P6_VERSION))
    runs: dict[str, list[Run]] = {}
    for workload in ("warm", "cold"):
        for _ in range(rounds):  # alternate: 1, 2, 1, 2
            for workers in (1, 2):
                run = p6_run(url, token, workers, workload == "cold", seconds)
                runs.setdefault(f"{workload}{workers}", []).append(run)
    return runs


def report_p6(runs: dict[str, list[Run]]) -> None:
    def median(name: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs[name])

    for workload in ("warm", "cold"):
        one, two = f"{workload}1", f"{workload}2"
        r1, r2 = median(one, "rate"), median(two, "rate")
        secs = runs[one][0].seconds
        cores = 2 * secs
        busiest = max(runs[two], key=lambda r: r.rate)
        print(
            f"P6 {workload}, {P6_CLIENTS} clients: 2 workers {r2:7.0f} req/s   1 worker "
            f"{r1:7.0f} req/s   ratio {r2 / r1:.2f}  (goal >= 1.8)"
        )
        print(
            f"   CPU-seconds per {secs:.0f} s run (1 worker / 2 workers, of {cores:.0f} on 2 "
            "cores): server "
            f"{median(one, 'server_cpu'):.1f} / {median(two, 'server_cpu'):.1f}, its PostgreSQL "
            f"backends {median(one, 'postgres_cpu'):.1f} / {median(two, 'postgres_cpu'):.1f}, "
            f"load generator {median(one, 'generator_cpu'):.1f} / "
            f"{median(two, 'generator_cpu'):.1f}, other work on the machine "
            f"{median(one, 'others_cpu'):.1f} / {median(two, 'others_cpu'):.1f}"
        )
        c1, c2 = median(one, "per_cpu_second"), median(two, "per_cpu_second")
        s1, s2 = median(one, "per_serving_cpu_second"), median(two, "per_serving_cpu_second")
        print(
            f"   requests per server CPU-second {c1:.0f} / {c2:.0f} (ratio {c2 / c1:.2f}); per "
            f"server+PostgreSQL CPU-second {s1:.0f} / {s2:.0f} (ratio {s2 / s1:.2f}); "
            "each process's CPU (2 workers): "
            + ", ".join(f"{c:.1f}" for c in busiest.per_process_cpu if c >= 0.05)
        )


#: the tests asserting P3 (each compares statement counts at two data sizes)
P3_TESTS = (
    "tests/api/test_response_cache.py::test_statements_per_request_do_not_grow_with_the_number_of_settings",
    "tests/api/test_settings_api.py::test_settings_query_statement_count_is_constant",
    "tests/api/test_fleet_statements.py::test_readiness_and_foldback_statements_do_not_grow_with_the_fleet",
)


def report_p3() -> None:
    """P3: run the statement-counting tests and print their verdicts."""
    print("\nP3: SQL statements per request, constant whatever the data size (asserted)")
    for test in P3_TESTS:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        verdict = "constant" if done.returncode == 0 else "NOT constant (test failed)"
        print(f"  {test.split('::')[1]}: {verdict}")


def report_p5(extra: str) -> None:
    """P5: bench/fleet.py, its own figures and baselines."""
    print("\nP5: fleet readiness and fold-back (bench/fleet.py)", flush=True)
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fleet.py"), *extra.split()], cwd=ROOT, check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TAILOR_BENCH_POSTGRES_URL"),
        help="a scratch PostgreSQL database for P6 (emptied and filled)",
    )
    parser.add_argument("--p6-seconds", type=float, default=5.0)
    parser.add_argument("--skip-sqlite", action="store_true", help="no P1, P2, P4")
    parser.add_argument("--skip-p3", action="store_true")
    parser.add_argument("--skip-p5", action="store_true")
    parser.add_argument("--fleet-args", default="", help="options for bench/fleet.py (P5)")
    args = parser.parse_args()
    if not args.skip_sqlite:
        report(measure(args.settings, args.seconds, args.rounds))
    if not args.skip_p3:
        report_p3()
    if not args.skip_p5:
        report_p5(args.fleet_args)
    if args.postgres_url:
        report_p6(measure_p6(args.postgres_url, args.p6_seconds, args.settings, args.rounds))
    else:
        print("P6 not measured: give --postgres-url (a scratch PostgreSQL database)")


if __name__ == "__main__":
    main()
