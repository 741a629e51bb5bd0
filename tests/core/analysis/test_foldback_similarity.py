"""Near-duplicates by similarity on the fold-back corpus (tests/corpus/foldback),
expected copy pairs written before the analysis ran."""

from __future__ import annotations

from core.analysis.foldback import EvidenceKind, analyze, similar_pairs, similarity
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
            mutated = [f if rng.random() > 0.03 else rng.choice(universe) for f in base]
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


# -- families: cliques, pinned versions, stable ids ------------------------------------

from core.analysis.foldback import EXACT_LIMIT, families, family_id  # noqa: E402
from core.model.customizations import CustomizationManifest, HookUse, Registration  # noqa: E402


def impl(name, features, behaviour=None, tenants=None, version="1.0", enabled=True):
    tenants = tenants or [f"t-{name}"]
    return Registration(
        manifest=CustomizationManifest(
            name=name, version=version, tenants=tuple(tenants), requires=">=1.0"
        ),
        hooks=(
            HookUse(
                hook="tailor_resolve_settings",
                params=("values",),
                fingerprint="",
                features=tuple(features),
                signature=("key:billing.late_fee.rate", "op:Mult"),
                behaviour=behaviour or f"behaviour of {name}",
                constants=(("#1", len(name), "rate_factor"),),
            ),
        ),
        setting_keys=(),
        enabled_for=tuple(tenants) if enabled else (),
    )


def window(start, size=100):
    return [f"f{i:04d}" for i in range(start, start + size)]


def test_families_are_cliques_never_chains():
    """A ~ B and B ~ C (0.905 each) but A !~ C (0.818): no family holds all three,
    and every member of every family is similar to every other one."""
    regs = [impl("a", window(0)), impl("b", window(5)), impl("c", window(10))]
    found = families(regs)
    assert found and all(len(f.members) == 2 for f in found)
    assert not any({"a", "c"} <= set(f.customizations) for f in found)
    assert [f.customizations for f in found] == [f.customizations for f in families(regs[::-1])]


def test_only_pinned_versions_are_compared_never_two_versions_of_one():
    same = window(0)
    regs = [
        impl("x", same, "same", version="1.0"),
        impl("x", same, "same", version="2.0"),
        impl("unpinned", same, "same", enabled=False),
    ]
    assert families(regs) == []  # x alone (two versions), the other runs nowhere
    (family,) = families([*regs, impl("y", same, "same")])
    assert family.customizations == ("x", "y")
    # both pinned versions of x behave the same: one member, with the tenants of both
    x = next(m for m in family.members if m.customization == "x")
    assert x.tenants == ("t-x",)
    split = [
        impl("x", same, "one", tenants=["t1"], version="1.0"),
        impl("x", same, "two", tenants=["t2"], version="2.0"),
    ]
    assert families(split) == []  # two similar versions of one are never a family
    (family,) = families([*split, impl("y", same, "two")])
    assert family.customizations == ("x", "y")
    assert family.members[0].version == "2.0" and family.members[0].tenants == ("t2",)


def test_the_id_is_what_the_family_does_not_who_is_in_it():
    same = window(0)
    two = families([impl("p", same, "same"), impl("q", same, "same")])
    three = families([impl("p", same, "same"), impl("q", same, "same"), impl("r", same, "same")])
    assert (
        two[0].id
        == three[0].id
        == family_id("tailor_resolve_settings", ["billing.late_fee.rate"], "same")
    )
    other = families([impl("p", same, "other"), impl("q", same, "other")])
    assert other[0].id != two[0].id


def test_differing_constants_are_shown_per_member():
    same = window(0)
    (family,) = families([impl("p", same, "same"), impl("qq", same, "same")])
    (differing,) = family.differing
    assert differing.slot == "#1" and differing.role == "rate_factor"
    assert dict(differing.values) == {"p": 1, "qq": 2}


def test_above_the_exact_limit_lsh_buckets_still_yield_cliques():
    import random

    rng = random.Random(7)
    regs = []
    for group in range(EXACT_LIMIT // 4 + 10):
        base = [f"g{group}-{i}" for i in range(60)]
        for member in range(4):
            features = [f if rng.random() > 0.01 else f"m{group}-{member}-{f}" for f in base]
            regs.append(impl(f"c{group:03d}-{member}", features))
    found = families(regs)
    from collections import Counter

    for f in found:
        bags = [Counter(r.hooks[0].features) for r in regs if r.name in f.customizations]
        assert all(similarity(x, y) >= 0.9 for x in bags for y in bags)
        assert len({c.split("-")[0] for c in f.customizations}) == 1  # never across groups
    paired = sum(len(f.members) for f in found)
    assert paired >= 0.9 * len(regs)


def test_tiny_hooks_setting_different_keys_are_not_a_family():
    regs = foldback_registrations()
    by_name = {r.name: r.hooks[0] for r in regs}
    from collections import Counter

    dark, page = by_name["tiny-dark"], by_name["tiny-page"]
    assert dark.signature != page.signature
    assert similarity(Counter(dark.features), Counter(page.features)) < 1.0
    pairs = {(p.a, p.b) for p in similar_pairs(regs)}
    assert ("tiny-dark", "tiny-page") not in pairs
