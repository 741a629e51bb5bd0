"""Upgrade rehearsal, pure: which calls replay a tenant's recorded hook inputs
(:mod:`core.model.samples`) through its customization versions, as the current
release hands them and translated to the target's catalog, and what the
answers mean (findings and a confidence per customization version).

Translation of a sample's ``values`` (the layered settings a
``tailor_resolve_settings`` call received) to the target release:

- a key the target (or a release before it) renames is handed under its new
  name (:class:`core.model.manifest.Renames`, as ``tailor customization fix``
  rewrites code);
- a key the target no longer defines is absent;
- a key the target adds is handed at its target default;
- a key the tenant does not override (neither tenant-wide nor in the sample's
  environment) and that holds the current default is handed at the target's
  default (a default the code relied on);
- a value whose type changes is converted when the target declares how
  (``previous_type`` and ``conversion``, :mod:`core.model.conversions`); a
  value the target accepts as it is stays; else the sample cannot be
  translated: it is reported (``REHEARSAL_UNTRANSLATABLE``: the tenant's
  value, not the code, is at stake; readiness's ``OVERRIDE_INVALID`` says the
  same of the override) and not replayed, counted in no confidence;
- the secret settings the customization declares are injected from the tenant's
  current values (a sample never holds one) and redacted in every finding.

The target answer is validated against the target's definitions
(:meth:`core.model.definitions.SettingDefinition.validate`) and compared with the
current answer (renamed keys compared under their new names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version

from core.analysis.readiness.vocabulary import CUSTOMIZATION, REHEARSAL, Code, Finding, Severity
from core.model.conversions import convert as convert_value
from core.model.customizations import Pin
from core.model.definitions import SettingDefinition
from core.model.errors import ConversionError, SettingValidationError
from core.model.hooks import RESOLVE_SETTINGS  # its ``values``: the tenant's layered settings
from core.model.manifest import ReleaseManifest, Renames
from core.model.rehearsal import (
    CURRENT,
    TARGET,
    Replay,
    ReplayBatch,
    ReplayOutcome,
    ReplayStats,
)
from core.model.samples import InputSample
from core.model.secrets import SECRET_MARK

#: sample ids kept in one finding's evidence
MAX_SAMPLES_SHOWN = 10


def defined(m: ReleaseManifest) -> dict[str, SettingDefinition]:
    """The settings ``m`` defines (not those listed as removed at or below it)."""
    v = m.parsed
    return {d.key: d for d in m.settings if d.defined_in(v)}


def convert(previous: SettingDefinition, target: SettingDefinition, value: Any) -> Any:
    """``value`` of ``previous`` as ``target`` takes it: by the conversion the
    target declares (:func:`core.model.conversions.convert`), else as it is when
    the target accepts it (an int for a float). Raises
    :class:`~core.model.conversions.ConversionError` or
    :class:`~core.model.errors.SettingValidationError` when it cannot."""
    if target.conversion is not None and target.previous_type in (None, previous.type.value):
        return convert_value(target, value)
    return target.validate(value)


@dataclass(frozen=True)
class Translation:
    values: dict[str, Any]
    #: key in the current release -> why it cannot be handed to the target
    untranslatable: dict[str, str] = field(default_factory=dict)


def translate(
    values: Mapping[str, Any],
    current: Mapping[str, SettingDefinition],
    target: Mapping[str, SettingDefinition],
    renames: Mapping[str, str],
    overridden: Iterable[str],
    declared_secrets: Iterable[str],
) -> Translation:
    """``values`` (as the current release handed them) as the target would hand
    them; see the module's docstring for the rules."""
    overridden = set(overridden)
    declared = set(declared_secrets) | {renames.get(k, k) for k in declared_secrets}
    out: dict[str, Any] = {}
    problems: dict[str, str] = {}
    unsettled: set[str] = set()  # target keys of the values that cannot be translated
    for key, value in values.items():
        old = current.get(key)
        new_key = renames.get(key, key)
        new = target.get(new_key)
        if old is None:  # the customization's own setting (it registers it)
            out[new_key if new is not None else key] = value
            continue
        if new is None:
            continue  # removed in the target
        if key not in overridden and value == old.default:
            out[new_key] = new.default
            continue
        if old.type is not new.type:
            try:
                out[new_key] = convert(old, new, value)
            except (ConversionError, SettingValidationError) as exc:
                unsettled.add(new_key)
                why = (
                    exc.message
                    if new.conversion is not None and not old.secret
                    else "the target declares no conversion for it"
                    if new.conversion is None
                    else "its declared conversion fails"
                )
                problems[key] = (
                    f"{key} changes type from {old.type.value} to {new.type.value} "
                    f"({new_key}): {why}"
                )
            continue
        out[new_key] = value
    for key, definition in target.items():
        if key not in out and key not in unsettled:
            if definition.secret and key not in declared:
                continue  # an undeclared secret is never handed
            out[key] = definition.default
    return Translation(out, problems)


