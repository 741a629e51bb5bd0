"""Benchmark: warm OFREP bulk evaluation against the speed of a static file.

Run by hand: ``python bench/ofrep.py [--settings 1000] [--seconds 4] [--rounds 2]``.

``POST /ofrep/v1/evaluate/flags`` of a tenant with 1,000 settings (a tenth of
them overridden in the environment asked for), answered from the response
cache, over HTTP, at 1 and 8 concurrent clients: requests/s of Tailor (the real
app under uvicorn, one process) against a bare Starlette endpoint serving the
identical bytes with orjson (uvicorn, one process), and Tailor's p50 and p99 at
each. The servers and the load generator each run in their own process; runs
alternate (baseline, Tailor, ...) so drifting load on the machine hits both. The
same tenant's warm GraphQL ``settings`` query is measured alongside, for comparison.
The harness (servers, load generator, percentiles) is ``bench/static_settings.py``'s.
Goals (issue 23): ratio >= 0.8, p99 <= 3x p50.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from settings_query import QUERY, prepare
from static_settings import HOST, free_port, load, pct, run_baseline, run_tailor, wait_for

from api.http.ofrep import BULK_PATH

CONTEXT = {"context": {"environment": "production"}}


def request_bytes(port: int, path: str, body: bytes, token: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def measure(settings: int, seconds: float, rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    token = asyncio.run(prepare(url, settings))
    packages = tmp / "packages"  # no customization
    packages.mkdir()

    ctx = mp.get_context("spawn")
    tailor_port, base_port = free_port(), free_port()
    tailor = ctx.Process(target=run_tailor, args=(url, str(packages), tailor_port), daemon=True)
    tailor.start()
    wait_for(tailor_port)
    import httpx

    body = orjson.dumps(CONTEXT)
    with httpx.Client(timeout=60) as client:
        answer = client.post(
            f"http://{HOST}:{tailor_port}{BULK_PATH}",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    answer.raise_for_status()
    flags = answer.json()["flags"]
    assert len(flags) == settings, len(flags)
    assert sum(f["reason"] == "TARGETING_MATCH" for f in flags) == settings // 10
    payload_file = tmp / "payload.json"
    payload_file.write_bytes(answer.content)
    baseline = ctx.Process(target=run_baseline, args=(str(payload_file), base_port), daemon=True)
    baseline.start()
    wait_for(base_port)

    ofrep = [request_bytes(tailor_port, BULK_PATH, body, token)]
    bare = [request_bytes(base_port, "/graphql", body, token)]
    # the same tenant's settings as GraphQL's warm query (for comparison only)
    query = orjson.dumps({"query": QUERY, "variables": {"t": "bench", "e": "production"}})
    graphql = [request_bytes(tailor_port, "/graphql", query, token)]
    results: dict[str, list[list[float]]] = {}
    try:
        for clients in (1, 8):
            for _ in range(rounds):
                results.setdefault(f"bare{clients}", []).append(
                    load(base_port, bare, clients, seconds)
                )
                results.setdefault(f"tailor{clients}", []).append(
                    load(tailor_port, ofrep, clients, seconds)
                )
                results.setdefault(f"graphql{clients}", []).append(
                    load(tailor_port, graphql, clients, seconds)
                )
    finally:
        tailor.terminate()
        baseline.terminate()

    def rate(name: str) -> float:
        return statistics.median(len(r) / seconds for r in results[name])

    def merged(name: str) -> list[float]:
        return [x for r in results[name] for x in r]

    print(
        f"OFREP bulk evaluation, {settings} settings ({settings // 10} overridden), "
        f"{len(answer.content) / 1024:.0f} KiB answer, {seconds:.0f} s per run, "
        f"{rounds} rounds"
    )
    for clients in (1, 8):
        t, b = rate(f"tailor{clients}"), rate(f"bare{clients}")
        lat, base = merged(f"tailor{clients}"), merged(f"bare{clients}")
        print(
            f"{clients} client(s): tailor {t:7.0f} req/s  bare Starlette+orjson {b:7.0f} req/s  "
            f"ratio {t / b:.2f} (goal >= 0.8);  tailor p50 {pct(lat, 50):.2f} ms "
            f"p99 {pct(lat, 99):.2f} ms p99/p50 {pct(lat, 99) / pct(lat, 50):.1f} (goal <= 3);  "
            f"bare p50 {pct(base, 50):.2f} ms p99 {pct(base, 99):.2f} ms;  GraphQL settings "
            f"{rate(f'graphql{clients}'):.0f} req/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    args = parser.parse_args()
    measure(args.settings, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
