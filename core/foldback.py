"""Fold-back candidates: which customizations the product should absorb.

Pure analysis over plain data (registrations, overrides, blockers, superseded
capabilities), so it is testable without a database and runs in time linear in
the number of customizations and overrides: every evidence kind is one pass that
groups by a key.

Ranking uses only **breadth** (distinct tenants) and **upgrade cost** (blockers
the customizations caused across planned releases), never what a client pays:

    score = BREADTH_WEIGHT * tenants + COST_WEIGHT * blockers

Ties break on breadth, then kind, then title, so the output is deterministic.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.customizations import Observation, Registration

BREADTH_WEIGHT = 2
COST_WEIGHT = 1
EXPLANATION = (
    f"score = {BREADTH_WEIGHT} x distinct tenants + {COST_WEIGHT} x upgrade blockers caused "
    "across planned releases. Ranking never uses what a client pays."
)


class EvidenceKind(enum.StrEnum):
    SHARED_CAPABILITY = "SHARED_CAPABILITY"
    NEAR_DUPLICATE_CODE = "NEAR_DUPLICATE_CODE"
    CHANGE_DEFAULT = "CHANGE_DEFAULT"
    SHOULD_BE_SETTING = "SHOULD_BE_SETTING"


_KIND_ORDER = {k: i for i, k in enumerate(EvidenceKind)}


@dataclass(frozen=True)
class OverrideFact:
    tenant: str
    environment: str | None
    key: str
    value: Any


@dataclass(frozen=True)
class Score:
    breadth: int
    upgrade_cost: int

    @property
    def total(self) -> int:
        return BREADTH_WEIGHT * self.breadth + COST_WEIGHT * self.upgrade_cost


@dataclass(frozen=True)
class Candidate:
    kind: EvidenceKind
    title: str
    evidence: str
    tenants: tuple[str, ...]
    customizations: tuple[str, ...]
    hooks: tuple[str, ...]
    blockers: int
    score: Score
    #: the release whose manifest supersedes this capability, if any
    absorbed_in: str | None = None
    setting_key: str | None = None
    value: Any = None


@dataclass(frozen=True)
class RetireCandidate:
    kind: str  # SETTING_NEVER_OVERRIDDEN | CUSTOMIZATION_NEVER_ENABLED
    subject: str
    detail: str


@dataclass(frozen=True)
class FoldbackReport:
    candidates: tuple[Candidate, ...]
    retire: tuple[RetireCandidate, ...]
    explanation: str = EXPLANATION
    counts: Mapping[str, int] = field(default_factory=dict)


def analyze(
    registrations: Sequence[Registration],
    overrides: Iterable[OverrideFact],
    defaults: Mapping[str, Any],
    blockers: Mapping[str, int] | None = None,
    superseded: Mapping[str, str] | None = None,
    limit: int | None = None,
    observations: Iterable[Observation] = (),
) -> FoldbackReport:
    """Rank fold-back candidates.

    :param registrations: published customizations (with the tenants they are enabled for).
    :param overrides: every active override of every tenant.
    :param defaults: setting key -> default in the current release (the catalog).
    :param blockers: customization name -> blocker findings it causes across planned releases.
    :param superseded: capability -> the release version that supersedes it.
    :param limit: keep the best ``limit`` candidates.
    :param observations: what the runtime saw; a setting a live customization reads
        or returns (statically or observed) is never a retire candidate.
    """
    blockers = blockers or {}
    superseded = superseded or {}
    overrides = list(overrides)
    candidates = [
        *_shared_capabilities(registrations, blockers, superseded),
        *_near_duplicates(registrations, blockers, superseded),
        *_change_defaults(overrides, defaults),
        *_should_be_settings(registrations, blockers, superseded),
    ]
    candidates.sort(key=lambda c: (-c.score.total, -c.score.breadth, _KIND_ORDER[c.kind], c.title))
    counts: dict[str, int] = defaultdict(int)
    for c in candidates:
        counts[c.kind.value] += 1
    if limit is not None:
        candidates = candidates[:limit]
    return FoldbackReport(
        candidates=tuple(candidates),
        retire=tuple(_retire(registrations, overrides, defaults, observations)),
        counts=dict(counts),
    )


def _tenants(registration: Registration) -> set[str]:
    return set(registration.enabled_for)


def _group_candidate(
    kind: EvidenceKind,
    title: str,
    evidence: str,
    group: Sequence[Registration],
    hooks: Iterable[str],
    blockers: Mapping[str, int],
    absorbed_in: str | None,
) -> Candidate:
    tenants = sorted(set().union(*(_tenants(r) for r in group)))
    names = sorted({r.name for r in group})
    cost = sum(blockers.get(n, 0) for n in names)
    return Candidate(
        kind=kind,
        title=title,
        evidence=evidence,
        tenants=tuple(tenants),
        customizations=tuple(names),
        hooks=tuple(sorted(set(hooks))),
        blockers=cost,
        score=Score(len(tenants), cost),
        absorbed_in=absorbed_in,
    )


def _shared_capabilities(
    registrations: Sequence[Registration],
    blockers: Mapping[str, int],
    superseded: Mapping[str, str],
) -> list[Candidate]:
    by_capability: dict[str, list[Registration]] = defaultdict(list)
    for r in registrations:
        if r.manifest.capability:
            by_capability[r.manifest.capability].append(r)
    out = []
    for capability, group in by_capability.items():
        tenants = set().union(*(_tenants(r) for r in group))
        if len(tenants) < 2:
            continue
        out.append(
            _group_candidate(
                EvidenceKind.SHARED_CAPABILITY,
                f"Build '{capability}' into the product",
                f"{len(group)} customization(s) declare capability '{capability}' "
                f"for {len(tenants)} tenants",
                group,
                (h.hook for r in group for h in r.hooks),
                blockers,
                superseded.get(capability),
            )
        )
    return out


def _near_duplicates(
    registrations: Sequence[Registration],
    blockers: Mapping[str, int],
    superseded: Mapping[str, str],
) -> list[Candidate]:
    by_shape: dict[tuple[str, str], list[Registration]] = defaultdict(list)
    for r in registrations:
        for use in r.hooks:
            if use.fingerprint:
                by_shape[(use.hook, use.fingerprint)].append(r)
    out = []
    for (hook, fingerprint), group in by_shape.items():
        names = {r.name for r in group}
        tenants = set().union(*(_tenants(r) for r in group))
        if len(names) < 2 or len(tenants) < 2:
            continue
        capabilities = {r.manifest.capability for r in group if r.manifest.capability}
        absorbed = next((superseded[c] for c in sorted(capabilities) if c in superseded), None)
        out.append(
            _group_candidate(
                EvidenceKind.NEAR_DUPLICATE_CODE,
                f"Same {hook} logic in {len(names)} customizations",
                f"{', '.join(sorted(names))} implement {hook} with the same structure "
                f"(fingerprint {fingerprint[:12]}), differing only in names and constants",
                group,
                [hook],
                blockers,
                absorbed,
            )
        )
    return out


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _change_defaults(
    overrides: Sequence[OverrideFact], defaults: Mapping[str, Any]
) -> list[Candidate]:
    tenants_by_value: dict[tuple[str, bytes], set[str]] = defaultdict(set)
    values: dict[tuple[str, bytes], Any] = {}
    for o in overrides:
        if o.key not in defaults:
            continue
        canonical = _canonical(o.value)
        if canonical == _canonical(defaults[o.key]):
            continue
        tenants_by_value[(o.key, canonical)].add(o.tenant)
        values[(o.key, canonical)] = o.value
    out = []
    for (key, canonical), tenants in tenants_by_value.items():
        if len(tenants) < 2:
            continue
        value = values[(key, canonical)]
        out.append(
            Candidate(
                kind=EvidenceKind.CHANGE_DEFAULT,
                title=f"Change the default of {key} to {canonical.decode()}",
                evidence=f"{len(tenants)} tenants override {key} from "
                f"{_canonical(defaults[key]).decode()} to {canonical.decode()}",
                tenants=tuple(sorted(tenants)),
                customizations=(),
                hooks=(),
                blockers=0,
                score=Score(len(tenants), 0),
                setting_key=key,
                value=value,
            )
        )
    return out


def _should_be_settings(
    registrations: Sequence[Registration],
    blockers: Mapping[str, int],
    superseded: Mapping[str, str],
) -> list[Candidate]:
    out = []
    for r in registrations:
        if not r.hooks or not all(h.returns_constant for h in r.hooks):
            continue
        out.append(
            _group_candidate(
                EvidenceKind.SHOULD_BE_SETTING,
                f"Replace {r.name} with a setting",
                f"every hook of {r.name} ({', '.join(sorted(h.hook for h in r.hooks))}) "
                "only returns constants: a configurable setting would do",
                [r],
                (h.hook for h in r.hooks),
                blockers,
                superseded.get(r.manifest.capability or ""),
            )
        )
    return out


def live_keys(
    registrations: Iterable[Registration],
    observations: Iterable[Observation],
    catalog: Iterable[str],
) -> set[str]:
    """Settings of ``catalog`` that customizations enabled for some tenant use: in
    their code (keys, prefixes) or seen read or returned at run time."""
    catalog = set(catalog)
    used: set[str] = set()
    live = set()
    for r in registrations:
        if not r.enabled_for:
            continue
        live.add(r.name)
        used.update(r.setting_keys)
        for ref in r.references:
            if ref.is_prefix:
                used.update(k for k in catalog if ref.covers(k))
            else:
                used.add(ref.key)
    for o in observations:
        if o.customization in live and o.calls:
            used.update(k.key for k in o.keys)
    return used & catalog


def _retire(
    registrations: Sequence[Registration],
    overrides: Sequence[OverrideFact],
    defaults: Mapping[str, Any],
    observations: Iterable[Observation] = (),
) -> list[RetireCandidate]:
    overridden = {o.key for o in overrides}
    used = live_keys(registrations, observations, defaults)
    out = [
        RetireCandidate(
            "SETTING_NEVER_OVERRIDDEN",
            key,
            "no tenant overrides it and no live customization reads or returns it",
        )
        for key in sorted(set(defaults) - overridden - used)
    ]
    out.extend(
        RetireCandidate(
            "CUSTOMIZATION_NEVER_ENABLED",
            r.name,
            f"published for {', '.join(r.manifest.tenants) or 'no tenant'} but enabled for none",
        )
        for r in sorted(registrations, key=lambda r: r.name)
        if not r.enabled_for
    )
    return out
