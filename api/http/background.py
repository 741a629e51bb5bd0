"""The server's background jobs: one home for what a node does besides answering.

A job is a coroutine run every so many seconds (:meth:`Background.every`) or one
that runs until the server stops (:meth:`Background.run`). A job's failure (the
database down, a bug) is logged and the job carries on at its next turn: nothing
in the background ends the server. Jobs start with the app's lifespan and are
cancelled when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("tailor.background")


@dataclass(frozen=True)
class _Job:
    name: str
    run: Callable[[], Awaitable[object]]
    #: seconds between turns (None: run once, until it returns or the server stops)
    every: float | None


class Background:
    def __init__(self) -> None:
        self._jobs: list[_Job] = []
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, seconds: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job()`` every ``seconds`` (the first turn right after start-up)."""
        self._jobs.append(_Job(name, job, seconds))

    def run(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job()`` once, for as long as it takes (a loop of its own)."""
        self._jobs.append(_Job(name, job, None))

    @property
    def names(self) -> list[str]:
        return [job.name for job in self._jobs]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(job), name=f"tailor:{job.name}") for job in self._jobs
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, job: _Job) -> None:
        while True:
            try:
                await job.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background job %s failed; it runs again at its next turn", job.name)
                if job.every is None:
                    await asyncio.sleep(1.0)
                    continue
            if job.every is None:
                return
            await asyncio.sleep(job.every)
