"""The unblock plan: which blockers to fix first, ranked by the tenants each unblocks.

Definitions (precise, because a release manager acts on them):

- A **blocker group** is what one fix resolves: ``("customization", name)`` for all
  blocker findings of one customization (one updated release of it fixes them for
  every tenant that enables it), or ``("setting", key)`` for all OVERRIDE_INVALID
  findings on one setting key (one migration of that setting, in the product or
  in the tenants' overrides, fixes them fleet-wide).
- A tenant's **blocker set** is the set of blocker groups of its blocker findings.
- Fixing group ``G`` **unblocks** a tenant when ``G`` is the only group left in
  its blocker set: ``unblocks_alone`` counts the tenants whose whole blocker set is
  ``{G}``; ``blocks`` counts every tenant whose blocker set contains ``G``.
- The **plan** optimizes "fewest fixes to unblock the most tenants", greedily
  over bundles (the fixes one still-blocked tenant needs): each round takes the
  bundle with the most tenants unblocked per fix, ties to the one that partially
  unblocks more tenants, then to the names; its fixes become steps, most-shared
  first. So a fix shared by three tenants that each need one other shared fix
  (2 fixes, 3 tenants) ranks before single-tenant fixes (1 fix, 1 tenant).
  ``unblocks_in_order`` is the number of tenants that step newly unblocks and
  ``cumulative_unblocked`` the running total, so the plan reads "fix these N
  things, in this order, to unblock M tenants".
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import Any

BlockerKey = tuple[str, str]
_Rank = tuple[Fraction | float, int, tuple[BlockerKey, ...]]

#: below this many tenants, ``covered / size`` as a float orders bundles exactly
#: as the fraction does: two different fractions a/b < c/d (a, c tenants, b, d
#: fixes, all < 2**26) differ by at least 1/(b*d), more than the rounding of
#: either (at most 2**-53 of the value, and a*d < 2**52); equal fractions round
#: to the same float. Beyond it, exact fractions (slower, the same order).
_FLOAT_EXACT = 2**26


@dataclass(frozen=True)
class UnblockStep:
    rank: int
    subject_kind: str
    subject: str
    codes: tuple[str, ...]
    blocked_tenants: tuple[str, ...]
    unblocks_alone: int
    unblocks_in_order: int
    cumulative_unblocked: int

    @property
    def blocks(self) -> int:
        return len(self.blocked_tenants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "subject_kind": self.subject_kind,
            "subject": self.subject,
            "codes": list(self.codes),
            "blocks": self.blocks,
            "blocked_tenants": list(self.blocked_tenants),
            "unblocks_alone": self.unblocks_alone,
            "unblocks_in_order": self.unblocks_in_order,
            "cumulative_unblocked": self.cumulative_unblocked,
        }


def unblock_plan(
    blockers: Mapping[str, frozenset[BlockerKey]],
    codes: Mapping[BlockerKey, set[str]] | None = None,
) -> list[UnblockStep]:
    """``blockers`` maps each tenant to its blocker set (empty when not blocked).

    Objective: the fewest fixes to unblock the most tenants. Greedy over
    **bundles**: a bundle is the set of fixes one still-blocked tenant needs (its
    remaining blocker set). At each round, pick the bundle with the most tenants
    unblocked per fix (tenants whose remaining set it covers, divided by its
    size); ties go to the bundle that partially unblocks more tenants (tenants
    it reduces without unblocking them), then to the bundle's sorted groups. Its
    fixes become steps, most-shared first (then by name)."""
    codes = codes or {}
    blocked_by: dict[BlockerKey, list[str]] = {}
    for tenant, keys in blockers.items():
        for key in keys:
            blocked_by.setdefault(key, []).append(tenant)
    alone = Counter(next(iter(keys)) for keys in blockers.values() if len(keys) == 1)

    remaining: dict[str, frozenset[BlockerKey]] = {t: k for t, k in blockers.items() if k}
    holding: dict[BlockerKey, set[str]] = {k: set(ts) for k, ts in blocked_by.items()}
    # tenants by their remaining blocker set (the candidate bundles): distinct sets
    # are few in a fleet, and a round changes only the ranks of bundles sharing a
    # group with the sets it changed
    count: Counter[frozenset[BlockerKey]] = Counter(remaining.values())
    with_group: dict[BlockerKey, set[frozenset[BlockerKey]]] = {}
    for bundle in count:
        for key in bundle:
            with_group.setdefault(key, set()).add(bundle)
    # the bundles' ranks, in a heap with lazy deletion: an entry is current while
    # ``rank`` holds the same key for its bundle (a round re-ranks only the
    # bundles whose rank it changed, so the plan costs O(re-ranks x log bundles),
    # not O(rounds x bundles)). Keys are unique (they end with the bundle's sorted
    # groups), so the heap's minimum is the bundle ``min(rank)`` would pick.
    #
    # Which ranks a round changes: it removes its fixes from the tenants holding
    # them. A bundle still ranked holds none of the fixes, so the tenants its
    # groups touch (remaining sets meeting it) are the same before and after:
    # ``touched`` is computed once per bundle. Its ``covered`` (remaining sets
    # inside it) changes only when a set inside it gains tenants, i.e. it is a
    # superset of a set a round produced.
    rank: dict[frozenset[BlockerKey], _Rank] = {}
    heap: list[tuple[_Rank, frozenset[BlockerKey]]] = []
    touched_by: dict[frozenset[BlockerKey], int] = {}
    exact = len(blockers) >= _FLOAT_EXACT

    def rerank(bundle: frozenset[BlockerKey]) -> None:
        covered = _covered(bundle, count)
        touched = touched_by.get(bundle)
        if touched is None:
            touched = len(set().union(*(holding[k] for k in bundle)))
            touched_by[bundle] = touched
        ratio = Fraction(covered, len(bundle)) if exact else covered / len(bundle)
        key = (-ratio, covered - touched, tuple(sorted(bundle)))
        rank[bundle] = key
        heapq.heappush(heap, (key, bundle))

    for bundle in count:
        rerank(bundle)
    steps: list[UnblockStep] = []
    total = 0
    while rank:
        top, best = heapq.heappop(heap)
        if rank.get(best) != top:
            continue  # re-ranked or gone since this entry was pushed
        del rank[best]
        holders = {k: len(holding[k]) for k in best}
        changed: dict[str, frozenset[BlockerKey]] = {}
        for fix in sorted(best, key=lambda k: (-holders[k], k)):
            unblocked = 0
            for tenant in holding[fix]:
                changed.setdefault(tenant, remaining[tenant])
                keys = remaining[tenant] - {fix}
                if keys:
                    remaining[tenant] = keys
                else:
                    del remaining[tenant]
                    unblocked += 1
                    for other in blockers[tenant]:
                        if other != fix:
                            holding[other].discard(tenant)
            holding[fix] = set()
            total += unblocked
            steps.append(
                UnblockStep(
                    rank=len(steps) + 1,
                    subject_kind=fix[0],
                    subject=fix[1],
                    codes=tuple(sorted(codes.get(fix, ()))),
                    blocked_tenants=tuple(sorted(blocked_by[fix])),
                    unblocks_alone=alone[fix],
                    unblocks_in_order=unblocked,
                    cumulative_unblocked=total,
                )
            )
        grown: set[frozenset[BlockerKey]] = set()
        for tenant, old in changed.items():
            count[old] -= 1
            if not count[old]:
                del count[old]
                rank.pop(old, None)
                for key in old:
                    with_group[key].discard(old)
            new = remaining.get(tenant)
            if new is not None:
                if new not in count:
                    for key in new:
                        with_group.setdefault(key, set()).add(new)
                count[new] += 1
                grown.add(new)
        stale: set[frozenset[BlockerKey]] = set()
        for inner in grown:  # the bundles containing a set that gained tenants
            rarest = min(inner, key=lambda k: len(with_group[k]))
            stale.update(b for b in with_group[rarest] if inner <= b)
        for bundle in stale:
            rerank(bundle)
    return steps


def _covered(bundle: frozenset[BlockerKey], by_set: Mapping[frozenset[BlockerKey], int]) -> int:
    """Tenants whose remaining blocker set is inside ``bundle``."""
    if len(bundle) <= 8:  # enumerate the bundle's subsets
        items = sorted(bundle)
        return sum(
            by_set.get(frozenset(c), 0)
            for r in range(1, len(items) + 1)
            for c in combinations(items, r)
        )
    return sum(n for s, n in by_set.items() if s <= bundle)
