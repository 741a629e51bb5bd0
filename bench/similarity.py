"""Benchmark: fold-back family detection (issue 20's figures).

Run by hand: ``python bench/similarity.py [--sizes 2000 20000] [--family-size 8]``.

A synthetic fleet written as consultants write: each family is one piece of
logic (a threshold, a cap with ``min`` or a floor with ``max``, a surcharge or a
discount, a range check), written by each member in its own style (renamed
variables, a helper, a class method, a conditional expression, reordered
statements, a loop over the keys or unrolled code) with its own constants; the
keys, operations and comparisons vary between families, so decoys (``min``
against ``max``, ``>`` against ``<=``, ``+`` against ``-``) sit side by side.
Every implementation's behaviour is computed from its source by the real
analysis (``plugins.similarity.behaviour``, timed apart: it runs once, when a
version is published).

Then, for each size:

1. **families**: :func:`core.analysis.foldback.families` (pre-filter buckets,
   cliques), its time (median of 3, the cyclic GC paused as the fold-back service
   runs it) and peak memory (tracemalloc, a separate run);
2. **exhaustive**: the baseline, a similarity for every pair of implementations
   of one hook (what a pairwise comparison costs), measured in the same run where
   feasible (<= 2,000 implementations), else estimated from a sample of 200,000
   pairs, and its peak memory;
3. the ratio families / exhaustive, and the pairs found against the pairs the
   exhaustive comparison deems the same behaviour (expected families: recall and
   precision of pairs).
"""

from __future__ import annotations

import argparse
import ast
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis.foldback import NEAR_DUPLICATE_THRESHOLD, families, similarity
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.store.gcpause import gc_paused
from plugins.similarity import NO_VALUE, behaviour

AREAS = ["billing", "shipping", "sales", "security", "notifications", "hr", "ui", "tax"]
WORDS = ["rate", "days", "limit", "fee", "cap", "amount", "level", "count", "size", "delay"]
NAMES = ["x", "value", "amount", "current", "v", "result", "n", "tmp", "number", "got"]


def keys(rng: random.Random, family: int) -> tuple[str, str]:
    area = rng.choice(AREAS)
    a, b = rng.sample(WORDS, 2)
    word = f"{rng.choice(WORDS)}{family}"  # unique per family: no accidental twins
    return f"{area}.{word}.{a}", f"{area}.{word}.{b}"


def variant(kind: str, op: str, k1: str, k2: str, style: int, rng: random.Random) -> str:
    """One member's source of a family's logic, in one of several styles."""
    c1, c2 = rng.choice([2, 3, 5, 10, 15, 25]), rng.choice([30, 45, 60, 90])
    v = rng.choice(NAMES)
    if kind == "scale":  # value * factor when another key is above/below a threshold
        cmp = ">" if op == "a" else "<="
        if style == 0:
            return (
                f"def hook(values):\n    {v} = values.get('{k1}', 0)\n"
                f"    if values.get('{k2}', 0) {cmp} {c2}:\n        {v} = {v} * {c1}\n"
                f"    return {{'{k1}': {v}}}\n"
            )
        if style == 1:
            return (
                f"def _scaled(values, key):\n    return values[key] * {c1}\n"
                f"def hook(values):\n    {v} = _scaled(values, '{k1}') "
                f"if values['{k2}'] {cmp} {c2} else values['{k1}']\n"
                f"    out = {{}}\n    out['{k1}'] = {v}\n    return out\n"
            )
        flipped = {">": "<", "<=": ">="}[cmp]
        return (
            f"def hook(values):\n    limit = {c2}\n    base = values['{k1}']\n"
            f"    if limit {flipped} values['{k2}']:\n        base *= {c1}\n"
            f"    return {{'{k1}': base}}\n"
        )
    if kind == "bound":  # min (cap) or max (floor) when a flag is set
        fn = "min" if op == "a" else "max"
        if style == 0:
            return (
                f"def hook(values):\n    {v} = values.get('{k1}', 0)\n"
                f"    if values.get('{k2}'):\n        {v} = {fn}({v}, {c1})\n"
                f"    return {{'{k1}': {v}}}\n"
            )
        if style == 1:
            return (
                f"def hook(values):\n    {v} = values['{k1}']\n"
                f"    return {{'{k1}': {fn}({c1}, {v}) if values['{k2}'] else {v}}}\n"
            )
        return (
            f"def _bounded(n):\n    return {fn}(n, {c1})\n"
            f"def hook(values):\n    got = values.get('{k1}')\n"
            f"    if not values.get('{k2}'):\n        return {{'{k1}': got}}\n"
            f"    return {{'{k1}': _bounded(got)}}\n"
        )
    if kind == "surcharge":  # (1 + x) or (1 - x) on both keys
        sign = "+" if op == "a" else "-"
        pct = rng.choice([0.05, 0.08, 0.1])
        if style == 0:
            return (
                f"KEYS = ('{k1}', '{k2}')\ndef hook(values):\n    out = {{}}\n"
                f"    for key in KEYS:\n"
                f"        out[key] = round(values[key] * (1 {sign} {pct}), 2)\n"
                f"    return out\n"
            )
        if style == 1:
            return (
                f"def hook(values):\n    return {{\n"
                f"        '{k2}': round(values.get('{k2}') * (1 {sign} {pct}), 2),\n"
                f"        '{k1}': round(values.get('{k1}') * (1 {sign} {pct}), 2),\n    }}\n"
            )
        return (
            f"def hook(values):\n    {v} = {{}}\n"
            f"    {v}['{k1}'] = round((1 {sign} {pct}) * values['{k1}'], 2)\n"
            f"    {v}['{k2}'] = round((1 {sign} {pct}) * values['{k2}'], 2)\n    return {v}\n"
        )
    # a range check in a validation hook: inside or outside
    if op == "a":
        test = f"not {c1} <= value <= {c2}" if style else f"value < {c1} or value > {c2}"
    else:
        test = f"{c1} <= value <= {c2}" if style else f"value >= {c1} and value <= {c2}"
    return (
        f"def hook(key, value):\n    if key == '{k1}' and ({test}):\n"
        f"        return 'out of range'\n    return None\n"
    )


