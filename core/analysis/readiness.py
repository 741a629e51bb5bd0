"""Upgrade readiness: pure evaluation of tenants, their overrides and their
customizations against a target release's manifest.

Nothing here touches the database (see :mod:`core.store.readiness_service`). Every
finding has a stable ``code`` (DESIGN.md, "Upgrade readiness"), a severity, the
subject it concerns (a customization or a setting), evidence and a suggested action.

Status rules, precisely:

- a **tenant** is ``blocked`` when any finding that applies to it is a blocker,
  ``ready_with_warnings`` when any is a warning or unknown, else ``ready``
  (``info`` findings never change a status). A tenant's findings are its active
  overrides' findings plus the findings of the customizations enabled for it;
- a **customization** is ``obsolete`` when the target supersedes its capability
  (retire it at upgrade), else ``incompatible`` with any blocker, else ``unknown``
  when its code is not installed to verify, else ``needs_update`` with any warning,
  else ``compatible``;
- its **stability level**: ``D`` when the target would refuse it at load
  (REQUIRES_EXCLUDES_TARGET, HOOK_REMOVED, HOOK_PARAM_REMOVED) or its code cannot be
  verified (NOT_INSTALLED, HOOK_CATALOG_MISSING); else ``C`` when it uses an
  experimental hook; else ``B`` when it uses a hook deprecated in the target; else
  ``A`` (stable hooks only).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from core.analysis.unblock import UnblockStep, unblock_plan
from core.model.customizations import KEY_DIRECTIONS, Observation, Registration
from core.model.definitions import SettingDefinition
from core.model.errors import SettingValidationError, TailorError
from core.model.extension_points import EXPERIMENTAL, ExtensionPoint
from core.model.manifest import ReleaseManifest
from core.model.secrets import is_sealed


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


@dataclass(frozen=True)
class ActiveOverride:
    """One active override, as readiness needs it."""

    tenant: str
    environment: str  # "" = tenant-wide
    key: str
    value: Any


@dataclass(frozen=True)
class TenantRelease:
    slug: str
    release: str


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


# -- history: what earlier releases said about a hook or setting -------------------


class History:
    """Every known release's manifest, for evidence about things the target lacks
    (when a hook or setting was last defined, and its recorded replacement)."""

    def __init__(self, manifests: Iterable[ReleaseManifest], before: Version | None = None) -> None:
        """``before``: the target's version. "Last in" is the last release before
        it that had a hook or setting; releases after it (a planned 3.0 beside a
        target 2.5) are known, but only name a hook or setting nothing before the
        target had."""
        ordered = sorted(manifests, key=lambda m: m.parsed)
        if before is not None:  # later releases first, then earlier ones: those win
            ordered = [m for m in ordered if m.parsed > before] + [
                m for m in ordered if m.parsed <= before
            ]
        self.before = before
        self.hooks: dict[str, tuple[str, ExtensionPoint]] = {}
        self.settings: dict[str, tuple[str, SettingDefinition]] = {}
        self.renames: dict[str, tuple[str, str]] = {}
        #: hook renames and parameter renames (schema 2), the last release's winning
        self.hook_renames: dict[str, str] = {}
        self.param_renames: dict[str, dict[str, str]] = {}
        for m in ordered:  # later releases overwrite: the last definition wins
            for p in m.extension_points:
                self.hooks[p.name] = (m.version, p)
            for d in m.settings:
                if _really_defined(d, m):
                    self.settings[d.key] = (m.version, d)
            for old, new in m.renamed:
                self.renames[old] = (m.version, new)
            self.hook_renames.update(m.renamed_hooks)
            for hook, pairs in m.renamed_params:
                self.param_renames.setdefault(hook, {}).update(pairs)

    def last_defined_in(self, key: str) -> str | None:
        """The last release before the target whose manifest really defines
        ``key`` (a definition listed with ``removed`` at or below its release does
        not count); None when only later releases do."""
        found = self.settings.get(key)
        return found[0] if found and self.earlier(found[0]) else None

    def earlier(self, version: str) -> bool:
        """Is ``version`` (a release of this history) before the target?"""
        if self.before is None:
            return True
        try:
            return Version(version) < self.before
        except ValueError:  # InvalidVersion or a 5,000-digit segment
            return False


def _really_defined(d: SettingDefinition, m: ReleaseManifest) -> bool:
    if d.removed is None:
        return True
    try:
        return Version(d.removed) > m.parsed
    except ValueError:  # InvalidVersion or a 5,000-digit segment
        return True


# -- evaluation ----------------------------------------------------------------------


def evaluate(
    target: ReleaseManifest,
    tenants: Sequence[TenantRelease],
    overrides: Iterable[ActiveOverride],
    registrations: Sequence[Registration],
    installed_names: Collection[str] | None = None,
    history: Iterable[ReleaseManifest] = (),
    observations: Iterable[Observation] = (),
    *,
    plan: bool = True,
    extra: Mapping[str, Sequence[Finding]] | None = None,
) -> ReadinessReport:
    """Evaluate ``tenants`` (with their active ``overrides``) and the customizations
    enabled for them against ``target``.

    ``installed_names`` is the set of customizations whose code is installed here;
    ``None`` means unknown (no NOT_INSTALLED findings). ``history`` holds the other
    releases' manifests, for evidence on removed hooks and settings.
    ``observations`` are the runtime's (customization, tenant, hook) records: hooks
    called and keys read or returned count as observed evidence (only those of the
    tenants evaluated). ``plan=False`` leaves the unblock plan empty (callers that
    only count blockers, like fold-back's upgrade cost). ``extra``: findings made
    elsewhere, per tenant (the apps' operation checks, core.analysis.app_checks)."""
    history = [m for m in history if m.version != target.version]
    past = History(history, target.parsed)
    version = target.parsed
    in_scope = {t.slug for t in tenants}
    targets = _TargetIndex(target, history)
    seen = _observed(observations, in_scope)

    custom_reports: list[CustomizationReadiness] = []
    enabled: dict[str, list[CustomizationReadiness]] = {}
    for reg in sorted(registrations, key=lambda r: r.name):
        relevant = in_scope.intersection(reg.enabled_for) or in_scope.intersection(
            reg.manifest.tenants
        )
        if not relevant:
            continue
        report = _customization(
            reg, targets, version, past, installed_names, in_scope, seen.get(reg.name)
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
                    finding = checked[memo] = _override(row, targets, version, past)
            else:  # lists and objects: not hashable, checked each time
                finding = _override(row, targets, version, past)
            if finding is not None:
                by_tenant[row.tenant].append(finding)

    tenant_reports = []
    for t in sorted(tenants, key=lambda t: t.slug):
        customs = enabled.get(t.slug, [])
        findings = [_migration(f, t.slug, targets) for c in customs for f in c.findings] + sorted(
            by_tenant[t.slug], key=lambda f: (f.subject, f.evidence.get("environment") or "")
        )
        if extra and t.slug in extra:
            findings.extend(extra[t.slug])
        tenant_reports.append(
            TenantReadiness(
                tenant=t.slug,
                current_release=t.release,
                status=_tenant_status(findings),
                findings=tuple(findings),
                customizations=tuple(c.name for c in customs),
            )
        )
    return ReadinessReport(
        target=target.version,
        target_status=target.status,
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
        target,
        [TenantRelease(t, "") for t in tenants],
        (),
        [enabled],
        None,
        history,
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


def _migration(f: Finding, tenant: str, target: _TargetIndex) -> Finding:
    """A SUPERSEDED_BY_CORE finding carries the target's migration for this tenant
    as its action (disable the customization, set the overrides)."""
    if f.code is not Code.SUPERSEDED_BY_CORE:
        return f
    migration = target.migrations.get((f.subject, tenant))
    if migration is None:
        return f
    return dataclasses.replace(
        f, action=migration.action, evidence={**f.evidence, "migration": migration.to_dict()}
    )


def _tenant_status(findings: Iterable[Finding]) -> TenantStatus:
    severities = {f.severity for f in findings}
    if Severity.BLOCKER in severities:
        return TenantStatus.BLOCKED
    if severities & WARNING_SEVERITIES:
        return TenantStatus.READY_WITH_WARNINGS
    return TenantStatus.READY


class _TargetIndex:
    """The target manifest, indexed for look-ups."""

    def __init__(self, manifest: ReleaseManifest, earlier: Iterable[ReleaseManifest] = ()) -> None:
        self.manifest = manifest
        self.hooks = {p.name: p for p in manifest.extension_points}
        self.settings = {d.key: d for d in manifest.settings if _really_defined(d, manifest)}
        self.renames = manifest.renames
        self.hook_renames = manifest.hook_renames
        self.param_renames = manifest.param_renames
        self._catalog: list[str] | None = None
        #: capability -> the first release up to the target that supersedes it:
        #: folding a capability back is cumulative
        self.superseded_in: dict[str, str] = {}
        for m in sorted((*earlier, manifest), key=lambda m: m.parsed):
            if m.parsed <= manifest.parsed:
                for capability in m.supersedes:
                    self.superseded_in.setdefault(capability, m.version)
        #: (customization, tenant) -> how that tenant leaves it (the target's migrations);
        #: a migrated customization is superseded even when it declares no capability
        self.migrations = {(g.customization, g.tenant): g for g in manifest.migrations}
        self.migrated = {g.customization: g.capability for g in manifest.migrations}

    def catalog(self, past: History) -> list[str]:
        """Every setting key of the target or an earlier release, sorted (once)."""
        if self._catalog is None:
            self._catalog = sorted(set(self.settings) | set(past.settings))
        return self._catalog


# -- customizations ----------------------------------------------------------------


def _customization(
    reg: Registration,
    target: _TargetIndex,
    version: Version,
    past: History,
    installed: Collection[str] | None,
    in_scope: Collection[str],
    seen: _Seen | None = None,
) -> CustomizationReadiness:
    """``in_scope``: the tenants evaluated; the report names no other tenant.
    ``seen``: what the runtime observed of this customization (those tenants only)."""
    name = reg.name
    m = reg.manifest
    collected = _Collector(name, m.author)
    add = collected.add

    tv = target.manifest.version
    excluded, why = _requires_excludes(m.requires, tv)
    if excluded:
        add(
            Code.REQUIRES_EXCLUDES_TARGET,
            f"{name} {m.version}: {why}",
            f"test {name} on {tv}, then widen 'requires' in customization.toml and republish",
            requires=m.requires,
            target=tv,
        )

    if installed is not None and name not in installed:
        add(
            Code.NOT_INSTALLED,
            f"{name} {m.version} is registered but the database stores no code for it "
            "(registered before versions were stored); its tenants run without it and its "
            "recorded introspection cannot be verified",
            f"publish {name} again ('tailor customization publish PATH') and re-run readiness",
            version=m.version,
        )
    if reg.yank_reason is not None:
        add(
            Code.VERSION_YANKED,
            f"{name} {m.version} was yanked ({reg.yank_reason}); its tenants still run it",
            f"pin another version of {name} ('tailor customization pin {name} VERSION "
            "--tenant T'; 'tailor customization versions' lists them)",
            version=m.version,
            reason=reg.yank_reason,
        )

    observed_hooks = seen.hooks if seen is not None else {}
    if (reg.hooks or observed_hooks) and not target.hooks:
        add(
            Code.HOOK_CATALOG_MISSING,
            f"the {tv} manifest records no extension points, so {name}'s hooks cannot be checked",
            f"re-export the {tv} manifest with its hookspec catalog and re-import it",
            hooks=sorted({u.hook for u in reg.hooks} | set(observed_hooks)),
        )
    else:
        for use in reg.hooks:
            _hook(use.hook, use.params, target, version, past, add, where=use.location)
        for hook, stats in sorted(observed_hooks.items()):
            _hook(hook, None, target, version, past, add, observed=stats)

    for key, where in _static_keys(reg, target, past):
        _setting_reference(key, target, version, past, add, where=where)
    if seen is not None:
        for (key, direction), stats in sorted(seen.keys.items()):
            _setting_reference(
                key, target, version, past, add, observed={**stats, "direction": direction}
            )

    capability = m.capability if m.capability in target.superseded_in else target.migrated.get(name)
    if capability and capability in target.superseded_in:
        since = target.superseded_in[capability]
        add(
            Code.SUPERSEDED_BY_CORE,
            f"{since} supersedes the capability {capability!r} that {name} provides"
            + ("" if since == tv else f" (and so does {tv})"),
            f"retire {name} when upgrading: disable it for its tenants and use the "
            f"product's {capability!r} instead",
            capability=capability,
        )

    if m.tested_up_to:
        if _above(tv, m.tested_up_to):
            add(
                Code.UNTESTED_TARGET,
                f"{name} is tested up to {m.tested_up_to}; {tv} is above that",
                f"test {name} on {tv} and raise 'tested_up_to' in customization.toml",
                tested_up_to=m.tested_up_to,
                target=tv,
            )

    findings = collected.findings()
    codes = {f.code for f in findings}
    severities = {f.severity for f in findings}
    if Code.SUPERSEDED_BY_CORE in codes:
        status = CustomizationStatus.OBSOLETE
    elif Severity.BLOCKER in severities:
        status = CustomizationStatus.INCOMPATIBLE
    elif Severity.UNKNOWN in severities:
        status = CustomizationStatus.UNKNOWN
    elif Severity.WARNING in severities:
        status = CustomizationStatus.NEEDS_UPDATE
    else:
        status = CustomizationStatus.COMPATIBLE
    if codes & LEVEL_D_CODES:
        level = "D"
    elif Code.EXPERIMENTAL_HOOK in codes:
        level = "C"
    elif Code.HOOK_DEPRECATED in codes:
        level = "B"
    else:
        level = "A"
    return CustomizationReadiness(
        name=name,
        version=m.version,
        capability=m.capability,
        enabled_for=tuple(sorted(t for t in reg.enabled_for if t in in_scope)),
        status=status,
        level=level,
        findings=tuple(findings),
    )


@functools.lru_cache(maxsize=1024)
def _requires_excludes(requires: str, target: str) -> tuple[bool, str]:
    """PEP 440, pre-releases included. Cached: fleets share a few specifiers."""
    try:
        spec = SpecifierSet(requires)
        contained = spec.contains(Version(target), prereleases=True)
    except ValueError:  # InvalidSpecifier, or a segment beyond the int-string limit
        return True, f"requires {requires!r} is not a valid PEP 440 specifier"
    if contained:
        return False, ""
    return True, f"requires {requires!r}, which does not contain {target}"


@functools.lru_cache(maxsize=1024)
def _above(target: str, tested_up_to: str) -> bool:
    try:
        return Version(target) > Version(tested_up_to)
    except ValueError:  # InvalidVersion or a 5,000-digit segment
        return True


def _hook(
    hook: str,
    params: Sequence[str] | None,
    target: _TargetIndex,
    version: Version,
    past: History,
    add: Any,
    *,
    where: str | None = None,
    observed: Mapping[str, Any] | None = None,
) -> None:
    """Findings on one hook implementation: static (``params`` known, ``where`` =
    file:line) or observed (the runtime called it; ``params`` None)."""
    tv = target.manifest.version
    how = {"_where": where or "", "_observed": observed}
    point = target.hooks.get(hook)
    renamed_to = target.hook_renames.get(hook) or past.hook_renames.get(hook)
    if point is None and renamed_to is not None and renamed_to in target.hooks:
        new = target.hooks[renamed_to]
        params_renamed = _param_renames(renamed_to, params, target, past)
        also = "".join(f", and its parameter {o} to {n}" for o, n in params_renamed.items())
        add(
            Code.HOOK_REMOVED,
            f"implements {hook}, which {tv} renamed to {renamed_to} "
            f"(same parameters: {renamed_to}({', '.join(new.params)}))",
            f"rename {hook} to {renamed_to}{also} ('tailor customization fix PATH --release "
            f"{tv}' rewrites it)",
            hook=hook,
            replacement=renamed_to,
            renamed_to=renamed_to,
            renamed_params=params_renamed,
            **how,
        )
        return
    if point is None:
        last = past.hooks.get(hook)
        if last is not None:
            last_version, spec = last
            replacement = spec.replacement
            when = (
                f"last in {last_version}"
                if past.earlier(last_version)
                else f"only in {last_version}, after {tv}"
            )
            message = f"implements {hook}, which {tv} no longer has ({when})"
            api = target.manifest.tailor_hook_api
            if spec.is_tailor and api is not None:
                message = (
                    f"implements {hook}, which Tailor hook API {api} (the API of {tv}) no "
                    f"longer has"
                    + (f": removed in API {spec.removed}" if spec.removed else "")
                    + f" ({when})"
                )
            action = (
                f"port the implementation to {replacement}"
                if replacement
                else f"remove the {hook} implementation"
            )
        else:
            replacement = None
            message = f"implements {hook}, which no known release declares"
            action = f"remove or rename the {hook} implementation"
        add(
            Code.HOOK_REMOVED,
            message,
            action,
            hook=hook,
            replacement=replacement,
            **how,
        )
        return
    extra = [p for p in params or () if p not in point.params]
    renamed = _param_renames(hook, extra, target, past)
    if renamed:
        add(
            Code.HOOK_PARAM_REMOVED,
            f"its {hook} takes "
            + ", ".join(f"{old}, which {tv} renamed to {new}" for old, new in renamed.items())
            + f" (spec: {hook}({', '.join(point.params)}))",
            "rename "
            + ", ".join(f"the parameter {old} to {new}" for old, new in renamed.items())
            + f" in the signature and the body ('tailor customization fix PATH --release {tv}' "
            "rewrites it)",
            hook=hook,
            params=list(params or ()),
            spec_params=list(point.params),
            missing=list(renamed),
            renamed_params=renamed,
            **how,
        )
        extra = [p for p in extra if p not in renamed]
    if extra:
        add(
            Code.HOOK_PARAM_REMOVED,
            f"its {hook} takes {', '.join(extra)}, which the {tv} hookspec lacks "
            f"(spec: {hook}({', '.join(point.params)}))",
            f"drop the parameter(s) {', '.join(extra)} from the implementation (pluggy "
            "passes only parameters the hookspec declares; an implementation may take fewer)",
            hook=hook,
            params=list(params or ()),
            spec_params=list(point.params),
            missing=extra,
            **how,
        )
    if point.deprecated_in(target.manifest.lifecycle_version(point)):
        since = point.deprecated
        if point.is_tailor and target.manifest.tailor_hook_api is not None:
            since = f"Tailor hook API {since} (the API of {tv})"
        add(
            Code.HOOK_DEPRECATED,
            f"implements {hook}, deprecated since {since}"
            + (f"; use {point.replacement}" if point.replacement else ""),
            f"move to {point.replacement}" if point.replacement else f"stop using {hook}",
            hook=hook,
            deprecated=point.deprecated,
            removed=point.removed,
            replacement=point.replacement,
            **how,
        )
    if point.stability == EXPERIMENTAL:
        add(
            Code.EXPERIMENTAL_HOOK,
            f"implements {hook}, which is experimental in {tv}: its shape may change",
            f"pin 'requires' to the releases {hook} was tested with, and re-check each release",
            hook=hook,
            **how,
        )


def _param_renames(
    hook: str, params: Sequence[str] | None, target: _TargetIndex, past: History
) -> dict[str, str]:
    """old -> new for each of ``params`` the target (or an earlier release) renamed
    in ``hook`` (its name in the target) to a parameter the target's hook takes."""
    point = target.hooks.get(hook)
    if point is None:
        return {}
    renames = {**past.param_renames.get(hook, {}), **target.param_renames.get(hook, {})}
    return {
        p: renames[p]
        for p in params or ()
        if p in renames and p not in point.params and renames[p] in point.params
    }


def _setting_reference(
    key: str,
    target: _TargetIndex,
    version: Version,
    past: History,
    add: Any,
    *,
    where: str | None = None,
    observed: Mapping[str, Any] | None = None,
) -> None:
    """Findings on one setting key the code refers to (static, ``where``) or read
    or returned at run time (``observed``)."""
    definition = target.settings.get(key)
    tv = target.manifest.version
    how = {"_where": where or "", "_observed": observed}
    if definition is None:
        if key not in past.settings:
            return  # not a product setting: the customization's own (tailor_register_settings)
        replacement = _replacement_of(key, target, past)
        add(
            Code.SETTING_REMOVED,
            f"its code uses the setting {key}, which {tv} no longer defines"
            + (f" (now {replacement})" if replacement else ""),
            f"use {replacement} instead" if replacement else f"stop using {key}",
            setting=key,
            replacement=replacement,
            last_defined_in=past.last_defined_in(key),
            **how,
        )
    elif definition.deprecated_in(version):
        add(
            Code.SETTING_DEPRECATED,
            f"its code uses {key}, deprecated since {definition.deprecated}"
            + (f"; use {definition.replacement}" if definition.replacement else ""),
            f"use {definition.replacement} instead"
            if definition.replacement
            else f"stop using {key}",
            setting=key,
            deprecated=definition.deprecated,
            replacement=definition.replacement,
            **how,
        )


def _static_keys(reg: Registration, target: _TargetIndex, past: History) -> list[tuple[str, str]]:
    """(key, "file:line (how)") for every key the package's code refers to; a prefix
    stands for every key of the target or an earlier release under it. Keys of a
    registration without references (published before the package analysis) have
    no location."""
    out: list[tuple[str, str]] = []
    covered: set[str] = set()
    for ref in sorted(reg.references, key=lambda r: (r.key, r.file, r.line)):
        where = f"{ref.location} ({ref.how})"
        if ref.is_prefix:
            for key in target.catalog(past):
                if ref.covers(key):
                    out.append((key, f"{ref.location} (prefix {ref.key})"))
        else:
            out.append((ref.key, where))
            covered.add(ref.key)
    out.extend((key, "") for key in sorted(set(reg.setting_keys) - covered))
    return out


@dataclass
class _Seen:
    """What the runtime observed of one customization in the evaluated tenants."""

    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _merge_stats(into: dict[str, Any], count: int, last_seen: Any) -> None:
    into["count"] = into.get("count", 0) + count
    if last_seen is not None and (into.get("last_seen") is None or last_seen > into["last_seen"]):
        into["last_seen"] = last_seen


def _observed(observations: Iterable[Observation], in_scope: Collection[str]) -> dict[str, _Seen]:
    out: dict[str, _Seen] = {}
    for o in observations:
        if o.tenant not in in_scope or not o.calls:
            continue
        seen = out.setdefault(o.customization, _Seen())
        _merge_stats(seen.hooks.setdefault(o.hook, {}), o.calls, o.last_seen)
        for k in o.keys:
            if k.direction not in KEY_DIRECTIONS:
                continue  # a scan of values: evidence of no key in particular
            _merge_stats(seen.keys.setdefault((k.key, k.direction), {}), k.count, k.last_seen)
    return out


class _Collector:
    """Findings of one customization, merged by (code, hook or setting): one
    finding per problem, naming every static location and the observed counts."""

    def __init__(self, name: str, author: str) -> None:
        self.name = name
        self.author = author
        self._order: list[tuple[Code, str]] = []
        self._first: dict[tuple[Code, str], tuple[str, str, dict[str, Any]]] = {}
        self._static: dict[tuple[Code, str], list[str]] = {}
        self._observed: dict[tuple[Code, str], dict[str, Any]] = {}

    def add(self, code: Code, message: str, action: str, **evidence: Any) -> None:
        where = evidence.pop("_where", "")
        observed = evidence.pop("_observed", None)
        ident = (code, str(evidence.get("hook") or evidence.get("setting") or ""))
        if ident not in self._first:
            self._order.append(ident)
            self._first[ident] = (message, action, evidence)
        if observed is not None:
            stats = self._observed.setdefault(ident, {})
            _merge_stats(stats, observed.get("count", 0), observed.get("last_seen"))
            if "direction" in observed:
                stats.setdefault("directions", set()).add(observed["direction"])
        else:
            locations = self._static.setdefault(ident, [])
            if where and where not in locations:
                locations.append(where)

    def findings(self) -> list[Finding]:
        out = []
        for ident in self._order:
            message, action, evidence = self._first[ident]
            evidence = dict(evidence)
            sources: list[str] = []
            notes: list[str] = []
            if ident in self._static:
                sources.append(STATIC)
                locations = self._static[ident]
                if locations:
                    evidence["static"] = list(locations)
                    notes.append("static: " + "; ".join(locations))
            if ident in self._observed:
                sources.append(OBSERVED)
                stats = self._observed[ident]
                last = stats.get("last_seen")
                shown = {
                    "count": stats.get("count", 0),
                    "last_seen": last.isoformat() if last is not None else None,
                }
                if "directions" in stats:
                    shown["directions"] = sorted(stats["directions"])
                evidence["observed"] = shown
                notes.append(
                    f"observed: {shown['count']} time(s)"
                    + (f", last {shown['last_seen']}" if last is not None else "")
                )
            if self.author:
                evidence["author"] = self.author
            if notes:
                message = f"{message} [{' | '.join(notes)}]"
            out.append(
                Finding(
                    ident[0],
                    CUSTOMIZATION,
                    self.name,
                    message,
                    action,
                    evidence,
                    sources=tuple(sources),
                    owner=self.author,
                )
            )
        return out


def _replacement_of(key: str, target: _TargetIndex, past: History) -> str | None:
    if key in target.renames:
        return target.renames[key]
    if key in past.renames:
        return past.renames[key][1]
    last = past.settings.get(key)
    return last[1].replacement if last else None


# -- overrides -----------------------------------------------------------------------


def _override(
    row: ActiveOverride, target: _TargetIndex, version: Version, past: History
) -> Finding | None:
    tv = target.manifest.version
    scope = f"environment {row.environment!r}" if row.environment else "tenant-wide"
    definition = target.settings.get(row.key)
    evidence: dict[str, Any] = {"environment": row.environment or None}
    secret = False
    if definition is None:
        if row.key not in past.settings:
            return None  # a customization's own setting: not part of the product catalog
        secret = past.settings[row.key][1].secret
        replacement = _replacement_of(row.key, target, past)
        evidence.update(rule="removed", value=_shown(row.value, secret), replacement=replacement)
        message = f"override of {row.key} ({scope}): {tv} no longer defines this setting"
        if replacement:
            message += f"; it became {replacement}"
            action = (
                f"move the value to {replacement} (check its type in {tv}), then reset {row.key}"
            )
        else:
            action = f"reset {row.key} before upgrading (its value would be lost silently)"
        return Finding(Code.OVERRIDE_INVALID, SETTING, row.key, message, action, evidence)
    secret = definition.secret
    try:
        if not is_sealed(row.value):  # a sealed value (no key here) is not checked
            definition.validate(row.value)
    except SettingValidationError as exc:
        evidence.update(
            rule=exc.rule,
            value=_shown(row.value, secret),
            expected=_constraints(definition),
            reason=exc.message if not secret else exc.rule,
        )
        return Finding(
            Code.OVERRIDE_INVALID,
            SETTING,
            row.key,
            f"override of {row.key} ({scope}) is not valid in {tv}: "
            + (exc.message.split(": ", 1)[-1] if not secret else f"breaks the {exc.rule} rule"),
            f"change the override to a value valid in {tv} ({_describe(definition)}), or reset it",
            evidence,
        )
    if definition.deprecated_in(version):
        evidence.update(
            value=_shown(row.value, secret),
            deprecated=definition.deprecated,
            replacement=definition.replacement,
        )
        return Finding(
            Code.SETTING_DEPRECATED,
            SETTING,
            row.key,
            f"override of {row.key} ({scope}): deprecated since {definition.deprecated}"
            + (f"; use {definition.replacement}" if definition.replacement else ""),
            f"move the value to {definition.replacement}"
            if definition.replacement
            else f"plan to reset {row.key}",
            evidence,
        )
    return None


def _shown(value: Any, secret: bool) -> Any:
    return "***" if secret else value


def _constraints(d: SettingDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {"type": d.type.value}
    for name in ("min", "max", "pattern"):
        if getattr(d, name) is not None:
            out[name] = getattr(d, name)
    if d.choices is not None:
        out["choices"] = list(d.choices)
    return out


def _describe(d: SettingDefinition) -> str:
    parts = [d.type.value]
    if d.choices:
        parts.append("one of " + ", ".join(d.choices))
    if d.min is not None:
        parts.append(f">= {d.min:g}")
    if d.max is not None:
        parts.append(f"<= {d.max:g}")
    if d.pattern:
        parts.append(f"matching {d.pattern}")
    return ", ".join(parts)
