"""Expected, typed domain errors.

Every error has a stable ``code`` and a message that says what was wrong and how
to fix it. The API maps each to a GraphQL result type; the CLI prints the message
and exits with status 2. Anything that is not a :class:`TailorError` is
unexpected and gets masked by the API.
"""

from __future__ import annotations

from typing import Any


class TailorError(Exception):
    """Base class of every expected error."""

    code: str = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(TailorError):
    """A named thing (tenant, setting, release, environment, ...) does not exist."""

    code = "NOT_FOUND"

    def __init__(self, kind: str, identifier: str, hint: str = "") -> None:
        message = f"{kind} {identifier!r} not found"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
        self.kind = kind
        self.identifier = identifier


class SettingValidationError(TailorError):
    """A value breaks a setting definition's type or constraint rule."""

    code = "VALIDATION_FAILED"

    def __init__(self, key: str, rule: str, value: Any, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.rule = rule
        self.value = value


class InvalidInputError(TailorError):
    """Input that is malformed regardless of any setting definition."""

    code = "INVALID_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ConflictError(TailorError):
    """Optimistic concurrency: the caller's expected revision is stale."""

    code = "CONFLICT"

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{key}: revision conflict: you expected revision {expected} but the current "
            f"revision is {actual}; re-read the setting and retry with expectedRevision={actual}"
        )
        self.key = key
        self.expected = expected
        self.actual = actual


class ChangedSinceError(ConflictError):
    """A revert whose subject changed again after the change it reverts:
    ``expected`` is the reverted change's feed sequence, ``actual`` the later one's."""

    def __init__(self, key: str, expected: int, actual: int, hint: str) -> None:
        TailorError.__init__(
            self,
            f"{key}: changed again by change {actual} after change {expected}; "
            f"nothing was changed: {hint}",
        )
        self.key = key
        self.expected = expected
        self.actual = actual


class NotRevertibleError(InvalidInputError):
    """A change that has no inverse to apply (``revertChange``): says why, and
    what to do instead."""

    code = "NOT_REVERTIBLE"

    def __init__(self, sequence: int, action: str, why: str) -> None:
        super().__init__("sequence", f"change {sequence} ({action}) cannot be reverted: {why}")
        self.sequence = sequence
        self.action = action


class AlreadyExistsError(TailorError):
    """Creating something whose identifier is taken."""

    code = "ALREADY_EXISTS"

    def __init__(self, kind: str, identifier: str, hint: str = "") -> None:
        super().__init__(f"{kind} {identifier!r} already exists" + (f"; {hint}" if hint else ""))
        self.kind = kind
        self.identifier = identifier


class PermissionDeniedError(TailorError):
    """The caller's token does not allow this operation or tenant."""

    code = "PERMISSION_DENIED"


class AuthenticationError(TailorError):
    """No token, an unknown token, a revoked or an expired token."""

    code = "UNAUTHENTICATED"


class DatabaseError(TailorError):
    """The database cannot be reached or is not at the expected schema revision."""

    code = "DATABASE_UNAVAILABLE"


class UnavailableError(DatabaseError):
    """The database is down or unreachable: transient, nothing was done, retry.

    The HTTP app answers it (and every outage a driver raises, see
    :func:`core.store.db.is_outage`) with ``503`` and ``Retry-After``; the engine
    replaces broken connections by itself, so the server recovers without a restart
    once the database is back."""

    code = "UNAVAILABLE"
    #: seconds a client waits before retrying (the ``Retry-After`` header)
    RETRY_AFTER = 5

    def __init__(self, message: str = "", retry_after: int = RETRY_AFTER) -> None:
        super().__init__(
            message
            or f"the database is unavailable; nothing was done: retry in {retry_after} seconds"
        )
        self.retry_after = retry_after


class ChangeRequestRequiredError(TailorError):
    """A direct write to a protected environment: it must be proposed as a change
    request (``proposeChange``) and approved by another principal. Nothing was
    written."""

    code = "CHANGE_REQUEST_REQUIRED"

    def __init__(self, tenant: str, environment: str | None, what: str) -> None:
        where = (
            f"environment {environment!r} of tenant {tenant!r} is protected"
            if environment is not None
            else f"tenant {tenant!r} has a protected environment ({what} applies to all "
            "of its environments)"
        )
        super().__init__(
            f"{where}: {what} needs a change request approved by another principal; "
            "propose it with proposeChange (operators in an emergency: the CLI's "
            "--break-glass --reason ..., which is audited); nothing was written"
        )
        self.tenant = tenant
        self.environment = environment
