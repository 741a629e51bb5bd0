"""Running a node: uvicorn with Tailor's logs, drain and exit status.

On ``SIGTERM`` (or ``SIGINT``) a node stops accepting connections at once (the
listening socket is closed: a proxy's next attempt is refused and goes to another
node), lets the requests in flight finish within ``TAILOR_SHUTDOWN_GRACE`` seconds
(uvicorn's ``timeout_graceful_shutdown``), runs the app's shutdown (background jobs
cancelled, customization workers ended, connections closed) and exits 0.

With ``--workers N`` uvicorn's supervisor runs the workers; the supervisor's own
copy of the listening socket is closed as soon as the signal arrives (uvicorn
keeps it open until its workers have ended, so connections would queue on a
socket nobody accepts from), and ``PROMETHEUS_MULTIPROC_DIR`` is set to a fresh
directory so that ``/metrics`` sums every worker's counters
(:mod:`api.http.metrics`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from api.http.logging import uvicorn_log_config
from api.http.metrics import MULTIPROC_ENV

#: seconds uvicorn's supervisor waits for a worker to answer its health check
HEALTHCHECK_SECONDS = 30


def run_node(
    app: Any, *, host: str, port: int, workers: int, grace: float, factory: bool = False
) -> None:
    """Serve ``app`` (an ASGI app, or with ``workers`` > 1 the import string of an
    app factory) until told to stop; returns when the node has drained."""
    config = uvicorn.Config(
        app,
        factory=factory,
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(),
        log_level="info",
        # one JSON line per request comes from Tailor itself (api.http.logging)
        access_log=False,
        # uvicorn annotates whole seconds; it waits with asyncio.wait_for (any float)
        timeout_graceful_shutdown=grace,  # type: ignore[arg-type]
        # a worker busy starting (imports, its customization workers) on a loaded
        # machine is not hung: uvicorn's 5 s would kill and restart it
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
    )
    if workers == 1:
        server = uvicorn.Server(config)
        previous = {sig: signal.signal(sig, _exit_ok) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            # uvicorn raises the signal it stopped on again once it has drained:
            # _exit_ok turns that into a normal return
            server.run()
        except _Stopped:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    metrics_dir = tempfile.mkdtemp(prefix="tailor-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        sock = config.bind_socket()
        _Supervisor(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Stopped(Exception):
    pass


def _exit_ok(_sig: int, _frame: FrameType | None) -> None:
    raise _Stopped


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, closing its listening socket first when told to stop."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self._listening = sockets
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)

    def _on_stop(self, sig: int, _frame: FrameType | None) -> None:
        # at once, not at the supervisor's next turn (every 0.5 s); and no worker
        # is started again from now on (its socket is closed)
        self._stop_listening()
        self.signal_queue.append(sig)
        self.should_exit.set()

    def _stop_listening(self) -> None:
        for sock in self._listening:
            sock.close()
