"""GraphQL: upgrade readiness, release import and diff, tenant upgrades."""

from __future__ import annotations

import datetime
from typing import Annotated, Union

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Info
from api.graphql.errors import Error, Errors, expected, register
from api.graphql.types import Release, Tenant
from core.analysis import rehearsal as rehearsal_domain
from core.analysis import triage as triage_domain
from core.analysis.readiness import report as report_domain
from core.analysis.readiness import vocabulary as vocabulary_domain
from core.analysis.release_diff import ReleaseDiff as DomainDiff
from core.analysis.triage import TriagedReport, TriageRecord, TriageVerb, id_of
from core.model.errors import InvalidInputError, UpgradeBlockedError
from core.model.manifest_io import ManifestFormat
from core.store.readiness_service import UpgradeResult


@strawberry.type(description="A decision on a finding (acknowledged, planned or waived).")
class FindingTriage:
    finding: str
    decision: str = strawberry.field(description="acknowledged, planned, waived or reopened")
    reason: str | None
    owner: str | None
    until: datetime.date | None = strawberry.field(
        description="a planned fix's due date, or the last day a waiver holds"
    )
    decided_by: str
    decided_at: datetime.datetime
    audit_id: int

    @classmethod
    def from_domain(cls, r: TriageRecord) -> FindingTriage:
        return cls(
            finding=r.finding,
            decision=r.decision.value,
            reason=r.reason,
            owner=r.owner,
            until=r.until,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            audit_id=r.audit_id,
        )


@strawberry.type(description="One readiness finding: a stable code, severity, evidence, action.")
class Finding:
    code: str = strawberry.field(description="stable code, e.g. HOOK_REMOVED (DESIGN.md)")
    severity: str = strawberry.field(description="blocker, warning, info or unknown")
    subject_kind: str = strawberry.field(description="customization, setting or app")
    subject: str = strawberry.field(description="the customization's name or the setting key")
    detail: str = strawberry.field(
        description="the hook or setting key a customization's finding is about (empty for "
        "its manifest); the environment of an override's (empty: tenant-wide)"
    )
    message: str
    action: str = strawberry.field(description="the suggested fix")
    evidence: JSON
    id: str | None = strawberry.field(
        default=None,
        description="stable identity CODE:subject:detail@tenant (tenant findings), for "
        "triageFinding",
    )
    triage: FindingTriage | None = strawberry.field(
        default=None, description="the decision taken on this finding, if any"
    )
    waived: bool = strawberry.field(
        default=False, description="a waiver holds today: this blocker does not block"
    )
    new: bool = strawberry.field(
        default=False, description="not shown by the previous kept run of this target"
    )
    sources: list[str] = strawberry.field(
        description="kinds of evidence that show it: static (the package's code, file:line in "
        "evidence.static; its manifest; stored overrides), observed (seen at run time: "
        "evidence.observed has count and last_seen) and/or rehearsal (recorded inputs "
        "replayed against the target: evidence.samples)"
    )
    owner: str = strawberry.field(description="the customization's author; empty for settings")

    @classmethod
    def from_domain(
        cls,
        f: vocabulary_domain.Finding,
        tenant: str | None = None,
        triaged: TriagedReport | None = None,
    ) -> Finding:
        fid = id_of(f, tenant) if tenant else None
        record = triaged.decision(tenant, f) if triaged and tenant else None
        return cls(
            code=f.code.value,
            severity=f.severity.value,
            subject_kind=f.subject_kind,
            subject=f.subject,
            detail=f.detail,
            message=f.message,
            action=f.action,
            evidence=JSON(dict(f.evidence)),
            id=fid,
            triage=FindingTriage.from_domain(record) if record else None,
            waived=bool(triaged and tenant and triaged.waived(tenant, f)),
            new=bool(triaged and tenant and triaged.is_new(tenant, f)),
            sources=list(f.sources),
            owner=f.owner,
        )


