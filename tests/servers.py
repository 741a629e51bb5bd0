"""Real `tailor serve` processes for tests: each in its own directory (its own
cache), on the test database, on a free port of 127.0.0.1, stopped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
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


@dataclass
class Node:
    """One running `tailor serve`: its URL, port, process, what it printed (``log``:
    stdout) and logged (``errors``: stderr)."""

    url: str
    port: int
    process: asyncio.subprocess.Process
    log: Path
    errors: Path
    home: Path

    async def output(self) -> str:
        """stdout, then stderr."""
        out = await asyncio.to_thread(self.log.read_text)
        return out + await asyncio.to_thread(self.errors.read_text)

    async def stop(self, sig: int = signal.SIGTERM, limit: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit status (killed after ``limit`` seconds)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), limit)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"{self.url} did not stop within {limit}s") from None


async def start_node(
    home: Path,
    database_url: str,
    *args: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    probe: str = "/healthz",
    limit: float = 60.0,
) -> Node:
    """`tailor serve ARGS` started in ``home`` on ``database_url`` (stdout in
    ``home/serve.log``, stderr in ``home/serve.err``), once ``probe`` answers 200."""
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    port = port or free_port()
    environment = clean_env(
        TAILOR_DATABASE_URL=database_url,
        TAILOR_SECRET_KEY=os.environ["TAILOR_SECRET_KEY"],
        **(env or {}),
    )
    log, errors = home / "serve.log", home / "serve.err"
    with log.open("w") as out, errors.open("w") as err:
        process = await asyncio.create_subprocess_exec(
            *TAILOR,
            *("serve", "--host", "127.0.0.1", "--port", str(port), *args),
            cwd=home,
            env=environment,
            stdout=out,
            stderr=err,
        )
    node = Node(f"http://127.0.0.1:{port}", port, process, log, errors, home)
    try:
        await wait_until(node, probe, limit)
    except BaseException:
        with contextlib.suppress(AssertionError):
            await node.stop(signal.SIGKILL, 10)
        raise
    return node


async def wait_until(node: Node, probe: str = "/healthz", limit: float = 60.0) -> None:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + limit
        while True:
            try:
                if (await client.get(f"{node.url}{probe}", timeout=1.0)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if node.process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{node.url}{probe} did not answer 200 within {limit}s: {await node.output()}"
                )
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def tailor_serve(
    home: Path,
    database_url: str,
    limit: float = 60.0,
    args: Sequence[str] = (),
    on_start: Callable[[asyncio.subprocess.Process], object] | None = None,
    **extra_env: str,
) -> AsyncIterator[str]:
    """`tailor serve [args]` started in ``home`` on ``database_url`` (and
    ``extra_env``); yields its URL once `/healthz` answers, and stops it (it may
    have ended already). ``on_start`` is given the process (to signal it)."""
    node = await start_node(home, database_url, *args, limit=limit, env=extra_env)
    if on_start is not None:
        on_start(node.process)
    try:
        yield node.url
    finally:
        with contextlib.suppress(AssertionError):
            await node.stop(limit=10)
