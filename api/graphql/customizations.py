"""GraphQL: customizations (installed, registered, enabled, refused), extension
points with their lifecycle, publishing and per-tenant enablement."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Union

import strawberry
from strawberry.file_uploads import Upload

from api.graphql.changes import ChangeRequest
from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from core.model.auth import Principal, Role
from core.model.customizations import (
    CustomizationVersion,
    HookUse,
    Observation,
    visible_customization,
)
from core.model.errors import InvalidInputError
from core.model.extension_points import ExtensionPoint
from plugins.manifest import Problem
from plugins.status import CustomizationPresence, statuses


@strawberry.type(description="A hook (extension point) with its lifecycle.")
class ExtensionPointType:
    name: str
    params: list[str]
    description: str
    added: str | None
    deprecated: str | None
    removed: str | None
    replacement: str | None
    stability: str = strawberry.field(description="stable or experimental")
    firstresult: bool
    source: str = strawberry.field(description="'tailor' or the host product's hookspec module")

    @classmethod
    def from_domain(cls, p: ExtensionPoint) -> ExtensionPointType:
        return cls(
            name=p.name,
            params=list(p.params),
            description=p.description,
            added=p.added,
            deprecated=p.deprecated,
            removed=p.removed,
            replacement=p.replacement,
            stability=p.stability,
            firstresult=p.firstresult,
            source=p.source,
        )


@strawberry.type(description="The extension points of one release.")
class ExtensionPoints:
    release: str
    items: list[ExtensionPointType]


@strawberry.type(description="A hook implementation found in a customization's code.")
class CustomizationHook:
    hook: str
    params: list[str] = strawberry.field(description="parameter names it takes")
    fingerprint: str = strawberry.field(
        description="structural fingerprint: equal for near-copies (renamed identifiers, "
        "changed literals)"
    )
    returns_constant: bool = strawberry.field(
        description="only returns literal constants: a candidate for a setting"
    )
    location: str

    @classmethod
    def from_domain(cls, h: HookUse) -> CustomizationHook:
        return cls(
            hook=h.hook,
            params=list(h.params),
            fingerprint=h.fingerprint,
            returns_constant=h.returns_constant,
            location=h.location,
        )


@strawberry.type(description="Why a customization was refused: file, field, message.")
class CustomizationProblem:
    file: str
    field: str
    message: str

    @classmethod
    def from_domain(cls, p: Problem) -> CustomizationProblem:
        return cls(file=p.file, field=p.field, message=p.message)


@strawberry.type(description="Runtime health counters of a registration.")
class CustomizationHealth:
    calls: int
    failures: int
    last_error: str | None
    last_error_at: datetime | None


@strawberry.type(
    description="What the runtime saw of one customization for one tenant and hook: "
    "evidence for readiness, fold-back and usage."
)
class CustomizationObservation:
    tenant: str
    hook: str
    version: str = strawberry.field(
        description="the version the latest calls ran (the tenant's pin): name@version"
    )
    calls: int
    failures: int
    changed: int = strawberry.field(
        description="calls whose result differed from the product's (non-customized) values"
    )
    latency_p50_ms: float | None = strawberry.field(description="bucketed: the bucket's bound")
    latency_p95_ms: float | None
    last_error: str | None
    last_error_at: datetime | None
    first_seen: datetime
    last_seen: datetime
    keys_read: list[str] = strawberry.field(description="setting keys read through `values`")
    keys_returned: list[str] = strawberry.field(description="setting keys it returned")
    scans: int = strawberry.field(
        description="calls that went over all of `values` (iterating, items(), len): a scan "
        "is evidence of no key in particular"
    )

    @classmethod
    def from_domain(cls, o: Observation) -> CustomizationObservation:
        return cls(
            tenant=o.tenant,
            hook=o.hook,
            version=o.version,
            calls=o.calls,
            failures=o.failures,
            changed=o.changed,
            latency_p50_ms=o.latency_p50_ms,
            latency_p95_ms=o.latency_p95_ms,
            last_error=o.last_error,
            last_error_at=o.last_error_at,
            first_seen=o.first_seen,
            last_seen=o.last_seen,
            keys_read=sorted(o.keys_read),
            keys_returned=sorted(o.keys_returned),
            scans=o.scans,
        )


@strawberry.type(description="One published version of a customization (immutable).")
class CustomizationVersionType:
    version: str
    sha256: str | None = strawberry.field(
        description="sha256 of the package's canonical tree (null: registered without code)"
    )
    published_at: datetime | None
    published_by: str
    requires: str
    yanked: bool = strawberry.field(description="withdrawn: it can never be pinned again")
    yank_reason: str | None
    pinned_for: list[str] = strawberry.field(
        description="enabled tenants (in your scope) pinned to this version"
    )

    @classmethod
    def from_domain(cls, v: CustomizationVersion) -> CustomizationVersionType:
        return cls(
            version=v.version,
            sha256=v.sha256,
            published_at=v.published_at,
            published_by=v.published_by,
            requires=v.requires,
            yanked=v.yanked,
            yank_reason=v.yank_reason,
            pinned_for=list(v.pinned_for),
        )


@strawberry.type(description="The version one tenant runs.")
class CustomizationPin:
    tenant: str
    version: str


@strawberry.type(description="Installed / registered / drift codes.")
class CustomizationDrift:
    code: str
    message: str


@strawberry.type(description="A customization: its manifest, code, registration and state.")
class Customization:
    name: str
    version: str | None = strawberry.field(description="installed version, else registered")
    capability: str | None
    description: str
    author: str
    tenants: list[str] = strawberry.field(description="tenants its manifest lists")
    requires: str | None
    tested_up_to: str | None
    installed: bool = strawberry.field(
        description="its code is stored in the database: every server runs its pinned versions"
    )
    installed_version: str | None
    registered: bool = strawberry.field(description="published to the registry")
    registered_version: str | None
    enabled_for: list[str] = strawberry.field(description="tenants it runs for (in your scope)")
    pins: list[CustomizationPin] = strawberry.field(
        description="the version each enabled tenant (in your scope) runs: name@version"
    )
    versions: list[CustomizationVersionType] = strawberry.field(
        description="every published version, newest first"
    )
    refused: bool = strawberry.field(description="its code was refused at load (see problems)")
    problems: list[CustomizationProblem]
    warnings: list[str] = strawberry.field(description="e.g. deprecated hooks it implements")
    hooks: list[CustomizationHook]
    setting_keys: list[str]
    health: CustomizationHealth
    published_at: datetime | None
    published_by: str | None
    drift: list[CustomizationDrift]
    observations: list[CustomizationObservation] = strawberry.field(
        description="per tenant (in your scope) and hook: calls, failures, latency, keys"
    )
    change_requests: list[ChangeRequest] = strawberry.field(
        default_factory=list,
        description="publishCustomization(enable: true) only: the change requests it proposed "
        "to enable the version for the tenants with a protected environment (each waits for "
        "another principal's approval); empty in every other answer",
    )

    @classmethod
    def from_status(
        cls,
        s: CustomizationPresence,
        principal: Principal,
        observations: Sequence[Observation] = (),
        versions: Sequence[CustomizationVersion] = (),
    ) -> Customization:
        """Only what ``principal`` may see (:func:`visible_customization`, as the
        console and the CLI): tenants outside its scope are left out, and so is the
        last error of a customization shared with such tenants."""
        m, reg, inst = s.manifest, s.registration, s.installed
        seen = visible_customization(
            principal, m.tenants if m else (), reg.pins if reg else (), s.health
        )
        health = seen.health
        return cls(
            name=s.name,
            version=m.version if m else None,
            capability=m.capability if m else None,
            description=m.description if m else "",
            author=m.author if m else "",
            tenants=list(seen.tenants),
            requires=m.requires if m else None,
            tested_up_to=m.tested_up_to if m else None,
            installed=s.stored,
            installed_version=reg.manifest.version if reg and s.stored else None,
            registered=reg is not None,
            registered_version=reg.manifest.version if reg else None,
            enabled_for=list(seen.enabled_for),
            pins=[CustomizationPin(tenant=t, version=v) for t, v in seen.pins],
            versions=[CustomizationVersionType.from_domain(v) for v in versions],
            refused=inst is None and bool(s.refused),
            problems=_problems(s, principal),
            warnings=s.warnings,
            hooks=[CustomizationHook.from_domain(h) for h in s.hooks],
            setting_keys=list(s.setting_keys),
            health=CustomizationHealth(
                calls=health.calls,
                failures=health.failures,
                last_error=health.last_error,
                last_error_at=health.last_error_at,
            ),
            published_at=reg.published_at if reg else None,
            published_by=reg.published_by if reg else None,
            drift=[CustomizationDrift(code=d.code, message=d.message) for d in s.drift],
            observations=[
                CustomizationObservation.from_domain(o)
                for o in observations
                if o.customization == s.name and principal.in_scope(o.tenant)
            ],
        )


def _problems(s: CustomizationPresence, principal: Principal) -> list[CustomizationProblem]:
    """Admins (the operators) see where the server keeps the code; everyone else
    sees paths relative to the directory the customization was found in."""
    out: list[CustomizationProblem] = []
    for loaded in s.refused:
        root = str(loaded.source.path.parent) + os.sep
        for p in loaded.problems:
            problem = CustomizationProblem.from_domain(p)
            if principal.role is not Role.ADMIN:
                problem = CustomizationProblem(
                    file=problem.file.removeprefix(root),
                    field=problem.field,
                    message=problem.message.replace(root, ""),
                )
            out.append(problem)
    return out


@strawberry.type(description="Customizations in your scope.")
class CustomizationList:
    items: list[Customization]


CustomizationsResult = Annotated[
    Union[CustomizationList, Errors],  # noqa: UP007
    strawberry.union("CustomizationsResult"),
]
CustomizationResult = Annotated[
    Union[Customization, Errors],  # noqa: UP007
    strawberry.union("CustomizationResult"),
]
ExtensionPointsResult = Annotated[
    Union[ExtensionPoints, Errors],  # noqa: UP007
    strawberry.union("ExtensionPointsResult"),
]


async def _status(info: Info, name: str) -> Customization:
    ctx = info.context
    runtime = info.context.plugins
    registration = await ctx.services.registry.get(ctx.principal, name)
    found = statuses([registration], runtime.sources(), runtime.refused(), ctx.principal)
    seen = await ctx.services.observations.list_all(ctx.principal, customization=name)
    versions = await ctx.services.registry.versions_of(ctx.principal, [name])
    return Customization.from_status(
        next(s for s in found if s.name == name), ctx.principal, seen, versions.get(name, ())
    )


@strawberry.type
class CustomizationsQuery:
    """Customizations and extension points."""

    @strawberry.field(
        description="Customizations: installed here, registered, enabled per tenant, refused "
        "(with reasons), their hooks and health. Filter by tenant or capability."
    )
    @expected
    async def customizations(
        self, info: Info, tenant: str | None = None, capability: str | None = None
    ) -> CustomizationsResult:
        ctx = info.context
        runtime = info.context.plugins
        await runtime.flush_health()
        registrations = await ctx.services.registry.list_all(ctx.principal, tenant, capability)
        seen = await ctx.services.observations.list_all(ctx.principal, tenant=tenant)
        found = statuses(
            registrations,
            runtime.sources(),
            runtime.refused(),
            ctx.principal,
            tenant,
            capability,
        )
        versions = await ctx.services.registry.versions_of(
            ctx.principal, [r.name for r in registrations]
        )
        by_name: dict[str, list[Observation]] = {}
        for o in seen:
            by_name.setdefault(o.customization, []).append(o)
        return CustomizationList(
            items=[
                Customization.from_status(
                    s, ctx.principal, by_name.get(s.name, ()), versions.get(s.name, ())
                )
                for s in found
            ]
        )

    @strawberry.field(
        description="The extension points (hooks) of a release with their lifecycle; "
        "default: the running release."
    )
    @expected
    async def extension_points(
        self, info: Info, release: str | None = None
    ) -> ExtensionPointsResult:
        ctx = info.context
        ctx.principal.require_read_product()
        if release is None:
            catalog = info.context.plugins.catalog
            running = catalog.release or ""
            points = catalog.for_version(running) if running else catalog.all()
            return ExtensionPoints(
                release=running,
                items=[ExtensionPointType.from_domain(p) for p in points],
            )
        info_ = await ctx.services.releases.get(release, ctx.principal)
        points = [
            ExtensionPoint.from_dict(d, where=f"extension_points[{i}]")
            for i, d in enumerate(info_.manifest.get("extension_points", []))
        ]
        return ExtensionPoints(
            release=info_.version, items=[ExtensionPointType.from_domain(p) for p in points]
        )


@strawberry.type
class CustomizationsMutation:
    """Publishing customizations and enabling them per tenant."""

    @strawberry.mutation(
        description="Publish a customization: its package folder as a zip (a GraphQL "
        "multipart request; `tailor customization publish PATH --url URL` sends one). The "
        "server reads the manifest itself, checks the code in a confined worker and keeps "
        "the version, content-addressed, in the database: every server then runs it once "
        "pinned. Admin, or a consultant whose scope covers every tenant it lists. The same "
        "version with other content is AlreadyExists; problems are InvalidInput, every one "
        "at once, and nothing is stored. enable: pin the tenants it lists that do not run "
        "it yet to this version (tenants already enabled stay on theirs); a tenant with a "
        "protected environment gets a change request instead, listed in changeRequests."
    )
    @expected
    async def publish_customization(
        self, info: Info, archive: Upload, enable: bool = False
    ) -> CustomizationResult:
        from api.wiring import publish_archive

        ctx = info.context
        ctx.principal.require_publish_customization(())  # the role, before reading anything
        read = getattr(archive, "read", None)
        if read is None:
            raise InvalidInputError(
                "archive",
                "send the package folder as a zip file in a GraphQL multipart request "
                "(`tailor customization publish PATH --url URL` does)",
            )
        try:
            data = await read()
        finally:
            # the view keeps the spooled file open: closed here, once read
            close = getattr(archive, "close", None)
            if close is not None:
                await close()
        outcome = await publish_archive(
            ctx.services, info.context.plugins, ctx.principal, bytes(data), enable=enable
        )
        published = await _status(info, outcome.registration.name)
        published.change_requests = [ChangeRequest.from_domain(r) for r in outcome.requested]
        return published

    @strawberry.mutation(
        description="Turn a published customization on or off for one tenant a version of "
        "it lists. Enabling pins `version` when given, else keeps the tenant's pin, else pins "
        "the newest version that lists the tenant, is not yanked and whose requires contains "
        "the tenant's release (pre-releases only when named)."
    )
    @expected
    async def set_customization_enabled(
        self, info: Info, tenant: str, name: str, enabled: bool, version: str | None = None
    ) -> CustomizationResult:
        ctx = info.context
        await ctx.services.registry.set_enabled(ctx.principal, tenant, name, enabled, version)
        return await _status(info, name)

    @strawberry.mutation(
        description="Pin one tenant to a published version (rolling back is pinning the "
        "previous one); its enabled state stays as it is."
    )
    @expected
    async def set_customization_version(
        self, info: Info, tenant: str, name: str, version: str
    ) -> CustomizationResult:
        ctx = info.context
        await ctx.services.registry.set_version(ctx.principal, tenant, name, version)
        return await _status(info, name)

    @strawberry.mutation(
        description="Withdraw a bad version: it can never be pinned again; tenants still on "
        "it keep running it and are flagged. Admin, or a consultant whose scope covers every "
        "tenant it lists."
    )
    @expected
    async def yank_customization_version(
        self, info: Info, name: str, version: str, reason: str
    ) -> CustomizationResult:
        ctx = info.context
        await ctx.services.registry.yank(ctx.principal, name, version, reason)
        return await _status(info, name)
