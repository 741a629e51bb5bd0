"""Benchmark: the change feed heard across workers, and what it costs writes (issue 22).

Run by hand: ``python bench/feed_latency.py [--postgres URL] [--changes 200]
[--subscribers 8] [--writers 1 4] [--seconds 3] [--rounds 3]`` (default URL:
``TAILOR_BENCH_PG_URL``). It makes a scratch database beside URL's and drops it.

1. **Commit to subscriber, across workers.** ``tailor serve --workers 2`` on
   PostgreSQL; ``--subscribers`` ``settingsChanged`` subscriptions over SSE, each on
   its own connection (the kernel spreads them over both workers). This process
   (a third one) commits ``--changes`` overrides one after the other (20 ms apart);
   for each, the time from its commit returning to each subscriber's reading the
   event. Every subscriber is in another process than the commit, so every
   sample crosses processes: NOTIFY, the worker's hub reading the feed once, its
   fan-out, SSE. p50 and p99 over all samples. Goal: p99 <= 1 s (stretch 100 ms).
2. **The feed's cost on writes.** N concurrent writers (one tenant each; each N of
   ``--writers``)
   call ``SettingsService.set`` for ``--seconds``, with the feed and without it,
   alternating for ``--rounds`` (the same process, database and connection pool),
   twice: before the server starts (the write path alone), and with the server's
   two workers and a subscriber on each listening (each announcement reaches both).
   The bench process announces its commits as a server worker does (after
   commit, coalesced: :class:`core.store.feed.Announcer`). "Without" removes the
   feed's ``before_flush`` hook (:func:`core.store.feed.append_for_audit`) from
   this process's sessions and disables the database's trigger that appends each
   audit entry's pending change at commit: no feed row, no announcement, so the
   hubs read nothing; everything else of the write (the audit entry, the revision
   check, the data version) is the same. Switching it off here, rather than by an
   environment variable the server would read, keeps an off switch out of the
   product.
   Ratio: writes/s with the feed over
   writes/s without. Goal: >= 0.90 (<= 10% cost).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from performance import cpu_seconds, tree  # bench/performance.py: CPU from /proc
from scratch import scratch_database, secret_key  # bench/scratch.py
from sqlalchemy import event, text

from core.model.auth import Principal, Role
from core.store import feed
from core.store.bootstrap import sync_product_releases
from core.store.db import TailorSyncSession, upgrade
from core.store.invalidation import Listener
from core.store.services import Services
from plugins.catalog import tailor_extension_points
from plugins.product import load_product

ADMIN = Principal.system("bench")
REPO = Path(__file__).resolve().parent.parent
KEY = "billing.invoice.due_days"
SUBSCRIBE = (
    "subscription($t: String!, $after: Int) { settingsChanged(tenant: $t, after: $after) "
    "{ ... on ChangeEvent { sequence } ... on Error { code message } } }"
)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``tailor serve --workers N`` in ``home``, logging to ``home/serve.log``."""
    home.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
    env |= {
        "TAILOR_DATABASE_URL": url,
        "TAILOR_SECRET_KEY": os.environ["TAILOR_SECRET_KEY"],
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "api.cli.main", "serve", "--port", str(port)]
    with (home / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)], cwd=home, env=env, stdout=log, stderr=log
        )
    return process, f"http://127.0.0.1:{port}"


