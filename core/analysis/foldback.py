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
import hashlib
import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import orjson

from core.analysis.usage import (
    CUSTOMIZATION_NEVER_ENABLED,
    FLEET_WIDE,
    SETTING_NEVER_OVERRIDDEN,
    RetireCandidate,
)
from core.model.customizations import HookUse, Observation, Registration
from core.model.overrides import ActiveOverride

#: two hook implementations of one bucket (same hook, keys, operations and
#: comparisons) at least this similar are one family (weighted Jaccard of their
#: behaviours' sub-terms, see plugins/similarity.py)
NEAR_DUPLICATE_THRESHOLD = 0.9
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
    #: near-duplicates: the family (shared behaviour, members, differing constants)
    family: Family | None = None
    #: near-duplicates: the family as product work (settings, migrations)
    proposal: Proposal | None = None

    @property
    def id(self) -> str | None:
        """A family's stable id (NEAR_DUPLICATE_CODE), else None."""
        return self.family.id if self.family is not None else None


@dataclass(frozen=True)
class FoldbackReport:
    candidates: tuple[Candidate, ...]
    retire: tuple[RetireCandidate, ...]
    explanation: str = EXPLANATION
    counts: Mapping[str, int] = field(default_factory=dict)


def analyze(
    registrations: Sequence[Registration],
    overrides: Iterable[ActiveOverride],
    defaults: Mapping[str, Any],
    blockers: Mapping[str, int] | None = None,
    superseded: Mapping[str, str] | None = None,
    limit: int | None = None,
    observations: Iterable[Observation] = (),
    pinned: Sequence[Registration] | None = None,
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
    :param pinned: one registration per pinned version, enabled for the tenants
        pinned to it (families compare what tenants run); default: ``registrations``.
    """
    blockers = blockers or {}
    superseded = superseded or {}
    overrides = list(overrides)
    candidates = [
        *_shared_capabilities(registrations, blockers, superseded),
        *_near_duplicates(registrations, blockers, superseded, pinned),
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


@dataclass(frozen=True)
class FamilyMember:
    """One customization of a family: its implementation and its constants."""

    customization: str
    version: str
    tenants: tuple[str, ...]
    location: str
    source: str
    #: its own abstracted behaviour (the family's, when ``aligned``)
    behaviour: str
    #: (slot, value, role) of each constant of ``behaviour``
    constants: tuple[tuple[str, Any, str], ...]
    #: similarity to the family's behaviour (1.0: the same abstract behaviour)
    similarity: float
    #: its constants align slot by slot with the family's behaviour
    aligned: bool


@dataclass(frozen=True)
class DifferingConstant:
    """A constant slot of the family's behaviour whose value differs between members."""

    slot: str
    role: str
    #: (customization, value) for every aligned member
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Family:
    """Customizations that implement one hook the same way: same setting keys,
    same operations and comparisons, names and constants abstracted. Every
    member is similar to every other one (a clique, never a chain)."""

    #: a hash of what the family does (hook, sorted keys, abstracted behaviour),
    #: not of its members: it survives a member joining
    id: str
    hook: str
    keys: tuple[str, ...]
    #: the shared logic, one fact a line, constants written #1, #2, ...
    behaviour: str
    members: tuple[FamilyMember, ...]
    #: the constants that differ between members (the proposal's settings)
    differing: tuple[DifferingConstant, ...]

    @property
    def customizations(self) -> tuple[str, ...]:
        return tuple(sorted(m.customization for m in self.members))

    @property
    def tenants(self) -> tuple[str, ...]:
        return tuple(sorted({t for m in self.members for t in m.tenants}))


def family_id(hook: str, keys: Iterable[str], behaviour: str) -> str:
    """What a family does, hashed: ``fam-`` and 12 hex digits."""
    what = "\n".join([hook, ",".join(sorted(keys)), behaviour])
    return "fam-" + hashlib.blake2b(what.encode(), digest_size=6).hexdigest()


_Impl = tuple[Registration, HookUse]


def _behaviour(use: HookUse) -> str:
    """The abstracted behaviour; an implementation not analyzed from source has
    only its fingerprint (so it joins only identical fingerprints)."""
    return use.behaviour or f"fingerprint {use.fingerprint}"


def _keys(use: HookUse) -> tuple[str, ...]:
    return tuple(t[4:] for t in use.signature if t.startswith("key:"))


def families(
    registrations: Sequence[Registration], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[Family]:
    """Fold-back families: a deterministic partition of the hook implementations
    of pinned customizations (enabled for some tenant) into cliques.

    Pre-filter: implementations are bucketed by (hook, signature): the same
    setting keys and the same operations, comparisons, functions and constant
    signs, so ``min`` against ``max``, an inverted comparison, another key or
    another sign never meet. Within a bucket, identical abstract behaviours form
    one group; groups are taken largest first (then by what they do) and each
    joins the first family whose every group it resembles (features' weighted
    Jaccard >= ``threshold``), else starts one. Above EXACT_LIMIT groups in a
    bucket, MinHash LSH names the families worth testing. One customization
    appears at most once per family: its versions are never compared."""
    buckets: dict[tuple[str, tuple[str, ...]], list[_Impl]] = defaultdict(list)
    for r in sorted(registrations, key=lambda r: (r.name, r.manifest.version)):
        if not r.enabled_for:
            continue  # only what some tenant runs
        for use in r.hooks:
            if use.behaviour or use.fingerprint:
                buckets[(use.hook, use.signature)].append((r, use))
    out: list[Family] = []
    for (hook, _signature), impls in sorted(buckets.items()):
        groups: dict[str, list[_Impl]] = defaultdict(list)
        for impl in impls:
            groups[_behaviour(impl[1])].append(impl)
        if len(impls) < 2:
            continue
        ordered = sorted(
            groups.values(),
            key=lambda g: (
                -len({r.name for r, _ in g}),
                family_id(hook, _keys(g[0][1]), _behaviour(g[0][1])),
            ),
        )
        bags = [Counter(g[0][1].features) for g in ordered]
        neighbours: dict[int, set[int]] = defaultdict(set)
        if len(ordered) > EXACT_LIMIT:
            for i, j in _candidates(bags):
                neighbours[i].add(j)
                neighbours[j].add(i)
        placed: list[list[int]] = []
        names_in: list[set[str]] = []
        family_of: dict[int, int] = {}
        for i in range(len(ordered)):
            names = {r.name for r, _ in ordered[i]}
            if len(ordered) > EXACT_LIMIT:
                options = sorted({family_of[j] for j in neighbours[i] if j in family_of})
            else:
                options = list(range(len(placed)))
            for f in options:
                if names & names_in[f]:
                    continue  # another version of a member: never compared with it
                if all(bags[i] and similarity(bags[i], bags[j]) >= threshold for j in placed[f]):
                    placed[f].append(i)
                    names_in[f] |= names
                    family_of[i] = f
                    break
            else:
                family_of[i] = len(placed)
                placed.append([i])
                names_in.append(names)
        for members in placed:
            family = _family(hook, [ordered[i] for i in members], bags[members[0]])
            if family is not None:
                out.append(family)
    return out


def _family(hook: str, groups: Sequence[Sequence[_Impl]], seed_bag: Counter[str]) -> Family | None:
    seed = groups[0][0][1]
    behaviour = _behaviour(seed)
    members: list[FamilyMember] = []
    #: a group holds identical behaviours: pinned versions of one customization
    #: that behave the same are one member, with all their tenants
    tenants: dict[str, set[str]] = defaultdict(set)
    for group in groups:
        for r, _use in group:
            tenants[r.name].update(r.enabled_for)
    names: set[str] = set()
    for group in groups:
        for r, use in group:
            if r.name in names:
                continue
            names.add(r.name)
            aligned = _behaviour(use) == behaviour
            members.append(
                FamilyMember(
                    customization=r.name,
                    version=r.manifest.version,
                    tenants=tuple(sorted(tenants[r.name])),
                    location=use.location,
                    source=use.source,
                    behaviour=_behaviour(use),
                    constants=use.constants,
                    similarity=1.0
                    if aligned
                    else round(similarity(Counter(use.features), seed_bag), 3),
                    aligned=aligned,
                )
            )
    if len(members) < 2:
        return None
    members.sort(key=lambda m: m.customization)
    differing = []
    aligned_members = [m for m in members if m.aligned]
    for index, (slot, _value, role) in enumerate(seed.constants):
        values = tuple((m.customization, m.constants[index][1]) for m in aligned_members)
        if len({_canonical(v) for _, v in values}) > 1:
            differing.append(DifferingConstant(slot, role, values))
    return Family(
        id=family_id(hook, _keys(seed), behaviour),
        hook=hook,
        keys=_keys(seed),
        behaviour=behaviour,
        members=tuple(members),
        differing=tuple(differing),
    )


def similar_pairs(
    registrations: Sequence[Registration], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[SimilarPair]:
    """Every pair of members of every family (same hook, different customizations),
    side by side."""
    return [p for family in families(registrations, threshold) for p in _pairs(family)]


def _pairs(family: Family, limit: int | None = None) -> list[SimilarPair]:
    out = []
    for x, y in combinations(family.members, 2):
        score = 1.0 if x.behaviour == y.behaviour else min(x.similarity, y.similarity)
        out.append(
            SimilarPair(
                family.hook,
                x.customization,
                y.customization,
                round(score, 3),
                x.location,
                y.location,
                x.source,
                y.source,
            )
        )
        if limit is not None and len(out) >= limit:
            break
    return out


#: up to this many distinct behaviours in one bucket are compared pairwise;
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
    weighted one) in 16 bands of 3 rows; a pair at similarity 0.9 shares a band
    with probability 1 - (1 - 0.9**3)**16 > 0.99999."""
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


def _constants_text(family: Family) -> str:
    if not family.differing:
        return "no constant differs"
    parts = []
    for d in family.differing:
        shown = ", ".join(f"{name} {_canonical(v).decode()}" for name, v in d.values)
        parts.append(f"{d.slot} {d.role} ({shown})")
    return "constants that differ: " + "; ".join(parts)


def _near_duplicates(
    registrations: Sequence[Registration],
    blockers: Mapping[str, int],
    superseded: Mapping[str, str],
    pinned: Sequence[Registration] | None = None,
) -> list[Candidate]:
    """A candidate per family of at least two tenants."""
    by_name = {r.name: r for r in registrations}
    out = []
    for family in families(registrations if pinned is None else pinned):
        group = [by_name[n] for n in family.customizations if n in by_name]
        if len(family.tenants) < 2 or not group:
            continue
        capabilities = {r.manifest.capability for r in group if r.manifest.capability}
        absorbed = next((superseded[c] for c in sorted(capabilities) if c in superseded), None)
        names = family.customizations
        candidate = _group_candidate(
            EvidenceKind.NEAR_DUPLICATE_CODE,
            f"Same {family.hook} logic in {len(names)} customizations",
            f"{', '.join(names)} implement {family.hook} the same way (family {family.id}): "
            f"the same setting keys ({', '.join(family.keys) or 'none'}), operations and "
            f"comparisons, names and constants abstracted; {_constants_text(family)}",
            group,
            [family.hook],
            blockers,
            absorbed,
        )
        out.append(
            dataclasses.replace(
                candidate,
                pairs=tuple(_pairs(family, MAX_PAIRS_SHOWN)),
                family=family,
                proposal=propose(family, _shared_capability(group)),
            )
        )
    return out


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _change_defaults(
    overrides: Sequence[ActiveOverride], defaults: Mapping[str, Any]
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
    overrides: Sequence[ActiveOverride],
    defaults: Mapping[str, Any],
    observations: Iterable[Observation] = (),
) -> list[RetireCandidate]:
    overridden = {o.key for o in overrides}
    used = live_keys(registrations, observations, defaults)
    out = [
        RetireCandidate(
            SETTING_NEVER_OVERRIDDEN,
            "setting",
            key,
            FLEET_WIDE,
            "no tenant overrides it and no live customization reads or returns it",
        )
        for key in sorted(set(defaults) - overridden - used)
    ]
    out.extend(
        RetireCandidate(
            CUSTOMIZATION_NEVER_ENABLED,
            "customization",
            r.name,
            FLEET_WIDE,
            f"published for {', '.join(r.manifest.tenants) or 'no tenant'} but enabled for none",
        )
        for r in sorted(registrations, key=lambda r: r.name)
        if not r.enabled_for
    )
    return out


# -- proposals: a family becomes product settings -----------------------------------


@dataclass(frozen=True)
class ProposedSetting:
    """A product setting in place of a constant that differs between members."""

    key: str
    type: str
    default: Any
    description: str
    #: the constant's slot in the family's behaviour (#n) and what it does
    slot: str
    role: str
    #: tenant -> its value (what its customization hard-codes)
    values: Mapping[str, Any]
    min: float | None = None

    def definition(self) -> dict[str, Any]:
        """As a release manifest's ``[[settings]]`` entry."""
        out: dict[str, Any] = {
            "key": self.key,
            "type": self.type,
            "default": self.default,
            "description": self.description,
        }
        if self.min is not None:
            out["min"] = self.min
        return out


@dataclass(frozen=True)
class Proposal:
    """What productizing a family means: a capability whose description is the
    shared logic, settings for the constants that differ, and per tenant the
    migration (disable the customization, set the overrides)."""

    family: str
    capability: str
    description: str
    settings: tuple[ProposedSetting, ...]
    #: (customization, tenant, ((key, value), ...)) per affected tenant
    migrations: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...]

    def fragment(self) -> dict[str, Any]:
        """A release-manifest fragment (``tailor release import FRAGMENT --into V``)."""
        return {
            "notes": f"{self.capability}: {self.description}",
            "supersedes": [self.capability],
            "settings": [s.definition() for s in self.settings],
            "migrations": [
                {
                    "capability": self.capability,
                    "customization": customization,
                    "tenant": tenant,
                    "overrides": dict(overrides),
                }
                for customization, tenant, overrides in self.migrations
            ],
        }


def _setting_type(values: Sequence[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "string"
    return "json"


def _is_message(role: str, values: Sequence[Any]) -> bool:
    """Texts shown to people (error messages) are wording, not a setting."""
    return role.endswith("message") or any(isinstance(v, str) and " " in v for v in values)


def propose(family: Family, capability: str | None = None) -> Proposal:
    """The proposal for ``family``. ``capability``: the members' shared declared
    capability, if any; else one named after the family."""
    capability = capability or f"foldback-{family.id.removeprefix('fam-')}"
    parts = [k.split(".") for k in family.keys]
    prefix: list[str] = []
    for segments in zip(*parts, strict=False):
        if len(set(segments)) != 1 or len(prefix) == 2:
            break
        prefix.append(segments[0])
    if not prefix:
        prefix = ["foldback"]
    taken = set(family.keys)
    seen_vectors: set[bytes] = set()
    settings: list[ProposedSetting] = []
    by_member = {m.customization: m for m in family.members}
    for d in family.differing:
        raw = [v for _, v in d.values]
        vector = _canonical(raw)
        if _is_message(d.role, raw) or vector in seen_vectors:
            continue  # wording, or the same constant written twice
        seen_vectors.add(vector)
        base = ".".join([*prefix, re.sub(r"[^a-z0-9_]", "_", d.role.lower()) or "value"])
        key, n = base, 2
        while key in taken:
            key, n = f"{base}_{n}", n + 1
        taken.add(key)
        kind = _setting_type(raw)
        if kind == "float":
            raw = [float(v) for v in raw]
        counts = Counter(_canonical(v) for v in raw)
        default_canonical = sorted(counts, key=lambda c: (-counts[c], c))[0]
        default = next(v for v in raw if _canonical(v) == default_canonical)
        per_tenant = {
            t: (float(v) if kind == "float" else v)
            for name, v in d.values
            for t in by_member[name].tenants
        }
        numeric = kind in ("int", "float")
        settings.append(
            ProposedSetting(
                key=key,
                type=kind,
                default=default,
                description=f"{d.role.replace('_', ' ')} ({d.slot} of {family.hook} in "
                f"{', '.join(family.customizations)}; family {family.id})",
                slot=d.slot,
                role=d.role,
                values=per_tenant,
                min=0 if numeric and all(v >= 0 for v in raw) else None,
            )
        )
    migrations = []
    for m in family.members:
        for tenant in m.tenants:
            overrides = tuple(
                (s.key, s.values[tenant]) for s in settings if tenant in s.values and m.aligned
            )
            migrations.append((m.customization, tenant, overrides))
    description = (
        f"{family.hook} as {len(family.members)} customizations implement it "
        f"(family {family.id}, keys {', '.join(family.keys) or 'none'}): "
        + " | ".join(family.behaviour.splitlines())
    )
    return Proposal(
        family=family.id,
        capability=capability,
        description=description,
        settings=tuple(settings),
        migrations=tuple(sorted(migrations, key=lambda t: (t[1], t[0]))),
    )


def _shared_capability(group: Iterable[Registration]) -> str | None:
    """The capability every member declares, if they all declare the same one."""
    declared = {r.manifest.capability for r in group}
    return next(iter(declared)) if len(declared) == 1 else None


def find_family(registrations: Sequence[Registration], family: str) -> tuple[Family, str | None]:
    """The family with id ``family`` and its members' shared declared capability
    (None when they declare none or several), or NotFoundError."""
    from core.model.errors import NotFoundError

    for f in families(registrations):
        if f.id == family:
            names = set(f.customizations)
            members = {r.name: r for r in registrations if r.name in names}
            return f, _shared_capability(members.values())
    raise NotFoundError(
        "fold-back family",
        family,
        "'tailor foldback --format json' lists the families' ids (candidates of kind "
        "NEAR_DUPLICATE_CODE)",
    )