@strawberry.type(description="One tenant's readiness for the target release.")
class TenantReadiness:
    tenant: str
    current_release: str
    status: str = strawberry.field(description="ready, ready_with_warnings or blocked")
    gate_status: str = strawberry.field(
        description="the status once valid waivers apply: blocked only by unwaived blockers"
    )
    blockers: int
    warnings: int = strawberry.field(
        description="findings that make the tenant ready_with_warnings (warning and unknown)"
    )
    customizations: list[str]
    findings: list[Finding]

    @classmethod
    def from_domain(
        cls, t: report_domain.TenantReadiness, triaged: TriagedReport | None = None
    ) -> TenantReadiness:
        return cls(
            tenant=t.tenant,
            current_release=t.current_release,
            status=t.status.value,
            gate_status=triaged.gate_status(t) if triaged else t.status.value,
            blockers=t.blockers,
            warnings=t.warnings,
            customizations=list(t.customizations),
            findings=[Finding.from_domain(f, t.tenant, triaged) for f in t.findings],
        )


@strawberry.type(description="One customization's readiness for the target release.")
class CustomizationReadiness:
    name: str
    version: str
    capability: str | None
    enabled_for: list[str]
    status: str = strawberry.field(
        description="compatible, needs_update, incompatible, obsolete or unknown"
    )
    stability_level: str = strawberry.field(
        description="A stable hooks only, B deprecated hooks, C experimental hooks, "
        "D refused or unverifiable"
    )
    findings: list[Finding]

    @classmethod
    def from_domain(cls, c: report_domain.CustomizationReadiness) -> CustomizationReadiness:
        return cls(
            name=c.name,
            version=c.version,
            capability=c.capability,
            enabled_for=list(c.enabled_for),
            status=c.status.value,
            stability_level=c.level,
            findings=[Finding.from_domain(f) for f in c.findings],
        )


@strawberry.type(
    description="Who owns one unblock step's blockers: the triage of its findings across "
    "the tenants it blocks."
)
class StepTriage:
    owners: list[str] = strawberry.field(description="owners named by its decisions")
    due: datetime.date | None = strawberry.field(
        description="the earliest due date of its planned fixes"
    )
    waived: int = strawberry.field(description="findings a waiver covers today")
    unassigned: int = strawberry.field(description="findings with no owner and no waiver")
    findings: int


@strawberry.type(
    description="One step of the unblock plan (core/analysis/unblock.py defines the counts)."
)
class UnblockStep:
    rank: int
    subject_kind: str
    subject: str
    codes: list[str]
    blocks: int = strawberry.field(description="tenants this blocker group blocks")
    blocked_tenants: list[str]
    unblocks_alone: int = strawberry.field(
        description="tenants for which this is the only blocker group"
    )
    unblocks_in_order: int = strawberry.field(
        description="tenants newly unblocked when the plan's steps are fixed in order"
    )
    cumulative_unblocked: int
    triage: StepTriage = strawberry.field(description="owners, due date, waivers, unassigned")


@strawberry.type(description="Tenants per status.")
class ReadinessCounts:
    ready: int
    ready_with_warnings: int
    blocked: int
    total: int


@strawberry.type(description="Fleet readiness for a target release.")
class Readiness:
    target: str
    target_status: str
    counts: ReadinessCounts
    customization_counts: JSON
    tenants: list[TenantReadiness]
    customizations: list[CustomizationReadiness]
    unblock_plan: list[UnblockStep]
    any_blocked: bool = strawberry.field(
        description="any tenant has a blocker no valid waiver covers (the CLI gate)"
    )
    new_findings: list[str] = strawberry.field(
        description="ids of findings the previous kept run of this target did not show"
    )
    resolved_findings: list[str] = strawberry.field(
        description="ids of findings the previous kept run showed and this one does not"
    )
    previous_run_at: datetime.datetime | None
    unassigned_blockers: int = strawberry.field(
        description="blocker findings with no owner and no waiver that holds"
    )

    @classmethod
    def from_domain(cls, triaged: TriagedReport) -> Readiness:
        r = triaged.report
        c = r.counts
        owners = triaged.owners
        return cls(
            target=r.target,
            target_status=r.target_status,
            counts=ReadinessCounts(
                ready=c["ready"],
                ready_with_warnings=c["ready_with_warnings"],
                blocked=c["blocked"],
                total=len(r.tenants),
            ),
            customization_counts=JSON(r.customization_counts),
            tenants=[TenantReadiness.from_domain(t, triaged) for t in r.tenants],
            customizations=[CustomizationReadiness.from_domain(x) for x in r.customizations],
            unblock_plan=[
                UnblockStep(
                    rank=s.rank,
                    subject_kind=s.subject_kind,
                    subject=s.subject,
                    codes=list(s.codes),
                    blocks=s.blocks,
                    blocked_tenants=list(s.blocked_tenants),
                    unblocks_alone=s.unblocks_alone,
                    unblocks_in_order=s.unblocks_in_order,
                    cumulative_unblocked=s.cumulative_unblocked,
                    triage=_step_triage(owners.step(s)),
                )
                for s in r.plan
            ],
            any_blocked=triaged.any_blocked,
            new_findings=sorted(triaged.new),
            resolved_findings=[x.id for x in triaged.resolved],
            previous_run_at=triaged.previous.at if triaged.previous else None,
            unassigned_blockers=owners.unassigned,
        )


