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
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

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


def frame(message: Any) -> bytes:
    body = dumps(message)
    return HEADER.pack(len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (a blocking descriptor)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_message(fd: int, message: Any) -> None:
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
    (size,) = HEADER.unpack(read_exactly(fd, HEADER.size))
    if size > MAX_MESSAGE:
        raise ProtocolError(f"message of {size} bytes exceeds the {MAX_MESSAGE} byte limit")
    return loads(read_exactly(fd, size))