# -- the tenant's side ----------------------------------------------------------------


@dataclass(frozen=True)
class TenantState:
    """What a rehearsal needs of one tenant: its release, its overrides (secrets
    opened) by environment ("" tenant-wide) and the versions it runs."""

    tenant: str
    release: str
    overrides: Mapping[str, Mapping[str, Any]]
    pins: tuple[Pin, ...]

    def overridden(self, environment: str | None) -> set[str]:
        keys = set(self.overrides.get("", {}))
        if environment:
            keys |= set(self.overrides.get(environment, {}))
        return keys

    def current_value(
        self, key: str, environment: str | None, definitions: Mapping[str, SettingDefinition]
    ) -> Any:
        """The tenant's value of ``key`` now: environment < tenant < default."""
        if environment and key in self.overrides.get(environment, {}):
            return self.overrides[environment][key]
        if key in self.overrides.get("", {}):
            return self.overrides[""][key]
        definition = definitions.get(key)
        return definition.default if definition is not None else None


# -- the plan ---------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One sample replayed through one version for one tenant."""

    sample: InputSample
    pin: Pin
    tenant: str
    current: Replay
    target: Replay | None
    #: current key -> key in the target (resolve hooks), for the comparison
    renames: Mapping[str, str]
    target_definitions: Mapping[str, SettingDefinition]
    #: keys whose values are never shown (secret in either release)
    secret_keys: frozenset[str]
    #: the injected secret values, redacted wherever text could carry them
    secret_values: tuple[str, ...]
    untranslatable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    cases: tuple[Case, ...]
    batches: tuple[ReplayBatch, ...]


