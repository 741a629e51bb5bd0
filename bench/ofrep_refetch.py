"""Benchmark: change to OFREP ``refetchEvaluation``, across processes (issue 23).

Run by hand: ``python bench/ofrep_refetch.py [--postgres URL] [--changes 100]
[--streams 4]`` (default URL: ``TAILOR_BENCH_PG_URL``). It makes a scratch
database beside URL's and drops it.

Two ``tailor serve`` processes (A and B) share the scratch PostgreSQL database
and nothing else. ``--streams`` OFREP event streams are held on B, each on its
own connection, opened with the ``eventStreams`` URL of a bulk evaluation made
on A (so B admits A's tickets); as many on A; and, as the baseline of the same
run, as many GraphQL ``settingsChanged`` subscriptions over SSE on B (the same
hub behind them). This process writes ``--changes`` overrides one after the other
through A's GraphQL ``setSetting`` (50 ms apart); for each, the time from the
write's answer (committed) to every stream's reading its event. B's samples
cross processes: NOTIFY, B's hub reading the feed once, its fan-out, SSE. After
each event, B's first stream also fetches the bulk evaluation again as a
provider does (``If-None-Match``) and checks it has the written value: the time
to that is the provider's whole change latency. p50, p99, max of each. Goal:
p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from feed_latency import SUBSCRIBE, percentile, serve  # bench/feed_latency.py
from scratch import scratch_database, secret_key  # bench/scratch.py

from api.http.ofrep import BULK_PATH
from core.model.auth import Principal, Role
from core.store.bootstrap import sync_product_releases
from core.store.db import upgrade
from core.store.services import Services
from plugins.catalog import tailor_extension_points
from plugins.product import load_product

ADMIN = Principal.system("bench")
KEY = "billing.invoice.due_days"
SET = """mutation($k: String!, $v: JSON!) {
  setSetting(input: {tenant: "acme", key: $k, value: $v}) { __typename } }"""


async def sse_reader(
    response: httpx.Response, ready: asyncio.Event, heard: list[tuple[int, float]]
) -> None:
    """(event id, when read) per event with data."""
    ready.set()
    event_id, data = None, None
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and data:
            heard.append(
                (
                    event_id or json.loads(data)["data"]["settingsChanged"]["sequence"],
                    time.perf_counter(),
                )
            )
            event_id, data = None, None


async def ofrep_stream(url: str, ready: asyncio.Event, heard: list[tuple[int, float]]) -> None:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response,
    ):
        assert response.status_code == 200, await response.aread()
        await sse_reader(response, ready, heard)


async def graphql_stream(
    server: str, token: str, after: int, ready: asyncio.Event, heard: list[tuple[int, float]]
) -> None:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream(
            "POST",
            f"{server}/graphql",
            json={"query": SUBSCRIBE, "variables": {"t": "acme", "after": after}},
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        await sse_reader(response, ready, heard)


def summary(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms   "
        f"max {max(ms):7.1f} ms   ({len(ms)} samples)"
    )


async def run(url: str, changes: int, streams: int) -> None:
    services = Services.from_url(url)
    await sync_product_releases(services, load_product(), tailor_extension_points)
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    app, _ = await services.tokens.create(Role.APP, ["acme"], label="bench app")
    admin, _ = await services.tokens.create(Role.ADMIN, [], label="bench admin")
    processes = []
    tasks: list[asyncio.Task[None]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            a_process, a = await serve(Path(tmp) / "a", url, workers=1)
            processes.append(a_process)
            b_process, b = await serve(Path(tmp) / "b", url, workers=1)
            processes.append(b_process)
            async with httpx.AsyncClient(timeout=30) as client:
                bulk = await client.post(
                    f"{a}{BULK_PATH}",
                    json={"context": {}},
                    headers={"Authorization": f"Bearer {app}"},
                )
                bulk.raise_for_status()
                uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
                after = await services.feed.head()
                groups: dict[str, list[list[tuple[int, float]]]] = {
                    "ofrep on B (other process)": [[] for _ in range(streams)],
                    "ofrep on A (writing process)": [[] for _ in range(streams)],
                    "graphql settingsChanged on B (baseline)": [[] for _ in range(streams)],
                }
                readies = []
                for name, heards in groups.items():
                    for heard in heards:
                        ready = asyncio.Event()
                        readies.append(ready)
                        if name.startswith("graphql"):
                            job = graphql_stream(b, app, after, ready, heard)
                        else:
                            job = ofrep_stream(f"{b if 'on B' in name else a}{uri}", ready, heard)
                        tasks.append(asyncio.create_task(job))
                await asyncio.gather(*(r.wait() for r in readies))
                await asyncio.sleep(1.0)  # every stream has joined its hub
                first = groups["ofrep on B (other process)"][0]
                etag = bulk.headers["etag"]
                written: list[float] = []
                refetched: list[float] = []
                for i in range(changes):
                    value = 10 + i % 80
                    answer = await client.post(
                        f"{a}/graphql",
                        json={"query": SET, "variables": {"k": KEY, "v": value}},
                        headers={"Authorization": f"Bearer {admin}"},
                    )
                    written.append(time.perf_counter())
                    assert answer.json()["data"]["setSetting"]["__typename"] == "SettingChanged"
                    for _ in range(500):  # at most 5 s
                        if len(first) > i:
                            break
                        await asyncio.sleep(0.01)
                    again = await client.post(
                        f"{b}{BULK_PATH}",
                        json={"context": {}},
                        headers={"Authorization": f"Bearer {app}", "If-None-Match": etag},
                    )
                    refetched.append(time.perf_counter() - written[-1])
                    assert again.status_code == 200, again.status_code
                    flags = {f["key"]: f for f in again.json()["flags"]}
                    assert flags[KEY]["value"] == value, (flags[KEY], value)
                    etag = again.headers["etag"]
                    await asyncio.sleep(0.05)
                for _ in range(500):
                    if all(len(h) >= changes for hs in groups.values() for h in hs):
                        break
                    await asyncio.sleep(0.02)
        sequences = [e.sequence for e in await services.feed.since(after, tenants=["acme"])]
        print(f"change -> event: {changes} changes written through A's setSetting")
        for name, heards in groups.items():
            samples = []
            for heard in heards:
                assert [s for s, _ in heard] == sequences, f"{name}: missed or repeated a change"
                samples += [read - written[k] for k, (_, read) in enumerate(heard)]
            print(f"  {name:42} {summary(samples)}")
        print(f"  {'change -> refetched bulk on B (provider)':42} {summary(refetched)}")
        print("  goal: p99 <= 1000 ms")
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await asyncio.gather(*tasks, return_exceptions=True)
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        await services.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("TAILOR_BENCH_PG_URL"))
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--streams", type=int, default=4)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or TAILOR_BENCH_PG_URL): two nodes need it")
    secret_key()
    async with scratch_database(args.postgres, "tailor_bench_refetch") as url:
        await upgrade(url)
        await run(url, args.changes, args.streams)


if __name__ == "__main__":
    asyncio.run(main())
