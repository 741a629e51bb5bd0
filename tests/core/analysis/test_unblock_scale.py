"""The unblock plan (a heap of bundle ranks) is the straightforward greedy that
scans every bundle each round; its time at fleet scale is measured by
``bench/fleet.py``."""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction

from core.analysis.unblock import BlockerKey, UnblockStep, _covered, unblock_plan


def reference_plan(blockers: dict[str, frozenset[BlockerKey]]) -> list[tuple]:
    """The greedy of core.analysis.unblock's docstring, written plainly: each round scans
    every remaining bundle for the best rank (exact fractions)."""
    remaining = {t: k for t, k in blockers.items() if k}
    blocked_by: dict[BlockerKey, list[str]] = {}
    for tenant, keys in blockers.items():
        for key in keys:
            blocked_by.setdefault(key, []).append(tenant)
    alone = Counter(next(iter(k)) for k in blockers.values() if len(k) == 1)
    out: list[tuple] = []
    total = 0
    while remaining:
        count = Counter(remaining.values())

        def rank(bundle: frozenset[BlockerKey], count: Counter = count) -> tuple:
            covered = _covered(bundle, count)
            touched = sum(1 for keys in remaining.values() if keys & bundle)
            return (-Fraction(covered, len(bundle)), covered - touched, tuple(sorted(bundle)))

        best = min(count, key=rank)
        holders = {k: sum(1 for keys in remaining.values() if k in keys) for k in best}
        for fix in sorted(best, key=lambda k: (-holders[k], k)):
            unblocked = 0
            for tenant in [t for t, keys in remaining.items() if fix in keys]:
                keys = remaining[tenant] - {fix}
                if keys:
                    remaining[tenant] = keys
                else:
                    del remaining[tenant]
                    unblocked += 1
            total += unblocked
            out.append((fix, len(blocked_by[fix]), alone[fix], unblocked, total))
    return out


def _fleet(rng: random.Random, tenants: int, groups: int) -> dict[str, frozenset[BlockerKey]]:
    keys = [("customization" if i % 3 else "setting", f"g{i:04d}") for i in range(groups)]
    weights = [1 / (i + 1) for i in range(groups)]  # a few groups block many tenants
    fleet = {}
    for t in range(tenants):
        n = rng.choice((0, 0, 1, 1, 1, 2, 2, 3, 5))
        fleet[f"t{t:05d}"] = frozenset(rng.choices(keys, weights, k=n))
    return fleet


def _shape(plan: list[UnblockStep]) -> list[tuple]:
    return [
        (
            (s.subject_kind, s.subject),
            s.blocks,
            s.unblocks_alone,
            s.unblocks_in_order,
            s.cumulative_unblocked,
        )
        for s in plan
    ]


def test_the_plan_is_the_plain_greedy_on_random_fleets():
    rng = random.Random(7)
    for tenants, groups in ((1, 1), (12, 4), (60, 10), (300, 40), (400, 400)):
        fleet = _fleet(rng, tenants, groups)
        plan = unblock_plan(fleet)
        assert _shape(plan) == reference_plan(fleet), (tenants, groups)
        assert [s.rank for s in plan] == list(range(1, len(plan) + 1))
