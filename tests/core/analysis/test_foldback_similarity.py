"""Near-duplicates by similarity on the fold-back corpus (tests/corpus/foldback),
expected copy pairs written before the analysis ran."""

from __future__ import annotations

from core.analysis.foldback import EvidenceKind, analyze, similar_pairs
from tests.corpus.score import foldback_registrations, score_pairs


def test_precision_and_recall_of_near_duplicate_pairs():
    precision, recall, false, missed = score_pairs()
    print(f"near-duplicate pairs: precision {precision:.3f} recall {recall:.3f}")
    assert false == set()
    assert precision == 1.0
    assert recall >= 0.9, missed


def test_two_thin_wrappers_around_different_helpers_are_not_a_copy():
    pairs = {(p.a, p.b) for p in similar_pairs(foldback_registrations())}
    assert ("fold-wrapper-a", "fold-wrapper-b") not in pairs
    assert not any("fold-unrelated" in p for p in pairs)


def test_candidate_shows_the_implementations_side_by_side_with_a_score():
    report = analyze(foldback_registrations(), [], {})
    (late_fees,) = [
        c
        for c in report.candidates
        if c.kind is EvidenceKind.NEAR_DUPLICATE_CODE and "fold-base" in c.customizations
    ]
    assert set(late_fees.customizations) == {
        "fold-base",
        "fold-helper",
        "fold-method",
        "fold-renamed",
        "fold-reordered",
        "fold-sibling",
        "fold-class-args",
    }
    assert late_fees.id is not None and late_fees.id in late_fees.evidence
    assert "constants that differ" in late_fees.evidence
    by_pair = {(p.a, p.b): p for p in late_fees.pairs}
    helper = next(p for (a, b), p in by_pair.items() if "fold-helper" in (a, b))
    assert helper.similarity == 1.0
    side = helper.a_source if helper.a == "fold-helper" else helper.b_source
    # the helper the hook calls is shown with it
    assert "def tailor_resolve_settings(values):" in side and "def _late_fee(settings):" in side
    where = helper.a_location if helper.a == "fold-helper" else helper.b_location
    assert where == "hooks.py:15"


def test_literal_type_does_not_hide_an_exact_copy():
    """2 versus 2.0 (and 12 versus 14.0): the same structure."""
    pairs = {(p.a, p.b): p.similarity for p in similar_pairs(foldback_registrations())}
    assert pairs[("fold-password", "fold-password-copy")] == 1.0
    assert pairs[("fold-base", "fold-renamed")] == 1.0


def test_lsh_proposes_every_pair_the_exhaustive_comparison_finds():
    """Above EXACT_LIMIT implementations of one hook, MinHash LSH picks the pairs
    to compare; on 300 synthetic implementations in 25 families it misses none
    of the pairs at or above the threshold."""
    import random
    from collections import Counter

    from core.analysis.foldback import (
        EXACT_LIMIT,
        NEAR_DUPLICATE_THRESHOLD,
        _candidates,
        similarity,
    )

    rng = random.Random(1)
    universe = [f"{rng.getrandbits(48):012x}" for _ in range(3000)]
    bags = []
    for _family in range(25):
        base = rng.choices(universe, k=90)
        for _member in range(12):
            mutated = [f if rng.random() > 0.08 else rng.choice(universe) for f in base]
            bags.append(Counter(mutated))
    assert len(bags) > EXACT_LIMIT
    exhaustive = {
        (i, j)
        for i in range(len(bags))
        for j in range(i + 1, len(bags))
        if similarity(bags[i], bags[j]) >= NEAR_DUPLICATE_THRESHOLD
    }
    proposed = set(_candidates(bags))
    assert exhaustive and exhaustive <= proposed
    assert len(proposed) < len(bags) * (len(bags) - 1) // 2 / 5  # far fewer comparisons
