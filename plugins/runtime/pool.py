"""The worker pool: a bounded number of worker processes, each serving one
tenant at a time.

* At most ``max_workers`` processes (plus ``spare_workers`` blank ones started
  ahead, so a tenant's first call does not wait for a process to start).
* At most ``per_tenant`` of them serve one tenant: a tenant whose hooks hang can
  hold its own workers and no more, so other tenants keep theirs.
* A worker that served tenant A is never handed tenant B's data: to change
  tenants a worker is killed and a blank one takes its place (the customizations
  of A could otherwise keep A's data, or still be running, in that process).
* A worker reads only what its tenant needs: it is confined, when handed to a
  tenant, to the roots :meth:`WorkerPool.acquire` is given (the directories of
  that tenant's enabled customizations and the hookspecs). An idle worker whose
  roots are no longer what its tenant needs is killed and replaced. Spare
  workers wait blank and unconfined (they have run no consultant code) and are
  confined to whichever tenant takes them.
* Waiting for a worker counts against the request's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from plugins.runtime.process import WorkerDied, WorkerProcess, private_workdir

log = logging.getLogger("tailor.plugins")


class NoWorker(Exception):
    """No worker became free for this tenant before the deadline."""


class WorkerPool:
    def __init__(
        self,
        max_workers: int,
        per_tenant: int,
        spare_workers: int,
        memory_mb: int,
    ) -> None:
        self.max_workers = max(1, max_workers)
        self.per_tenant = max(1, min(per_tenant, self.max_workers))
        self.spare_workers = max(0, spare_workers)
        self.memory_mb = memory_mb
        self.workdir = private_workdir()
        #: what confines the workers (from the last one started)
        self.confinement: list[str] = []
        #: runs the blocking worker I/O: never more threads than workers can be busy
        self.executor = ThreadPoolExecutor(
            max_workers=self.max_workers + self.spare_workers + 1,
            thread_name_prefix="tailor-worker-io",
        )
        self._idle: list[WorkerProcess] = []
        self._busy: dict[str, int] = {}
        self._assigned = 0  # workers serving a tenant (busy or idle)
        self._spares: list[WorkerProcess] = []
        self._spawning_spares = 0
        self._cond: asyncio.Condition | None = None
        self._closed = False
        self.spawned = 0
        #: a worker process started here once (the pool can serve)
        self.started_one = False
        #: why the last worker process could not start (None: none failed)
        self.spawn_error: str | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def _spawn(self) -> WorkerProcess:
        """A blank, unconfined worker (confined when handed to a tenant)."""
        self.spawned += 1
        try:
            worker = WorkerProcess.spawn(self.memory_mb, self.workdir, None)
        except WorkerDied as exc:
            self.spawn_error = str(exc)
            raise
        self.started_one = True
        return worker

    def _confine(self, worker: WorkerProcess, roots: tuple[str, ...], deadline: float) -> None:
        worker.confine(roots, deadline)
        self.confinement = worker.confinement

    async def acquire(
        self, tenant: str, deadline: float, roots: Sequence[str] = ()
    ) -> WorkerProcess:
        """A worker for ``tenant`` that may read ``roots`` (and the defaults) and
        nothing else: an idle one of its own confined to exactly these, or a blank
        one confined now."""
        wanted = WorkerProcess.normal_roots(roots)
        cond = self._condition()
        async with cond:
            while True:
                if self._closed:
                    raise NoWorker("the runtime is shutting down")
                for dead in [w for w in self._idle if w.proc.poll() is not None]:
                    self._idle.remove(dead)  # died idle (e.g. a thread it left behind)
                    self._assigned -= 1
                    self.executor.submit(dead.kill)
                for stale in [w for w in self._idle if w.tenant == tenant and w.roots != wanted]:
                    # its tenant's customizations changed: it may read too much
                    # (or too little); a blank one takes its place
                    self._idle.remove(stale)
                    self._assigned -= 1
                    self.executor.submit(stale.kill)
                if self._busy.get(tenant, 0) < self.per_tenant:
                    own = [w for w in self._idle if w.tenant == tenant]
                    if own:
                        worker = max(own, key=lambda w: w.last_used)
                        self._idle.remove(worker)
                        self._busy[tenant] = self._busy.get(tenant, 0) + 1
                        return worker
                    if self._assigned < self.max_workers:
                        self._assigned += 1
                        self._busy[tenant] = self._busy.get(tenant, 0) + 1
                        break
                    if self._idle:  # recycle the least recently used other tenant's
                        victim = min(self._idle, key=lambda w: w.last_used)
                        self._idle.remove(victim)
                        self._busy[tenant] = self._busy.get(tenant, 0) + 1
                        self.executor.submit(victim.kill)
                        break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NoWorker(
                        "no worker process became free for this tenant within the budget "
                        f"(at most {self.per_tenant} per tenant, {self.max_workers} in all)"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cond.wait(), remaining)
        # a blank worker: a spare if one is ready, else a new process; confined
        # to this tenant's roots before it is handed over
        self._spares = [w for w in self._spares if w.alive and w.proc.poll() is None]
        spares = list(self._spares)
        try:
            if spares:
                worker = spares[0]
                self._spares.remove(worker)
            else:
                worker = await self._run(self._spawn)
            await self._run(self._confine, worker, wanted, deadline)
        except WorkerDied as exc:
            await self._forget(tenant)
            raise NoWorker(str(exc)) from None
        except BaseException:
            await self._forget(tenant)
            raise
        self._replenish()
        worker.tenant = tenant
        return worker

    async def _forget(self, tenant: str) -> None:
        cond = self._condition()
        async with cond:
            self._assigned -= 1
            self._busy[tenant] -= 1
            cond.notify_all()

    async def release(self, worker: WorkerProcess) -> None:
        tenant = worker.tenant or ""
        cond = self._condition()
        async with cond:
            self._busy[tenant] = self._busy.get(tenant, 1) - 1
            if worker.alive and not self._closed:
                worker.last_used = time.monotonic()
                self._idle.append(worker)
            else:
                self._assigned -= 1
                if worker.alive:
                    self.executor.submit(worker.kill)
            cond.notify_all()

    def _replenish(self) -> None:
        missing = self.spare_workers - len(self._spares) - self._spawning_spares
        for _ in range(max(0, missing)):
            self._spawning_spares += 1
            future = self.executor.submit(self._spawn)

            def done(f: Any) -> None:
                self._spawning_spares -= 1
                try:
                    worker = f.result()
                except WorkerDied as exc:
                    log.error("a spare worker process could not start: %s", exc)
                    return
                if self._closed:
                    worker.kill()
                else:
                    self._spares.append(worker)

            future.add_done_callback(done)

    def start(self) -> None:
        """Start the spare workers (in the background)."""
        self._replenish()

    @property
    def problem(self) -> str | None:
        """Why the pool cannot serve yet (None: a worker process started, or none is
        started ahead of the first call)."""
        if self.started_one or self.spare_workers == 0:
            return None
        if self.spawn_error is not None:
            return f"customization worker processes cannot start: {self.spawn_error}"
        return "starting the customization worker processes"

    def workers(self) -> list[WorkerProcess]:
        return [*self._idle, *self._spares]

    def evict_tenant(self, tenant: str | None = None) -> None:
        """Kill idle workers (of ``tenant``, or all): their loaded code is stale."""
        for worker in [w for w in self._idle if tenant is None or w.tenant == tenant]:
            self._idle.remove(worker)
            self._assigned -= 1
            self.executor.submit(worker.kill)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            for worker in [*self._idle, *self._spares]:
                worker.kill()
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        self._closed = True
        for worker in [*self._idle, *self._spares]:
            worker.kill()
        self._idle.clear()
        self._spares.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(OSError):
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)
