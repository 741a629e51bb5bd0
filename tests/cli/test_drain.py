"""A real `tailor serve` told to stop (SIGTERM, issue 25): it refuses new
connections at once, finishes the request in flight, ends its customization
worker processes and exits 0; with --workers 2 (PostgreSQL) as well."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from core.model.auth import Role
from core.store.services import Services
from tests.servers import start_node

QUERY = b'{"query": "{ tenants { slug } }"}'


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains_in_flight_requests_and_exits_0(
    workers, bare_services, database_url, is_postgres, tmp_path
):
    """(``bare_services``: the session's PostgreSQL database starts empty, whatever
    an earlier test left in it.)"""
    if workers > 1 and not is_postgres:
        pytest.skip("--workers 2 needs PostgreSQL")
    url = database_url if is_postgres else f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    node = await start_node(
        tmp_path / "node",
        url,
        "--migrate",
        "--workers",
        str(workers),
        env={"TAILOR_SHUTDOWN_GRACE": "15"},
        probe="/readyz",
    )
    try:
        services = Services.from_url(url)
        try:
            token, _ = await services.tokens.create(Role.ADMIN)
        finally:
            await services.close()
        # the customization worker processes started ahead of the first call
        for _ in range(100):
            if len(descendants(node.process.pid)) >= 2 * workers:
                break
            await asyncio.sleep(0.2)
        processes = descendants(node.process.pid)
        assert len(processes) >= 2 * workers

        body_sent = asyncio.Event()

        async def slow_body():
            yield QUERY[:10]
            body_sent.set()
            await asyncio.sleep(3.0)  # SIGTERM arrives while this request is in flight
            yield QUERY[10:]

        async with httpx.AsyncClient(timeout=30) as client:
            in_flight = asyncio.create_task(
                client.post(
                    f"{node.url}/graphql",
                    content=slow_body(),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                )
            )
            await body_sent.wait()
            await asyncio.sleep(0.3)
            node.process.terminate()
            # new connections are refused (within the supervisor's turn with workers)
            refused = False
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline and not refused:
                try:
                    async with httpx.AsyncClient(timeout=0.5) as fresh:
                        await fresh.get(f"{node.url}/healthz")
                except httpx.ConnectError:
                    refused = True
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
            assert refused, "the stopping node still accepted connections"
            response = await in_flight
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"tenants": []}}
        assert await node.stop(limit=30) == 0, await node.output()
    finally:
        if node.process.returncode is None:
            await node.stop(limit=10)
    # its customization workers (and uvicorn's) ended with it
    for _ in range(50):
        if not any(alive(p) for p in processes):
            break
        await asyncio.sleep(0.1)
    assert not [p for p in processes if alive(p)]
    # every line logged is JSON, uvicorn's own included
    log = [json.loads(line) for line in node.errors.read_text().splitlines()]
    assert any(entry.get("event") == "drain" for entry in log)
    assert any(entry["logger"].startswith("uvicorn") for entry in log)
    assert not [e for e in log if e["level"] in ("error", "critical")], log
