"""The vocabulary of upgrade readiness: finding codes and their severities, the
tenant and customization statuses, subject and evidence kinds, and the
:class:`Finding` itself. It imports nothing from the rest of the package."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    BLOCKER = "blocker"
    WARNING = "warning"
    INFO = "info"
    UNKNOWN = "unknown"


#: the severities a tenant's "warnings" count: they make it ready_with_warnings
#: (the one place this rule is written; every report shows ``warnings`` from it)
WARNING_SEVERITIES = frozenset({Severity.WARNING, Severity.UNKNOWN})


class Code(enum.StrEnum):
    REQUIRES_EXCLUDES_TARGET = "REQUIRES_EXCLUDES_TARGET"
    HOOK_REMOVED = "HOOK_REMOVED"
    HOOK_PARAM_REMOVED = "HOOK_PARAM_REMOVED"
    SETTING_REMOVED = "SETTING_REMOVED"
    OVERRIDE_INVALID = "OVERRIDE_INVALID"
    HOOK_DEPRECATED = "HOOK_DEPRECATED"
    SETTING_DEPRECATED = "SETTING_DEPRECATED"
    EXPERIMENTAL_HOOK = "EXPERIMENTAL_HOOK"
    UNTESTED_TARGET = "UNTESTED_TARGET"
    SUPERSEDED_BY_CORE = "SUPERSEDED_BY_CORE"
    NOT_INSTALLED = "NOT_INSTALLED"
    #: the target manifest records no extension points at all, so hooks cannot be
    #: checked (a manifest exported without the hookspec catalog)
    HOOK_CATALOG_MISSING = "HOOK_CATALOG_MISSING"
    #: the tenant runs a version that was withdrawn (yanked) since it was pinned
    VERSION_YANKED = "VERSION_YANKED"
    # what the tenants' front-end apps ask for (core.analysis.app_checks)
    APP_SETTING_REMOVED = "APP_SETTING_REMOVED"
    APP_SETTING_TYPE_CHANGED = "APP_SETTING_TYPE_CHANGED"
    APP_SETTING_RENAMED = "APP_SETTING_RENAMED"
    APP_OPERATION_INVALID = "APP_OPERATION_INVALID"
    # what replaying recorded inputs shows (core.analysis.rehearsal)
    REHEARSAL_FAILED = "REHEARSAL_FAILED"
    REHEARSAL_INVALID_VALUE = "REHEARSAL_INVALID_VALUE"
    REHEARSAL_CHANGED = "REHEARSAL_CHANGED"
    REHEARSAL_UNTRANSLATABLE = "REHEARSAL_UNTRANSLATABLE"


SEVERITY: dict[Code, Severity] = {
    Code.REQUIRES_EXCLUDES_TARGET: Severity.BLOCKER,
    Code.HOOK_REMOVED: Severity.BLOCKER,
    Code.HOOK_PARAM_REMOVED: Severity.BLOCKER,
    Code.SETTING_REMOVED: Severity.BLOCKER,
    Code.OVERRIDE_INVALID: Severity.BLOCKER,
    Code.HOOK_DEPRECATED: Severity.WARNING,
    Code.SETTING_DEPRECATED: Severity.WARNING,
    Code.EXPERIMENTAL_HOOK: Severity.WARNING,
    Code.UNTESTED_TARGET: Severity.WARNING,
    Code.SUPERSEDED_BY_CORE: Severity.INFO,
    Code.NOT_INSTALLED: Severity.UNKNOWN,
    Code.HOOK_CATALOG_MISSING: Severity.UNKNOWN,
    Code.VERSION_YANKED: Severity.WARNING,
    Code.APP_SETTING_REMOVED: Severity.BLOCKER,
    Code.APP_SETTING_TYPE_CHANGED: Severity.BLOCKER,
    Code.APP_SETTING_RENAMED: Severity.WARNING,
    Code.APP_OPERATION_INVALID: Severity.BLOCKER,
    Code.REHEARSAL_FAILED: Severity.BLOCKER,
    Code.REHEARSAL_INVALID_VALUE: Severity.BLOCKER,
    Code.REHEARSAL_CHANGED: Severity.WARNING,
    Code.REHEARSAL_UNTRANSLATABLE: Severity.UNKNOWN,
}

#: codes that make the target refuse a customization at load, or leave it unverified
LEVEL_D_CODES = frozenset(
    {
        Code.REQUIRES_EXCLUDES_TARGET,
        Code.HOOK_REMOVED,
        Code.HOOK_PARAM_REMOVED,
        Code.NOT_INSTALLED,
        Code.HOOK_CATALOG_MISSING,
    }
)

CUSTOMIZATION = "customization"
SETTING = "setting"
#: kinds of evidence
STATIC = "static"
OBSERVED = "observed"
#: a rehearsal replayed the tenant's recorded inputs (core.analysis.rehearsal)
REHEARSAL = "rehearsal"


class TenantStatus(enum.StrEnum):
    READY = "ready"
    READY_WITH_WARNINGS = "ready_with_warnings"
    BLOCKED = "blocked"


class CustomizationStatus(enum.StrEnum):
    COMPATIBLE = "compatible"
    NEEDS_UPDATE = "needs_update"
    INCOMPATIBLE = "incompatible"
    OBSOLETE = "obsolete"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    code: Code
    #: "customization" or "setting"
    subject_kind: str
    #: the customization's name, or the setting key
    subject: str
    message: str
    action: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: which kinds of evidence show it: "static" (the package's code, its manifest,
    #: stored overrides) and/or "observed" (the runtime saw it)
    sources: tuple[str, ...] = (STATIC,)
    #: the customization's author (who can fix it); "" for setting findings
    owner: str = ""
    #: SEVERITY[code], kept at construction (a fleet's report reads it millions of times)
    severity: Severity = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", SEVERITY[self.code])

    @property
    def blocker_key(self) -> tuple[str, str]:
        """What one fix resolves (see :mod:`core.analysis.unblock`)."""
        return (self.subject_kind, self.subject)

    @property
    def detail(self) -> str:
        """What in the subject the finding is about: the hook or setting key of a
        customization's finding ("" for its manifest), the environment of an
        override's ("" tenant-wide). With code, subject and tenant: its identity."""
        if self.subject_kind == CUSTOMIZATION:
            return str(self.evidence.get("hook") or self.evidence.get("setting") or "")
        return str(self.evidence.get("environment") or "")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """A finding kept as :meth:`to_dict` wrote it (a kept rehearsal's)."""
        return cls(
            Code(data["code"]),
            data["subject_kind"],
            data["subject"],
            data["message"],
            data["action"],
            dict(data.get("evidence") or {}),
            tuple(data.get("sources") or (STATIC,)),
            data.get("owner", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "subject_kind": self.subject_kind,
            "subject": self.subject,
            "message": self.message,
            "action": self.action,
            "evidence": dict(self.evidence),
            "sources": list(self.sources),
            "owner": self.owner,
        }