def _step_triage(s: triage_domain.StepTriage) -> StepTriage:
    return StepTriage(
        owners=list(s.owners),
        due=s.due,
        waived=s.waived,
        unassigned=s.unassigned,
        findings=s.findings,
    )


@strawberry.type(description="One entry of a release changelog.")
class ReleaseChange:
    kind: str = strawberry.field(
        description="hook or setting (the product's), or hook_api: one line when the Tailor "
        "hook API changes, its details what that means for Tailor's tailor_* hooks"
    )
    name: str
    change: str = strawberry.field(description="added, removed, renamed, deprecated, changed")
    details: list[str]
    breaking: bool


@strawberry.type(description="The changelog between two releases.")
class ReleaseDiff:
    from_version: str
    to_version: str
    changes: list[ReleaseChange]
    supersedes_added: list[str]

    @classmethod
    def from_domain(cls, d: DomainDiff) -> ReleaseDiff:
        return cls(
            from_version=d.from_version,
            to_version=d.to_version,
            changes=[
                ReleaseChange(
                    kind=c.kind,
                    name=c.name,
                    change=c.change,
                    details=list(c.details),
                    breaking=c.breaking,
                )
                for c in d.changes
            ],
            supersedes_added=list(d.supersedes_added),
        )


@strawberry.type(description="The tenant moved to the target release.")
class TenantUpgraded:
    tenant: Tenant
    from_release: str
    to_release: str
    forced: bool
    audit_id: int
    overridden_findings: list[Finding] = strawberry.field(
        description="blockers a forced upgrade went past (recorded in the audit log)"
    )


@strawberry.type(description="The tenant is blocked for the target: nothing changed.")
class UpgradeBlocked(Error):
    tenant_slug: str
    target: str
    findings: list[Finding]


register(
    UpgradeBlockedError,
    lambda exc: UpgradeBlocked(
        code=exc.code,
        message=exc.message,
        tenant_slug=exc.tenant,
        target=exc.target,
        findings=[Finding.from_domain(f) for f in exc.findings],
    ),
)


# the domain's enum, exposed to GraphQL as is (not copied)
strawberry.enum(ManifestFormat, description="Manifest file format.")


# the domain's enum, exposed to GraphQL as is (not copied)
strawberry.enum(TriageVerb, description="What to decide about a finding.")


@strawberry.input(description="A decision on one readiness finding.")
class TriageFindingInput:
    finding: str = strawberry.field(
        description="the finding's id, CODE:subject:detail@tenant (CODE:subject@tenant: "
        "every detail)"
    )
    decision: TriageVerb
    reason: str | None = strawberry.field(default=None, description="required to waive")
    owner: str | None = strawberry.field(default=None, description="required to plan a fix")
    until: datetime.date | None = strawberry.field(
        default=None, description="due date of a planned fix; last day of a waiver (required)"
    )


@strawberry.type(description="How a customization version behaved in a rehearsal.")
class RehearsalConfidence:
    name: str
    version: str
    replays: int = strawberry.field(description="recorded inputs replayed (each on both sides)")
    passed: int = strawberry.field(description="replays with no finding")
    confidence: float = strawberry.field(description="passed / replays (1.0 with no replay)")
    tenants: list[str]

    @classmethod
    def from_domain(cls, c: rehearsal_domain.CustomizationConfidence) -> RehearsalConfidence:
        return cls(
            name=c.name,
            version=c.version,
            replays=c.replays,
            passed=c.passed,
            confidence=c.confidence,
            tenants=list(c.tenants),
        )


