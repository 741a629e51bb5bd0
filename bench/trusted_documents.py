"""Benchmark: a front-end's start-up fetch sent as its text, by ``documentId``
(GraphQL-over-HTTP persisted documents) and by Apollo's ``persistedQuery`` hash,
from an app token of a trusted-only app (so every request is also checked
against the app's registered documents).

Run by hand: ``python bench/trusted_documents.py [--settings 1000] [--requests 300]``.

The real app under uvicorn on 127.0.0.1 (SQLite file), one HTTP client, the same
run: it reports the median and p95 of each form and the ratio to the text form
(the lookup is remembered per process: the goal is a ratio of about 1.0)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from api.graphql.trusted import split_operations
from api.http.app import create_app
from core.model.apps import document_hash
from core.model.auth import Principal
from core.store.services import Services

sys.path.insert(0, str(Path(__file__).parent))

from settings_query import QUERY, free_port, measure, prepare, serve


async def register(url: str) -> str:
    """App ``web`` of tenant ``bench``, trusted-only, holding QUERY; its token."""
    services = Services.from_url(url)
    admin = Principal.system("bench")
    await services.apps.register(admin, "web", "bench", trusted_only=True)
    await services.apps.push_operations(admin, "web", split_operations(QUERY))
    secret, _ = await services.tokens.create("app", ["bench"], app="web")
    await services.close()
    return secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    asyncio.run(prepare(url, args.settings))
    token = asyncio.run(register(url))
    port = free_port()
    server = serve(create_app(Services.from_url(url)), port)
    headers = {"Authorization": f"Bearer {token}"}
    variables = {"t": "bench", "e": "production"}
    sha = document_hash(QUERY)
    forms = {
        "text": {"query": QUERY, "variables": variables},
        "documentId": {"documentId": f"sha256:{sha}", "variables": variables},
        "apollo": {
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}},
            "variables": variables,
        },
    }
    endpoint = f"http://127.0.0.1:{port}/graphql"
    with httpx.Client(timeout=30) as client:
        answers = {
            n: client.post(endpoint, json=b, headers=headers).json() for n, b in forms.items()
        }
        assert answers["text"] == answers["documentId"] == answers["apollo"]
        assert len(answers["text"]["data"]["settings"]["items"]) == args.settings
        # interleaved rounds, so the machine's load falls on every form alike
        times: dict[str, list[float]] = {n: [] for n in forms}
        for _ in range(3):
            for name, body in forms.items():
                times[name] += measure(client, endpoint, body, headers, args.requests // 3)
    server.should_exit = True
    base = statistics.median(times["text"])
    print(f"start-up fetch of {args.settings} settings, {args.requests} requests per form")
    for name, found in times.items():
        q = statistics.quantiles(found, n=20)
        median = statistics.median(found)
        print(
            f"{name:<11} median {median * 1000:7.2f} ms   p95 {q[18] * 1000:7.2f} ms   "
            f"x{median / base:.2f} of text"
        )


if __name__ == "__main__":
    main()
