"""Recorded inputs replayed through customization versions (``tailor upgrade
rehearse``): the :class:`core.model.rehearsal.Replayer` the rehearsal service
calls.

Each version is materialized from the database (its stored package, the sha256
verified, as the server runs it) and loaded in one confined worker of its own
(:class:`plugins.runtime.trial.Trial`: the server's confinement, limits and
messages, calls by value); that worker takes every call of the version, for
every tenant and sample, one after the other. A call past its deadline, or a
worker that dies, is that call's failure; the next call gets a fresh worker.
Versions run side by side, ``concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from core.model.errors import TailorError
from core.model.rehearsal import ReplayBatch, ReplayOutcome, ReplayRun
from plugins.loading import Loaded
from plugins.runtime.runner import PluginRuntime
from plugins.runtime.trial import Trial


@dataclass
class _BatchRun:
    outcomes: dict[str, ReplayOutcome]
    workers: int
    unloadable: str | None = None


class RuntimeReplayer:
    """Replays batches in worker processes of ``runtime``'s catalog and cache."""

    def __init__(
        self, runtime: PluginRuntime, timeout: float | None = None, concurrency: int = 2
    ) -> None:
        self.runtime = runtime
        self.timeout = runtime.options.hook_timeout if timeout is None else timeout
        self.concurrency = max(1, concurrency)

    async def replay(self, batches: Sequence[ReplayBatch]) -> ReplayRun:
        packages = await self.runtime.materialized([b.pin for b in batches])
        gate = asyncio.Semaphore(self.concurrency)

        async def one(batch: ReplayBatch, package: Loaded) -> _BatchRun:
            async with gate:
                return await asyncio.to_thread(self._run, batch, package)

        runs = await asyncio.gather(*(one(b, p) for b, p in zip(batches, packages, strict=True)))
        outcomes: dict[str, ReplayOutcome] = {}
        unloadable: dict[tuple[str, str], str] = {}
        for batch, run in zip(batches, runs, strict=True):
            outcomes.update(run.outcomes)
            if run.unloadable is not None:
                unloadable[(batch.pin.name, batch.pin.version)] = run.unloadable
        return ReplayRun(outcomes, sum(r.workers for r in runs), unloadable)

    def _run(self, batch: ReplayBatch, package: Loaded) -> _BatchRun:
        """Every call of one version in one worker (blocking)."""
        if package.refused:
            why = "; ".join(p.message for p in package.problems) or "it cannot run here"
            return self._unloadable(batch, why, 0)
        options = self.runtime.options
        trial = Trial(
            package.source.path,
            self.runtime.catalog,
            options.release or "",
            self.timeout,
            options.import_timeout,
            options.worker_memory_mb,
        )
        workers = 1
        try:
            try:
                trial.start(package)
            except TailorError as exc:
                return self._unloadable(batch, exc.message, workers)
            outcomes: dict[str, ReplayOutcome] = {}
            for replay in batch.replays:
                if not trial.alive:
                    workers += 1  # the call restarts it, as the pool would
                try:
                    event = trial.call(replay.hook, replay.kwargs)
                except TailorError as exc:  # the fresh worker could not load it
                    outcomes[replay.id] = ReplayOutcome(False, error=exc.message, failure="killed")
                    continue
                ok = bool(event.get("ok"))
                outcomes[replay.id] = ReplayOutcome(
                    ok,
                    event.get("value") if ok else None,
                    None if ok else str(event.get("error") or "failed"),
                    None if ok else str(event.get("failure") or "raised"),
                )
            return _BatchRun(outcomes, workers)
        finally:
            trial.close()

    @staticmethod
    def _unloadable(batch: ReplayBatch, why: str, workers: int) -> _BatchRun:
        error = f"{batch.pin.name} {batch.pin.version} could not be loaded: {why}"
        return _BatchRun(
            {r.id: ReplayOutcome(False, error=error, failure="killed") for r in batch.replays},
            workers,
            why,
        )
