"""GraphQL: change requests for protected environments (propose, approve,
reject, list, revert) and the protection itself. The rules live in
:mod:`core.store.changes`; these resolvers only map."""

from __future__ import annotations

import datetime
from typing import Annotated, Union

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from core.store import changes as domain
from core.store.authorization import ChangeState

# the domain's enums, exposed to GraphQL as they are (not copied)
strawberry.enum(domain.ChangeKind, description="What a change request changes.")
strawberry.enum(ChangeState, description="Where a change request stands.")


@strawberry.type(description="One approval of a change request.")
class ChangeApproval:
    actor: str
    comment: str | None
    at: datetime.datetime


@strawberry.type(
    description="A proposed change to a tenant: applied once approved by other principals "
    "with the right to make it (at applyAt when given)."
)
class ChangeRequest:
    id: int
    tenant: str
    environment: str | None
    kind: domain.ChangeKind
    summary: str = strawberry.field(description="what it changes, in one line")
    key: str | None
    value: JSON | None = strawberry.field(description='"<secret>" for a secret setting')
    expected_revision: int | None = strawberry.field(
        description="the override's revision it was proposed against: a later edit makes the "
        "apply a Conflict"
    )
    customization: str | None
    version: str | None
    reason: str
    apply_at: datetime.datetime | None
    state: ChangeState
    author: str
    approvals_needed: int
    approvals: list[ChangeApproval]
    created_at: datetime.datetime
    decided_by: str | None
    decided_at: datetime.datetime | None
    applied_at: datetime.datetime | None
    outcome: str | None = strawberry.field(
        description="what became of it: applied (and whether late), rejected, or why it failed"
    )
    reverts: int | None = strawberry.field(description="the feed sequence it reverts")

    @classmethod
    def from_domain(cls, r: domain.ChangeRequest) -> ChangeRequest:
        return cls(
            id=r.id,
            tenant=r.tenant,
            environment=r.environment,
            kind=r.kind,
            summary=r.summary,
            key=r.key,
            value=r.value,
            expected_revision=r.expected_revision,
            customization=r.customization,
            version=r.version,
            reason=r.reason,
            apply_at=r.apply_at,
            state=r.state,
            author=r.author,
            approvals_needed=r.required_approvals,
            approvals=[
                ChangeApproval(actor=a.actor, comment=a.comment, at=a.at) for a in r.approvals
            ],
            created_at=r.created_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            applied_at=r.applied_at,
            outcome=r.outcome,
            reverts=r.reverts,
        )


@strawberry.type(description="Change requests, pending first.")
class ChangeRequests:
    items: list[ChangeRequest]


ChangeRequestResult = Annotated[
    Union[ChangeRequest, Errors],  # noqa: UP007
    strawberry.union("ChangeRequestResult"),
]
ChangeRequestsResult = Annotated[
    Union[ChangeRequests, Errors],  # noqa: UP007
    strawberry.union("ChangeRequestsResult"),
]


RequestId = Annotated[int, strawberry.argument(name="id", description="the change request's id")]


@strawberry.input(description="A change to propose.")
class ProposeChangeInput:
    tenant: str
    kind: domain.ChangeKind
    reason: str
    environment: str | None = strawberry.field(
        default=None, description="overrides: null = tenant-wide; SET_PROTECTION: required"
    )
    key: str | None = strawberry.field(default=None, description="SET_SETTING, RESET_SETTING")
    value: JSON | None = strawberry.field(
        default=None,
        description="SET_SETTING: the value; UPGRADE_TENANT: true to force past blockers; "
        'SET_PROTECTION: {"protected": bool, "approvals": n}',
    )
    expected_revision: int | None = strawberry.field(
        default=None, description="overrides: the revision you read (default: the current one)"
    )
    customization: str | None = strawberry.field(
        default=None, description="ENABLE_/DISABLE_/PIN_CUSTOMIZATION"
    )
    version: str | None = strawberry.field(
        default=None, description="the customization's version, or UPGRADE_TENANT's target"
    )
    apply_at: datetime.datetime | None = strawberry.field(
        default=None, description="apply at this time (once approved); default: on approval"
    )


@strawberry.type
class ChangesQuery:
    """Change requests."""

    @strawberry.field(
        description="Change requests in your scope, pending first, then newest first."
    )
    @expected
    async def change_requests(
        self,
        info: Info,
        tenant: str | None = None,
        state: ChangeState | None = None,
        limit: int = domain.MAX_LIST,
    ) -> ChangeRequestsResult:
        ctx = info.context
        found = await ctx.services.changes.list(ctx.principal, tenant, state, limit)
        return ChangeRequests(items=[ChangeRequest.from_domain(r) for r in found])


@strawberry.type
class ChangesMutation:
    """Change requests and environment protection."""

    @strawberry.mutation(
        description="Propose a change. Where it needs no approval (nothing protected) it "
        "applies at once; else it waits for approveChange by other principals."
    )
    @expected
    async def propose_change(
        self, info: Info, given: Annotated[ProposeChangeInput, strawberry.argument(name="input")]
    ) -> ChangeRequestResult:
        ctx = info.context
        request = await ctx.services.changes.propose(
            ctx.principal,
            domain.ProposedChange(
                tenant=given.tenant,
                kind=given.kind,
                reason=given.reason,
                environment=given.environment,
                key=given.key,
                value=given.value,
                expected_revision=given.expected_revision,
                customization=given.customization,
                version=given.version,
                apply_at=given.apply_at,
            ),
        )
        return ChangeRequest.from_domain(request)

    @strawberry.mutation(
        description="Approve a pending change request (never your own; you need the right to "
        "make the change). The last approval applies it, with the usual revision check."
    )
    @expected
    async def approve_change(
        self, info: Info, request_id: RequestId, comment: str | None = None
    ) -> ChangeRequestResult:
        ctx = info.context
        return ChangeRequest.from_domain(
            await ctx.services.changes.approve(ctx.principal, request_id, comment)
        )

    @strawberry.mutation(description="Reject a change request that is not applied yet.")
    @expected
    async def reject_change(
        self, info: Info, request_id: RequestId, reason: str
    ) -> ChangeRequestResult:
        ctx = info.context
        request = await ctx.services.changes.reject(ctx.principal, request_id, reason)
        return ChangeRequest.from_domain(request)

    @strawberry.mutation(
        description="Revert a change by its change-feed sequence (a direct write's or an "
        "applied change request's): an override set back or reset, a customization disabled "
        "or enabled again, a version pin moved back to the version before, as a new audited "
        "change (a change request where protected). A later edit of the same thing makes it a "
        "Conflict; a change with no inverse (an upgrade, a release import, a triage decision, "
        "a request's state, a replaced secret value) is InvalidInput with code NOT_REVERTIBLE, "
        "saying what to do instead."
    )
    @expected
    async def revert_change(
        self, info: Info, sequence: int, reason: str | None = None
    ) -> ChangeRequestResult:
        ctx = info.context
        request = await ctx.services.changes.revert(ctx.principal, sequence, reason)
        return ChangeRequest.from_domain(request)

    @strawberry.mutation(
        description="Protect an environment (admin; applies at once), or weaken its protection "
        "(off, or fewer approvals): itself a change request another admin approves."
    )
    @expected
    async def set_environment_protection(
        self,
        info: Info,
        tenant: str,
        environment: str,
        protected: bool,
        approvals: int | None = None,
        reason: str | None = None,
    ) -> ChangeRequestResult:
        ctx = info.context
        request = await ctx.services.changes.protect(
            ctx.principal, tenant, environment, protected, approvals, reason
        )
        return ChangeRequest.from_domain(request)
