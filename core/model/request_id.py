"""The id of the request being served, for the log lines written while serving it.

Set by the HTTP layer (``api.http.logging.RequestLog``) for the duration of a
request; every JSON log line written meanwhile carries it as ``request_id`` (the
customization failures of ``plugins.runtime``, the audit lines of
``core.store.feed``), so one id leads from the proxy's log to the node's.
"""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("tailor_request_id", default=None)


def current_request_id() -> str | None:
    return REQUEST_ID.get()
