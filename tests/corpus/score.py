"""Score readiness and fold-back on the corpus against the answers written by
hand (``tests/corpus/readiness/expected.toml``, ``tests/corpus/foldback/expected.toml``):
precision and recall of readiness findings and of near-duplicate pairs.

    python -m tests.corpus.score

Readiness: a finding is identified by (customization or "tenant:<slug>", code, hook or
setting key); its evidence kinds (static / observed) are scored separately. Observed
evidence is the hand-written ``observations`` plus what the runtime's own tracking
(``plugins.runtime.worker.call_tracked``) records when the ``runs`` hooks are called
for real. Then whether ``tailor customization check --release`` (the package alone)
gives the fleet's verdict per package, or says only observed evidence can tell.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.analysis.readiness.evaluation import TenantRelease, evaluate
from core.analysis.readiness.releases import TargetIndex
from core.analysis.readiness.report import ReadinessReport
from core.analysis.readiness.vocabulary import CUSTOMIZATION, Code, Finding
from core.model.customizations import Observation, ObservedKey, Registration
from core.model.manifest import ReleaseManifest
from core.model.overrides import ActiveOverride
from plugins.catalog import tailor_extension_points
from plugins.evidence import read_package
from tests.sample import ACME, V30_PLANNED

CORPUS = Path(__file__).parent / "readiness"
SEEN_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

Ident = tuple[str, str, str]


def history() -> tuple[ReleaseManifest, ...]:
    return (
        *(ACME.manifest(v, tailor_extension_points) for v in ("1.0", "1.5", "2.0")),
        V30_PLANNED,
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
    return [_observation(c, t, h, calls[(c, t, h)], keys) for (c, t, h), keys in grouped.items()]


def run_hooks(spec: dict[str, Any], registrations: list[Registration]) -> list[Observation]:
    """Run the hooks ``spec["runs"]`` names for real, in this process, with the
    runtime's own tracking (:func:`plugins.runtime.worker.call_tracked`), on the
    tenant's 2.0 values, and observe them as the runtime does."""
    import pluggy

    from core.model.customizations import READ, RETURNED, SCAN_KEY, SCANNED
    from plugins.loading import import_package, plugin_object
    from plugins.runtime.worker import Tracked, call_tracked

    base = {d.key: d.default for d in history()[2].settings}
    by_name = {r.name: r for r in registrations}
    out = []
    for customization, tenant, hook in spec.get("runs", ()):
        values = dict(base)
        for t, environment, key, value in spec["overrides"]:
            if t == tenant and not environment:
                values[key] = value
        package = CORPUS / by_name[customization].package
        pm = pluggy.PluginManager("tailor")
        pm.register(plugin_object(import_package(package, "hooks")), name=customization)
        (impl,) = getattr(pm.hook, hook).get_hookimpls()
        tracked = Tracked()
        kwargs = {"tenant": tenant, "environment": None, "values": values}
        result = call_tracked(hook, impl.function, impl.argnames, kwargs, tracked)
        returned = [k for k in (result or {}) if k in values]
        keys = [
            *(ObservedKey(k, READ, 1, SEEN_AT) for k in sorted(tracked.read)),
            *(ObservedKey(k, RETURNED, 1, SEEN_AT) for k in sorted(returned)),
            *([ObservedKey(SCAN_KEY, SCANNED, 1, SEEN_AT)] if tracked.scanned else []),
        ]
        out.append(_observation(customization, tenant, hook, 1, keys))
    return out


def _observation(c: str, t: str, h: str, calls: int, keys: list[ObservedKey]) -> Observation:
    return Observation(
        customization=c,
        tenant=t,
        hook=h,
        calls=calls,
        failures=0,
        changed=0,
        latency_buckets=(0,) * 13,
        last_error=None,
        last_error_at=None,
        first_seen=SEEN_AT,
        last_seen=SEEN_AT,
        keys=tuple(keys),
    )


