"""Readiness evaluation: :func:`evaluate` runs the rules over a fleet's tenants,
overrides and customizations against a target; :func:`check_customization` runs
them over one package before it ships."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.analysis.readiness.releases import TargetIndex
from core.analysis.readiness.report import CustomizationReadiness, ReadinessReport, TenantReadiness
from core.analysis.readiness.rules import (
    customization_readiness,
    observed_uses,
    override_finding,
    tenant_status,
    with_migration,
)
from core.analysis.readiness.vocabulary import (
    Finding,
    Severity,
)
from core.analysis.unblock import unblock_plan
from core.model.customizations import Observation, Registration
from core.model.manifest import ReleaseManifest
from core.model.overrides import ActiveOverride


@dataclass(frozen=True)
class TenantRelease:
    slug: str
    release: str


def evaluate(
    target: TargetIndex,
    tenants: Sequence[TenantRelease],
    overrides: Iterable[ActiveOverride],
    registrations: Sequence[Registration],
    installed_names: Collection[str] | None = None,
    observations: Iterable[Observation] = (),
    *,
    plan: bool = True,
    extra: Mapping[str, Sequence[Finding]] | None = None,
) -> ReadinessReport:
    """Evaluate ``tenants`` (with their active ``overrides``) and the customizations
    enabled for them against ``target`` (the target release indexed, with the
    other releases' history: evidence on removed hooks and settings).

    ``installed_names`` is the set of customizations whose code is installed here;
    ``None`` means unknown (no NOT_INSTALLED findings).
    ``observations`` are the runtime's (customization, tenant, hook) records: hooks
    called and keys read or returned count as observed evidence (only those of the
    tenants evaluated). ``plan=False`` leaves the unblock plan empty (callers that
    only count blockers, like fold-back's upgrade cost). ``extra``: findings made
    elsewhere, per tenant (the apps' operation checks, core.analysis.app_checks,
    from the same ``target``)."""
    past = target.past
    version = target.manifest.parsed
    in_scope = {t.slug for t in tenants}
    seen = observed_uses(observations, in_scope)

    custom_reports: list[CustomizationReadiness] = []
    enabled: dict[str, list[CustomizationReadiness]] = {}
    for reg in sorted(registrations, key=lambda r: r.name):
        relevant = in_scope.intersection(reg.enabled_for) or in_scope.intersection(
            reg.manifest.tenants
        )
        if not relevant:
            continue
        report = customization_readiness(
            reg, target, version, past, installed_names, in_scope, seen.get(reg.name)
        )
        custom_reports.append(report)
        for slug in reg.enabled_for:
            if slug in in_scope:
                enabled.setdefault(slug, []).append(report)

    by_tenant: dict[str, list[Finding]] = {t.slug: [] for t in tenants}
    # an override's finding depends on its key, environment and value only, and
    # fleets repeat the same few: each distinct one is checked once (findings are
    # frozen, so tenants may share one)
    checked: dict[tuple[str, str, type, Any], Finding | None] = {}
    for row in overrides:
        if row.tenant in by_tenant:
            value = row.value
            if isinstance(value, str | int | float | bool) or value is None:
                memo = (row.key, row.environment, type(value), value)
                if memo in checked:
                    finding = checked[memo]
                else:
                    finding = checked[memo] = override_finding(row, target, version, past)
            else:  # lists and objects: not hashable, checked each time
                finding = override_finding(row, target, version, past)
            if finding is not None:
                by_tenant[row.tenant].append(finding)

    tenant_reports = []
    for t in sorted(tenants, key=lambda t: t.slug):
        customs = enabled.get(t.slug, [])
        findings = [with_migration(f, t.slug, target) for c in customs for f in c.findings]
        findings += sorted(
            by_tenant[t.slug], key=lambda f: (f.subject, f.evidence.get("environment") or "")
        )
        if extra and t.slug in extra:
            findings.extend(extra[t.slug])
        tenant_reports.append(
            TenantReadiness(
                tenant=t.slug,
                current_release=t.release,
                status=tenant_status(findings),
                findings=tuple(findings),
                customizations=tuple(c.name for c in customs),
            )
        )
    return ReadinessReport(
        target=target.manifest.version,
        target_status=target.manifest.status,
        tenants=tuple(tenant_reports),
        customizations=tuple(custom_reports),
        plan=tuple(
            unblock_plan({t.tenant: t.blocker_keys for t in tenant_reports}, _codes(tenant_reports))
        )
        if plan
        else (),
    )


def check_customization(
    target: ReleaseManifest,
    registration: Registration,
    history: Iterable[ReleaseManifest] = (),
    observations: Iterable[Observation] = (),
) -> CustomizationReadiness:
    """Readiness of one customization package against ``target`` before it ships
    (``tailor customization check --release``): the fleet's rules, evaluated as if
    it were enabled for every tenant its manifest lists."""
    tenants = registration.manifest.tenants or ("-",)
    enabled = dataclasses.replace(registration, enabled_for=tuple(tenants))
    report = evaluate(
        TargetIndex(target, history),
        [TenantRelease(t, "") for t in tenants],
        (),
        [enabled],
        None,
        observations,
    )
    return report.customizations[0]


def _codes(reports: Iterable[TenantReadiness]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for t in reports:
        for f in t.findings:
            if f.severity is Severity.BLOCKER:
                out.setdefault(f.blocker_key, set()).add(f.code.value)
    return out
