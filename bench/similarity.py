"""Near-duplicate detection time: MinHash LSH against the exhaustive pairwise
comparison (the baseline), in the same run, on synthetic hook implementations.

    python bench/similarity.py [--implementations 2000] [--family-size 10]

Each implementation is a multiset of ~90 structural features; families share a
base with ~8% of the features replaced per member (similarity ~0.75-0.9).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from core.analysis import foldback
from core.analysis.foldback import NEAR_DUPLICATE_THRESHOLD, _candidates, similarity


def bags(n: int, family: int, seed: int = 1) -> list[Counter[str]]:
    rng = random.Random(seed)
    universe = [f"{rng.getrandbits(48):012x}" for _ in range(20000)]
    out: list[Counter[str]] = []
    while len(out) < n:
        base = rng.choices(universe, k=90)
        for _ in range(family):
            out.append(Counter(f if rng.random() > 0.08 else rng.choice(universe) for f in base))
    return out[:n]


def pairs(items: list[Counter[str]]) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i, j in _candidates(items)
        if similarity(items[i], items[j]) >= NEAR_DUPLICATE_THRESHOLD
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--implementations", type=int, default=2000)
    parser.add_argument("--family-size", type=int, default=10)
    args = parser.parse_args()
    items = bags(args.implementations, args.family_size)
    start = time.perf_counter()
    fast = pairs(items)
    lsh = time.perf_counter() - start
    limit = foldback.EXACT_LIMIT
    foldback.EXACT_LIMIT = len(items) + 1  # force the exhaustive comparison
    try:
        start = time.perf_counter()
        slow = pairs(items)
        exhaustive = time.perf_counter() - start
    finally:
        foldback.EXACT_LIMIT = limit
    print(f"implementations: {len(items)}, copy pairs: {len(slow)}")
    print(f"exhaustive: {exhaustive * 1000:.0f} ms, LSH: {lsh * 1000:.0f} ms")
    print(f"ratio LSH / exhaustive: {lsh / exhaustive:.3f}")
    found = len(fast & slow)
    print(f"pairs found by LSH: {found} of {len(slow)} (recall {found / max(len(slow), 1):.4f})")


if __name__ == "__main__":
    main()
