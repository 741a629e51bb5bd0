"""Score readiness on the corpus against the expected findings written by hand
(``tests/corpus/readiness/expected.toml``): precision and recall.

    python -m tests.corpus.score

A finding is identified by (customization or "tenant:<slug>", code, hook or
setting key); its evidence kinds (static / observed) are scored separately.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.bootstrap import product_manifest
from core.customizations import Observation, ObservedKey, Registration
from core.readiness import (
    CUSTOMIZATION,
    Finding,
    OverrideRow,
    ReadinessReport,
    TenantRow,
    evaluate,
)
from core.releases import ReleaseManifest
from core.releases_data import bundled_manifests
from plugins.evidence import read_package
from tests.release_history import points_for

CORPUS = Path(__file__).parent / "readiness"
SEEN_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

Ident = tuple[str, str, str]


def history() -> tuple[ReleaseManifest, ...]:
    return (
        *(product_manifest(v, points_for) for v in ("1.0", "1.5", "2.0")),
        next(m for m in bundled_manifests() if m.version == "3.0"),
    )


def expected() -> dict[str, Any]:
    return tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))


def corpus_registrations(known_keys: frozenset[str]) -> list[Registration]:
    out = []
    for directory in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        package = read_package(directory, known_keys)
        assert package.registration is not None, package.problems
        out.append(package.registration)
    return out


def corpus_observations(rows: list[list[Any]]) -> list[Observation]:
    grouped: dict[tuple[str, str, str], list[ObservedKey]] = {}
    calls: dict[tuple[str, str, str], int] = {}
    for customization, tenant, hook, key, direction, count in rows:
        ident = (customization, tenant, hook)
        grouped.setdefault(ident, [])
        calls[ident] = max(calls.get(ident, 0), count)
        if key:
            grouped[ident].append(ObservedKey(key, direction, count, SEEN_AT))
    return [
        Observation(
            customization=c,
            tenant=t,
            hook=h,
            calls=calls[(c, t, h)],
            failures=0,
            changed=0,
            latency_buckets=(0,) * 13,
            last_error=None,
            last_error_at=None,
            first_seen=SEEN_AT,
            last_seen=SEEN_AT,
            keys=tuple(keys),
        )
        for (c, t, h), keys in grouped.items()
    ]


def run_corpus() -> tuple[ReadinessReport, dict[str, Any], list[Registration]]:
    spec = expected()
    manifests = history()
    target = next(m for m in manifests if m.version == spec["target"])
    known = frozenset(d.key for m in manifests for d in m.settings)
    registrations = corpus_registrations(known)
    tenants = sorted({t for r in registrations for t in r.manifest.tenants})
    report = evaluate(
        target,
        [TenantRow(t, "2.0") for t in tenants],
        [OverrideRow(*row) for row in spec["overrides"]],
        registrations,
        None,
        manifests,
        corpus_observations(spec["observations"]),
    )
    return report, spec, registrations


def detail(f: Finding) -> str:
    if f.subject_kind == CUSTOMIZATION:
        return str(f.evidence.get("hook") or f.evidence.get("setting") or "")
    return f"{f.subject}@{f.evidence.get('environment') or ''}"


def found_findings(report: ReadinessReport) -> dict[Ident, Finding]:
    out: dict[Ident, Finding] = {}
    for c in report.customizations:
        for f in c.findings:
            out[(c.name, f.code.value, detail(f))] = f
    for t in report.tenants:
        for f in t.findings:
            if f.subject_kind != CUSTOMIZATION:
                out[(f"tenant:{t.tenant}", f.code.value, detail(f))] = f
    return out


@dataclass(frozen=True)
class Score:
    true_positives: int
    false_positives: tuple[Ident, ...]
    false_negatives: tuple[Ident, ...]
    wrong_kinds: tuple[tuple[Ident, tuple[str, ...], tuple[str, ...]], ...]

    @property
    def precision(self) -> float:
        found = self.true_positives + len(self.false_positives)
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + len(self.false_negatives)
        return self.true_positives / wanted if wanted else 1.0


def score() -> Score:
    report, spec, _ = run_corpus()
    found = found_findings(report)
    wanted = {(c, code, d): tuple(kinds) for c, code, d, kinds in spec["findings"]}
    hits = set(found) & set(wanted)
    wrong = tuple(
        (i, wanted[i], found[i].sources) for i in sorted(hits) if found[i].sources != wanted[i]
    )
    return Score(
        true_positives=len(hits),
        false_positives=tuple(sorted(set(found) - set(wanted))),
        false_negatives=tuple(sorted(set(wanted) - set(found))),
        wrong_kinds=wrong,
    )


def main() -> None:
    s = score()
    print(f"readiness findings: precision {s.precision:.3f}, recall {s.recall:.3f} ", end="")
    print(f"({s.true_positives} right, {len(s.false_positives)} false, ", end="")
    print(f"{len(s.false_negatives)} missed, {len(s.wrong_kinds)} with wrong evidence kinds)")
    for ident in s.false_positives:
        print("  false positive:", *ident)
    for ident in s.false_negatives:
        print("  missed:", *ident)
    for ident, want, got in s.wrong_kinds:
        print("  evidence kinds:", *ident, "expected", want, "got", got)


if __name__ == "__main__":
    main()
