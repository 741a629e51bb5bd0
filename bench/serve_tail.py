"""Benchmark: warm ``settings`` against ``tailor serve`` as users run it (issue 21).

Run by hand: ``python bench/serve_tail.py [--settings 1000] [--seconds 6] [--rounds 2]``.
Needs ``wrk`` (Debian's package).

``tailor serve`` (one process, the JSON request log on, written through a pipe as
a terminal or a log collector would read it; the rate limit off, as the audit ran
it) answers the 1,000-setting ``settings`` query of one tenant; a bare Starlette
endpoint under uvicorn serves the identical bytes (orjson, per request). ``wrk``
drives each at 1 and 8 connections, alternating, on 127.0.0.1. Reported per
round: requests/s of both and their ratio, and Tailor's p50, p99 and p99/p50
(the goals: ratio >= 0.9, p99 <= 3 x p50 at 8 connections).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from settings_query import prepare

REPO = Path(__file__).resolve().parent.parent
QUERY = (
    '{ settings(tenant: \\"bench\\", environment: \\"production\\") { ... on Settings '
    "{ items { key value source revision definition { type default } } } } }"
)
BARE = """
import sys, orjson, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
payload = orjson.loads(open(sys.argv[1], "rb").read())
async def endpoint(request):
    await request.body()
    return Response(orjson.dumps(payload), media_type="application/json")
app = Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="error")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def wrk(script: Path, url: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            found["rps"] = float(parts[1])
        elif parts and parts[0] in ("50%", "99%"):
            value = parts[1]
            scale = 1e-3 if value.endswith("us") else 1.0 if value.endswith("ms") else 1e3
            found[parts[0]] = float(value.rstrip("usm")) * scale
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"sqlite+aiosqlite:///{root / 'tailor.db'}"
        token = asyncio.run(prepare(url, args.settings, "0.5"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
        env.update(TAILOR_DATABASE_URL=url, TAILOR_RATE_LIMIT_PER_MINUTE="0")
        tailor_port, bare_port = free_port(), free_port()
        log = open(root / "serve.log", "wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli.main", "serve", "--port", str(tailor_port)],
            cwd=root,
            env={**env, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # the request log read through a pipe, as a terminal or a collector would
        reader = subprocess.Popen(["cat"], stdin=server.stdout, stdout=log)
        tailor = f"http://127.0.0.1:{tailor_port}/graphql"
        wait(f"http://127.0.0.1:{tailor_port}/healthz")
        body = httpx.post(
            tailor,
            content=f'{{"query": "{QUERY}"}}',
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ).content
        (root / "body.json").write_bytes(body)
        (root / "bare.py").write_text(BARE)
        bare_server = subprocess.Popen(
            [sys.executable, str(root / "bare.py"), str(root / "body.json"), str(bare_port)]
        )
        bare = f"http://127.0.0.1:{bare_port}/graphql"
        wait(f"http://127.0.0.1:{bare_port}/")
        script = root / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = \'{{"query": "{QUERY}"}}\'\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        )
        try:
            print(f"answer: {len(body)} bytes, {args.settings} settings")
            for r in range(args.rounds):
                for connections in (1, 8):
                    b = wrk(script, bare, connections, args.seconds)
                    t = wrk(script, tailor, connections, args.seconds)
                    print(
                        f"round {r + 1} c={connections}: bare {b['rps']:.0f} req/s, tailor "
                        f"{t['rps']:.0f} req/s (x{t['rps'] / b['rps']:.2f}); tailor p50 "
                        f"{t['50%']:.2f} ms, p99 {t['99%']:.2f} ms, p99/p50 "
                        f"{t['99%'] / t['50%']:.2f}"
                    )
        finally:
            for p in (server, bare_server, reader):
                p.terminate()
                p.wait(timeout=10)
            log.close()
            lines = (root / "serve.log").read_bytes().count(b"\n")
            print(f"request log lines written: {lines}")


if __name__ == "__main__":
    main()
