"""Expected, typed domain errors.

Every error has a stable ``code`` and a message that says what was wrong and how
to fix it. The API maps each to a GraphQL result type; the CLI prints the message
and exits with status 2. Anything that is not a :class:`TailorError` is
unexpected and gets masked by the API.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the type only: a finding is readiness's vocabulary
    from core.analysis.readiness.vocabulary import Finding


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


class ConversionError(TailorError):
    """A value cannot be converted to a setting's new type."""

    code = "CONVERSION_FAILED"

    def __init__(self, key: str, conversion: str, value: Any, reason: str) -> None:
        super().__init__(
            f"{key}: {reprlib.repr(value)} cannot be converted by {conversion!r}: {reason}"
        )
        self.key = key
        self.conversion = conversion
        self.value = value
        self.reason = reason


class ProductError(TailorError):
    """The product declaration is wrong. ``problems`` lists every problem found,
    each naming the file and the field."""

    code = "INVALID_PRODUCT"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            f"the product declaration has {len(self.problems)} problem(s):\n"
            + "\n".join(f"  {p}" for p in self.problems)
        )


class SecretKeyError(InvalidInputError):
    """No key (or a wrong one) to seal or open secret settings: ``field`` is the
    environment variable that holds the keys (``core.model.secrets.ENV_VAR``)."""


class NameCollisionError(AlreadyExistsError):
    """Another package already published a customization under this name."""

    def __init__(self, name: str, package: str, other: str) -> None:
        super().__init__("customization", name)
        self.message = (
            f"customization {name!r} is already published by package {other!r}; "
            f"package {package!r} must use another name (customization.toml: name)"
        )
        self.args = (self.message,)


class UpgradeBlockedError(TailorError):
    """``upgradeTenant`` refused: the tenant has blockers for the target."""

    code = "UPGRADE_BLOCKED"

    def __init__(self, tenant: str, target: str, findings: Sequence[Finding]) -> None:
        codes = ", ".join(sorted({f.code.value for f in findings}))
        super().__init__(
            f"tenant {tenant!r} cannot move to {target}: {len(findings)} blocking finding(s) "
            f"({codes}); fix them, or pass force with a reason"
        )
        self.tenant = tenant
        self.target = target
        self.findings = tuple(findings)


#: one problem of a package: (path inside the package, or "" for the archive as a
#: whole; message)
ArchiveProblem = tuple[str, str]


class ArchiveError(InvalidInputError):
    """A package folder or uploaded archive that cannot be published, with every
    problem at once (``problems``: ``(path, message)``, path ``""`` for the archive as
    a whole), so the consultant fixes them in one round.

    It is an :class:`InvalidInputError` on field ``archive``: the GraphQL API and
    the CLI render it as typed invalid input with no extra code.
    """

    def __init__(self, problems: Iterable[ArchiveProblem]) -> None:
        self.problems: list[ArchiveProblem] = sorted(set(problems))
        lines = [f"{path}: {message}" if path else message for path, message in self.problems]
        if len(lines) == 1:
            text = lines[0]
        else:
            text = f"{len(lines)} problems: " + "; ".join(lines)
        super().__init__("archive", text)

    def __reduce__(self) -> tuple[type[ArchiveError], tuple[list[ArchiveProblem]]]:
        # rebuilt from its problems (the default would pass the message as problems)
        return (type(self), (self.problems,))
