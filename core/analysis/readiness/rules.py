"""The readiness rules: the findings on a customization (its requirements, hooks,
setting keys, what the runtime observed), on a tenant's override, and the statuses
they give (see the package's docstring for the status rules)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from core.analysis.readiness.releases import History, TargetIndex, replacement_of
from core.analysis.readiness.report import CustomizationReadiness
from core.analysis.readiness.vocabulary import (
    CUSTOMIZATION,
    LEVEL_D_CODES,
    OBSERVED,
    SETTING,
    STATIC,
    WARNING_SEVERITIES,
    Code,
    CustomizationStatus,
    Finding,
    Severity,
    TenantStatus,
)
from core.model.customizations import KEY_DIRECTIONS, Observation, Registration
from core.model.definitions import SettingDefinition
from core.model.errors import SettingValidationError
from core.model.extension_points import EXPERIMENTAL
from core.model.overrides import ActiveOverride
from core.model.secrets import is_sealed


def with_migration(f: Finding, tenant: str, target: TargetIndex) -> Finding:
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


def tenant_status(findings: Iterable[Finding]) -> TenantStatus:
    """A tenant's status from its findings (the package's status rules)."""
    severities = {f.severity for f in findings}
    if Severity.BLOCKER in severities:
        return TenantStatus.BLOCKED
    if severities & WARNING_SEVERITIES:
        return TenantStatus.READY_WITH_WARNINGS
    return TenantStatus.READY


# -- customizations ----------------------------------------------------------------


def customization_readiness(
    reg: Registration,
    target: TargetIndex,
    version: Version,
    past: History,
    installed: Collection[str] | None,
    in_scope: Collection[str],
    seen: ObservedUse | None = None,
) -> CustomizationReadiness:
    """The findings, status and stability level of one customization against the target.

    ``in_scope``: the tenants evaluated; the report names no other tenant.
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
    target: TargetIndex,
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
    hook: str, params: Sequence[str] | None, target: TargetIndex, past: History
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
    target: TargetIndex,
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
        replacement = replacement_of(key, target, past)
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


def _static_keys(reg: Registration, target: TargetIndex, past: History) -> list[tuple[str, str]]:
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
class ObservedUse:
    """What the runtime observed of one customization in the evaluated tenants."""

    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _merge_stats(into: dict[str, Any], count: int, last_seen: Any) -> None:
    into["count"] = into.get("count", 0) + count
    if last_seen is not None and (into.get("last_seen") is None or last_seen > into["last_seen"]):
        into["last_seen"] = last_seen


def observed_uses(
    observations: Iterable[Observation], in_scope: Collection[str]
) -> dict[str, ObservedUse]:
    """What the runtime observed of each customization in the ``in_scope`` tenants, by name."""
    out: dict[str, ObservedUse] = {}
    for o in observations:
        if o.tenant not in in_scope or not o.calls:
            continue
        seen = out.setdefault(o.customization, ObservedUse())
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


# -- overrides -----------------------------------------------------------------------


def override_finding(
    row: ActiveOverride, target: TargetIndex, version: Version, past: History
) -> Finding | None:
    """The finding on one active override against the target, or None when it has none."""
    tv = target.manifest.version
    scope = f"environment {row.environment!r}" if row.environment else "tenant-wide"
    definition = target.settings.get(row.key)
    evidence: dict[str, Any] = {"environment": row.environment or None}
    secret = False
    if definition is None:
        if row.key not in past.settings:
            return None  # a customization's own setting: not part of the product catalog
        secret = past.settings[row.key][1].secret
        replacement = replacement_of(row.key, target, past)
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
