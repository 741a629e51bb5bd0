"""A webhook receiver for tests: a real HTTP/1.1 server on 127.0.0.1 (asyncio
sockets), answering each request with the next status of a script, and able to
hold requests (a slow or dead receiver)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import orjson


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    #: statuses to answer, in order; then ``default``
    script: list[int] = field(default_factory=list)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    #: while cleared, every request waits (a receiver that does not answer)
    open: asyncio.Event = field(default_factory=asyncio.Event)
    #: requests being answered right now, and the most at once
    in_flight: int = 0
    most_in_flight: int = 0
    #: seconds each answer takes (a slow receiver)
    delay: float = 0.0
    url: str = ""
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.open.set()

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    async def wait_for(self, count: int, *, delivered: bool = True, limit: float = 30) -> None:
        """Until ``count`` requests (delivered ones, by default) have arrived."""

        def enough() -> bool:
            return len(self.delivered if delivered else self.requests) >= count

        async with asyncio.timeout(limit), self.arrived:
            await self.arrived.wait_for(enough)

    async def waiting(self, count: int = 1, limit: float = 30) -> None:
        """Until ``count`` requests are held (arrived, not answered)."""
        async with asyncio.timeout(limit), self.arrived:
            await self.arrived.wait_for(lambda: self.in_flight >= count)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            async with self.arrived:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                self.arrived.notify_all()
            try:
                await self.open.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
            status = self.script.pop(0) if self.script else self.default
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
            async with self.arrived:
                self.requests.append(Received(method, path, headers, body, status))
                self.arrived.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def receiver(
    script: Iterable[int] = (), default: int = 200, host: str = "127.0.0.1"
) -> AsyncIterator[Receiver]:
    """A receiver listening on ``host`` (its URL in ``.url``), closed at the end."""
    got = Receiver(script=list(script), default=default)
    server = await asyncio.start_server(got._handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    name = f"[{host}]" if ":" in host else host
    got.url = f"http://{name}:{port}/hooks/tailor?source=test"
    try:
        yield got
    finally:
        got.open.set()
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await server.wait_closed()