def plan(
    target: ReleaseManifest,
    manifests: Mapping[str, ReleaseManifest],
    tenants: Sequence[TenantState],
    samples: Iterable[InputSample],
) -> Plan:
    """The calls: every sample of a (tenant, customization) the tenant runs,
    through the version it runs, on both sides; one batch per version."""
    by_tenant = {t.tenant: t for t in tenants}
    target_defs = defined(target)
    #: what the target renames through every release before it (core.model.manifest)
    moves = dict(Renames.up_to(target, [m for m in manifests.values() if m is not target]).keys)
    catalogs: dict[str, dict[str, SettingDefinition]] = {}
    cases: list[Case] = []
    per_version: dict[tuple[str, str], list[Replay]] = {}
    pins: dict[tuple[str, str], Pin] = {}
    for sample in sorted(samples, key=lambda s: (s.tenant, s.customization, s.id)):
        state = by_tenant.get(sample.tenant)
        if state is None:
            continue
        pin = next((p for p in state.pins if p.name == sample.customization), None)
        if pin is None or not any(h.hook == sample.hook for h in pin.hooks):
            continue  # not run for this tenant (any more), or not on this hook
        release = state.release
        if release not in catalogs:
            catalogs[release] = defined(manifests[release])
        current_defs = catalogs[release]
        secret_keys = frozenset(
            [k for k, d in current_defs.items() if d.secret]
            + [k for k, d in target_defs.items() if d.secret]
        )
        declared = [k for k in pin.manifest.secrets if k in current_defs or k in target_defs]
        inputs = dict(sample.inputs)
        injected: list[str] = []
        translation = Translation({})
        if sample.hook == RESOLVE_SETTINGS and isinstance(inputs.get("values"), Mapping):
            values = {k: v for k, v in inputs["values"].items() if k not in secret_keys}
            for key in declared:
                if key in current_defs:
                    value = state.current_value(key, sample.environment, current_defs)
                    values[key] = value
                    if isinstance(value, str) and value:
                        injected.append(value)
            translation = translate(
                values,
                current_defs,
                target_defs,
                moves,
                state.overridden(sample.environment),
                declared,
            )
            for key in declared:  # a secret the target adds: the tenant has no value yet
                if key in target_defs and key not in translation.values and key not in values:
                    translation.values[key] = target_defs[key].default
            current_kwargs = {**inputs, "values": values}
            target_kwargs = {**inputs, "values": translation.values}
        else:
            current_kwargs = target_kwargs = inputs
        version_key = (pin.name, pin.version)
        pins[version_key] = pin
        current_call = Replay(f"{sample.id}:{sample.tenant}:{CURRENT}", sample.hook, current_kwargs)
        target_call = (
            None
            if translation.untranslatable
            else Replay(f"{sample.id}:{sample.tenant}:{TARGET}", sample.hook, target_kwargs)
        )
        if target_call is not None:  # else not replayed at all
            per_version.setdefault(version_key, []).extend((current_call, target_call))
        cases.append(
            Case(
                sample=sample,
                pin=pin,
                tenant=sample.tenant,
                current=current_call,
                target=target_call,
                renames=moves if sample.hook == RESOLVE_SETTINGS else {},
                target_definitions=target_defs if sample.hook == RESOLVE_SETTINGS else {},
                secret_keys=secret_keys,
                secret_values=tuple(injected),
                untranslatable=translation.untranslatable,
            )
        )
    batches = tuple(ReplayBatch(pins[k], tuple(calls)) for k, calls in sorted(per_version.items()))
    return Plan(tuple(cases), batches)


# -- the judgement ----------------------------------------------------------------


@dataclass(frozen=True)
class CustomizationConfidence:
    """How a customization version behaved: replays that pass / replays."""

    name: str
    version: str
    replays: int
    passed: int
    tenants: tuple[str, ...]

    @property
    def confidence(self) -> float:
        return self.passed / self.replays if self.replays else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "replays": self.replays,
            "passed": self.passed,
            "confidence": round(self.confidence, 4),
            "tenants": list(self.tenants),
        }


@dataclass(frozen=True)
class TenantRehearsal:
    tenant: str
    current_release: str
    findings: tuple[Finding, ...]
    replays: int

    @property
    def blockers(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.BLOCKER)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "current_release": self.current_release,
            "replays": self.replays,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class RehearsalReport:
    target: str
    tenants: tuple[TenantRehearsal, ...]
    customizations: tuple[CustomizationConfidence, ...]
    #: samples replayed (each on both sides)
    replays: int
    #: hook calls made
    calls: int
    #: worker processes started
    workers: int
    #: samples not replayed: the target's catalog cannot express them
    untranslatable: int = 0
    #: a version that could not be loaded: "name version: why"
    unloadable: tuple[str, ...] = ()

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        return [(t.tenant, f) for t in self.tenants for f in t.findings]

    @property
    def any_blocked(self) -> bool:
        return any(t.blockers for t in self.tenants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "replays": self.replays,
            "calls": self.calls,
            "workers": self.workers,
            "untranslatable": self.untranslatable,
            "unloadable": list(self.unloadable),
            "customizations": [c.to_dict() for c in self.customizations],
            "tenants": [t.to_dict() for t in self.tenants],
        }


def shown(key: str, value: Any, case: Case) -> Any:
    """``value`` as a finding may show it: a secret setting's is never shown."""
    return SECRET_MARK if key in case.secret_keys else value


