"""Structured logs: one JSON line per request, never a token or a secret value.

:class:`RequestLog` is the outermost ASGI wrapper of ``/graphql``: it assigns the
request id (``X-Request-Id``, echoed in the response), turns a crash that
escapes everything else into a GraphQL error body with that id, and logs one
line per request with the request id, method, path, status, duration, the
caller's role, name and tenant scope. It never logs headers, bodies, variables
or results, so neither tokens nor setting values can reach the log.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.outage import unavailable_response
from api.http.protocol import error_response
from api.state import request_state
from core.model.request_id import REQUEST_ID
from core.store.db import is_outage

ACCESS_LOGGER = "tailor.access"
log = logging.getLogger(ACCESS_LOGGER)
errors_log = logging.getLogger("tailor.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a plain token, else a new one
    (so nothing a client sends can forge or break a log line)."""
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex[:16]


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = request_state(scope)
        headers = dict(scope.get("headers") or ())
        raw_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = state.request_id = request_id_from(raw_id)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        bound = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status == 0 and is_outage(exc):
                # the database is down: no bug to report, a request to retry
                log.warning(
                    "database unavailable (request %s): %s: %s",
                    request_id,
                    type(exc).__name__,
                    exc,
                    extra={"fields": {"request_id": request_id}},
                )
                await unavailable_response(Request(scope), exc)(scope, receive, send_with_id)
                return
            errors_log.error(
                "unhandled error (request %s): %s",
                request_id,
                type(exc).__name__,
                exc_info=True,
                extra={"fields": {"request_id": request_id}},
            )
            if status == 0:
                response = error_response(
                    500,
                    f"Unexpected error. Quote request id {request_id} when reporting it.",
                    "INTERNAL_ERROR",
                    state.media_type,
                )
                await response(scope, receive, send_with_id)
            state.masked_errors += 1
        finally:
            log.info(
                "request",
                extra={"fields": access_fields(scope, status, time.perf_counter() - started)},
            )
            REQUEST_ID.reset(bound)


def access_fields(scope: Scope, status: int, seconds: float) -> dict[str, Any]:
    """What the access log records of one request: no headers, no bodies."""
    state = request_state(scope)
    principal = state.principal
    operations = state.operations
    fields: dict[str, Any] = {
        "event": "request",
        "request_id": state.request_id or None,
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "role": principal.role.value if principal is not None else None,
        "principal": principal.name if principal is not None else None,
        "tenants": sorted(principal.tenants) if principal is not None else None,
        "operations": [_operation_name(op) for op in operations],
    }
    if state.masked_errors:
        fields["masked_errors"] = state.masked_errors
    return fields


def _operation_name(params: Any) -> str | None:
    name = params.get("operationName") if isinstance(params, dict) else None
    return name[:100] if isinstance(name, str) else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's
    ``fields`` (see ``extra={"fields": ...}``) and the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for Tailor's loggers (``tailor.*``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("tailor")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config``: its own lines (start-up, shutdown, errors) as JSON
    lines on stderr too, like Tailor's (every process a node runs applies it)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    quiet = {"handlers": ["json"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": quiet,
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": quiet,
            "tailor": quiet,
        },
    }
