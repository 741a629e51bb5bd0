"""Recorded inputs replayed through customization versions (``tailor upgrade
rehearse``): the :class:`core.model.rehearsal.Replayer` the rehearsal service
calls.

Each version is materialized from the database (its stored package, the sha256
verified, as the server runs it) and loaded in one confined worker of its own
(:class:`plugins.runtime.trial.Trial`: the server's confinement, limits and
messages, calls by value); that worker takes every call of the version, for
every tenant and sample, one after the other. A call past its deadline, or a
worker that dies, is that call's failure; the next call gets a fresh worker.
Versions run side by side, ``concurrency`` at a time; a session keeps each
version's worker from one batch to the next (a rehearsal replays its tenants in
chunks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.model.errors import TailorError
from core.model.rehearsal import ReplayBatch, ReplayOutcome, ReplayStats
from plugins.loading import Loaded
from plugins.runtime.runner import PluginRuntime
from plugins.runtime.trial import Trial


class RuntimeReplayer:
    """Replays batches in worker processes of ``runtime``'s catalog and cache."""

    def __init__(
        self, runtime: PluginRuntime, timeout: float | None = None, concurrency: int = 2
    ) -> None:
        self.runtime = runtime
        self.timeout = runtime.options.hook_timeout if timeout is None else timeout
        self.concurrency = max(1, concurrency)

    def session(self) -> RuntimeSession:
        return RuntimeSession(self)


class RuntimeSession:
    """One rehearsal's workers: one per version, started at its first batch and
    kept until :meth:`close`."""

    def __init__(self, replayer: RuntimeReplayer) -> None:
        self.replayer = replayer
        self.trials: dict[tuple[str, str], Trial] = {}
        self.unloadable: dict[tuple[str, str], str] = {}
        self.workers = 0
        self._gate = asyncio.Semaphore(replayer.concurrency)

    async def replay(self, batches: Sequence[ReplayBatch]) -> dict[str, ReplayOutcome]:
        packages = await self.replayer.runtime.materialized([b.pin for b in batches])

        async def one(batch: ReplayBatch, package: Loaded) -> dict[str, ReplayOutcome]:
            async with self._gate:
                return await asyncio.to_thread(self._run, batch, package)

        outcomes: dict[str, ReplayOutcome] = {}
        for found in await asyncio.gather(
            *(one(b, p) for b, p in zip(batches, packages, strict=True))
        ):
            outcomes.update(found)
        return outcomes

    def _trial(self, key: tuple[str, str], package: Loaded) -> Trial | None:
        """The version's worker (started at its first batch), or None when it
        cannot be loaded (the reason kept)."""
        if key in self.unloadable:
            return None
        trial = self.trials.get(key)
        if trial is not None:
            return trial
        if package.refused:
            self.unloadable[key] = (
                "; ".join(p.message for p in package.problems) or "it cannot run here"
            )
            return None
        runtime = self.replayer.runtime
        options = runtime.options
        trial = Trial(
            package.source.path,
            runtime.catalog,
            options.release or "",
            self.replayer.timeout,
            options.import_timeout,
            options.worker_memory_mb,
        )
        self.workers += 1
        try:
            trial.start(package)
        except TailorError as exc:
            trial.close()
            self.unloadable[key] = exc.message
            return None
        self.trials[key] = trial
        return trial

    def _run(self, batch: ReplayBatch, package: Loaded) -> dict[str, ReplayOutcome]:
        """Every call of one batch in its version's worker (blocking)."""
        key = (batch.pin.name, batch.pin.version)
        trial = self._trial(key, package)
        if trial is None:
            error = f"{key[0]} {key[1]} could not be loaded: {self.unloadable[key]}"
            return {
                r.id: ReplayOutcome(False, error=error, failure="killed") for r in batch.replays
            }
        outcomes: dict[str, ReplayOutcome] = {}
        for replay in batch.replays:
            if not trial.alive:
                self.workers += 1  # the call starts a fresh one, as the pool would
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
        return outcomes

    async def close(self) -> ReplayStats:
        trials, self.trials = list(self.trials.values()), {}
        for trial in trials:
            await asyncio.to_thread(trial.close)
        return ReplayStats(self.workers, dict(self.unloadable))