def redacted(text: str, case: Case) -> str:
    for secret in case.secret_values:
        text = text.replace(secret, SECRET_MARK)
    return text


@dataclass
class _Group:
    """One finding in the making: (tenant, code, customization, detail)."""

    code: Code
    pin: Pin
    detail_field: str
    detail: str
    hook: str
    message: str
    action: str
    samples: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    example: dict[str, Any] = field(default_factory=dict)

    def finding(self) -> Finding:
        evidence: dict[str, Any] = {
            self.detail_field: self.detail,
            "version": self.pin.version,
            "samples": self.samples[:MAX_SAMPLES_SHOWN],
            "sample_count": len(self.samples),
            "keys": sorted(self.keys),
            **self.example,
        }
        if self.detail_field != "hook":
            evidence["via"] = self.hook
        return Finding(
            self.code,
            CUSTOMIZATION,
            self.pin.name,
            self.message,
            self.action,
            evidence,
            sources=(REHEARSAL,),
            owner=self.pin.manifest.author,
        )


class Judge:
    """Findings per tenant and a confidence per version, from the outcomes of
    one plan after another (a rehearsal runs its tenants in chunks)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.groups: dict[tuple[str, Code, str, str], _Group] = {}
        self.replays: dict[str, int] = {}
        self.counts: dict[tuple[str, str], list[int]] = {}
        self.tenants_of: dict[tuple[str, str], set[str]] = {}
        self.cases = 0
        self.calls = 0
        self.untranslatable = 0
        self._marks = 0  # samples recorded in findings so far

    def _add(
        self,
        case: Case,
        code: Code,
        detail_field: str,
        detail: str,
        message: str,
        action: str,
        keys: Iterable[str] = (),
        example: Mapping[str, Any] | None = None,
    ) -> None:
        where = (case.tenant, code, case.pin.name, detail)
        group = self.groups.get(where)
        if group is None:
            group = self.groups[where] = _Group(
                code, case.pin, detail_field, detail, case.sample.hook, message, action
            )
            group.example = dict(example or {})
        group.samples.append(case.sample.id)
        group.keys.update(keys)
        self._marks += 1

    def add(self, built: Plan, outcomes: Mapping[str, ReplayOutcome]) -> None:
        missing = ReplayOutcome(False, error="not replayed", failure="killed")
        for case in built.cases:
            name, version, hook = case.pin.name, case.pin.version, case.sample.hook
            self.tenants_of.setdefault((name, version), set()).add(case.tenant)
            before = self._marks
            if case.target is None:  # not replayed: no pass, no failure of the code
                keys = sorted(case.untranslatable)
                self.untranslatable += 1
                self._add(
                    case,
                    Code.REHEARSAL_UNTRANSLATABLE,
                    "hook",
                    hook,
                    f"{name} {version}: a recorded input of {hook} cannot be translated to "
                    f"{self.target}, so it was not replayed: "
                    + "; ".join(case.untranslatable[k] for k in keys),
                    f"declare a conversion for {', '.join(keys)} in the {self.target} "
                    "manifest, or give the tenant a value valid on the target "
                    "(OVERRIDE_INVALID), then rehearse again",
                    keys,
                )
                continue
            self.calls += 2
            now = outcomes.get(case.current.id, missing)
            then = outcomes.get(case.target.id, missing)
            _judge_case(case, self.target, now, then, self._add)
            self.cases += 1
            self.replays[case.tenant] = self.replays.get(case.tenant, 0) + 1
            counts = self.counts.setdefault((name, version), [0, 0])
            counts[0] += 1
            counts[1] += 1 if self._marks == before else 0

    def report(self, tenants: Sequence[TenantState], stats: ReplayStats) -> RehearsalReport:
        by_tenant: dict[str, list[Finding]] = {}
        for (tenant, _code, _name, _detail), group in sorted(self.groups.items()):
            by_tenant.setdefault(tenant, []).append(group.finding())
        return RehearsalReport(
            target=self.target,
            tenants=tuple(
                TenantRehearsal(
                    t.tenant,
                    t.release,
                    tuple(by_tenant.get(t.tenant, ())),
                    self.replays.get(t.tenant, 0),
                )
                for t in sorted(tenants, key=lambda t: t.tenant)
            ),
            customizations=tuple(
                CustomizationConfidence(n, v, c[0], c[1], tuple(sorted(self.tenants_of[(n, v)])))
                for (n, v), c in sorted(
                    self.counts.items(), key=lambda i: (i[0][0], Version(i[0][1]))
                )
            ),
            replays=self.cases,
            calls=self.calls,
            untranslatable=self.untranslatable,
            workers=stats.workers,
            unloadable=tuple(sorted(f"{n} {v}: {why}" for (n, v), why in stats.unloadable.items())),
        )


def _judge_case(case: Case, target: str, now: ReplayOutcome, then: ReplayOutcome, add: Any) -> None:
    name, version, hook = case.pin.name, case.pin.version, case.sample.hook
    if not then.ok:
        error = redacted(then.error or "failed", case)
        also = "" if now.ok else " (it fails on the current release too)"
        add(
            case,
            Code.REHEARSAL_FAILED,
            "hook",
            hook,
            f"{name} {version}: {hook} fails on {target} with a recorded input{also}: {error}",
            f"run it on the sample (tailor customization run) and fix {name} before the "
            f"upgrade; the server would serve the non-customized values",
            (),
            {"failure": then.failure or "raised", "error": error},
        )
        return
    if hook == RESOLVE_SETTINGS:
        if then.value is not None and not isinstance(then.value, Mapping):
            add(
                case,
                Code.REHEARSAL_FAILED,
                "hook",
                hook,
                f"{name} {version}: {hook} returns {type(then.value).__name__} on {target}, "
                "not a dict of setting key -> value",
                f"make {name} return a dict",
                (),
                {"failure": "raised", "error": "not a dict"},
            )
            return
        answer: Mapping[str, Any] = then.value or {}
        handed = case.target.kwargs.get("values", {}) if case.target is not None else {}
        for key, value in answer.items():
            definition = case.target_definitions.get(key)
            if definition is None or key not in handed:
                continue  # not a setting of the batch: the server ignores it
            try:
                definition.validate(value)
            except SettingValidationError as exc:
                reason = f"breaks its {exc.rule} rule" if key in case.secret_keys else exc.message
                add(
                    case,
                    Code.REHEARSAL_INVALID_VALUE,
                    "setting",
                    key,
                    f"{name} {version} returns a value of {key} that {target} rejects: {reason}",
                    f"change {name} to return a valid {key} on {target} (the server would serve "
                    "the non-customized value)",
                    [key],
                    {"rule": exc.rule, "value": shown(key, value, case)},
                )
        if not now.ok or (now.value is not None and not isinstance(now.value, Mapping)):
            return
        before = {case.renames.get(k, k): v for k, v in (now.value or {}).items()}
        for key in sorted(set(before) | set(answer)):
            old, new = before.get(key, _ABSENT), answer.get(key, _ABSENT)
            if old == new and type(old) is type(new):
                continue
            add(
                case,
                Code.REHEARSAL_CHANGED,
                "setting",
                key,
                f"{name} {version} returns another {key} on {target} for the same recorded input",
                f"check that {name}'s {key} on {target} is what the tenant expects",
                [key],
                {
                    "diff": {
                        key: {
                            CURRENT: _shown_absent(key, old, case),
                            TARGET: _shown_absent(key, new, case),
                        }
                    }
                },
            )
        return
    if now.ok and (now.value != then.value or type(now.value) is not type(then.value)):
        add(
            case,
            Code.REHEARSAL_CHANGED,
            "hook",
            hook,
            f"{name} {version}: {hook} answers otherwise on {target} for the same recorded input",
            f"check that {name}'s {hook} answer on {target} is what the tenant expects",
            (),
            {"diff": {CURRENT: now.value, TARGET: then.value}},
        )


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


def _shown_absent(key: str, value: Any, case: Case) -> Any:
    return None if value is _ABSENT else shown(key, value, case)
