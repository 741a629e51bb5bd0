"""GraphQL: ``foldbackCandidates`` (thin types over :mod:`core.analysis.foldback`)."""

from __future__ import annotations

from typing import Annotated, Union, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from core.analysis import foldback
from core.analysis.roadmap import candidate_id
from core.model.errors import InvalidInputError
from core.model.manifest_io import dumps_fragment


@strawberry.type(description="How a candidate's score is made: breadth and upgrade cost only.")
class FoldbackScore:
    breadth: int = strawberry.field(description="distinct tenants")
    upgrade_cost: int = strawberry.field(
        description="blocked tenant upgrades across planned releases"
    )
    total: int


@strawberry.type(description="Two similar hook implementations, side by side.")
class SimilarPair:
    hook: str
    a: str = strawberry.field(description="one customization")
    b: str = strawberry.field(description="the other")
    similarity: float = strawberry.field(
        description="structural similarity, 0 to 1 (renamed identifiers, literal types and "
        "values, statement order and package helpers ignored)"
    )
    a_location: str = strawberry.field(description="file:line inside a's package")
    b_location: str
    a_source: str = strawberry.field(description="a's implementation and the helpers it calls")
    b_source: str

    @classmethod
    def from_domain(cls, p: foldback.SimilarPair) -> SimilarPair:
        return cls(
            hook=p.hook,
            a=p.a,
            b=p.b,
            similarity=p.similarity,
            a_location=p.a_location,
            b_location=p.b_location,
            a_source=p.a_source,
            b_source=p.b_source,
        )


@strawberry.type(description="One customization of a fold-back family.")
class FoldbackFamilyMember:
    customization: str
    version: str
    tenants: list[str]
    location: str = strawberry.field(description="file:line of its hook inside its package")
    source: str = strawberry.field(description="its implementation and the helpers it calls")
    behaviour: str = strawberry.field(description="its abstracted behaviour")
    constants: JSON = strawberry.field(
        description="[slot, value, role] of each constant of its behaviour"
    )
    similarity: float = strawberry.field(description="to the family's behaviour, 0 to 1")
    aligned: bool = strawberry.field(
        description="the same abstract behaviour as the family: constants align slot by slot"
    )


@strawberry.type(description="A constant of the family's behaviour that differs between members.")
class DifferingConstant:
    slot: str
    role: str
    values: JSON = strawberry.field(description="[customization, value] per member")


@strawberry.type(
    description="Customizations implementing one hook the same way (every pair similar): "
    "the same setting keys, operations and comparisons, names and constants abstracted."
)
class FoldbackFamily:
    id: str = strawberry.field(
        description="a hash of what the family does (hook, keys, behaviour), not of its members"
    )
    hook: str
    keys: list[str]
    behaviour: str = strawberry.field(
        description="the shared logic, one fact a line, constants written #1, #2, ..."
    )
    members: list[FoldbackFamilyMember]
    differing: list[DifferingConstant]
    capability: str = strawberry.field(
        description="the capability the proposal supersedes (the members' declared one, else "
        "named after the family)"
    )
    proposal: str = strawberry.field(
        description="the proposal as a release-manifest fragment (TOML): the differing "
        "constants as settings, supersedes the capability, each tenant's migration; merge it "
        "with importRelease(manifest: ..., into: V)"
    )

    @classmethod
    def from_domain(cls, f: foldback.Family, p: foldback.Proposal) -> FoldbackFamily:
        return cls(
            capability=p.capability,
            proposal=dumps_fragment(p.fragment()),
            id=f.id,
            hook=f.hook,
            keys=list(f.keys),
            behaviour=f.behaviour,
            members=[
                FoldbackFamilyMember(
                    customization=m.customization,
                    version=m.version,
                    tenants=list(m.tenants),
                    location=m.location,
                    source=m.source,
                    behaviour=m.behaviour,
                    constants=cast(JSON, [list(c) for c in m.constants]),
                    similarity=m.similarity,
                    aligned=m.aligned,
                )
                for m in f.members
            ],
            differing=[
                DifferingConstant(
                    slot=d.slot, role=d.role, values=cast(JSON, [list(v) for v in d.values])
                )
                for d in f.differing
            ],
        )


@strawberry.type(description="A customization (or override pattern) the product should absorb.")
class FoldbackCandidate:
    id: str = strawberry.field(
        description="stable id: makes a roadmap item (createRoadmapItem(input: {source: id})); "
        "NEAR_DUPLICATE_CODE: the family's id ('tailor foldback propose ID')"
    )
    kind: str = strawberry.field(
        description="SHARED_CAPABILITY, NEAR_DUPLICATE_CODE, CHANGE_DEFAULT or SHOULD_BE_SETTING"
    )
    title: str
    evidence: str
    tenants: list[str]
    customizations: list[str]
    hooks: list[str]
    blockers: int
    score: FoldbackScore
    absorbed_in: str | None = strawberry.field(
        description="the release whose manifest supersedes this capability"
    )
    setting_key: str | None
    value: JSON | None
    pairs: list[SimilarPair] = strawberry.field(
        description="NEAR_DUPLICATE_CODE: the similar implementations side by side"
    )
    family: FoldbackFamily | None = strawberry.field(
        description="NEAR_DUPLICATE_CODE: the family, its shared logic and differing constants"
    )

    @classmethod
    def from_domain(cls, c: foldback.Candidate) -> FoldbackCandidate:
        return cls(
            id=candidate_id(c),
            family=FoldbackFamily.from_domain(c.family, c.proposal)
            if c.family is not None and c.proposal is not None
            else None,
            kind=c.kind.value,
            title=c.title,
            evidence=c.evidence,
            tenants=list(c.tenants),
            customizations=list(c.customizations),
            hooks=list(c.hooks),
            blockers=c.blockers,
            score=FoldbackScore(
                breadth=c.score.breadth, upgrade_cost=c.score.upgrade_cost, total=c.score.total
            ),
            absorbed_in=c.absorbed_in,
            setting_key=c.setting_key,
            value=c.value,
            pairs=[SimilarPair.from_domain(p) for p in c.pairs],
        )


@strawberry.type(description="Something nobody uses: a candidate to retire.")
class RetireCandidate:
    kind: str
    subject: str
    detail: str


@strawberry.type(description="Fold-back candidates, best first, and what to retire.")
class Foldback:
    explanation: str
    candidates: list[FoldbackCandidate]
    retire: list[RetireCandidate]


FoldbackResult = Annotated[
    Union[Foldback, Errors],  # noqa: UP007
    strawberry.union("FoldbackResult"),
]


@strawberry.type
class FoldbackQuery:
    @strawberry.field(
        description="Customizations and override patterns the product should absorb, ranked by "
        "breadth (distinct tenants) and upgrade cost (blockers caused), never by what a client "
        "pays. Admin and release managers."
    )
    @expected
    async def foldback_candidates(self, info: Info, limit: int = 20) -> FoldbackResult:
        ctx = info.context
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit", "must be between 1 and 500")
        report = await ctx.services.foldback.candidates(ctx.principal, limit)
        return Foldback(
            explanation=report.explanation,
            candidates=[FoldbackCandidate.from_domain(c) for c in report.candidates],
            retire=[
                RetireCandidate(kind=r.kind, subject=r.subject, detail=r.detail)
                for r in report.retire
            ],
        )
