"""What a worker process may and may not do.

Server side (:func:`worker_command`, :func:`worker_environment`): a worker is a
fresh interpreter (``python -I``: no inherited memory, no ``PYTHON*`` variables,
no user site), started in its own session, with a scrubbed environment, no
inherited descriptors but its two pipes, an empty private working directory,
and a lower CPU priority than the server.

Worker side (:func:`confine`, when the server sends the directories the worker
may read: those of the customizations it will run for its one tenant), before
any consultant code is imported:

* the protocol moves off descriptors 0 and 1, which become ``/dev/null`` (a
  ``print`` cannot corrupt the protocol);
* resource limits: address space (``memory_mb``), no core files; the CPU time of
  each call is capped by :func:`limit_cpu` (the server's wall-clock deadline
  kills the worker anyway);
* an audit hook (PEP 578) refuses, for the rest of the process's life: opening
  files for writing, reading files outside the interpreter, the installed
  packages, the product's hookspecs and the directories of the customizations
  this worker runs (never another tenant's), sockets, subprocesses and
  forks, signals to other processes, ``ctypes``, SQLite connections, new
  interpreters, and changes to the file system. A customization cannot reach
  the server's database, tokens or files, nor stop the server.
* ``stat`` (and ``os.path.exists``, ``readlink``, ``access``) outside the roots:
  neither Landlock nor seccomp can refuse it, so where the kernel allows a
  private mount namespace the worker sees only its roots
  (:func:`plugins.runtime.oslimits.private_view`: "mount namespace" in the
  confinement list) and a path outside them does not exist. Elsewhere a **stat
  guard** (:func:`guard_stat`) replaces those functions in ``os`` and ``posix``
  and refuses paths outside the roots; it is Python, not the kernel: hostile
  code can reach the original C functions through other references (the
  guard's closure, ``os.DirEntry``), so it stops careless code only.
  ``os.listdir``/``os.scandir`` outside the roots are refused by the audit hook
  either way (and by Landlock where it runs).
"""

from __future__ import annotations

import errno
import os
import posix
import resource
import sys
import sysconfig
import threading
from collections.abc import Iterable
from typing import Any

#: audit events refused outright (prefix match on the event name)
DENIED_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "signal.pthread_kill",
    "ctypes.",
    "sqlite3.connect",
    "cpython.PyInterpreterState_New",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.link",
    "os.symlink",
    "os.utime",
    "os.chdir",
    "os.chroot",
    "shutil.",
    "webbrowser.",
    "winreg.",
    "pty.",
)

#: modules whose functions reach the OS without an audit event
DENIED_MODULES = frozenset({"_posixsubprocess", "_ctypes", "ctypes", "_xxsubinterpreters"})

#: files (not directories) a worker may read
READABLE_FILES = ("/dev/urandom", "/etc/localtime")

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def worker_command(memory_mb: int) -> list[str]:
    """The directories beyond :func:`default_roots` the worker may read (the
    product's hookspec modules', the customizations it runs) come later, in its
    ``confine`` message: a worker can be started before the pool knows whom it
    will serve."""
    return [sys.executable, "-I", "-m", "plugins.runtime.worker", str(memory_mb)]