async def serve(home: Path, url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """The server, once every worker has started."""
    process, address = await asyncio.to_thread(start_server, home, url, workers)
    log = home / "serve.log"
    for _ in range(450):
        output = await asyncio.to_thread(log.read_text)
        if output.count("Application startup complete") >= workers:
            return process, address
        if process.poll() is not None:
            break
        await asyncio.sleep(0.2)
    raise RuntimeError(await asyncio.to_thread(log.read_text))


async def subscriber(
    url: str, token: str, after: int, ready: asyncio.Event, heard: list[tuple[int, float]]
) -> None:
    """One SSE subscription on its own connection: (sequence, when read) per event."""
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream(
            "POST",
            f"{url}/graphql",
            json={"query": SUBSCRIBE, "variables": {"t": "acme", "after": after}},
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        ready.set()
        data = None
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                now = time.perf_counter()
                body = json.loads(data)
                data = None
                heard.append((body["data"]["settingsChanged"]["sequence"], now))


async def latency(services: Services, url: str, token: str, changes: int, subscribers: int) -> dict:
    after = await services.feed.head()
    heard: list[list[tuple[int, float]]] = [[] for _ in range(subscribers)]
    readies = [asyncio.Event() for _ in range(subscribers)]
    tasks = [
        asyncio.create_task(subscriber(url, token, after, readies[i], heard[i]))
        for i in range(subscribers)
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(1.0)  # every subscription has joined its worker's hub
    committed: list[float] = []
    for i in range(changes):
        await services.settings.set(ADMIN, "acme", KEY, 10 + i % 50)
        committed.append(time.perf_counter())
        await asyncio.sleep(0.02)
    for _ in range(200):  # at most 10 s for the last events
        if all(len(h) >= changes for h in heard):
            break
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks)
    sequences = [e.sequence for e in await services.feed.since(after, tenants=["acme"])]
    samples = []
    for h in heard:
        assert [s for s, _ in h] == sequences, "a subscriber missed or repeated a change"
        samples += [read - committed[k] for k, (_, read) in enumerate(h)]
    return {
        "samples": len(samples),
        "p50_ms": statistics.median(samples) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "max_ms": max(samples) * 1000,
    }


async def writes_per_second(services: Services, writers: int, seconds: float) -> float:
    stop = time.perf_counter() + seconds
    done = 0

    async def write(tenant: str) -> None:
        nonlocal done
        value = 10
        while time.perf_counter() < stop:
            value = 10 + (value + 1) % 50
            await services.settings.set(ADMIN, tenant, KEY, value)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(write(f"w{i}") for i in range(writers)))
    return done / (time.perf_counter() - started)


@contextlib.asynccontextmanager
async def announcing(services: Services, url: str) -> AsyncIterator[None]:
    """This process announces its commits as a server worker does: after commit,
    coalesced, from a listener's connection (:class:`core.store.feed.Announcer`)."""
    listener = Listener(url, lambda _topic: None)
    await listener.start()
    announcer = feed.Announcer(services.engine, listener.notify)
    task = asyncio.create_task(announcer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await listener.stop()


@contextlib.asynccontextmanager
async def without_feed(services: Services) -> AsyncIterator[None]:
    """No write appends to the feed (the bench's baseline): this process's sessions
    lose the feed's hook (no notice), and the database's trigger that appends
    pending changes at commit (migration 0020) is disabled meanwhile. Only this
    process writes during the bench."""
    trigger = "ALTER TABLE audit_log {} TRIGGER tailor_feed_pending"
    event.remove(TailorSyncSession, "before_flush", feed.append_for_audit)
    async with services.engine.begin() as conn:
        await conn.execute(text(trigger.format("DISABLE")))
    try:
        yield
    finally:
        async with services.engine.begin() as conn:
            await conn.execute(text(trigger.format("ENABLE")))
        event.listen(TailorSyncSession, "before_flush", feed.append_for_audit)


async def throughput(
    services: Services, writers: int, seconds: float, rounds: int, server: int | None = None
) -> dict:
    """Writes/s with the feed and without it (medians of ``rounds``); with ``server``
    (its pid), also the server's CPU milliseconds per write (all its processes)."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    await writes_per_second(services, writers, 1.0)  # warm the pool and the rows
    for _ in range(rounds):
        for fed in (True, False):
            pids = tree(server) if server else []
            before = cpu_seconds(pids)
            async with contextlib.nullcontext() if fed else without_feed(services):
                rate = await writes_per_second(services, writers, seconds)
            rates[fed].append(rate)
            cpu[fed].append((cpu_seconds(pids) - before) * 1000 / (rate * seconds))
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    return {
        "with_feed_per_s": on,
        "without_feed_per_s": off,
        "ratio": on / off,
        "server_cpu_ms_with": statistics.median(cpu[True]),
        "server_cpu_ms_without": statistics.median(cpu[False]),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("TAILOR_BENCH_PG_URL"))
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=8)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or TAILOR_BENCH_PG_URL): several workers need it")
    secret_key()
    process = None
    async with scratch_database(args.postgres, "tailor_bench_feed") as url:
        try:
            await upgrade(url)
            services = Services.from_url(url)
            await sync_product_releases(services, load_product(), tailor_extension_points)
            for slug in ("acme", *(f"w{i}" for i in range(max(args.writers)))):
                await services.tenants.create(ADMIN, slug, slug, "2.0")
            token, _ = await services.tokens.create(Role.APP, ["acme"], label="bench")
            async with announcing(services, url):
                # the write path alone: nobody listens
                alone = {
                    n: await throughput(services, n, args.seconds, args.rounds)
                    for n in args.writers
                }
                with tempfile.TemporaryDirectory() as tmp:
                    process, server = await serve(Path(tmp) / "server", url, workers=2)
                    heard = await latency(services, server, token, args.changes, args.subscribers)
                    # the server and one subscriber per worker keep listening meanwhile
                    listening = [asyncio.Event(), asyncio.Event()]
                    keep: list[list[tuple[int, float]]] = [[], []]
                    after = await services.feed.head()
                    tasks = [
                        asyncio.create_task(subscriber(server, token, after, listening[i], keep[i]))
                        for i in range(2)
                    ]
                    await asyncio.gather(*(e.wait() for e in listening))
                    cost = {
                        n: await throughput(services, n, args.seconds, args.rounds, process.pid)
                        for n in args.writers
                    }
                    for task in tasks:
                        task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.gather(*tasks)
            await services.close()
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=15)
    print(
        f"commit -> subscriber across workers ({heard['samples']} samples: "
        f"{args.changes} changes x {args.subscribers} subscribers, tailor serve --workers 2)"
    )
    print(f"  p50 {heard['p50_ms']:8.1f} ms   goal p99 <= 1000 ms (stretch 100 ms)")
    print(f"  p99 {heard['p99_ms']:8.1f} ms")
    print(f"  max {heard['max_ms']:8.1f} ms")
    print(f"writes/s, median of {args.rounds} rounds of {args.seconds} s")
    print("  writers  feed    nobody listening   2 workers + 2 subscribers listening")
    for n in args.writers:
        for label, key in (("with", "with_feed_per_s"), ("without", "without_feed_per_s")):
            print(f"  {n:7}  {label:7} {alone[n][key]:10.1f}         {cost[n][key]:10.1f}")
        print(
            f"  {n:7}  ratio   {alone[n]['ratio']:10.3f}         {cost[n]['ratio']:10.3f}"
            "   goal >= 0.90 (cost <= 10%)"
        )
        print(
            f"  {n:7}  the server's CPU per write: {cost[n]['server_cpu_ms_with']:.2f} ms with "
            f"the feed, {cost[n]['server_cpu_ms_without']:.2f} ms without"
        )


if __name__ == "__main__":
    asyncio.run(main())
