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

import dataclasses
import enum
import random
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.model.customizations import HookUse, Observation, Registration

#: two hook implementations at least this similar are copies (weighted Jaccard of
#: their structural features, see plugins/similarity.py)
NEAR_DUPLICATE_THRESHOLD = 0.7
#: implementations with fewer features are too small to call a copy
MIN_FEATURES = 12
#: side-by-side pairs kept as evidence per candidate
MAX_PAIRS_SHOWN = 10
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
    #: near-duplicates: the similar implementations, side by side
    pairs: tuple[SimilarPair, ...] = ()


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


def similarity(a: Mapping[str, int], b: Mapping[str, int]) -> float:
    """Weighted Jaccard index of two feature multisets (feature -> count)."""
    low = sum(min(n, b.get(k, 0)) for k, n in a.items())
    high = sum(a.values()) + sum(b.values()) - low
    return low / high if high else 0.0


@dataclass(frozen=True)
class SimilarPair:
    """Two hook implementations of different customizations, side by side."""

    hook: str
    a: str
    b: str
    similarity: float
    a_location: str
    b_location: str
    a_source: str
    b_source: str


def similar_pairs(
    registrations: Sequence[Registration], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[SimilarPair]:
    """Pairs of hook implementations (same hook, different customizations) whose
    structural similarity reaches ``threshold``, enough to connect every group of
    copies: identical implementations pair with the first of their kind (linear),
    distinct ones are compared pairwise. Implementations without features (not
    analyzed from source) pair only on an identical fingerprint."""
    by_hook: dict[str, list[tuple[Registration, HookUse]]] = defaultdict(list)
    for r in registrations:
        for use in r.hooks:
            if use.features or use.fingerprint:
                by_hook[use.hook].append((r, use))
    out: list[SimilarPair] = []

    def pair(
        hook: str, x: tuple[Registration, HookUse], y: tuple[Registration, HookUse], score: float
    ) -> None:
        if x[0].name == y[0].name:
            return
        (an, au), (bn, bu) = sorted([(x[0].name, x[1]), (y[0].name, y[1])], key=lambda t: t[0])
        out.append(
            SimilarPair(
                hook, an, bn, round(score, 3), au.location, bu.location, au.source, bu.source
            )
        )

    for hook, uses in sorted(by_hook.items()):
        same: dict[tuple[str, ...] | str, list[tuple[Registration, HookUse]]] = defaultdict(list)
        for r, u in uses:
            same[u.features or u.fingerprint].append((r, u))
        for group in same.values():
            features = group[0][1].features
            if features and len(features) < MIN_FEATURES:
                continue  # too small to call a copy, even when identical
            for other in group[1:]:
                pair(hook, group[0], other, 1.0)
        featured = [(g[0], Counter(g[0][1].features)) for g in same.values() if g[0][1].features]
        sizes = [sum(bag.values()) for _, bag in featured]
        for i, j in _candidates([bag for _, bag in featured]):
            small, large = sorted((sizes[i], sizes[j]))
            if small < MIN_FEATURES or small < threshold * large:
                continue  # too small to call a copy, or cannot reach the threshold
            score = similarity(featured[i][1], featured[j][1])
            if score >= threshold:
                pair(hook, featured[i][0], featured[j][0], score)
    return out


#: up to this many distinct implementations of one hook are compared pairwise;
#: above, MinHash LSH proposes the pairs worth comparing
EXACT_LIMIT = 200
_LSH_BANDS, _LSH_ROWS = 16, 3
_PRIME = (1 << 61) - 1
_rng = random.Random(20261123)
_HASHES = [
    (_rng.randrange(1, _PRIME), _rng.randrange(0, _PRIME)) for _ in range(_LSH_BANDS * _LSH_ROWS)
]


def _candidates(bags: Sequence[Counter[str]]) -> Iterable[tuple[int, int]]:
    """Index pairs worth an exact comparison. Above EXACT_LIMIT: MinHash over each
    multiset (an element per (feature, occurrence), so set Jaccard equals the
    weighted one) in 16 bands of 3 rows; a pair at similarity 0.7 shares a band
    with probability 1 - (1 - 0.7**3)**16 > 0.998."""
    n = len(bags)
    if n <= EXACT_LIMIT:
        yield from ((i, j) for i in range(n) for j in range(i + 1, n))
        return
    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
    for index, bag in enumerate(bags):
        elements = [
            (_as_int(feature) << 8) + k for feature, count in bag.items() for k in range(count)
        ]
        if not elements:
            continue
        signature = [min((a * x + b) % _PRIME for x in elements) for a, b in _HASHES]
        for band in range(_LSH_BANDS):
            rows = tuple(signature[band * _LSH_ROWS : (band + 1) * _LSH_ROWS])
            buckets[(band, rows)].append(index)
    seen: set[tuple[int, int]] = set()
    for members in buckets.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                pair = (members[x], members[y])
                if pair not in seen:
                    seen.add(pair)
                    yield pair


def _as_int(feature: str) -> int:
    try:
        return int(feature, 16)
    except ValueError:
        return zlib.crc32(feature.encode())


def _components(pairs: Iterable[SimilarPair]) -> list[set[str]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for p in pairs:
        parent[find(p.a)] = find(p.b)
    groups: dict[str, set[str]] = defaultdict(set)
    for name in list(parent):
        groups[find(name)].add(name)
    return list(groups.values())


def _near_duplicates(
    registrations: Sequence[Registration],
    blockers: Mapping[str, int],
    superseded: Mapping[str, str],
) -> list[Candidate]:
    """Groups of customizations whose implementations of one hook are pairwise
    similar (connected through pairs at or above the threshold)."""
    by_name = {r.name: r for r in registrations}
    pairs_by_hook: dict[str, list[SimilarPair]] = defaultdict(list)
    for pair in similar_pairs(registrations):
        pairs_by_hook[pair.hook].append(pair)
    out = []
    for hook, pairs in sorted(pairs_by_hook.items()):
        components = _components(pairs)
        # each pair belongs to its first name's component: one pass, not one per group
        component_of = {n: i for i, names in enumerate(components) for n in names}
        pairs_in: dict[int, list[SimilarPair]] = defaultdict(list)
        for p in pairs:
            pairs_in[component_of[p.a]].append(p)
        for i, names in enumerate(components):
            group = [by_name[n] for n in sorted(names)]
            tenants = set().union(*(_tenants(r) for r in group))
            if len(names) < 2 or len(tenants) < 2:
                continue
            inside = tuple(pairs_in[i][:MAX_PAIRS_SHOWN])
            capabilities = {r.manifest.capability for r in group if r.manifest.capability}
            absorbed = next((superseded[c] for c in sorted(capabilities) if c in superseded), None)
            scores = [p.similarity for p in inside]
            candidate = _group_candidate(
                EvidenceKind.NEAR_DUPLICATE_CODE,
                f"Same {hook} logic in {len(names)} customizations",
                f"{', '.join(sorted(names))} implement {hook} with similar structure "
                f"(similarity {min(scores):.2f} to {max(scores):.2f}; renamed identifiers, "
                "literal types and values, statement order and package helpers ignored)",
                group,
                [hook],
                blockers,
                absorbed,
            )
            out.append(dataclasses.replace(candidate, pairs=inside))
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
            used.update(o.keys_used)  # a scan of values uses no key in particular
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