@strawberry.type(description="One tenant's rehearsal: REHEARSAL_* findings, with their ids.")
class TenantRehearsal:
    tenant: str
    current_release: str
    replays: int
    blockers: int
    findings: list[Finding]


@strawberry.type(
    description="Recorded inputs replayed through the tenants' customization versions on "
    "their current release and on the target (docs/readiness.md, Rehearsal)."
)
class Rehearsal:
    target: str
    replays: int = strawberry.field(description="samples replayed")
    calls: int = strawberry.field(description="hook calls made")
    workers: int = strawberry.field(description="worker processes started")
    unloadable: list[str] = strawberry.field(
        description="versions that could not be loaded: name version: why"
    )
    any_blocked: bool
    customizations: list[RehearsalConfidence]
    tenants: list[TenantRehearsal]

    @classmethod
    def from_domain(cls, r: rehearsal_domain.RehearsalReport) -> Rehearsal:
        return cls(
            target=r.target,
            replays=r.replays,
            calls=r.calls,
            workers=r.workers,
            unloadable=list(r.unloadable),
            any_blocked=r.any_blocked,
            customizations=[RehearsalConfidence.from_domain(c) for c in r.customizations],
            tenants=[
                TenantRehearsal(
                    tenant=t.tenant,
                    current_release=t.current_release,
                    replays=t.replays,
                    blockers=t.blockers,
                    findings=[Finding.from_domain(f, t.tenant) for f in t.findings],
                )
                for t in r.tenants
            ],
        )


FindingTriageResult = Annotated[
    Union[FindingTriage, Errors],  # noqa: UP007
    strawberry.union("TriageFindingResult"),
]
ReadinessResult = Annotated[Union[Readiness, Errors], strawberry.union("ReadinessResult")]  # noqa: UP007
ReleaseDiffResult = Annotated[Union[ReleaseDiff, Errors], strawberry.union("ReleaseDiffResult")]  # noqa: UP007
RehearsalResult = Annotated[Union[Rehearsal, Errors], strawberry.union("RehearsalResult")]  # noqa: UP007


@strawberry.type(description="A planned release, just imported (or replaced).")
class ReleaseImported:
    release: Release
    warnings: list[str] = strawberry.field(
        description="where it contradicts another planned release (a setting one drops "
        "that a later planned release still defines)"
    )


@strawberry.type(description="A planned release was deleted.")
class ReleaseDeleted:
    version: str


ImportReleaseResult = Annotated[
    Union[Release, ReleaseImported, Errors],  # noqa: UP007
    strawberry.union("ImportReleaseResult"),
]
DeleteReleaseResult = Annotated[
    Union[ReleaseDeleted, Errors],  # noqa: UP007
    strawberry.union("DeleteReleaseResult"),
]
UpgradeTenantResult = Annotated[
    Union[TenantUpgraded, UpgradeBlocked, Errors],  # noqa: UP007
    strawberry.union("UpgradeTenantResult"),
]


@strawberry.type
class ReadinessQuery:
    """Upgrade readiness and release changelogs."""

    @strawberry.field(
        description="Can these tenants (default: every tenant you may see) go to target? "
        "Findings per tenant, customization statuses and the unblock plan."
    )
    @expected
    async def readiness(
        self, info: Info, target: str, tenants: list[str] | None = None
    ) -> ReadinessResult:
        ctx = info.context
        triaged = await ctx.services.triage.triaged(ctx.principal, target, tenants)
        return Readiness.from_domain(triaged)

    @strawberry.field(
        description="Replay the tenants' recorded hook inputs (default: every tenant you may "
        "see) through the customization versions they run, or a published candidate "
        "(version: NAME@V), on their current release and translated to target: "
        "REHEARSAL_* findings and a confidence per version (a read: the run readiness "
        "joins is kept by tailor upgrade rehearse)."
    )
    @expected
    async def rehearsal(
        self,
        info: Info,
        target: str,
        tenants: list[str] | None = None,
        version: str | None = None,
    ) -> RehearsalResult:
        ctx = info.context
        report = await ctx.services.rehearsal.rehearse(ctx.principal, target, tenants, version)
        return Rehearsal.from_domain(report)

    @strawberry.field(description="The changelog from one registered release to another.")
    @expected
    async def release_diff(
        self, info: Info, from_version: str, to_version: str
    ) -> ReleaseDiffResult:
        from core.analysis.release_diff import diff

        ctx = info.context
        a = await ctx.services.releases.manifest(from_version, ctx.principal)
        b = await ctx.services.releases.manifest(to_version, ctx.principal)
        return ReleaseDiff.from_domain(diff(a, b))


