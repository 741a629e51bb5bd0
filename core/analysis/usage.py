"""Usage: what is bought, built or configured and never used: retire candidates.

From run-time observations (:class:`core.model.customizations.Observation`), the
registry and the tenants' overrides:

- ``NEVER_CALLED``: a customization enabled for a tenant that the runtime never
  saw called for it; ``NOT_CALLED_RECENTLY``: last called more than ``days`` ago;
- ``NO_EFFECT``: called, but no call's result ever differed from the product's
  values (``changed`` is 0 over every hook): the customization changes nothing;
- ``OVERRIDE_EQUALS_DEFAULT``: an override whose value is the default of the
  tenant's release: removing it changes nothing;
- ``OVERRIDE_UNREAD``: an override of a setting the tenant's release no longer
  defines or has deprecated, that no customization enabled for the tenant reads
  (neither in its code nor at run time): nothing reads it any more.

:func:`retire_candidates` is pure; ``core/store/usage_service.py`` loads its inputs with
a constant number of statements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from packaging.version import Version

from core.analysis.readiness.evaluation import TenantRelease
from core.model.customizations import Observation, Registration
from core.model.manifest import ReleaseManifest
from core.model.overrides import ActiveOverride

NEVER_CALLED = "NEVER_CALLED"
NOT_CALLED_RECENTLY = "NOT_CALLED_RECENTLY"
NO_EFFECT = "NO_EFFECT"
OVERRIDE_EQUALS_DEFAULT = "OVERRIDE_EQUALS_DEFAULT"
OVERRIDE_UNREAD = "OVERRIDE_UNREAD"
#: fold-back's fleet-wide kinds (core.analysis.foldback)
SETTING_NEVER_OVERRIDDEN = "SETTING_NEVER_OVERRIDDEN"
CUSTOMIZATION_NEVER_ENABLED = "CUSTOMIZATION_NEVER_ENABLED"
#: a candidate's tenant when it holds for the whole fleet
FLEET_WIDE = ""


@dataclass(frozen=True)
class RetireCandidate:
    """Something that could be retired: a customization, an override (usage,
    per tenant) or a product setting (fold-back, fleet-wide)."""

    kind: str
    #: "customization", "override" or "setting"
    subject_kind: str
    #: the customization's name, or the setting key
    subject: str
    #: the tenant, or FLEET_WIDE ("")
    tenant: str
    detail: str
    calls: int = 0
    last_seen: datetime | None = None
    environment: str = ""


@dataclass(frozen=True)
class UsageReport:
    candidates: tuple[RetireCandidate, ...]
    days: int
    now: datetime

    def of_kind(self, kind: str) -> list[RetireCandidate]:
        return [c for c in self.candidates if c.kind == kind]


def retire_candidates(
    tenants: Sequence[TenantRelease],
    overrides: Sequence[ActiveOverride],
    manifests: Mapping[str, ReleaseManifest],
    registrations: Sequence[Registration],
    observations: Sequence[Observation],
    *,
    days: int = 30,
    now: datetime | None = None,
) -> UsageReport:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    in_fleet = {t.slug for t in tenants}
    by_pair: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for o in observations:
        by_pair[(o.customization, o.tenant)].append(o)
    out: list[RetireCandidate] = []
    reads: dict[str, set[str]] = defaultdict(set)
    for reg in registrations:
        for tenant in reg.enabled_for:
            if tenant not in in_fleet:
                continue
            seen = by_pair.get((reg.name, tenant), [])
            reads[tenant].update(reg.setting_keys)
            for o in seen:
                reads[tenant].update(o.keys_read)
            calls = sum(o.calls for o in seen)
            last = max((o.last_seen for o in seen if o.calls), default=None)
            if calls == 0:
                out.append(
                    RetireCandidate(
                        NEVER_CALLED,
                        "customization",
                        reg.name,
                        tenant,
                        "enabled, but never called for this tenant",
                    )
                )
                continue
            if last is not None and last < cutoff:
                out.append(
                    RetireCandidate(
                        NOT_CALLED_RECENTLY,
                        "customization",
                        reg.name,
                        tenant,
                        f"last called {last.date().isoformat()}, more than {days} days ago",
                        calls,
                        last,
                    )
                )
            if sum(o.changed for o in seen) == 0:
                out.append(
                    RetireCandidate(
                        NO_EFFECT,
                        "customization",
                        reg.name,
                        tenant,
                        f"{calls} call(s), none changed a value: its results are the product's",
                        calls,
                        last,
                    )
                )
    releases = {t.slug: t.release for t in tenants}
    definitions = {version: {d.key: d for d in m.settings} for version, m in manifests.items()}
    for override in overrides:
        release = releases.get(override.tenant)
        if release is None:
            continue
        definition = definitions.get(release, {}).get(override.key)
        where = f" ({override.environment})" if override.environment else ""
        if definition is not None and definition.default == override.value:
            out.append(
                RetireCandidate(
                    OVERRIDE_EQUALS_DEFAULT,
                    "override",
                    override.key,
                    override.tenant,
                    f"equals {release}'s default{where}: resetting it changes nothing",
                    environment=override.environment,
                )
            )
            continue
        gone = definition is None
        deprecated = (
            definition is not None
            and definition.deprecated is not None
            and Version(definition.deprecated) <= Version(release)
        )
        if (gone or deprecated) and override.key not in reads[override.tenant]:
            why = "no longer defined" if gone else "deprecated"
            out.append(
                RetireCandidate(
                    OVERRIDE_UNREAD,
                    "override",
                    override.key,
                    override.tenant,
                    f"{why} in {release} and no customization of this tenant reads it{where}",
                    environment=override.environment,
                )
            )
    order = [NEVER_CALLED, NOT_CALLED_RECENTLY, NO_EFFECT, OVERRIDE_EQUALS_DEFAULT, OVERRIDE_UNREAD]
    out.sort(key=lambda c: (order.index(c.kind), c.subject, c.tenant, c.environment))
    return UsageReport(tuple(out), days, now)
