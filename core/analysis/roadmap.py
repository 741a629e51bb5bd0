"""The roadmap: product work made from fold-back candidates, co-funded by tenants.

Pure values and rules (no database): what an item is, which candidate an id names,
how items rank, and what a caller may see of one.

Items rank by **breadth** (distinct tenants covered) and **upgrade cost avoided**
(blockers the covered customizations cause across planned releases), with fold-back's
own :class:`~core.analysis.foldback.Score`; never by what a client pays. Pledges are
shown beside, summed per currency.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.analysis.foldback import EXPLANATION as FOLDBACK_EXPLANATION
from core.analysis.foldback import Candidate, EvidenceKind, Score
from core.model.auth import Principal
from core.model.money import format_amount, totals

EXPLANATION = (
    "Ranked as fold-back candidates are: "
    + FOLDBACK_EXPLANATION.replace("upgrade blockers caused", "upgrade blockers avoided")
    + " Pledges are shown beside each item, summed per currency."
)


class RoadmapStatus(enum.StrEnum):
    PROPOSED = "proposed"
    COMMITTED = "committed"
    #: a registered release supersedes the item's capability (set by the release store)
    SHIPPED = "shipped"


class SourceKind(enum.StrEnum):
    #: a fold-back candidate, by :func:`candidate_id`
    CANDIDATE = "candidate"
    #: a fold-back family, by its id (not produced yet: reserved for families)
    FAMILY = "family"


def candidate_id(candidate: Candidate) -> str:
    """A fold-back candidate's stable id: its kind and what it is about (the
    capability, the setting and value, the customization), so it survives a
    re-ranking. A near-duplicate family's is the family's id (what it does, not
    who its members are: it survives a member joining)."""
    if candidate.id is not None:
        return candidate.id
    subject = candidate.title
    if candidate.kind is EvidenceKind.NEAR_DUPLICATE_CODE:
        subject = "|".join((*candidate.hooks, *candidate.customizations))
    digest = hashlib.sha256(f"{candidate.kind.value}|{subject}".encode()).hexdigest()[:12]
    return f"{candidate.kind.value.lower().replace('_', '-')}-{digest}"


@dataclass(frozen=True)
class Pledge:
    tenant: str
    #: in the currency's minor unit (see core.model.money)
    amount_minor: int
    currency: str
    note: str | None
    pledged_by: str
    pledged_at: datetime

    @property
    def amount(self) -> str:
        """The decimal string in the currency's major unit."""
        return format_amount(self.amount_minor, self.currency)


@dataclass(frozen=True)
class CoveredCustomization:
    name: str
    #: the tenants its manifest listed when the item was made
    tenants: tuple[str, ...]


@dataclass(frozen=True)
class Migration:
    """Where a shipped item's per-tenant migration is: readiness against
    ``release`` gives each covered tenant's ``SUPERSEDED_BY_CORE`` finding the
    action (disable the customization, set the override)."""

    release: str
    capability: str

    @property
    def command(self) -> str:
        return f"tailor readiness --target {self.release}"


@dataclass(frozen=True)
class RoadmapItem:
    id: int
    title: str
    source_kind: SourceKind
    source_id: str
    capability: str | None
    status: RoadmapStatus
    target_release: str | None
    shipped_in: str | None
    customizations: tuple[CoveredCustomization, ...]
    tenants: tuple[str, ...]
    evidence: str
    created_by: str
    created_at: datetime
    pledges: tuple[Pledge, ...] = ()
    score: Score = field(default_factory=lambda: Score(0, 0))
    #: covered tenants the caller may not see (their names are left out)
    hidden_tenants: int = 0

    @property
    def totals(self) -> list[tuple[str, str, int]]:
        """(currency, summed amount, pledges) per currency, by currency code."""
        summed = totals((p.currency, p.amount_minor) for p in self.pledges)
        counts: dict[str, int] = {}
        for p in self.pledges:
            counts[p.currency] = counts.get(p.currency, 0) + 1
        return [(c, format_amount(m, c), counts[c]) for c, m in summed.items()]

    @property
    def migration(self) -> Migration | None:
        if self.shipped_in is None or self.capability is None:
            return None
        return Migration(self.shipped_in, self.capability)


def scored(item: RoadmapItem, blockers: Mapping[str, int]) -> RoadmapItem:
    """The item with its score: every tenant it covers, and the blockers its
    customizations cause (``blockers``: customization -> blocked upgrades)."""
    cost = sum(blockers.get(c.name, 0) for c in item.customizations)
    return replace(item, score=Score(len(item.tenants), cost))


def rank(items: Iterable[RoadmapItem]) -> list[RoadmapItem]:
    """Open items first, best score first (breadth breaks ties), then by id;
    shipped items last. Pledges play no part."""
    return sorted(
        items,
        key=lambda i: (
            i.status is RoadmapStatus.SHIPPED,
            -i.score.total,
            -i.score.breadth,
            i.id,
        ),
    )


def visible(item: RoadmapItem, principal: Principal) -> RoadmapItem | None:
    """What ``principal`` may see of ``item``: everything for admins and release
    managers; for anyone else only items covering one of their tenants, with
    only those tenants, their pledges, and the customizations made for them
    (other tenants are counted, never named). None: not at all."""
    if principal.sees_all_tenants:
        return item
    mine = tuple(principal.visible(item.tenants))
    if not mine:
        return None
    return replace(
        item,
        tenants=mine,
        hidden_tenants=len(item.tenants) - len(mine),
        pledges=tuple(p for p in item.pledges if principal.in_scope(p.tenant)),
        customizations=tuple(
            replace(c, tenants=tuple(principal.visible(c.tenants)))
            for c in item.customizations
            if principal.visible(c.tenants)
        ),
        # the evidence text names tenants and customizations of the whole fleet
        evidence="",
    )


def find_candidate(candidates: Sequence[Candidate], wanted: str) -> Candidate | None:
    return next((c for c in candidates if candidate_id(c) == wanted), None)