@strawberry.type
class ReadinessMutation:
    """Release import and tenant upgrades."""

    @strawberry.mutation(
        description="Register a planned release from a manifest (TOML or JSON), validated "
        "fully first: on any error nothing is stored. replace: replace the planned release "
        "of that version. into: the manifest is a fragment merged into planned release V. "
        "With warnings (ReleaseImported) when it contradicts another "
        "planned release; a Release when it contradicts none."
    )
    @expected
    async def import_release(
        self,
        info: Info,
        manifest: str,
        fmt: Annotated[ManifestFormat, strawberry.argument(name="format")] = ManifestFormat.TOML,
        replace: bool = False,
        into: Annotated[
            str | None,
            strawberry.argument(
                description="manifest is a fragment ('tailor foldback propose'): merge it into "
                "planned release V, created from the current release when it does not exist"
            ),
        ] = None,
    ) -> ImportReleaseResult:
        from core.model.manifest_io import loads, parse
        from plugins.catalog import with_hook_api

        ctx = info.context
        ctx.principal.require_import_releases()
        if into is not None:
            if replace:
                raise InvalidInputError(
                    "replace", "a fragment merged 'into' a release replaces it: drop replace"
                )
            _, _, warnings = await ctx.services.releases.import_fragment(
                parse(manifest, fmt), into, ctx.principal
            )
            release = Release.from_domain(await ctx.services.releases.get(into, ctx.principal))
            return ReleaseImported(release=release, warnings=warnings) if warnings else release
        parsed = with_hook_api(loads(manifest, fmt))
        _, warnings = await ctx.services.releases.import_planned(
            parsed, ctx.principal, replace=replace
        )
        release = Release.from_domain(
            await ctx.services.releases.get(parsed.version, ctx.principal)
        )
        return ReleaseImported(release=release, warnings=warnings) if warnings else release

    @strawberry.mutation(description="Delete a planned release while no tenant is on it.")
    @expected
    async def delete_release(self, info: Info, version: str) -> DeleteReleaseResult:
        ctx = info.context
        await ctx.services.releases.delete(version, ctx.principal)
        return ReleaseDeleted(version=version)

    @strawberry.mutation(
        description="Acknowledge a finding, plan its fix (owner, due date), waive it (reason, "
        "until) or reopen it; release managers and admins; audited. A waived blocker does "
        "not block (readiness anyBlocked, the CLI gate) until its date."
    )
    @expected
    async def triage_finding(
        self, info: Info, decision: Annotated[TriageFindingInput, strawberry.argument(name="input")]
    ) -> FindingTriageResult:
        ctx = info.context
        record = await ctx.services.triage.decide(
            ctx.principal,
            decision.finding,
            decision.decision.value,
            decision.reason,
            decision.owner,
            decision.until,
        )
        return FindingTriage.from_domain(record)

    @strawberry.mutation(
        description="Move a tenant to a release when it is not blocked; force (with a reason, "
        "audit-logged) moves it anyway. Refusals carry the blocking findings."
    )
    @expected
    async def upgrade_tenant(
        self,
        info: Info,
        tenant: str,
        target: str,
        force: bool = False,
        reason: str | None = None,
    ) -> UpgradeTenantResult:
        ctx = info.context
        result: UpgradeResult = await ctx.services.readiness.upgrade(
            ctx.principal, tenant, target, force=force, reason=reason
        )
        moved = await ctx.services.tenants.get(ctx.principal, tenant)
        return TenantUpgraded(
            tenant=Tenant.from_domain(moved),
            from_release=result.from_release,
            to_release=result.to_release,
            forced=result.forced,
            audit_id=result.audit_id,
            overridden_findings=[Finding.from_domain(f) for f in result.overridden],
        )
