"""One worker process as the server sees it: spawned, spoken to with a deadline,
killed. Blocking code, run in the runtime's I/O threads (never on the event
loop): every wait is bounded by the caller's deadline, after which the worker
and everything it started (its whole process group) is killed."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

from plugins.runtime import protocol, sandbox


class WorkerDied(Exception):
    """The worker ended (exit, signal, memory) or broke the protocol."""


class DeadlinePassed(Exception):
    """The worker did not answer before the deadline; it has been killed."""


class WorkerProcess:
    def __init__(self, memory_mb: int, workdir: str, roots: Sequence[str] = ()) -> None:
        self.memory_mb = memory_mb
        self.roots = tuple(roots)
        self.proc = subprocess.Popen(
            sandbox.worker_command(memory_mb, roots),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=sandbox.worker_environment(),
            cwd=workdir,
            close_fds=True,
            start_new_session=True,
            preexec_fn=sandbox.lower_priority,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._out = self.proc.stdin.fileno()
        self._in = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)
        self._buffer = bytearray()
        #: the tenant this worker serves (None: blank) and what it has loaded
        self.tenant: str | None = None
        self.setup_key: tuple[Any, ...] | None = None
        self.setup_failed: dict[str, str] = {}
        self.alive = True
        self.last_used = time.monotonic()
        #: what confines it (from its "ready" message)
        self.confinement: list[str] = []

    @classmethod
    def spawn(
        cls, memory_mb: int, workdir: str, roots: Sequence[str] = (), timeout: float = 10.0
    ) -> WorkerProcess:
        worker = cls(memory_mb, workdir, roots)
        try:
            ready = worker.receive(time.monotonic() + timeout)
        except (WorkerDied, DeadlinePassed) as exc:
            worker.kill()
            raise WorkerDied(f"a worker process could not start: {exc}") from None
        if ready.get("event") != "ready":
            worker.kill()
            raise WorkerDied(f"a worker process answered {ready!r} at start-up")
        worker.confinement = list(ready.get("confinement") or [])
        return worker

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- I/O ------------------------------------------------------------------------
    def send(self, deadline: float, *messages: Any, raw: bytes | None = None) -> None:
        data = b"".join(protocol.frame(m) for m in messages)
        if raw is not None:
            data += protocol.HEADER.pack(len(raw)) + raw
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise DeadlinePassed("the worker did not take its input in time")
            _, writable, _ = select.select([], [self._out], [], remaining)
            if not writable:
                continue
            try:
                view = view[os.write(self._out, view) :]
            except (BrokenPipeError, OSError):
                self.kill()
                raise WorkerDied(self.exit_reason()) from None

    def receive(self, deadline: float) -> Any:
        """The next message, or DeadlinePassed / WorkerDied (the worker is then dead)."""
        header = protocol.HEADER.size
        while True:
            if len(self._buffer) >= header:
                (size,) = protocol.HEADER.unpack_from(self._buffer)
                if size > 2 * protocol.MAX_ANSWER:
                    self.kill()
                    raise WorkerDied(f"the worker sent a {size}-byte message (too large)")
                if len(self._buffer) >= header + size:
                    body = bytes(self._buffer[header : header + size])
                    del self._buffer[: header + size]
                    try:
                        return protocol.loads(body)
                    except ValueError:
                        self.kill()
                        raise WorkerDied("the worker broke the protocol") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise DeadlinePassed("no answer before the deadline")
            readable, _, _ = select.select([self._in], [], [], remaining)
            if not readable:
                continue
            try:
                chunk = os.read(self._in, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.kill()
                raise WorkerDied(self.exit_reason())
            self._buffer.extend(chunk)

    def events(self, deadline: float) -> Iterator[Any]:
        """Messages up to and including the one whose event is ``done``/``error``."""
        while True:
            message = self.receive(deadline)
            yield message
            if message.get("event") in ("done", "error"):
                return

    # -- ending ---------------------------------------------------------------------
    def exit_reason(self) -> str:
        code = self.proc.poll()
        if code is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(0.5)
        if code is None:
            return "its worker stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = {
                "SIGSEGV": " (a crash in C code)",
                "SIGKILL": " (killed: memory or deadline)",
                "SIGXCPU": " (CPU time limit)",
            }
            return f"its worker process was ended by {name}{hint.get(name, '')}"
        return f"its worker process exited with status {code}"

    def __del__(self) -> None:
        # a runtime dropped without close(): its workers must not outlive it
        with contextlib.suppress(Exception):
            self.kill()

    def kill(self) -> None:
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


def private_workdir() -> str:
    """An empty directory only the server's user can enter: the workers' cwd."""
    return tempfile.mkdtemp(prefix="tailor-workers-")
