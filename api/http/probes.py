"""The probes: ``/healthz`` (the process is alive and reaches its database) and
``/readyz`` (this node should get traffic).

``/readyz`` answers 200 ``{"status": "ready"}`` only when the database is
reachable, its schema is at this code's head or at a later revision compatible
with it (:func:`core.store.db.schema_status`), the customization worker processes
start (:attr:`plugins.runtime.pool.WorkerPool.problem`) and every customization
version the database pins is materialized in this node's cache (the warm-up,
:meth:`Probes.warm_up`, a background job). Otherwise 503 with ``status``
(``starting``, ``unavailable``, ``draining``) and the ``reason``; from the moment
the node is told to stop (``SIGTERM``), it answers ``draining``.

Anyone may ask: a reason never names the database's address or a driver's
error (those go to the log).
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.model.errors import DatabaseError, UnavailableError
from core.store.db import check_reachable, schema_status
from core.store.services import Services
from plugins.runtime import PluginRuntime

log = logging.getLogger("tailor.probes")

_Handler = Callable[[int, FrameType | None], Any] | int | None


class Probes:
    def __init__(self, services: Services, plugins: PluginRuntime) -> None:
        self.services = services
        self.plugins = plugins
        #: every pinned version materialized here (the warm-up ran once)
        self.warmed = False
        #: told to stop: in-flight requests finish, nothing new should come
        self.draining = False
        self._previous: dict[int, _Handler] = {}

    async def warm_up(self) -> None:
        """Materialize every version the database pins, before traffic comes."""
        count = await self.plugins.materialize_pinned()
        self.warmed = True
        log.info(
            "customizations materialized: %d version(s)",
            count,
            extra={"fields": {"event": "warmed", "versions": count}},
        )

    # -- draining -----------------------------------------------------------------
    def drain(self) -> None:
        if not self.draining:
            log.info("draining: finishing in-flight requests", extra={"fields": {"event": "drain"}})
        self.draining = True

    def watch_signals(self) -> None:
        """Answer ``draining`` from the first SIGTERM or SIGINT on, then let the
        server's own handler (uvicorn's: stop accepting, finish, shut down) run.
        Only the main thread may set handlers: elsewhere (an embedding test) the
        probe learns of draining through :meth:`drain` alone."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore_signals(self) -> None:
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._previous.clear()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.drain()
        previous = self._previous.get(sig)
        if callable(previous):
            previous(sig, frame)

    # -- the endpoints ------------------------------------------------------------
    async def healthz(self, _request: Request) -> Response:
        try:
            await check_reachable(self.services.engine)
        except DatabaseError as exc:
            # anyone may ask: the URL, the driver's error and the SQL go to the log only
            log.error("healthz: %s", exc.message)
            return JSONResponse(
                {"status": "unavailable"},
                status_code=503,
                headers={"Retry-After": str(UnavailableError.RETRY_AFTER)},
            )
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        status, reason = await self.readiness()
        if status == "ready":
            return JSONResponse({"status": status})
        return JSONResponse(
            {"status": status, "reason": reason},
            status_code=503,
            headers={"Retry-After": str(UnavailableError.RETRY_AFTER)},
        )

    async def readiness(self) -> tuple[str, str]:
        """(status, reason): ``ready`` or why not."""
        if self.draining:
            return "draining", "the node is stopping: in-flight requests finish, send no new ones"
        try:
            await check_reachable(self.services.engine)
            problem = await schema_status(self.services.engine)
        except Exception as exc:  # any driver error: the database cannot be asked
            log.error("readyz: %s", getattr(exc, "message", exc))
            return "unavailable", "the database is unreachable"
        if problem is not None:
            return "unavailable", problem
        pool = self.plugins.pool
        if pool.problem is not None:
            return ("unavailable" if pool.spawn_error else "starting"), pool.problem
        if not self.warmed:
            return "starting", "materializing the customization versions the database pins"
        return "ready", ""
