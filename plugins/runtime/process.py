"""One worker process as the server sees it: spawned, confined, spoken to with a
deadline, killed. Blocking code, run in the runtime's I/O threads (never on the
event loop): every wait is bounded by the caller's deadline, after which the
worker and everything it started (its whole process group) is killed.

A worker starts blank and unconfined (it has imported only Tailor's own code)
and waits for :meth:`WorkerProcess.confine`, which names the directories it may
read from then on: the pool starts spare workers ahead and confines one to the
tenant it is handed to. Nothing a worker writes is trusted: a message over
:data:`protocol.MAX_REPORT` bytes, or one that is not a JSON object with an
``event``, kills it (:class:`ProtocolBroken`)."""

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


class ProtocolBroken(WorkerDied):
    """The worker wrote something that is not a message it may send; it has been
    killed. ``str()`` says what, for the customization it is charged to."""


class DeadlinePassed(Exception):
    """The worker did not answer before the deadline; it has been killed."""


class WorkerProcess:
    def __init__(self, memory_mb: int, workdir: str) -> None:
        self.memory_mb = memory_mb
        #: the directories it may read beyond the defaults (None: not confined yet)
        self.roots: tuple[str, ...] | None = None
        self.proc = subprocess.Popen(
            sandbox.worker_command(memory_mb),
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
        cls,
        memory_mb: int,
        workdir: str,
        roots: Sequence[str] | None = (),
        timeout: float = 10.0,
    ) -> WorkerProcess:
        """A started worker, confined to ``roots`` (None: left blank and
        unconfined, for :meth:`confine` later; it runs no consultant code until)."""
        worker = cls(memory_mb, workdir)
        deadline = time.monotonic() + timeout
        try:
            started = worker.receive(deadline)
        except (WorkerDied, DeadlinePassed) as exc:
            worker.kill()
            raise WorkerDied(f"a worker process could not start: {exc}") from None
        if started.get("event") != "started":
            worker.kill()
            raise WorkerDied(f"a worker process answered {started!r} at start-up")
        if roots is not None:
            worker.confine(roots, deadline)
        return worker

    @staticmethod
    def normal_roots(roots: Sequence[str]) -> tuple[str, ...]:
        """``roots`` as a worker is confined to them (compare with :attr:`roots`)."""
        return tuple(sorted({os.path.realpath(r) for r in roots if r}))

    def confine(self, roots: Sequence[str], deadline: float) -> None:
        """Confine the blank worker: from now on it reads only below ``roots`` (and
        the defaults). Once: the kernel's confinement cannot be widened."""
        if self.roots is not None:
            raise RuntimeError("a worker is confined once")
        wanted = self.normal_roots(roots)
        try:
            self.send(deadline, {"op": "confine", "roots": list(wanted)})
            ready = self.receive(deadline)
        except (WorkerDied, DeadlinePassed) as exc:
            self.kill()
            raise WorkerDied(f"a worker process could not be confined: {exc}") from None
        if ready.get("event") != "ready":
            self.kill()
            raise WorkerDied(f"a worker process answered {ready!r} when confined")
        self.roots = wanted
        self.confinement = [str(c) for c in ready.get("confinement") or []]

    def threads(self) -> int | None:
        """How many threads the process runs, counted by the kernel (None: no
        ``/proc`` here). Never the worker's own word: a customization can start
        threads its worker does not see (``_thread.start_new_thread``)."""
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/task"))
        except OSError:
            return None

    def pending(self) -> bool:
        """Whether the worker wrote something nobody asked for yet (between calls a
        well-behaved worker is silent)."""
        if self._buffer:
            return True
        try:
            readable, _, _ = select.select([self._in], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- I/O ------------------------------------------------------------------------
    def send(self, deadline: float, *messages: protocol.Op, raw: bytes | None = None) -> None:
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

    def receive(self, deadline: float) -> dict[str, Any]:
        """The next message (a JSON object with a string ``event``), or
        DeadlinePassed / WorkerDied / ProtocolBroken (the worker is then dead)."""
        header = protocol.HEADER.size
        while True:
            if len(self._buffer) >= header:
                (size,) = protocol.HEADER.unpack_from(self._buffer)
                if size > protocol.MAX_REPORT:
                    self.kill()
                    raise ProtocolBroken(
                        f"a {size}-byte message (a worker may send at most {protocol.MAX_REPORT})"
                    )
                if len(self._buffer) >= header + size:
                    body = bytes(self._buffer[header : header + size])
                    del self._buffer[: header + size]
                    try:
                        message = protocol.loads(body)
                    except (ValueError, UnicodeDecodeError):
                        self.kill()
                        raise ProtocolBroken(f"{size} bytes that are not JSON") from None
                    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
                        self.kill()
                        raise ProtocolBroken("a message that is not an event object")
                    return message
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

    def events(self, deadline: float) -> Iterator[dict[str, Any]]:
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
