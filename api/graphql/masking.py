"""Mask errors from unexpected exceptions with strawberry's ``MaskErrors``; keep
expected ones as they are.

A masked error tells the client a request id and nothing else; the log line with
the same request id holds the exception and its traceback. A database outage
(:func:`core.store.db.is_outage`) is no bug: it becomes the ``UNAVAILABLE`` error.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from api.graphql.errors import as_graphql_error
from api.state import request_state
from core.model.errors import TailorError, UnavailableError
from core.store.db import is_outage

log = logging.getLogger("tailor.errors")

INTERNAL_CODE = "INTERNAL_ERROR"


def should_mask(error: GraphQLError) -> bool:
    """Mask errors from unexpected exceptions; keep parse/validation errors and
    expected domain errors, which carry clear messages."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | TailorError)


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's ``MaskErrors`` with :func:`should_mask` deciding, and the
    request id added: each unexpected error becomes ``Unexpected error. Quote
    request id <id> when reporting it.`` with ``extensions`` ``{code:
    INTERNAL_ERROR, requestId}``, and is logged (with its traceback) under that id.

    Strawberry makes a new instance per operation (it is passed as a class), so
    ``execution_context`` is this request's."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = _request_id(context)
        original = error.original_error
        if original is not None and is_outage(original):
            # expected in an outage: one line (no traceback), and the client is
            # told to retry (the app answers 503 with Retry-After)
            log.warning(
                "database unavailable (request %s) at %s: %s: %s",
                request_id,
                ".".join(str(p) for p in error.path or ()) or "-",
                type(original).__name__,
                original,
                extra={"fields": {"request_id": request_id}},
            )
            unavailable = as_graphql_error(UnavailableError())
            return GraphQLError(
                unavailable.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions=unavailable.extensions,
            )
        log.error(
            "unexpected error (request %s) at %s: %s",
            request_id,
            ".".join(str(p) for p in error.path or ()) or "-",
            type(original).__name__,
            exc_info=(type(original), original, original.__traceback__) if original else None,
            extra={"fields": {"request_id": request_id}},
        )
        _count_masked(context)
        masked = super().anonymise_error(error)
        masked.message = f"{self.error_message} Quote request id {request_id} when reporting it."
        masked.extensions = {"code": INTERNAL_CODE, "requestId": request_id}
        return masked


def _request_id(context: Any) -> str:
    return str(getattr(context, "request_id", "") or "unknown")


def _count_masked(context: Any) -> None:
    request = getattr(context, "request", None)
    if request is not None:
        request_state(request.scope).masked_errors += 1
