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
- The **plan** orders the groups greedily: at each step, pick the group that
  unblocks the most tenants given the groups already fixed (a tenant is unblocked
  once its blocker set is contained in the fixed groups); ties go to the group that
  blocks more tenants, then to the name. ``unblocks_in_order`` is the number of
  tenants that step newly unblocks and ``cumulative_unblocked`` the running total,
  so the plan reads "fix these N things, in this order, to unblock M tenants".
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BlockerKey = tuple[str, str]


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
    """``blockers`` maps each tenant to its blocker set (empty when not blocked)."""
    codes = codes or {}
    blocked_by: dict[BlockerKey, list[str]] = {}
    for tenant, keys in blockers.items():
        for key in keys:
            blocked_by.setdefault(key, []).append(tenant)
    alone = Counter(next(iter(keys)) for keys in blockers.values() if len(keys) == 1)

    remaining: dict[str, set[BlockerKey]] = {t: set(k) for t, k in blockers.items() if k}
    #: tenants still blocked whose remaining groups include k (fixing k never
    #: changes another group's holders: a tenant keeps its other groups)
    holders: dict[BlockerKey, set[str]] = {k: set(ts) for k, ts in blocked_by.items()}
    # newly[k]: tenants whose only remaining group is k (fixing k unblocks them now)
    newly: Counter[BlockerKey] = Counter(
        next(iter(keys)) for keys in remaining.values() if len(keys) == 1
    )

    def priority(k: BlockerKey) -> tuple[int, int, int, BlockerKey]:
        return (-newly[k], -len(holders[k]), -len(blocked_by[k]), k)

    heap = [priority(k) for k in blocked_by]
    heapq.heapify(heap)
    done: set[BlockerKey] = set()
    steps: list[UnblockStep] = []
    total = 0
    while heap:
        entry = heapq.heappop(heap)
        best = entry[3]
        if best in done:
            continue
        if entry != priority(best):  # stale: its counts changed since it was pushed
            heapq.heappush(heap, priority(best))
            continue
        done.add(best)
        unblocked = newly[best]
        total += unblocked
        touched: set[BlockerKey] = set()
        for tenant in holders[best]:
            keys = remaining[tenant]
            keys.discard(best)
            if len(keys) == 1:
                last = next(iter(keys))
                newly[last] += 1
                touched.add(last)
            elif not keys:
                del remaining[tenant]
        for k in touched - done:
            heapq.heappush(heap, priority(k))
        steps.append(
            UnblockStep(
                rank=len(steps) + 1,
                subject_kind=best[0],
                subject=best[1],
                codes=tuple(sorted(codes.get(best, ()))),
                blocked_tenants=tuple(sorted(blocked_by[best])),
                unblocks_alone=alone[best],
                unblocks_in_order=unblocked,
                cumulative_unblocked=total,
            )
        )
    return steps
