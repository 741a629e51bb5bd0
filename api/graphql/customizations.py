"""GraphQL: customizations (installed, registered, enabled, refused), extension
points with their lifecycle, publishing and per-tenant enablement."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Union

import strawberry

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from core.model.auth import Principal, Role
from core.model.customizations import HookUse, Observation
from core.model.extension_points import ExtensionPoint
from plugins.manifest import Problem
from plugins.runtime import PluginRuntime
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

    @classmethod
    def from_domain(cls, o: Observation) -> CustomizationObservation:
        return cls(
            tenant=o.tenant,
            hook=o.hook,
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
        )


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
    installed: bool = strawberry.field(description="its code loaded in this server")
    installed_version: str | None
    registered: bool = strawberry.field(description="published to the registry")
    registered_version: str | None
    enabled_for: list[str] = strawberry.field(description="tenants it runs for (in your scope)")
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

    @classmethod
    def from_status(
        cls,
        s: CustomizationPresence,
        principal: Principal,
        observations: Sequence[Observation] = (),
    ) -> Customization:
        """Only what ``principal`` may see: tenants outside its scope are left out,
        and so is the last error of a customization shared with such tenants (it
        may come from another tenant's request)."""
        m, reg, inst = s.manifest, s.registration, s.installed
        health = s.health
        listed = list(m.tenants) if m else []
        shared_beyond_scope = len(principal.visible(listed)) < len(listed)
        return cls(
            name=s.name,
            version=m.version if m else None,
            capability=m.capability if m else None,
            description=m.description if m else "",
            author=m.author if m else "",
            tenants=principal.visible(listed),
            requires=m.requires if m else None,
            tested_up_to=m.tested_up_to if m else None,
            installed=inst is not None,
            installed_version=inst.manifest.version if inst and inst.manifest else None,
            registered=reg is not None,
            registered_version=reg.manifest.version if reg else None,
            enabled_for=principal.visible(reg.enabled_for) if reg else [],
            refused=inst is None and bool(s.refused),
            problems=_problems(s, principal),
            warnings=s.warnings,
            hooks=[CustomizationHook.from_domain(h) for h in s.hooks],
            setting_keys=list(s.setting_keys),
            health=CustomizationHealth(
                calls=health.calls,
                failures=health.failures,
                last_error=None if shared_beyond_scope else health.last_error,
                last_error_at=None if shared_beyond_scope else health.last_error_at,
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


def _runtime(info: Info) -> PluginRuntime:
    runtime = info.context.plugins
    if runtime is None:  # pragma: no cover - the app factory always sets it
        raise RuntimeError("the app was built without a plugin runtime")
    return runtime


async def _status(info: Info, name: str) -> Customization:
    ctx = info.context
    runtime = _runtime(info)
    registration = await ctx.services.registry.get(ctx.principal, name)
    found = statuses([registration], runtime.installed(), runtime.refused(), ctx.principal)
    seen = await ctx.services.observations.list_all(ctx.principal, customization=name)
    return Customization.from_status(next(s for s in found if s.name == name), ctx.principal, seen)


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
        runtime = _runtime(info)
        await runtime.flush_health()
        registrations = await ctx.services.registry.list_all(ctx.principal, tenant, capability)
        seen = await ctx.services.observations.list_all(ctx.principal, tenant=tenant)
        found = statuses(
            registrations,
            runtime.installed(),
            runtime.refused(),
            ctx.principal,
            tenant,
            capability,
        )
        by_name: dict[str, list[Observation]] = {}
        for o in seen:
            by_name.setdefault(o.customization, []).append(o)
        return CustomizationList(
            items=[
                Customization.from_status(s, ctx.principal, by_name.get(s.name, ())) for s in found
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
            catalog = _runtime(info).catalog
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
        description="Check the customization at PATH (a directory this server loads "
        "customizations from) and publish it: admin, or a consultant whose scope covers "
        "every tenant it lists. Problems come back as InvalidInput and nothing is stored."
    )
    @expected
    async def publish_customization(self, info: Info, path: str) -> CustomizationResult:
        ctx = info.context
        runtime = _runtime(info)
        registration = await runtime.publish(ctx.principal, Path(path), from_api=True)
        return await _status(info, registration.name)

    @strawberry.mutation(
        description="Turn a published customization on or off for one tenant its manifest lists."
    )
    @expected
    async def set_customization_enabled(
        self, info: Info, tenant: str, name: str, enabled: bool
    ) -> CustomizationResult:
        ctx = info.context
        await ctx.services.registry.set_enabled(ctx.principal, tenant, name, enabled)
        return await _status(info, name)
