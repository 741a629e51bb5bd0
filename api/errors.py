"""Expected errors as GraphQL types. Every result union of the schema is
``Success | <these>``, so clients handle errors with ``... on Error``."""

from __future__ import annotations

from typing import Any, Union

import strawberry
from strawberry.scalars import JSON

from core import errors as domain


@strawberry.interface(description="An expected error: a stable code and a clear message.")
class Error:
    code: str
    message: str


@strawberry.type(description="A tenant, setting, release, environment or override does not exist.")
class NotFound(Error):
    kind: str
    identifier: str


@strawberry.type(description="A value breaks a setting's type, constraint or business rule.")
class ValidationFailed(Error):
    key: str
    rule: str = strawberry.field(
        description="type, min, max, choices, pattern or customization:<name>"
    )
    value: JSON | None


@strawberry.type(description="An argument is malformed.")
class InvalidInput(Error):
    field: str


@strawberry.type(description="expectedRevision is stale: nothing was written.")
class Conflict(Error):
    key: str
    expected_revision: int
    current_revision: int


@strawberry.type(description="Creating something whose identifier is taken.")
class AlreadyExists(Error):
    kind: str
    identifier: str


@strawberry.type(description="Your token's role or tenant scope does not allow this.")
class PermissionDenied(Error):
    pass


ERROR_TYPES = (NotFound, ValidationFailed, InvalidInput, Conflict, AlreadyExists, PermissionDenied)

#: every result union of the schema is ``Annotated[Union[Success, Errors], strawberry.union(..)]``
Errors = Union[NotFound, ValidationFailed, InvalidInput, Conflict, AlreadyExists, PermissionDenied]  # noqa: UP007


def from_domain(exc: domain.TailorError) -> Any:
    """Map a domain error to its GraphQL type (anything unknown is re-raised)."""
    base = {"code": exc.code, "message": exc.message}
    if isinstance(exc, domain.NotFoundError):
        return NotFound(**base, kind=exc.kind, identifier=exc.identifier)
    if isinstance(exc, domain.SettingValidationError):
        return ValidationFailed(**base, key=exc.key, rule=exc.rule, value=_jsonable(exc.value))
    if isinstance(exc, domain.InvalidInputError):
        return InvalidInput(**base, field=exc.field)
    if isinstance(exc, domain.ConflictError):
        return Conflict(
            **base, key=exc.key, expected_revision=exc.expected, current_revision=exc.actual
        )
    if isinstance(exc, domain.AlreadyExistsError):
        return AlreadyExists(**base, kind=exc.kind, identifier=exc.identifier)
    if isinstance(exc, domain.PermissionDeniedError):
        return PermissionDenied(**base)
    raise exc


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return repr(value)
