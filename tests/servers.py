"""Real `tailor serve` processes for tests: each in its own directory (its own
cache), on the test database, on a free port of 127.0.0.1, stopped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx

#: the CLI, as `python -m` (this interpreter, this checkout)
TAILOR = (sys.executable, "-m", "api.cli.main")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This machine's environment without any TAILOR_ setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
    return {**env, **values}


@contextlib.asynccontextmanager
async def tailor_serve(
    home: Path,
    database_url: str,
    limit: float = 60.0,
    args: Sequence[str] = (),
    on_start: Callable[[asyncio.subprocess.Process], object] | None = None,
) -> AsyncIterator[str]:
    """`tailor serve [args]` started in ``home`` on ``database_url``; yields its URL
    once `/healthz` answers, and stops it (it may have ended already).
    ``on_start`` is given the process (to signal it)."""
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    port = free_port()
    env = clean_env(
        TAILOR_DATABASE_URL=database_url, TAILOR_SECRET_KEY=os.environ["TAILOR_SECRET_KEY"]
    )
    log = home / "serve.log"
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            *TAILOR,
            *("serve", "--host", "127.0.0.1", "--port", str(port), *args),
            cwd=home,
            env=env,
            stdout=out,
            stderr=out,
        )
    if on_start is not None:
        on_start(process)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + limit
            while True:
                try:
                    if (await client.get(f"{url}/healthz", timeout=1.0)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    output = await asyncio.to_thread(log.read_text)
                    raise AssertionError(f"{url} did not start within {limit}s: {output}")
                await asyncio.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
