"""Benchmark: the ``settings`` query against the speed of a static file (issue 12).

Run by hand: ``python bench/static_settings.py [--settings 1000] [--seconds 4]``.

Every figure is a ratio to a baseline measured in the same run, on this machine:

* **P1** warm ``settings`` query (1,000 settings, ``key value source revision
  definition { type default }``) over HTTP, at 1 and 8 concurrent clients:
  requests/s of ``tailor`` (the real app under uvicorn, one process) against a
  bare Starlette endpoint serving the identical bytes with orjson (uvicorn, one
  process); p99 / p50 of Tailor at 8 clients.
* **P2** cold (first) query: a document Tailor has never seen (parse, validate,
  SQL, execution, serialisation, over HTTP) against graphql-core executing the
  same shape from memory in this process (no HTTP): graphql-core's time / Tailor's.
* **P4** 5 customizations (each reads two keys, returns one) against none: warm
  (answers cached) and cold (new documents).

Each server runs in its own process, and so does the load generator (keep-alive
HTTP/1.1 connections over raw asyncio streams, so the client costs far less than
either server). The machine has 2 cores: the generator shares them with the
server under test, alike for Tailor and the baseline; runs alternate (baseline,
Tailor, baseline, Tailor) so drifting load on the machine hits both.
P3 (statements per request) is asserted in tests; ``bench/performance.py`` prints
these figures and P6 (P5: ``bench/fleet.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from runtime_overhead import write_packages
from settings_query import QUERY, prepare

from core.model.auth import Principal

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- servers (each in its own process) -------------------------------------------
def run_tailor(url: str, packages: str, port: int) -> None:
    import uvicorn

    from api.graphql.limits import GraphQLLimits
    from api.http.app import AppOptions, create_app
    from core.store.services import Services
    from plugins.runtime import PluginRuntime, RuntimeOptions

    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[Path(packages)], path_env="", use_entry_points=False)
    )
    # the per-token rate limit would refuse a load test: lift it
    limits = GraphQLLimits(rate_limit_per_minute=10**9, rate_limit_burst=10**9)
    app = create_app(Services.from_url(url), AppOptions(plugins=runtime, limits=limits))
    uvicorn.run(app, host=HOST, port=port, log_level="error", access_log=False)


def run_baseline(payload_file: str, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    payload = orjson.loads(Path(payload_file).read_bytes())

    async def bare(_request: object) -> Response:
        return Response(orjson.dumps(payload), media_type="application/json")

    app = Starlette(routes=[Route("/graphql", bare, methods=["POST"])])
    uvicorn.run(app, host=HOST, port=port, log_level="error", access_log=False)


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# -- the load generator (its own process) -----------------------------------------
def request_bytes(port: int, body: bytes, token: str) -> bytes:
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    if status != 200:
        raise RuntimeError(f"status {status}")
    return length


async def _load(
    port: int, raws: list[bytes], clients: int, seconds: float
) -> tuple[list[float], float, float]:
    """The latencies of every completed request, the CPU seconds this process
    used meanwhile and those the whole machine was busy. Opens the clients'
    connections one by one (a few ms apart, as independent
    clients would: with several server workers, the idle one accepts the next
    connection, instead of one worker taking a burst of them), then run them
    for ``seconds``."""
    latencies: list[float] = []
    connections = []
    for _ in range(clients):
        connections.append(await asyncio.open_connection(HOST, port))
        await asyncio.sleep(0.02)
    cpu, busy = time.process_time(), machine_busy()
    stop = time.monotonic() + seconds

    async def client(index: int) -> None:
        reader, writer = connections[index]
        i = index
        while time.monotonic() < stop:
            started = time.perf_counter()
            await _one(reader, writer, raws[i % len(raws)])
            latencies.append(time.perf_counter() - started)
            i += clients
        writer.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, time.process_time() - cpu, machine_busy() - busy


def generate(port: int, raws: list[bytes], clients: int, seconds: float, out: Any) -> None:
    try:
        out.send(asyncio.run(_load(port, raws, clients, seconds)))
    except Exception as exc:
        out.send(f"{type(exc).__name__}: {exc}")


def machine_busy() -> float:
    """CPU seconds the whole machine (all cores) has been busy since boot (Linux;
    NaN elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load_with_cpu(
    port: int, raws: list[bytes], clients: int, seconds: float
) -> tuple[list[float], float, float]:
    """Requests from another process: the latencies of every completed request,
    the CPU seconds the load generator used while it ran them, and the CPU seconds
    the whole machine was busy meanwhile."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=generate, args=(port, raws, clients, seconds, send))
    proc.start()
    result = receive.recv()
    proc.join()
    if isinstance(result, str):
        raise RuntimeError(f"the load generator failed: {result}")
    return result


def load(port: int, raws: list[bytes], clients: int, seconds: float) -> list[float]:
    """Requests from another process: the latencies of every completed request."""
    return load_with_cpu(port, raws, clients, seconds)[0]


# -- graphql-core from memory (P2's baseline) -------------------------------------
SDL = """
scalar JSON
type Query { settings(tenant: String!, environment: String): SettingsResult }
union SettingsResult = Settings | Failure
type Failure { message: String! }
type Settings { items: [Item!]! }
type Item { key: String! value: JSON source: String! revision: Int! definition: Def! }
type Def { type: String! default: JSON }
"""


def graphql_core_ms(payload: dict[str, Any], rounds: int) -> float:
    from graphql import build_schema, graphql_sync

    schema = build_schema(SDL)
    items = payload["data"]["settings"]["items"]
    root = {"settings": {"__typename": "Settings", "items": items}}
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = graphql_sync(schema, QUERY, root, variable_values={"t": "bench", "e": None})
        times.append(time.perf_counter() - started)
        assert not result.errors, result.errors
    return statistics.median(times) * 1000


async def add_customized_tenant(url: str, packages: Path) -> dict[str, str]:
    from core.store.services import Services
    from plugins.runtime import PluginRuntime, RuntimeOptions

    admin = Principal.system("bench")
    services = Services.from_url(url)
    await services.tenants.create(admin, "five", "Five", "1.0")
    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[packages], path_env="", use_entry_points=False)
    )
    for c in runtime.sources():
        await services.registry.publish(admin, c.registration())
        await services.registry.set_enabled(admin, "five", c.name, True)
    await runtime.close()
    five, _ = await services.tokens.create("app", ["five"])
    await services.close()
    return {"five": five}


def pct(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100)[q - 1] * 1000


@dataclass
class Figures:
    """What one run measured (rates in requests/s, times in ms)."""

    settings: int
    seconds: float
    answer_kib: float
    tailor_rate: dict[int, float]
    bare_rate: dict[int, float]
    tailor_p50: float
    tailor_p99: float
    bare_p50: float
    bare_p99: float
    cold_ms: float
    core_ms: float
    five_warm: float
    none_warm: float
    five_cold_ms: float
    none_cold_ms: float


def measure(settings: int, seconds: float, rounds: int = 2) -> Figures:
    """P1, P2 and P4 in one run (SQLite file in a temporary directory)."""
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    token = asyncio.run(prepare(url, settings))
    packages = tmp / "packages"
    write_packages(packages, 5, ["five"])
    tokens = {"bench": token, **asyncio.run(add_customized_tenant(url, packages))}

    ctx = mp.get_context("spawn")
    tailor_port, base_port = free_port(), free_port()
    tailor = ctx.Process(target=run_tailor, args=(url, str(packages), tailor_port), daemon=True)
    tailor.start()
    wait_for(tailor_port)

    def body(tenant: str, salt: str = "") -> bytes:
        return orjson.dumps({"query": QUERY + salt, "variables": {"t": tenant, "e": None}})

    import httpx

    with httpx.Client(timeout=60) as client:
        payload = client.post(
            f"http://{HOST}:{tailor_port}/graphql",
            content=body("bench"),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ).json()
    assert len(payload["data"]["settings"]["items"]) == settings, payload
    payload_file = tmp / "payload.json"
    payload_file.write_bytes(orjson.dumps(payload))
    baseline = ctx.Process(target=run_baseline, args=(str(payload_file), base_port), daemon=True)
    baseline.start()
    wait_for(base_port)

    warm = {t: [request_bytes(tailor_port, body(t), tokens[t])] for t in tokens}
    bare = [request_bytes(base_port, body("bench"), token)]
    results: dict[str, list[list[float]]] = {}
    for clients in (1, 8):
        for _ in range(rounds):  # alternate: baseline, tailor, baseline, tailor
            results.setdefault(f"base{clients}", []).append(load(base_port, bare, clients, seconds))
            results.setdefault(f"tailor{clients}", []).append(
                load(tailor_port, warm["bench"], clients, seconds)
            )
    for _ in range(rounds):
        results.setdefault("five_warm", []).append(load(tailor_port, warm["five"], 1, seconds))
        results.setdefault("none_warm", []).append(load(tailor_port, warm["bench"], 1, seconds))

    def cold(tenant: str, n: int) -> list[bytes]:
        stamp = time.time_ns()
        return [
            request_bytes(tailor_port, body(tenant, f"\n# {stamp} {i}"), tokens[tenant])
            for i in range(n)
        ]

    cold_none: list[float] = []
    cold_five: list[float] = []
    for _ in range(rounds):  # alternate: none, five, none, five
        cold_none += load(tailor_port, cold("bench", 400), 1, seconds)
        cold_five += load(tailor_port, cold("five", 400), 1, seconds)
    core_ms = graphql_core_ms(payload, 30)
    tailor.terminate()
    baseline.terminate()

    def rate(name: str) -> float:
        return statistics.median(len(r) / seconds for r in results[name])

    def merged(name: str) -> list[float]:
        return [x for r in results[name] for x in r]

    t8, b8 = merged("tailor8"), merged("base8")
    return Figures(
        settings=settings,
        seconds=seconds,
        answer_kib=len(payload_file.read_bytes()) / 1024,
        tailor_rate={c: rate(f"tailor{c}") for c in (1, 8)},
        bare_rate={c: rate(f"base{c}") for c in (1, 8)},
        tailor_p50=pct(t8, 50),
        tailor_p99=pct(t8, 99),
        bare_p50=pct(b8, 50),
        bare_p99=pct(b8, 99),
        cold_ms=statistics.median(cold_none) * 1000,
        core_ms=core_ms,
        five_warm=rate("five_warm"),
        none_warm=rate("none_warm"),
        five_cold_ms=statistics.median(cold_five) * 1000,
        none_cold_ms=statistics.median(cold_none) * 1000,
    )


def report(f: Figures) -> None:
    print(
        f"settings query, {f.settings} settings, {f.answer_kib:.0f} KiB answer, "
        f"{f.seconds:.0f} s per run"
    )
    for clients in (1, 8):
        b, t = f.bare_rate[clients], f.tailor_rate[clients]
        print(
            f"P1 warm, {clients} client(s): tailor {t:8.0f} req/s   bare Starlette+orjson "
            f"{b:8.0f} req/s   ratio {t / b:.2f}  (goal >= 0.5)"
        )
    print(
        f"P1 tailor at 8 clients: p50 {f.tailor_p50:.2f} ms  p99 {f.tailor_p99:.2f} ms  "
        f"p99/p50 {f.tailor_p99 / f.tailor_p50:.1f}  (goal <= 3; the bare endpoint's own "
        f"p99/p50 in this run: {f.bare_p99 / f.bare_p50:.1f})"
    )
    print(
        f"P2 cold (new document): tailor {f.cold_ms:.1f} ms over HTTP   graphql-core from "
        f"memory {f.core_ms:.1f} ms   ratio {f.core_ms / f.cold_ms:.2f}  (goal >= 1.0)"
    )
    print(
        f"P4 warm: 5 customizations {f.five_warm:.0f} req/s, none {f.none_warm:.0f} req/s: "
        f"{(f.none_warm / f.five_warm - 1) * 100:+.0f}% time  (goal <= +10%)"
    )
    print(
        f"P4 cold: 5 customizations {f.five_cold_ms:.1f} ms, none {f.none_cold_ms:.1f} ms: "
        f"{(f.five_cold_ms / f.none_cold_ms - 1) * 100:+.0f}% time  (goal <= +10%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    args = parser.parse_args()
    report(measure(args.settings, args.seconds, args.rounds))


if __name__ == "__main__":
    main()