def analyze(source: str) -> HookUse:
    tree = ast.parse(source)
    module = {
        n.targets[0].id: ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
    }
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    def resolve(call: ast.Call, _c: object) -> tuple[ast.FunctionDef, None] | None:
        if isinstance(call.func, ast.Name) and call.func.id in functions:
            return functions[call.func.id], None
        return None

    def value(name: ast.Name, _c: object) -> object:
        return module.get(name.id, NO_VALUE)

    found = behaviour(functions["hook"], None, resolve, lambda _n, _c: None, value)
    hook = "tailor_validate_setting" if "key, value" in source else "tailor_resolve_settings"
    return HookUse(
        hook=hook,
        params=("values",),
        fingerprint="",
        features=found.features,
        signature=found.signature,
        behaviour=found.text,
        constants=found.constants,
    )


def fleet(n: int, family_size: int, seed: int = 20) -> tuple[list[Registration], dict[str, int]]:
    """``n`` registrations; returns them and each one's expected family number."""
    rng = random.Random(seed)
    regs: list[Registration] = []
    expected: dict[str, int] = {}
    family = 0
    while len(regs) < n:
        kind = rng.choice(["scale", "bound", "surcharge", "range"])
        k1, k2 = keys(rng, family)
        for op in ("a", "b"):  # a family and its decoy, on the same keys
            for member in range(family_size):
                if len(regs) >= n:
                    break
                name = f"c{len(regs):06d}"
                source = variant(kind, op, k1, k2, member % 3, rng)
                regs.append(
                    Registration(
                        manifest=CustomizationManifest(
                            name=name, version="1.0", tenants=(f"t{name}",), requires=">=1.0"
                        ),
                        hooks=(analyze(source),),
                        setting_keys=(),
                        enabled_for=(f"t{name}",),
                    )
                )
                expected[name] = family
            family += 1
    return regs, expected


def found_pairs(regs: list[Registration]) -> set[tuple[str, str]]:
    """The pairs of every family, as the fold-back service runs it (GC paused)."""
    with gc_paused():
        found = families(regs)
    return {
        tuple(sorted(p))  # type: ignore[misc]
        for f in found
        for p in combinations(f.customizations, 2)
    }


def measure(call, *args):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    start = time.perf_counter()
    result = call(*args)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, elapsed, peak


def exhaustive(regs: list[Registration], sample: int | None) -> tuple[float, int]:
    """Seconds (measured, or estimated from ``sample`` pairs) for a similarity of
    every pair of implementations of one hook; the pairs it compares."""
    by_hook: dict[str, list[Counter[str]]] = {}
    for r in regs:
        by_hook.setdefault(r.hooks[0].hook, []).append(Counter(r.hooks[0].features))
    total = sum(len(b) * (len(b) - 1) // 2 for b in by_hook.values())
    rng = random.Random(1)
    start = time.perf_counter()
    done = 0
    for bags in by_hook.values():
        if sample is None:
            for a, b in combinations(bags, 2):
                similarity(a, b)
            done += len(bags) * (len(bags) - 1) // 2
        else:
            share = round(sample * (len(bags) * (len(bags) - 1) // 2) / total)
            for _ in range(share):
                a, b = rng.sample(range(len(bags)), 2)
                similarity(bags[a], bags[b])
            done += share
    elapsed = time.perf_counter() - start
    return elapsed * total / max(done, 1), total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--family-size", type=int, default=8)
    args = parser.parse_args()
    print(f"threshold {NEAR_DUPLICATE_THRESHOLD}; family size {args.family_size} (+ a decoy each)")
    for n in args.sizes:
        start = time.perf_counter()
        regs, expected = fleet(n, args.family_size)
        analysis = time.perf_counter() - start
        print(f"\n== {n} implementations")
        print(f"behaviour from source: {analysis / n * 1000:.2f} ms each (once, at publish)")
        pairs, _, fast_peak = measure(found_pairs, regs)
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            found_pairs(regs)
            runs.append(time.perf_counter() - start)
        fast = statistics.median(runs)
        feasible = n <= 2000
        (slow, compared), _, slow_peak = measure(exhaustive, regs, None if feasible else 200_000)
        wanted = {
            tuple(sorted(p))
            for family in {f for f in expected.values()}
            for p in combinations([c for c, f in expected.items() if f == family], 2)
        }
        hits = len(pairs & wanted)
        print(
            f"families: {fast * 1000:.0f} ms (median of 3, GC paused as the service runs it), "
            f"peak {fast_peak / 1e6:.1f} MB (tracemalloc, in a separate run)"
        )
        how = "measured" if feasible else "estimated from 200,000 pairs"
        print(
            f"exhaustive: {compared:,} pairs, {slow * 1000:.0f} ms ({how}), "
            f"peak {slow_peak / 1e6:.1f} MB"
        )
        print(f"ratio families / exhaustive: {fast / slow:.4f}")
        print(
            f"pairs: {len(pairs):,} found, {len(wanted):,} expected: "
            f"precision {hits / max(len(pairs), 1):.3f}, recall {hits / max(len(wanted), 1):.3f}"
        )


if __name__ == "__main__":
    main()
