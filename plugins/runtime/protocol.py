"""The worker protocol: length-prefixed JSON messages over a pair of pipes.

Every message is a 4-byte big-endian length and that many bytes of JSON (orjson;
the standard library's encoder for what orjson refuses, e.g. integers wider than
64 bits). Inputs cross the boundary by value: a customization gets its own copy
and whatever it does to it changes nothing outside its own call.

Server -> worker: ``{"op": "confine" | "inspect" | "setup" | "call" | "ping", ...}``.
Worker -> server: events ``{"event": "started" | "ready" | "start" | "result" |
"done" | "error", ...}``; a call streams one ``start`` and one ``result`` per
implementation before its ``done``, so a worker killed mid-call still says whose
code was running.

The two directions are not equal: the server's messages are trusted, the
worker's are not (consultant code runs in that process and can write on its
pipe). The server reads at most :data:`MAX_REPORT` bytes per message and checks
every event against what it asked for (``plugins.runtime.runner``).

The messages are typed here, once: :data:`Op` (server -> worker, built by the
runner, the inspector and the trial; read by the worker) and :data:`Event`
(worker -> server, written by the worker). Both sides encode with :func:`frame`
and decode with :func:`read_message`; what the server decodes is a worker's claim,
checked field by field before it is believed, so it reads events as plain dicts.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Literal, NotRequired, TypedDict

import orjson

HEADER = struct.Struct(">I")
#: the largest message a worker accepts from the server (inputs can be large)
MAX_MESSAGE = 64 * 1024 * 1024
#: the largest result one implementation may return (larger: a failure of its call)
MAX_ANSWER = 2 * 1024 * 1024
#: the largest message the server accepts from a worker (a result and its
#: envelope); a worker sending more is killed
MAX_REPORT = MAX_ANSWER + 64 * 1024
#: the longest error message a worker reports for one implementation
MAX_ERROR = 2000


#: how a worker finds a catalog's hookspec modules: [source, module name, file]
SpecRef = list[Any]


# -- server -> worker ----------------------------------------------------------------
class ConfineOp(TypedDict):
    """The first message: the roots the worker may read from now on."""

    op: Literal["confine"]
    roots: list[str]


class InspectOp(TypedDict):
    """Import one package and report its hooks (``tailor customization check``)."""

    op: Literal["inspect"]
    path: str
    origin: str
    release: str
    specs: list[SpecRef]


class SetupCustomization(TypedDict):
    name: str
    path: str
    #: the module inside the package holding the hooks
    module: str


class SetupOp(TypedDict):
    """A fresh plugin manager with these customizations, in this order."""

    op: Literal["setup"]
    tenant: str
    specs: list[SpecRef]
    customizations: list[SetupCustomization]


class CallOp(TypedDict):
    """Call ``hook`` on every registered customization but ``skip``; its keyword
    arguments follow as one raw frame (inputs cross by value)."""

    op: Literal["call"]
    hook: str
    firstresult: bool
    skip: list[str]
    #: seconds of CPU per implementation
    budget: float
    #: per customization, the secret keys withheld from its ``values``
    withhold: NotRequired[dict[str, list[str]]]


class PingOp(TypedDict):
    op: Literal["ping"]


Op = ConfineOp | InspectOp | SetupOp | CallOp | PingOp


# -- worker -> server (claims: the server checks them) ----------------------------
class StartedEvent(TypedDict):
    event: Literal["started"]


class ReadyEvent(TypedDict):
    event: Literal["ready"]
    confinement: Any


class StartEvent(TypedDict):
    """An implementation's call begins (whose code runs now)."""

    event: Literal["start"]
    name: str


class ResultEvent(TypedDict):
    """One implementation's answer: ``value`` when ``ok``, else ``error``."""

    event: Literal["result"]
    name: str
    ok: bool
    ms: float
    read: list[str]
    scanned: bool
    value: NotRequired[Any]
    error: NotRequired[str]


class DoneEvent(TypedDict, total=False):
    """The end of an op: a setup's ``failed``, a call's ``threads``, an inspection's
    findings (``manifest`` ... ``hooks_module``); a ping's carries nothing."""

    event: Literal["done"]
    failed: dict[str, str]
    threads: int
    manifest: dict[str, Any] | None
    hooks: list[dict[str, Any]]
    setting_keys: list[str]
    problems: list[list[str]]
    warnings: list[str]
    hooks_module: str


class ErrorEvent(TypedDict):
    event: Literal["error"]
    message: str


Event = StartedEvent | ReadyEvent | StartEvent | ResultEvent | DoneEvent | ErrorEvent


class ProtocolError(Exception):
    """The other side sent something that is not a message, or hung up."""


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def frame(message: Op | Event) -> bytes:
    body = dumps(message)
    return HEADER.pack(len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (a blocking descriptor)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_message(fd: int, message: Op | Event) -> None:
    write_all(fd, frame(message))


def read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise ProtocolError("the other side closed the pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int) -> Any:
    """The next message, as sent: an :data:`Op` for the worker (trusted); for the
    server, a claimed :data:`Event` to check (``WorkerProcess.receive``)."""
    (size,) = HEADER.unpack(read_exactly(fd, HEADER.size))
    if size > MAX_MESSAGE:
        raise ProtocolError(f"message of {size} bytes exceeds the {MAX_MESSAGE} byte limit")
    return loads(read_exactly(fd, size))
