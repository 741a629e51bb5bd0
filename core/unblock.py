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
    todo = set(blocked_by)
    steps: list[UnblockStep] = []
    total = 0
    while todo:
        # tenants with exactly one group left are unblocked by fixing that group
        newly = Counter(next(iter(keys)) for keys in remaining.values() if len(keys) == 1)
        still = Counter(k for keys in remaining.values() for k in keys)
        best = min(todo, key=lambda k: (-newly[k], -still[k], -len(blocked_by[k]), k))
        todo.discard(best)
        unblocked = newly[best]
        total += unblocked
        for tenant in [t for t, keys in remaining.items() if best in keys]:
            remaining[tenant].discard(best)
            if not remaining[tenant]:
                del remaining[tenant]
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
