"""Mask errors from unexpected exceptions; keep expected ones as they are.

A masked error tells the client a request id and nothing else; the log line with
the same request id holds the exception and its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from core.errors import TailorError

log = logging.getLogger("tailor.errors")

INTERNAL_CODE = "INTERNAL_ERROR"


def should_mask(error: GraphQLError) -> bool:
    """Mask errors from unexpected exceptions; keep parse/validation errors and
    expected domain errors, which carry clear messages."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | TailorError)


class MaskUnexpectedErrors(SchemaExtension):
    """Replace each unexpected error by ``Unexpected error`` with the request id
    in ``extensions`` (``code: INTERNAL_ERROR``, ``requestId``), and log it."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        errors = result.errors
        request_id = _request_id(self.execution_context.context)
        masked = [
            self._mask(error, request_id) if should_mask(error) else error for error in errors
        ]
        result.errors = masked

    def _mask(self, error: GraphQLError, request_id: str) -> GraphQLError:
        original = error.original_error
        log.error(
            "unexpected error (request %s) at %s: %s",
            request_id,
            ".".join(str(p) for p in error.path or ()) or "-",
            type(original).__name__,
            exc_info=(type(original), original, original.__traceback__) if original else None,
            extra={"fields": {"request_id": request_id}},
        )
        _count_masked(self.execution_context.context)
        return GraphQLError(
            f"Unexpected error. Quote request id {request_id} when reporting it.",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": INTERNAL_CODE, "requestId": request_id},
        )


def _request_id(context: Any) -> str:
    return str(getattr(context, "request_id", "") or "unknown")


def _count_masked(context: Any) -> None:
    request = getattr(context, "request", None)
    if request is not None:
        state = request.scope.setdefault("state", {})
        state["masked_errors"] = state.get("masked_errors", 0) + 1
