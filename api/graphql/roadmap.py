"""GraphQL: the roadmap (``roadmapItems``, ``createRoadmapItem``,
``pledgeRoadmapItem``, ``updateRoadmapItem``): thin types over
:mod:`core.analysis.roadmap`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Union

import strawberry

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from api.graphql.foldback import FoldbackScore
from core.analysis import roadmap as domain

# the domain's enums, exposed to GraphQL as they are (not copied)
strawberry.enum(domain.RoadmapStatus, description="Where a roadmap item stands.")
strawberry.enum(
    domain.SourceKind, name="RoadmapSourceKind", description="What an item is made from."
)


@strawberry.type(description="One tenant's co-funding of a roadmap item.")
class RoadmapPledge:
    tenant: str
    amount: str = strawberry.field(
        description="a decimal string in the currency's major unit, e.g. '12500.00'"
    )
    currency: str = strawberry.field(description="ISO 4217 code")
    note: str | None
    pledged_by: str
    pledged_at: datetime


@strawberry.type(description="Pledges summed in one currency (currencies are never mixed).")
class PledgeTotal:
    currency: str
    amount: str
    pledges: int


@strawberry.type(description="A customization the item covers.")
class RoadmapCustomization:
    name: str
    tenants: list[str] = strawberry.field(description="the tenants it was made for, in your scope")


@strawberry.type(
    description="Where a shipped item's per-tenant migration is: readiness against the "
    "release gives each covered tenant's SUPERSEDED_BY_CORE finding its action."
)
class RoadmapMigration:
    release: str
    capability: str
    command: str


@strawberry.type(description="Product work made from a fold-back candidate, co-funded by tenants.")
class RoadmapItem:
    id: int
    title: str
    source_kind: domain.SourceKind
    source_id: str = strawberry.field(description="the fold-back candidate's id (or family's)")
    capability: str | None = strawberry.field(
        description="registering a release that supersedes it ships the item"
    )
    status: domain.RoadmapStatus
    target_release: str | None
    shipped_in: str | None
    migration: RoadmapMigration | None
    customizations: list[RoadmapCustomization]
    tenants: list[str] = strawberry.field(description="tenants covered, in your scope")
    hidden_tenants: int = strawberry.field(
        description="tenants covered outside your scope (counted, never named)"
    )
    evidence: str
    score: FoldbackScore = strawberry.field(
        description="breadth (tenants covered) and upgrade cost avoided: the ranking; "
        "pledges play no part"
    )
    pledges: list[RoadmapPledge] = strawberry.field(description="in your scope")
    totals: list[PledgeTotal] = strawberry.field(description="pledges summed per currency")
    created_by: str
    created_at: datetime

    @classmethod
    def from_domain(cls, i: domain.RoadmapItem) -> RoadmapItem:
        m = i.migration
        return cls(
            id=i.id,
            title=i.title,
            source_kind=i.source_kind,
            source_id=i.source_id,
            capability=i.capability,
            status=i.status,
            target_release=i.target_release,
            shipped_in=i.shipped_in,
            migration=RoadmapMigration(
                release=m.release, capability=m.capability, command=m.command
            )
            if m
            else None,
            customizations=[
                RoadmapCustomization(name=c.name, tenants=list(c.tenants)) for c in i.customizations
            ],
            tenants=list(i.tenants),
            hidden_tenants=i.hidden_tenants,
            evidence=i.evidence,
            score=FoldbackScore(
                breadth=i.score.breadth, upgrade_cost=i.score.upgrade_cost, total=i.score.total
            ),
            pledges=[
                RoadmapPledge(
                    tenant=p.tenant,
                    amount=p.amount,
                    currency=p.currency,
                    note=p.note,
                    pledged_by=p.pledged_by,
                    pledged_at=p.pledged_at,
                )
                for p in i.pledges
            ],
            totals=[PledgeTotal(currency=c, amount=a, pledges=n) for c, a, n in i.totals],
            created_by=i.created_by,
            created_at=i.created_at,
        )


@strawberry.type(description="Roadmap items, best first.")
class RoadmapItems:
    explanation: str
    items: list[RoadmapItem]


@strawberry.input(description="Make a roadmap item from a fold-back candidate.")
class CreateRoadmapItemInput:
    source: str = strawberry.field(
        description="the candidate's id (foldbackCandidates { candidates { id } })"
    )
    source_kind: domain.SourceKind = domain.SourceKind.CANDIDATE
    title: str | None = strawberry.field(default=None, description="default: the candidate's")
    tenants: list[str] = strawberry.field(
        default_factory=list, description="tenants to cover beside the candidate's"
    )
    capability: str | None = strawberry.field(
        default=None,
        description="the capability whose superseding ships it (default: the one its "
        "customizations all declare)",
    )
    target_release: str | None = None


@strawberry.input(description="A tenant co-funds a roadmap item (again: replaces its pledge).")
class PledgeRoadmapItemInput:
    item: int
    tenant: str
    amount: str = strawberry.field(
        description="a positive decimal string in the currency's major unit, e.g. '12500.00'"
    )
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR")
    note: str | None = None


@strawberry.input(description="Commit an item, set its target release, cover more tenants.")
class UpdateRoadmapItemInput:
    item: int
    status: domain.RoadmapStatus | None = strawberry.field(
        default=None, description="proposed or committed (shipped: by registering the release)"
    )
    target_release: str | None = None
    add_tenants: list[str] = strawberry.field(default_factory=list)


RoadmapItemsResult = Annotated[
    Union[RoadmapItems, Errors],  # noqa: UP007
    strawberry.union("RoadmapItemsResult"),
]
RoadmapItemResult = Annotated[
    Union[RoadmapItem, Errors],  # noqa: UP007
    strawberry.union("RoadmapItemResult"),
]


@strawberry.type
class RoadmapQuery:
    @strawberry.field(
        description="Roadmap items ranked by tenants covered and upgrade cost avoided, never "
        "by what a client pays (pledges beside, summed per currency). Admins and release "
        "managers see every item; a consultant the items covering their tenants, with only "
        "those tenants and their pledges."
    )
    @expected
    async def roadmap_items(
        self, info: Info, status: domain.RoadmapStatus | None = None
    ) -> RoadmapItemsResult:
        ctx = info.context
        items = await ctx.services.roadmap.items(ctx.principal, status)
        return RoadmapItems(
            explanation=domain.EXPLANATION, items=[RoadmapItem.from_domain(i) for i in items]
        )


@strawberry.type
class RoadmapMutation:
    @strawberry.mutation(
        description="Make a roadmap item from a fold-back candidate: its customizations and "
        "tenants, plus those you add. Admins and release managers; audited."
    )
    @expected
    async def create_roadmap_item(
        self,
        info: Info,
        given: Annotated[CreateRoadmapItemInput, strawberry.argument(name="input")],
    ) -> RoadmapItemResult:
        ctx = info.context
        item = await ctx.services.roadmap.create(
            ctx.principal,
            given.source,
            source_kind=given.source_kind,
            title=given.title,
            tenants=given.tenants,
            capability=given.capability,
            target_release=given.target_release,
        )
        return RoadmapItem.from_domain(item)

    @strawberry.mutation(
        description="A covered tenant co-funds an item (amount, ISO 4217 currency, note); "
        "pledging again replaces its pledge. Admins and release managers; audited."
    )
    @expected
    async def pledge_roadmap_item(
        self,
        info: Info,
        given: Annotated[PledgeRoadmapItemInput, strawberry.argument(name="input")],
    ) -> RoadmapItemResult:
        ctx = info.context
        item = await ctx.services.roadmap.pledge(
            ctx.principal, given.item, given.tenant, given.amount, given.currency, given.note
        )
        return RoadmapItem.from_domain(item)

    @strawberry.mutation(
        description="Commit an item (or move it back to proposed), set its target release, "
        "cover more tenants. Admins and release managers; audited."
    )
    @expected
    async def update_roadmap_item(
        self,
        info: Info,
        given: Annotated[UpdateRoadmapItemInput, strawberry.argument(name="input")],
    ) -> RoadmapItemResult:
        ctx = info.context
        item = await ctx.services.roadmap.update(
            ctx.principal,
            given.item,
            status=given.status,
            target_release=given.target_release,
            add_tenants=given.add_tenants,
        )
        return RoadmapItem.from_domain(item)