def worker_environment() -> dict[str, str]:
    """Nothing of the server's environment: no database URL, no secret key."""
    return {"PATH": os.defpath, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def lower_priority() -> None:
    """Workers yield the CPU to the server (run by the worker at start: a
    ``preexec_fn`` would make every spawn fork the whole server)."""
    try:
        os.nice(10)
    except OSError:
        pass


def take_protocol_fds() -> tuple[int, int]:
    """Move the protocol off stdin/stdout; both become /dev/null."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    return proto_in, proto_out


def limit_memory(memory_mb: int) -> None:
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def limit_cpu(seconds: float) -> None:
    """Cap the CPU time the next call may use (SIGXCPU ends the worker)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    soft = int(spent + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class Confinement:
    """The worker's audit hook: reads below ``roots`` only; everything in
    :data:`DENIED_PREFIXES` and every write is refused. It gives clear errors
    for what a careless customization tries; what stops a hostile one is the
    kernel's part (:mod:`plugins.runtime.oslimits`), which this process can no
    longer lift."""

    def __init__(self, roots: Iterable[str]) -> None:
        self.roots: tuple[str, ...] = tuple(sorted({os.path.realpath(r) for r in roots if r}))
        self.active = False

    def _readable(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == os.devnull or any(
            real == root or real.startswith(root + os.sep) for root in self.roots
        )

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            if isinstance(path, int):
                return
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing:
                raise PermissionError(f"customizations may not write files ({path})")
            if path is not None and not self._readable(str(path)):
                raise PermissionError(f"customizations may not read {path}")
            return
        if event in ("os.listdir", "os.scandir"):
            path = args[0] if args else None
            if isinstance(path, int):
                return
            listed = os.fsdecode(path) if isinstance(path, bytes) else str(path or ".")
            if not self._readable(listed):
                raise PermissionError(f"customizations may not list {listed}")
            return
        if event == "import" and args and args[0] in DENIED_MODULES:
            raise PermissionError(f"customizations may not import {args[0]}")
        if event.startswith(DENIED_PREFIXES):
            raise PermissionError(f"customizations may not do this here: {event}")


#: the parts of the confinement that are Python, not the kernel (hostile code
#: can defeat them)
IN_PYTHON = ("audit hook", "stat guard")

#: the functions that answer about a path without opening it (no audit event in
#: CPython 3.11); ``os.path.exists``, ``isdir``, ``pathlib.Path.stat`` call these
STAT_FUNCTIONS = ("stat", "lstat", "access", "readlink", "statvfs")


def guard_stat(confinement: Confinement) -> None:
    """Where no mount namespace hides the server's files: ``os.stat`` and its
    kin (in ``os`` and ``posix``, which the import system calls) refuse a path
    outside the roots with PermissionError, as a read would be. A guard in
    Python, not a boundary: the original functions stay reachable to code that
    looks for them."""
    checking = threading.local()

    def guarded(original: Any, name: str) -> Any:
        def check(*args: Any, **kwargs: Any) -> Any:
            path = args[0] if args else kwargs.get("path")
            if (
                confinement.active
                and path is not None
                and not isinstance(path, int)
                and not getattr(checking, "busy", False)
            ):
                if kwargs.get("dir_fd") is not None:
                    raise PermissionError(f"customizations may not {name} relative to a dir_fd")
                shown = os.fsdecode(os.fspath(path))
                # the check resolves links with these same functions: unguarded inside
                checking.busy = True
                try:
                    readable = confinement._readable(shown)
                finally:
                    checking.busy = False
                if not readable:
                    raise PermissionError(
                        errno.EACCES, f"customizations may not {name} outside their roots", shown
                    )
            return original(*args, **kwargs)

        check.__name__ = check.__qualname__ = name
        return check

    for name in STAT_FUNCTIONS:
        original = getattr(posix, name)
        replacement = guarded(original, name)
        setattr(posix, name, replacement)
        if getattr(os, name, None) is original:
            setattr(os, name, replacement)


def default_roots() -> list[str]:
    """The interpreter, the installed packages, and Tailor's own ``plugins`` and
    ``core`` packages (which a worker imports)."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update({sys.prefix, sys.base_prefix, sys.exec_prefix})
    import core
    import plugins

    for package in (plugins, core):
        roots.update(package.__path__)
    return [r for r in roots if r]


def confine(memory_mb: int, roots: Iterable[str]) -> tuple[Confinement, list[str]]:
    """Limits, the kernel's confinement, then the audit hook (active at once),
    and the stat guard where no mount namespace hides the server's files: the
    hook and the names of what applied."""
    from plugins.runtime import oslimits

    lower_priority()
    limit_memory(memory_mb)
    allowed = [*default_roots(), *roots, "/usr/share/zoneinfo"]
    applied = oslimits.apply(allowed, READABLE_FILES)
    # functions that would start a process without an audit event: gone
    import _posixsubprocess
    import subprocess

    def _refused(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError("customizations may not start processes")

    _posixsubprocess.fork_exec = _refused
    # a private name typeshed does not declare; replaced so nothing can spawn
    subprocess._fork_exec = _refused  # type: ignore[attr-defined]
    confinement = Confinement([*allowed, *READABLE_FILES])
    confinement.active = True
    sys.addaudithook(confinement)
    if "mount namespace" in applied:
        return confinement, [*applied, "audit hook"]
    guard_stat(confinement)
    return confinement, [*applied, "audit hook", "stat guard"]
