"""Expected errors as GraphQL types, and the one mapping every resolver uses.

Every result union of the schema is ``Success | <these>``, so clients handle
errors with ``... on Error``. A resolver is decorated with :func:`expected`: a
:class:`~core.model.errors.TailorError` it raises becomes its result type (looked up by
the error's class in :data:`RESULT_TYPES`), or, for a field whose type is no union
(``@expected(union=False)``), a GraphQL error carrying the code. Anything else
propagates and :mod:`api.graphql.masking` masks it with the request id, except a
database outage: that becomes a GraphQL error with code ``UNAVAILABLE`` and the
HTTP answer a 503 with ``Retry-After`` (see :func:`core.store.db.is_outage`).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, Union, overload

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from api.state import request_state
from core.model import errors as domain


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


@strawberry.type(
    description="expectedRevision is stale: nothing was written. A revert of a customization "
    "change (revertChange) made stale by a later one: expectedRevision is the reverted "
    "change's feed sequence, currentRevision the later change's."
)
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


@strawberry.type(
    description="The environment is protected: propose the change (proposeChange) for another "
    "principal to approve. Nothing was written."
)
class ChangeRequestRequired(Error):
    tenant: str
    environment: str | None = strawberry.field(
        description="null: a tenant-wide change (override, customization, upgrade) of a tenant "
        "with a protected environment"
    )


#: every result union of the schema is ``Annotated[Union[Success, Errors], strawberry.union(..)]``
Errors = Union[  # noqa: UP007
    NotFound,
    ValidationFailed,
    InvalidInput,
    Conflict,
    AlreadyExists,
    PermissionDenied,
    ChangeRequestRequired,
]


#: how each expected error becomes its GraphQL type (a subclass not listed uses
#: its nearest listed base class); :func:`register` adds one
RESULT_TYPES: dict[type[domain.TailorError], Callable[[Any], Any]] = {
    domain.NotFoundError: lambda e: NotFound(
        code=e.code, message=e.message, kind=e.kind, identifier=e.identifier
    ),
    domain.SettingValidationError: lambda e: ValidationFailed(
        code=e.code, message=e.message, key=e.key, rule=e.rule, value=_jsonable(e.value)
    ),
    domain.InvalidInputError: lambda e: InvalidInput(code=e.code, message=e.message, field=e.field),
    domain.ConflictError: lambda e: Conflict(
        code=e.code,
        message=e.message,
        key=e.key,
        expected_revision=e.expected,
        current_revision=e.actual,
    ),
    domain.AlreadyExistsError: lambda e: AlreadyExists(
        code=e.code, message=e.message, kind=e.kind, identifier=e.identifier
    ),
    domain.PermissionDeniedError: lambda e: PermissionDenied(code=e.code, message=e.message),
    domain.ChangeRequestRequiredError: lambda e: ChangeRequestRequired(
        code=e.code, message=e.message, tenant=e.tenant, environment=e.environment
    ),
}

E = TypeVar("E", bound=domain.TailorError)


def register(error: type[E], result: Callable[[E], Any]) -> None:
    """Map ``error`` (and its subclasses) to a result type of its own, e.g. a
    refused upgrade to ``UpgradeBlocked`` with its findings."""
    RESULT_TYPES[error] = result


def from_domain(exc: domain.TailorError) -> Any:
    """Map a domain error to its GraphQL type (anything unmapped is re-raised)."""
    for cls in type(exc).__mro__:
        build = RESULT_TYPES.get(cls)
        if build is not None:
            return build(exc)
    raise exc


def as_graphql_error(exc: domain.TailorError) -> GraphQLError:
    """An expected error where the field has no union to carry it: a GraphQL
    error with the error's message and ``extensions.code`` (never masked); an
    outage adds ``extensions.retryAfter`` (seconds, as the 503's ``Retry-After``)."""
    extensions: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, domain.UnavailableError):
        extensions["retryAfter"] = exc.retry_after
    return GraphQLError(exc.message, extensions=extensions, original_error=exc)


P = ParamSpec("P")
R = TypeVar("R")


@overload
def expected(resolver: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...
@overload
def expected(
    *, union: bool = True
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...
def expected(resolver: Any = None, /, *, union: bool = True) -> Any:
    """Decorate an async resolver (below ``@strawberry.field``): an expected error
    it raises becomes its result type (:func:`from_domain`), or with
    ``union=False`` a GraphQL error with the code (:func:`as_graphql_error`). Either
    way the answer is marked uncacheable (an error is the answer of this moment
    only, see :mod:`api.http.response_cache`)."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def resolve(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await function(*args, **kwargs)
            except domain.TailorError as exc:
                uncacheable(kwargs.get("info"))
                # an outage is the server's state, not the caller's input: a GraphQL
                # error (and a 503, see api.http.graphql_view), never a member of the union
                if not union or isinstance(exc, domain.UnavailableError):
                    raise as_graphql_error(exc) from exc
                result: R = from_domain(exc)
                return result

        _MAPPED.add(resolve)
        return resolve

    return decorate if resolver is None else decorate(resolver)


#: the resolvers :func:`expected` wraps (so a test can check every root field does)
_MAPPED: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def maps_expected_errors(resolver: Callable[..., Any]) -> bool:
    """Whether ``resolver`` is wrapped by :func:`expected`."""
    return resolver in _MAPPED


def uncacheable(info: Any) -> None:
    """This answer must not be kept (see :mod:`api.http.response_cache`): an error, or
    a customization failure, is the answer of this moment only."""
    request = getattr(getattr(info, "context", None), "request", None)
    if request is not None:
        request_state(request.scope).uncacheable = True


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return repr(value)