def run_corpus() -> tuple[ReadinessReport, dict[str, Any], list[Registration]]:
    spec = expected()
    manifests = history()
    target = next(m for m in manifests if m.version == spec["target"])
    known = frozenset(d.key for m in manifests for d in m.settings)
    registrations = corpus_registrations(known)
    tenants = sorted({t for r in registrations for t in r.manifest.tenants})
    report = evaluate(
        TargetIndex(target, manifests),
        [TenantRelease(t, "2.0") for t in tenants],
        [ActiveOverride(*row) for row in spec["overrides"]],
        registrations,
        None,
        [*corpus_observations(spec["observations"]), *run_hooks(spec, registrations)],
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


def check_verdicts() -> dict[str, tuple[str, str]]:
    """Per customization: (the verdict ``tailor customization check --release``
    gives from the package alone, the fleet's expected verdict). A verdict is
    "blocked" or "ok"; check may also say "observed" (only run-time evidence
    can tell: keys chosen at run time), which agrees with either."""
    from core.analysis.readiness.evaluation import check_customization
    from core.analysis.readiness.vocabulary import SEVERITY, Severity

    spec = expected()
    manifests = history()
    target = next(m for m in manifests if m.version == spec["target"])
    known = frozenset(d.key for m in manifests for d in m.settings)
    blockers = {
        c for c, code, _d, _k in spec["findings"] if SEVERITY[Code(code)] is Severity.BLOCKER
    }
    out = {}
    for directory in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        package = read_package(directory, known)
        reg = package.registration
        assert reg is not None, package.problems
        result = check_customization(target, reg, manifests)
        if any(f.severity is Severity.BLOCKER for f in result.findings):
            verdict = "blocked"
        elif getattr(package.evidence, "run_time_keys", ()):
            verdict = "observed"
        else:
            verdict = "ok"
        out[reg.name] = (verdict, "blocked" if reg.name in blockers else "ok")
    return out


def main_check() -> None:
    verdicts = check_verdicts()
    agree = sum(1 for got, want in verdicts.values() if got in (want, "observed"))
    print(f"check --release agrees with fleet readiness on {agree} of {len(verdicts)} packages")
    for name, (got, want) in sorted(verdicts.items()):
        if got not in (want, "observed"):
            print(f"  disagrees: {name}: check {got}, fleet {want}")
        elif got == "observed":
            print(f"  says only observed evidence can tell: {name} (fleet {want})")


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


# -- fold-back: near-duplicate pairs -------------------------------------------------

FOLDBACK = Path(__file__).parent / "foldback"


def foldback_registrations() -> list[Registration]:
    out = []
    for directory in sorted(p for p in FOLDBACK.iterdir() if p.is_dir()):
        package = read_package(directory)
        assert package.registration is not None, package.problems
        out.append(package.registration)
    return out


def score_pairs() -> tuple[float, float, set[tuple[str, str]], set[tuple[str, str]]]:
    """(precision, recall, false pairs, missed pairs) of the near-duplicate groups
    fold-back reports, as unordered pairs of customization names."""
    from itertools import combinations

    from core.analysis.foldback import EvidenceKind, analyze

    spec = tomllib.loads((FOLDBACK / "expected.toml").read_text(encoding="utf-8"))
    wanted = {tuple(sorted(p)) for family in spec["copy_families"] for p in combinations(family, 2)}
    report = analyze(foldback_registrations(), [], {})
    found = {
        tuple(sorted(p))
        for c in report.candidates
        if c.kind is EvidenceKind.NEAR_DUPLICATE_CODE
        for p in combinations(c.customizations, 2)
    }
    hits = found & wanted
    precision = len(hits) / len(found) if found else 1.0
    recall = len(hits) / len(wanted) if wanted else 1.0
    return precision, recall, found - wanted, wanted - found  # type: ignore[return-value]


def main_pairs() -> None:
    precision, recall, false, missed = score_pairs()
    print(f"near-duplicate pairs: precision {precision:.3f}, recall {recall:.3f} ", end="")
    print(f"({len(false)} false, {len(missed)} missed)")
    for p in sorted(false):
        print("  false pair:", *p)
    for p in sorted(missed):
        print("  missed pair:", *p)


if __name__ == "__main__":
    main()
    main_check()
    main_pairs()
