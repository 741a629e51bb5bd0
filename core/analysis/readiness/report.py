"""The readiness report: a tenant's and a customization's readiness, and the
fleet's :class:`ReadinessReport` that holds them with the unblock plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.analysis.readiness.vocabulary import (
    WARNING_SEVERITIES,
    CustomizationStatus,
    Finding,
    Severity,
    TenantStatus,
)
from core.analysis.unblock import UnblockStep


@dataclass(frozen=True)
class CustomizationReadiness:
    name: str
    version: str
    capability: str | None
    enabled_for: tuple[str, ...]
    status: CustomizationStatus
    level: str
    findings: tuple[Finding, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "capability": self.capability,
            "enabled_for": list(self.enabled_for),
            "status": self.status.value,
            "stability_level": self.level,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class TenantReadiness:
    tenant: str
    current_release: str
    status: TenantStatus
    findings: tuple[Finding, ...]
    customizations: tuple[str, ...] = ()

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def blockers(self) -> int:
        return self.count(Severity.BLOCKER)

    @property
    def warnings(self) -> int:
        """Findings that make the tenant ready_with_warnings (WARNING_SEVERITIES)."""
        return sum(1 for f in self.findings if f.severity in WARNING_SEVERITIES)

    @property
    def blocker_keys(self) -> frozenset[tuple[str, str]]:
        return frozenset(f.blocker_key for f in self.findings if f.severity is Severity.BLOCKER)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "current_release": self.current_release,
            "status": self.status.value,
            "customizations": list(self.customizations),
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True, repr=False)
class ReadinessReport:
    target: str
    target_status: str
    tenants: tuple[TenantReadiness, ...]
    customizations: tuple[CustomizationReadiness, ...]
    plan: tuple[UnblockStep, ...]

    def __repr__(self) -> str:
        # short: a fleet's report has 100,000s of findings, and Python 3.11's
        # asyncio.run reprs the main task, result included, when it exits
        return (
            f"ReadinessReport(target={self.target!r}, {len(self.tenants)} tenants, "
            f"{len(self.customizations)} customizations, {len(self.plan)} steps)"
        )

    @property
    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in TenantStatus}
        for t in self.tenants:
            out[t.status.value] += 1
        return out

    @property
    def customization_counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in CustomizationStatus}
        for c in self.customizations:
            out[c.status.value] += 1
        return out

    @property
    def any_blocked(self) -> bool:
        return any(t.status is TenantStatus.BLOCKED for t in self.tenants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_status": self.target_status,
            "counts": self.counts,
            "customization_counts": self.customization_counts,
            "tenants": [t.to_dict() for t in self.tenants],
            "customizations": [c.to_dict() for c in self.customizations],
            "unblock_plan": [s.to_dict() for s in self.plan],
        }
